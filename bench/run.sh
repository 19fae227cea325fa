#!/usr/bin/env bash
# Runs the ioloop benchmark suite and writes ../BENCHMARKS.md.
#
#   bench/run.sh [--quick] [--no-callgrind] [--no-python] [--no-strace] [--no-reliability] [--no-http] [--no-ws] [--no-tls] [--no-client] [--no-timing] [--no-fanout]
#
# Full mode (5 interleaved runs, full sizes, echo at 1/100/1000 connections x 64 B/4 KiB)
# takes about 20 minutes on 2 vCPUs; --quick (3 runs, smaller n, echo at 100
# connections x 64 B only, 0.25 s windows, idle at 500 connections for 0.2 s) under 2
# minutes once built.
# Builds in release mode, pins each run to core 0 with taskset (the benchmark pins its
# worker/producer/load-client thread to core 1), runs one warm-up then N interleaved
# rounds (A B C A B C ...) per workload, counts the echo servers' syscalls under strace
# (strace_echo.sh), measures how precisely idle loops wait (timing.sh, about 2 minutes),
# measures the examples under hostile peers (reliability.py, about a minute; 45 s
# quick), and aggregates medians and min-max with aggregate.py.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
cd "$BENCH_DIR"

QUICK=0
CALLGRIND=1
PYTHON=1
STRACE=1
RELIABILITY=1
HTTP=1
WS=1
TLS=1
CLIENT=1
TIMING=1
FANOUT=1
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        --no-callgrind) CALLGRIND=0 ;;
        --no-python) PYTHON=0 ;;
        --no-strace) STRACE=0 ;;
        --no-reliability) RELIABILITY=0 ;;
        --no-http) HTTP=0 ;;
        --no-ws) WS=0 ;;
        --no-tls) TLS=0 ;;
        --no-client) CLIENT=0 ;;
        --no-timing) TIMING=0 ;;
        --no-fanout) FANOUT=0 ;;
        -h|--help) sed -n '2,15p' "$BENCH_DIR/run.sh"; exit 0 ;;
        *) echo "unknown argument: $arg" >&2; exit 2 ;;
    esac
done
COMMAND="bench/run.sh${*:+ $*}"

if [ "$QUICK" = 1 ]; then RUNS=3; else RUNS=5; fi

echo "== building (release)" >&2
cargo build --release --quiet
BIN="$ROOT/target/release/ioloop-bench"

NPROC="$(nproc)"
if [ "$NPROC" -ge 2 ]; then
    PIN=(taskset -c 0)
    WORKER_CPU=1
else
    PIN=()
    WORKER_CPU=none
fi

mkdir -p results
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
RESULTS="results/$STAMP.jsonl"
CALLGRIND_TSV="results/$STAMP.callgrind.tsv"
STRACE_TSV="results/$STAMP.strace.tsv"
MACHINE="results/$STAMP.machine.json"
RELIABILITY_JSONL="results/$STAMP.reliability.jsonl"
: > "$RESULTS"
SKIPPED=()

# n for a (workload, impl) pair in this mode; empty = the binary's default.
size() {
    local workload=$1 impl=$2
    case "$workload:$impl:$QUICK" in
        timers:calloop:*|timers:ioloop-20k:*) echo 20000 ;;  # calloop cancel is O(pending)
        timers:tornado:1|timers:asyncio:1) echo 50000 ;;
        timers:*:1) echo 200000 ;;
        timers:*) echo 1000000 ;;
        chained:calloop:1) echo 100000 ;;        # one epoll_wait + 3 syscalls per callback
        chained:calloop:0) echo 1000000 ;;
        chained:*:1|batch:*:1) echo 1000000 ;;
        chained:*:0|batch:*:0) echo 10000000 ;;
        rtt:*:1|rtt-b2b:*:1) echo 3000 ;;
        rtt:*:0|rtt-b2b:*:0) echo 100000 ;;
        post:*:1) echo 300000 ;;
        post:*) echo 1000000 ;;
        spawn:*|spawn-await:*) echo 1000000 ;;
        wake-rtt:*:1) echo 3000 ;;
        wake-rtt:*:0) echo 50000 ;;
        echo:*:1) echo 250 ;;                   # echo: the measured window in ms
        echo:*:0) echo 1000 ;;
        idle:*) echo "$IDLE_CONNS" ;;          # idle: connections held
    esac
}

# echo's (connections, message size) combinations in this mode.
if [ "$QUICK" = 1 ]; then
    ECHO_SHAPES=("100 64")
