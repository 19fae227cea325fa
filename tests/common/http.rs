//! A small HTTP/1.1 client for tests: raw requests over a TCP socket and one response
//! parser (following `Content-Length`, the chunked coding, or the close), used by a
//! blocking [`Client`] against a server in another process or thread, and by a
//! [`SteppedClient`] against a [`SteppedServer`]: an in-process server on a manual-clock
//! loop that the test steps, so timeouts are tested without waiting.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use ioloop::http::HttpServer;
use ioloop::{IoLoop, ManualClock};

/// A response as the client read it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body came chunked.
    pub chunked: bool,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The line at the start of `bytes` (without its line ending) and the bytes it takes.
fn line(bytes: &[u8]) -> Option<(&str, usize)> {
    let end = bytes.iter().position(|&b| b == b'\n')?;
    let text = std::str::from_utf8(&bytes[..end]).expect("an ASCII line");
    Some((text.trim_end_matches('\r'), end + 1))
}

/// Parses one whole response from the start of `bytes`, returning it and the bytes it
/// took; `None` if more bytes are needed. `eof`: the server closed after these bytes (a
/// body without length ends there). `head_only`: the request was HEAD.
pub fn parse_reply(bytes: &[u8], head_only: bool, eof: bool) -> Option<(Reply, usize)> {
    let (status_line, mut at) = line(bytes)?;
    assert!(
        status_line.starts_with("HTTP/1.1 "),
        "not a status line: {status_line:?}"
    );
    let status: u16 = status_line[9..12].parse().unwrap();
    let mut headers = Vec::new();
    loop {
        let (text, used) = line(&bytes[at..])?;
        at += used;
        if text.is_empty() {
            break;
        }
        let (name, value) = text.split_once(':').expect("a header field");
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    let mut reply = Reply {
        status,
        headers,
        body: Vec::new(),
        chunked: false,
    };
    if head_only || status == 304 || status == 204 || (100..200).contains(&status) {
        return Some((reply, at));
    }
    if reply
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        reply.chunked = true;
        loop {
            let (size, used) = line(&bytes[at..])?;
            at += used;
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            if size == 0 {
                let (_, used) = line(&bytes[at..])?;
                return Some((reply, at + used));
            }
            if bytes.len() < at + size + 2 {
                return None;
            }
            reply.body.extend_from_slice(&bytes[at..at + size]);
            at += size + 2;
        }
    }
    if let Some(length) = reply.header("content-length") {
        let length: usize = length.parse().unwrap();
        if bytes.len() < at + length {
            return None;
        }
        reply.body = bytes[at..at + length].to_vec();
        return Some((reply, at + length));
    }
    if !eof {
        return None;
    }
    reply.body = bytes[at..].to_vec();
    Some((reply, bytes.len()))
}

/// A blocking connection to a test server (responses time out after 30 s).
pub struct Client {
    stream: TcpStream,
    /// Bytes read and not yet parsed.
    buffered: Vec<u8>,
    eof: bool,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Client {
            stream,
            buffered: Vec::new(),
            eof: false,
        }
    }

    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads one response (`head_only`: the request was HEAD, so no body follows).
    pub fn read(&mut self, head_only: bool) -> Reply {
        loop {
            if let Some((reply, used)) = parse_reply(&self.buffered, head_only, self.eof) {
                self.buffered.drain(..used);
                return reply;
            }
            assert!(!self.eof, "the server closed mid-response");
            let mut chunk = [0u8; 16384];
            let n = self.stream.read(&mut chunk).expect("a response in time");
            self.eof = n == 0;
            self.buffered.extend_from_slice(&chunk[..n]);
        }
    }

    /// Whether the server closed the connection (reads end of stream).
    pub fn is_closed_by_server(&mut self) -> bool {
        let mut byte = [0u8; 1];
        self.buffered.is_empty() && matches!(self.stream.read(&mut byte), Ok(0) | Err(_))
    }

    /// One request and its response.
    pub fn request(&mut self, request: &str) -> Reply {
        self.send(request.as_bytes());
        self.read(request.starts_with("HEAD "))
    }
}

