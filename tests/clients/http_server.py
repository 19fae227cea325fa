"""Python's http.server as a peer for ioloop's HTTP client (tests/http/client.rs).

Usage: http_server.py 1.0|1.1

Prints "port N" once listening, then serves until killed. The handler speaks
HTTP/1.0 (a connection per request) or HTTP/1.1 (keep-alive), and counts the
connections the server accepted, so the test can see the client's pool.
"""

import gzip
import http.server
import sys
import threading

ACCEPTED = 0
LOCK = threading.Lock()


class CountingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def get_request(self):
        global ACCEPTED
        pair = super().get_request()
        with LOCK:
            ACCEPTED += 1
        return pair


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/" + sys.argv[1]

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=(), length=True):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/hello":
            self.reply(200, b"hello from python")
        elif self.path == "/accepted":
            with LOCK:
                count = ACCEPTED
            self.reply(200, str(count).encode())
        elif self.path == "/gzip":
            body = gzip.compress(b"squeezed " * 1000)
            self.reply(200, body, [("Content-Encoding", "gzip")])
        elif self.path == "/redirect":
            self.reply(302, b"", [("Location", "/hello")])
        elif self.path == "/chunked" and self.protocol_version == "HTTP/1.1":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"one ", b"two ", b"three"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/until-close":
            # No length: the body ends when the server closes (HTTP/1.0 style).
            self.close_connection = True
            self.reply(200, b"until the end", length=False)
        else:
            self.reply(404, b"not found")

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        expect = self.headers.get("Expect", "")
        self.reply(200, b"%d bytes, expect=%s" % (len(body), expect.encode()))


server = CountingServer(("127.0.0.1", 0), Handler)
print("port", server.server_address[1], flush=True)
server.serve_forever()
