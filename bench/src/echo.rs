//! Workload 5, TCP echo on loopback.
//!
//! - `echo`: one load client (this module's [`client`], the same for every server) on a
//!   worker thread pinned to another core opens `--conns` connections to a server on
//!   127.0.0.1 and plays ping-pong on each: it sends one message of `--size` bytes, waits
//!   until all of it came back, and sends the next. The server runs on the calling thread
//!   (pinned to core 0 by `run.sh`'s taskset). After a warm-up (a quarter of the window,
//!   at least 100 ms) the client measures for a fixed window of `--ms` milliseconds:
//!   messages/s, p50/p99 round trip (send of the first byte to receipt of the last), and
//!   the CPU time (user + system) of the server thread per message, read by the client
//!   from the server thread's `pthread_getcpuclockid` clock at both ends of the window.
//!   Then it stops sending, waits for the echoes in flight, closes its connections and
//!   stops the server. With `--delay-ms` the client waits that long before connecting,
//!   the server idle in its poller meanwhile (time for `strace_echo.sh` to attach `perf
//!   stat` to the server thread).
//! - The Python peers (`tornado`, `asyncio`, `uvloop`) are a child process instead,
//!   `bench/.venv/bin/python bench/python/echo.py <impl>`, started from the calling thread
//!   so that it inherits its CPU affinity (core 0 under `run.sh`), which then only waits
//!   for the client. The child binds its own listening socket (127.0.0.1, backlog
//!   [`BACKLOG`]) and prints its port; the same client drives it, and the server CPU is
//!   the child's CPU-time clock (`clock_getcpuclockid`) at both ends of the window.
//!
//! Every server does the same work: one buffer of [`BUF`] bytes per connection, echo back
//! what a read returned as soon as it returned it, TCP_NODELAY on the accepted sockets,
//! and the same listening socket (backlog [`BACKLOG`], so that 1000 connections arriving
//! at once are never dropped). The Python peers read with their libraries' own buffer
//! sizes (in ping-pong a read returns at most one message anyway) and listen with the
//! same backlog on a socket of their own.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cross::spawn_worker;
use crate::util::{cpu_clock, current_tid, percentile, this_thread_cpu_clock, Report};

/// Per-connection buffer of every server (and the most one read takes).
pub const BUF: usize = 16 * 1024;
/// Listen backlog of the shared listening socket.
pub const BACKLOG: i32 = 1024;
/// The client gives up when no echo arrives for this long.
const STALL: Duration = Duration::from_secs(5);

/// What the client measured over the window.
struct Stats {
    /// Messages completed in the window.
    msgs: u64,
    /// Messages completed over the whole run (warm-up and drain included).
    total: u64,
    window: Duration,
    server_cpu: Duration,
    client_cpu: Duration,
    samples: Vec<Duration>,
}

type ClientResult = Result<Stats, String>;

/// The server under load, as the load thread sees it.
#[derive(Clone, Copy)]
pub(crate) struct Server {
    pub addr: SocketAddr,
    /// The server's CPU-time clock: its thread's (a server in this process) or its
    /// process's (a child process).
    pub cpu_clock: libc::clockid_t,
    /// The process, and the thread in it, that run the server's loop.
    pub pid: u32,
    pub tid: u32,
}

/// What loads a server: `drive`, run on a thread of its own (pinned to `cpu`) once the
/// server listens; when it returns, the server is stopped. `buf` is the per-connection
/// buffer of the Rust servers.
pub(crate) struct Load<T> {
    cpu: Option<usize>,
    buf: usize,
    drive: Box<dyn FnOnce(Server) -> Result<T, String> + Send>,
}

impl<T: Send + 'static> Load<T> {
    pub(crate) fn new(
        cpu: Option<usize>,
        buf: usize,
        drive: impl FnOnce(Server) -> Result<T, String> + Send + 'static,
    ) -> Load<T> {
        Load {
            cpu,
            buf,
            drive: Box::new(drive),
        }
    }

    /// Starts the load against a server run by the calling thread at `addr`; it calls
    /// `stop` (which must make the server return) when it is done, also when it fails.
    fn start(
        self,
        addr: SocketAddr,
        stop: impl FnOnce() + Send + 'static,
    ) -> JoinHandle<Result<T, String>> {
        let server = Server {
            addr,
            cpu_clock: this_thread_cpu_clock(),
            pid: std::process::id(),
            tid: current_tid(),
        };
        self.start_against(server, stop)
    }

    fn start_against(
        self,
        server: Server,
        stop: impl FnOnce() + Send + 'static,
    ) -> JoinHandle<Result<T, String>> {
        let drive = self.drive;
        spawn_worker(self.cpu, move || {
            let result = drive(server);
            stop();
            result
        })
    }
}

