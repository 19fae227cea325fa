//! Small helpers shared by the integration tests: a loop on a manual clock, a client
//! thread, socket pairs. Stepping and log capture are the library's own
//! (`ioloop::testing`).
#![allow(dead_code)]

use std::cell::RefCell;
use std::net::{TcpListener, TcpStream};
use std::rc::Rc;
use std::time::Instant;

use ioloop::{IoLoop, ManualClock};

pub mod counting_alloc;
pub mod example;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "websocket")]
pub mod websocket;

/// A loop driven by a manual clock.
pub fn manual_loop() -> (IoLoop, ManualClock) {
    let clock = ManualClock::new();
    let ioloop = IoLoop::builder().clock(clock.clone()).build().unwrap();
    (ioloop, clock)
}

/// Runs `client` on a thread against a server at `addr` while the loop runs; stops the
/// loop when the client is done and returns its result.
pub fn with_client<T: Send + 'static>(
    ioloop: &IoLoop,
    addr: std::net::SocketAddr,
    client: impl FnOnce(std::net::SocketAddr) -> T + Send + 'static,
) -> T {
    let remote = ioloop.remote();
    let thread = std::thread::spawn(move || {
        let out = client(addr);
        remote.stop();
        out
    });
    ioloop.start().unwrap();
    thread.join().unwrap()
}

/// Seconds since `t0`, as f64 (for comparing against Tornado's test tables).
pub fn secs_since(t0: Instant, t: Instant) -> f64 {
    (t - t0).as_secs_f64()
}

/// A shared, append-only log of events for ordering assertions.
#[derive(Clone, Default)]
pub struct Trace(Rc<RefCell<Vec<String>>>);

impl Trace {
    pub fn push(&self, s: impl Into<String>) {
        self.0.borrow_mut().push(s.into());
    }
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.0.borrow_mut())
    }
    pub fn len(&self) -> usize {
        self.0.borrow().len()
    }
}

/// A small seeded generator (xorshift64*) for the randomized tests: reproducible from
/// its seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A connected pair of Unix stream sockets, both non-blocking.
pub fn unix_pair() -> (
    std::os::unix::net::UnixStream,
    std::os::unix::net::UnixStream,
) {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

/// A connected pair of loopback TCP streams, both non-blocking.
pub fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (b, _) = listener.accept().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

/// A flag set when the value holding it is dropped: proves a future was dropped.
#[derive(Clone, Default)]
pub struct DropFlag(Rc<std::cell::Cell<bool>>);

impl DropFlag {
    /// A guard that sets the flag when dropped.
    pub fn guard(&self) -> DropGuard {
        DropGuard(self.0.clone())
    }
    pub fn is_dropped(&self) -> bool {
        self.0.get()
    }
}

pub struct DropGuard(Rc<std::cell::Cell<bool>>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// Polls `future` once with a waker that does nothing.
pub fn poll_once<F: std::future::Future + Unpin>(future: &mut F) -> std::task::Poll<F::Output> {
    struct Noop;
    impl std::task::Wake for Noop {
        fn wake(self: std::sync::Arc<Self>) {}
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Noop));
    let mut cx = std::task::Context::from_waker(&waker);
    std::pin::Pin::new(future).poll(&mut cx)
}

/// Whether real clients are required (`.ci/run` sets `IOLOOP_REQUIRE_CLIENTS=1`).
pub fn clients_required() -> bool {
    std::env::var("IOLOOP_REQUIRE_CLIENTS").is_ok_and(|v| v == "1")
}

/// A test needs `tool`, which is missing: prints why the test is skipped, or fails when
/// real clients are required.
pub fn require_tool(tool: &str) {
    assert!(
        !clients_required(),
        "{tool} is not installed, and IOLOOP_REQUIRE_CLIENTS=1 requires it"
    );
    println!("skipped: {tool} not installed");
}

/// Whether `tool` runs here (`tool --version` or the given probe arguments).
pub fn has_tool(tool: &str, probe: &[&str]) -> bool {
    std::process::Command::new(tool)
        .args(probe)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

/// Raises the open-file limit and says whether `wanted` descriptors (for this process and
/// as many for a server it starts) are available; prints why not.
pub fn enough_fds(wanted: usize) -> bool {
    let limit = example::raise_fd_limit();
    if limit < wanted as u64 + 100 {
        println!("skipped: the open-file limit is {limit}, below {wanted}");
        return false;
    }
    true
}

/// The headless browser: Debian's `chromium`, or another name it goes by.
pub fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| {
            std::process::Command::new(name)
                .arg("--version")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

/// Whether `python3` can import `module` (`"websockets.sync.client"`, `"tornado.web"`).
pub fn python_has(module: &str) -> bool {
    std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `python3 tests/clients/SCRIPT ARGS..` and asserts it exited 0 having printed
/// `ok` (the clients print what went wrong otherwise).
pub fn python_client_ok(script: &str, args: &[&str]) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    let out = std::process::Command::new("python3")
        .arg(&path)
        .args(args)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim() == "ok",
        "{script} {args:?}: {:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
