#!/usr/bin/env bash
# HTTP clients: ioloop's HttpClient against hyper's client (hyper-util's legacy pooled
# client on tokio current_thread) and Tornado's AsyncHTTPClient, all fetching from one
# local server (hyper's, `ioloop-bench http-server hyper`), in one interleaved run.
# run.sh calls it; by hand:
#
#   bench/http_client.sh [--quick] BIN OUT.jsonl
#
# The server runs pinned to core 0, the client to core 1. Shapes: 10 000 sequential
# GETs (one at a time) and 10 000 GETs 64 at a time. Rounds interleave the clients;
# full mode 5 rounds, --quick 3. Each run starts a fresh server. The client's CPU
# (utime+stime over the run, from getrusage) is per request. One JSON line per run goes
# to OUT.jsonl.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
QUICK=0
if [ "${1:-}" = --quick ]; then QUICK=1; shift; fi
BIN="$1"
OUT="$2"
if [ "$QUICK" = 1 ]; then ROUNDS=3; else ROUNDS=5; fi
REQUESTS=10000
# shellcheck source=servers.sh
. "$BENCH_DIR/servers.sh"

IMPLS=(ioloop hyper)
if has_tornado; then IMPLS+=(tornado); fi

# run_one ROUND IMPL CONCURRENCY
run_one() {
    local round=$1 impl=$2 concurrency=$3 out requests=$REQUESTS
    # Tornado opens a connection per request: a tenth of the requests keeps its run short.
    if [ "$impl" = tornado ]; then requests=$((REQUESTS / 10)); fi
    launch_server "${SERVER_PIN[@]+"${SERVER_PIN[@]}"}" "$BIN" http-server hyper
    case "$impl" in
        tornado) out="$("${LOAD_PIN[@]+"${LOAD_PIN[@]}"}" "$BENCH_DIR/.venv/bin/python" "$BENCH_DIR/python/http_client.py" "$PORT" "$requests" "$concurrency" 2>&1)" || out="{\"error\": \"${out//\"/}\"}" ;;
        *) out="$("${LOAD_PIN[@]+"${LOAD_PIN[@]}"}" "$BIN" http-client-load "$impl" "$PORT" "$requests" "$concurrency" 2>&1)" || out="{\"error\": \"${out//\"/}\"}" ;;
    esac
    stop_server
    python3 - "$out" "$round" "$impl" "$concurrency" >> "$OUT" <<'PY'
import json, sys
out, rnd, impl, concurrency = sys.argv[1:]
result = json.loads(out.strip().splitlines()[-1])
done, secs = result.get("requests", 0), result.get("secs", 0.0)
cpu_s = result.get("client_cpu_s", 0.0)
print(json.dumps({
    "workload": "http-client", "impl": impl, "round": int(rnd), "n": done,
    "params": {"concurrency": int(concurrency)},
    "metrics": {
        "req_per_s": done / secs if secs else 0,
        "client_cpu_us_per_req": cpu_s * 1e6 / done if done else 0,
    },
    "note": result.get("error", ""),
}))
PY
    echo "  round $round http-client c=$concurrency $impl: $(tail -n 1 "$OUT")" >&2
}

for concurrency in 1 64; do
    echo "== http-client c=$concurrency: ${IMPLS[*]} ($ROUNDS rounds)" >&2
    for round in $(seq 1 "$ROUNDS"); do
        for impl in "${IMPLS[@]}"; do
            run_one "$round" "$impl" "$concurrency"
        done
    done
done