pub fn run(
    imp: &str,
    conns: usize,
    size: usize,
    ms: u64,
    delay_ms: u64,
    cpu: Option<usize>,
) -> Result<Report, String> {
    if size < 8 {
        return Err("echo: --size must be at least 8 (each message carries a stamp)".into());
    }
    let (conns, window) = (conns.max(1), Duration::from_millis(ms.max(1)));
    let delay = Duration::from_millis(delay_ms);
    let load = Load::new(cpu, BUF, move |server: Server| {
        std::thread::sleep(delay);
        client(server.addr, conns, size, window, server.cpu_clock)
    });
    let (mut stats, note) = serve(imp, load)?;
    stats.samples.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let msgs = stats.msgs.max(1) as f64;
    Ok(Report::new("echo", imp, stats.msgs as usize)
        .param("conns", conns)
        .param("size", size)
        .param("ms", ms as usize)
        .metric("msgs_per_s", stats.msgs as f64 / stats.window.as_secs_f64())
        .metric("p50_us", us(percentile(&stats.samples, 50.0)))
        .metric("p99_us", us(percentile(&stats.samples, 99.0)))
        .metric(
            "server_cpu_ns_per_msg",
            stats.server_cpu.as_nanos() as f64 / msgs,
        )
        .metric(
            "server_busy",
            stats.server_cpu.as_secs_f64() / stats.window.as_secs_f64(),
        )
        .metric(
            "client_cpu_ns_per_msg",
            stats.client_cpu.as_nanos() as f64 / msgs,
        )
        .metric("total_msgs", stats.total as f64)
        .note(&note))
}

/// Runs the echo server `imp` under `load` until the load is done; returns the load's
/// result and a one-line description of the server.
pub(crate) fn serve<T: Send + 'static>(imp: &str, load: Load<T>) -> Result<(T, String), String> {
    if matches!(imp, "tornado" | "asyncio" | "uvloop") {
        return python_server(imp, load); // listens on its own socket
    }
    let listener = listener().map_err(|e| format!("{imp}: cannot listen: {e}"))?;
    let (result, note) = match imp {
        "ioloop" => (
            ioloop_server(load, listener, false),
            "TcpServer::new; per connection read_into_then(Vec buffer, partial) then write(), repeat",
        ),
        "ioloop-async" => (
            ioloop_server(load, listener, true),
            "TcpServer::new_async; per connection loop { read_into(&mut buffer, partial).await; write_all(..).await }",
        ),
        "floor" => (
            floor_server(load, listener),
            "polling::Poller, PollMode::Level; one read(2) per readiness event, write(2) straight back (WRITE interest only after a short write)",
        ),
        "tokio" => (
            tokio_server(load, listener),
            "current_thread + enable_io, tokio::spawn per connection: readable().await + try_read, writable().await + try_write (what AsyncReadExt::read / write_all do; no io-util feature)",
        ),
        "calloop" => (
            calloop_server(load, listener),
            "Generic<TcpStream> per connection, Mode::Level; one read per event, written straight back",
        ),
        "mio" => (
            mio_server(load, listener),
            "mio::Poll (edge-triggered); per readiness event: read, write back, read again until WouldBlock",
        ),
        _ => return Err(format!("unknown implementation {imp}")),
    };
    Ok((result?, note.to_owned()))
}

/// The listening socket every server uses: 127.0.0.1, an OS-chosen port, non-blocking.
fn listener() -> io::Result<TcpListener> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    // std listens with a backlog of 128; listening again only raises it.
    // SAFETY: listen(2) on a socket we own.
    if unsafe { libc::listen(listener.as_raw_fd(), BACKLOG) } != 0 {
        return Err(io::Error::last_os_error());
    }
    listener.set_nonblocking(true)?;
    Ok(listener)
}

// ---------------------------------------------------------------------------------------
// The load client: one thread, level-triggered epoll, one message in flight per connection.

