//! permessage-deflate (RFC 7692, feature `deflate`): negotiation and compressed messages
//! between this crate's client and server, against the Python `websockets` library
//! (client and server, which offer and accept the extension by default), and the rules
//! a compressed frame must keep, with a raw-frame client on a stepped loop. Autobahn's
//! sections 12 and 13 stand behind these cases.

#![cfg(feature = "deflate")]

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::http::SteppedServer;
use common::websocket::{handshake, Frame, WsClient};
use ioloop::web::Application;
use ioloop::websocket::{
    websocket, websocket_connect_with, ClientOptions, DeflateOptions, Message, WebSocketOptions,
};
use ioloop::IoLoop;

fn compressed(no_context_takeover: bool) -> WebSocketOptions {
    WebSocketOptions {
        compression: Some(DeflateOptions {
            no_context_takeover,
            ..DeflateOptions::default()
        }),
        ..WebSocketOptions::default()
    }
}

fn echo_app(options: WebSocketOptions) -> Application {
    Application::new().route("/echo", websocket(common::websocket::echo).options(options))
}

/// Messages that compress well, badly, and not at all (under `min_size`).
fn messages() -> Vec<Message> {
    vec![
        Message::from("compress me ".repeat(5000)),
        Message::from(
            (0..60_000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
                .collect::<Vec<u8>>(),
        ),
        Message::from("short"),
        Message::from("κόσμε 异步 ".repeat(3000)),
        Message::from(""),
    ]
}

/// Serves `/echo` with `server` options on a fresh loop, connects to it with `client`
/// options and runs `session` with the connection.
fn with_echo_client<F, Fut>(server: WebSocketOptions, client: WebSocketOptions, session: F)
where
    F: FnOnce(ioloop::websocket::WebSocket) -> Fut + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let ioloop = IoLoop::new().unwrap();
    let (_server, addr) = echo_app(server).bind(&ioloop, "127.0.0.1:0").unwrap();
    let options = ClientOptions {
        options: client,
        ..ClientOptions::default()
    };
    ioloop
        .run_sync(async move {
            let ws = websocket_connect_with(&format!("ws://{addr}/echo"), options)
                .await
                .unwrap();
            session(ws).await;
        })
        .unwrap();
}

#[test]
fn the_client_and_server_agree_and_echo_with_and_without_context_takeover() {
    for no_context_takeover in [false, true] {
        let options = compressed(no_context_takeover);
        with_echo_client(options.clone(), options, |ws| async move {
            for _ in 0..2 {
                for message in messages() {
                    ws.send(message.clone()).await.unwrap();
                    assert_eq!(ws.recv().await, Some(message));
                }
            }
            ws.close(1000, "");
            ws.closed().await;
            assert_eq!(ws.close_code(), Some(1000));
        });
    }
}

#[test]
fn a_server_without_compression_declines_and_messages_go_plain() {
    with_echo_client(
        WebSocketOptions::default(),
        compressed(false),
        |ws| async move {
            ws.send("plain").await.unwrap();
            assert_eq!(ws.recv().await, Some(Message::from("plain")));
        },
    );
}

fn stepped(options: WebSocketOptions) -> SteppedServer {
    SteppedServer::start(move |ioloop| echo_app(options).bind(ioloop, "127.0.0.1:0"))
}

/// Opens `/echo` offering permessage-deflate; returns the client and the server's answer.
fn open_compressed(server: &SteppedServer, offer: &str) -> (WsClient, Option<String>) {
    let request = handshake("/echo", &format!("Sec-WebSocket-Extensions: {offer}\r\n"));
    let (ws, reply) = WsClient::open_with(server, request.as_bytes());
    assert_eq!(reply.status, 101);
    let answer = reply.header("Sec-WebSocket-Extensions").map(str::to_owned);
    (ws, answer)
}

