"""Timer storm on Tornado's IOLoop and on bare asyncio, same shape as `ioloop-bench timers`.

n timers with deadlines spread over 1 s (pseudo-random order), every other one cancelled,
the rest fired. The event loop's clock is replaced by a manual one (asyncio's loop.time,
which Tornado's AsyncIOLoop also reads), advanced past the last deadline so that nothing
really waits. Prints one JSON line like the Rust binary.

usage: timers.py tornado|asyncio [n]
"""

import asyncio
import json
import random
import resource
import sys
import time


def usage():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime, ru.ru_maxrss


def main():
    imp = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    rng = random.Random(12345)
    offsets = [rng.random() for _ in range(n)]

    aloop = asyncio.new_event_loop()
    asyncio.set_event_loop(aloop)
    now = [1000.0]
    aloop.time = lambda: now[0]  # manual clock
    base = now[0]
    fired = [0]
    target = n - n // 2

    if imp == "tornado":
        import tornado
        from tornado.ioloop import IOLoop

        io = IOLoop.current()
        add = io.call_at
        remove = io.remove_timeout
        stop = io.stop
        start = io.start
        note = "tornado %s AsyncIOLoop: call_at / remove_timeout" % tornado.version
    elif imp == "asyncio":
        add = aloop.call_at

        def remove(h):
            h.cancel()

        stop = aloop.stop
        start = aloop.run_forever
        note = "asyncio %s loop.call_at / TimerHandle.cancel" % sys.version.split()[0]
    else:
        sys.exit("unknown implementation " + imp)

    def cb(i):
        fired[0] += 1
        if fired[0] == target:
            stop()

    deadlines = [base + o for o in offsets]
    handles = [None] * n
    cpu0, rss0 = usage()

    t = time.perf_counter()
    for i in range(n):
        handles[i] = add(deadlines[i], cb, i)
    add_s = time.perf_counter() - t

    t = time.perf_counter()
    for i in range(1, n, 2):
        remove(handles[i])
    cancel_s = time.perf_counter() - t
    assert fired[0] == 0

    t = time.perf_counter()
    now[0] = base + 1.001
    start()
    fire_s = time.perf_counter() - t
    cpu1, rss1 = usage()
    assert fired[0] == target

    print(json.dumps({
        "workload": "timers",
        "impl": imp,
        "n": n,
        "metrics": {
            "add_ns": add_s * 1e9 / n,
            "cancel_ns": cancel_s * 1e9 / (n // 2),
            "fire_ns": fire_s * 1e9 / target,
            "cpu_ms": (cpu1 - cpu0) * 1e3,
            "maxrss_mb": rss1 / 1024.0,
            "bytes_per_timer": (rss1 - rss0) * 1024.0 / n,
        },
        "note": note + "; manual loop.time()",
    }))


if __name__ == "__main__":
    main()