/// One client connection: the message being sent and the echo being received.
struct Conn {
    sock: TcpStream,
    /// The message; its first 8 bytes are a stamp (connection and sequence number).
    out: Vec<u8>,
    /// Bytes of `out` written so far.
    sent: usize,
    /// The echo, `got` bytes of it so far.
    echo: Vec<u8>,
    got: usize,
    seq: u64,
    sent_at: Instant,
    /// Registered for EPOLLOUT too (after a short write).
    want_out: bool,
}

fn epoll_ctl(epfd: i32, op: i32, fd: i32, events: u32, key: usize) -> Result<(), String> {
    let mut ev = libc::epoll_event {
        events,
        u64: key as u64,
    };
    // SAFETY: epoll_ctl reads the event we pass.
    if unsafe { libc::epoll_ctl(epfd, op, fd, &mut ev) } != 0 {
        return Err(format!("epoll_ctl: {}", io::Error::last_os_error()));
    }
    Ok(())
}

impl Conn {
    /// Stamps and starts sending the next message.
    fn send(&mut self, epfd: i32, key: usize, now: Instant) -> Result<(), String> {
        self.seq += 1;
        let stamp = self.seq ^ ((key as u64) << 40);
        self.out[..8].copy_from_slice(&stamp.to_le_bytes());
        self.sent = 0;
        self.sent_at = now;
        self.flush(epfd, key)
    }

    /// Writes what the socket takes of the message; watches EPOLLOUT while some is left.
    fn flush(&mut self, epfd: i32, key: usize) -> Result<(), String> {
        let fd = self.sock.as_raw_fd();
        while self.sent < self.out.len() {
            match (&self.sock).write(&self.out[self.sent..]) {
                Ok(0) => return Err("echo client: write returned 0".into()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !self.want_out {
                        let events = (libc::EPOLLIN | libc::EPOLLOUT) as u32;
                        epoll_ctl(epfd, libc::EPOLL_CTL_MOD, fd, events, key)?;
                        self.want_out = true;
                    }
                    return Ok(());
                }
                Err(e) => return Err(format!("echo client: write: {e}")),
            }
        }
        if self.want_out {
            epoll_ctl(epfd, libc::EPOLL_CTL_MOD, fd, libc::EPOLLIN as u32, key)?;
            self.want_out = false;
        }
        Ok(())
    }

    /// Reads what is there of the echo; true once all of it came back (and was checked).
    fn receive(&mut self, key: usize) -> Result<bool, String> {
        match (&self.sock).read(&mut self.echo[self.got..]) {
            Ok(0) => return Err("echo client: the server closed a connection".into()),
            Ok(n) => self.got += n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(format!("echo client: read: {e}")),
        }
        if self.got < self.echo.len() {
            return Ok(false);
        }
        self.got = 0;
        let stamp = self.seq ^ ((key as u64) << 40);
        if self.echo[..8] != stamp.to_le_bytes() {
            return Err(format!("echo client: connection {key} got a wrong echo"));
        }
        Ok(true)
    }
}

#[derive(PartialEq)]
enum Phase {
    Warm,
    Measure,
    Drain,
}

/// The load client (see the module doc).
fn client(
    addr: SocketAddr,
    conns: usize,
    size: usize,
    window: Duration,
    server_clock: libc::clockid_t,
) -> ClientResult {
    let mut pool = Vec::with_capacity(conns);
    for _ in 0..conns {
        let sock = TcpStream::connect(addr).map_err(|e| format!("echo client: connect: {e}"))?;
        sock.set_nodelay(true).map_err(|e| e.to_string())?;
        sock.set_nonblocking(true).map_err(|e| e.to_string())?;
        pool.push(Conn {
            sock,
            out: vec![0x5a; size],
            sent: 0,
            echo: vec![0; size],
            got: 0,
            seq: 0,
            sent_at: Instant::now(),
            want_out: false,
        });
    }
    // SAFETY: a new epoll instance, closed at the end of this function.
    let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if epfd < 0 {
        return Err(format!("epoll_create1: {}", io::Error::last_os_error()));
    }
    let result = drive(epfd, &mut pool, window, server_clock);
    // SAFETY: closing the epoll fd we created.
    unsafe { libc::close(epfd) };
    result
}

