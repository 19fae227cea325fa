"""TCP echo servers in Python, the peers of `ioloop-bench echo tornado|asyncio|uvloop`.

usage: echo.py tornado|asyncio|uvloop

Listens on 127.0.0.1, an OS-chosen port, backlog 1024, and prints one line on stdout:
the port, a tab, and a one-line description of the server (with versions), which the
benchmark reports as its note. The load client is the benchmark's own (bench/src/echo.rs).
Runs until SIGTERM, SIGINT or the end of stdin, then exits with status 0.

- tornado: a `tornado.tcpserver.TCPServer` whose `handle_stream` coroutine loops
  `data = await stream.read_bytes(65536, partial=True); await stream.write(data)`.
- asyncio: an `asyncio.Protocol` whose `data_received` calls `transport.write(data)`,
  on the default event loop (`asyncio.new_event_loop()`: the epoll selector loop).
- uvloop: the same protocol on a uvloop loop.

If the implementation's module cannot be imported, prints `error: ...` instead of the
port line and exits with status 3.
"""

import asyncio
import os
import selectors
import signal
import socket
import sys

BACKLOG = 1024
# What Tornado reads at most per read_bytes (its default max chunk is 64 KiB too).
TORNADO_CHUNK = 65536


def fail(message):
    print("error: " + message, flush=True)
    sys.exit(3)


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:  # asyncio and uvloop set it already; made explicit here
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data):
        self.transport.write(data)


async def serve_protocol():
    """The asyncio/uvloop server; returns (port, closer)."""
    loop = asyncio.get_running_loop()
    # Bound here: given a host, create_server resolves it in a thread pool (libuv's
    # under uvloop), which would leave idle threads in the measured process.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = await loop.create_server(EchoProtocol, sock=sock, backlog=BACKLOG)
    port = sock.getsockname()[1]

    async def close():
        server.close()
        await server.wait_closed()

    return port, close


async def serve_tornado():
    """The Tornado server; returns (port, closer)."""
    from tornado.iostream import StreamClosedError
    from tornado.netutil import bind_sockets
    from tornado.tcpserver import TCPServer

    class EchoServer(TCPServer):
        async def handle_stream(self, stream, address):
            stream.set_nodelay(True)
            try:
                while True:
                    data = await stream.read_bytes(TORNADO_CHUNK, partial=True)
                    await stream.write(data)
            except StreamClosedError:
                pass

    sockets = bind_sockets(0, "127.0.0.1", family=socket.AF_INET, backlog=BACKLOG)
    server = EchoServer()
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]

    async def close():
        server.stop()

    return port, close


async def main(serve, description):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def on_stdin():
        if not os.read(0, 4096):
            loop.remove_reader(0)
            stop.set()

    try:
        loop.add_reader(0, on_stdin)
    except (OSError, ValueError):
        pass  # stdin not pollable (a regular file or /dev/null): stop on signals only

    port, close = await serve()
    print("%d\t%s" % (port, description), flush=True)
    await stop.wait()
    await close()


def run(coro, loop):
    """Runs `coro` on `loop` to completion, then cancels what is left (the connections'
    coroutines under Tornado) and closes the loop, as asyncio.run does."""
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(coro)
    finally:
        left = asyncio.all_tasks(loop)
        for task in left:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        asyncio.set_event_loop(None)
        loop.close()


def cli():
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    imp = sys.argv[1]
    python = "Python %s" % sys.version.split()[0]
    if imp == "tornado":
        try:
            import tornado
        except ImportError as e:
            fail("cannot import tornado (%s): install it in bench/.venv" % e)
        serve, loop = serve_tornado, asyncio.new_event_loop()
        description = (
            "tornado %s TCPServer on the asyncio loop (%s); handle_stream: loop "
            "{ data = await read_bytes(65536, partial=True); await write(data) }"
            % (tornado.version, python))
    elif imp == "asyncio":
        serve, loop = serve_protocol, asyncio.new_event_loop()
        description = (
            "asyncio default loop (selector loop, %s; %s); asyncio.Protocol, "
            "data_received -> transport.write(data)"
            % (selectors.DefaultSelector.__name__, python))
    elif imp == "uvloop":
        try:
            import uvloop
        except ImportError as e:
            fail("cannot import uvloop (%s): install it in bench/.venv" % e)
        serve, loop = serve_protocol, uvloop.new_event_loop()
        description = (
            "uvloop %s (%s); the same asyncio.Protocol, data_received -> "
            "transport.write(data)" % (uvloop.__version__, python))
    else:
        fail("unknown implementation %r (tornado, asyncio or uvloop)" % imp)
    run(main(serve, description), loop)


if __name__ == "__main__":
    cli()
