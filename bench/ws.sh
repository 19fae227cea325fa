#!/usr/bin/env bash
# WebSocket: ioloop (callbacks and async) against tokio-tungstenite (tokio current_thread)
# and Tornado, in one interleaved run. run.sh calls it; by hand:
#
#   bench/ws.sh [--quick] BIN OUT.jsonl
#
# Each server runs pinned to core 0, the load client (`ioloop-bench ws-load`, one
# polling loop) to core 1. Shapes: echo ping-pong at 100 connections x 64 B and x 16 KiB,
# and a broadcast to 1 000 members (one sender, the next message once all received it);
# then memory per idle WebSocket connection (1 000 connections after one echo each:
# growth of the server's VmRSS, counted after one warm-up connection). Rounds
# interleave the servers; full mode 5 rounds of 3 s, --quick 3 rounds of 1 s. Server CPU
# per message: the load client reads the server's /proc/PID/stat (utime+stime) at the
# start and end of its measured window, so handshakes, warm-up and teardown are not
# counted. One JSON line per run goes to OUT.jsonl.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
QUICK=0
if [ "${1:-}" = --quick ]; then QUICK=1; shift; fi
BIN="$1"
OUT="$2"
if [ "$QUICK" = 1 ]; then ROUNDS=3 MS=1000; else ROUNDS=5 MS=3000; fi
# shellcheck source=servers.sh
. "$BENCH_DIR/servers.sh"

IMPLS=(ioloop ioloop-async tungstenite)
if has_tornado; then IMPLS+=(tornado); fi

# start_server IMPL: starts it, sets SERVER_PID and PORT.
start_server() {
    case "$1" in
        tornado) launch_server "${SERVER_PIN[@]+"${SERVER_PIN[@]}"}" env -C "$BENCH_DIR/python" "$BENCH_DIR/.venv/bin/python" ws_server.py ;;
        *) launch_server "${SERVER_PIN[@]+"${SERVER_PIN[@]}"}" "$BIN" ws-server "$1" ;;
    esac
}

rss_kb() {
    awk '/^VmRSS/ {print $2}' "/proc/$1/status"
}

# run_one ROUND IMPL MODE CONNS SIZE
run_one() {
    local round=$1 impl=$2 mode=$3 conns=$4 size=$5 out
    start_server "$impl"
    out="$("${LOAD_PIN[@]+"${LOAD_PIN[@]}"}" "$BIN" ws-load "$PORT" "$mode" "$conns" "$size" "$MS" "$SERVER_PID" 2>&1)" || out="{\"error\": \"${out//\"/}\"}"
    stop_server
    python3 - "$out" "$round" "$impl" "$mode" "$conns" "$size" >> "$OUT" <<'PY'
import json, sys
out, rnd, impl, mode, conns, size = sys.argv[1:]
result = json.loads(out)
messages, secs = result.get("messages", 0), result.get("secs", 0.0)
cpu_s = result.get("server_cpu_s", 0.0)
deliveries = messages * (int(conns) if mode == "broadcast" else 1)
metrics = {
    "msgs_per_s": deliveries / secs if secs else 0,
    "server_cpu_us_per_msg": cpu_s * 1e6 / deliveries if deliveries else 0,
}
if mode == "broadcast":
    metrics["broadcasts_per_s"] = messages / secs if secs else 0
print(json.dumps({
    "workload": "websocket", "impl": impl, "round": int(rnd), "n": deliveries,
    "params": {"mode": mode, "conns": int(conns), "size": int(size)},
    "metrics": metrics, "note": result.get("error", ""),
}))
PY
    echo "  round $round websocket $mode c=$conns size=$size $impl: $(tail -n 1 "$OUT")" >&2
}

run_shapes websocket "echo 100 64" "echo 100 16384" "broadcast 1000 64"

# Memory per idle connection: 1 000 connections held after one 64 B echo each.
echo "== websocket idle memory, 1000 connections: ${IMPLS[*]}" >&2
for impl in "${IMPLS[@]}"; do
    start_server "$impl"
    # One connection first: what the first costs once is not counted per connection.
    "${LOAD_PIN[@]+"${LOAD_PIN[@]}"}" "$BIN" ws-load "$PORT" idle 1 64 0 > /dev/null
    base="$(rss_kb "$SERVER_PID")"
    fifo="$(mktemp -u)"
    mkfifo "$fifo"
    "${LOAD_PIN[@]+"${LOAD_PIN[@]}"}" "$BIN" ws-load "$PORT" idle 1000 64 2000 > "$fifo" &
    load=$!
    exec 3< "$fifo"
    read -r line <&3
    held="$(rss_kb "$SERVER_PID")"
    cat <&3 > /dev/null
    exec 3<&-
    wait "$load" 2> /dev/null || true
    rm -f "$fifo"
    stop_server
    python3 - "$impl" "$base" "$held" "$line" >> "$OUT" <<'PY'
import json, sys
impl, base, held, line = sys.argv[1:]
print(json.dumps({
    "workload": "websocket-idle", "impl": impl, "round": 1, "n": 1000,
    "params": {"conns": 1000},
    "metrics": {"bytes_per_conn": (int(held) - int(base)) * 1024 / 1000},
    "note": "" if line == "held" else line,
}))
PY
    echo "  websocket idle $impl: $(tail -n 1 "$OUT")" >&2
done
