//! Workload 6, idle connections: what an open, quiet connection costs a server.
//!
//! - `idle`: the echo servers of [`crate::echo`] (the same code, with a per-connection
//!   buffer of `--size` bytes instead of 16 KiB, so that the application's own buffer
//!   does not hide the event loop's), on the calling thread. A load thread on another core
//!   first sends one message through one connection and closes it (so that what a server
//!   allocates once, on its first connection, is not counted), then reads the process's
//!   anonymous RSS (`RssAnon` in `/proc/self/status`). It then starts a client *process*
//!   (`ioloop-bench idle-client`, so that the client's sockets neither count against this
//!   process's fd limit nor its memory) that opens `--conns` connections and sends one
//!   message of `--size` bytes through each, waiting for the echo: every connection has
//!   been accepted and used once, as a keep-alive connection that served one request.
//!   Then nothing happens for `--ms` milliseconds. The load thread reads RSS again, and
//!   the server thread's voluntary context switches (each one a sleep in the poller that
//!   something woke up) and CPU time at both ends of that window. Finally the client
//!   process exits (closing its connections) and the server is stopped.
//!
//! Bytes per connection = RSS growth from before the client to the start of the idle
//! window, divided by the connections: the server's user-space memory per connection,
//! its `--size`-byte buffer included (kernel socket memory is not in RSS).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::echo::{self, Load, Server};
use crate::util::{cpu_clock, pin_current_thread, Report};

/// What the load thread measured.
pub(crate) struct IdleStats {
    conns: usize,
    /// How long opening and using every connection took.
    connect: Duration,
    /// Anonymous RSS in KiB before the connections, at the start and at the end of the
    /// idle window.
    rss_before_kb: u64,
    rss_idle_kb: u64,
    rss_after_kb: u64,
    hold: Duration,
    /// The server thread's voluntary context switches and CPU time over the idle window.
    wakeups: u64,
    server_cpu: Duration,
}

/// Runs one implementation's server against the idle client; see the module doc.
pub fn run(
    imp: &str,
    conns: usize,
    size: usize,
    ms: u64,
    cpu: Option<usize>,
) -> Result<Report, String> {
    let hold = Duration::from_millis(ms);
    let load = Load::new(cpu, size.max(1), move |server| {
        hold_idle(server, conns, size, hold, cpu)
    });
    let (stats, note) = echo::serve(imp, load)?;
    let kib = |kb: u64| kb as f64 * 1024.0;
    let per_conn = (kib(stats.rss_idle_kb) - kib(stats.rss_before_kb)) / stats.conns as f64;
    let secs = stats.hold.as_secs_f64();
    Ok(Report::new("idle", imp, stats.conns)
        .param("size", size)
        .param("ms", ms as usize)
        .metric("bytes_per_conn", per_conn)
        .metric("wakeups_per_s", stats.wakeups as f64 / secs)
        .metric(
            "idle_cpu_us_per_s",
            stats.server_cpu.as_secs_f64() * 1e6 / secs,
        )
        .metric(
            "idle_growth_kb",
            stats.rss_after_kb as f64 - stats.rss_idle_kb as f64,
        )
        .metric("connect_ms", stats.connect.as_secs_f64() * 1e3)
        .note(&note))
}

/// The load thread's side (see the module doc).
fn hold_idle(
    server: Server,
    conns: usize,
    size: usize,
    hold: Duration,
    cpu: Option<usize>,
) -> Result<IdleStats, String> {
    let addr = server.addr;
    // Once through the server, so that its first-connection allocations are not counted.
    let mut first = TcpStream::connect(addr).map_err(|e| format!("idle: connect: {e}"))?;
    exchange(&mut first, size).map_err(|e| format!("idle: first exchange: {e}"))?;
    drop(first);
    // Let the server see that close before the baseline (a benchmark pause, not a sync).
    std::thread::sleep(Duration::from_millis(50));
    let rss_before_kb = rss_anon_kb(server.pid)?;

    let started = Instant::now();
    let mut client = ClientProcess::start(addr, conns, size, cpu)?;
    client.wait_ready()?;
    let connect = started.elapsed();
    // The last echo was written; give the server a moment to go back to its poller.
    std::thread::sleep(Duration::from_millis(100));

    let rss_idle_kb = rss_anon_kb(server.pid)?;
    let switches0 = voluntary_switches(server)?;
    let cpu0 = cpu_clock(server.cpu_clock);
    std::thread::sleep(hold);
    let switches1 = voluntary_switches(server)?;
    let cpu1 = cpu_clock(server.cpu_clock);
    let rss_after_kb = rss_anon_kb(server.pid)?;
    client.finish()?;
    Ok(IdleStats {
        conns,
        connect,
        rss_before_kb,
        rss_idle_kb,
        rss_after_kb,
        hold,
        wakeups: switches1.saturating_sub(switches0),
        server_cpu: cpu1.saturating_sub(cpu0),
    })
}

