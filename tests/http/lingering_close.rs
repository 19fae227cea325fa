//! RFC 9112 §9.6, "Tear-down": a server that closes after its responses half-closes
//! first and keeps reading until the client closes (a "lingering close"), so that bytes
//! the client sent late do not make the kernel reset the connection and discard the end
//! of the responses. The fuzz target `http_server` found the cut: pipelined requests, a
//! large response, a malformed request (400), then more bytes from the client.
//!
//! Python's `socket` is the client of the first test; the others step a server on a
//! manual-clock loop.

#![cfg(feature = "web")]

use crate::common;

use std::net::SocketAddr;
use std::time::Duration;

use common::http::{SteppedClient, SteppedServer};
use ioloop::http::{HttpServer, Response, ServerOptions};
use ioloop::web::{get, Application};
use ioloop::IoLoop;

/// The size of `/big`'s body: far more than the client's small receive window and the
/// server's send buffer hold, so the server's kernel still has some of it unsent when
/// the server is done writing.
const BIG: usize = 4 << 20;

fn serve_big(ioloop: &IoLoop, options: ServerOptions) -> std::io::Result<(HttpServer, SocketAddr)> {
    Application::new()
        .server_options(options)
        .route(
            "/big",
            get(|_| async { Response::new(200).body(vec![b'x'; BIG]) }),
        )
        .route("/", get(|_| async { "small" }))
        .bind(ioloop, "127.0.0.1:0")
}

/// Sends a request for `/big` and a malformed one, waits for the first response bytes
/// (so the server has stopped reading after its 400), sends more, then reads to the end
/// with a 4 KiB receive buffer. Prints how the stream ended, the first status line,
/// whether the 200's body came whole, and whether the 400 followed it.
const PYTHON_LATE_BYTES: &str = r#"
import socket, sys
port, big = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.settimeout(30)
s.connect(("127.0.0.1", port))
s.sendall(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\nNOT HTTP AT ALL\r\n\r\n")
got = bytearray(s.recv(4096))
s.sendall(b"bytes the server never reads" * 100)
end = "eof"
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
except ConnectionResetError:
    end = "reset"
head, _, rest = bytes(got).partition(b"\r\n\r\n")
body, after = rest[:big], rest[big:]
print(end, head.split(b"\r\n")[0].decode(), body == b"x" * big, after.startswith(b"HTTP/1.1 400"))
"#;

#[test]
fn late_client_bytes_after_a_refusal_do_not_cut_the_responses_before_it() {
    use common::{has_tool, require_tool, with_client};
    use std::process::Command;

    if !has_tool("python3", &["--version"]) {
        return require_tool("python3");
    }
    let ioloop = IoLoop::new().unwrap();
    let (_server, addr) = serve_big(&ioloop, ServerOptions::default()).unwrap();
    let out = with_client(&ioloop, addr, |addr| {
        Command::new("python3")
            .args(["-c", PYTHON_LATE_BYTES, &addr.port().to_string()])
            .arg(BIG.to_string())
            .output()
            .expect("python3 runs")
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The whole 4 MiB, the 400 after it, then a FIN: no reset.
    assert_eq!(stdout.trim(), "eof HTTP/1.1 200 OK True True");
}

const CLOSE: &str = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";

/// A client whose `Connection: close` request was answered and whose connection the
/// server has half-closed (the client read its FIN); the server is lingering.
fn lingering_client(server: &SteppedServer) -> SteppedClient {
    let mut client = server.connect();
    assert_eq!(client.request(server, CLOSE).status, 200);
    assert!(client.is_closed(server), "no FIN after the last response");
    client
}

fn stepped(linger_timeout: Duration) -> SteppedServer {
    let options = ServerOptions {
        linger_timeout,
        ..Default::default()
    };
    SteppedServer::start(|ioloop| serve_big(ioloop, options))
}

#[test]
fn after_its_last_response_the_server_half_closes_and_the_clients_close_ends_it() {
    let server = stepped(Duration::from_secs(5));
    // The server's FIN came after the response...
    let mut client = lingering_client(&server);
    // ...but it still reads: what the client sends now is taken and dropped.
    client.send(&server, &[b'z'; 100_000]);
    server.settle();
    assert_eq!(server.server.connections(), 1);
    // The client's close ends it, without waiting for the linger timeout.
    drop(client);
    server.settle_until(|| server.server.connections() == 0);
}

#[test]
fn a_client_that_never_closes_is_closed_after_the_linger_timeout() {
    let server = stepped(Duration::from_secs(5));
    let _client = lingering_client(&server); // open, never closing
    server.advance(Duration::from_millis(4900));
    assert_eq!(server.server.connections(), 1, "closed before its time");
    server.advance(Duration::from_millis(100));
    server.settle_until(|| server.server.connections() == 0);
}

#[test]
fn bytes_renew_the_linger_timeout_for_at_most_30_seconds() {
    let server = stepped(Duration::from_secs(5));
    let mut client = lingering_client(&server);
    // Each byte leaves at once (Nagle's algorithm would hold it for the ACK of the last).
    client.stream.set_nodelay(true).unwrap();
    // A byte every 4 s keeps it lingering, until 30 s after it began.
    for round in 1..=7 {
        server.advance(Duration::from_secs(4));
        assert_eq!(
            server.server.connections(),
            1,
            "closed while the client sent, {round} × 4 s in"
        );
        client.send(&server, b"z");
        server.settle();
    }
    // 28 s in: a byte now would renew it to 33 s, past the 30 s cap.
    server.advance(Duration::from_millis(1900));
    assert_eq!(server.server.connections(), 1);
    server.advance(Duration::from_millis(100));
    server.settle_until(|| server.server.connections() == 0);
}

#[test]
fn a_zero_linger_timeout_closes_as_soon_as_the_responses_are_sent() {
    let server = stepped(Duration::ZERO);
    let mut client = server.connect();
    assert_eq!(client.request(&server, CLOSE).status, 200);
    server.settle_until(|| server.server.connections() == 0);
    assert!(client.is_closed(&server));
}

#[test]
fn a_server_shutting_down_closes_lingering_connections_at_once() {
    let server = stepped(Duration::from_secs(5));
    let _client = lingering_client(&server); // open, never closing
    assert_eq!(server.server.connections(), 1);
    let shutdown = server.server.shutdown(Duration::from_secs(60));
    let mut shutdown = Box::pin(shutdown);
    server.settle_until(|| common::poll_once(&mut shutdown).is_ready());
    assert_eq!(server.server.connections(), 0);
}
