"""A WebSocket peer no one here wrote: the Python `websockets` library (a strict
implementation), driven by tests/websocket/outside_peers.rs.

    ws_peer.py echo URL            echo text, binary, 1 MiB and fragmented messages; close 1000
    ws_peer.py origin URL ORIGIN   a handshake from ORIGIN; prints the refusal's status
    ws_peer.py chat URL            two members; each message reaches both, verbatim
    ws_peer.py wait_close URL      prints "connected", then "closed CODE" when the server closes
    ws_peer.py serve               an echo server (permessage-deflate on); prints "listening on PORT"
    ws_peer.py deflate_echo URL    echo through permessage-deflate, which must be agreed
"""

import sys

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect
from websockets.sync.server import serve


def echo(url):
    with connect(url, max_size=4 << 20) as ws:
        for message in ["Hello, 异步世界!", bytes(range(256)), "x" * (1 << 20), ""]:
            ws.send(message)
            assert ws.recv(timeout=10) == message, "echo differs"
        # A fragmented message (an iterable is sent as fragments).
        ws.send(["frag", "men", "ted ✓"])
        assert ws.recv(timeout=10) == "fragmented ✓"
        pong = ws.ping(b"hello")
        assert pong.wait(10), "no pong"
        ws.close(1000, "done")
    assert ws.close_code == 1000, ws.close_code
    print("ok", flush=True)


def deflate_echo(url):
    with connect(url, max_size=4 << 20) as ws:
        names = [extension.name for extension in ws.protocol.extensions]
        assert names == ["permessage-deflate"], names
        for message in ["compress me " * 1000, bytes(range(256)) * 100, "short", "κόσμε" * 500]:
            ws.send(message)
            assert ws.recv(timeout=10) == message, "echo differs"
        ws.close(1000, "done")
    print("ok", flush=True)


def origin(url, origin):
    try:
        with connect(url, origin=origin, open_timeout=10):
            print("101", flush=True)
    except InvalidStatus as e:
        print(e.response.status_code, flush=True)


def chat(url):
    with connect(url) as a, connect(url) as b:
        a.send("hi from a, <b>not bold</b> ✓")
        for member in (a, b):
            assert member.recv(timeout=10) == "hi from a, <b>not bold</b> ✓"
        b.send("and b")
        for member in (a, b):
            assert member.recv(timeout=10) == "and b"
    print("ok", flush=True)


def wait_close(url):
    with connect(url) as ws:
        print("connected", flush=True)
        try:
            while True:
                ws.recv(timeout=30)
        except ConnectionClosed as e:
            print("closed", e.rcvd.code if e.rcvd else None, flush=True)


def serve_echo():
    def handler(ws):
        for message in ws:
            ws.send(message)

    with serve(handler, "127.0.0.1", 0, max_size=4 << 20) as server:
        print("listening on", server.socket.getsockname()[1], flush=True)
        server.serve_forever()


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {"echo": echo, "deflate_echo": deflate_echo, "origin": origin, "chat": chat, "wait_close": wait_close, "serve": serve_echo}[command](*args)
