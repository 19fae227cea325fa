//! WebSocket server behaviour over loopback, with a raw-frame client on a stepped,
//! manual-clock loop: the handshake's answers, every frame rule of RFC 6455 and its
//! close code, the close handshake, pings, flow control and `on_close`. The cases of the
//! Autobahn|Testsuite sections they stand for are named in each test's comment.

#![cfg(feature = "websocket")]

use crate::common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use common::http::SteppedServer;
use common::websocket::{close_payload, handshake, Frame, WsClient};
use ioloop::testing::step;
use ioloop::web::{get, Application};
use ioloop::websocket::{
    websocket, websocket_connect, websocket_connect_with, Broadcast, ClientOptions, Message,
    SendError, WebSocket, WebSocketConnectError, WebSocketHandler, WebSocketOptions,
    WebSocketRoute,
};

/// What the callback-style route saw.
#[derive(Default)]
struct Seen {
    opened: usize,
    messages: Vec<Message>,
    pings: Vec<Vec<u8>>,
    closes: Vec<(Option<u16>, Option<String>)>,
    sockets: Vec<WebSocket>,
}

struct Recorder(Rc<RefCell<Seen>>);

impl WebSocketHandler for Recorder {
    fn open(&mut self, ws: &WebSocket) {
        let mut seen = self.0.borrow_mut();
        seen.opened += 1;
        seen.sockets.push(ws.clone());
    }
    fn on_message(&mut self, ws: &WebSocket, message: Message) {
        self.0.borrow_mut().messages.push(message.clone());
        let _ = ws.write_message(message);
    }
    fn on_ping(&mut self, _ws: &WebSocket, payload: &[u8]) {
        self.0.borrow_mut().pings.push(payload.to_vec());
    }
    fn on_close(&mut self, ws: &WebSocket) {
        self.0
            .borrow_mut()
            .closes
            .push((ws.close_code(), ws.close_reason()));
    }
}

/// `/echo` (async), `/cb` (callbacks, recording), `/chat` (subprotocols), `/idle` (a
/// session that never receives), `/page` (plain HTTP).
fn server_with(options: WebSocketOptions) -> (SteppedServer, Rc<RefCell<Seen>>) {
    let seen = Rc::new(RefCell::new(Seen::default()));
    let recorder = seen.clone();
    let server = SteppedServer::start(move |ioloop| {
        Application::new()
            .route(
                "/echo",
                websocket(common::websocket::echo).options(options.clone()),
            )
            .route(
                "/cb",
                WebSocketRoute::with_handler(move |_req| Recorder(recorder.clone()))
                    .options(options.clone()),
            )
            .route(
                "/chat",
                websocket(|ws, _req| async move {
                    let protocol = ws.subprotocol().unwrap_or("none").to_owned();
                    let _ = ws.send(protocol).await;
                    while ws.recv().await.is_some() {}
                })
                .subprotocols(["chat.v2", "chat.v1"]),
            )
            .route("/idle", websocket(|_ws, _req| std::future::pending::<()>()))
            .route("/page", get(|_req| async { "a page" }))
            .bind(ioloop, "127.0.0.1:0")
    });
    (server, seen)
}

fn server() -> (SteppedServer, Rc<RefCell<Seen>>) {
    server_with(WebSocketOptions::default())
}

#[test]
fn text_and_binary_messages_echo_in_both_styles() {
    let (server, seen) = server();
    for path in ["/echo", "/cb"] {
        let mut ws = WsClient::open(&server, path);
        ws.send(&server, Frame::text("Hello, 异步世界!".as_bytes()));
        let echo = ws.read(&server).unwrap();
        assert_eq!(
            (echo.opcode, echo.payload.as_slice()),
            (1, "Hello, 异步世界!".as_bytes())
        );
        ws.send(&server, Frame::new(0x2, &[0, 1, 2, 255]));
        let echo = ws.read(&server).unwrap();
        assert_eq!((echo.opcode, echo.payload), (2, vec![0, 1, 2, 255]));
        // Autobahn 1.1/1.2: empty and 64 KiB+ payloads.
        let big = vec![b'x'; 70_000];
        ws.send(&server, Frame::text(&big));
        assert_eq!(ws.read(&server).unwrap().payload, big);
        ws.send(&server, Frame::text(b""));
        assert_eq!(ws.read(&server).unwrap().payload, b"");
    }
    assert_eq!(seen.borrow().opened, 1);
    assert_eq!(seen.borrow().messages.len(), 4);
}

