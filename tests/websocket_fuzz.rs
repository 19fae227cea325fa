//! A randomized test of the WebSocket frame decoder and connection state machine, in
//! place of `cargo fuzz` (which needs a nightly toolchain): valid client frame sequences
//! mutated at random (bytes flipped, inserted, deleted, lengths and opcodes changed,
//! frames cut), sent in random pieces over a real socket to a stepped server. The server
//! must never panic (a stepped loop propagates panics), every frame it sends must be
//! well formed, every close code it sends one the RFC allows on the wire, and every
//! connection must end with `on_close` run exactly once. Seeded and reproducible:
//! `IOLOOP_FUZZ_CASES` (default 300) and `IOLOOP_FUZZ_SEED`.
//!
//! In its own test binary, not `tests/websocket/`: each case counts on the server seeing
//! the client's close within `SteppedServer::settle`'s zero-wait iterations, which a
//! test running beside it in the same process (one that starts browsers or peers) can
//! delay past the last of them.

#![cfg(feature = "websocket")]

mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::http::SteppedServer;
use common::websocket::{close_payload, Frame, WsClient};
use common::Rng;
use ioloop::web::Application;
use ioloop::websocket::{Message, WebSocket, WebSocketHandler, WebSocketOptions, WebSocketRoute};

/// Echoes, and counts `on_close` calls.
struct Echo(Rc<Cell<usize>>);

impl WebSocketHandler for Echo {
    fn on_message(&mut self, ws: &WebSocket, message: Message) {
        let _ = ws.write_message(message);
    }
    fn on_close(&mut self, _ws: &WebSocket) {
        self.0.set(self.0.get() + 1);
    }
}

/// A valid sequence of client frames: messages whole and fragmented, pings, pongs.
fn valid_frames(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..1 + rng.below(4) {
        let len = [0, 1, 5, 125, 126, 300, 70_000][rng.below(7)];
        let text = "aé異🙂".repeat(len / 10 + 1);
        let payload = &text.as_bytes()[..text.len().min(len.max(1))];
        // Cut on a character boundary so a text message stays valid.
        let cut = (0..=payload.len())
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        let payload = &payload[..cut];
        match rng.below(5) {
            0 => out.extend(Frame::text(payload).encode()),
            1 => out.extend(Frame::new(0x2, payload).encode()),
            2 => out.extend(Frame::new(0x9, &payload[..payload.len().min(125)]).encode()),
            3 => out.extend(Frame::new(0xA, &payload[..payload.len().min(20)]).encode()),
            _ => {
                let half = payload.len() / 2;
                out.extend(Frame::new(0x2, &payload[..half]).fin(false).encode());
                out.extend(Frame::new(0x9, b"between").encode());
                out.extend(Frame::new(0x0, &payload[half..]).encode());
            }
        }
    }
    if rng.below(3) == 0 {
        out.extend(Frame::new(0x8, &close_payload(1000, "done")).encode());
    }
    out
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut bytes = input.to_vec();
    for _ in 0..rng.below(4) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.below(bytes.len());
        match rng.below(6) {
            0 => bytes[at] = rng.next() as u8,
            1 => bytes[at] ^= 1 << rng.below(8),
            2 => bytes.insert(at, rng.next() as u8),
            3 => {
                bytes.remove(at);
            }
            4 => bytes.truncate(at),
            _ => {
                // A frame's first byte: opcode and flags at random.
                bytes[0] = [
                    0x00, 0x01, 0x02, 0x03, 0x08, 0x09, 0x0A, 0x0B, 0x81, 0xC1, 0x89,
                ][rng.below(11)];
            }
        }
    }
    bytes
}

#[test]
fn mutated_frame_streams_never_panic_and_every_connection_ends_once() {
    let cases: u64 = std::env::var("IOLOOP_FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(300);
    let seed: u64 = std::env::var("IOLOOP_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_0FF4_A3E5);
    let closes = Rc::new(Cell::new(0));
    let counter = closes.clone();
    let options = WebSocketOptions {
        max_message_size: 64 * 1024,
        ..WebSocketOptions::default()
    };
    let server = SteppedServer::start(move |ioloop| {
        Application::new()
            .route(
                "/ws",
                WebSocketRoute::with_handler(move |_req| Echo(counter.clone())).options(options),
            )
            .bind(ioloop, "127.0.0.1:0")
    });
    for case in 0..cases {
        let mut rng = Rng(seed.wrapping_add(case).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let valid = valid_frames(&mut rng);
        let input = mutate(&mut rng, &valid);
        let mut ws = WsClient::open(&server, "/ws");
        let mut at = 0;
        while at < input.len() {
            let piece = 1 + rng.below(input.len() - at);
            if !ws.try_send_raw(&input[at..at + piece]) {
                break; // the server failed the connection and left
            }
            at += piece;
            server.step();
        }
        server.settle();
        // Everything the server sent parses; a close code is one the RFC allows.
        loop {
            match ws.read_now() {
                Some(frame) if frame.opcode == 0x8 => {
                    let code = frame.close_code();
                    assert!(
                        // Its own (1002, 1007, 1009) or the client's, echoed: never one
                        // that must not be sent (1005, 1006, 1015, unassigned).
                        matches!(code, None | Some(1000..=1003 | 1007..=1014 | 3000..=4999)),
                        "case {case}: close code {code:?} for {input:?}"
                    );
                    break;
                }
                Some(frame) => assert!(
                    matches!(frame.opcode, 0x1 | 0x2 | 0xA),
                    "case {case}: opcode {}",
                    frame.opcode
                ),
                None => break,
            }
        }
        // The client leaves: the connection ends, whatever state it was in.
        drop(ws);
        server.settle();
        assert_eq!(
            closes.get(),
            case as usize + 1,
            "case {case}: on_close once per connection"
        );
    }
}