else
    ECHO_SHAPES=("1 64" "1 4096" "100 64" "100 4096" "1000 64" "1000 4096")
fi

# idle: connections and how long they are held (ms). Each side of a connection is a file
# descriptor (server and client are separate processes): raise the soft limit to the hard
# one, and hold fewer connections if even that is too low.
if [ "$QUICK" = 1 ]; then IDLE_CONNS=500 IDLE_MS=200; else IDLE_CONNS=10000 IDLE_MS=10000; fi
ulimit -n "$(ulimit -Hn)" 2> /dev/null || true
FD_LIMIT="$(ulimit -n)"
if [ "$FD_LIMIT" != unlimited ] && [ "$FD_LIMIT" -lt $((IDLE_CONNS + 200)) ]; then
    IDLE_CONNS=$((FD_LIMIT - 200))
    SKIPPED+=("idle: only $IDLE_CONNS connections (open-file limit $FD_LIMIT)")
fi

# run_one ROUND WORKLOAD IMPL [CONNS SIZE]: the last two for echo only.
run_one() {
    local round=$1 workload=$2 impl=$3 n line
    n="$(size "$workload" "$impl")"
    case "$workload:$impl" in
        # echo and idle: the Python servers too (the binary runs python/echo.py as its
        # child).
        echo:*)
            line="$("${PIN[@]}" "$BIN" echo "$impl" --conns "$4" --size "$5" --ms "$n" \
                --worker-cpu "$WORKER_CPU")" ;;
        idle:*)
            line="$("${PIN[@]}" "$BIN" idle "$impl" --conns "$n" --size 64 --ms "$IDLE_MS" \
                --worker-cpu "$WORKER_CPU")" ;;
        *:tornado|*:asyncio)
            line="$("${PIN[@]}" "$BENCH_DIR/.venv/bin/python" python/timers.py "$impl" "$n")" ;;
        *)
            line="$("${PIN[@]}" "$BIN" "$workload" "$impl" --n "$n" --worker-cpu "$WORKER_CPU")" ;;
    esac
    echo "  round $round $workload${4:+ $4x$5} $impl: $line" >&2
    python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r["round"]=int(sys.argv[2]); print(json.dumps(r))' \
        "$line" "$round" >> "$RESULTS"
}

# Python peers: PY_IMPLS for timers (python/timers.py), PY_ECHO_IMPLS for echo
# (python/echo.py, run by the binary). uvloop is only an echo peer, and only its own.
PY_IMPLS=()
PY_ECHO_IMPLS=()
if [ "$PYTHON" = 1 ]; then
    if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import tornado' 2>/dev/null; then
        echo "== creating bench/.venv with tornado" >&2
        if ! { python3 -m venv .venv && .venv/bin/pip install --quiet tornado; } >&2; then
            echo "!! pip install tornado failed: skipping the Python peers" >&2
            SKIPPED+=("Python peers (tornado/asyncio/uvloop): venv or pip install failed")
        fi
    fi
    if .venv/bin/python -c 'import tornado' 2>/dev/null; then
        PY_IMPLS=(tornado asyncio)
        PY_ECHO_IMPLS=(tornado asyncio)
        if ! .venv/bin/python -c 'import uvloop' 2>/dev/null; then
            echo "== installing uvloop in bench/.venv" >&2
            if ! .venv/bin/pip install --quiet uvloop >&2; then
                echo "!! pip install uvloop failed: skipping the uvloop echo peer" >&2
            fi
        fi
        if .venv/bin/python -c 'import uvloop' 2>/dev/null; then
            PY_ECHO_IMPLS+=(uvloop)
        else
            SKIPPED+=("uvloop echo peer: pip install uvloop failed")
        fi
    fi
else
    SKIPPED+=("Python peers (tornado/asyncio/uvloop): --no-python")
fi

