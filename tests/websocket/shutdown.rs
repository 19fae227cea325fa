//! WebSocket sessions when the server goes away (issue 24): a loop closed or dropped
//! with sessions open says 1001 ("going away"), not 1011 (a server failure); a graceful
//! `HttpServer::shutdown` sends 1001 to every open WebSocket and waits for their closing
//! handshakes within its deadline; its deadline timer goes once it is done. Raw-frame
//! clients on a stepped, manual-clock loop, and the Python `websockets` library as a
//! peer nobody here wrote.

#![cfg(feature = "websocket")]

use crate::common;

use std::cell::{Cell, RefCell};
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::Duration;

use common::http::SteppedServer;
use common::websocket::{close_payload, Frame, WsClient};
use ioloop::web::Application;
use ioloop::websocket::{websocket, Message, WebSocket, WebSocketHandler, WebSocketRoute};
use ioloop::IoLoop;

/// A callback-style handler that echoes.
struct Echo;

impl WebSocketHandler for Echo {
    fn on_message(&mut self, ws: &WebSocket, message: Message) {
        let _ = ws.write_message(message);
    }
}

/// `/echo` (an async session) and `/cb` (a callback-style handler).
fn app() -> Application {
    Application::new()
        .route("/echo", websocket(common::websocket::echo))
        .route("/cb", WebSocketRoute::with_handler(|_| Echo))
}

fn stepped() -> SteppedServer {
    SteppedServer::start(|ioloop| app().bind(ioloop, "127.0.0.1:0"))
}

/// Reads what the server sent until it closes TCP (blocking, 10 s at most, once the
/// server's loop is gone) and returns the close frame's code.
fn close_code_after_the_loop_is_gone(ws: &mut WsClient) -> Option<u16> {
    let mut bytes = ws.conn.unparsed().to_vec();
    let stream = &mut ws.conn.stream;
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the server neither closed nor reset: {e}"),
        }
    }
    // The frames: unmasked server frames, short payloads.
    let mut at = 0;
    while at + 2 <= bytes.len() {
        let (opcode, len) = (bytes[at] & 0x0F, (bytes[at + 1] & 0x7F) as usize);
        assert!(len < 126, "a long frame: {bytes:?}");
        let payload = &bytes[at + 2..at + 2 + len];
        if opcode == 0x8 {
            assert!(payload.len() >= 2, "a close frame without a code");
            return Some(u16::from_be_bytes([payload[0], payload[1]]));
        }
        at += 2 + len;
    }
    None
}

#[test]
fn closing_the_loop_says_going_away_to_every_session() {
    for path in ["/echo", "/cb"] {
        let server = stepped();
        let mut ws = WsClient::open(&server, path);
        ws.send(&server, Frame::text(b"hi"));
        assert_eq!(ws.read(&server).unwrap().payload, b"hi");
        server.ioloop.close(true).unwrap();
        assert_eq!(
            close_code_after_the_loop_is_gone(&mut ws),
            Some(1001),
            "{path}"
        );
    }
}

#[test]
fn dropping_the_loop_says_going_away_to_every_session() {
    for path in ["/echo", "/cb"] {
        let server = stepped();
        let mut ws = WsClient::open(&server, path);
        ws.send(&server, Frame::text(b"hi"));
        assert_eq!(ws.read(&server).unwrap().payload, b"hi");
        drop(server);
        assert_eq!(
            close_code_after_the_loop_is_gone(&mut ws),
            Some(1001),
            "{path}"
        );
    }
}