fn drive(
    epfd: i32,
    pool: &mut [Conn],
    window: Duration,
    server_clock: libc::clockid_t,
) -> ClientResult {
    let client_clock = libc::CLOCK_THREAD_CPUTIME_ID;
    let start = Instant::now();
    for (key, conn) in pool.iter_mut().enumerate() {
        epoll_ctl(
            epfd,
            libc::EPOLL_CTL_ADD,
            conn.sock.as_raw_fd(),
            libc::EPOLLIN as u32,
            key,
        )?;
        conn.send(epfd, key, start)?;
    }
    let warm_end = start + (window / 4).max(Duration::from_millis(100));
    let mut phase = Phase::Warm;
    let mut in_flight = pool.len();
    let mut done: u64 = 0;
    let mut samples = Vec::with_capacity(1 << 16);
    // (instant, messages done, server CPU, client CPU) at the start of the window.
    let mut at_start = (start, 0, Duration::ZERO, Duration::ZERO);
    let mut stats = None;
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    while in_flight > 0 {
        // SAFETY: epoll_wait writes at most `events.len()` entries into `events`.
        let n = unsafe {
            libc::epoll_wait(
                epfd,
                events.as_mut_ptr(),
                events.len() as i32,
                STALL.as_millis() as i32,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("epoll_wait: {e}"));
        }
        if n == 0 {
            return Err(format!("echo client: no echo for {STALL:?}"));
        }
        for ev in &events[..n as usize] {
            let key = ev.u64 as usize;
            let conn = &mut pool[key];
            if ev.events & libc::EPOLLOUT as u32 != 0 {
                conn.flush(epfd, key)?;
            }
            if ev.events & (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR) as u32 == 0 {
                continue;
            }
            if !conn.receive(key)? {
                continue;
            }
            let now = Instant::now();
            done += 1;
            if phase == Phase::Measure {
                samples.push(now - conn.sent_at);
            }
            if phase == Phase::Drain {
                in_flight -= 1;
            } else {
                conn.send(epfd, key, now)?;
            }
        }
        if phase == Phase::Drain {
            continue;
        }
        let now = Instant::now();
        if phase == Phase::Warm && now >= warm_end {
            phase = Phase::Measure;
            at_start = (now, done, cpu_clock(server_clock), cpu_clock(client_clock));
        } else if phase == Phase::Measure && now >= at_start.0 + window {
            phase = Phase::Drain;
            let (t0, done0, server0, client0) = at_start;
            stats = Some(Stats {
                msgs: done - done0,
                total: 0,
                window: now - t0,
                server_cpu: cpu_clock(server_clock).saturating_sub(server0),
                client_cpu: cpu_clock(client_clock).saturating_sub(client0),
                samples: std::mem::take(&mut samples),
            });
        }
    }
    let mut stats = stats.expect("the loop ends in the drain phase");
    stats.total = done;
    Ok(stats)
}

// ---------------------------------------------------------------------------------------
// The servers.