while IFS=$'\t' read -r workload impls; do
    read -r -a list <<< "$impls"
    if [ "$workload" = timers ]; then list+=("${PY_IMPLS[@]+"${PY_IMPLS[@]}"}"); fi
    case "$workload" in
        echo|idle) list+=("${PY_ECHO_IMPLS[@]+"${PY_ECHO_IMPLS[@]}"}") ;;
    esac
    all=("${list[@]}")
    if [ "$workload" = echo ]; then shapes=("${ECHO_SHAPES[@]}"); else shapes=(""); fi
    for shape in "${shapes[@]}"; do
        read -r -a params <<< "$shape"
        # The Python echo servers only at 100 connections (the time budget).
        list=()
        for impl in "${all[@]}"; do
            case "$workload:$impl:${params[0]:-}" in
                echo:tornado:100|echo:asyncio:100|echo:uvloop:100) list+=("$impl") ;;
                echo:tornado:*|echo:asyncio:*|echo:uvloop:*) ;;
                *) list+=("$impl") ;;
            esac
        done
        # echo warms up inside each run (a quarter of its window): no warm-up round.
        # idle measures counts (bytes, wakeups), not times, and they do not vary between
        # runs: no warm-up round, and in full mode 2 rounds of 10 s, to stay within the
        # time budget.
        case "$workload" in
            echo) first=1 rounds=$RUNS ;;
            idle) first=1 rounds=$((QUICK ? RUNS : 2)) ;;
            *) first=0 rounds=$RUNS ;;
        esac
        echo "== [${SECONDS}s] $workload${shape:+ $shape}: ${list[*]} ($((1 - first)) warm-up + $rounds rounds)" >&2
        for round in $(seq "$first" "$rounds"); do
            for impl in "${list[@]}"; do
                run_one "$round" "$workload" "$impl" "${params[@]+"${params[@]}"}"
            done
        done
    done
done < <("$BIN" list)

if [ "$TIMING" = 1 ]; then
    echo "== [${SECONDS}s] timing precision: ioloop, std::thread::sleep, tokio (timing.sh)" >&2
    TIMING_ARGS=()
    if [ "$QUICK" = 1 ]; then TIMING_ARGS+=(--quick); fi
    if ! "$BENCH_DIR/timing.sh" "${TIMING_ARGS[@]+"${TIMING_ARGS[@]}"}" "$BIN" "$RESULTS"; then
        SKIPPED+=("timing precision: timing.sh failed")
    fi
else
    SKIPPED+=("timing precision: --no-timing")
fi

: > "$STRACE_TSV"
if [ "$STRACE" = 1 ] && command -v strace > /dev/null; then
    echo "== [${SECONDS}s] strace: echo servers' syscalls per message" >&2
    if ! "$BENCH_DIR/strace_echo.sh" "$BIN" "$STRACE_TSV"; then
        : > "$STRACE_TSV"
        SKIPPED+=("strace syscall counts: strace_echo.sh failed")
    fi
elif [ "$STRACE" = 1 ]; then
    SKIPPED+=("strace syscall counts: strace not found")
else
    SKIPPED+=("strace syscall counts: --no-strace")
fi

: > "$CALLGRIND_TSV"
if [ "$CALLGRIND" = 1 ] && command -v valgrind > /dev/null; then
    echo "== [${SECONDS}s] callgrind instruction counts" >&2
    ir() {
        valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" "$@" 2>&1 >/dev/null \
            | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
    }
    for spec in "chained 10000 20000" "batch 10000 20000" "timers 10000 20000" \
                "spawn 10000 20000" "spawn-await 10000 20000"; do
        read -r workload n1 n2 <<< "$spec"
        case "$workload" in
            # calloop's timer cancel is O(pending): its Ir per op would only measure n.
            timers) impls=(ioloop floor tokio) ;;
            # Tasks: calloop has no executor of its own; spawn-await has no floor.
            spawn) impls=(ioloop floor tokio async-task) ;;
            spawn-await) impls=(ioloop tokio async-task) ;;
            *) impls=(ioloop floor tokio calloop) ;;
        esac
        for impl in "${impls[@]}"; do
            i1="$(ir "$workload" "$impl" --n "$n1")"
            i2="$(ir "$workload" "$impl" --n "$n2")"
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$workload" "$impl" "$n1" "$n2" "$i1" "$i2" >> "$CALLGRIND_TSV"
            echo "  $workload $impl: $i1 -> $i2" >&2
        done
    done
elif [ "$CALLGRIND" = 1 ]; then
    SKIPPED+=("callgrind: valgrind not found")
fi

if [ "$HTTP" = 1 ]; then
    echo "== [${SECONDS}s] http: wrk against ioloop, hyper, tornado (http.sh)" >&2
    HTTP_ARGS=()
    if [ "$QUICK" = 1 ]; then HTTP_ARGS+=(--quick); fi
    set +e
    "$BENCH_DIR/http.sh" "${HTTP_ARGS[@]+"${HTTP_ARGS[@]}"}" "$BIN" "$RESULTS"
    status=$?
    set -e
    if [ "$status" = 3 ]; then SKIPPED+=("http: wrk not found"); elif [ "$status" != 0 ]; then SKIPPED+=("http: http.sh failed"); fi
else
    SKIPPED+=("http: --no-http")
fi