#[test]
fn frames_in_the_same_write_as_the_handshake_are_not_lost() {
    let (server, _) = server();
    let mut bytes = handshake("/echo", "").into_bytes();
    bytes.extend(Frame::text(b"first").encode());
    bytes.extend(Frame::text(b"second").encode());
    let (mut ws, reply) = WsClient::open_with(&server, &bytes);
    assert_eq!(reply.status, 101);
    assert_eq!(
        reply.header("Sec-WebSocket-Accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    assert_eq!(reply.header("Upgrade"), Some("websocket"));
    assert_eq!(ws.read(&server).unwrap().payload, b"first");
    assert_eq!(ws.read(&server).unwrap().payload, b"second");
}

#[test]
fn bad_handshakes_get_clear_statuses() {
    let (server, _) = server();
    let refused = |request: &str| {
        let (client, reply) = WsClient::open_with(&server, request.as_bytes());
        // Gone before the next one connects (the harness counts connections).
        drop(client);
        server.settle();
        reply
    };
    let no_upgrade = "GET /echo HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n\
                      Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    assert_eq!(refused(no_upgrade).status, 400);
    let no_connection =
        handshake("/echo", "").replace("Connection: Upgrade", "Connection: keep-alive");
    assert_eq!(refused(&no_connection).status, 400);
    let short_key = handshake("/echo", "").replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ=");
    assert_eq!(refused(&short_key).status, 400);
    let not_base64 =
        handshake("/echo", "").replace("dGhlIHNhbXBsZSBub25jZQ==", "!!!!!!!!!!!!!!!!!!!!!!!!");
    assert_eq!(refused(&not_base64).status, 400);
    let old = refused(&handshake("/echo", "").replace("Version: 13", "Version: 8"));
    assert_eq!(old.status, 426);
    assert_eq!(old.header("Sec-WebSocket-Version"), Some("13"));
    let post = handshake("/echo", "").replace("GET ", "POST ");
    assert_eq!(refused(&post).status, 405);
    assert_eq!(refused(&handshake("/nowhere", "")).status, 404);
    // Origin: the server's own is accepted, port included; anything else is 403.
    let own = refused(&handshake("/echo", "Origin: http://127.0.0.1\r\n"));
    assert_eq!(own.status, 101);
    for origin in [
        "http://127.0.0.1:9",
        "http://evil.example",
        "null",
        "https://127.0.0.1.evil",
    ] {
        let reply = refused(&handshake("/echo", &format!("Origin: {origin}\r\n")));
        assert_eq!(reply.status, 403, "{origin}");
        assert!(reply.text().contains("cross-origin"), "{}", reply.text());
    }
    // A plain route is not upgraded.
    assert_eq!(refused(&handshake("/page", "")).status, 200);
}

#[test]
fn the_first_offered_subprotocol_the_route_speaks_is_chosen() {
    let (server, _) = server();
    let request = handshake("/chat", "Sec-WebSocket-Protocol: chat.v1, chat.v2\r\n");
    let (mut ws, reply) = WsClient::open_with(&server, request.as_bytes());
    assert_eq!(reply.header("Sec-WebSocket-Protocol"), Some("chat.v1"));
    assert_eq!(ws.read(&server).unwrap().payload, b"chat.v1");
    let (mut ws, reply) = WsClient::open_with(
        &server,
        handshake("/chat", "Sec-WebSocket-Protocol: mqtt\r\n").as_bytes(),
    );
    assert_eq!(reply.header("Sec-WebSocket-Protocol"), None);
    assert_eq!(ws.read(&server).unwrap().payload, b"none");
}

/// Sends `frame` on a fresh `/cb` connection and returns the close code the server
/// answers with (after which it must close TCP).
///
/// The server half-closes after its close frame (so the frame is not lost to a reset
/// while the client still sends) and ends the connection when the client closes its
/// side, or at the close timeout if it never does; `on_close` runs once either way.
fn close_code_for(frames: &[Vec<u8>]) -> Option<u16> {
    let mut code = None;
    for client_closes in [true, false] {
        let (server, seen) = server();
        let mut ws = WsClient::open(&server, "/cb");
        for frame in frames {
            ws.send_raw(&server, frame);
        }
        code = ws.expect_close(&server);
        if client_closes {
            drop(ws);
            // What the client sent before closing (megabytes, for a flood) is drained
            // first.
            server.settle_until(|| !seen.borrow().closes.is_empty());
            server.settle();
        } else {
            // More bytes from the client are read and dropped meanwhile.
            assert!(ws.try_send_raw(&Frame::text(b"ignored").encode()));
            server.settle();
            assert!(seen.borrow().closes.is_empty());
            server.advance(Duration::from_secs(5));
            server.settle();
        }
        assert_eq!(seen.borrow().closes.len(), 1, "on_close runs once");
        assert!(
            seen.borrow().messages.is_empty(),
            "nothing after the failure"
        );
    }
    code
}

#[test]
fn frames_that_break_the_protocol_get_1002() {
    let unmasked = Frame {
        masked: false,
        ..Frame::text(b"hi")
    }
    .encode();
    let rsv = Frame {
        rsv: 0b100,
        ..Frame::text(b"hi")
    }
    .encode(); // Autobahn 3.x
    let opcode = Frame::new(0x3, b"").encode(); // Autobahn 4.1.x
    let control_opcode = Frame::new(0xB, b"").encode(); // Autobahn 4.2.x
    let long_ping = Frame::new(0x9, &[0; 126]).encode(); // Autobahn 2.5
    let fragmented_ping = Frame::new(0x9, b"x").fin(false).encode(); // Autobahn 5.1
    let stray_continuation = Frame::new(0x0, b"x").encode(); // Autobahn 5.9
    let first = Frame::text(b"a").fin(false).encode();
    let new_data_inside = Frame::text(b"b").encode(); // Autobahn 5.18
    let bad_code = Frame::new(0x8, &close_payload(1005, "")).encode(); // Autobahn 7.9.x
    let code_999 = Frame::new(0x8, &close_payload(999, "")).encode();
    let one_byte_close = Frame::new(0x8, &[3]).encode(); // Autobahn 7.3.2
    for (name, frames) in [
        ("unmasked", vec![unmasked]),
        ("rsv", vec![rsv]),
        ("opcode", vec![opcode]),
        ("control opcode", vec![control_opcode]),
        ("long ping", vec![long_ping]),
        ("fragmented ping", vec![fragmented_ping]),
        ("stray continuation", vec![stray_continuation]),
        ("new data inside", vec![first, new_data_inside]),
        ("close 1005", vec![bad_code]),
        ("close 999", vec![code_999]),
        ("one-byte close", vec![one_byte_close]),
    ] {
        assert_eq!(close_code_for(&frames), Some(1002), "{name}");
    }
}

#[test]
fn invalid_utf8_gets_1007_whole_fragmented_or_in_a_close_reason() {
    // Autobahn 6.x: invalid sequences, split across fragments, and fail-fast.
    let invalid = [
        0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xED, 0xA0, 0x80,
    ];
    assert_eq!(
        close_code_for(&[Frame::text(&invalid).encode()]),
        Some(1007)
    );
    let (head, tail) = invalid.split_at(12);
    let fragments = vec![
        Frame::text(head).fin(false).encode(),
        Frame::new(0x0, tail).encode(),
    ];
    assert_eq!(close_code_for(&fragments), Some(1007));
    // The first fragment alone already fails (a byte that can never be valid).
    assert_eq!(
        close_code_for(&[Frame::text(&[b'a', 0xFF]).fin(false).encode()]),
        Some(1007)
    );
    let mut reason = close_payload(1000, "");
    reason.extend_from_slice(&[0xFF, 0xFE]);
    assert_eq!(
        close_code_for(&[Frame::new(0x8, &reason).encode()]),
        Some(1007)
    );
}

#[test]
fn valid_utf8_split_anywhere_across_fragments_is_accepted() {
    // Autobahn 6.2–6.4: a valid message split inside characters.
    let (server, seen) = server();
    let mut ws = WsClient::open(&server, "/cb");
    let text = "κόσμε-异步".as_bytes();
    for split in 1..text.len() {
        let (a, b) = text.split_at(split);
        ws.send(&server, Frame::text(a).fin(false));
        ws.send(&server, Frame::new(0x0, b));
        assert_eq!(ws.read(&server).unwrap().payload, text);
    }
    assert_eq!(seen.borrow().messages.len(), text.len() - 1);
}

#[test]
fn messages_over_the_limit_get_1009_announced_or_fragmented() {
    // A header announcing more than 10 MiB: refused before any payload.
    let mut announce = vec![0x82, 0x80 | 127];
    announce.extend_from_slice(&((10u64 << 20) + 1).to_be_bytes());
    announce.extend_from_slice(&[1, 2, 3, 4]);
    assert_eq!(close_code_for(&[announce]), Some(1009));
    // Fragments that add up to more (Autobahn 9.x sizes, at the limit).
    let piece = vec![b'a'; 1 << 20];
    let mut frames = vec![Frame::text(&piece).fin(false).encode()];
    for _ in 0..10 {
        frames.push(Frame::new(0x0, &piece).fin(false).encode());
    }
    assert_eq!(close_code_for(&frames), Some(1009));
}

#[test]
fn a_message_of_exactly_the_limit_is_accepted() {
    let options = WebSocketOptions {
        max_message_size: 1 << 16,
        ..WebSocketOptions::default()
    };
    let (server, _) = server_with(options);
    let mut ws = WsClient::open(&server, "/echo");
    let exact = vec![b'z'; 1 << 16];
    ws.send(&server, Frame::text(&exact));
    assert_eq!(ws.read(&server).unwrap().payload.len(), 1 << 16);
    ws.send(&server, Frame::text(&[b'z'; (1 << 16) + 1]));
    assert_eq!(ws.expect_close(&server), Some(1009));
}

#[test]
fn pings_get_pongs_with_the_same_payload_even_inside_a_fragmented_message() {
    // Autobahn 2.2, 5.6: pong echoes the payload; a ping between fragments.
    let (server, seen) = server();
    let mut ws = WsClient::open(&server, "/cb");
    ws.send(&server, Frame::new(0x9, b"are you there"));
    let pong = ws.read(&server).unwrap();
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (0xA, b"are you there".as_slice())
    );
    ws.send(&server, Frame::text(b"frag").fin(false));
    ws.send(&server, Frame::new(0x9, b"mid"));
    ws.send(&server, Frame::new(0x0, b"ment"));
    let pong = ws.read(&server).unwrap();
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (0xA, b"mid".as_slice())
    );
    assert_eq!(ws.read(&server).unwrap().payload, b"fragment");
    // An unsolicited pong is ignored (Autobahn 2.8).
    ws.send(&server, Frame::new(0xA, b"unasked"));
    ws.send(&server, Frame::text(b"after"));
    assert_eq!(ws.read(&server).unwrap().payload, b"after");
    assert_eq!(
        seen.borrow().pings,
        vec![b"are you there".to_vec(), b"mid".to_vec()]
    );
}

