"""Python's own clients against examples/dashboard (run by tests/web/dashboard_example.rs).

    dashboard.py PORT flow      urllib + http.cookiejar through the login, XSRF and API
    dashboard.py PORT live      `websockets` on /live: stats, and a foreign Origin refused
    dashboard.py PORT sigterm PID
                                a WebSocket open and a slow proxy fetch in flight, then
                                SIGTERM to PID: the WebSocket gets 1001, the fetch's
                                answer arrives whole

Prints "ok" when every check holds; an AssertionError (exit status 1) otherwise.
"""

import http.cookiejar
import http.server
import json
import os
import re
import signal
import socket
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request

PORT = int(sys.argv[1])
BASE = "http://127.0.0.1:%d" % PORT
UPSTREAM_BODY = b"upstream says hello\n" * 5000  # 100 000 bytes


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are answers to check, not to follow."""

    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """A cookie jar and an opener that does not follow redirects."""

    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect)

    def open(self, path, data=None, headers=None, method=None):
        request = urllib.request.Request(BASE + path, data=data, headers=headers or {}, method=method)
        try:
            response = self.opener.open(request, timeout=30)
        except urllib.error.HTTPError as error:  # 3xx (not followed), 4xx, 5xx
            response = error
        with response:
            return response.status, response.headers, response.read()

    def form(self, path, fields):
        data = urllib.parse.urlencode(fields).encode()
        return self.open(path, data, {"Content-Type": "application/x-www-form-urlencoded"})

    def json(self, method, path, value=None, raw=None, content_type="application/json", xsrf=True):
        headers = {"Content-Type": content_type}
        if xsrf:
            headers["X-XSRFToken"] = self.cookie("_xsrf")
        body = raw if raw is not None else json.dumps(value).encode()
        return self.open(path, body, headers, method)

    def cookie(self, name):
        found = [c for c in self.jar if c.name == name]
        return found[0].value if found else None

    def cookies(self, name):
        return [c for c in self.jar if c.name == name]

    def login(self, name="ada", nxt="/"):
        status, _, page = self.open("/login")
        assert status == 200, status
        token = re.search(rb'name="_xsrf" value="([^"]+)"', page).group(1).decode()
        return self.form("/login", {"_xsrf": token, "name": name, "next": nxt})


def api_error(status, headers, body, code, mentions=""):
    assert status == code, (status, body)
    assert headers["Content-Type"] == "application/json; charset=UTF-8", headers["Content-Type"]
    error = json.loads(body)
    assert set(error) == {"error", "status"} and error["status"] == code, error
    assert mentions in error["error"], (mentions, error)


def upstream(slow=None):
    """A local HTTP server for /api/proxy: /hello answers at once, /missing 404, /slow
    once `slow` (a pair of events: arrived, release) is released."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/slow" and slow:
                slow[0].set()
                assert slow[1].wait(30), "never released"
            status = 404 if self.path == "/missing" else 200
            body = b"no such page" if status == 404 else UPSTREAM_BODY
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return port


