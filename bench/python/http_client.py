"""Tornado's AsyncHTTPClient as a peer in bench/http_client.sh.

Usage: http_client.py PORT REQUESTS CONCURRENCY

GETs http://127.0.0.1:PORT/plaintext REQUESTS times, CONCURRENCY at a time
(max_clients = CONCURRENCY; Tornado's simple client opens a connection per
request), and prints one JSON object: requests, seconds, client CPU seconds.
"""

import asyncio
import json
import resource
import sys
import time

from tornado.httpclient import AsyncHTTPClient


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def main():
    port, requests, concurrency = (int(a) for a in sys.argv[1:4])
    url = "http://127.0.0.1:%d/plaintext" % port
    client = AsyncHTTPClient(max_clients=concurrency)
    left = [requests]

    async def worker():
        while left[0] > 0:
            left[0] -= 1
            response = await client.fetch(url)
            assert response.code == 200 and response.body

    cpu0, t0 = cpu(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    secs, cpu_s = time.perf_counter() - t0, cpu() - cpu0
    print(json.dumps({"requests": requests, "secs": secs, "client_cpu_s": cpu_s}))


asyncio.run(main())
