# What the load scripts (http.sh, ws.sh, tls.sh, http_client.sh) share, sourced after
# they set BENCH_DIR: core pinning, whether the Tornado peer can run, starting and
# stopping a server process that announces itself as `listening on HOST:PORT` on its
# first line, and the interleaved rounds over shapes.

# Servers on core 0, load generators on core 1 (nothing pinned on one core).
if [ "$(nproc)" -ge 2 ]; then SERVER_PIN=(taskset -c 0) LOAD_PIN=(taskset -c 1); else SERVER_PIN=() LOAD_PIN=(); fi

# Whether bench/.venv has Tornado (run.sh installs it).
has_tornado() {
    [ -x "$BENCH_DIR/.venv/bin/python" ] && "$BENCH_DIR/.venv/bin/python" -c 'import tornado' 2> /dev/null
}

# launch_server CMD...: runs CMD in the background and waits for its announcement; sets
# SERVER_PID and PORT.
launch_server() {
    local fifo line
    fifo="$(mktemp -u)"
    mkfifo "$fifo"
    "$@" > "$fifo" &
    SERVER_PID=$!
    read -r line < "$fifo"
    rm -f "$fifo"
    PORT="${line##*:}"
}

stop_server() {
    kill -TERM "$SERVER_PID" 2> /dev/null || true
    wait "$SERVER_PID" 2> /dev/null || true
}

# run_shapes LABEL SHAPE...: for each shape "MODE CONNS SIZE", ROUNDS interleaved rounds
# of the caller's `run_one ROUND IMPL MODE CONNS SIZE` over IMPLS.
run_shapes() {
    local label=$1 shape mode conns size round impl
    shift
    for shape in "$@"; do
        read -r mode conns size <<< "$shape"
        echo "== $label $mode c=$conns size=$size: ${IMPLS[*]} ($ROUNDS rounds)" >&2
        for round in $(seq 1 "$ROUNDS"); do
            for impl in "${IMPLS[@]}"; do
                run_one "$round" "$impl" "$mode" "$conns" "$size"
            done
        done
    done
}