#[test]
fn offers_the_server_cannot_honour_are_declined() {
    let server = stepped(compressed(false));
    let (_, answer) = open_compressed(&server, "permessage-deflate; client_max_window_bits");
    assert_eq!(answer.as_deref(), Some("permessage-deflate"));
    // 2^8 cannot be produced as raw deflate by zlib: declined.
    let (_, answer) = open_compressed(&server, "permessage-deflate; server_max_window_bits=8");
    assert_eq!(answer, None);
    // The first acceptable offer wins.
    let (_, answer) = open_compressed(
        &server,
        "permessage-deflate; server_max_window_bits=8, permessage-deflate; server_no_context_takeover",
    );
    assert_eq!(
        answer.as_deref(),
        Some("permessage-deflate; server_no_context_takeover")
    );
    let (_, answer) = open_compressed(&server, "permessage-deflate; bogus=1");
    assert_eq!(answer, None);
}

#[test]
fn a_window_limit_asked_of_the_server_is_kept() {
    let server = stepped(compressed(false));
    let (mut ws, answer) = open_compressed(&server, "permessage-deflate; server_max_window_bits=9");
    assert_eq!(
        answer.as_deref(),
        Some("permessage-deflate; server_max_window_bits=9")
    );
    // A 2 KiB block of noise sent twice (the context is kept): with a 32 KiB window the
    // second echo would be a 30-byte reference to the first, 2 KiB back; within 2^9 bytes
    // it cannot refer to it and stays about as long as the block.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let block: Vec<u8> = (0..2048)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 56) as u8
        })
        .collect();
    let mut inflate = flate2::Decompress::new(false);
    for _ in 0..2 {
        ws.send(&server, Frame::new(0x2, &block));
        let echo = ws.read(&server).unwrap();
        assert!(echo.rsv1, "the echo is compressed");
        assert!(echo.payload.len() > 1024, "a reference beyond the window");
        let mut out = Vec::with_capacity(block.len() + 64);
        let wire = [echo.payload, vec![0, 0, 0xFF, 0xFF]].concat();
        inflate
            .decompress_vec(&wire, &mut out, flate2::FlushDecompress::Sync)
            .unwrap();
        assert_eq!(out, block);
    }
}

#[test]
fn compressed_frames_that_break_the_rules_are_refused() {
    // RSV1 on a continuation: 1002 (Autobahn 13.x framing).
    let server = stepped(compressed(false));
    let (mut ws, _) = open_compressed(&server, "permessage-deflate");
    ws.send_raw(
        &server,
        &Frame::text(b"\xf2\x48").fin(false).encode_with_rsv1(),
    );
    ws.send_raw(
        &server,
        &Frame {
            rsv: 0b100,
            ..Frame::new(0x0, b"\xcd\xc9")
        }
        .encode(),
    );
    assert_eq!(ws.expect_close(&server), Some(1002));
    // Not a deflate stream: 1007.
    let (mut ws, _) = open_compressed(&server, "permessage-deflate");
    ws.send_raw(&server, &Frame::text(&[0xFF; 40]).encode_with_rsv1());
    assert_eq!(ws.expect_close(&server), Some(1007));
    // A bomb: 10 MiB + 1 of zeros inflated from a few KiB: 1009.
    let (mut ws, _) = open_compressed(&server, "permessage-deflate");
    let bomb = deflate_raw(&vec![0u8; (10 << 20) + 1]);
    assert!(bomb.len() < 64 * 1024);
    ws.send_raw(&server, &Frame::new(0x2, &bomb).encode_with_rsv1());
    assert_eq!(ws.expect_close(&server), Some(1009));
    // Without the extension agreed, RSV1 is a reserved bit: 1002.
    let (mut ws, _) = open_compressed(&server, "x-unknown");
    ws.send_raw(
        &server,
        &Frame::text(b"\xf2\x48\xcd\xc9\xc9\x07\x00").encode_with_rsv1(),
    );
    assert_eq!(ws.expect_close(&server), Some(1002));
}

#[test]
fn the_rfc_example_message_is_read() {
    // RFC 7692 §7.2.3.1: "Hello" compressed, then §7.2.3.2 the same, sharing the context.
    let server = stepped(compressed(false));
    let (mut ws, _) = open_compressed(&server, "permessage-deflate");
    ws.send_raw(
        &server,
        &Frame::text(b"\xf2\x48\xcd\xc9\xc9\x07\x00").encode_with_rsv1(),
    );
    assert_eq!(ws.read(&server).unwrap().payload, b"Hello");
    ws.send_raw(
        &server,
        &Frame::text(b"\xf2\x00\x11\x00\x00").encode_with_rsv1(),
    );
    assert_eq!(ws.read(&server).unwrap().payload, b"Hello");
}