#[test]
fn the_server_echoes_the_close_code_and_closes_tcp() {
    // Autobahn 7.1.x, 7.7.x.
    for (sent, expected) in [
        (1000, Some(1000)),
        (1001, Some(1001)),
        (4000, Some(4000)),
        (3000, Some(3000)),
    ] {
        let (server, seen) = server();
        let mut ws = WsClient::open(&server, "/cb");
        ws.send(&server, Frame::new(0x8, &close_payload(sent, "bye")));
        assert_eq!(ws.expect_close(&server), expected);
        assert_eq!(
            seen.borrow().closes,
            vec![(Some(sent), Some("bye".to_owned()))]
        );
    }
    // An empty close is answered empty (7.3.1).
    let (server, seen) = server();
    let mut ws = WsClient::open(&server, "/cb");
    ws.send(&server, Frame::new(0x8, b""));
    assert_eq!(ws.expect_close(&server), None);
    assert_eq!(seen.borrow().closes, vec![(None, None)]);
}

#[test]
fn data_after_a_close_frame_is_ignored() {
    // Autobahn 7.1.3–7.1.5.
    let (server, seen) = server();
    let mut ws = WsClient::open(&server, "/cb");
    ws.send(&server, Frame::new(0x8, &close_payload(1000, "")));
    ws.send(&server, Frame::text(b"too late"));
    assert_eq!(ws.expect_close(&server), Some(1000));
    assert!(seen.borrow().messages.is_empty());
}

