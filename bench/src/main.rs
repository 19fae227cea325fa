//! `ioloop-bench`: the benchmark suite of the `ioloop` crate, side by side with peers.
//!
//! ```text
//! ioloop-bench <workload> <impl> [--n N] [--batch B] [--worker-cpu C]
//! ioloop-bench echo <impl> [--conns C] [--size BYTES] [--ms WINDOW] [--delay-ms D] [--worker-cpu C]
//! ioloop-bench idle <impl> [--conns C] [--size BYTES] [--ms HOLD] [--worker-cpu C]
//! ioloop-bench timer-batch ioloop
//! ioloop-bench timing ioloop|std|tokio [--n SAMPLES] [--wait-us D]
//! ioloop-bench http-server ioloop|hyper [--threads N]
//! ioloop-bench http-client-load ioloop|hyper PORT REQUESTS CONCURRENCY
//! ioloop-bench ws-server ioloop|ioloop-async|tungstenite
//! ioloop-bench ws-load PORT echo|broadcast|idle CONNS SIZE MS
//! ioloop-bench redis-load ioloop|redis-rs PORT set|get|publish N PIPELINE
//! ioloop-bench fanout-server [--redis URL] [--threads N]
//! ioloop-bench fanout-load PORT[,PORT...] CONNS SIZE MS
//! ioloop-bench list
//! ```
//!
//! Each run prints one JSON line on stdout. `bench/run.sh` runs the matrix, interleaved,
//! and writes `BENCHMARKS.md`.

mod callbacks;
mod cross;
mod echo;
mod fanout;
mod http;
mod http_client;
mod idle;
mod redis_load;
mod tasks;
mod timers;
mod timing;
mod tls;
mod util;
mod ws;

/// Every (workload, implementation) pair, in the order `run.sh` interleaves them.
const MATRIX: &[(&str, &[&str])] = &[
    (
        "timers",
        &["ioloop", "floor", "tokio", "ioloop-20k", "calloop"],
    ),
    (
        "chained",
        &["ioloop", "ioloop-fd", "floor", "tokio", "calloop"],
    ),
    (
        "batch",
        &["ioloop", "ioloop-fd", "floor", "tokio", "calloop"],
    ),
    (
        "rtt",
        &["ioloop", "floor", "floor-eventfd", "tokio", "calloop"],
    ),
    (
        "rtt-b2b",
        &["ioloop", "floor", "floor-eventfd", "tokio", "calloop"],
    ),
    ("post", &["ioloop", "floor", "tokio", "calloop"]),
    ("spawn", &["ioloop", "floor", "tokio", "async-task"]),
    ("spawn-await", &["ioloop", "tokio", "async-task"]),
    ("wake-rtt", &["ioloop", "floor", "tokio"]),
    (
        "echo",
        &["ioloop", "ioloop-async", "floor", "tokio", "calloop", "mio"],
    ),
    (
        "idle",
        &["ioloop", "ioloop-async", "floor", "tokio", "calloop", "mio"],
    ),
];

const USAGE: &str = "usage: ioloop-bench \
                     <timers|chained|batch|rtt|rtt-b2b|post|spawn|spawn-await|wake-rtt> <impl> \
                     [--n N] [--batch B] [--worker-cpu C|none]\n       \
                     ioloop-bench echo <impl> [--conns C] [--size BYTES] [--ms WINDOW] \
                     [--delay-ms D] [--worker-cpu C|none]\n       \
                     ioloop-bench idle <impl> [--conns C] [--size BYTES] [--ms HOLD] \
                     [--worker-cpu C|none]\n       ioloop-bench timer-batch ioloop\n       \
                     ioloop-bench timing <ioloop|std|tokio> [--n SAMPLES] [--wait-us D]\n       \
                     ioloop-bench list";

struct Args {
    workload: String,
    imp: String,
    n: Option<usize>,
    batch: usize,
    worker_cpu: Option<usize>,
    /// `echo`: connections, message size in bytes, measured window in ms, and how long
    /// the client waits before connecting (time for a profiler to attach to the server).
    /// `idle`: connections, message size (and per-connection buffer), idle time in ms.
    conns: usize,
    size: usize,
    ms: usize,
    delay_ms: usize,
    /// `timing`: the wait asked for, in µs.
    wait_us: usize,
}

