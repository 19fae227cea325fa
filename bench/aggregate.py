#!/usr/bin/env python3
"""Aggregates ioloop-bench JSON lines into BENCHMARKS.md.

usage: aggregate.py RESULTS.jsonl MACHINE.json OUT.md [CALLGRIND.tsv [STRACE.tsv]]
       aggregate.py --timing-section TIMING.jsonl OUT.md COMMAND

The second form replaces (or adds) only the "Timing precision" section of OUT.md, for
`bench/timing.sh` run on its own.

RESULTS.jsonl: one JSON object per run, {"workload", "impl", "n", "metrics", "note",
"round"}, and "params" for a workload run with parameters (echo: conns, size, ms); round
0 is the warm-up and is left out. MACHINE.json: machine facts and the command.
CALLGRIND.tsv: workload, impl, n1, n2, Ir(n1), Ir(n2) per line (optional). STRACE.tsv:
tool, impl, syscall, calls, messages per line, from strace_echo.sh (optional).
"""

import json
import os
import re
import statistics
import sys
from collections import OrderedDict

# workload -> (title, description, [(metric, label, higher_is_better)])
WORKLOADS = OrderedDict([
    ("timers", ("Timer storm",
                "n timers, deadlines spread over 1 s in pseudo-random order, every other one "
                "cancelled, the rest fired. Per-phase wall time divided by the phase's count; "
                "CPU = user+sys over the three phases (getrusage); bytes/timer = growth of "
                "peak RSS over the storm / n (closure included: each captures 8 bytes).",
                [("add_ns", "add, ns/timer", False),
                 ("cancel_ns", "cancel, ns/cancelled timer", False),
                 ("fire_ns", "fire, ns/fired timer", False),
                 ("cpu_ms", "CPU for the storm, ms", False),
                 ("bytes_per_timer", "peak-RSS growth, bytes/timer", False)])),
    ("chained", ("Callbacks, chained",
                 "Each callback schedules the next; ns per callback over the chain.",
                 [("ns_per_cb", "ns/callback", False)])),
    ("batch", ("Callbacks, batches of 1000",
               "1000 callbacks queued, then one loop iteration runs them; ns per callback.",
               [("ns_per_cb", "ns/callback", False)])),
    ("rtt", ("Cross-thread round trip, loop idle",
             "A worker on core 1 posts a callback that stores a sequence number in an atomic "
             "and spins until it sees it; it then pauses 20 µs so that the loop thread is "
             "asleep in its poller again before the next post. Latency in µs.",
             [("median_us", "median RTT, µs", False), ("p99_us", "p99 RTT, µs", False)])),
    ("rtt-b2b", ("Cross-thread round trip, back to back",
                 "As above without the pause: the next post often arrives while the loop is "
                 "still busy after the previous one, so this mostly measures the post/drain "
                 "path, not the wakeup.",
                 [("median_us", "median RTT, µs", False), ("p99_us", "p99 RTT, µs", False)])),
    ("post", ("Cross-thread posting throughput",
              "One producer on core 1 posts n callbacks as fast as it can; rate = n / (time "
              "from the first post to the last callback run on the loop).",
              [("cb_per_s", "callbacks/s", True),
               ("producer_ns_per_post", "producer ns/post", False)])),
    ("spawn", ("Tasks, spawn + complete, batches of 1000",
               "1000 tasks spawned from the driving code (handles dropped), each a future "
               "that bumps a counter and completes on its first poll, then the loop runs "
               "until all of them completed; ns per task, spawn to completion and cleanup "
               "included. The floor is the least a task can cost: one boxed future, polled "
               "once with a no-op waker.",
               [("ns_per_task", "ns/task", False)])),
    ("spawn-await", ("Tasks, spawn then await, in sequence",
                     "One driver task does `spawn(fut).await` n times, so each task is "
                     "spawned, polled once, completes and wakes the driver before the next "
                     "spawn; ns per task.",
                     [("ns_per_task", "ns/task", False)])),
    ("idle", ("Idle connections",
              "The echo servers of the echo workload below, with a 64-byte buffer per "
              "connection instead of 16 KiB (so that the application's buffer does not hide "
              "the event loop's). A client *process* on core 1 opens n connections and "
              "sends one 64-byte message through each, waiting for the echo, so every "
              "connection was accepted and used once; then nothing happens for the hold "
              "time (%s). *bytes/connection* = growth of the server process's anonymous RSS "
              "(`RssAnon`, heap and stacks; kernel socket memory is not in it) from before "
              "the client connected to the start of the hold, divided by n, the 64-byte "
              "buffer included; one connection was made and closed before the baseline, so "
              "one-time allocations are not counted. *wakeups/s* = the server thread's "
              "voluntary context switches over the hold (each one a sleep in the poller "
              "that something ended), and its CPU time over the hold. These are counts, not "
              "timings: 2 runs in full mode (3 in quick mode), no warm-up run.",
              [("bytes_per_conn", "user-space bytes/connection", False),
               ("wakeups_per_s", "wakeups/s while idle", False),
               ("idle_cpu_us_per_s", "server CPU while idle, µs/s", False)])),
    ("wake-rtt", ("Cross-thread task wake round trip, loop idle",
                  "A worker on core 1 sends a sequence number over an `async-channel` to a "
                  "task awaiting `recv()` on the loop; the task stores it in an atomic and "
                  "the worker spins until it sees it, then pauses 20 µs so that the loop "
                  "thread is asleep in its poller again (as in `rtt`). Measures the waker's "
                  "cross-thread path: wake, loop wakeup, task poll. Latency in µs.",
                  [("median_us", "median RTT, µs", False), ("p99_us", "p99 RTT, µs", False)])),
])