#[test]
fn a_server_close_waits_for_the_answer_then_closes_tcp() {
    let (server, seen) = server();
    let mut ws = WsClient::open(&server, "/cb");
    server.settle();
    let socket = seen.borrow().sockets[0].clone();
    socket.close(1001, "going away");
    assert_eq!(
        socket.send("after close").now_or_never(),
        Some(Err(SendError::Closed))
    );
    let frame = ws.read(&server).unwrap();
    assert_eq!(frame.close_code(), Some(1001));
    assert_eq!(&frame.payload[2..], b"going away");
    assert!(
        !ws.conn.is_closed(&server),
        "TCP stays open until the peer answers"
    );
    ws.send(&server, Frame::new(0x8, &close_payload(1001, "")));
    assert!(ws.conn.is_closed(&server));
    server.settle();
    assert!(socket.is_closed());
    assert_eq!(seen.borrow().closes.len(), 1);
}

#[test]
fn a_peer_that_never_answers_the_close_is_cut_after_the_close_timeout() {
    let (server, seen) = server();
    let mut ws = WsClient::open(&server, "/cb");
    server.settle();
    let socket = seen.borrow().sockets[0].clone();
    socket.close(1000, "");
    assert_eq!(ws.read(&server).unwrap().close_code(), Some(1000));
    server.advance(Duration::from_secs(4));
    assert!(!ws.conn.is_closed(&server));
    server.advance(Duration::from_secs(1));
    assert!(ws.conn.is_closed(&server));
    server.settle();
    assert_eq!(seen.borrow().closes, vec![(None, None)]);
}

