#!/usr/bin/env python3
"""Aggregates ioloop-bench JSON lines into BENCHMARKS.md.

usage: aggregate.py RESULTS.jsonl MACHINE.json OUT.md [CALLGRIND.tsv]

RESULTS.jsonl: one JSON object per run, {"workload", "impl", "n", "metrics", "note",
"round"}; round 0 is the warm-up and is left out. MACHINE.json: machine facts and the
command. CALLGRIND.tsv: workload, impl, n1, n2, Ir(n1), Ir(n2) per line (optional).
"""

import json
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
    ("wake-rtt", ("Cross-thread task wake round trip, loop idle",
                  "A worker on core 1 sends a sequence number over an `async-channel` to a "
                  "task awaiting `recv()` on the loop; the task stores it in an atomic and "
                  "the worker spins until it sees it, then pauses 20 µs so that the loop "
                  "thread is asleep in its poller again (as in `rtt`). Measures the waker's "
                  "cross-thread path: wake, loop wakeup, task poll. Latency in µs.",
                  [("median_us", "median RTT, µs", False), ("p99_us", "p99 RTT, µs", False)])),
])


def fmt(v):
    if v >= 1e6:
        return "%.2f M" % (v / 1e6)
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    return "%.2f" % v


def main():
    results_path, machine_path, out_path = sys.argv[1:4]
    callgrind_path = sys.argv[4] if len(sys.argv) > 4 else None
    machine = json.load(open(machine_path))
    runs = [json.loads(line) for line in open(results_path) if line.strip().startswith("{")]

    # (workload, impl) -> {"n", "note", metric -> [values]}, in first-seen order.
    table = OrderedDict()
    skipped = machine.get("skipped", [])
    for r in runs:
        if r.get("round", 1) == 0:
            continue
        key = (r["workload"], r["impl"])
        entry = table.setdefault(key, {"n": r["n"], "note": r["note"], "m": {}})
        for k, v in r["metrics"].items():
            entry["m"].setdefault(k, []).append(float(v))

    out = []
    w = out.append
    w("# ioloop benchmarks\n")
    w("Generated by `bench/run.sh`; do not edit by hand (re-run it). "
      "Each number is the median of %s interleaved runs (one warm-up run per "
      "implementation first, discarded), with the min–max of those runs. Each run is a "
      "separate process pinned with `taskset -c 0`; helper threads (worker, producer) "
      "pin themselves to core 1.\n" % machine["runs"])
    w("- Date: %s" % machine["date"])
    w("- Command: `%s`%s" % (machine["command"], " (quick mode: smaller n, see each table)"
                              if machine.get("quick") else ""))
    w("- Machine: %s, %s logical CPUs, %s" % (machine["cpu"], machine["nproc"], machine["kernel"]))
    w("- Toolchain: %s; ioloop at git %s" % (machine["rustc"], machine["git"]))
    w("- Ratio column: ioloop's median / the peer's median; below 1 means ioloop is faster "
      "or smaller, except for callbacks/s, where above 1 means ioloop is faster.")
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
        w(desc + "\n")
        base = dict(rows).get("ioloop")
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
                if base and imp != "ioloop" and metric in base["m"] and med > 0:
                    ratio = "%.2f" % (statistics.median(base["m"][metric]) / med)
                w("| %s | %s | %s | %s–%s | %s |" % (
                    imp, "{:,}".format(e["n"]), fmt(med), fmt(min(vals)), fmt(max(vals)), ratio))
            w("")
        w("Implementations:\n")
        for imp, e in rows:
            w("- `%s`: %s" % (imp, e["note"]))
        w("")

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
