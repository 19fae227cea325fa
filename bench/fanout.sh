#!/usr/bin/env bash
# Redis and room fan-out (issue 27), in one interleaved run. run.sh calls it; by hand:
#
#   bench/fanout.sh [--quick] BIN OUT.jsonl
#
# Needs redis-server and redis-benchmark (Debian's redis-server and redis-tools); says so
# and writes nothing without them. One redis-server (no persistence) runs pinned to core
# 0 with the servers; every client and load generator runs on core 1.
#
# 1. Redis client, one connection, pipelined 16 deep (`-P 16`): SET, GET and PUBLISH
#    rates of ioloop's RedisClient (`ioloop-bench redis-load ioloop`), redis-rs's
#    multiplexed connection on tokio current_thread (`redis-load redis-rs`) and
#    redis-benchmark (`-c 1 -P 16`, the floor: C, no decoding into values), same server.
#    Client CPU per operation from getrusage of the client process (redis-benchmark's
#    included).
# 2. Room fan-out, 1 000 WebSocket members (`ioloop-bench fanout-load`): one member
#    sends a 64 B message, the next once all 1 000 have it; deliveries/s and the latency
#    of each delivery (p50, p99). `one-process`: one `fanout-server` (a `Room` on one
#    loop); `redis-2proc`: two `fanout-server --redis` processes (a `RedisRoom` each,
#    500 members on each, through the redis-server); `threads-2`: one process,
#    `--threads 2` (a `Room` across two loops; both threads share core 0 with the
#    others here, so this measures the cost of the hand-over, not a second core).
#
# Rounds interleave the implementations; full mode 5 rounds (200 000 commands, 3 s
# windows), --quick 3 (50 000, 1 s).
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
QUICK=0
if [ "${1:-}" = --quick ]; then QUICK=1; shift; fi
BIN="$1"
OUT="$2"
if [ "$QUICK" = 1 ]; then ROUNDS=3 MS=1000 N=50000; else ROUNDS=5 MS=3000 N=200000; fi
PIPELINE=16
# shellcheck source=servers.sh
. "$BENCH_DIR/servers.sh"

if ! command -v redis-server > /dev/null || ! command -v redis-benchmark > /dev/null; then
    echo "fanout.sh: redis-server or redis-benchmark not installed: skipped" >&2
    exit 0
fi
ulimit -n 65536 2> /dev/null || ulimit -n "$(ulimit -Hn)" 2> /dev/null || true

REDIS_DIR="$(mktemp -d)"
REDIS_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"${SERVER_PIN[@]+"${SERVER_PIN[@]}"}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
    --appendonly no --dir "$REDIS_DIR" --logfile "$REDIS_DIR/log" --daemonize no &
REDIS_PID=$!
cleanup() {
    kill "$REDIS_PID" 2> /dev/null || true
    wait "$REDIS_PID" 2> /dev/null || true
    rm -rf "$REDIS_DIR"
}
trap cleanup EXIT
until redis-cli -p "$REDIS_PORT" ping > /dev/null 2>&1; do :; done

# record JSON_FROM_CLIENT ROUND WORKLOAD IMPL PARAMS_JSON: one line in OUT.
record() {
    python3 - "$@" >> "$OUT" <<'PY'
import json, sys
out, rnd, workload, impl, params = sys.argv[1:]
try:
    result = json.loads(out.strip().splitlines()[-1])
except Exception:
    result = {"error": out.strip()[-300:]}
params = json.loads(params)
if workload == "redis-client":
    ops, secs, cpu = result.get("ops", 0), result.get("secs", 0.0), result.get("client_cpu_s", 0.0)
    metrics = {"ops_per_s": ops / secs if secs else 0,
               "client_cpu_us_per_op": cpu * 1e6 / ops if ops else 0}
    n = ops
else:
    d, secs = result.get("deliveries", 0), result.get("secs", 0.0)
    metrics = {"deliveries_per_s": d / secs if secs else 0,
               "p50_us": result.get("p50_us", 0), "p99_us": result.get("p99_us", 0)}
    n = d
print(json.dumps({"workload": workload, "impl": impl, "round": int(rnd), "n": n,
                  "params": params, "metrics": metrics, "note": result.get("error", "")}))
PY
    echo "  round $2 $3 $4 $5: $(tail -n 1 "$OUT")" >&2
}