#[test]
fn on_close_runs_once_when_the_peer_resets() {
    let (server, seen) = server();
    let mut ws = WsClient::open(&server, "/cb");
    // The echo stays unread: closing a socket with unread bytes sends a reset.
    ws.send(&server, Frame::text(b"unread"));
    server.settle();
    drop(ws);
    server.settle();
    assert_eq!(seen.borrow().closes, vec![(None, None)]);
    assert!(seen.borrow().sockets[0].is_closed());
}

#[test]
fn an_unanswered_ping_closes_after_the_ping_timeout() {
    let options = WebSocketOptions {
        ping_interval: Some(Duration::from_secs(10)),
        ping_timeout: Some(Duration::from_secs(3)),
        ..WebSocketOptions::default()
    };
    let (server, seen) = server_with(options);
    let mut ws = WsClient::open(&server, "/cb");
    // A client that answers keeps the connection.
    for _ in 0..3 {
        server.advance(Duration::from_secs(10));
        let ping = ws.read(&server).unwrap();
        assert_eq!(ping.opcode, 0x9);
        ws.send(&server, Frame::new(0xA, &ping.payload));
        server.settle(); // the pong arrives before the deadline
        server.advance(Duration::from_secs(3));
        assert!(seen.borrow().closes.is_empty());
    }
    // One that stops answering (half-open) is closed.
    server.advance(Duration::from_secs(10));
    assert_eq!(ws.read(&server).unwrap().opcode, 0x9);
    server.advance(Duration::from_secs(3));
    let close = ws.read(&server).unwrap();
    assert_eq!(close.close_code(), Some(1000));
    assert_eq!(&close.payload[2..], b"ping timed out");
    server.advance(Duration::from_secs(5));
    assert!(ws.conn.is_closed(&server));
    server.settle();
    assert_eq!(seen.borrow().closes.len(), 1);
}

#[test]
fn a_session_that_does_not_receive_stops_reading() {
    let (server, _) = server();
    let mut ws = WsClient::open(&server, "/idle");
    let frame = Frame::new(0x2, &[7; 64 * 1024]).encode();
    ws.flood(&server, &frame, 256 << 20, || {});
}

