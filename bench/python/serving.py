"""What the Tornado peers of the benchmarks share: a listening socket on 127.0.0.1 with
an OS-chosen port, announced as `listening on 127.0.0.1:PORT`, served until SIGTERM or
SIGINT."""

import asyncio
import signal
import socket


async def serve_until_signalled(server):
    """Adds a fresh listening socket to `server` (a Tornado `TCPServer` or `HTTPServer`),
    prints its address, and returns on SIGTERM or SIGINT."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.setblocking(False)
    server.add_sockets([sock])
    print("listening on 127.0.0.1:%d" % sock.getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