/// `GET path` on a new connection.
pub fn get(port: u16, path: &str) -> Reply {
    Client::connect(port).request(&format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n"))
}

/// An HTTP server on a manual-clock loop in the test's own thread: the test steps the
/// loop (zero-wait iterations) and moves the clock.
pub struct SteppedServer {
    pub ioloop: IoLoop,
    pub clock: ManualClock,
    pub server: HttpServer,
    pub addr: SocketAddr,
}

/// Loop iterations a stepped exchange may take before the test gives up: this many, and
/// at least `PATIENCE` of wall-clock time (a loaded machine may hand loopback segments
/// over late; the bound is against a hang, never a synchronization).
const MAX_STEPS: usize = 10_000;
const PATIENCE: Duration = Duration::from_secs(10);

/// Whether a wait that has taken `steps` iterations since `since` may give up.
fn out_of_patience(steps: usize, since: std::time::Instant) -> bool {
    steps >= MAX_STEPS && since.elapsed() >= PATIENCE
}

impl SteppedServer {
    /// Serves what `make` builds (an `Application::bind` or `HttpServer::bind` on the
    /// given loop, returning the server and its address).
    pub fn start(
        make: impl FnOnce(&IoLoop) -> std::io::Result<(HttpServer, SocketAddr)>,
    ) -> SteppedServer {
        let (ioloop, clock) = super::manual_loop();
        let (server, addr) = make(&ioloop).unwrap();
        SteppedServer {
            ioloop,
            clock,
            server,
            addr,
        }
    }

    /// One zero-wait iteration.
    pub fn step(&self) {
        self.ioloop.run_once(Duration::ZERO).unwrap();
    }

    /// Runs zero-wait iterations until the loop has nothing ready to do now: what the
    /// client sent is read and handled, what the server can write is written.
    pub fn settle(&self) {
        for _ in 0..64 {
            self.step();
        }
    }

    /// Runs zero-wait iterations until `done` holds (for work whose size depends on
    /// how much the kernel buffered, such as draining a flood).
    pub fn settle_until(&self, mut done: impl FnMut() -> bool) {
        let since = std::time::Instant::now();
        for steps in 0.. {
            if done() {
                return;
            }
            if out_of_patience(steps, since) {
                break;
            }
            self.step();
        }
        panic!("not done after {MAX_STEPS} iterations and {PATIENCE:?}");
    }

    /// Moves the clock by `by` and runs a few iterations (timers, then their I/O).
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
        for _ in 0..4 {
            self.step();
        }
    }

    /// A new connection, accepted by the server before this returns.
    pub fn connect(&self) -> SteppedClient {
        let before = self.server.connections();
        let stream = TcpStream::connect(self.addr).unwrap();
        stream.set_nonblocking(true).unwrap();
        let since = std::time::Instant::now();
        for steps in 0.. {
            if self.server.connections() > before || out_of_patience(steps, since) {
                break;
            }
            self.step();
        }
        assert!(
            self.server.connections() > before,
            "the server did not accept"
        );
        SteppedClient {
            stream,
            buffered: Vec::new(),
            eof: false,
        }
    }
}

/// A non-blocking client of a [`SteppedServer`]: every wait steps the server's loop.
pub struct SteppedClient {
    pub stream: TcpStream,
    buffered: Vec<u8>,
    eof: bool,
}

impl SteppedClient {
    /// Writes all of `bytes`, stepping the server while the socket is full.
    pub fn send(&mut self, server: &SteppedServer, bytes: &[u8]) {
        let mut at = 0;
        for _ in 0..MAX_STEPS {
            if at == bytes.len() {
                return;
            }
            match self.stream.write(&bytes[at..]) {
                Ok(n) => at += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => server.step(),
                Err(e) => panic!("write failed: {e}"),
            }
        }
        panic!("the server stopped reading");
    }

    /// Reads what has arrived, without waiting.
    fn pull(&mut self) {
        let mut chunk = [0u8; 16384];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.eof = true;
                    return;
                }
                Ok(n) => self.buffered.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    self.eof = true;
                    return;
                }
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }

    /// Steps the server until a whole response has arrived, or `steps` iterations pass
    /// (then `None`: the server is waiting, say for its clock).
    pub fn reply_within(
        &mut self,
        server: &SteppedServer,
        head_only: bool,
        steps: usize,
    ) -> Option<Reply> {
        for _ in 0..steps {
            self.pull();
            if let Some((reply, used)) = parse_reply(&self.buffered, head_only, self.eof) {
                self.buffered.drain(..used);
                return Some(reply);
            }
            if self.eof {
                return None;
            }
            server.step();
        }
        None
    }

    /// Steps the server until a whole response has arrived.
    pub fn reply(&mut self, server: &SteppedServer) -> Reply {
        self.patient_reply(server, false)
            .expect("a response (the server closed or never answered)")
    }

    /// [`reply_within`](Self::reply_within) with the patience of a wait for something
    /// that must come.
    fn patient_reply(&mut self, server: &SteppedServer, head_only: bool) -> Option<Reply> {
        let since = std::time::Instant::now();
        loop {
            if let Some(reply) = self.reply_within(server, head_only, MAX_STEPS) {
                return Some(reply);
            }
            if self.eof || since.elapsed() >= PATIENCE {
                return None;
            }
        }
    }

    /// One request and its response.
    pub fn request(&mut self, server: &SteppedServer, request: &str) -> Reply {
        self.send(server, request.as_bytes());
        self.patient_reply(server, request.starts_with("HEAD "))
            .expect("a response (the server closed or never answered)")
    }

    /// Whether the server has closed the connection, after a few steps; bytes that
    /// arrived first are kept for [`reply`](Self::reply).
    pub fn is_closed(&mut self, server: &SteppedServer) -> bool {
        // At least 16 steps and 50 ms: on a loaded machine the kernel may hand loopback
        // segments over late (its softirq thread), so a step count alone is no bound.
        let since = std::time::Instant::now();
        for steps in 0.. {
            self.pull();
            if self.eof {
                return true;
            }
            if steps >= 16 && since.elapsed() >= Duration::from_millis(50) {
                return false;
            }
            server.step();
        }
        unreachable!("the loop returns")
    }

    /// Bytes received and not parsed as a response.
    pub fn unparsed(&mut self) -> &[u8] {
        self.pull();
        &self.buffered
    }
}
