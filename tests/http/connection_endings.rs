//! Every way an HTTP connection ends, while pipelined streamed responses wait in its
//! pipeline and their writers live in write callbacks (as `StaticFiles` keeps them): the
//! process never aborts, the loop goes on serving, and every writer is let go.
//!
//! The bug these pin (issue 24 §1): the connection cleared its pipeline while its state
//! was borrowed; a dropped write callback dropped its `BodyWriter`, whose `Drop` borrowed
//! the state again: a panic inside a destructor, then an abort. One TCP connection could
//! stop the whole server.

#![cfg(feature = "web")]

use crate::common;

use std::cell::{Cell, RefCell};
use std::io::Read;
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use common::http::{SteppedClient, SteppedServer};
use ioloop::http::{BodyWriter, HttpServer, Request, Responder, Response};
use ioloop::web::{get, Application, StaticFiles};
use ioloop::IoLoop;

/// Pipelined requests per test: far more than the socket buffers hold once answered.
const PIPELINED: usize = 16;
/// Size of each streamed response, and of the static file.
const BODY: usize = 512 * 1024;
const PIECE: usize = 64 * 1024;

/// Counts the write callbacks alive that own a `BodyWriter`, and says whether one
/// panicked.
#[derive(Clone, Default)]
struct LiveWriters(Rc<Cell<usize>>, Rc<Cell<bool>>);

struct WriterGuard(LiveWriters);

impl Drop for WriterGuard {
    fn drop(&mut self) {
        let live = &(self.0).0;
        live.set(live.get() - 1);
    }
}

impl LiveWriters {
    fn guard(&self) -> WriterGuard {
        self.0.set(self.0.get() + 1);
        WriterGuard(self.clone())
    }

    fn count(&self) -> usize {
        self.0.get()
    }

    fn panicked(&self) -> bool {
        self.1.get()
    }
}

/// Writes `left` more bytes piece by piece, each piece from the completion of the one
/// before: the writer lives in the write callback, as `StaticFiles` keeps it.
fn stream_pieces(mut writer: BodyWriter, left: usize, live: LiveWriters, panic_at: Option<usize>) {
    if left == 0 {
        return writer.finish();
    }
    let piece = vec![b'x'; PIECE.min(left)];
    // Where the completion finds the writer again; no borrow of it is held while the
    // writer works.
    let owned = Rc::new(RefCell::new(None));
    let resume = owned.clone();
    let guard = live.guard();
    let queued = writer.write_then(&piece, move |written| {
        let _guard = guard;
        let writer: Option<BodyWriter> = resume.borrow_mut().take();
        if panic_at == Some(left) {
            live.1.set(true);
            panic!("a write callback that owns its writer panics");
        }
        if let (Ok(()), Some(writer)) = (written, writer) {
            stream_pieces(writer, left - piece_len(left), live, panic_at);
        }
    });
    // From here on the callback owns the writer (through the cell).
    if queued.is_ok() {
        *owned.borrow_mut() = Some(writer);
    }
}

fn piece_len(left: usize) -> usize {
    PIECE.min(left)
}

struct Scenario {
    server: SteppedServer,
    live: LiveWriters,
    dir: PathBuf,
}

