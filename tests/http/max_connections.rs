//! `ServerOptions::max_connections` (issue 24), as nginx's `worker_connections`: at the
//! cap the server stops accepting (the kernel's backlog holds the rest) and accepts again
//! once a connection closes. Real loopback sockets against a stepped, manual-clock loop.

#![cfg(feature = "websocket")]

use crate::common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;

use common::http::{parse_reply, SteppedServer};
use common::websocket::{close_payload, Frame, WsClient};
use ioloop::http::ServerOptions;
use ioloop::web::{get, Application};
use ioloop::websocket::websocket;

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// Zero-wait iterations an answer that is due may take (loopback delivers at once; the
/// margin is for a loaded machine).
const SETTLE_STEPS: usize = 10_000;

fn server(max_connections: Option<usize>) -> SteppedServer {
    SteppedServer::start(move |ioloop| {
        Application::new()
            .route("/", get(|_| async { "served" }))
            .route("/ws", websocket(common::websocket::echo))
            .server_options(ServerOptions {
                max_connections,
                ..ServerOptions::default()
            })
            .bind(ioloop, "127.0.0.1:0")
    })
}

/// A raw keep-alive client that the server may not have accepted yet.
struct Raw {
    stream: TcpStream,
    got: Vec<u8>,
}

impl Raw {
    fn connect(server: &SteppedServer) -> Raw {
        let stream = TcpStream::connect(server.addr).unwrap();
        stream.set_nonblocking(true).unwrap();
        Raw {
            stream,
            got: Vec::new(),
        }
    }

    /// Sends a request (the kernel buffers it, accepted or not).
    fn ask(&mut self) {
        self.stream.write_all(REQUEST).unwrap();
    }

    /// Steps the server up to `steps` times; whether a whole response arrived.
    fn answered_within(&mut self, server: &SteppedServer, steps: usize) -> bool {
        let mut chunk = [0u8; 4096];
        for _ in 0..steps {
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("the server closed the connection"),
                Ok(n) => self.got.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
            if let Some((reply, used)) = parse_reply(&self.got, false, false) {
                assert_eq!(reply.text(), "served");
                self.got.drain(..used);
                return true;
            }
            server.step();
        }
        false
    }
}

/// Whether the loop's poller reports a ready source now.
fn loop_fd_ready(server: &SteppedServer) -> bool {
    use rustix::event::{poll, PollFd, PollFlags};
    use std::os::fd::AsFd;
    let fd = server.ioloop.as_fd();
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    poll(&mut fds, Some(&rustix::event::Timespec::default())).unwrap() > 0
}

#[test]
fn at_the_cap_the_next_client_waits_in_the_backlog_until_one_closes() {
    let server = server(Some(2));
    let mut first = Raw::connect(&server);
    let mut second = Raw::connect(&server);
    first.ask();
    second.ask();
    assert!(first.answered_within(&server, SETTLE_STEPS));
    assert!(second.answered_within(&server, SETTLE_STEPS));
    assert_eq!(server.server.connections(), 2);

    // The third completes its TCP handshake with the kernel, and is not served.
    let mut third = Raw::connect(&server);
    third.ask();
    assert!(!third.answered_within(&server, 200), "served over the cap");
    assert_eq!(server.server.connections(), 2);
    // The listener is not watched (nothing else is ready): the loop's fd stays quiet,
    // though a client waits in the backlog, so the loop sleeps instead of spinning.
    assert!(!loop_fd_ready(&server), "the listener is still watched");
    // The two within the cap are still served meanwhile.
    first.ask();
    assert!(first.answered_within(&server, SETTLE_STEPS));

    // One closes: the third is accepted and answered.
    drop(second);
    assert!(
        third.answered_within(&server, SETTLE_STEPS),
        "not served below the cap"
    );
    assert_eq!(server.server.connections(), 2);
    // And the cap holds again: a fourth waits.
    let mut fourth = Raw::connect(&server);
    fourth.ask();
    assert!(!fourth.answered_within(&server, 200), "served over the cap");
    drop(first);
    assert!(fourth.answered_within(&server, SETTLE_STEPS));
}

#[test]
fn open_websockets_count_against_the_cap() {
    let server = server(Some(1));
    let mut ws = WsClient::open(&server, "/ws");
    let mut waiting = Raw::connect(&server);
    waiting.ask();
    assert!(
        !waiting.answered_within(&server, 200),
        "served over the cap"
    );
    ws.send(&server, Frame::new(0x8, &close_payload(1000, "")));
    assert!(ws.conn.is_closed(&server));
    assert!(
        waiting.answered_within(&server, SETTLE_STEPS),
        "not served below the cap"
    );
}

#[test]
fn no_cap_by_default() {
    assert_eq!(ServerOptions::default().max_connections, None);
    let server = server(None);
    let mut clients: Vec<Raw> = (0..20).map(|_| Raw::connect(&server)).collect();
    for client in &mut clients {
        client.ask();
    }
    for client in &mut clients {
        assert!(client.answered_within(&server, SETTLE_STEPS));
    }
    assert_eq!(server.server.connections(), 20);
}

/// A TLS handshake in progress holds a place under the cap: a client that connects and
/// says nothing keeps the next one waiting until it goes.
#[cfg(feature = "tls")]
#[test]
fn a_tls_handshake_in_progress_counts_against_the_cap() {
    let pki = common::tls::TestPki::new();
    let server = server(Some(1));
    server.server.set_tls(pki.acceptor());
    let silent = TcpStream::connect(server.addr).unwrap();
    server.settle();
    // A client speaking plain HTTP to the TLS port is answered 400, once accepted.
    let mut plain = Raw::connect(&server);
    plain.ask();
    let mut got = Vec::new();
    let mut answered = |server: &SteppedServer, steps: usize| {
        let mut chunk = [0u8; 4096];
        for _ in 0..steps {
            match plain.stream.read(&mut chunk) {
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
            if got.starts_with(b"HTTP/1.1 400") {
                return true;
            }
            server.step();
        }
        false
    };
    assert!(
        !answered(&server, 200),
        "accepted during another's handshake"
    );
    drop(silent);
    assert!(
        answered(&server, SETTLE_STEPS),
        "not accepted once the handshake failed"
    );
}
