"""A line echo server on Tornado: the peer of `examples/echo_server.rs` in
`bench/reliability.py`.

usage: line_echo.py

Listens on 127.0.0.1, an OS-chosen port, and prints `listening on 127.0.0.1:PORT`. Each
connection loops `line = await stream.read_until(b"\\n", max_bytes=65536)` then
`await stream.write(line)`: Tornado's idiom, which waits for each write (backpressure).
Runs until SIGTERM or SIGINT.
"""

import asyncio

from serving import serve_until_signalled
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
    await serve_until_signalled(LineEcho())


if __name__ == "__main__":
    asyncio.run(main())