ECHO_DESC = (
    "A TCP echo server on 127.0.0.1 on the benchmark's main thread (core 0), and one load "
    "client, the same for every server, on core 1: `conns` connections, each sending one "
    "message of `size` bytes, waiting for all of it to come back, then sending the next "
    "(ping-pong; one level-triggered epoll loop drives all of them). After a warm-up "
    "(a quarter of the window, at least 100 ms) the client measures for a fixed window "
    "(%s): messages/s, round trip per message (send to the last byte back; p50 and p99 "
    "as medians over the runs), and the server thread's CPU time (user+sys, its "
    "`pthread_getcpuclockid` clock) per message. *Busy* = server CPU / wall time over the "
    "window: near 1 the server is the bottleneck; below it the client (which does as many "
    "syscalls per message as the server) or the scheduler is. Every server echoes what one "
    "read returned as soon as it returned it, from a 16 KiB buffer per connection, with "
    "TCP_NODELAY, on the same listening socket (backlog 1024). On loopback most of the "
    "CPU per message is the kernel's TCP path (sendto also runs the receiver's softirq), "
    "so the event loops differ by a few hundred ns out of several µs.")

# Added to ECHO_DESC when the Python peers ran.
PY_ECHO = ("tornado", "asyncio", "uvloop")
PY_ECHO_DESC = (
    "The Python servers (%s) are a child process of the benchmark, `python/echo.py` "
    "(started from the main thread, so on core 0 too, while the main thread only waits), "
    "with their own listening socket (127.0.0.1, backlog 1024), TCP_NODELAY and their "
    "libraries' own read sizes (in ping-pong a read returns at most one message anyway). "
    "Their server CPU is the process's CPU-time clock (`clock_getcpuclockid`) at both "
    "ends of the window.")

ECHO_COLUMNS = [
    ("msgs_per_s", "messages/s", True),
    ("server_cpu_ns_per_msg", "server CPU ns/msg", False),
]


def fmt(v):
    if v >= 1e6:
        return "%.2f M" % (v / 1e6)
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    return "%.2f" % v