#[test]
fn a_member_that_stops_reading_is_closed_by_a_broadcast_and_the_others_are_served() {
    let options = WebSocketOptions {
        max_write_buffer: 1 << 20,
        ..WebSocketOptions::default()
    };
    let (server, seen) = server_with(options);
    let mut reader = WsClient::open(&server, "/cb");
    let stalled = WsClient::open(&server, "/cb");
    server.settle();
    let members = seen.borrow().sockets.clone();
    let message = "m".repeat(64 * 1024);
    let mut delivered_to_reader = 0;
    for _ in 0..200 {
        Broadcast::new(message.as_str()).send_to(&members);
        server.settle();
        // The reader keeps up.
        let frame = reader.read(&server).expect("the reader is served");
        assert_eq!(frame.payload.len(), message.len());
        delivered_to_reader += 1;
        assert!(members[1].write_buffered() <= (1 << 20) + message.len() + 16);
    }
    assert_eq!(delivered_to_reader, 200);
    assert!(
        members[1].is_closed()
            || members[1].send("x").now_or_never() == Some(Err(SendError::Closed))
    );
    drop(stalled);
}

/// Polls a future once (it must be ready at once).
trait NowOrNever: std::future::Future + Sized {
    fn now_or_never(self) -> Option<Self::Output> {
        let mut future = std::pin::pin!(self);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(output) => Some(output),
            std::task::Poll::Pending => None,
        }
    }
}

impl<F: std::future::Future> NowOrNever for F {}

#[test]
fn the_client_talks_to_this_server_and_reports_refusals_by_type() {
    let ioloop = ioloop::IoLoop::new().unwrap();
    let (server, addr) = Application::new()
        .route("/echo", websocket(common::websocket::echo))
        .route(
            "/chat",
            websocket(|_ws, _req| async {}).subprotocols(["chat.v1"]),
        )
        .bind(&ioloop, "127.0.0.1:0")
        .unwrap();
    let (_reserved, unused_port) = ioloop::testing::bind_refusing_port().unwrap();
    ioloop
        .run_sync(async move {
            let ws = websocket_connect(&format!("ws://{addr}/echo"))
                .await
                .unwrap();
            ws.send("Hello, 异步世界!").await.unwrap();
            assert_eq!(ws.recv().await, Some(Message::from("Hello, 异步世界!")));
            ws.send(vec![1u8, 2, 3]).await.unwrap();
            assert_eq!(ws.recv().await, Some(Message::Binary(vec![1, 2, 3])));
            ws.close(4000, "bye");
            ws.closed().await;
            assert_eq!(ws.close_code(), Some(4000), "the server echoes the code");

            let options = ClientOptions {
                subprotocols: vec!["chat.v0".into(), "chat.v1".into()],
                ..ClientOptions::default()
            };
            let chat = websocket_connect_with(&format!("ws://{addr}/chat"), options)
                .await
                .unwrap();
            assert_eq!(chat.subprotocol(), Some("chat.v1"));
            // The session returned: the server closes with 1000.
            chat.closed().await;
            assert_eq!(chat.close_code(), Some(1000));

            let refused = websocket_connect(&format!("ws://{addr}/nowhere")).await;
            assert!(
                matches!(&refused, Err(WebSocketConnectError::Handshake(why)) if why.contains("404")),
                "{refused:?}"
            );
            let cross = ClientOptions {
                origin: Some("http://evil.example".into()),
                ..ClientOptions::default()
            };
            let refused = websocket_connect_with(&format!("ws://{addr}/echo"), cross).await;
            assert!(
                matches!(&refused, Err(WebSocketConnectError::Handshake(why)) if why.contains("403")),
                "{refused:?}"
            );
            let refused = websocket_connect(&format!("ws://127.0.0.1:{unused_port}/")).await;
            assert!(
                matches!(refused, Err(WebSocketConnectError::Connect(_))),
                "{refused:?}"
            );
            let refused = websocket_connect("http://127.0.0.1/").await;
            assert!(
                matches!(refused, Err(WebSocketConnectError::InvalidUrl(_))),
                "{refused:?}"
            );
            // The refused handshakes' sockets were closed by the client: the server sees
            // them go (the upgraded ones left its count when they switched).
            for _ in 0..64 {
                if server.connections() == 0 {
                    break;
                }
                ioloop::yield_now().await;
            }
            assert_eq!(server.connections(), 0);
        })
        .unwrap();
}