impl Drop for Scenario {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn app(live: &LiveWriters, dir: &std::path::Path) -> Application {
    let streamed = live.clone();
    let panicking = live.clone();
    Application::new()
        .route("/files/{*path}", get(StaticFiles::new(dir.to_path_buf())))
        .route(
            "/stream",
            get(move |_req: Request, responder: Responder| {
                let writer = responder.start(Response::new(200));
                stream_pieces(writer, BODY, streamed.clone(), None);
            }),
        )
        .route(
            "/stream-panic",
            get(move |_req: Request, responder: Responder| {
                let writer = responder.start(Response::new(200));
                stream_pieces(writer, BODY, panicking.clone(), Some(BODY - PIECE));
            }),
        )
        .route(
            "/panic",
            get(|_req: Request, _responder: Responder| -> () { panic!("a handler panics") }),
        )
        .route("/small", get(|_| async { "still serving" }))
        .route(
            "/later",
            get(|_req: Request, responder: Responder| {
                let ioloop = IoLoop::current().unwrap();
                ioloop.add_timeout(Duration::from_secs(1), move |_| {
                    responder.send(Response::text("answered later"));
                });
            }),
        )
}

impl Scenario {
    fn start(name: &str, tls: bool) -> Scenario {
        let dir = std::env::temp_dir().join(format!(
            "ioloop-endings-{name}-{}-{}",
            tls,
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("blob.bin"), vec![b'b'; BODY]).unwrap();
        let live = LiveWriters::default();
        let app = app(&live, &dir);
        let server = SteppedServer::start(move |ioloop: &IoLoop| {
            let (server, addr): (HttpServer, _) = app.bind(ioloop, "127.0.0.1:0")?;
            #[cfg(feature = "tls")]
            if tls {
                server.set_tls(tls_support::pki().acceptor());
            }
            #[cfg(not(feature = "tls"))]
            assert!(!tls);
            Ok((server, addr))
        });
        Scenario { server, live, dir }
    }

    /// What the pipeline holds: static files and streamed bodies, alternating; with
    /// `panics`, a handler that panics early and a streamed body whose write callback
    /// panics in the middle, with more queued behind it.
    fn requests(panics: bool) -> Vec<u8> {
        let mut bytes = Vec::new();
        for i in 0..PIPELINED {
            let path = match i {
                1 if panics => "/panic",
                3 if panics => "/stream-panic",
                _ if i % 2 == 0 => "/files/blob.bin",
                _ => "/stream",
            };
            bytes.extend_from_slice(
                format!("GET {path} HTTP/1.1\r\nHost: endings\r\n\r\n").as_bytes(),
            );
        }
        bytes
    }

    /// After the connection ended: nothing aborted (we are still here), the connection is
    /// gone, no writer is left alive, and a new client is served.
    fn assert_recovered(&self, tls: bool) {
        self.server
            .settle_until(|| self.server.server.connections() == 0);
        self.server.settle_until(|| self.live.count() == 0);
        let request = b"GET /small HTTP/1.1\r\nHost: endings\r\n\r\n";
        let mut client = EndingClient::connect(self, tls);
        client.send(&self.server, request);
        let reply = client.read_reply(&self.server);
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
        assert!(reply.ends_with("still serving"), "{reply}");
    }
}

/// A client of the scenario: plain TCP, or TLS driven by hand without blocking.
enum EndingClient {
    Plain(SteppedClient),
    #[cfg(feature = "tls")]
    Tls(Box<tls_support::SteppedTlsClient>),
}

impl EndingClient {
    fn connect(scenario: &Scenario, tls: bool) -> EndingClient {
        if !tls {
            return EndingClient::Plain(scenario.server.connect());
        }
        #[cfg(feature = "tls")]
        {
            // The server counts a TLS connection once its handshake is done.
            let tcp = TcpStream::connect(scenario.server.addr).unwrap();
            tcp.set_nonblocking(true).unwrap();
            let client = tls_support::SteppedTlsClient::handshake(tcp, &scenario.server);
            let server = &scenario.server;
            server.settle_until(|| server.server.connections() > 0);
            EndingClient::Tls(Box::new(client))
        }
        #[cfg(not(feature = "tls"))]
        unreachable!("TLS scenarios need the tls feature")
    }

    fn send(&mut self, server: &SteppedServer, bytes: &[u8]) {
        match self {
            EndingClient::Plain(client) => client.send(server, bytes),
            #[cfg(feature = "tls")]
            EndingClient::Tls(client) => client.send(server, bytes),
        }
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            EndingClient::Plain(client) => &client.stream,
            #[cfg(feature = "tls")]
            EndingClient::Tls(client) => &client.tcp,
        }
    }

    /// Steps the server until a whole small response has arrived; returns it as text.
    fn read_reply(&mut self, server: &SteppedServer) -> String {
        match self {
            EndingClient::Plain(client) => {
                let reply = client.reply(server);
                let mut text = format!("HTTP/1.1 {} OK\r\n", reply.status);
                text.push_str(&reply.text());
                text
            }
            #[cfg(feature = "tls")]
            EndingClient::Tls(client) => client.read_until(server, b"still serving"),
        }
    }