if [ "$WS" = 1 ]; then
    echo "== [${SECONDS}s] websocket: ioloop, tokio-tungstenite, tornado (ws.sh)" >&2
    WS_ARGS=()
    if [ "$QUICK" = 1 ]; then WS_ARGS+=(--quick); fi
    if ! "$BENCH_DIR/ws.sh" "${WS_ARGS[@]+"${WS_ARGS[@]}"}" "$BIN" "$RESULTS"; then
        SKIPPED+=("websocket: ws.sh failed")
    fi
else
    SKIPPED+=("websocket: --no-ws")
fi

if [ "$TLS" = 1 ]; then
    echo "== [${SECONDS}s] tls: ioloop, tokio-rustls (tls.sh)" >&2
    TLS_ARGS=()
    if [ "$QUICK" = 1 ]; then TLS_ARGS+=(--quick); fi
    if ! "$BENCH_DIR/tls.sh" "${TLS_ARGS[@]+"${TLS_ARGS[@]}"}" "$BIN" "$RESULTS"; then
        SKIPPED+=("tls: tls.sh failed")
    fi
else
    SKIPPED+=("tls: --no-tls")
fi

if [ "$CLIENT" = 1 ]; then
    echo "== [${SECONDS}s] http clients: ioloop, hyper, tornado (http_client.sh)" >&2
    CLIENT_ARGS=()
    if [ "$QUICK" = 1 ]; then CLIENT_ARGS+=(--quick); fi
    if ! "$BENCH_DIR/http_client.sh" "${CLIENT_ARGS[@]+"${CLIENT_ARGS[@]}"}" "$BIN" "$RESULTS"; then
        SKIPPED+=("http clients: http_client.sh failed")
    fi
else
    SKIPPED+=("http clients: --no-client")
fi

if [ "$FANOUT" = 1 ]; then
    echo "== [${SECONDS}s] redis clients and room fan-out (fanout.sh)" >&2
    FANOUT_ARGS=()
    if [ "$QUICK" = 1 ]; then FANOUT_ARGS+=(--quick); fi
    if ! command -v redis-server > /dev/null || ! command -v redis-benchmark > /dev/null; then
        SKIPPED+=("redis and fan-out: redis-server or redis-benchmark not installed")
    elif ! "$BENCH_DIR/fanout.sh" "${FANOUT_ARGS[@]+"${FANOUT_ARGS[@]}"}" "$BIN" "$RESULTS"; then
        SKIPPED+=("redis and fan-out: fanout.sh failed")
    fi
else
    SKIPPED+=("redis and fan-out: --no-fanout")
fi

: > "$RELIABILITY_JSONL"
if [ "$RELIABILITY" = 1 ]; then
    echo "== [${SECONDS}s] reliability under hostile peers (reliability.py)" >&2
    RELIABILITY_ARGS=(--out "$RELIABILITY_JSONL")
    if [ "$QUICK" = 1 ]; then RELIABILITY_ARGS+=(--quick); fi
    if ! python3 "$BENCH_DIR/reliability.py" "${RELIABILITY_ARGS[@]}" > /dev/null; then
        : > "$RELIABILITY_JSONL"
        SKIPPED+=("reliability: reliability.py failed")
    fi
else
    SKIPPED+=("reliability: --no-reliability")
fi

python3 - "$MACHINE" "$RUNS" "$QUICK" "$COMMAND" "${SKIPPED[@]+"${SKIPPED[@]}"}" <<'PY'
import json, platform, subprocess, sys, datetime, os
out, runs, quick, command, *skipped = sys.argv[1:]
cpu = "unknown CPU"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
def sh(*a):
    try:
        return subprocess.run(a, capture_output=True, text=True, cwd="..").stdout.strip()
    except OSError:
        return "?"
git = sh("git", "rev-parse", "--short", "HEAD")
if sh("git", "status", "--porcelain", "--", "src", "Cargo.toml"):
    git += " (with uncommitted changes in src/ or Cargo.toml)"
json.dump({
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "cpu": cpu, "nproc": os.cpu_count(), "kernel": "Linux " + platform.release(),
    "rustc": sh("rustc", "--version"), "git": git,
    "runs": int(runs), "quick": quick == "1", "command": command, "skipped": skipped,
}, open(out, "w"))
PY

python3 aggregate.py "$RESULTS" "$MACHINE" "$ROOT/BENCHMARKS.md" "$CALLGRIND_TSV" "$STRACE_TSV" \
    "$RELIABILITY_JSONL"
echo "== [${SECONDS}s] wrote $ROOT/BENCHMARKS.md (raw results in bench/$RESULTS)" >&2