#[test]
fn a_server_that_never_answers_the_handshake_times_out() {
    let (ioloop, clock) = common::manual_loop();
    // The kernel completes the TCP handshake; nobody ever answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", silent.local_addr().unwrap());
    let options = ClientOptions {
        connect_timeout: Duration::from_secs(5),
        ..ClientOptions::default()
    };
    let task = ioloop.spawn(websocket_connect_with(&url, options));
    for _ in 0..64 {
        step(&ioloop);
    }
    assert!(!task.is_finished());
    clock.advance(Duration::from_secs(5));
    for _ in 0..4 {
        step(&ioloop);
    }
    let outcome = ioloop.run_sync(task).unwrap().unwrap();
    assert!(
        matches!(outcome, Err(WebSocketConnectError::TimedOut)),
        "{outcome:?}"
    );
}

#[test]
fn a_peer_that_pings_without_reading_is_not_buffered_without_bound() {
    let options = WebSocketOptions {
        max_write_buffer: 256 * 1024,
        ..WebSocketOptions::default()
    };
    let (server, seen) = server_with(options);
    let mut ws = WsClient::open(&server, "/cb");
    server.settle();
    let socket = seen.borrow().sockets[0].clone();
    // 125-byte pings, never reading the pongs: the server stops reading once its unsent
    // bytes pass the bound, so the client's writes block.
    let ping = Frame::new(0x9, &[b'p'; 125]).encode();
    let mut burst = Vec::new();
    for _ in 0..512 {
        burst.extend_from_slice(&ping);
    }
    ws.flood(&server, &burst, 512 << 20, || {
        assert!(socket.write_buffered() <= 256 * 1024 + 2 * 1024 * 1024);
    });
    assert!(
        socket.write_buffered() <= 256 * 1024 + 131,
        "{}",
        socket.write_buffered()
    );
    // Once the client reads, the server reads on.
    let pong = ws.read(&server).unwrap();
    assert_eq!(pong.opcode, 0xA);
}

#[test]
fn a_message_waiting_for_recv_holds_back_data_but_not_pings_or_the_close() {
    let (server, _) = server();
    let mut ws = WsClient::open(&server, "/idle");
    // The session never receives: this message waits in its inbox.
    ws.send(&server, Frame::text(b"unreceived"));
    server.settle();
    ws.send(&server, Frame::new(0x9, b"still there?"));
    let pong = ws.read(&server).unwrap();
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (0xA, b"still there?".as_slice())
    );
    ws.send(&server, Frame::new(0x8, &close_payload(1000, "")));
    assert_eq!(ws.expect_close(&server), Some(1000));
}

#[test]
fn a_close_code_that_must_not_be_sent_goes_out_as_1000() {
    let (server, seen) = server();
    let mut ws = WsClient::open(&server, "/cb");
    server.settle();
    let socket = seen.borrow().sockets[0].clone();
    socket.close(1006, "abnormal is local only");
    assert_eq!(ws.read(&server).unwrap().close_code(), Some(1000));
}

#[test]
fn client_urls_and_options_that_would_break_the_request_are_refused() {
    let ioloop = ioloop::IoLoop::new().unwrap();
    ioloop
        .run_sync(async {
            let refused = websocket_connect("ws://127.0.0.1/a\r\nX-Injected: 1").await;
            assert!(
                matches!(refused, Err(WebSocketConnectError::InvalidUrl(_))),
                "{refused:?}"
            );
            for options in [
                ClientOptions {
                    subprotocols: vec!["chat, evil".into()],
                    ..ClientOptions::default()
                },
                ClientOptions {
                    origin: Some("http://a\r\nX-Injected: 1".into()),
                    ..ClientOptions::default()
                },
            ] {
                let refused = websocket_connect_with("ws://127.0.0.1/", options).await;
                assert!(
                    matches!(refused, Err(WebSocketConnectError::InvalidOption(_))),
                    "{refused:?}"
                );
            }
        })
        .unwrap();
}

