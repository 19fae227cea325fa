"""The plaintext HTTP server on Tornado: the peer of `ioloop-bench http-server tornado`.

usage: http_plain.py

Listens on 127.0.0.1, an OS-chosen port, and prints `listening on 127.0.0.1:PORT`.
`GET /plaintext` answers `Hello, World!` as text/plain (Tornado's `RequestHandler`),
`GET /json` `{"message": "Hello, World!"}` as JSON (`self.write(dict)`, serialized per
request), keep-alive on. Runs until SIGTERM or SIGINT.
"""

import asyncio

import tornado.httpserver
import tornado.web

from serving import serve_until_signalled


class Plaintext(tornado.web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "text/plain")
        self.write(b"Hello, World!")


class Json(tornado.web.RequestHandler):
    def get(self):
        self.write({"message": "Hello, World!"})


async def main():
    app = tornado.web.Application([(r"/plaintext", Plaintext), (r"/json", Json)])
    await serve_until_signalled(tornado.httpserver.HTTPServer(app))


if __name__ == "__main__":
    asyncio.run(main())
