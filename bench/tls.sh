#!/usr/bin/env bash
# TLS: ioloop (TcpServer with a TlsAcceptor) against tokio-rustls (tokio current_thread),
# both on rustls 0.23 with the ring provider, in one interleaved run. run.sh calls it; by
# hand:
#
#   bench/tls.sh [--quick] BIN OUT.jsonl
#
# One certificate (a CA and an ECDSA P-256 leaf, `ioloop-bench tls-cert`) serves every
# run. Each server runs pinned to core 0, the load client (`ioloop-bench tls-load`, one
# ioloop loop of rustls clients) to core 1. Shapes: echo ping-pong at 100 connections x
# 64 B and x 16 KiB, and new TLS 1.3 handshakes by 16 concurrent clients (connect,
# handshake, one byte each way, close). Rounds interleave the servers; full mode 5
# rounds of 3 s, --quick 3 rounds of 1 s. Server CPU per message or handshake: the
# server's utime+stime over exactly the measured window (from /proc, by the load
# client). One JSON line per run goes to OUT.jsonl.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
QUICK=0
if [ "${1:-}" = --quick ]; then QUICK=1; shift; fi
BIN="$1"
OUT="$2"
if [ "$QUICK" = 1 ]; then ROUNDS=3 MS=1000; else ROUNDS=5 MS=3000; fi
# shellcheck source=servers.sh
. "$BENCH_DIR/servers.sh"

IMPLS=(ioloop tokio-rustls)
CERTS="$(mktemp -d)"
trap 'rm -rf "$CERTS"' EXIT
"$BIN" tls-cert "$CERTS"

# run_one ROUND IMPL MODE CONNS SIZE
run_one() {
    local round=$1 impl=$2 mode=$3 conns=$4 size=$5 out
    launch_server "${SERVER_PIN[@]+"${SERVER_PIN[@]}"}" "$BIN" tls-server "$impl" "$CERTS"
    out="$("${LOAD_PIN[@]+"${LOAD_PIN[@]}"}" "$BIN" tls-load "$PORT" "$mode" "$conns" "$size" "$MS" "$CERTS" "$SERVER_PID" 2>&1)" || out="{\"error\": \"${out//\"/}\"}"
    stop_server
    python3 - "$out" "$round" "$impl" "$mode" "$conns" "$size" >> "$OUT" <<'PY'
import json, sys
out, rnd, impl, mode, conns, size = sys.argv[1:]
result = json.loads(out)
done, secs = result.get("messages", 0), result.get("secs", 0.0)
cpu_s = result.get("server_cpu_s", 0.0)
print(json.dumps({
    "workload": "tls", "impl": impl, "round": int(rnd), "n": done,
    "params": {"mode": mode, "conns": int(conns), "size": int(size)},
    "metrics": {
        "msgs_per_s": done / secs if secs else 0,
        "server_cpu_us_per_msg": cpu_s * 1e6 / done if done else 0,
    },
    "note": result.get("error", ""),
}))
PY
    echo "  round $round tls $mode c=$conns size=$size $impl: $(tail -n 1 "$OUT")" >&2
}

run_shapes tls "echo 100 64" "echo 100 16384" "handshake 16 1"