/// Sends one message of `size` bytes and reads its echo.
fn exchange(sock: &mut TcpStream, size: usize) -> io::Result<()> {
    sock.set_nodelay(true)?;
    let message = vec![0x5a; size];
    sock.write_all(&message)?;
    let mut echo = vec![0; size];
    sock.read_exact(&mut echo)?;
    if echo != message {
        return Err(io::Error::other("wrong echo"));
    }
    Ok(())
}

/// The client process, `ioloop-bench idle-client`: killed if dropped before `finish`.
struct ClientProcess(Child);

impl ClientProcess {
    fn start(
        addr: SocketAddr,
        conns: usize,
        size: usize,
        cpu: Option<usize>,
    ) -> Result<ClientProcess, String> {
        let exe = std::env::current_exe().map_err(|e| format!("idle: current_exe: {e}"))?;
        let cpu = cpu.map_or_else(|| "none".to_owned(), |c| c.to_string());
        Command::new(exe)
            .args(["idle-client", &addr.to_string(), &conns.to_string()])
            .args([&size.to_string(), &cpu])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map(ClientProcess)
            .map_err(|e| format!("idle: cannot start the client process: {e}"))
    }

    /// Waits for the client's `ready` line: every connection open and used once.
    fn wait_ready(&mut self) -> Result<(), String> {
        let stdout = self.0.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("idle: reading the client: {e}"))?;
        if line.trim() != "ready" {
            return Err(format!("idle: the client failed ({:?})", line.trim()));
        }
        Ok(())
    }

    /// Closes the client's stdin, which makes it close its connections and exit.
    fn finish(mut self) -> Result<(), String> {
        drop(self.0.stdin.take());
        // Reaped here; `Drop`'s kill and wait then find it exited and do nothing.
        let status = self.0.wait().map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("idle: the client exited with {status}"));
        }
        Ok(())
    }
}

impl Drop for ClientProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `ioloop-bench idle-client ADDR CONNS SIZE CPU|none`: opens the connections, prints
/// `ready`, and holds them until stdin closes.
pub fn client_process(args: &[String]) -> Result<(), String> {
    let [addr, conns, size, cpu] = args else {
        return Err("usage: ioloop-bench idle-client ADDR CONNS SIZE CPU|none".into());
    };
    let addr: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let conns: usize = conns.parse().map_err(|e| format!("{conns}: {e}"))?;
    let size: usize = size.parse().map_err(|e| format!("{size}: {e}"))?;
    if let Ok(cpu) = cpu.parse() {
        pin_current_thread(cpu);
    }
    let mut held = Vec::with_capacity(conns);
    for k in 0..conns {
        let mut sock =
            TcpStream::connect(addr).map_err(|e| format!("idle client: connect #{k}: {e}"))?;
        exchange(&mut sock, size).map_err(|e| format!("idle client: exchange #{k}: {e}"))?;
        held.push(sock);
    }
    let mut stdout = io::stdout();
    writeln!(stdout, "ready").map_err(|e| e.to_string())?;
    stdout.flush().map_err(|e| e.to_string())?;
    // Until the parent closes our stdin.
    let _ = io::stdin().read_to_end(&mut Vec::new());
    Ok(())
}

/// A `Name:   value kB` field of a `/proc` status file.
fn status_field(path: &str, name: &str) -> Result<u64, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("{path}: no {name}"))
}

/// The anonymous resident memory (heap, stacks) of process `pid`, in KiB.
fn rss_anon_kb(pid: u32) -> Result<u64, String> {
    status_field(&format!("/proc/{pid}/status"), "RssAnon")
}

/// How many times the server's loop thread went to sleep and was woken up.
fn voluntary_switches(server: Server) -> Result<u64, String> {
    let path = format!("/proc/{}/task/{}/status", server.pid, server.tid);
    status_field(&path, "voluntary_ctxt_switches")
}
