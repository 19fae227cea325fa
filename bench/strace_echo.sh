#!/usr/bin/env bash
# Counts the syscalls of the ioloop and floor echo servers per echoed message at 100
# connections x 64 B, two ways. run.sh calls it (both modes); by hand:
#
#   bench/strace_echo.sh [BIN [OUT.tsv]]
#
# strace: each server runs once as `strace -f -ff -o DIR/t taskset -c 0 ioloop-bench echo
# IMPL --conns 100 --size 64 --ms 1000` (server on core 0, load client on core 1, as in
# run.sh). `strace -c -f` would add the client's calls to the server's, so -ff writes one
# file per thread instead and only the server thread's file is counted (the main thread:
# the one whose file holds the execve). Every call is exact, but strace stops the traced
# threads at each call (the run goes ~30x slower), so a traced server finds far fewer
# events per epoll_wait than an untraced one: its wait counts per message are inflated.
#
# perf stat: the same run untraced, with `perf stat -t` attached to the server thread
# during the client's --delay-ms (nothing has connected yet), counting syscall
# tracepoints in the kernel: the run keeps (nearly) its normal speed, so the wait counts
# are the real ones. Skipped when perf is missing or not allowed.
#
# Syscalls per message = the server thread's calls over the whole run (setup, warm-up
# and drain included) / every message the client completed. OUT.tsv gets one line per
# (tool, impl, syscall): tool, impl, syscall, calls, messages; without OUT.tsv, a table
# goes to stdout.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
BIN="${1:-}"
OUT="${2:-}"
if [ -z "$BIN" ]; then
    (cd "$BENCH_DIR" && cargo build --release --quiet)
    BIN="$ROOT/target/release/ioloop-bench"
fi
if ! command -v strace > /dev/null; then
    echo "strace_echo.sh: strace not found" >&2
    exit 1
fi
if [ "$(nproc)" -ge 2 ]; then
    PIN=(taskset -c 0)
    WORKER_CPU=1
else
    PIN=()
    WORKER_CPU=none
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
TSV="$TMP/counts.tsv"
: > "$TSV"
COUNTED=(read recvfrom write sendto epoll_wait epoll_pwait epoll_ctl timerfd_settime ppoll poll
         accept4)
EVENTS=raw_syscalls:sys_enter
for name in "${COUNTED[@]}"; do EVENTS+=",syscalls:sys_enter_$name"; done
for impl in ${STRACE_IMPLS:-ioloop floor}; do
    mkdir "$TMP/$impl"
    line="$(strace -f -ff -o "$TMP/$impl/t" "${PIN[@]}" "$BIN" echo "$impl" \
        --conns 100 --size 64 --ms 1000 --worker-cpu "$WORKER_CPU")"
    echo "  strace echo 100x64 $impl: $line" >&2
    python3 - "$impl" "$line" "$TMP/$impl" >> "$TSV" <<'PY'
import collections, json, os, re, sys
impl, line, trace_dir = sys.argv[1:]
messages = int(json.loads(line)["metrics"]["total_msgs"])
files = [os.path.join(trace_dir, f) for f in os.listdir(trace_dir)]
# The server runs on the main thread: the one that exec'd the binary.
server = [f for f in files if any(l.startswith("execve(") for l in open(f, errors="replace"))]
if len(server) != 1:
    sys.exit("strace_echo.sh: cannot tell the server thread's trace apart")
calls = collections.Counter()
for l in open(server[0], errors="replace"):
    m = re.match(r"([a-z_0-9]+)\(", l)
    if m:
        calls[m.group(1)] += 1
for name, count in calls.most_common():
    print("strace\t%s\t%s\t%d\t%d" % (impl, name, count, messages))
PY

    if ! command -v perf > /dev/null; then
        continue
    fi
    "${PIN[@]}" "$BIN" echo "$impl" --conns 100 --size 64 --ms 1000 --delay-ms 500 \
        --worker-cpu "$WORKER_CPU" > "$TMP/$impl.json" &
    pid=$!
    sleep 0.2
    if ! perf stat -x, -e "$EVENTS" -t "$pid" -o "$TMP/$impl.perf" 2> "$TMP/$impl.err"; then
        echo "  perf stat failed ($(head -1 "$TMP/$impl.err")): no untraced counts" >&2
        wait "$pid" || true
        continue
    fi
    wait "$pid"
    echo "  perf stat echo 100x64 $impl: $(cat "$TMP/$impl.json")" >&2
    python3 - "$impl" "$TMP/$impl.json" "$TMP/$impl.perf" >> "$TSV" <<'PY'
import json, sys
impl, result, counts = sys.argv[1:]
messages = int(json.load(open(result))["metrics"]["total_msgs"])
total, named = 0, {}
for l in open(counts):
    f = l.strip().split(",")
    if len(f) < 3 or not f[0].isdigit():
        continue
    if f[2] == "raw_syscalls:sys_enter":
        total = int(f[0])
    elif int(f[0]) > 0:
        named[f[2].replace("syscalls:sys_enter_", "")] = int(f[0])
named["(others)"] = total - sum(named.values())
for name, count in sorted(named.items(), key=lambda kv: -kv[1]):
    print("perf\t%s\t%s\t%d\t%d" % (impl, name, count, messages))
PY
done

if [ -n "$OUT" ]; then
    cp "$TSV" "$OUT"
else
    python3 - "$TSV" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
for tool, impl, name, calls, msgs in rows:
    per = int(calls) / int(msgs)
    if per >= 0.001:
        print("%-6s %-8s %-20s %8.3f per message" % (tool, impl, name, per))
PY
fi