    /// Reads whatever has arrived (TLS records are left undecrypted: only the socket
    /// matters here).
    /// Reads what has arrived; says whether the server ended its side (a FIN).
    fn read_available(&mut self) -> bool {
        let mut chunk = [0u8; 65536];
        loop {
            match self.tcp().read(&mut chunk) {
                Ok(0) => return true,
                Err(_) => return false,
                Ok(_) => {}
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Ending {
    /// The client sends FIN (its write side), then goes away with bytes unread.
    ClientFin,
    /// The client resets the connection (SO_LINGER 0).
    ClientReset,
    /// The client never reads: the server's write timeout closes it.
    WriteTimeout,
    /// A request head never completes: the header timeout answers 408, then the write
    /// timeout closes the connection the client does not read.
    ReadTimeout,
    /// A write callback that owns its writer panics, and the client resets.
    HandlerPanic,
    /// The server shuts down gracefully with the responses still queued.
    GracefulShutdown,
    /// The loop is closed with the connection open.
    LoopClose,
}

fn reset(stream: &TcpStream) {
    rustix::net::sockopt::set_socket_linger(stream.as_fd(), Some(Duration::ZERO)).unwrap();
}

fn run(ending: Ending, tls: bool) {
    let scenario = Scenario::start(&format!("{ending:?}"), tls);
    let server = &scenario.server;
    let mut client = EndingClient::connect(&scenario, tls);
    let panics = matches!(ending, Ending::HandlerPanic);
    client.send(server, &Scenario::requests(panics));
    server.settle();
    if panics {
        // The panic cut its response: the slots behind it, with their writers in
        // callbacks, were let go when the connection began to close.
        assert!(
            scenario.live.panicked(),
            "the write callback did not panic, so the test shows nothing"
        );
    } else {
        assert!(
            scenario.live.count() > 0,
            "{ending:?}: no writer is waiting in a callback, so the test shows nothing"
        );
    }
    match ending {
        Ending::ClientFin => {
            client.tcp().shutdown(Shutdown::Write).unwrap();
            server.settle();
            client.read_available();
            reset(client.tcp());
            drop(client);
        }
        Ending::ClientReset => {
            reset(client.tcp());
            drop(client);
        }
        Ending::HandlerPanic => {
            // The client reads: the streamed response whose write callback panics is cut,
            // and the server ends its side after it (a FIN), with the responses behind it
            // queued. It then lingers (RFC 9112 §9.6) until the client goes: a reset here.
            server.settle_until(|| client.read_available());
            reset(client.tcp());
            drop(client);
            server.settle_until(|| server.server.connections() == 0);
        }
        Ending::WriteTimeout => {
            server.advance(Duration::from_secs(61));
            server.advance(Duration::from_secs(61));
            // The server closed it, the client still there: over TLS the unsent bytes
            // may all wait in the session as ciphertext, the stream's buffer empty.
            server.settle_until(|| server.server.connections() == 0);
            drop(client);
        }
        Ending::ReadTimeout => {
            client.send(server, b"GET /small HTTP/1.1\r\nHo");
            server.settle();
            server.advance(Duration::from_secs(61));
            server.advance(Duration::from_secs(61));
            server.advance(Duration::from_secs(61));
            drop(client);
        }
        Ending::GracefulShutdown => {
            let done = Rc::new(Cell::new(false));
            let flag = done.clone();
            server
                .server
                .shutdown_then(Duration::from_secs(5), move |_| flag.set(true));
            server.advance(Duration::from_secs(6));
            server.settle_until(|| done.get());
            assert_eq!(server.server.connections(), 0);
            assert_eq!(scenario.live.count(), 0, "writers left after shutdown");
            drop(client);
            return;
        }
        Ending::LoopClose => {
            server.ioloop.close(true).unwrap();
            assert_eq!(
                scenario.live.count(),
                0,
                "writers left after the loop closed"
            );
            drop(client);
            return;
        }
    }
    scenario.assert_recovered(tls);
}

macro_rules! endings {
    ($($name:ident: $ending:expr, $tls:expr;)*) => {$(
        #[test]
        fn $name() {
            run($ending, $tls);
        }
    )*};
}

endings! {
    client_fin_with_queued_streamed_responses: Ending::ClientFin, false;
    client_reset_with_queued_streamed_responses: Ending::ClientReset, false;
    write_timeout_with_queued_streamed_responses: Ending::WriteTimeout, false;
    read_timeout_with_queued_streamed_responses: Ending::ReadTimeout, false;
    handler_panic_with_queued_streamed_responses: Ending::HandlerPanic, false;
    graceful_shutdown_with_queued_streamed_responses: Ending::GracefulShutdown, false;
    loop_close_with_queued_streamed_responses: Ending::LoopClose, false;
}

#[cfg(feature = "tls")]
endings! {
    tls_client_fin_with_queued_streamed_responses: Ending::ClientFin, true;
    tls_client_reset_with_queued_streamed_responses: Ending::ClientReset, true;
    tls_write_timeout_with_queued_streamed_responses: Ending::WriteTimeout, true;
    tls_read_timeout_with_queued_streamed_responses: Ending::ReadTimeout, true;
    tls_handler_panic_with_queued_streamed_responses: Ending::HandlerPanic, true;
    tls_graceful_shutdown_with_queued_streamed_responses: Ending::GracefulShutdown, true;
    tls_loop_close_with_queued_streamed_responses: Ending::LoopClose, true;
}

/// A client that half-closes (FIN) after whole requests still gets every answer, then the
/// connection closes (nginx and Tornado answer such a client).
#[test]
fn a_client_that_half_closes_after_its_requests_gets_every_answer() {
    for pipelined in [1, 3] {
        let scenario = Scenario::start("half-close", false);
        let server = &scenario.server;
        let mut client = server.connect();
        let request = "GET /later HTTP/1.1\r\nHost: endings\r\n\r\n".repeat(pipelined);
        client.send(server, request.as_bytes());
        client.stream.shutdown(Shutdown::Write).unwrap();
        server.settle(); // the server reads the requests and the end of input
        server.advance(Duration::from_secs(1));
        for i in 0..pipelined {
            let reply = client.reply(server);
            assert_eq!(reply.status, 200, "answer {i} of {pipelined}");
            assert_eq!(reply.text(), "answered later");
            let last = i + 1 == pipelined;
            assert_eq!(reply.header("connection"), last.then_some("close"));
        }
        assert!(
            client.is_closed(server),
            "closed once every answer is written"
        );
        server.settle_until(|| server.server.connections() == 0);
    }
}

/// An idle keep-alive client that half-closes is owed nothing: the connection closes.
#[test]
fn an_idle_client_that_half_closes_is_closed() {
    let scenario = Scenario::start("half-close-idle", false);
    let server = &scenario.server;
    let mut client = server.connect();
    let reply = client.request(server, "GET /small HTTP/1.1\r\nHost: endings\r\n\r\n");
    assert_eq!(reply.status, 200);
    client.stream.shutdown(Shutdown::Write).unwrap();
    assert!(client.is_closed(server));
    server.settle_until(|| server.server.connections() == 0);
}

/// Graceful shutdown answers every request already read, not only the first of a
/// pipelined batch; the last answer says `Connection: close`.
#[test]
fn graceful_shutdown_answers_every_pipelined_request() {
    let scenario = Scenario::start("shutdown-pipelined", false);
    let server = &scenario.server;
    let mut client = server.connect();
    let request = "GET /later HTTP/1.1\r\nHost: endings\r\n\r\n".repeat(3);
    client.send(server, request.as_bytes());
    server.settle();
    let done = Rc::new(Cell::new(false));
    let flag = done.clone();
    server
        .server
        .shutdown_then(Duration::from_secs(5), move |_| flag.set(true));
    server.advance(Duration::from_secs(1));
    for i in 0..3 {
        let reply = client.reply(server);
        assert_eq!(reply.status, 200, "answer {i}");
        assert_eq!(reply.header("connection"), (i == 2).then_some("close"));
    }
    assert!(client.is_closed(server));
    server.settle_until(|| done.get());
}

/// The attack as it was reported, from Python's socket module: 16 pipelined requests for
/// a static file over 64 KiB, then the client closes. The server answers the next client.
#[test]
fn pipelined_static_files_then_close_from_python() {
    if !common::has_tool("python3", &["-c", "import socket"]) {
        common::require_tool("python3");
        return;
    }
    let scenario = Scenario::start("python", false);
    let port = scenario.server.addr.port();
    let script = format!(
        "import socket\n\
         s = socket.create_connection(('127.0.0.1', {port}))\n\
         s.sendall(b'GET /files/blob.bin HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n' * 16)\n\
         s.recv(1000)\n\
         s.close()\n"
    );
    let mut python = std::process::Command::new("python3")
        .args(["-c", &script])
        .spawn()
        .unwrap();
    let server = &scenario.server;
    // Python starts slowly: step until it has exited (a wall-clock bound only against
    // a hang, not as synchronization).
    let give_up = std::time::Instant::now() + Duration::from_secs(60);
    while python.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < give_up, "python did not finish");
        server.step();
    }
    assert!(python.wait().unwrap().success());
    scenario.assert_recovered(false);
}

#[cfg(feature = "tls")]
mod tls_support {
    use std::io::{ErrorKind, Read, Write};
    use std::net::TcpStream;
    use std::sync::{Arc, OnceLock};

    use ioloop::tls::rustls;

    use super::common::http::SteppedServer;
    use super::common::tls::TestPki;

    pub fn pki() -> &'static TestPki {
        static PKI: OnceLock<TestPki> = OnceLock::new();
        PKI.get_or_init(TestPki::new)
    }

    /// A rustls client on a non-blocking socket, stepping the server whenever it waits.
    pub struct SteppedTlsClient {
        pub tcp: TcpStream,
        tls: rustls::ClientConnection,
    }

    impl SteppedTlsClient {
        pub fn handshake(tcp: TcpStream, server: &SteppedServer) -> SteppedTlsClient {
            let config: Arc<rustls::ClientConfig> = pki().client_config();
            let name = "localhost".try_into().unwrap();
            let tls = rustls::ClientConnection::new(config, name).unwrap();
            let mut client = SteppedTlsClient { tcp, tls };
            for _ in 0..10_000 {
                if !client.tls.is_handshaking() && !client.tls.wants_write() {
                    return client;
                }
                client.pump();
                server.step();
            }
            panic!("the TLS handshake did not finish");
        }

        /// Moves records both ways as far as the socket allows.
        fn pump(&mut self) {
            while self.tls.wants_write() {
                match self.tls.write_tls(&mut self.tcp) {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("TLS write failed: {e}"),
                }
            }
            if self.tls.is_handshaking() {
                match self.tls.read_tls(&mut self.tcp) {
                    Ok(_) => {
                        self.tls.process_new_packets().unwrap();
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => panic!("TLS read failed: {e}"),
                }
            }
        }

        /// Sends `bytes` as application data.
        pub fn send(&mut self, server: &SteppedServer, bytes: &[u8]) {
            self.tls.writer().write_all(bytes).unwrap();
            for _ in 0..10_000 {
                if !self.tls.wants_write() {
                    return;
                }
                self.pump();
                server.step();
            }
            panic!("the server stopped reading");
        }
    }

    impl SteppedTlsClient {
        /// Steps the server until the plaintext received ends with `end`.
        pub fn read_until(&mut self, server: &SteppedServer, end: &[u8]) -> String {
            let mut plain = Vec::new();
            for _ in 0..10_000 {
                match self.tls.read_tls(&mut self.tcp) {
                    Ok(_) => {
                        self.tls.process_new_packets().unwrap();
                        let mut chunk = [0u8; 4096];
                        while let Ok(n) = self.tls.reader().read(&mut chunk) {
                            if n == 0 {
                                break;
                            }
                            plain.extend_from_slice(&chunk[..n]);
                        }
                        if plain.ends_with(end) {
                            return String::from_utf8(plain).unwrap();
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => panic!("TLS read failed: {e}"),
                }
                server.step();
            }
            panic!("no whole response over TLS");
        }
    }
}

/// A write whose piece can never be sent (the client reset the connection) tells its
/// completion on a later iteration, not from inside `write_then`, where the caller may
/// hold a borrow of its own (issue 24: user code is never called from inside its own
/// call into the connection).
#[test]
fn a_write_that_fails_at_once_completes_on_a_later_iteration() {
    let held: Rc<RefCell<Option<BodyWriter>>> = Rc::default();
    let hold = held.clone();
    let app = Application::new().route(
        "/hold",
        get(move |_req: Request, responder: Responder| {
            *hold.borrow_mut() = Some(responder.start(Response::new(200)));
        }),
    );
    let server = SteppedServer::start(move |ioloop: &IoLoop| app.bind(ioloop, "127.0.0.1:0"));
    let mut client = server.connect();
    client.send(&server, b"GET /hold HTTP/1.1\r\nHost: endings\r\n\r\n");
    server.settle_until(|| held.borrow().is_some());
    server.settle();
    reset(&client.stream);
    drop(client);
    let told = Rc::new(Cell::new(None));
    let flag = told.clone();
    let mut writer = held.borrow_mut().take().unwrap();
    let queued = writer.write_then(&vec![b'x'; 1 << 20], move |written| {
        flag.set(Some(written.is_ok()))
    });
    assert_eq!(told.get(), None, "told from inside write_then");
    if queued.is_ok() {
        server.settle_until(|| told.get().is_some());
        assert_eq!(told.get(), Some(false));
    }
    drop(writer);
    server.settle_until(|| server.server.connections() == 0);
}

/// The writer of a response still behind an unanswered one hears that its pieces will
/// never be sent when the connection ends first, whether the client leaves or the
/// response before it ends the connection (cut short of its length): `write_then` calls
/// back with the error, never drops the callback uncalled.
#[test]
fn pieces_behind_an_unanswered_request_are_failed_when_the_connection_ends() {
    for client_leaves in [true, false] {
        let front: Rc<RefCell<Option<Responder>>> = Rc::default();
        let keep_front = front.clone();
        let told = Rc::new(Cell::new(None));
        let flag = told.clone();
        let app = Application::new()
            .route(
                "/front",
                get(move |_req: Request, responder: Responder| {
                    *keep_front.borrow_mut() = Some(responder);
                }),
            )
            .route(
                "/behind",
                get(move |_req: Request, responder: Responder| {
                    let flag = flag.clone();
                    let mut writer = responder.start(Response::new(200));
                    let queued =
                        writer.write_then(b"piece", move |written| flag.set(Some(written.is_ok())));
                    assert!(queued.is_ok(), "held in its slot, behind /front");
                    drop(writer);
                }),
            );
        let server = SteppedServer::start(move |ioloop: &IoLoop| app.bind(ioloop, "127.0.0.1:0"));
        let mut client = server.connect();
        client.send(
            &server,
            b"GET /front HTTP/1.1\r\nHost: e\r\n\r\nGET /behind HTTP/1.1\r\nHost: e\r\n\r\n",
        );
        server.settle_until(|| front.borrow().is_some());
        server.settle();
        assert_eq!(told.get(), None, "not sent, not failed yet");
        if client_leaves {
            reset(&client.stream);
            drop(client);
        } else {
            // The front response is cut short: the connection ends after it.
            let responder = front.borrow_mut().take().unwrap();
            let mut writer = responder.start_sized(Response::new(200), 10);
            writer.write(b"cut").unwrap();
            drop(writer);
        }
        server.settle_until(|| told.get().is_some());
        assert_eq!(told.get(), Some(false), "client leaves: {client_leaves}");
        drop(front.borrow_mut().take());
        // (A connection ended by the server lingers, half-closed, for its linger timeout.)
        server.advance(Duration::from_secs(10));
        server.settle_until(|| server.server.connections() == 0);
    }
}
