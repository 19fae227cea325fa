"""The WebSocket server on Tornado: the peer of `ioloop-bench ws-server` in bench/ws.sh.

usage: ws_server.py

Listens on 127.0.0.1, an OS-chosen port, and prints `listening on 127.0.0.1:PORT`.
`GET /echo` echoes every message; `GET /broadcast` sends every message a member sends to
every member, the sender included (`write_message` to each, the usual Tornado chat).
Runs until SIGTERM or SIGINT.
"""

import asyncio

import tornado.httpserver
import tornado.web
import tornado.websocket

from serving import serve_until_signalled

MAX = 64 << 20


class Echo(tornado.websocket.WebSocketHandler):
    def on_message(self, message):
        self.write_message(message, binary=isinstance(message, bytes))


class Member(tornado.websocket.WebSocketHandler):
    room = set()

    def open(self):
        Member.room.add(self)

    def on_message(self, message):
        binary = isinstance(message, bytes)
        for member in list(Member.room):
            member.write_message(message, binary=binary)

    def on_close(self):
        Member.room.discard(self)


async def main():
    app = tornado.web.Application(
        [(r"/echo", Echo), (r"/broadcast", Member)], websocket_max_message_size=MAX
    )
    await serve_until_signalled(tornado.httpserver.HTTPServer(app))


if __name__ == "__main__":
    asyncio.run(main())
