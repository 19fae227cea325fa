#!/usr/bin/env bash
# Timing precision of an idle loop: how much longer than asked a wait takes (`run_once(d)`
# overshoot) and how late a timer's callback runs after its deadline, for ioloop,
# `std::thread::sleep` and tokio's `sleep` on a current_thread runtime, at d = 400 µs and
# 1 ms, and ioloop's millisecond fallback (`ioloop-ms`, under strace, see below).
# run.sh calls it; by hand (then it builds, and writes the "Timing precision" section of
# ../BENCHMARKS.md in place, leaving the other sections alone):
#
#   bench/timing.sh [--quick]                # build, run, update BENCHMARKS.md
#   bench/timing.sh [--quick] BIN OUT.jsonl  # run only, appending JSON lines to OUT
#
# Each run is one process pinned to core 0 with taskset, taking 2000 samples of each
# measurement (500 with --quick); one warm-up round, then 5 interleaved rounds (3 with
# --quick): ioloop std tokio ioloop-ms ioloop std tokio ioloop-ms ...
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
QUICK=0
if [ "${1:-}" = --quick ]; then QUICK=1; shift; fi
if [ "$QUICK" = 1 ]; then
    ROUNDS=3 SAMPLES=500 COMMAND="bench/timing.sh --quick"
else
    ROUNDS=5 SAMPLES=2000 COMMAND="bench/timing.sh"
fi

STANDALONE=0
if [ $# -eq 0 ]; then
    STANDALONE=1
    echo "== building (release)" >&2
    (cd "$BENCH_DIR" && cargo build --release --quiet)
    BIN="$ROOT/target/release/ioloop-bench"
    mkdir -p "$BENCH_DIR/results"
    OUT="$BENCH_DIR/results/$(date -u +%Y%m%dT%H%M%SZ).timing.jsonl"
    : > "$OUT"
else
    BIN="$1"
    OUT="$2"
fi

if [ "$(nproc)" -ge 2 ] && command -v taskset > /dev/null; then PIN=(taskset -c 0); else PIN=(); fi
IMPLS=(ioloop std tokio)
# ioloop's millisecond fallback (the waits of older kernels, and of ioloop before it used
# epoll_pwait2): strace refuses epoll_pwait2 with ENOSYS. With --seccomp-bpf only that
# call stops the process (once: the loop then keeps to epoll_wait), so strace costs the
# other waits nothing.
STRACE_FALLBACK=(strace -f --seccomp-bpf -e trace=epoll_pwait2 -e inject=epoll_pwait2:error=ENOSYS -o /dev/null)
if command -v strace > /dev/null && "${STRACE_FALLBACK[@]}" true 2> /dev/null; then
    IMPLS+=(ioloop-ms)
else
    echo "!! strace cannot inject faults here: no ioloop-ms rows" >&2
fi

for wait_us in 400 1000; do
    echo "== timing d=${wait_us}µs: ${IMPLS[*]} (1 warm-up + $ROUNDS rounds of $SAMPLES samples)" >&2
    for round in $(seq 0 "$ROUNDS"); do
        for impl in "${IMPLS[@]}"; do
            if [ "$impl" = ioloop-ms ]; then TRACE=("${STRACE_FALLBACK[@]}"); else TRACE=(); fi
            line="$("${PIN[@]+"${PIN[@]}"}" "${TRACE[@]+"${TRACE[@]}"}" "$BIN" timing "$impl" --n "$SAMPLES" --wait-us "$wait_us")"
            echo "  round $round timing d=${wait_us}µs $impl: $line" >&2
            python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r["round"]=int(sys.argv[2]); print(json.dumps(r))' \
                "$line" "$round" >> "$OUT"
        done
    done
done

if [ "$STANDALONE" = 1 ]; then
    python3 "$BENCH_DIR/aggregate.py" --timing-section "$OUT" "$ROOT/BENCHMARKS.md" "$COMMAND"
    echo "== wrote the Timing precision section of $ROOT/BENCHMARKS.md (raw results in $OUT)" >&2
fi
