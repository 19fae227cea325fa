#!/usr/bin/env python3
"""Reliability under hostile peers: the echo and chat examples, measured from outside.

usage: bench/reliability.py [--quick] [--out FILE]

Each server runs as its own process pinned to core 0 (a release build of
examples/echo_server.rs, echo_server_async.rs, chat_server.rs, and Tornado's line echo
`python/line_echo.py` when bench/.venv has tornado); this client runs on core 1. Memory
is the server's resident set (VmRSS) growth; descriptors are counted in /proc/PID/fd.

- idle / partial line: N connections that each did one round trip and wait (idle), or
  that each sent one byte of a line and stopped (partial); bytes per connection.
- flood: one client sends lines and never reads what comes back, until the server stops
  taking them (no progress for 2 s) or 1 GiB went out; for the chat server, one member
  reads nothing while another says 256 MiB. Server growth, bytes taken, and whether
  others are still served.
- slowloris: 2000 connections trickling one byte every 500 ms; server growth, and the
  median round trip of a normal client meanwhile.
- descriptors: open descriptors after 20 000 connect/close cycles, half of them closed
  with a reset (SO_LINGER 0).
- timer batch: `ioloop-bench timer-batch ioloop` (100 000 pending timeouts, a batch of
  20 000 that each remove one, 60 000 cancelled entries in the batch), median of 3.

Writes one JSON object per line to FILE (default bench/results/reliability-STAMP.jsonl)
and prints its path. `bench/run.sh` runs it and puts the results in BENCHMARKS.md.
"""

import json
import os
import resource
import select
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
QUICK = "--quick" in sys.argv
OUT = None
if "--out" in sys.argv:
    OUT = sys.argv[sys.argv.index("--out") + 1]

SIZES = {
    "conns": 300 if QUICK else 1000,
    "slowloris": 2000,
    "slowloris_s": 3 if QUICK else 10,
    "cycles": 5000 if QUICK else 20000,
    "chat_flood": (64 if QUICK else 256) << 20,
}

records = []


def record(measurement, server, value, unit, **extra):
    r = {"measurement": measurement, "server": server, "value": value, "unit": unit}
    r.update(extra)
    records.append(r)
    print("  %-28s %-18s %12.1f %s %s" % (measurement, server, value, unit,
                                         json.dumps(extra) if extra else ""), file=sys.stderr)


def pin(cpu):
    try:
        os.sched_setaffinity(0, {cpu})
    except (AttributeError, OSError):
        pass