def write_echo(w, runs):
    """One table per (conns, size): messages/s, latency, server CPU per message."""
    if not runs:
        return
    # (conns, size) -> impl -> {"note", "ms", metric -> [values]}, impls in first-seen order.
    shapes = {}
    for r in runs:
        p = r["params"]
        by_impl = shapes.setdefault((p["conns"], p["size"]), OrderedDict())
        entry = by_impl.setdefault(r["impl"], {"note": r["note"], "ms": p.get("ms"), "m": {}})
        for k, v in r["metrics"].items():
            entry["m"].setdefault(k, []).append(float(v))
    windows = sorted({e["ms"] for by_impl in shapes.values() for e in by_impl.values()})
    w("## TCP echo on loopback (`echo`)\n")
    w(ECHO_DESC % ", ".join("%s ms" % ms for ms in windows) + "\n")
    python = [imp for imp in PY_ECHO if any(imp in by_impl for by_impl in shapes.values())]
    if python:
        w(PY_ECHO_DESC % ", ".join("`%s`" % imp for imp in python) + "\n")
    med = lambda e, k: statistics.median(e["m"][k]) if e["m"].get(k) else None
    notes = OrderedDict()
    for (conns, size) in sorted(shapes):
        by_impl = shapes[(conns, size)]
        base = by_impl.get("ioloop")
        w("**%s connection%s × %s B**\n" % (conns, "" if conns == 1 else "s",
                                             "{:,}".format(size)))
        w("| implementation | messages/s | min–max | ioloop/peer | p50 µs | p99 µs "
          "| server CPU ns/msg | min–max | ioloop/peer | busy | client CPU ns/msg |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for imp, e in by_impl.items():
            notes.setdefault(imp, e["note"])
            cells = [imp]
            for metric, _, _ in ECHO_COLUMNS:
                vals = e["m"].get(metric, [0.0])
                m = statistics.median(vals)
                ratio = "—"
                if base and imp != "ioloop" and med(base, metric) and m > 0:
                    ratio = "%.2f" % (med(base, metric) / m)
                cells += [fmt(m), "%s–%s" % (fmt(min(vals)), fmt(max(vals))), ratio]
                if metric == "msgs_per_s":
                    cells += [fmt(med(e, "p50_us") or 0), fmt(med(e, "p99_us") or 0)]
            cells += ["%.2f" % (med(e, "server_busy") or 0), fmt(med(e, "client_cpu_ns_per_msg") or 0)]
            w("| " + " | ".join(cells) + " |")
        w("")
    w("Implementations:\n")
    for imp, note in notes.items():
        w("- `%s`: %s" % (imp, note))
    w("")


# Syscall rows of the echo syscall table, in order: (label, syscall names).
SYSCALL_ROWS = [
    ("recvfrom (socket reads)", ["recvfrom", "recvmsg", "readv"]),
    ("sendto (socket writes)", ["sendto", "sendmsg", "writev"]),
    ("epoll_wait / epoll_pwait", ["epoll_wait", "epoll_pwait", "epoll_pwait2"]),
    ("epoll_ctl", ["epoll_ctl"]),
    ("timerfd_settime", ["timerfd_settime"]),
    ("read (eventfd)", ["read"]),
    ("write", ["write"]),
    ("poll / ppoll", ["poll", "ppoll"]),
]


def write_syscalls(w, lines):
    """The echo servers' syscalls per message, from strace_echo.sh."""
    if not lines:
        return
    # (tool, impl) -> (messages, {syscall: calls})
    counts = OrderedDict()
    for tool, imp, name, calls, msgs in lines:
        entry = counts.setdefault((tool, imp), (int(msgs), {}))
        entry[1][name] = entry[1].get(name, 0) + int(calls)
    cols = [k for k in [("perf", "ioloop"), ("perf", "floor"), ("strace", "ioloop"),
                        ("strace", "floor")] if k in counts]
    w("## Echo server syscalls per message (`strace_echo.sh`)\n")
    w("The server thread's syscalls per echoed message, 100 connections × 64 B, 1 s "
      "window, over the whole run (setup, warm-up and drain included) divided by every "
      "message the client completed. *strace*: `strace -f -ff` (one trace file per "
      "thread, so the client's calls are left out; `strace -c -f` would mix them in); "
      "exact calls, but tracing slows the run ~30×, so the traced server finds far fewer "
      "events per wait and its wait-related counts are inflated. *perf*: the same run "
      "untraced, with `perf stat -t` counting syscall tracepoints of the server thread "
      "in the kernel (nearly full speed): the realistic wait counts. "
      "`polling::Poller::wait` (under both ioloop and the floor) costs five syscalls per "
      "wait: timerfd_settime, epoll_ctl ×2 (re-arming the timer and the notifier), "
      "epoll_pwait, and a read of its eventfd.\n")
    w("| syscall | " + " | ".join("%s (%s)" % (imp, tool) for tool, imp in cols) + " |")
    w("|---|" + "---:|" * len(cols))
    named = set()
    for label, names in SYSCALL_ROWS:
        named.update(names)
        vals = [sum(counts[c][1].get(n, 0) for n in names) / counts[c][0] for c in cols]
        if any(v >= 0.0005 for v in vals):
            w("| %s | %s |" % (label, " | ".join("%.3f" % v for v in vals)))
    others = [sum(v for n, v in counts[c][1].items() if n not in named) / counts[c][0]
              for c in cols]
    w("| others (accept4, close, setsockopt, startup) | %s |" % " | ".join("%.3f" % v for v in others))
    totals = [sum(counts[c][1].values()) / counts[c][0] for c in cols]
    w("| **total** | %s |" % " | ".join("**%.3f**" % v for v in totals))
    w("| messages counted | %s |" % " | ".join("{:,}".format(counts[c][0]) for c in cols))
    w("")


def write_rate_table(w, impls, base, rate, cpu, header, errors=False):
    """One table of servers: the median rate with min–max, server CPU per operation, and
    both as ratios against `base` (ioloop's runs); `errors` adds the summed error count."""
    w(header)
    w("|---|---:|---:|---:|---:|---:|%s" % ("---:|" if errors else ""))

    def med(rs, k):
        return statistics.median([x["metrics"][k] for x in rs])
    for imp, rs in impls.items():
        rates = [x["metrics"][rate] for x in rs]
        per_op = med(rs, cpu)
        r1 = r2 = "—"
        if base is not None and rs is not base and statistics.median(rates):
            r1 = "%.2f" % (med(base, rate) / statistics.median(rates))
            r2 = "%.2f" % (med(base, cpu) / per_op) if per_op else "—"
        row = "| %s | %s | %s–%s | %s | %s | %s |" % (
            imp, fmt(statistics.median(rates)), fmt(min(rates)), fmt(max(rates)), r1,
            fmt(per_op), r2)
        if errors:
            row += " %d |" % sum(x["metrics"]["errors"] for x in rs)
        w(row)
    w("")


def write_http(w, runs):
    if not runs:
        return
    w("## HTTP plaintext and JSON under wrk (`bench/http.sh`)\n")
    w("`GET /plaintext` → `Hello, World!` (text/plain), keep-alive. Each server alone on core 0 "
      "(the two-thread mode on cores 0 and 1, sharing core 1 with wrk), wrk on core 1 with one "
      "thread; a 1 s warm-up per run, then the measured window; rounds interleave the servers. "
      "Pipelined = 16 requests per write (`bench/wrk/pipeline.lua`). Server CPU = utime+stime of "
      "the server process over the window / requests. ioloop: `Application` with one async route; "
      "hyper: hyper 1 `http1::Builder` with `pipeline_flush` on a tokio current_thread runtime; "
      "actix: actix-web 4's `HttpServer` with one worker (`workers(1)`) on its own runtime "
      "(actix-rt; its acceptor thread too, the whole process pinned to core 0), one route per "
      "path, plaintext and JSON only (not in the two-thread and HTTPS rows); "
      "Tornado: `RequestHandler` (bench/python/http_plain.py). HTTPS: the same servers behind "
      "TLS (ioloop's `HttpServer::set_tls`, hyper with tokio-rustls 0.26), rustls 0.23 on ring "
      "with one ECDSA P-256 certificate; wrk makes one TLS connection per connection. JSON: "
      "`GET /json` → `{\"message\":\"Hello, World!\"}` (application/json) serialized per request "
      "(TechEmpower's JSON test): ioloop's `Json<T>` (serde_json), hyper and actix-web with "
      "serde_json, "
      "Tornado's `self.write(dict)`. Ratio = "
      "ioloop / peer (req/s: above 1 is faster; CPU: below 1 is cheaper).\n")
    groups = OrderedDict()
    for r in runs:
        p = r["params"]
        groups.setdefault((p["threads"], p["mode"], p["conns"], p.get("tls", False),
                           p.get("path", "plaintext")),
                          OrderedDict()).setdefault(r["impl"], []).append(r)
    for (threads, mode, conns, tls, path), impls in groups.items():
        title = "%s%s%s, %d connections%s" % (
            "JSON, " if path == "json" else "", "HTTPS " if tls else "",
            "keep-alive" if mode == "keepalive" else "pipelined ×16",
            conns, ", two threads" if threads > 1 else "")
        w("**%s**\n" % title)
        base = None
        for imp, rs in impls.items():
            if imp.startswith("ioloop"):
                base = rs
        write_rate_table(
            w, impls, base, "req_per_s", "server_cpu_us_per_req",
            "| server | req/s | min–max | ioloop/peer | server CPU µs/req | ioloop/peer | errors |",
            errors=True)


def write_websocket(w, runs):
    if not runs:
        return
    w("## WebSocket (`bench/ws.sh`)\n")
    w("Each server alone on core 0, the load client (`ioloop-bench ws-load`, one level-triggered "
      "`polling` loop speaking masked client frames) on core 1; rounds interleave the servers, a "
      "quarter of the window warms up first. *echo*: 100 connections in ping-pong, each sending a "
      "binary message and waiting for its echo. *broadcast*: 1 000 members; one sends a 64 B "
      "message, and the next once all 1 000 received it (messages/s counts deliveries). Server CPU "
      "= utime+stime of the server process over exactly the measured window (read by the load "
      "client from /proc at its start and end), per message. `ioloop`: callback style "
      "(`WebSocketHandler`, `write_message`, `Broadcast`); `ioloop-async`: `recv().await` / "
      "`send().await`; `tungstenite`: tokio-tungstenite 0.28 on a tokio current_thread runtime, a "
      "task per connection, the room as an unbounded channel per member; `tornado`: "
      "`WebSocketHandler` (bench/python/ws_server.py). Ratio = ioloop / peer (messages/s: above 1 "
      "is faster; CPU: below 1 is cheaper). Idle memory: growth of the server's VmRSS with 1 000 "
      "connections held after one 64 B echo each, per connection, counted after one warm-up "
      "connection.\n")
    groups = OrderedDict()
    idle = []
    for r in runs:
        if r["workload"] == "websocket-idle":
            idle.append(r)
            continue
        p = r["params"]
        groups.setdefault((p["mode"], p["conns"], p["size"]), OrderedDict()).setdefault(
            r["impl"], []).append(r)
    for (mode, conns, size), impls in groups.items():
        w("**%s, %d connections × %s B**\n" % (mode, conns, "{:,}".format(size)))
        write_rate_table(
            w, impls, impls.get("ioloop"), "msgs_per_s", "server_cpu_us_per_msg",
            "| server | messages/s | min–max | ioloop/peer | server CPU µs/msg | ioloop/peer |")
    if idle:
        w("**memory per idle connection (1 000 connections)**\n")
        w("| server | bytes/connection |")
        w("|---|---:|")
        for r in idle:
            w("| %s | %s |" % (r["impl"], fmt(r["metrics"]["bytes_per_conn"])))
        w("")


def write_tls(w, runs):
    if not runs:
        return
    w("## TLS (`bench/tls.sh`)\n")
    w("Each server alone on core 0, the load client (`ioloop-bench tls-load`, one ioloop loop of "
      "rustls clients trusting the run's CA) on core 1; rounds interleave the servers, a quarter "
      "of the window warms up first. Both servers use rustls 0.23 on its ring provider with one "
      "ECDSA P-256 certificate. *echo*: 100 connections in ping-pong, each sending a message and "
      "waiting for its echo. *handshake*: 16 clients, each connecting, completing a TLS 1.3 "
      "handshake, exchanging one byte each way and closing, then again (rate = handshakes/s). "
      "Server CPU = utime+stime of the server process over exactly the measured window, per "
      "message or handshake. `ioloop`: `TcpServer::new_async` with a `TlsAcceptor`, a task per "
      "connection (`read_into` a 16 KiB buffer, `write_all`); `tokio-rustls`: tokio-rustls 0.26 "
      "on a tokio current_thread runtime, a task per connection (`read`, `write_all`). The load "
      "client does as much TLS work per message as the server, so rates may be bound by it; "
      "the CPU columns compare the servers. Ratio = ioloop / peer.\n")
    groups = OrderedDict()
    for r in runs:
        p = r["params"]
        groups.setdefault((p["mode"], p["conns"], p["size"]), OrderedDict()).setdefault(
            r["impl"], []).append(r)
    for (mode, conns, size), impls in groups.items():
        if mode == "handshake":
            w("**new handshakes, %d concurrent clients**\n" % conns)
            header = ("| server | handshakes/s | min–max | ioloop/peer | server CPU µs/handshake "
                      "| ioloop/peer |")
        else:
            w("**%s, %d connections × %s B**\n" % (mode, conns, "{:,}".format(size)))
            header = ("| server | messages/s | min–max | ioloop/peer | server CPU µs/msg "
                      "| ioloop/peer |")
        write_rate_table(w, impls, impls.get("ioloop"), "msgs_per_s", "server_cpu_us_per_msg",
                         header)


def write_http_client(w, runs):
    if not runs:
        return
    w("## HTTP clients (`bench/http_client.sh`)\n")
    w("Each client fetches `GET /plaintext` from one local server (hyper's, "
      "`ioloop-bench http-server hyper`, a fresh process per run, alone on core 0), the client "
      "on core 1; rounds interleave the clients. 10 000 requests one at a time (c=1) and "
      "10 000 requests 64 at a time (c=64). Client CPU = utime+stime of the client process "
      "over the run / requests. `ioloop`: `HttpClient` with `max_clients` = concurrency, one "
      "task per concurrent request fetching in a loop; `hyper`: hyper-util's legacy pooled "
      "`Client` on a tokio current_thread runtime, one local task per concurrent request; "
      "`tornado`: `AsyncHTTPClient(max_clients=c)` (the simple client, a new connection per "
      "request; 1 000 requests per run). Both Rust clients keep connections alive. Ratio = "
      "ioloop / peer.\n")
    groups = OrderedDict()
    for r in runs:
        groups.setdefault(r["params"]["concurrency"], OrderedDict()).setdefault(
            r["impl"], []).append(r)
    for concurrency, impls in groups.items():
        w("**%s**\n" % ("sequential (c=1)" if concurrency == 1 else
                         "%d concurrent" % concurrency))
        header = ("| client | requests/s | min–max | ioloop/peer | client CPU µs/req "
                  "| ioloop/peer |")
        write_rate_table(w, impls, impls.get("ioloop"), "req_per_s", "client_cpu_us_per_req",
                         header)


TIMING_DESC = (
    "How precisely an idle loop waits, measured on the wall clock, each run a process pinned "
    "to core 0 taking %s samples of each measurement. *run_once overshoot*: how much longer "
    "than asked a wait of d takes: `IoLoop::run_once(d)` on an idle loop (no source, no "
    "timer), `std::thread::sleep(d)`, `tokio::time::sleep(d).await` on a current_thread "
    "runtime. *Timer lateness*: how long after its deadline (now + d) a timer's callback "
    "runs: ioloop `add_timeout(deadline)` then `start()` (the callback stops the loop), "
    "`thread::sleep` to the deadline, tokio `sleep_until(deadline).await`. Medians and p99 "
    "of each run's samples; the table gives the median over the runs with their min–max. "
    "*early* = timers (over all runs) whose callback ran before their deadline: a timer "
    "must never fire early. The kernel's timer slack (50 µs by default) is part of every "
    "figure. `ioloop-ms` is ioloop with `epoll_pwait2` refused (ENOSYS, injected by "
    "`strace --seccomp-bpf`, which stops the process only at that one call): its fallback to "
    "`epoll_wait` in whole milliseconds rounded up, which is also how every wait behaved "
    "before ioloop used `epoll_pwait2`.")


def timing_section(runs, command, date, git):
    """The "Timing precision" section, as lines, from the `timing` runs (warm-ups left
    out by the caller)."""
    out = []
    w = out.append
    if not runs:
        return out
    w("## Timing precision (`bench/timing.sh`)\n")
    w(TIMING_DESC % ", ".join(sorted({"{:,}".format(r["n"]) for r in runs})))
    w("")
    w("Produced by `%s` on %s, ioloop at git %s.\n" % (command, date, git))
    groups = OrderedDict()
    for r in runs:
        groups.setdefault((r["params"]["wait_us"], r["impl"]), []).append(r["metrics"])
    for title, prefix in (("run_once overshoot", "overshoot"), ("timer lateness", "lateness")):
        w("**%s, µs past the wait or deadline**\n" % title)
        w("| d | implementation | runs | median | min–max | p99 | min–max |%s" %
          (" early |" if prefix == "lateness" else ""))
        w("|---:|---|---:|---:|---:|---:|---:|%s" % ("---:|" if prefix == "lateness" else ""))
        for (wait_us, imp), ms in groups.items():
            med = [m[prefix + "_median_us"] for m in ms]
            p99 = [m[prefix + "_p99_us"] for m in ms]
            row = "| %s | %s | %d | %s | %s–%s | %s | %s–%s |" % (
                "%d µs" % wait_us if wait_us < 1000 else "%g ms" % (wait_us / 1000.0), imp,
                len(ms), fmt(statistics.median(med)), fmt(min(med)), fmt(max(med)),
                fmt(statistics.median(p99)), fmt(min(p99)), fmt(max(p99)))
            if prefix == "lateness":
                row += " %d |" % sum(int(m.get("early", 0)) for m in ms)
            w(row)
        w("")
    return out


def splice_timing(results_path, md_path, command):
    """Replaces (or adds) the Timing precision section of `md_path` with one made from
    `results_path`, leaving the other sections as they are."""
    import datetime
    import subprocess
    runs = [json.loads(l) for l in open(results_path) if l.strip().startswith("{")]
    runs = [r for r in runs if r["workload"] == "timing" and r.get("round", 1) != 0]
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True, cwd=os.path.dirname(os.path.abspath(md_path))).stdout.strip()
    section = timing_section(runs, command, date, git or "?")
    lines = open(md_path).read().split("\n") if os.path.exists(md_path) else []
    start = next((i for i, l in enumerate(lines) if l.startswith("## Timing precision")), None)
    if start is None:
        start = next((i for i, l in enumerate(lines) if l.startswith("## TCP echo")), len(lines))
        end = start
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))
    new = lines[:start] + "\n".join(section).split("\n") + lines[end:]
    open(md_path, "w").write("\n".join(new))
