//! A randomized test of the HTTP server's parser and connection state machine, in place
//! of `cargo fuzz` (which needs a nightly toolchain): valid requests mutated at random
//! (bytes flipped, inserted, deleted, fields duplicated, bodies cut), sent in random
//! pieces over a real socket, many per connection. The server must never panic (the loop
//! propagates panics), and every connection must end, answered or closed, in bounded
//! time. Seeded and reproducible: `IOLOOP_FUZZ_CASES` (default 300) and
//! `IOLOOP_FUZZ_SEED` run longer or one seed.

#![cfg(feature = "web")]

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::Rng;
use ioloop::http::{Request, Response, ServerOptions};
use ioloop::web::{get, post, Application};
use ioloop::{IoLoop, PanicPolicy};

const SEEDS: &[&[u8]] = &[
    b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /users/42?a=b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    b"HEAD /plain HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /plain HTTP/1.1\nHost: x\n\n",
    b"PUT /plain HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut bytes = input.to_vec();
    for _ in 0..rng.below(4) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.below(bytes.len());
        match rng.below(6) {
            0 => bytes[at] = rng.next() as u8,
            1 => {
                let alphabet = b"\r\n:; 0aZ\x00\xff-";
                bytes.insert(at, alphabet[rng.below(alphabet.len())]);
            }
            2 => {
                bytes.remove(at);
            }
            3 => {
                let end = (at + rng.below(16)).min(bytes.len());
                let copy = bytes[at..end].to_vec();
                bytes.splice(at..at, copy);
            }
            4 => bytes.truncate(at),
            _ => {
                let field = b"Content-Length: 7\r\n";
                bytes.splice(at..at, field.iter().copied());
            }
        }
    }
    bytes
}

/// Sends `stream` in random pieces, closes the writing side, and reads until the server
/// closes: the connection must end.
fn client(addr: SocketAddr, stream: Vec<u8>, seed: u64) -> Result<(), String> {
    let mut rng = Rng(seed | 1);
    let mut conn = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut at = 0;
    while at < stream.len() {
        let n = (1 + rng.below(64)).min(stream.len() - at);
        if conn.write_all(&stream[at..at + n]).is_err() {
            break; // the server answered and closed
        }
        at += n;
    }
    let _ = conn.shutdown(std::net::Shutdown::Write);
    let mut answer = Vec::new();
    match conn.read_to_end(&mut answer) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(()),
        Err(e) => Err(format!("seed {seed}: the connection did not end: {e}")),
    }
}

#[test]
fn random_request_streams_never_panic_the_server_and_every_connection_ends() {
    let ioloop = IoLoop::builder()
        .panic_policy(PanicPolicy::Propagate)
        .build()
        .unwrap();
    let options = ServerOptions {
        max_body_size: 64,
        header_timeout: Duration::from_secs(5),
        ..ServerOptions::default()
    };
    let (_server, addr) = Application::new()
        .route("/plain", get(|_req| async { "plain" }))
        .route(
            "/users/{id}",
            get(|req: Request| async move { format!("user {}", req.param("id").unwrap_or("")) }),
        )
        .route(
            "/echo",
            post(|mut req: Request| async move { Response::new(200).body(req.take_body()) }),
        )
        .server_options(options)
        .bind(&ioloop, "127.0.0.1:0")
        .unwrap();
    let cases: u64 = std::env::var("IOLOOP_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let seeds: Vec<u64> = match std::env::var("IOLOOP_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(seed) => vec![seed],
        None => (1..=cases).collect(),
    };
    let remote = ioloop.remote();
    let clients = std::thread::spawn(move || {
        // Stops the loop even if this thread panics, so a client bug fails the test
        // instead of hanging it.
        struct StopOnExit(ioloop::Remote);
        impl Drop for StopOnExit {
            fn drop(&mut self) {
                self.0.stop();
            }
        }
        let _stop = StopOnExit(remote);
        let mut failures = Vec::new();
        for seed in seeds {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let mut stream = Vec::new();
            for _ in 0..1 + rng.below(4) {
                let seed_request = SEEDS[rng.below(SEEDS.len())];
                stream.extend(mutate(&mut rng, seed_request));
            }
            let started = std::time::Instant::now();
            if let Err(e) = client(addr, stream.clone(), seed) {
                failures.push(e);
            }
            if started.elapsed() > Duration::from_secs(1) {
                failures.push(format!(
                    "seed {seed}: the connection took {:?} to end: {:?}",
                    started.elapsed(),
                    String::from_utf8_lossy(&stream)
                ));
            }
        }
        failures
    });
    ioloop.start().unwrap();
    let failures = clients.join().unwrap();
    assert!(failures.is_empty(), "{failures:?}");
}