# redis-benchmark's rate, and its CPU from getrusage of the child (pinned like the
# other clients: the affinity is inherited).
redis_benchmark() {
    local op=$1 args
    case "$op" in
        set) args=(-t set) ;;
        get) args=(-t get) ;;
        publish) args=(PUBLISH chan xxx) ;;
    esac
    "${LOAD_PIN[@]+"${LOAD_PIN[@]}"}" python3 - "$REDIS_PORT" "$N" "$PIPELINE" "${args[@]}" <<'PY'
import json, resource, subprocess, sys
port, n, pipeline, *args = sys.argv[1:]
before = resource.getrusage(resource.RUSAGE_CHILDREN)
out = subprocess.run(["redis-benchmark", "-p", port, "-c", "1", "-P", pipeline, "-n", n,
                      "--csv", *args], capture_output=True, text=True, check=True).stdout
after = resource.getrusage(resource.RUSAGE_CHILDREN)
rps = float(out.strip().splitlines()[-1].split(",")[1].strip('"'))
cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
print(json.dumps({"ops": int(n), "secs": int(n) / rps, "client_cpu_s": cpu}))
PY
}

REDIS_IMPLS=(ioloop redis-rs redis-benchmark)
for op in set get publish; do
    echo "== redis client $op, one connection, -P $PIPELINE: ${REDIS_IMPLS[*]} ($ROUNDS rounds)" >&2
    for round in $(seq 1 "$ROUNDS"); do
        for impl in "${REDIS_IMPLS[@]}"; do
            case "$impl" in
                redis-benchmark) out="$(redis_benchmark "$op" 2>&1)" || true ;;
                *) out="$("${LOAD_PIN[@]+"${LOAD_PIN[@]}"}" "$BIN" redis-load "$impl" "$REDIS_PORT" "$op" "$N" "$PIPELINE" 2>&1)" || true ;;
            esac
            record "$out" "$round" redis-client "$impl" "{\"op\": \"$op\", \"pipeline\": $PIPELINE}"
        done
    done
done

# Room fan-out. start_fanout ARGS...: one server; its pid and port are appended.
PIDS=() PORTS=()
start_fanout() {
    launch_server "${SERVER_PIN[@]+"${SERVER_PIN[@]}"}" "$BIN" fanout-server "$@"
    PIDS+=("$SERVER_PID") PORTS+=("$PORT")
}
stop_fanout() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2> /dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2> /dev/null || true; done
    PIDS=() PORTS=()
}

FANOUT_IMPLS=(one-process redis-2proc threads-2)
echo "== room fan-out, 1000 members x 64 B: ${FANOUT_IMPLS[*]} ($ROUNDS rounds)" >&2
for round in $(seq 1 "$ROUNDS"); do
    for impl in "${FANOUT_IMPLS[@]}"; do
        case "$impl" in
            one-process) start_fanout ;;
            threads-2) start_fanout --threads 2 ;;
            redis-2proc)
                start_fanout --redis "redis://127.0.0.1:$REDIS_PORT"
                start_fanout --redis "redis://127.0.0.1:$REDIS_PORT" ;;
        esac
        ports="$(IFS=,; echo "${PORTS[*]}")"
        out="$("${LOAD_PIN[@]+"${LOAD_PIN[@]}"}" "$BIN" fanout-load "$ports" 1000 64 "$MS" 2>&1)" || true
        stop_fanout
        record "$out" "$round" fanout "$impl" '{"members": 1000, "size": 64}'
    done
done