def write_fanout(w, runs):
    """Redis clients and room fan-out (bench/fanout.sh)."""
    if not runs:
        return
    w("## Redis and room fan-out (`bench/fanout.sh`)\n")
    w("One `redis-server` (Debian's, no persistence) pinned to core 0 with the servers; "
      "every client on core 1; rounds interleave the implementations. *Redis client*: one "
      "connection, commands pipelined 16 deep (a batch written, then its replies read, as "
      "`redis-benchmark -P 16`), `SET`/`GET` of `key:__rand_int__` with a 3-byte value and "
      "`PUBLISH chan xxx`; `ioloop`: `RedisClient` (RESP3, replies decoded into `Value`s); "
      "`redis-rs`: the `redis` crate's multiplexed connection on tokio current_thread with "
      "`redis::pipe()`; `redis-benchmark`: `-c 1 -P 16` (the floor: C, replies not "
      "decoded into values). Client CPU = utime+stime of the client process / commands. "
      "*Room fan-out*: 1 000 WebSocket members (`ioloop-bench fanout-load`); one sends a "
      "64 B message and the next once all 1 000 have it; latency = from the send to each "
      "member's receipt. `one-process`: one `fanout-server` with a `Room` on one loop; "
      "`redis-2proc`: two `fanout-server --redis` processes, a `RedisRoom` each, 500 "
      "members on each, through the redis-server; `threads-2`: one process with "
      "`--threads 2`, a `Room` across two loops (both on core 0 here, so it shows the cost "
      "of the hand-over between loops, not a second core). Ratio = first row / this row.\n")
    client = OrderedDict()
    fan = OrderedDict()
    for r in runs:
        if r["workload"] == "redis-client":
            client.setdefault(r["params"]["op"], OrderedDict()).setdefault(
                r["impl"], []).append(r)
        else:
            fan.setdefault(r["impl"], []).append(r)
    for op, impls in client.items():
        w("**Redis client, `%s`, one connection, -P 16**\n" % op.upper())
        header = ("| client | commands/s | min–max | ioloop/peer | client CPU µs/cmd "
                  "| ioloop/peer |")
        write_rate_table(w, impls, impls.get("ioloop"), "ops_per_s", "client_cpu_us_per_op",
                         header)
    if fan:
        w("**Room fan-out, 1 000 members × 64 B**\n")
        w("| setup | deliveries/s | min–max | p50 latency µs | p99 latency µs | p99 min–max |")
        w("|---|---:|---:|---:|---:|---:|")
        for imp, rs in fan.items():
            rates = [x["metrics"]["deliveries_per_s"] for x in rs]
            p50 = [x["metrics"]["p50_us"] for x in rs]
            p99 = [x["metrics"]["p99_us"] for x in rs]
            w("| %s | %s | %s–%s | %s | %s | %s–%s |" % (
                imp, fmt(statistics.median(rates)), fmt(min(rates)), fmt(max(rates)),
                fmt(statistics.median(p50)), fmt(statistics.median(p99)), fmt(min(p99)),
                fmt(max(p99))))
        w("")