#[test]
fn a_server_answering_with_an_endless_head_is_refused_not_buffered() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut request = [0u8; 1024];
        let _ = conn.read(&mut request).unwrap();
        let mut head = b"HTTP/1.1 101 Switching Protocols\r\nX-Long: ".to_vec();
        head.extend(std::iter::repeat_n(b'a', 64 * 1024));
        // The client stops reading (and closes) once the head is over its limit.
        let _ = conn.write_all(&head);
    });
    let ioloop = ioloop::IoLoop::new().unwrap();
    let outcome = ioloop.run_sync(websocket_connect(&url)).unwrap();
    assert!(
        matches!(&outcome, Err(WebSocketConnectError::Handshake(why)) if why.contains("too large")),
        "{outcome:?}"
    );
    server.join().unwrap();
}

#[test]
fn send_then_reports_each_outcome_and_drained_then_the_low_water_mark() {
    let ioloop = ioloop::IoLoop::new().unwrap();
    let (_server, addr) = Application::new()
        .route("/echo", websocket(common::websocket::echo))
        .bind(&ioloop, "127.0.0.1:0")
        .unwrap();
    let outcomes = ioloop
        .run_sync(async move {
            let ws = websocket_connect(&format!("ws://{addr}/echo"))
                .await
                .unwrap();
            let (sent, sent_done) = ioloop::completion();
            ws.send_then("first", move |result| sent.complete(result));
            let (drained, drained_done) = ioloop::completion();
            ws.drained_then(0, move |result| drained.complete(result));
            let first = sent_done.await.unwrap();
            let drained = drained_done.await.unwrap();
            assert_eq!(ws.write_buffered(), 0);
            assert_eq!(ws.recv().await, Some(Message::from("first")));
            ws.close(1000, "");
            let (late, late_done) = ioloop::completion();
            ws.send_then("after close", move |result| late.complete(result));
            (first, drained, late_done.await.unwrap())
        })
        .unwrap();
    assert_eq!(outcomes, (Ok(()), Ok(()), Err(SendError::Closed)));
}

#[test]
fn prepare_hooks_see_the_handshake_and_may_refuse_it() {
    let server = SteppedServer::start(|ioloop| {
        Application::new()
            .prepare(|req| {
                (req.cookie("session").as_deref() != Some("ok"))
                    .then(|| ioloop::http::Response::error(401))
            })
            .route("/echo", websocket(|_ws, _req| std::future::pending::<()>()))
            .bind(ioloop, "127.0.0.1:0")
    });
    let (client, refused) = WsClient::open_with(&server, handshake("/echo", "").as_bytes());
    assert_eq!(refused.status, 401);
    // Gone before the next one connects (the harness counts connections).
    drop(client);
    server.settle();
    let (_, accepted) = WsClient::open_with(
        &server,
        handshake("/echo", "Cookie: session=ok\r\n").as_bytes(),
    );
    assert_eq!(accepted.status, 101);
}

/// A message the peer sent before its close frame is still received, then `None`: the
/// peer's close drops nothing already sent (ours does). Before, a message waiting for
/// `recv` when the close frame came was dropped: a session that sent and returned at
/// once lost its last message.
#[test]
fn a_message_sent_just_before_the_peers_close_is_still_received() {
    let ioloop = ioloop::IoLoop::new().unwrap();
    let (_server, addr) = Application::new()
        .route(
            "/bye",
            websocket(|ws, _req| async move {
                let _ = ws.send("bye").await;
                // The session returns: the server sends its close right after.
            }),
        )
        .bind(&ioloop, "127.0.0.1:0")
        .unwrap();
    ioloop
        .run_sync(async move {
            let ws = websocket_connect(&format!("ws://{addr}/bye"))
                .await
                .unwrap();
            // The whole closing handshake first, the message still unreceived.
            ws.closed().await;
            assert_eq!(ws.close_code(), Some(1000));
            assert_eq!(ws.recv().await, Some(Message::Text("bye".into())));
            assert_eq!(ws.recv().await, None);
        })
        .unwrap();
}
