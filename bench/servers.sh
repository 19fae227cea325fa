# What bench/http.sh and bench/ws.sh share (sourced, after they set BENCH_DIR): core
# pinning, whether the Tornado peer can run, and starting and stopping a server process
# that announces itself as `listening on HOST:PORT` on its first line.

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
