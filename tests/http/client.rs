//! The HTTP client against servers no one here wrote (Python's `http.server`, speaking
//! HTTP/1.0 and HTTP/1.1), against raw-socket servers that misbehave (truncated
//! bodies, bad chunk sizes, a response that never ends, pooled connections closed under
//! it), and against this crate's own server. The pool is proven by counting the
//! connections each server accepted.

#![cfg(all(feature = "http-client", feature = "web", target_os = "linux"))]

use crate::common;

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{has_tool, require_tool};
use ioloop::http::{
    ClientRequest, FetchError, HttpClient, HttpClientOptions, HttpServer, Request, Response,
};
use ioloop::testing::{advance_to_next_deadline, run_until};
use ioloop::web::{get, post, Application};
use ioloop::IoLoop;

// ---------------------------------------------------------------------------------------
// Python's http.server

/// `tests/clients/http_server.py` speaking HTTP/`version`; killed when dropped.
struct PythonServer {
    child: Child,
    port: u16,
}

impl PythonServer {
    fn start(version: &str) -> Option<PythonServer> {
        if !has_tool("python3", &["--version"]) {
            require_tool("python3");
            return None;
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/http_server.py");
        let mut child = Command::new("python3")
            .args([script, version])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().strip_prefix("port ").unwrap().parse().unwrap();
        Some(PythonServer { child, port })
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(body: &[u8]) -> &str {
    std::str::from_utf8(body).unwrap()
}

#[test]
fn python_http_1_1_server_keeps_one_connection_for_every_request() {
    let Some(server) = PythonServer::start("1.1") else {
        return;
    };
    let ioloop = IoLoop::new().unwrap();
    let client = HttpClient::new(&ioloop);
    let (url, client2) = (server.url(""), client.clone());
    let accepted = ioloop
        .run_sync(async move {
            for _ in 0..20 {
                let response = client2.fetch(format!("{url}/hello")).await.unwrap();
                assert_eq!(response.status(), 200);
                assert_eq!(response.body(), b"hello from python");
            }
            let chunked = client2.fetch(format!("{url}/chunked")).await.unwrap();
            assert_eq!(chunked.body(), b"one two three");
            let gzip_url = format!("{url}/gzip");
            let gzipped = client2.fetch(&gzip_url).await.unwrap();
            assert_eq!(gzipped.body(), "squeezed ".repeat(1000).as_bytes());
            // As Tornado does: the fields that described the compressed body go.
            assert_eq!(gzipped.header("content-encoding"), None);
            assert_eq!(gzipped.header("content-length"), None);
            assert_eq!(gzipped.header("x-consumed-content-encoding"), Some("gzip"));
            assert_eq!((gzipped.status(), gzipped.reason()), (200, "OK"));
            let raw = client2
                .fetch(ClientRequest::get(format!("{url}/gzip")).decompress(false))
                .await
                .unwrap();
            assert_eq!(&raw.body()[..2], b"\x1f\x8b");
            assert_eq!(raw.header("content-encoding"), Some("gzip"));
            let redirected = client2.fetch(format!("{url}/redirect")).await.unwrap();
            assert_eq!(redirected.body(), b"hello from python");
            assert_eq!(redirected.url(), format!("{url}/hello"));
            let missing = client2.fetch(format!("{url}/missing")).await.unwrap();
            assert_eq!(missing.status(), 404);
            // http.server answers Expect: 100-continue itself.
            let upload = ClientRequest::new("POST", format!("{url}/upload"))
                .body(vec![b'u'; 300_000])
                .expect_continue(true);
            let uploaded = client2.fetch(upload).await.unwrap();
            assert_eq!(text(uploaded.body()), "300000 bytes, expect=100-continue");
            let count = client2.fetch(format!("{url}/accepted")).await.unwrap();
            text(count.body()).parse::<usize>().unwrap()
        })
        .unwrap();
    assert_eq!(accepted, 1, "every request went over one connection");
    assert_eq!(client.idle_connections(), 1);
}

#[test]
fn python_http_1_0_server_gets_a_connection_per_request() {
    let Some(server) = PythonServer::start("1.0") else {
        return;
    };
    let ioloop = IoLoop::new().unwrap();
    let client = HttpClient::new(&ioloop);
    let url = server.url("");
    let accepted = ioloop
        .run_sync(async move {
            for _ in 0..5 {
                let response = client.fetch(format!("{url}/hello")).await.unwrap();
                assert_eq!(response.body(), b"hello from python");
                assert_eq!(response.head().version(), ioloop::http::Version::Http10);
            }
            let until_close = client.fetch(format!("{url}/until-close")).await.unwrap();
            assert_eq!(until_close.body(), b"until the end");
            let upload = ClientRequest::new("POST", format!("{url}/upload")).body("abc");
            let uploaded = client.fetch(upload).await.unwrap();
            assert_eq!(text(uploaded.body()), "3 bytes, expect=");
            assert_eq!(client.idle_connections(), 0);
            let count = client.fetch(format!("{url}/accepted")).await.unwrap();
            text(count.body()).parse::<usize>().unwrap()
        })
        .unwrap();
    assert_eq!(
        accepted, 8,
        "HTTP/1.0 without keep-alive: one connection each"
    );
}

// ---------------------------------------------------------------------------------------
// Raw servers that misbehave

/// A blocking server on a thread: each accepted connection is handed to `script` with
/// its index; `accepted` counts them.
struct RawServer {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl RawServer {
    fn start(script: impl Fn(usize, TcpStream) + Send + Sync + 'static) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let script = Arc::new(script);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let index = counter.fetch_add(1, Ordering::SeqCst);
                let script = script.clone();
                std::thread::spawn(move || script(index, stream));
            }
        });
        RawServer { port, accepted }
    }

    /// A server answering every connection's first request with `response`, then
    /// closing.
    fn answering(response: &'static [u8]) -> RawServer {
        RawServer::start(move |_, mut stream| {
            read_head(&mut stream);
            let _ = stream.write_all(response);
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Reads one request head (byte by byte, so nothing after it is taken); `None` at EOF.
fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    Some(head)
}

fn fetch(request: impl Into<ClientRequest>) -> Result<ioloop::http::ClientResponse, FetchError> {
    let ioloop = IoLoop::new().unwrap();
    let client = HttpClient::new(&ioloop);
    ioloop.run_sync(client.fetch(request)).unwrap()
}

#[test]
fn malformed_and_truncated_responses_are_typed_errors() {
    type Expected = fn(&FetchError) -> bool;
    let cases: [(&[u8], Expected); 8] = [
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b",
            |e| matches!(e, FetchError::Closed),
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
            |e| matches!(e, FetchError::Protocol(_)),
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
            |e| matches!(e, FetchError::Closed),
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            |e| matches!(e, FetchError::Protocol(_)),
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            |e| matches!(e, FetchError::Protocol(_)),
        ),
        (b"SMTP ready\r\n\r\n", |e| matches!(e, FetchError::Protocol(_))),
        (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
            |e| matches!(e, FetchError::Protocol(_)),
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\n\x1f\x8b\x08\x00",
            |e| matches!(e, FetchError::Protocol(_)),
        ),
    ];
    for (response, expected) in cases {
        let server = RawServer::answering(response);
        let error = fetch(server.url("/")).unwrap_err();
        assert!(
            expected(&error),
            "{:?}: {error:?}",
            String::from_utf8_lossy(response)
        );
    }
}

#[test]
fn a_head_over_64_kib_and_a_body_over_the_limit_are_refused() {
    let server = RawServer::start(|_, mut stream| {
        read_head(&mut stream);
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n");
        let filler = format!("X-Filler: {}\r\n", "f".repeat(1000));
        for _ in 0..80 {
            if stream.write_all(filler.as_bytes()).is_err() {
                return;
            }
        }
    });
    assert!(matches!(
        fetch(server.url("/")),
        Err(FetchError::HeadTooLarge)
    ));
    let declared = RawServer::answering(b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n");
    let request = ClientRequest::get(declared.url("/")).max_body_size(1000);
    assert!(matches!(
        fetch(request),
        Err(FetchError::BodyTooLarge { limit: 1000 })
    ));
}

#[test]
fn a_gzip_bomb_stops_at_the_limit() {
    // 64 MiB of zeros, about 64 KiB gzipped.
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..64 {
        gzip.write_all(&[0u8; 1 << 20]).unwrap();
    }
    let bomb: &'static [u8] = gzip.finish().unwrap().leak();
    let server = RawServer::start(move |_, mut stream| {
        read_head(&mut stream);
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            bomb.len()
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(bomb);
    });
    let request = ClientRequest::get(server.url("/")).max_body_size(1 << 20);
    assert!(matches!(
        fetch(request),
        Err(FetchError::BodyTooLarge { limit: 1048576 })
    ));
    let whole = ClientRequest::get(server.url("/")).max_body_size(64 << 20);
    assert_eq!(fetch(whole).unwrap().body().len(), 64 << 20);
}

#[test]
fn a_gzipped_chunked_body_with_long_chunk_extensions_is_read_whole() {
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(&b"inflated ".repeat(20_000)).unwrap();
    let body = gzip.finish().unwrap();
    // Chunks of 700 bytes, each size line carrying a 2 KiB extension.
    let mut response =
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let extension = format!(";ext={}", "e".repeat(2048));
    for chunk in body.chunks(700) {
        response.extend_from_slice(format!("{:x}{extension}\r\n", chunk.len()).as_bytes());
        response.extend_from_slice(chunk);
        response.extend_from_slice(b"\r\n");
    }
    response.extend_from_slice(b"0\r\n\r\n");
    let server = RawServer::answering(response.leak());
    let got = fetch(server.url("/")).unwrap();
    assert_eq!(got.body(), b"inflated ".repeat(20_000));
}

#[test]
fn a_streamed_response_without_a_body_gives_its_connection_back_at_once() {
    let ioloop = IoLoop::new().unwrap();
    let app = Application::new().route("/", get(|_req: Request| async { Response::new(204) }));
    let server = HttpServer::new(&ioloop, app);
    let port = server.bind("127.0.0.1:0").unwrap().port();
    let client = HttpClient::new(&ioloop);
    // A limit too far to add to the clock is no limit (not an overflow).
    let url =
        ClientRequest::get(format!("http://127.0.0.1:{port}/")).request_timeout(Duration::MAX);
    let response = ioloop
        .run_sync(client.fetch_streaming(url))
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(client.idle_connections(), 1, "before any next_chunk");
    drop(response);
    assert_eq!(client.idle_connections(), 1);
}

#[test]
fn a_response_that_never_ends_times_out_on_the_loop_clock() {
    let sent = Arc::new(AtomicBool::new(false));
    let server_sent = sent.clone();
    let server = RawServer::start(move |_, mut stream| {
        read_head(&mut stream);
        let _ =
            stream.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
        server_sent.store(true, Ordering::SeqCst);
        // Then nothing, until the client leaves.
        let _ = stream.read(&mut [0u8; 16]);
    });
    let (ioloop, clock) = common::manual_loop();
    let client = HttpClient::new(&ioloop);
    let request = ClientRequest::get(server.url("/")).request_timeout(Duration::from_secs(30));
    let outcome: Rc<RefCell<Option<Result<_, FetchError>>>> = Rc::default();
    let seen = outcome.clone();
    client.fetch_then(request, move |_, result| *seen.borrow_mut() = Some(result));
    // The head and a first chunk are in; the rest never comes.
    run_until(&ioloop, || sent.load(Ordering::SeqCst));
    for _ in 0..10 {
        ioloop::testing::step(&ioloop);
    }
    assert!(outcome.borrow().is_none());
    let start = clock.now();
    while outcome.borrow().is_none() {
        advance_to_next_deadline(&ioloop, &clock).expect("a pending deadline");
        ioloop::testing::step(&ioloop);
    }
    assert!(matches!(outcome.take(), Some(Err(FetchError::Timeout))));
    assert_eq!(clock.now() - start, Duration::from_secs(30));
}

/// Answers one request per connection with keep-alive, then leaves without answering
/// the next one (a server closing an idle connection just as the client reuses it).
fn answers_once_then_drops() -> RawServer {
    RawServer::start(|index, mut stream| {
        while let Some(head) = read_head(&mut stream) {
            if head.starts_with(b"POST") {
                let mut body = [0u8; 4];
                let _ = stream.read_exact(&mut body);
            }
            let body = format!("connection {index}");
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
            if read_head(&mut stream).is_some() {
                // The second request on this connection: drop it unanswered.
                return;
            }
        }
    })
}

#[test]
fn an_idempotent_request_on_a_dead_pooled_connection_is_sent_again_once() {
    let server = answers_once_then_drops();
    let ioloop = IoLoop::new().unwrap();
    let client = HttpClient::new(&ioloop);
    let url = server.url("/");
    let bodies = ioloop
        .run_sync(async move {
            let first = client.fetch(url.as_str()).await.unwrap();
            assert_eq!(client.idle_connections(), 1);
            let second = client.fetch(url.as_str()).await.unwrap();
            (first.into_body(), second.into_body())
        })
        .unwrap();
    assert_eq!(bodies, (b"connection 0".to_vec(), b"connection 1".to_vec()));
    assert_eq!(server.accepted(), 2);
}

#[test]
fn a_post_on_a_dead_pooled_connection_is_not_sent_again() {
    let server = answers_once_then_drops();
    let ioloop = IoLoop::new().unwrap();
    let client = HttpClient::new(&ioloop);
    let url = server.url("/");
    let second = ioloop
        .run_sync(async move {
            let post = || ClientRequest::new("POST", &url).body("data");
            client.fetch(post()).await.unwrap();
            client.fetch(post()).await
        })
        .unwrap();
    assert!(matches!(second, Err(FetchError::Closed)), "{second:?}");
    assert_eq!(server.accepted(), 1);
}

#[test]
fn a_pooled_connection_the_server_closed_is_noticed_and_not_reused() {
    let server = RawServer::start(|_, mut stream| {
        read_head(&mut stream);
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        // Closes at once, without saying so.
    });
    let ioloop = IoLoop::new().unwrap();
    let client = HttpClient::new(&ioloop);
    let url = server.url("/");
    ioloop
        .run_sync(client.fetch(url.as_str()))
        .unwrap()
        .unwrap();
    assert_eq!(client.idle_connections(), 1);
    // The idle connection is watched: its close is seen without a request.
    run_until(&ioloop, || client.idle_connections() == 0);
    let post = ClientRequest::new("POST", &url).body("x");
    let response = ioloop.run_sync(client.fetch(post)).unwrap().unwrap();
    assert_eq!(response.body(), b"ok");
    assert_eq!(server.accepted(), 2);
}

#[test]
fn the_body_is_read_only_as_fast_as_it_is_asked_for() {
    const TOTAL: usize = 64 << 20;
    let written = Arc::new(AtomicUsize::new(0));
    let stalled = Arc::new(AtomicBool::new(false));
    let (server_written, server_stalled) = (written.clone(), stalled.clone());
    let server = RawServer::start(move |_, mut stream| {
        read_head(&mut stream);
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {TOTAL}\r\n\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        stream.set_nonblocking(true).unwrap();
        let piece = vec![7u8; 64 * 1024];
        let mut sent = 0;
        while sent < TOTAL {
            match stream.write(&piece[..piece.len().min(TOTAL - sent)]) {
                Ok(n) => {
                    sent += n;
                    server_written.store(sent, Ordering::SeqCst);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    server_stalled.store(true, Ordering::SeqCst);
                    std::thread::yield_now();
                }
                Err(_) => return,
            }
        }
    });
    let ioloop = IoLoop::new().unwrap();
    let client = HttpClient::new(&ioloop);
    let client2 = client.clone();
    let request = ClientRequest::get(server.url("/")).request_timeout(Duration::from_secs(120));
    let (mut response, first) = ioloop
        .run_sync(async move {
            let mut response = client2.fetch_streaming(request).await.unwrap();
            let first = response.next_chunk().await.unwrap().unwrap();
            (response, first)
        })
        .unwrap();
    assert!(
        !first.is_empty() && first.len() <= 128 * 1024,
        "{}",
        first.len()
    );
    // Nobody asks for more: the server is held back by the socket buffers.
    run_until(&ioloop, || stalled.load(Ordering::SeqCst));
    let before = written.load(Ordering::SeqCst);
    for _ in 0..100 {
        ioloop::testing::step(&ioloop);
    }
    let held = written.load(Ordering::SeqCst);
    assert!(held < TOTAL / 2, "the client read ahead: {held} of {TOTAL}");
    assert!(held - before < 8 << 20, "{before} then {held}");
    // Then the rest arrives as it is asked for.
    let mut total = first.len();
    let rest = ioloop
        .run_sync(async move {
            while let Some(chunk) = response.next_chunk().await.unwrap() {
                assert!(chunk.len() <= 128 * 1024);
                assert!(chunk.iter().all(|&b| b == 7));
                total += chunk.len();
            }
            total
        })
        .unwrap();
    assert_eq!(rest, TOTAL);
    assert_eq!(client.idle_connections(), 1);
}

#[test]
fn expect_continue_holds_the_body_until_the_server_says_continue() {
    let early_bytes = Arc::new(AtomicUsize::new(usize::MAX));
    let seen = early_bytes.clone();
    let server = RawServer::start(move |_, mut stream| {
        let head = read_head(&mut stream).unwrap();
        assert!(String::from_utf8_lossy(&head).contains("Expect: 100-continue"));
        // Nothing of the body may come before the 100.
        stream.set_nonblocking(true).unwrap();
        let early: usize = stream.read(&mut [0u8; 16]).unwrap_or_default();
        seen.store(early, Ordering::SeqCst);
        stream.set_nonblocking(false).unwrap();
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").unwrap();
        let mut body = vec![0u8; 5000];
        stream.read_exact(&mut body).unwrap();
        stream
            .write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone")
            .unwrap();
    });
    let request = ClientRequest::new("PUT", server.url("/"))
        .body(vec![1u8; 5000])
        .expect_continue(true);
    let response = fetch(request).unwrap();
    assert_eq!((response.status(), response.body()), (201, &b"done"[..]));
    assert_eq!(early_bytes.load(Ordering::SeqCst), 0);
}

#[test]
fn a_bare_cr_in_a_chunk_extension_or_a_trailer_line_is_a_protocol_error() {
    // RFC 9112 §7.1.1 and §7.1.2: the client shares the server's chunked decoder and
    // refuses what the server refuses.
    let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    for body in [
        "3;ext=a\rb\r\nabc\r\n0\r\n\r\n",
        "3\r\nabc\r\n0\r\nTrailer: a\rb\r\n\r\n",
    ] {
        let response: &'static [u8] = format!("{chunked}{body}").leak().as_bytes();
        let server = RawServer::answering(response);
        let error = fetch(server.url("/")).unwrap_err();
        assert!(
            matches!(error, FetchError::Protocol(_)),
            "{body:?}: {error:?}"
        );
    }
    let server = RawServer::answering(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=a\r\nabc\r\n0\r\nT: b\r\n\r\n",
    );
    assert_eq!(fetch(server.url("/")).unwrap().body(), b"abc");
}

#[test]
fn a_method_is_sent_as_written_and_only_head_means_head() {
    // RFC 9110 §9.1: methods are case-sensitive. `head` is not HEAD: the request line
    // keeps it as written, and the answer to it has a body.
    let server = RawServer::start(|_, mut stream| {
        let head = read_head(&mut stream).unwrap();
        let answer: &[u8] = if head.starts_with(b"head / HTTP/1.1\r\n") {
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody"
        } else {
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
        };
        stream.write_all(answer).unwrap();
    });
    let response = fetch(ClientRequest::new("head", server.url("/"))).unwrap();
    assert_eq!((response.status(), response.body()), (200, &b"body"[..]));
}

#[test]
fn hostile_responses_never_panic_or_hang() {
    let mut rng = common::Rng(0x5eed_1234);
    let pieces: [&[u8]; 12] = [
        b"HTTP/1.1 200 OK\r\n",
        b"HTTP/1.0 304 Not Modified\r\n",
        b"Content-Length: 3\r\n",
        b"Content-Length: 99999999999999999999\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"Content-Encoding: gzip\r\n",
        b"\r\n",
        b"ffffffffffffffffff\r\n",
        b"3\r\nabc\r\n0\r\n\r\n",
        b"\x00\xff\xfe",
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"Location: /\r\n",
    ];
    for _ in 0..40 {
        let mut response = Vec::new();
        for _ in 0..rng.below(10) {
            response.extend_from_slice(pieces[rng.below(pieces.len())]);
        }
        let response: &'static [u8] = response.leak();
        let server = RawServer::answering(response);
        let request = ClientRequest::get(server.url("/")).request_timeout(Duration::from_secs(10));
        // Any outcome but a panic or a timeout.
        if let Err(e) = fetch(request) {
            assert!(!matches!(e, FetchError::Timeout), "{e}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// This crate's server

/// A server on `ioloop` recording each request's path and peer port.
fn own_server(ioloop: &IoLoop, app: Application, seen: &Rc<RefCell<Vec<(String, u16)>>>) -> u16 {
    let seen = seen.clone();
    let app = app.route(
        "/echo/{*rest}",
        get(move |req: Request| {
            seen.borrow_mut()
                .push((req.path().to_owned(), req.peer_addr().port()));
            let body = req.path().to_owned();
            async move { body }
        }),
    );
    let server = HttpServer::new(ioloop, app);
    let port = server.bind("127.0.0.1:0").unwrap().port();
    std::mem::forget(server);
    port
}

#[test]
fn requests_beyond_max_clients_wait_in_order_on_pooled_connections() {
    let ioloop = IoLoop::new().unwrap();
    let seen = Rc::default();
    let port = own_server(&ioloop, Application::new(), &seen);
    let options = HttpClientOptions {
        max_clients: 2,
        ..Default::default()
    };
    let client = HttpClient::with_options(&ioloop, options);
    let done = Rc::new(RefCell::new(Vec::new()));
    for i in 0..8 {
        let done = done.clone();
        client.fetch_then(format!("http://127.0.0.1:{port}/echo/{i}"), move |_, r| {
            done.borrow_mut()
                .push(String::from_utf8(r.unwrap().into_body()).unwrap())
        });
    }
    ioloop::testing::step(&ioloop);
    assert_eq!(client.queued_requests(), 6);
    run_until(&ioloop, || done.borrow().len() == 8);
    let paths: Vec<String> = seen.borrow().iter().map(|(p, _)| p.clone()).collect();
    let expected: Vec<String> = (0..8).map(|i| format!("/echo/{i}")).collect();
    assert_eq!(paths, expected, "served in the order asked");
    let mut ports: Vec<u16> = seen.borrow().iter().map(|(_, p)| *p).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 2, "two connections, each reused");
    assert_eq!(client.idle_connections(), 2);
}

#[test]
fn sequential_requests_reuse_one_connection_until_it_idles_out() {
    let (ioloop, clock) = common::manual_loop();
    let seen = Rc::default();
    let port = own_server(&ioloop, Application::new(), &seen);
    let options = HttpClientOptions {
        idle_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let client = HttpClient::with_options(&ioloop, options);
    for i in 0..50 {
        let url = format!("http://localhost:{port}/echo/{i}");
        let body = ioloop
            .run_sync(client.fetch(url))
            .unwrap()
            .unwrap()
            .into_body();
        assert_eq!(body, format!("/echo/{i}").as_bytes());
    }
    let mut ports: Vec<u16> = seen.borrow().iter().map(|(_, p)| *p).collect();
    ports.dedup();
    assert_eq!(ports.len(), 1);
    assert_eq!(client.idle_connections(), 1);
    advance_to_next_deadline(&ioloop, &clock);
    ioloop::testing::step(&ioloop);
    assert_eq!(client.idle_connections(), 0);
    let url = format!("http://localhost:{port}/echo/again");
    ioloop.run_sync(client.fetch(url)).unwrap().unwrap();
    let mut ports: Vec<u16> = seen.borrow().iter().map(|(_, p)| *p).collect();
    ports.dedup();
    assert_eq!(ports.len(), 2, "a new connection after the idle timeout");
}

#[test]
fn redirects_follow_rfc_9110_and_stop_at_the_limit() {
    let ioloop = IoLoop::new().unwrap();
    let seen = Rc::default();
    let app = Application::new()
        .route(
            "/hop/{n}",
            get(|req: Request| async move {
                let n: u32 = req.param("n").unwrap_or("0").parse().unwrap_or(0);
                if n == 0 {
                    Response::text("landed")
                } else {
                    // Relative to /hop/n.
                    Response::redirect(format!("{}", n - 1), false)
                }
            }),
        )
        .route(
            "/form",
            post(|_req: Request| async {
                Response::redirect("/echo/after-post", false).status_code(303)
            }),
        )
        .route(
            "/keep",
            post(|_req: Request| async { Response::redirect("/method", false).status_code(307) }),
        )
        .route(
            "/method",
            post(|req: Request| async move {
                format!("{} {}", req.method(), String::from_utf8_lossy(req.body()))
            }),
        );
    let port = own_server(&ioloop, app, &seen);
    let client = HttpClient::new(&ioloop);
    let base = format!("http://127.0.0.1:{port}");
    let landed = ioloop
        .run_sync(client.fetch(format!("{base}/hop/5")))
        .unwrap()
        .unwrap();
    assert_eq!(landed.body(), b"landed");
    assert_eq!(landed.url(), format!("{base}/hop/0"));
    let too_many = ioloop
        .run_sync(client.fetch(format!("{base}/hop/6")))
        .unwrap();
    assert!(matches!(
        too_many,
        Err(FetchError::TooManyRedirects { limit: 5 })
    ));
    let unfollowed = ClientRequest::get(format!("{base}/hop/1")).follow_redirects(false);
    let response = ioloop.run_sync(client.fetch(unfollowed)).unwrap().unwrap();
    assert_eq!(
        (response.status(), response.header("location")),
        (302, Some("0"))
    );
    let form = ClientRequest::new("POST", format!("{base}/form")).body("a=1");
    let after = ioloop.run_sync(client.fetch(form)).unwrap().unwrap();
    assert_eq!(after.body(), b"/echo/after-post", "303 turns POST into GET");
    let keep = ClientRequest::new("POST", format!("{base}/keep")).body("payload");
    let kept = ioloop.run_sync(client.fetch(keep)).unwrap().unwrap();
    assert_eq!(
        kept.body(),
        b"POST payload",
        "307 keeps the method and body"
    );
}

#[test]
fn gzip_from_our_own_server_and_a_refused_upload_with_expect() {
    let ioloop = IoLoop::new().unwrap();
    let app = Application::new()
        .route(
            "/gz",
            get(|req: Request| async move {
                assert_eq!(req.header("accept-encoding"), Some("gzip"));
                let mut gzip =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gzip.write_all(&b"zipped ".repeat(5000)).unwrap();
                Response::new(200)
                    .header("Content-Encoding", "gzip")
                    .body(gzip.finish().unwrap())
            }),
        )
        .route("/small", post(|_req: Request| async { "fits" }));
    let options = ioloop::http::ServerOptions {
        max_body_size: 1024,
        ..Default::default()
    };
    let server = HttpServer::with_options(&ioloop, options, app);
    let port = server.bind("127.0.0.1:0").unwrap().port();
    let client = HttpClient::new(&ioloop);
    let gz = ioloop
        .run_sync(client.fetch(format!("http://127.0.0.1:{port}/gz")))
        .unwrap()
        .unwrap();
    assert_eq!(gz.body(), b"zipped ".repeat(5000));
    let upload = ClientRequest::new("POST", format!("http://127.0.0.1:{port}/small"))
        .body(vec![0u8; 4 << 20])
        .expect_continue(true);
    let refused = ioloop.run_sync(client.fetch(upload)).unwrap().unwrap();
    assert_eq!(refused.status(), 413);
}

#[test]
fn ipv6_literals_and_callbacks_and_bad_urls() {
    let ioloop = IoLoop::new().unwrap();
    let Ok(listener) = TcpListener::bind("[::1]:0") else {
        eprintln!("skipped: no IPv6 loopback");
        return;
    };
    drop(listener);
    let app = Application::new().route("/", get(|_req: Request| async { "over v6" }));
    let server = HttpServer::new(&ioloop, app);
    let port = server.bind("[::1]:0").unwrap().port();
    let client = HttpClient::new(&ioloop);
    let body = ioloop
        .run_sync(client.fetch(format!("http://[::1]:{port}/")))
        .unwrap()
        .unwrap()
        .into_body();
    assert_eq!(body, b"over v6");
    for bad in ["ftp://x/", "http://u@h/", "http://h/a b", "nonsense"] {
        let outcome = ioloop.run_sync(client.fetch(bad)).unwrap();
        assert!(matches!(outcome, Err(FetchError::InvalidUrl(_))), "{bad}");
    }
    let injected = ClientRequest::get("http://h/").header("X", "a\r\nB: c");
    let outcome = ioloop.run_sync(client.fetch(injected)).unwrap();
    assert!(matches!(outcome, Err(FetchError::InvalidRequest(_))));
    let (_reserved, refused) = ioloop::testing::bind_refusing_port().unwrap();
    let outcome = ioloop
        .run_sync(client.fetch(format!("http://127.0.0.1:{refused}/")))
        .unwrap();
    assert!(
        matches!(outcome, Err(FetchError::Connect(_))),
        "{outcome:?}"
    );
}

#[cfg(feature = "tls")]
#[test]
fn https_uses_the_configured_trust_and_pools_tls_connections() {
    let pki = common::tls::TestPki::new();
    let ioloop = IoLoop::new().unwrap();
    let seen = Rc::default();
    let app = Application::new();
    let port = {
        let seen: Rc<RefCell<Vec<(String, u16)>>> = Rc::clone(&seen);
        let app = app.route(
            "/peer",
            get(move |req: Request| {
                seen.borrow_mut()
                    .push((String::new(), req.peer_addr().port()));
                async { "secret" }
            }),
        );
        let server = HttpServer::new(&ioloop, app);
        server.set_tls(pki.acceptor());
        let port = server.bind("127.0.0.1:0").unwrap().port();
        std::mem::forget(server);
        port
    };
    let options = HttpClientOptions {
        tls: Some(pki.client_config()),
        ..Default::default()
    };
    let client = HttpClient::with_options(&ioloop, options);
    for _ in 0..3 {
        let response = ioloop
            .run_sync(client.fetch(format!("https://localhost:{port}/peer")))
            .unwrap()
            .unwrap();
        assert_eq!(response.body(), b"secret");
    }
    let mut ports: Vec<u16> = seen.borrow().iter().map(|(_, p)| *p).collect();
    ports.dedup();
    assert_eq!(ports.len(), 1, "one TLS connection for three requests");
    // The Web PKI does not trust the test CA.
    let untrusting = HttpClient::new(&ioloop);
    let outcome = ioloop
        .run_sync(untrusting.fetch(format!("https://localhost:{port}/peer")))
        .unwrap();
    assert!(matches!(outcome, Err(FetchError::Tls(_))), "{outcome:?}");
}

#[test]
fn the_fetch_example_reports_each_url_and_fails_on_a_bad_one() {
    let ioloop = IoLoop::new().unwrap();
    let app = Application::new().route("/ok", get(|_req: Request| async { "fine" }));
    let server = HttpServer::new(&ioloop, app);
    let port = server.bind("127.0.0.1:0").unwrap().port();
    let run = |urls: Vec<String>| {
        let path = common::example::example_path("fetch");
        let child = std::thread::spawn(move || Command::new(path).args(urls).output().unwrap());
        run_until(&ioloop, || child.is_finished());
        child.join().unwrap()
    };
    let ok = format!("http://127.0.0.1:{port}/ok");
    let out = run(vec![ok.clone(), ok.clone()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.contains("200") && l.contains("4 bytes"))
            .count(),
        2,
        "{stdout}"
    );
    let missing = format!("http://127.0.0.1:{port}/missing");
    let out = run(vec![ok, missing]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stdout.contains("404"), "{stdout}");
    let (_reserved, refused) = ioloop::testing::bind_refusing_port().unwrap();
    let out = run(vec![format!("http://127.0.0.1:{refused}/")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refused"),
        "{out:?}"
    );
}

#[test]
fn a_connection_that_never_completes_ends_at_the_connect_timeout() {
    // A listener whose accept queue is full: the kernel drops further SYNs, so a new
    // connection stays pending.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let fd = std::os::fd::AsFd::as_fd(&listener);
    rustix::net::listen(fd, 0).unwrap();
    let mut queued = Vec::new();
    let full = (0..8).any(|_| {
        let probe = std::net::TcpStream::connect_timeout(
            &([127, 0, 0, 1], port).into(),
            Duration::from_millis(200),
        );
        match probe {
            Ok(stream) => {
                queued.push(stream);
                false
            }
            Err(_) => true,
        }
    });
    if !full {
        eprintln!("skipped: the kernel accepted every connection (no full accept queue)");
        return;
    }
    let (ioloop, clock) = common::manual_loop();
    let client = HttpClient::new(&ioloop);
    let request = ClientRequest::get(format!("http://127.0.0.1:{port}/"))
        .connect_timeout(Duration::from_secs(3));
    let outcome: Rc<RefCell<Option<Result<_, FetchError>>>> = Rc::default();
    let seen = outcome.clone();
    client.fetch_then(request, move |_, result| *seen.borrow_mut() = Some(result));
    for _ in 0..10 {
        ioloop::testing::step(&ioloop);
    }
    assert!(outcome.borrow().is_none(), "{:?}", outcome.borrow());
    let start = clock.now();
    while outcome.borrow().is_none() {
        advance_to_next_deadline(&ioloop, &clock).expect("a pending deadline");
        ioloop::testing::step(&ioloop);
    }
    assert!(matches!(
        outcome.take(),
        Some(Err(FetchError::ConnectTimeout))
    ));
    assert_eq!(clock.now() - start, Duration::from_secs(3));
}

#[test]
fn at_most_max_idle_per_host_connections_are_kept() {
    let ioloop = IoLoop::new().unwrap();
    let seen = Rc::default();
    let port = own_server(&ioloop, Application::new(), &seen);
    let options = HttpClientOptions {
        max_clients: 4,
        max_idle_per_host: 2,
        ..Default::default()
    };
    let client = HttpClient::with_options(&ioloop, options);
    let done = Rc::new(std::cell::Cell::new(0));
    for i in 0..4 {
        let done = done.clone();
        client.fetch_then(format!("http://127.0.0.1:{port}/echo/{i}"), move |_, r| {
            r.unwrap();
            done.set(done.get() + 1);
        });
    }
    run_until(&ioloop, || done.get() == 4);
    let mut ports: Vec<u16> = seen.borrow().iter().map(|(_, p)| *p).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 4, "four at once: four connections");
    assert_eq!(client.idle_connections(), 2, "two kept, two closed");
}

/// A fetch's future is copied whole each time it moves, so it stays small: the connect
/// step (a TCP connect and a TLS handshake) is boxed, used by new connections only, and
/// the time limit holds the request once. (It was 4 712 bytes before both.)
#[test]
fn a_fetch_future_stays_small() {
    let ioloop = IoLoop::new().unwrap();
    let client = HttpClient::new(&ioloop);
    let size = std::mem::size_of_val(&client.fetch("http://127.0.0.1:1/"));
    assert!(size <= 2048, "a fetch's future is {size} bytes");
}
