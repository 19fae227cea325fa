"""Python's http.client against the gzip and ETag transforms of tests/web/output.rs.

Usage: web_output.py PORT CASE. Prints "ok" when every check of CASE holds; an
AssertionError otherwise."""
import gzip
import hashlib
import http.client
import sys
import zlib

port = int(sys.argv[1])
case = sys.argv[2]
BIG = ("Tornado-style reactor. " * 200).encode()  # the /big body, 4600 bytes


def get(path, headers=None, method="GET", conn=None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    return r, r.read()


if case == "gzip":
    r, body = get("/big", {"Accept-Encoding": "gzip, deflate"})
    assert r.status == 200, r.status
    assert r.getheader("Content-Encoding") == "gzip", r.getheaders()
    assert r.getheader("Vary") == "Accept-Encoding", r.getheaders()
    assert len(body) < len(BIG) and int(r.getheader("Content-Length")) == len(body)
    assert gzip.decompress(body) == BIG
    # Not accepted: identity, but still Vary.
    for accept in [None, "gzip;q=0", "identity", "br", "*;q=0"]:
        r, body = get("/big", {"Accept-Encoding": accept} if accept else {})
        assert r.getheader("Content-Encoding") is None, (accept, r.getheaders())
        assert body == BIG and r.getheader("Vary") == "Accept-Encoding"
    # Too small, not compressible, already encoded.
    r, body = get("/small", {"Accept-Encoding": "gzip"})
    assert r.getheader("Content-Encoding") is None and body == b"tiny"
    r, body = get("/png", {"Accept-Encoding": "gzip"})
    assert r.getheader("Content-Encoding") is None and len(body) == 4096
    r, body = get("/encoded", {"Accept-Encoding": "gzip"})
    assert r.getheader("Content-Encoding") == "br" and body == BIG
    # HEAD: the fields of the GET, no body.
    r, body = get("/big", {"Accept-Encoding": "gzip"}, method="HEAD")
    assert r.getheader("Content-Encoding") == "gzip" and body == b""
    # A range of a static file: 206, never compressed.
    r, body = get("/static/style.css", {"Accept-Encoding": "gzip", "Range": "bytes=0-99"})
    assert r.status == 206 and r.getheader("Content-Encoding") is None and len(body) == 100
    r, body = get("/static/style.css", {"Accept-Encoding": "gzip"})
    assert r.status == 200 and r.getheader("Content-Encoding") == "gzip"
    assert gzip.decompress(body) == b"body { color: red; }\n" * 100
    # A static file over 64 KiB is streamed: compressed piece by piece, chunked.
    r, body = get("/static/large.css", {"Accept-Encoding": "gzip"})
    assert r.getheader("Content-Encoding") == "gzip", r.getheaders()
    assert r.getheader("Transfer-Encoding") == "chunked", r.getheaders()
    assert gzip.decompress(body) == b"p { margin: 0; }\n" * 8000
    # Its HEAD keeps the length of the file, uncompressed.
    r, body = get("/static/large.css", {"Accept-Encoding": "gzip"}, method="HEAD")
    assert r.getheader("Content-Encoding") is None and body == b"", r.getheaders()
    assert r.getheader("Content-Length") == str(len(b"p { margin: 0; }\n" * 8000))
elif case == "stream":
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    c.request("GET", "/stream", headers={"Accept-Encoding": "gzip"})
    r = c.getresponse()
    assert r.getheader("Content-Encoding") == "gzip", r.getheaders()
    assert r.getheader("Transfer-Encoding") == "chunked", r.getheaders()
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    # The first piece decodes before the second is written: the handler waits for /go.
    first = r.read1(65536)
    assert d.decompress(first) == b"first piece\n", first
    _, go = get("/go")
    assert go == b"released"
    rest = r.read()
    assert d.decompress(rest) + d.flush() == b"second piece\n"
    assert d.eof
elif case == "etag":
    tag = '"%s"' % hashlib.sha1(BIG).hexdigest()
    r, body = get("/big")
    assert r.status == 200 and r.getheader("ETag") == tag, r.getheaders()
    for inm in [tag, "W/" + tag, '"other", ' + tag, "*"]:
        r, body = get("/big", {"If-None-Match": inm})
        assert r.status == 304 and body == b"", (inm, r.status)
        assert r.getheader("ETag") == tag and r.getheader("Content-Type") is None
    r, body = get("/big", {"If-None-Match": '"other"'})
    assert r.status == 200 and body == BIG
    # HEAD too; gzip keeps the tag of the uncompressed body and never touches the 304.
    r, body = get("/big", {"If-None-Match": tag}, method="HEAD")
    assert r.status == 304
    r, body = get("/big", {"Accept-Encoding": "gzip"})
    assert r.getheader("ETag") == tag and r.getheader("Content-Encoding") == "gzip"
    r, body = get("/big", {"Accept-Encoding": "gzip", "If-None-Match": tag})
    assert r.status == 304 and r.getheader("Content-Encoding") is None and body == b""
    # Not for POST, a route that opts out, a streamed body, or another status.
    r, body = get("/big", method="POST")
    assert r.getheader("ETag") is None, r.getheaders()
    r, body = get("/fresh", {"If-None-Match": "*"})
    assert r.status == 200 and r.getheader("ETag") is None
    r, body = get("/created")
    assert r.status == 201 and r.getheader("ETag") is None
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    c.request("GET", "/stream")
    r = c.getresponse()
    assert r.getheader("ETag") is None
    get("/go")
    assert r.read() == b"first piece\nsecond piece\n"
else:
    raise SystemExit("unknown case " + case)
print("ok")