def flow():
    # Anonymous: the home page sets _xsrf and says so; the login page escapes `next`.
    anon = Browser()
    status, headers, page = anon.open("/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=UTF-8"
    assert re.search(rb'id="user">anonymous<', page), page
    assert anon.cookie("_xsrf") and anon.cookie("_xsrf").startswith("2|")
    status, _, page = anon.open("/login?next=" + urllib.parse.quote("<script>alert(1)</script>"))
    assert status == 200
    assert b"<script>alert" not in page, page
    assert b"&lt;script&gt;alert(1)&lt;&#x2f;script&gt;" in page, page

    # The API needs a login: GET and HEAD are sent to it with `next`, POST is refused.
    status, headers, _ = anon.open("/api/items?limit=2")
    assert status == 302 and headers["Location"] == "/login?next=%2Fapi%2Fitems%3Flimit%3D2", headers
    status, headers, _ = anon.open("/api/items", method="HEAD")
    assert status == 302 and headers["Location"] == "/login?next=%2Fapi%2Fitems"
    api_error(*anon.json("POST", "/api/items", {"name": "apple", "qty": 3}), 403)
    api_error(*anon.json("POST", "/api/items", {"name": "apple", "qty": 3}, xsrf=False), 403)
    status, headers, _ = anon.open("/api/proxy?url=" + urllib.parse.quote(BASE + "/"))
    assert status == 302 and headers["Location"].startswith("/login?next=%2Fapi%2Fproxy"), headers

    # Logging in: XSRF first, then a name, then a signed HttpOnly cookie and a local next.
    me = Browser()
    status, _, page = me.open("/login?next=/api/items")
    token = re.search(rb'name="_xsrf" value="([^"]+)"', page).group(1).decode()
    status, _, body = me.form("/login", {"name": "ada", "next": "/"})
    assert status == 403 and b"403" in body, (status, body)
    forged = "2|00000000|" + "0" * 32 + "|1"
    assert me.form("/login", {"_xsrf": forged, "name": "ada"})[0] == 403
    assert me.form("/login", {"_xsrf": token, "name": "", "next": "/"})[0] == 400
    assert me.form("/login", {"_xsrf": token, "next": "/"})[0] == 400
    assert not me.cookies("user")
    status, headers, _ = me.form("/login", {"_xsrf": token, "name": "<b>ada</b>", "next": "/api/items?limit=1"})
    assert status == 302 and headers["Location"] == "/api/items?limit=1", (status, headers)
    [user] = me.cookies("user")
    assert user.has_nonstandard_attr("HttpOnly"), user
    assert user.value.startswith("2|1:0|") and "<" not in user.value, user.value
    for evil in ["//evil.example", "/\\evil.example", "https://evil.example/", "javascript:alert(1)"]:
        status, headers, _ = me.form("/login", {"_xsrf": token, "name": "<b>ada</b>", "next": evil})
        assert status == 302 and headers["Location"] == "/", (evil, headers["Location"])
    status, _, page = me.open("/")
    assert b'id="user">&lt;b&gt;ada&lt;&#x2f;b&gt;<' in page, page

    # Items: list, add, limits, and every refusal as JSON.
    status, headers, body = me.open("/api/items")
    assert status == 200 and headers["Content-Type"] == "application/json; charset=UTF-8"
    assert json.loads(body) == {"items": [], "total": 0}, body
    for i in range(12):
        status, headers, body = me.json("POST", "/api/items", {"name": "item%d" % i, "qty": i})
        assert status == 201, (status, body)
        assert json.loads(body) == {"id": i + 1, "name": "item%d" % i, "qty": i}, body
        assert headers["Location"] == "/api/items/%d" % (i + 1), headers
    page = json.loads(me.open("/api/items")[2])
    assert page["total"] == 12 and [it["id"] for it in page["items"]] == list(range(3, 13)), page
    page = json.loads(me.open("/api/items?limit=3")[2])
    assert page == {"items": [{"id": n, "name": "item%d" % (n - 1), "qty": n - 1} for n in (10, 11, 12)],
                    "total": 12}, page
    assert json.loads(me.open("/api/items?limit=0")[2]) == {"items": [], "total": 12}
    assert json.loads(me.open("/api/items?limit=99")[2])["items"][0]["id"] == 1
    api_error(*me.open("/api/items?limit=-1"), 400, "limit")
    api_error(*me.open("/api/items?limit=ten"), 400, "limit")
    api_error(*me.json("POST", "/api/items", raw=b'{"name": '), 400, "JSON")
    api_error(*me.json("POST", "/api/items", {"name": "", "qty": 1}), 400, "name")
    api_error(*me.json("POST", "/api/items", {"name": "  ", "qty": 1}), 400, "name")
    api_error(*me.json("POST", "/api/items", {"name": "pear", "qty": "three"}), 400)
    api_error(*me.json("POST", "/api/items", {"name": "pear", "qty": -1}), 400)
    api_error(*me.json("POST", "/api/items", {"qty": 1}), 400)
    api_error(*me.json("POST", "/api/items", raw=b"name=pear", content_type="application/x-www-form-urlencoded"), 415)
    api_error(*me.json("POST", "/api/items", {"name": "pear", "qty": 1}, content_type="text/plain"), 415)
    api_error(*me.json("POST", "/api/items", {"name": "pear", "qty": 1}, xsrf=False), 403)
    status, headers, body = me.json("DELETE", "/api/items", raw=b"")
    api_error(status, headers, body, 405)
    assert headers["Allow"] == "GET, POST, HEAD", headers["Allow"]
    api_error(*me.open("/api/nothing/here"), 404, "Not Found")
    assert json.loads(me.open("/api/items?limit=1")[2])["total"] == 12  # nothing refused was added

    # The proxy, through the HTTP client: a local server, its 404, a closed port, no url.
    local = upstream()
    try:
        for path, code, length in [("/hello", 200, len(UPSTREAM_BODY)), ("/missing", 404, 12)]:
            url = "http://127.0.0.1:%d%s" % (local.server_port, path)
            status, _, body = me.open("/api/proxy?url=" + urllib.parse.quote(url, safe=""))
            assert status == 200, (status, body)
            assert json.loads(body) == {"url": url, "status": code, "length": length}, body
    finally:
        local.shutdown()
    url = "http://127.0.0.1:%d/" % closed_port()
    api_error(*me.open("/api/proxy?url=" + urllib.parse.quote(url, safe="")), 502)
    api_error(*me.open("/api/proxy?url=not-a-url"), 502)
    api_error(*me.open("/api/proxy"), 400, "url")

    # Logging out clears the cookie; the API asks for a login again.
    status, headers, _ = me.open("/logout")
    assert status == 302 and headers["Location"] == "/"
    assert not me.cookies("user")
    assert me.open("/api/items")[0] == 302
    status, _, page = me.open("/")
    assert b'id="user">anonymous<' in page


def live():
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    url = "ws://127.0.0.1:%d/live" % PORT
    with connect(url, origin="http://127.0.0.1:%d" % PORT) as one, connect(url) as two:
        seen = [json.loads(one.recv(timeout=10)) for _ in range(3)]
        for stats in seen:
            assert set(stats) == {"uptime", "clients", "requests"}, stats
            assert isinstance(stats["uptime"], float) and isinstance(stats["requests"], int)
            assert isinstance(stats["clients"], int) and stats["clients"] >= 1, stats
        # Uptime grows by about 500 ms a message (more when a tick is late and skipped).
        steps = [b["uptime"] - a["uptime"] for a, b in zip(seen, seen[1:])]
        assert all(0.2 < step < 3.0 for step in steps), steps
        json.loads(two.recv(timeout=10))
        # Both pages are counted (polled: the first stats may predate the second page).
        for _ in range(20):
            if json.loads(one.recv(timeout=10))["clients"] == 2:
                break
        else:
            raise AssertionError("two live pages never counted as 2")
    for origin in ["http://evil.example", "null", "http://127.0.0.1:%d" % (PORT + 1)]:
        try:
            connect(url, origin=origin, open_timeout=10).close()
        except InvalidStatus as refused:
            assert refused.response.status_code == 403, refused.response.status_code
        else:
            raise AssertionError("a page from %s connected" % origin)


def sigterm(pid):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    me = Browser()
    status, _, _ = me.login()
    assert status == 302 and me.cookies("user")
    arrived, release = threading.Event(), threading.Event()
    slow = upstream((arrived, release))
    url = "http://127.0.0.1:%d/slow" % slow.server_port
    answer = {}

    def fetch():
        answer["reply"] = me.open("/api/proxy?url=" + urllib.parse.quote(url, safe=""))

    with connect("ws://127.0.0.1:%d/live" % PORT) as ws:
        json.loads(ws.recv(timeout=10))
        fetcher = threading.Thread(target=fetch)
        fetcher.start()
        assert arrived.wait(30), "the proxy fetch never reached the upstream"
        os.kill(pid, signal.SIGTERM)
        try:
            while True:
                ws.recv(timeout=10)  # stats may still come before the close
        except ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 1001, closed
    # Shutting down: no new connection is accepted, the fetch in flight goes on.
    try:
        socket.create_connection(("127.0.0.1", PORT), timeout=5).close()
        raise AssertionError("a new connection was accepted while shutting down")
    except ConnectionRefusedError:
        pass
    assert fetcher.is_alive() and "reply" not in answer
    release.set()
    fetcher.join(30)
    status, headers, body = answer["reply"]
    assert status == 200, (status, body)
    assert json.loads(body) == {"url": url, "status": 200, "length": len(UPSTREAM_BODY)}, body
    assert headers["Connection"] == "close", headers
    slow.shutdown()


if __name__ == "__main__":
    case = sys.argv[2]
    if case == "flow":
        flow()
    elif case == "live":
        live()
    elif case == "sigterm":
        sigterm(int(sys.argv[3]))
    else:
        sys.exit("unknown case " + case)
    print("ok", flush=True)
