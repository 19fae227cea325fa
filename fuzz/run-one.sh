#!/usr/bin/env bash
# Runs one built fuzz target (`cargo +nightly fuzz build -a` first): its regression
# inputs once each, then fuzzing for SECONDS (default 60) from its corpus (new inputs go
# to corpus/TARGET, which git ignores) and its committed seeds, in one process.
# Arguments after SECONDS go to libFuzzer as they are (`-runs=10000000`, `-jobs=2`).
# Usage: fuzz/run-one.sh TARGET [SECONDS [LIBFUZZER_ARGS...]]
set -euo pipefail
cd "$(dirname "$0")"
target="$1"
seconds="${2:-60}"
shift $(( $# < 2 ? $# : 2 ))
# FUZZ_BIN_DIR: where the built targets are (another `--target-dir`'s, say).
binary="${FUZZ_BIN_DIR:-target/x86_64-unknown-linux-gnu/release}/$target"
dict=()
case "$target" in
  http_pipeline) ;;
  http_*|url_*|static_*|websocket_handshake) dict=(-dict=dict/http.dict) ;;
  websocket_*) dict=(-dict=dict/websocket.dict) ;;
  resp) dict=(-dict=dict/resp.dict) ;;
  signed_xsrf) dict=(-dict=dict/signed.dict) ;;
esac
mkdir -p "corpus/$target" "artifacts/$target"
if [ -d "regressions/$target" ]; then
  "$binary" -runs=1 regressions/"$target"/*
fi
seeds=()
[ -d "seeds/$target" ] && seeds=("seeds/$target")
"$binary" "${dict[@]}" -max_total_time="$seconds" -print_final_stats=1 \
  -artifact_prefix="artifacts/$target/" -max_len=16384 -rss_limit_mb=2048 \
  "$@" "corpus/$target" "${seeds[@]}"
