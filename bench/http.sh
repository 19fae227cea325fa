#!/usr/bin/env bash
# HTTP plaintext and JSON under wrk: ioloop against hyper (tokio current_thread),
# actix-web (one worker, its own runtime) and Tornado, in one interleaved run. run.sh calls it; by hand:
#
#   bench/http.sh [--quick] BIN OUT.jsonl
#
# Each server runs pinned to core 0 (`taskset -c 0`; the two-thread mode gets cores 0
# and 1 and wrk shares core 1 with it), wrk to core 1. Shapes: keep-alive at 16, 64 and
# 256 connections, and pipelined x16 (bench/wrk/pipeline.lua) at 16, 64 and 256; then the
# two-thread mode (SO_REUSEPORT, one loop or runtime per thread) keep-alive at 64 and
# pipelined at 64; then HTTPS keep-alive at 64 (ioloop and hyper with tokio-rustls).
# Rounds interleave the servers (A B C A B C ...); full mode 5 rounds of
# 5 s, --quick 3 rounds of 2 s. Server CPU per request comes from /proc/PID/stat
# (utime+stime over the run, all threads). One JSON line per run goes to OUT.jsonl.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
QUICK=0
if [ "${1:-}" = --quick ]; then QUICK=1; shift; fi
BIN="$1"
OUT="$2"

if ! command -v wrk > /dev/null; then
    echo "!! wrk not found: skipping the HTTP workload" >&2
    exit 3
fi
if [ "$QUICK" = 1 ]; then ROUNDS=3 SECS=2; else ROUNDS=5 SECS=5; fi
CLK_TCK="$(getconf CLK_TCK)"
# shellcheck source=servers.sh
. "$BENCH_DIR/servers.sh"

IMPLS=(ioloop hyper actix)
if has_tornado; then IMPLS+=(tornado); fi

# start_server IMPL THREADS: starts it (the two-thread mode unpinned), sets SERVER_PID and
# PORT.
start_server() {
    local impl=$1 threads=$2
    local pin=("${SERVER_PIN[@]+"${SERVER_PIN[@]}"}")
    if [ "$threads" -gt 1 ]; then pin=(); fi
    case "$impl" in
        tornado) launch_server "${pin[@]+"${pin[@]}"}" "$BENCH_DIR/.venv/bin/python" "$BENCH_DIR/python/http_plain.py" ;;
        *-https) launch_server "${pin[@]+"${pin[@]}"}" "$BIN" http-server "${impl%-https}" --tls "$CERTS" ;;
        *) launch_server "${pin[@]+"${pin[@]}"}" "$BIN" http-server "$impl" --threads "$threads" ;;
    esac
}

cpu_ticks() {
    awk '{print $14 + $15}' "/proc/$1/stat"
}

# run_one ROUND IMPL THREADS CONNS MODE [PATH]
run_one() {
    local round=$1 impl=$2 threads=$3 conns=$4 mode=$5 path=${6:-plaintext} script=() out reqs before after
    start_server "$impl" "$threads"
    if [ "$mode" = pipelined ]; then script=(-s "$BENCH_DIR/wrk/pipeline.lua"); fi
    # Warm up: a short run the figures do not count.
    local url="http://127.0.0.1:$PORT/$path"
    case "$impl" in *-https) url="https://127.0.0.1:$PORT/$path" ;; esac
    "${LOAD_PIN[@]+"${LOAD_PIN[@]}"}" wrk -t1 -c"$conns" -d1s "${script[@]+"${script[@]}"}" \
        "$url" > /dev/null 2>&1 || true
    before="$(cpu_ticks "$SERVER_PID")"
    out="$("${LOAD_PIN[@]+"${LOAD_PIN[@]}"}" wrk -t1 -c"$conns" -d"${SECS}s" "${script[@]+"${script[@]}"}" \
        "$url" 2>&1)"
    after="$(cpu_ticks "$SERVER_PID")"
    stop_server
    python3 - "$out" "$round" "$impl" "$threads" "$conns" "$mode" "$before" "$after" "$CLK_TCK" "$SECS" "$path" >> "$OUT" <<'PY'
import json, re, sys
out, rnd, impl, threads, conns, mode, before, after, tck, secs, path = sys.argv[1:]
m = re.search(r"(\d+) requests in ([\d.]+)s", out)
reqs, took = (int(m.group(1)), float(m.group(2))) if m else (0, float(secs))
errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
cpu_s = (int(after) - int(before)) / int(tck)
print(json.dumps({
    "workload": "http", "impl": impl if int(threads) == 1 else "%s-%dthreads" % (impl, int(threads)),
    "round": int(rnd), "n": reqs,
    "params": {"conns": int(conns), "mode": mode, "threads": int(threads),
               "tls": impl.endswith("-https"), "path": path},
    "metrics": {
        "req_per_s": reqs / took if took else 0,
        "server_cpu_us_per_req": cpu_s * 1e6 / reqs if reqs else 0,
        "errors": errors + (int(non2xx.group(1)) if non2xx else 0),
    },
    "note": "",
}))
PY
    echo "  round $round http /$path $mode c=$conns threads=$threads $impl: $(tail -n 1 "$OUT")" >&2
}

for shape in "16 keepalive" "64 keepalive" "256 keepalive" "16 pipelined" "64 pipelined" "256 pipelined"; do
    read -r conns mode <<< "$shape"
    echo "== http $mode c=$conns: ${IMPLS[*]} ($ROUNDS rounds)" >&2
    for round in $(seq 1 "$ROUNDS"); do
        for impl in "${IMPLS[@]}"; do
            run_one "$round" "$impl" 1 "$conns" "$mode"
        done
    done
done
# The JSON rows (TechEmpower's JSON test): `GET /json`, `{"message":"Hello, World!"}`
# serialized per request.
for shape in "64 keepalive" "64 pipelined"; do
    read -r conns mode <<< "$shape"
    echo "== http json $mode c=$conns: ${IMPLS[*]} ($ROUNDS rounds)" >&2
    for round in $(seq 1 "$ROUNDS"); do
        for impl in "${IMPLS[@]}"; do
            run_one "$round" "$impl" 1 "$conns" "$mode" json
        done
    done
done
for shape in "64 keepalive" "64 pipelined"; do
    read -r conns mode <<< "$shape"
    echo "== http two threads $mode c=$conns: ioloop hyper ($ROUNDS rounds)" >&2
    for round in $(seq 1 "$ROUNDS"); do
        for impl in ioloop hyper; do
            run_one "$round" "$impl" 2 "$conns" "$mode"
        done
    done
done
# HTTPS keep-alive: the same servers behind TLS (ioloop's HttpServer::set_tls, hyper with
# tokio-rustls), one certificate from `ioloop-bench tls-cert`; wrk resumes no sessions
# within a connection, so this measures record encryption, not handshakes.
CERTS="$(mktemp -d)"
trap 'rm -rf "$CERTS"' EXIT
"$BIN" tls-cert "$CERTS"
for shape in "64 keepalive"; do
    read -r conns mode <<< "$shape"
    echo "== https $mode c=$conns: ioloop hyper ($ROUNDS rounds)" >&2
    for round in $(seq 1 "$ROUNDS"); do
        for impl in ioloop-https hyper-https; do
            run_one "$round" "$impl" 1 "$conns" "$mode"
        done
    done
done
