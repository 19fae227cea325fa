//! The HTTP server's connection, driven through its public API over a loopback socket
//! (the server parses in place from the stream's buffer): any bytes a client sends, in
//! any pieces, then a half-close.
//!
//! Properties:
//! - the connection always ends (the server closes it once the client's bytes are
//!   answered or refused) within a bounded number of loop iterations;
//! - what the server writes is a sequence of well-formed HTTP/1.1 responses;
//! - the answers to dispatched requests come in request order, even when handlers answer
//!   out of order (some answer at once, some on a later loop iteration, some with a
//!   64 KiB body, some drop their responder, which answers 500); any other refusal
//!   (4xx/5xx) is the last response, and nothing follows it;
//! - the server holds no connection afterwards.

#![no_main]

use std::cell::{Cell, RefCell};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::rc::Rc;

use arbitrary::Arbitrary;
use ioloop::http::{
    Dispatch, Handler, HttpServer, Request, Responder, Response, ServerOptions, Service,
};
use ioloop::IoLoop;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// Where the bytes are split, with a loop iteration between pieces.
    splits: Vec<u16>,
    bytes: &'a [u8],
}

/// The methods of the requests dispatched, in order.
struct Seen(RefCell<Vec<String>>);

struct Svc {
    seen: Rc<Seen>,
}

/// How a handler answers, by the request's place on the connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Now,
    Later,
    Large,
    /// Drops its responder unanswered: the server answers 500.
    Drop,
}

fn style(seq: usize) -> Style {
    [Style::Now, Style::Later, Style::Large, Style::Drop][seq % 4]
}

struct Answer {
    seq: usize,
}

impl Handler for Answer {
    fn call(&self, request: Request, responder: Responder) {
        let mut body = format!("seq={} len={}", self.seq, request.body().len());
        match style(self.seq) {
            Style::Now => responder.send(Response::text(body)),
            Style::Later => {
                let ioloop = IoLoop::current().expect("on the loop");
                ioloop.add_callback(move |_| responder.send(Response::text(body)));
            }
            Style::Large => {
                body.push_str(&".".repeat(64 * 1024));
                responder.send(Response::text(body));
            }
            Style::Drop => drop(responder),
        }
    }
}

impl Service for Svc {
    fn dispatch(&self, request: &mut Request) -> Dispatch {
        let mut seen = self.seen.0.borrow_mut();
        let seq = seen.len();
        seen.push(request.method().to_owned());
        Dispatch::Handle {
            handler: Rc::new(Answer { seq }),
            body_limit: Some(4096),
            stream_body: false,
        }
    }
}

struct World {
    ioloop: IoLoop,
    server: HttpServer,
    addr: SocketAddr,
    seen: Rc<Seen>,
}

thread_local! {
    static WORLD: World = {
        // libFuzzer's `main` is not Rust's: writing to a socket the server closed must
        // fail with EPIPE, not kill the process.
        // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        let ioloop = IoLoop::new().unwrap();
        let seen = Rc::new(Seen(RefCell::new(Vec::new())));
        let options = ServerOptions {
            max_head_bytes: 2048,
            max_headers: 16,
            max_body_size: 4096,
            ..ServerOptions::default()
        };
        let server = HttpServer::with_options(&ioloop, options, Svc { seen: seen.clone() });
        let addr = server.bind("127.0.0.1:0").unwrap();
        World { ioloop, server, addr, seen }
    };
}

/// One response's status and body, taken from the front of `out`.
fn next_response(out: &[u8], head_request: bool) -> Option<(u16, Vec<u8>, usize)> {
    let mut fields = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut fields);
    let head_len = match response.parse(out) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            panic!("a response cut short: {:?}", String::from_utf8_lossy(out))
        }
        Err(e) => panic!(
            "a malformed response ({e}): {:?}",
            String::from_utf8_lossy(out)
        ),
    };
    assert_eq!(response.version, Some(1), "not HTTP/1.1");
    let status = response.code.unwrap();
    let length = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .map(|h| {
            std::str::from_utf8(h.value)
                .unwrap()
                .parse::<usize>()
                .unwrap()
        });
    let chunked = response
        .headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("transfer-encoding"));
    assert!(!chunked, "unexpected chunked response");
    let body_len = if (100..200).contains(&status) || status == 204 || status == 304 || head_request
    {
        0
    } else {
        length.expect("a final response has a Content-Length")
    };
    let end = head_len + body_len;
    assert!(end <= out.len(), "a response body cut short");
    Some((status, out[head_len..end].to_vec(), end))
}

fuzz_target!(|input: Input<'_>| {
    WORLD.with(|w| {
        w.seen.0.borrow_mut().clear();
        let mut client = TcpStream::connect(w.addr).unwrap();
        client.set_nonblocking(true).unwrap();
        let bytes = input.bytes;
        let mut cuts: Vec<usize> = input
            .splits
            .iter()
            .map(|&s| s as usize % (bytes.len() + 1))
            .collect();
        cuts.sort_unstable();
        cuts.push(bytes.len());
        let mut out = Vec::new();
        let read_some = |client: &mut TcpStream, out: &mut Vec<u8>| -> bool {
            let mut buf = [0u8; 8192];
            loop {
                match client.read(&mut buf) {
                    Ok(0) => return true,
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                    Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
                    Err(e) => panic!("{e}"),
                }
            }
        };
        let mut at = 0;
        let mut ended = false;
        for &cut in &cuts {
            if cut > at {
                match client.write_all(&bytes[at..cut]) {
                    Ok(()) => {}
                    // The server closed already (it refused what came before).
                    Err(e)
                        if matches!(
                            e.kind(),
                            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
                        ) =>
                    {
                        break
                    }
                    Err(e) => panic!("{e}"),
                }
                at = cut;
            }
            for _ in 0..3 {
                ioloop::testing::step(&w.ioloop);
            }
            ended |= read_some(&mut client, &mut out);
            if ended {
                break;
            }
        }
        let _ = client.shutdown(Shutdown::Write);
        let done = Cell::new(false);
        for _ in 0..10_000 {
            if done.get() {
                break;
            }
            ioloop::testing::step(&w.ioloop);
            if read_some(&mut client, &mut out) {
                done.set(true);
            }
        }
        assert!(done.get() || ended, "the connection did not end");
        drop(client);
        for _ in 0..100 {
            if w.server.connections() == 0 {
                break;
            }
            ioloop::testing::step(&w.ioloop);
        }
        assert_eq!(
            w.server.connections(),
            0,
            "the server still holds the connection"
        );

        let seen = w.seen.0.borrow();
        let mut rest = &out[..];
        let mut answered = 0;
        let mut refused = false;
        while !rest.is_empty() {
            assert!(
                !refused,
                "a response after a refusal: {:?}",
                String::from_utf8_lossy(&out)
            );
            let head_request = seen.get(answered).is_some_and(|m| m == "HEAD");
            let (status, body, used) = next_response(rest, head_request).unwrap();
            rest = &rest[used..];
            match status {
                100 => {}
                500 if style(answered) == Style::Drop && answered < seen.len() => answered += 1,
                200 => {
                    let text = String::from_utf8(body).unwrap();
                    if !head_request {
                        assert!(
                            text.starts_with(&format!("seq={answered} ")),
                            "out of order: {text:?} as answer {answered}"
                        );
                    }
                    answered += 1;
                }
                _ => refused = true,
            }
        }
        assert!(answered <= seen.len());
    });
});