fn has_python_websockets() -> bool {
    Command::new("python3")
        .args(["-c", "import websockets.sync.client"])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn python_websockets_reads_1001_when_the_servers_loop_is_closed() {
    if !has_python_websockets() {
        return common::require_tool("python3 websockets");
    }
    for path in ["/echo", "/cb"] {
        // The server on its own thread: it closes its loop once told the peer is in.
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let server = std::thread::spawn(move || {
            let ioloop = IoLoop::new().unwrap();
            let (http, addr) = app().bind(&ioloop, "127.0.0.1:0").unwrap();
            addr_tx.send((addr, ioloop.remote())).unwrap();
            // Runs until the test has seen the peer connected.
            ioloop.start().unwrap();
            assert_eq!(http.connections(), 1, "the WebSocket is open");
            ioloop.close(true).unwrap();
        });
        let (addr, remote) = addr_rx.recv().unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/ws_peer.py");
        let mut peer = Command::new("python3")
            .args([script, "wait_close", &format!("ws://{addr}{path}")])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(peer.stdout.take().unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "connected");
        remote.stop();
        server.join().unwrap();
        assert_eq!(lines.next().unwrap().unwrap(), "closed 1001", "{path}");
        assert!(peer.wait().unwrap().success());
    }
}

/// Starts a graceful shutdown; returns the flag its completion sets.
fn shut_down(server: &SteppedServer, deadline: Duration) -> Rc<Cell<bool>> {
    let done = Rc::new(Cell::new(false));
    let flag = done.clone();
    server
        .server
        .shutdown_then(deadline, move |_| flag.set(true));
    done
}

#[test]
fn shutdown_says_going_away_and_completes_once_the_peer_answers() {
    for path in ["/echo", "/cb"] {
        let server = stepped();
        let mut ws = WsClient::open(&server, path);
        assert_eq!(server.server.connections(), 1, "the WebSocket counts");
        let done = shut_down(&server, Duration::from_secs(30));
        let frame = ws.read(&server).expect("a close frame");
        assert_eq!(frame.close_code(), Some(1001), "{path}");
        server.settle();
        assert!(!done.get(), "done before the closing handshake ({path})");
        // The peer answers: the server closes TCP and the shutdown is done, long before
        // its deadline (the clock has not moved).
        ws.send(&server, Frame::new(0x8, &close_payload(1001, "")));
        assert!(ws.conn.is_closed(&server), "{path}");
        server.settle();
        assert!(done.get(), "{path}");
        assert_eq!(server.server.connections(), 0);
    }
}

#[test]
fn shutdown_closes_a_websocket_that_never_answers_at_its_deadline() {
    for path in ["/echo", "/cb"] {
        let server = stepped();
        let mut ws = WsClient::open(&server, path);
        // A deadline shorter than the WebSocket's own close timeout (5 s): the
        // shutdown's deadline is what ends it.
        let done = shut_down(&server, Duration::from_secs(2));
        let frame = ws.read(&server).expect("a close frame");
        assert_eq!(frame.close_code(), Some(1001), "{path}");
        server.advance(Duration::from_millis(1999));
        server.settle();
        assert!(!done.get(), "done before the deadline ({path})");
        assert!(!ws.conn.is_closed(&server), "closed before the deadline");
        server.advance(Duration::from_millis(1));
        server.settle();
        assert!(ws.conn.is_closed(&server), "{path}");
        assert!(done.get(), "{path}");
        assert_eq!(server.server.connections(), 0);
    }
}

#[test]
fn a_finished_shutdown_leaves_no_deadline_timer_behind() {
    // Nothing open: done at once.
    let server = stepped();
    assert_eq!(
        server.ioloop.poll_timeout(),
        None,
        "an idle server waits forever"
    );
    let done = shut_down(&server, Duration::from_secs(5));
    server.settle();
    assert!(done.get());
    assert_eq!(server.ioloop.poll_timeout(), None, "a phantom deadline");
    // A WebSocket that answers: done early, and the deadline goes too.
    let server = stepped();
    let mut ws = WsClient::open(&server, "/echo");
    let done = shut_down(&server, Duration::from_secs(5));
    assert_eq!(ws.read(&server).unwrap().close_code(), Some(1001));
    ws.send(&server, Frame::new(0x8, &close_payload(1001, "")));
    assert!(ws.conn.is_closed(&server));
    server.settle();
    assert!(done.get(), "{} open", server.server.connections());
    assert_eq!(server.ioloop.poll_timeout(), None, "a phantom deadline");
}

/// What the sessions saw, for the shutdown's effect on async sessions.
#[test]
fn an_async_session_sees_the_end_of_its_messages_on_shutdown() {
    let ended = Rc::new(RefCell::new(Vec::new()));
    let seen = ended.clone();
    let server = SteppedServer::start(move |ioloop| {
        Application::new()
            .route(
                "/wait",
                websocket(move |ws, _| {
                    let seen = seen.clone();
                    async move {
                        let message = ws.recv().await;
                        seen.borrow_mut().push(message);
                    }
                }),
            )
            .bind(ioloop, "127.0.0.1:0")
    });
    let mut ws = WsClient::open(&server, "/wait");
    let done = shut_down(&server, Duration::from_secs(30));
    assert_eq!(ws.read(&server).unwrap().close_code(), Some(1001));
    server.settle();
    assert_eq!(*ended.borrow(), [None], "recv returns None once closing");
    ws.send(&server, Frame::new(0x8, &close_payload(1001, "")));
    assert!(ws.conn.is_closed(&server));
    server.settle();
    assert!(done.get());
}

#[test]
fn a_session_that_panics_still_closes_with_1011_and_one_that_returns_with_1000() {
    let logs = ioloop::testing::LogCapture::start();
    let server = SteppedServer::start(|ioloop| {
        Application::new()
            .route(
                "/boom",
                websocket(|ws, _| async move {
                    let _ = ws.recv().await;
                    panic!("the session failed");
                }),
            )
            .route(
                "/once",
                websocket(|ws, _| async move {
                    let _ = ws.recv().await;
                }),
            )
            .bind(ioloop, "127.0.0.1:0")
    });
    let mut ws = WsClient::open(&server, "/boom");
    ws.send(&server, Frame::text(b"go"));
    let frame = ws.read(&server).expect("a close frame");
    assert_eq!(frame.close_code(), Some(1011));
    logs.assert_logged(log::Level::Error, "the session failed");
    let mut ws = WsClient::open(&server, "/once");
    ws.send(&server, Frame::text(b"go"));
    let frame = ws.read(&server).expect("a close frame");
    assert_eq!(frame.close_code(), Some(1000));
}