class Server:
    """A server process: its port, resident memory and descriptors."""

    def __init__(self, argv):
        taskset = ["taskset", "-c", "0"] if os.cpu_count() >= 2 else []
        self.proc = subprocess.Popen(taskset + argv, stdout=subprocess.PIPE, text=True)
        self.lines = []
        self.port = None
        first = threading.Event()

        def drain():
            for line in self.proc.stdout:
                self.lines.append(line.rstrip("\n"))
                if self.port is None and ("listening on" in line):
                    self.port = int(line.strip().rsplit(":", 1)[1])
                    first.set()
            first.set()

        threading.Thread(target=drain, daemon=True).start()
        if not first.wait(30) or self.port is None:
            raise RuntimeError("%s printed no port" % argv)

    def rss(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def servers():
    examples = os.path.join(ROOT, "target", "release", "examples")
    found = [
        ("ioloop echo (callbacks)", "echo", [os.path.join(examples, "echo_server"), "0"]),
        ("ioloop echo (async)", "echo", [os.path.join(examples, "echo_server_async"), "0"]),
        ("ioloop chat", "chat", [os.path.join(examples, "chat_server"), "0"]),
    ]
    venv = os.path.join(BENCH, ".venv", "bin", "python")
    if os.path.exists(venv) and subprocess.run([venv, "-c", "import tornado"]).returncode == 0:
        found.append(("tornado echo", "echo", [venv, os.path.join(BENCH, "python", "line_echo.py")]))
    return found


def connect(port, timeout=30):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


_pending = {}


def read_line(s):
    """The next line from `s` (bytes after it stay buffered for the next call)."""
    data = _pending.pop(s.fileno(), b"")
    while b"\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    line, rest = data.split(b"\n", 1)
    if rest:
        _pending[s.fileno()] = rest
    return line + b"\n"


def close(s):
    _pending.pop(s.fileno(), None)
    s.close()


def echo_round_trip(port):
    s = connect(port)
    t = time.perf_counter()
    s.sendall(b"probe\n")
    assert read_line(s) == b"probe\n"
    elapsed = time.perf_counter() - t
    close(s)
    return elapsed


def chat_pair(port):
    """Two chat members with their welcomes read: (listener, speaker)."""
    a, b = connect(port), connect(port)
    read_line(a)
    read_line(b)
    return a, b


def chat_round_trip(a, b, n):
    """b says something; returns how long until a hears it (lines from others skipped)."""
    t = time.perf_counter()
    b.sendall(b"ping %d\n" % n)
    while not read_line(a).endswith(b"ping %d\n" % n):
        pass
    return time.perf_counter() - t


def sync(kind, port):
    """Returns once the server ran an iteration after everything sent so far."""
    if kind == "echo":
        echo_round_trip(port)
        echo_round_trip(port)
    else:
        a, b = chat_pair(port)
        chat_round_trip(a, b, 0)
        chat_round_trip(a, b, 1)
        for s in (a, b):
            close(s)


def per_connection(name, kind, argv):
    n = SIZES["conns"]
    for what in ("idle", "partial line"):
        server = Server(argv)
        sync(kind, server.port)
        before = server.rss()
        held = []
        for _ in range(n):
            s = connect(server.port)
            if kind == "chat":
                read_line(s)
            if what == "idle" and kind == "echo":
                s.sendall(b"hi\n")
                read_line(s)
            elif what == "partial line":
                s.sendall(b"x")
            held.append(s)
        sync(kind, server.port)
        grown = server.rss() - before
        record("bytes/connection, " + what, name, grown / n, "B", connections=n)
        for s in held:
            close(s)
        server.stop()


def flood_echo(name, argv):
    server = Server(argv)
    echo_round_trip(server.port)
    before = server.rss()
    s = connect(server.port)
    s.setblocking(False)
    chunk = (b"y" * 1023 + b"\n") * 64
    sent = 0
    peak = 0
    while sent < 1 << 30:
        try:
            sent += s.send(chunk)
        except BlockingIOError:
            _, writable, _ = select.select([], [s], [], 2.0)
            if not writable:
                break
        if sent % (16 << 20) < len(chunk):
            peak = max(peak, server.rss() - before)
    peak = max(peak, server.rss() - before)
    served = True
    try:
        echo_round_trip(server.port)
    except (OSError, AssertionError):
        served = False
    record("flood without reading: RSS growth", name, peak / 2**20, "MiB",
           bytes_taken=sent, others_served=served)
    close(s)
    server.stop()


def flood_chat(name, argv):
    server = Server(argv)
    sleeper = connect(server.port)
    read_line(sleeper)
    talker = connect(server.port)
    read_line(talker)
    before = server.rss()
    chunk = (b"z" * 4000 + b"\n") * 64
    said = 0
    peak = 0
    while said < SIZES["chat_flood"]:
        talker.sendall(chunk)
        said += len(chunk)
        if said % (16 << 20) < len(chunk):
            peak = max(peak, server.rss() - before)
    a, b = chat_pair(server.port)
    served = True
    try:
        chat_round_trip(a, b, 7)
    except (OSError, AssertionError):
        served = False
    peak = max(peak, server.rss() - before)
    dropped = any("stopped reading" in line for line in server.lines)
    record("flood without reading: RSS growth", name, peak / 2**20, "MiB",
           bytes_said=said, non_reader_disconnected=dropped, others_served=served)
    for s in (sleeper, talker, a, b):
        close(s)
    server.stop()


def slowloris(name, kind, argv):
    server = Server(argv)
    sync(kind, server.port)
    before = server.rss()
    trickling = []
    for _ in range(SIZES["slowloris"]):
        s = connect(server.port)
        s.setblocking(False)
        trickling.append(s)
    stop = threading.Event()

    def trickle():
        while not stop.is_set():
            for s in trickling:
                try:
                    s.send(b"s")
                except OSError:
                    pass
            stop.wait(0.5)

    t = threading.Thread(target=trickle)
    t.start()
    latencies = []
    deadline = time.monotonic() + SIZES["slowloris_s"]
    if kind == "chat":
        a, b = chat_pair(server.port)
    n = 0
    while time.monotonic() < deadline:
        if kind == "echo":
            latencies.append(echo_round_trip(server.port))
        else:
            latencies.append(chat_round_trip(a, b, n))
        n += 1
        time.sleep(0.02)
    stop.set()
    t.join()
    grown = server.rss() - before
    record("slowloris: RSS growth", name, grown / 2**20, "MiB",
           connections=len(trickling), seconds=SIZES["slowloris_s"])
    record("slowloris: normal client p50", name, statistics.median(latencies) * 1e3, "ms",
           round_trips=len(latencies))
    for s in trickling:
        close(s)
    if kind == "chat":
        for s in (a, b):
            close(s)
    server.stop()


def descriptors(name, kind, argv):
    server = Server(argv)
    sync(kind, server.port)
    before = server.fds()
    cycles = SIZES["cycles"]
    for i in range(cycles):
        s = connect(server.port)
        if i % 2:
            # A reset: close with SO_LINGER 0.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            s.sendall(b"bye\n")
        close(s)
    sync(kind, server.port)
    record("descriptors after connect/close cycles", name, server.fds() - before, "fds",
           cycles=cycles, with_resets=cycles // 2)
    server.stop()


def timer_batch():
    binary = os.path.join(ROOT, "target", "release", "ioloop-bench")
    times = []
    for _ in range(3):
        out = subprocess.run([binary, "timer-batch", "ioloop"], capture_output=True, text=True,
                             check=True).stdout
        times.append(json.loads(out)["metrics"]["batch_ms"])
    record("timer batch with removals", "ioloop", statistics.median(times), "ms",
           min=min(times), max=max(times))


def main():
    pin(1)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print("== building the examples (release)", file=sys.stderr)
    subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "echo_server",
                    "--example", "echo_server_async", "--example", "chat_server"],
                   cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "ioloop-bench"],
                   cwd=ROOT, check=True)
    for name, kind, argv in servers():
        print("== %s" % name, file=sys.stderr)
        per_connection(name, kind, argv)
        if kind == "echo":
            flood_echo(name, argv)
        else:
            flood_chat(name, argv)
        slowloris(name, kind, argv)
        descriptors(name, kind, argv)
    timer_batch()
    out = OUT or os.path.join(BENCH, "results", "reliability-%s.jsonl"
                              % time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    print(out)


if __name__ == "__main__":
    main()