fn ioloop_server<T: Send + 'static>(
    load: Load<T>,
    listener: TcpListener,
    tasks: bool,
) -> Result<T, String> {
    let buf = load.buf;
    use ioloop::{IoLoop, IoStream, TcpServer};

    /// Reads what is there (up to the buffer), writes it back, repeats.
    fn echo_then(stream: &IoStream, buf: Vec<u8>) {
        stream.read_into_then(buf, true, |stream, buf, n| match n {
            Ok(n) => {
                if stream.write(&buf[..n]).is_ok() {
                    echo_then(stream, buf);
                }
            }
            Err(_) => stream.close(),
        });
    }

    let ioloop = IoLoop::new().map_err(|e| e.to_string())?;
    let server = if tasks {
        TcpServer::new_async(&ioloop, move |stream, _peer| async move {
            let _ = stream.set_nodelay(true);
            let mut buf = vec![0u8; buf];
            while let Ok(n) = stream.read_into(&mut buf, true).await {
                if stream.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            stream.close();
        })
    } else {
        TcpServer::new(&ioloop, move |_, stream, _peer| {
            let _ = stream.set_nodelay(true);
            echo_then(&stream, vec![0u8; buf]);
        })
    };
    let addr = server
        .add_sockets(vec![listener])
        .map_err(|e| e.to_string())?[0];
    let remote = ioloop.remote();
    let client = load.start(addr, move || remote.stop());
    ioloop.start().map_err(|e| e.to_string())?;
    drop(server);
    client.join().unwrap()
}

/// A floor connection: its socket, its buffer, and `buf[start..end]` still to write.
struct FloorConn {
    sock: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

fn floor_server<T: Send + 'static>(load: Load<T>, listener: TcpListener) -> Result<T, String> {
    let buf = load.buf;
    use polling::{Event, Events, PollMode, Poller};
    const LISTENER: usize = usize::MAX - 1;

    let poller = Arc::new(Poller::new().map_err(|e| e.to_string())?);
    let stop = Arc::new(AtomicBool::new(false));
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    // SAFETY: the listener is deleted from the poller before it is dropped.
    unsafe { poller.add_with_mode(&listener, Event::readable(LISTENER), PollMode::Level) }
        .map_err(|e| e.to_string())?;
    let client = {
        let (poller, stop) = (poller.clone(), stop.clone());
        load.start(addr, move || {
            stop.store(true, Ordering::Release);
            poller.notify().unwrap();
        })
    };
    let mut conns: slab::Slab<FloorConn> = slab::Slab::new();
    let mut events = Events::new();
    while !stop.load(Ordering::Acquire) {
        events.clear();
        poller.wait(&mut events, None).map_err(|e| e.to_string())?;
        for ev in events.iter() {
            if ev.key == LISTENER {
                while let Ok((sock, _)) = listener.accept() {
                    sock.set_nodelay(true).map_err(|e| e.to_string())?;
                    sock.set_nonblocking(true).map_err(|e| e.to_string())?;
                    let entry = conns.vacant_entry();
                    // SAFETY: deleted from the poller before the socket is dropped.
                    unsafe {
                        poller.add_with_mode(&sock, Event::readable(entry.key()), PollMode::Level)
                    }
                    .map_err(|e| e.to_string())?;
                    entry.insert(FloorConn {
                        sock,
                        buf: vec![0; buf],
                        start: 0,
                        end: 0,
                    });
                }
                continue;
            }
            let key = ev.key;
            let Some(conn) = conns.get_mut(key) else {
                continue;
            };
            let mut open = true;
            if conn.start == conn.end {
                match (&conn.sock).read(&mut conn.buf) {
                    Ok(0) => open = false,
                    Ok(n) => (conn.start, conn.end) = (0, n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => open = false,
                }
            }
            let mut short = false;
            while open && conn.start < conn.end {
                match (&conn.sock).write(&conn.buf[conn.start..conn.end]) {
                    Ok(n) => conn.start += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        short = true;
                        break;
                    }
                    Err(_) => open = false,
                }
            }
            if !open {
                let conn = conns.remove(key);
                poller.delete(&conn.sock).map_err(|e| e.to_string())?;
                continue;
            }
            // Only a short write changes the interest: WRITE until it is done, then READ.
            if short && ev.readable {
                poller
                    .modify_with_mode(&conn.sock, Event::writable(key), PollMode::Level)
                    .map_err(|e| e.to_string())?;
            } else if !short && ev.writable {
                poller
                    .modify_with_mode(&conn.sock, Event::readable(key), PollMode::Level)
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    for (_, conn) in conns {
        let _ = poller.delete(&conn.sock);
    }
    let _ = poller.delete(&listener);
    client.join().unwrap()
}

fn tokio_server<T: Send + 'static>(load: Load<T>, listener: TcpListener) -> Result<T, String> {
    async fn echo(sock: tokio::net::TcpStream, buf: usize) {
        let _ = sock.set_nodelay(true);
        let mut buf = vec![0u8; buf];
        loop {
            if sock.readable().await.is_err() {
                return;
            }
            let n = match sock.try_read(&mut buf) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(_) => return,
            };
            let mut off = 0;
            while off < n {
                if sock.writable().await.is_err() {
                    return;
                }
                match sock.try_write(&buf[off..n]) {
                    Ok(w) => off += w,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
        }
    }

    let buf = load.buf;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let stop = Arc::new(tokio::sync::Notify::new());
    let client = {
        let stop = stop.clone();
        load.start(addr, move || stop.notify_one())
    };
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(echo(sock, buf));
            }
        });
        stop.notified().await;
    });
    drop(rt);
    client.join().unwrap()
}