def write_reliability(w, path):
    rows = [json.loads(line) for line in open(path) if line.strip().startswith("{")]
    if not rows:
        return
    w("## Reliability under hostile peers (`bench/reliability.py`)\n")
    w("The examples as their users run them (release builds, each server a process pinned "
      "to core 0, the hostile client on core 1), measured from outside: memory is the "
      "growth of the server's resident set (VmRSS), descriptors are counted in "
      "/proc/PID/fd. One run per figure except the timer batch (median of 3). `idle`: "
      "connections that did one round trip and wait; `partial line`: connections that "
      "sent one byte of a line and stopped; `flood`: a client that sends lines and never "
      "reads what comes back (echo: until the server stops taking them or 1 GiB; chat: "
      "one member reads nothing while another says 64 MiB quick, 256 MiB full); "
      "`slowloris`: 2000 connections trickling one byte every 500 ms, with a normal "
      "client's round trip measured meanwhile (the chat's includes broadcasting to the "
      "2000 trickling members); `descriptors`: connect/close cycles, half closed with a "
      "reset (SO_LINGER 0).\n")
    w("| measurement | server | value | details |")
    w("|---|---|---:|---|")
    for r in rows:
        details = ", ".join("%s %s" % (k.replace("_", " "), v) for k, v in r.items()
                            if k not in ("measurement", "server", "value", "unit"))
        w("| %s | %s | %s %s | %s |" % (r["measurement"], r["server"], fmt(r["value"]),
                                        r["unit"], details))
    w("")