fn parse() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let workload = args.next().ok_or(USAGE)?;
    if workload == "list" {
        return Ok(Args {
            workload,
            imp: String::new(),
            n: None,
            batch: 0,
            worker_cpu: None,
            conns: 0,
            size: 0,
            ms: 0,
            delay_ms: 0,
            wait_us: 0,
        });
    }
    let imp = args.next().ok_or(USAGE)?;
    let mut parsed = Args {
        workload,
        imp,
        n: None,
        batch: 1000,
        worker_cpu: Some(1),
        conns: 100,
        size: 64,
        ms: 1000,
        delay_ms: 0,
        wait_us: 400,
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = || {
            value
                .replace('_', "")
                .parse::<usize>()
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        match flag.as_str() {
            "--n" => parsed.n = Some(num()?),
            "--batch" => parsed.batch = num()?.max(1),
            "--worker-cpu" if value == "none" => parsed.worker_cpu = None,
            "--worker-cpu" => parsed.worker_cpu = Some(num()?),
            "--conns" => parsed.conns = num()?.max(1),
            "--size" => parsed.size = num()?,
            "--ms" => parsed.ms = num()?.max(1),
            "--delay-ms" => parsed.delay_ms = num()?,
            "--wait-us" => parsed.wait_us = num()?,
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    Ok(parsed)
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let redis_like = match argv.first().map(String::as_str) {
        Some("redis-load") => Some(redis_load::load(&argv[1..])),
        Some("fanout-server") => Some(fanout::serve(&argv[1..])),
        Some("fanout-load") => Some(fanout::load(&argv[1..])),
        _ => None,
    };
    if let Some(result) = redis_like {
        if let Err(e) = result {
            eprintln!("{e}");
            std::process::exit(1);
        }
        return;
    }
    if argv.first().map(String::as_str) == Some("http-server") {
        // A plaintext HTTP server for bench/http.sh (runs until SIGTERM).
        let imp = argv.get(1).cloned().unwrap_or_default();
        let flag = |name: &str| {
            argv.iter()
                .position(|a| a == name)
                .and_then(|at| argv.get(at + 1))
        };
        let threads = flag("--threads").and_then(|n| n.parse().ok()).unwrap_or(1);
        let tls = flag("--tls").map(String::as_str);
        if let Err(e) = http::serve(&imp, threads, tls) {
            eprintln!("{e}");
            std::process::exit(2);
        }
        return;
    }
    if argv.first().map(String::as_str) == Some("ws-server") {
        // A WebSocket server for bench/ws.sh (runs until SIGTERM).
        if let Err(e) = ws::serve(argv.get(1).map_or("", String::as_str)) {
            eprintln!("{e}");
            std::process::exit(2);
        }
        return;
    }
    if argv.first().map(String::as_str) == Some("http-client-load") {
        if let Err(e) = http_client::load(&argv[1..]) {
            eprintln!("{e}");
            std::process::exit(2);
        }
        return;
    }
    if argv.first().map(String::as_str) == Some("ws-load") {
        // The load client of bench/ws.sh.
        if let Err(e) = ws::load(&argv[1..]) {
            eprintln!("{e}");
            std::process::exit(2);
        }
        return;
    }
    if let Some(command @ ("tls-cert" | "tls-server" | "tls-load")) =
        argv.first().map(String::as_str)
    {
        // bench/tls.sh: the certificate, a server (until SIGTERM), the load client.
        let arg = |i: usize| argv.get(i).map_or("", String::as_str);
        let result = match command {
            "tls-cert" => tls::write_certificate(arg(1)),
            "tls-server" => tls::serve(arg(1), arg(2)),
            _ => tls::load(&argv[1..]),
        };
        if let Err(e) = result {
            eprintln!("{e}");
            std::process::exit(2);
        }
        return;
    }
    if argv.first().map(String::as_str) == Some("idle-client") {
        // The client process of the `idle` workload (started by `idle::run`).
        if let Err(e) = idle::client_process(&argv[1..]) {
            eprintln!("{e}");
            std::process::exit(2);
        }
        return;
    }
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let result = match args.workload.as_str() {
        "list" => {
            for (workload, imps) in MATRIX {
                println!("{workload}\t{}", imps.join(" "));
            }
            return;
        }
        "timers" => timers::run(&args.imp, args.n),
        "timer-batch" => timers::cancel_in_batch(&args.imp),
        "timing" => timing::run(&args.imp, args.n, args.wait_us),
        "chained" => callbacks::chained(&args.imp, args.n),
        "batch" => callbacks::batch(&args.imp, args.n, args.batch),
        "rtt" | "rtt-b2b" => cross::rtt(&args.workload, &args.imp, args.n, args.worker_cpu),
        "post" => cross::post(&args.imp, args.n, args.worker_cpu),
        "spawn" => tasks::spawn(&args.imp, args.n, args.batch),
        "spawn-await" => tasks::spawn_await(&args.imp, args.n),
        "wake-rtt" => tasks::wake_rtt(&args.imp, args.n, args.worker_cpu),
        "echo" => echo::run(
            &args.imp,
            args.conns,
            args.size,
            args.ms as u64,
            args.delay_ms as u64,
            args.worker_cpu,
        ),
        "idle" => idle::run(
            &args.imp,
            args.conns,
            args.size,
            args.ms as u64,
            args.worker_cpu,
        ),
        other => Err(format!("unknown workload {other}\n{USAGE}")),
    };
    match result {
        Ok(report) => println!("{}", report.to_json()),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    }
}
