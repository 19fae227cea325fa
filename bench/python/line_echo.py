"""A line echo server on Tornado: the peer of `examples/echo_server.rs` in
`bench/reliability.py`.

usage: line_echo.py

Listens on 127.0.0.1, an OS-chosen port, and prints `listening on 127.0.0.1:PORT`. Each
connection loops `line = await stream.read_until(b"\\n", max_bytes=65536)` then
`await stream.write(line)`: Tornado's idiom, which waits for each write (backpressure).
Runs until SIGTERM or SIGINT.
"""

import asyncio
import signal
import socket

from tornado.iostream import StreamClosedError
from tornado.tcpserver import TCPServer


class LineEcho(TCPServer):
    async def handle_stream(self, stream, address):
        stream.set_nodelay(True)
        try:
            while True:
                line = await stream.read_until(b"\n", max_bytes=65536)
                await stream.write(line)
        except StreamClosedError:
            pass


async def main():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.setblocking(False)
    server = LineEcho()
    server.add_sockets([sock])
    print("listening on 127.0.0.1:%d" % sock.getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