def main():
    if sys.argv[1:2] == ["--timing-section"]:
        splice_timing(*sys.argv[2:5])
        return
    if sys.argv[1:2] == ["--fanout-section"]:
        # The fan-out section alone, from bench/fanout.sh's results (printed).
        runs = [json.loads(line) for line in open(sys.argv[2]) if line.strip().startswith("{")]
        out = []
        write_fanout(out.append, [r for r in runs if r.get("round", 1) != 0])
        print("\n".join(out))
        return
    results_path, machine_path, out_path = sys.argv[1:4]
    callgrind_path = sys.argv[4] if len(sys.argv) > 4 else None
    strace_path = sys.argv[5] if len(sys.argv) > 5 else None
    reliability_path = sys.argv[6] if len(sys.argv) > 6 else None
    machine = json.load(open(machine_path))
    runs = [json.loads(line) for line in open(results_path) if line.strip().startswith("{")]

    # (workload, impl) -> {"n", "note", metric -> [values]}, in first-seen order.
    table = OrderedDict()
    echo_runs = []
    http_runs = []
    ws_runs = []
    tls_runs = []
    client_runs = []
    timing_runs = []
    fanout_runs = []
    skipped = machine.get("skipped", [])
    for r in runs:
        if r.get("round", 1) == 0:
            continue
        if r["workload"] == "echo":
            echo_runs.append(r)
            continue
        if r["workload"] == "http":
            http_runs.append(r)
            continue
        if r["workload"] in ("websocket", "websocket-idle"):
            ws_runs.append(r)
            continue
        if r["workload"] == "tls":
            tls_runs.append(r)
            continue
        if r["workload"] == "http-client":
            client_runs.append(r)
            continue
        if r["workload"] == "timing":
            timing_runs.append(r)
            continue
        if r["workload"] in ("redis-client", "fanout"):
            fanout_runs.append(r)
            continue
        key = (r["workload"], r["impl"])
        entry = table.setdefault(key, {"n": r["n"], "note": r["note"], "m": {},
                                       "params": r.get("params", {})})
        for k, v in r["metrics"].items():
            entry["m"].setdefault(k, []).append(float(v))

    out = []
    w = out.append
    w("# ioloop benchmarks\n")
    w("Generated by `bench/run.sh`; do not edit by hand (re-run it). "
      "Each number is the median of %s interleaved runs (one warm-up run per "
      "implementation first, discarded; `echo` warms up within each run instead, and "
      "`idle` differs, see its section), with the min–max of those runs. Each run is a "
      "separate process pinned with `taskset -c 0`; helper threads (worker, producer, "
      "echo load client) pin themselves to core 1.\n" % machine["runs"])
    w("- Date: %s" % machine["date"])
    w("- Command: `%s`%s" % (machine["command"], " (quick mode: smaller n, see each table)"
                              if machine.get("quick") else ""))
    w("- Machine: %s, %s logical CPUs, %s" % (machine["cpu"], machine["nproc"], machine["kernel"]))
    w("- Toolchain: %s; ioloop at git %s" % (machine["rustc"], machine["git"]))
    w("- Ratio column: ioloop's median / the peer's median (against the ioloop row of the "
      "peer's own n where there is one, such as `ioloop-20k` for calloop's timer storm); "
      "below 1 means ioloop is faster or smaller, except for callbacks/s and messages/s, "
      "where above 1 means ioloop is faster.")
    if skipped:
        w("- Skipped: " + "; ".join(skipped))
    w("")
    w("Figures from a 2-vCPU VM: compare rows within one table, not with other machines. "
      "Floors are hand-written minimal implementations of the same job, not competitors.\n")

    for wl, (title, desc, metrics) in WORKLOADS.items():
        rows = [(imp, e) for (w_, imp), e in table.items() if w_ == wl]
        if not rows:
            continue
        w("## %s (`%s`)\n" % (title, wl))
        if wl == "idle":
            desc = desc % ", ".join(sorted({"%s ms" % e["params"].get("ms") for _, e in rows}))
        w(desc + "\n")
        # Each peer is compared with the ioloop row of its own n when there is one
        # (`ioloop-20k` for calloop's smaller timer storm), else with `ioloop`.
        ioloop_rows = [e for imp, e in rows if re.fullmatch(r"ioloop(-\d+k)?", imp)]
        default_base = dict(rows).get("ioloop")

        def base_for(entry):
            same_n = [e for e in ioloop_rows if e["n"] == entry["n"]]
            return same_n[0] if same_n else default_base

        for metric, label, higher in metrics:
            w("**%s**\n" % label)
            w("| implementation | n | median | min–max | ioloop/peer |")
            w("|---|---:|---:|---:|---:|")
            for imp, e in rows:
                vals = e["m"].get(metric)
                if not vals:
                    continue
                med = statistics.median(vals)
                ratio = "—"
                base = base_for(e)
                if base and base is not e and metric in base["m"] and med > 0:
                    ratio = "%.2f" % (statistics.median(base["m"][metric]) / med)
                w("| %s | %s | %s | %s–%s | %s |" % (
                    imp, "{:,}".format(e["n"]), fmt(med), fmt(min(vals)), fmt(max(vals)), ratio))
            w("")
        w("Implementations:\n")
        for imp, e in rows:
            w("- `%s`: %s" % (imp, e["note"]))
        w("")

    for line in timing_section(timing_runs, machine["command"], machine["date"],
                               machine["git"]):
        w(line)
    write_echo(w, echo_runs)
    write_http(w, http_runs)
    write_websocket(w, ws_runs)
    write_tls(w, tls_runs)
    write_http_client(w, client_runs)
    write_fanout(w, fanout_runs)
    if reliability_path and os.path.exists(reliability_path):
        write_reliability(w, reliability_path)
    if strace_path:
        write_syscalls(w, [l.rstrip("\n").split("\t") for l in open(strace_path) if l.strip()])

    if callgrind_path:
        lines = [l.split("\t") for l in open(callgrind_path) if l.strip()]
        if lines:
            w("## Instructions per operation (callgrind)\n")
            w("`valgrind --tool=callgrind` instruction counts (Ir) of two runs with different "
              "n, differenced so that setup cancels out: (Ir(n2) − Ir(n1)) / (n2 − n1). For "
              "`timers` one operation is one timer's add, plus half a cancel and half a fire "
              "on average; for `spawn` and `spawn-await`, one task spawned and completed.\n")
            w("| workload | implementation | n1 → n2 | Ir per op | ioloop/peer |")
            w("|---|---|---:|---:|---:|")
            per = {}
            for wl, imp, n1, n2, i1, i2 in lines:
                per[(wl, imp)] = (int(n1), int(n2), (int(i2) - int(i1)) / (int(n2) - int(n1)))
            for (wl, imp), (n1, n2, ir) in per.items():
                base = per.get((wl, "ioloop"))
                ratio = "%.2f" % (base[2] / ir) if base and imp != "ioloop" and ir > 0 else "—"
                w("| %s | %s | %s → %s | %.0f | %s |" % (
                    wl, imp, "{:,}".format(n1), "{:,}".format(n2), ir, ratio))
            w("")

    open(out_path, "w").write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