#[test]
fn bytes_after_the_final_deflate_block_close_with_1007() {
    let server = stepped(compressed(false));
    // A message ended by a block with BFINAL set is a whole message (RFC 7692 §7.2.3.4).
    let (mut ws, _) = open_compressed(&server, "permessage-deflate");
    let ended = deflate_final(b"the last block");
    ws.send_raw(&server, &Frame::text(&ended).encode_with_rsv1());
    assert_eq!(ws.read(&server).unwrap().payload, b"the last block");
    // Bytes after that block belong to no deflate stream: invalid data, 1007.
    let (mut ws, _) = open_compressed(&server, "permessage-deflate");
    let junk = [&ended[..], b"junk"].concat();
    ws.send_raw(&server, &Frame::text(&junk).encode_with_rsv1());
    assert_eq!(ws.expect_close(&server), Some(1007));
    // The same over two frames (the junk in the continuation).
    let (mut ws, _) = open_compressed(&server, "permessage-deflate");
    ws.send_raw(&server, &Frame::text(&ended).fin(false).encode_with_rsv1());
    ws.send_raw(&server, &Frame::new(0x0, b"\x01\x02").encode());
    assert_eq!(ws.expect_close(&server), Some(1007));
}

/// `data` as a raw deflate stream ended by a block with BFINAL set.
fn deflate_final(data: &[u8]) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress, Status};
    let mut compress = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    let status = compress
        .compress_vec(data, &mut out, FlushCompress::Finish)
        .unwrap();
    assert_eq!(status, Status::StreamEnd);
    out
}

/// `data` as a raw deflate stream ended by a sync flush, without its tail.
fn deflate_raw(data: &[u8]) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let mut compress = Compress::new(Compression::best(), false);
    let mut out = Vec::with_capacity(data.len() / 100 + 1024);
    compress
        .compress_vec(data, &mut out, FlushCompress::Sync)
        .unwrap();
    assert_eq!(compress.total_in() as usize, data.len());
    out.truncate(out.len() - 4);
    out
}

fn has_python_websockets() -> bool {
    Command::new("python3")
        .args(["-c", "import websockets.sync.client"])
        .status()
        .is_ok_and(|s| s.success())
}

fn script() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/ws_peer.py").to_owned()
}

#[test]
fn python_websockets_agrees_deflate_with_the_server() {
    if !has_python_websockets() {
        return common::require_tool("python3 websockets");
    }
    // The server on its own thread and loop; the peer runs from this one.
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let ioloop = IoLoop::new().unwrap();
        let (_server, addr) = echo_app(compressed(false))
            .bind(&ioloop, "127.0.0.1:0")
            .unwrap();
        port_tx.send((addr.port(), ioloop.remote())).unwrap();
        ioloop.start().unwrap();
    });
    let (port, remote) = port_rx.recv().unwrap();
    let out = Command::new("python3")
        .args([
            &script(),
            "deflate_echo",
            &format!("ws://127.0.0.1:{port}/echo"),
        ])
        .output()
        .unwrap();
    remote.stop();
    server.join().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

#[test]
fn the_client_agrees_deflate_with_a_python_websockets_server() {
    if !has_python_websockets() {
        return common::require_tool("python3 websockets");
    }
    let mut peer = Command::new("python3")
        .args([&script(), "serve"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(peer.stdout.take().unwrap()).lines();
    let banner = lines.next().unwrap().unwrap();
    let port = banner.rsplit(' ').next().unwrap().to_owned();
    let options = ClientOptions {
        options: compressed(false),
        ..ClientOptions::default()
    };
    let ioloop = IoLoop::new().unwrap();
    let echoed = ioloop.run_sync(async move {
        let ws = websocket_connect_with(&format!("ws://127.0.0.1:{port}/"), options)
            .await
            .unwrap();
        let mut same = Vec::new();
        for message in messages() {
            ws.send(message.clone()).await.unwrap();
            same.push(ws.recv().await == Some(message));
        }
        same
    });
    let _ = peer.kill();
    let _ = peer.wait();
    assert!(echoed.unwrap().iter().all(|&same| same));
}