/// Writes all of `data`. A socket that would block (never in ping-pong: one reply always
/// fits in the socket buffer) is made blocking for the rest of it.
fn write_all_or_block(mut sock: &TcpStream, data: &[u8]) -> io::Result<()> {
    let mut off = 0;
    while off < data.len() {
        match sock.write(&data[off..]) {
            Ok(n) => off += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                sock.set_nonblocking(false)?;
                sock.write_all(&data[off..])?;
                return sock.set_nonblocking(true);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn calloop_server<T: Send + 'static>(load: Load<T>, listener: TcpListener) -> Result<T, String> {
    let buf = load.buf;
    use calloop::generic::Generic;
    use calloop::{EventLoop, Interest, Mode, PostAction};

    let mut event_loop: EventLoop<'static, ()> = EventLoop::try_new().map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let signal = event_loop.get_signal();
    let client = load.start(addr, move || {
        signal.stop();
        signal.wakeup();
    });
    let handle = event_loop.handle();
    let conns = handle.clone();
    handle
        .insert_source(
            Generic::new(listener, Interest::READ, Mode::Level),
            move |_, listener, _| loop {
                let sock = match listener.accept() {
                    Ok((sock, _)) => sock,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Ok(PostAction::Continue)
                    }
                    Err(e) => return Err(e),
                };
                sock.set_nodelay(true)?;
                sock.set_nonblocking(true)?;
                let mut buf = vec![0u8; buf];
                let source = Generic::new(sock, Interest::READ, Mode::Level);
                conns
                    .insert_source(source, move |_, sock, _| {
                        let n = match (&**sock).read(&mut buf) {
                            Ok(0) => return Ok(PostAction::Remove),
                            Ok(n) => n,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                return Ok(PostAction::Continue)
                            }
                            Err(_) => return Ok(PostAction::Remove),
                        };
                        Ok(match write_all_or_block(sock, &buf[..n]) {
                            Ok(()) => PostAction::Continue,
                            Err(_) => PostAction::Remove,
                        })
                    })
                    .map_err(|e| io::Error::other(e.to_string()))?;
            },
        )
        .map_err(|e| e.to_string())?;
    event_loop
        .run(None, &mut (), |_| {})
        .map_err(|e| e.to_string())?;
    drop(event_loop);
    client.join().unwrap()
}

/// A mio connection: its socket, its buffer, `buf[start..end]` still to write, and
/// whether it is registered for WRITABLE too.
struct MioConn {
    sock: mio::net::TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    want_write: bool,
}

impl MioConn {
    /// Edge-triggered: reads and echoes until the socket would block. False once the
    /// connection is done (closed by the peer, or an error).
    fn drive(&mut self, registry: &mio::Registry, token: mio::Token) -> io::Result<bool> {
        loop {
            while self.start < self.end {
                match self.sock.write(&self.buf[self.start..self.end]) {
                    Ok(n) => self.start += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if !self.want_write {
                            let both = mio::Interest::READABLE | mio::Interest::WRITABLE;
                            registry.reregister(&mut self.sock, token, both)?;
                            self.want_write = true;
                        }
                        return Ok(true);
                    }
                    Err(_) => return Ok(false),
                }
            }
            if self.want_write {
                registry.reregister(&mut self.sock, token, mio::Interest::READABLE)?;
                self.want_write = false;
            }
            match self.sock.read(&mut self.buf) {
                Ok(0) => return Ok(false),
                Ok(n) => (self.start, self.end) = (0, n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Ok(false),
            }
        }
    }
}

fn mio_server<T: Send + 'static>(load: Load<T>, listener: TcpListener) -> Result<T, String> {
    let buf = load.buf;
    use mio::{Events, Interest, Poll, Token, Waker};
    const LISTENER: Token = Token(usize::MAX - 1);
    const WAKER: Token = Token(usize::MAX - 2);

    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    // Kept here too: closing the waker's eventfd would drop its event before the poll.
    let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(|e| e.to_string())?);
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let mut listener = mio::net::TcpListener::from_std(listener);
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .map_err(|e| e.to_string())?;
    let client = {
        let waker = waker.clone();
        load.start(addr, move || waker.wake().unwrap())
    };
    let mut conns: slab::Slab<MioConn> = slab::Slab::new();
    let mut events = Events::with_capacity(1024);
    'run: loop {
        poll.poll(&mut events, None).map_err(|e| e.to_string())?;
        for ev in events.iter() {
            match ev.token() {
                WAKER => break 'run,
                LISTENER => {
                    while let Ok((mut sock, _)) = listener.accept() {
                        sock.set_nodelay(true).map_err(|e| e.to_string())?;
                        let entry = conns.vacant_entry();
                        let token = Token(entry.key());
                        poll.registry()
                            .register(&mut sock, token, Interest::READABLE)
                            .map_err(|e| e.to_string())?;
                        let mut conn = MioConn {
                            sock,
                            buf: vec![0; buf],
                            start: 0,
                            end: 0,
                            want_write: false,
                        };
                        // Edge-triggered: bytes that arrived before registering give no event.
                        let open = conn
                            .drive(poll.registry(), token)
                            .map_err(|e| e.to_string())?;
                        if open {
                            entry.insert(conn);
                        } else {
                            let _ = poll.registry().deregister(&mut conn.sock);
                        }
                    }
                }
                Token(key) => {
                    let Some(conn) = conns.get_mut(key) else {
                        continue;
                    };
                    if !conn
                        .drive(poll.registry(), Token(key))
                        .map_err(|e| e.to_string())?
                    {
                        let mut conn = conns.remove(key);
                        let _ = poll.registry().deregister(&mut conn.sock);
                    }
                }
            }
        }
    }
    client.join().unwrap()
}

// ---------------------------------------------------------------------------------------
// The Python peers: `python/echo.py` in a child process.

/// The Python server process; stopped and reaped when dropped, on error paths too.
struct PythonChild(Child);

impl Drop for PythonChild {
    fn drop(&mut self) {
        let child = &mut self.0;
        if !matches!(child.try_wait(), Ok(None)) {
            return; // already reaped (or not ours to wait for)
        }
        // echo.py stops at the end of its stdin, and on SIGTERM.
        drop(child.stdin.take());
        // SAFETY: kill(2) on our own child, not reaped yet, so its pid is still its own.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Starts `bench/.venv/bin/python bench/python/echo.py <imp>` and reads the line it prints
/// once it listens: its port, a tab, and its description (the report's note).
fn start_python(imp: &str) -> Result<(PythonChild, SocketAddr, String), String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = dir.join(".venv/bin/python");
    let script = dir.join("python/echo.py");
    if !python.exists() {
        return Err(format!(
            "echo {imp}: {} not found: create the venv first (bench/run.sh does: \
             python3 -m venv bench/.venv && bench/.venv/bin/pip install tornado uvloop)",
            python.display()
        ));
    }
    if !script.exists() {
        return Err(format!("echo {imp}: {} not found", script.display()));
    }
    // Spawned from this thread, the child inherits its CPU affinity (core 0 under run.sh).
    let child = Command::new(&python)
        .arg(&script)
        .arg(imp)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("echo {imp}: cannot start {}: {e}", python.display()))?;
    let mut child = PythonChild(child);
    let stdout = child.0.stdout.take().expect("stdout is piped");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("echo {imp}: reading the port from echo.py: {e}"))?;
    let line = line.trim_end();
    let (port, note) = line.split_once('\t').unwrap_or((line, ""));
    match port.parse::<u16>() {
        Ok(port) => Ok((child, SocketAddr::from(([127, 0, 0, 1], port)), note.into())),
        Err(_) if line.is_empty() => {
            let status = child.0.wait().map_err(|e| e.to_string())?;
            Err(format!(
                "echo {imp}: {} ended ({status}) before printing its port",
                script.display()
            ))
        }
        // "error: cannot import uvloop (...)", for one.
        Err(_) => Err(format!("echo {imp}: {}: {line}", script.display())),
    }
}

/// Runs the load client against a Python server; returns its result and the note.
fn python_server<T: Send + 'static>(imp: &str, load: Load<T>) -> Result<(T, String), String> {
    let (child, addr, note) = start_python(imp)?;
    let pid = child.0.id();
    let server = Server {
        addr,
        cpu_clock: process_cpu_clock(pid)?,
        pid,
        tid: pid, // echo.py runs one thread
    };
    // The server is another process: nothing to stop here, dropping `child` ends it.
    let result = load.start_against(server, || {}).join().unwrap();
    drop(child);
    Ok((result?, note))
}

/// The CPU-time clock of process `pid` (all its threads, user + system).
fn process_cpu_clock(pid: u32) -> Result<libc::clockid_t, String> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: writes the clock id of process `pid` into `clock`.
    match unsafe { libc::clock_getcpuclockid(pid as libc::pid_t, &mut clock) } {
        0 => Ok(clock),
        e => Err(format!("clock_getcpuclockid({pid}): error {e}")),
    }
}
