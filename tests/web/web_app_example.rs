//! `examples/web_app.rs` held to its black-box contract, over raw sockets: every route,
//! HTTP/1.0 and 1.1 keep-alive, pipelining, chunked bodies both ways, `Expect:
//! 100-continue`, the head and body limits with their answers, static files, and the
//! graceful shutdown on SIGTERM.

#![cfg(all(feature = "web", feature = "signals", target_os = "linux"))]

use crate::common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::example::Example;
use common::http::{get, Client};

fn server() -> Example {
    Example::start("web_app", &["0"])
}

#[test]
fn plaintext_has_the_body_the_type_and_the_servers_fields() {
    let app = server();
    let reply = get(app.port, "/plaintext");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, b"Hello, World!");
    assert!(reply
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    assert!(reply.header("date").unwrap().ends_with(" GMT"));
    assert!(reply.header("server").is_some());
    assert_eq!(reply.header("content-length"), Some("13"));
}

#[test]
fn json_is_exactly_the_27_bytes() {
    let app = server();
    let reply = get(app.port, "/json");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, br#"{"message":"Hello, World!"}"#);
    assert_eq!(reply.body.len(), 27);
    assert!(reply
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
}

#[test]
fn echo_returns_the_body_with_its_type_for_length_and_chunked_bodies() {
    let app = server();
    let mut client = Client::connect(app.port);
    let reply = client.request(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/x-test\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert_eq!((reply.status, reply.text().as_str()), (200, "hello"));
    assert_eq!(reply.header("content-type"), Some("text/x-test"));
    // Chunked, with an extension and a trailer field, on the same connection.
    let reply = client.request(
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
         3;ext=1\r\nabc\r\n4\r\ndefg\r\n0\r\nTrailer-Field: ignored\r\n\r\n",
    );
    assert_eq!((reply.status, reply.text().as_str()), (200, "abcdefg"));
}

#[test]
fn the_echo_limit_is_one_mebibyte_inclusive() {
    let app = server();
    let exact = vec![b'a'; 1 << 20];
    let mut client = Client::connect(app.port);
    client.send(
        format!(
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            exact.len()
        )
        .as_bytes(),
    );
    client.send(&exact);
    let reply = client.read(false);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.len(), 1 << 20);
    // One byte more, declared: 413 before the body is read, then close.
    let mut client = Client::connect(app.port);
    client.send(
        format!(
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            (1 << 20) + 1
        )
        .as_bytes(),
    );
    let reply = client.read(false);
    assert_eq!(reply.status, 413);
    assert!(client.is_closed_by_server());
}

#[test]
fn a_chunked_body_over_the_limit_counts_decoded_bytes_and_gets_413() {
    let app = server();
    let mut client = Client::connect(app.port);
    client.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    let piece = vec![b'z'; 64 * 1024];
    let mut sent = 0;
    while sent <= 1 << 20 {
        let mut chunk = format!("{:x}\r\n", piece.len()).into_bytes();
        chunk.extend_from_slice(&piece);
        chunk.extend_from_slice(b"\r\n");
        if client.stream().write_all(&chunk).is_err() {
            break; // the server answered and closed
        }
        sent += piece.len();
    }
    let reply = client.read(false);
    assert_eq!(reply.status, 413);
}

#[test]
fn expect_100_continue_gets_100_within_the_limit_and_413_beyond_it_before_the_body() {
    let app = server();
    let mut client = Client::connect(app.port);
    client.send(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    );
    let interim = client.read(false);
    assert_eq!(interim.status, 100);
    client.send(b"body");
    let reply = client.read(false);
    assert_eq!((reply.status, reply.text().as_str()), (200, "body"));

    let mut client = Client::connect(app.port);
    client.send(
        format!(
            "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
            2 << 20
        )
        .as_bytes(),
    );
    let reply = client.read(false);
    assert_eq!(
        reply.status, 413,
        "no 100 Continue: the body is refused unsent"
    );
}

#[test]
fn malformed_requests_get_400_and_the_connection_closes() {
    let app = server();
    for bad in [
        &b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"[..],
        b"GARBAGE\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ] {
        let mut client = Client::connect(app.port);
        client.send(bad);
        let reply = client.read(false);
        assert_eq!(reply.status, 400, "{:?}", String::from_utf8_lossy(bad));
        assert!(client.is_closed_by_server());
    }
}

#[test]
fn bare_lf_line_endings_are_accepted() {
    let app = server();
    let mut client = Client::connect(app.port);
    let reply = client.request("GET /plaintext HTTP/1.1\nHost: x\n\n");
    assert_eq!(reply.status, 200);
}

#[test]
fn head_limits_answer_431_and_exactly_100_lines_pass() {
    let app = server();
    let mut hundred = String::from("GET /plaintext HTTP/1.1\r\nHost: x\r\n");
    for i in 0..99 {
        hundred.push_str(&format!("X-{i}: v\r\n"));
    }
    let reply = Client::connect(app.port).request(&(hundred.clone() + "\r\n"));
    assert_eq!(reply.status, 200, "100 header lines, Host included, pass");
    let mut client = Client::connect(app.port);
    let reply = client.request(&(hundred + "X-100: v\r\n\r\n"));
    assert_eq!(reply.status, 431);
    assert!(client.is_closed_by_server());

    let mut client = Client::connect(app.port);
    let big = format!(
        "GET /plaintext HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70_000)
    );
    client.send(big.as_bytes());
    let reply = client.read(false);
    assert_eq!(reply.status, 431);
}

#[test]
fn a_head_of_exactly_65536_bytes_passes_and_one_more_byte_is_431() {
    let app = server();
    let prefix = "GET /plaintext HTTP/1.1\r\nHost: x\r\nX-Pad: ";
    let fill = 65536 - prefix.len() - 4;
    let exact = format!("{prefix}{}\r\n\r\n", "p".repeat(fill));
    assert_eq!(exact.len(), 65536);
    assert_eq!(Client::connect(app.port).request(&exact).status, 200);
    let over = format!("{prefix}{}\r\n\r\n", "p".repeat(fill + 1));
    assert_eq!(Client::connect(app.port).request(&over).status, 431);
}

#[test]
fn captures_are_percent_decoded_after_matching() {
    let app = server();
    assert_eq!(get(app.port, "/users/a%2Fb").text(), "user a/b");
    assert_eq!(get(app.port, "/users/42").text(), "user 42");
}

#[test]
fn head_sends_the_get_status_type_and_length_without_a_body() {
    let app = server();
    let mut client = Client::connect(app.port);
    let head = client.request("HEAD /json HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("27"));
    assert!(head
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    // The connection is still in sync: no body bytes were sent.
    let next = client.request("GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(next.text(), "Hello, World!");
}

#[test]
fn unknown_paths_get_404_and_other_methods_405_with_allow() {
    let app = server();
    assert_eq!(get(app.port, "/nowhere").status, 404);
    let reply = Client::connect(app.port)
        .request("POST /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(reply.status, 405);
    let allow = reply.header("allow").unwrap();
    assert!(allow.contains("GET") && allow.contains("HEAD"), "{allow}");
}

#[test]
fn http_1_0_keeps_alive_only_when_asked_and_is_never_chunked() {
    let app = server();
    let mut client = Client::connect(app.port);
    let reply = client.request("GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(
        reply
            .header("connection")
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("keep-alive")
    );
    assert_eq!(reply.header("content-length"), Some("13"));
    let reply = client.request("GET /stream?chunks=3 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert!(!reply.chunked, "HTTP/1.0 is never sent chunked");
    assert_eq!(reply.text(), "chunk 0\nchunk 1\nchunk 2\n");
    assert!(
        client.is_closed_by_server(),
        "the body ended with the connection"
    );

    let mut client = Client::connect(app.port);
    let reply = client.request("GET /plaintext HTTP/1.0\r\n\r\n");
    assert_eq!(reply.status, 200);
    assert!(client.is_closed_by_server(), "no keep-alive without asking");

    // The last request on a connection still has its body read before it is answered.
    let mut client = Client::connect(app.port);
    let reply = client.request("POST /echo HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!((reply.status, reply.text()), (200, "hello".to_string()));
    assert!(client.is_closed_by_server());
}

#[test]
fn stream_sends_n_chunks_d_ms_apart() {
    let app = server();
    let started = Instant::now();
    let reply = get(app.port, "/stream?chunks=3&delay_ms=100");
    assert!(reply.chunked);
    assert_eq!(reply.text(), "chunk 0\nchunk 1\nchunk 2\n");
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(get(app.port, "/stream?chunks=0").text(), "");
}

#[test]
fn sleep_answers_after_its_sleep() {
    let app = server();
    let started = Instant::now();
    assert_eq!(get(app.port, "/sleep?ms=150").text(), "slept 150");
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[test]
fn a_panicking_handler_gets_500_and_the_server_goes_on() {
    let app = server();
    let mut bystander = Client::connect(app.port);
    assert_eq!(
        bystander
            .request("GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
            .status,
        200
    );
    let mut client = Client::connect(app.port);
    assert_eq!(
        client
            .request("GET /panic HTTP/1.1\r\nHost: x\r\n\r\n")
            .status,
        500
    );
    // The same connection and another one still work.
    assert_eq!(
        client
            .request("GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
            .status,
        200
    );
    assert_eq!(
        bystander
            .request("GET /json HTTP/1.1\r\nHost: x\r\n\r\n")
            .status,
        200
    );
}

#[test]
fn static_files_have_their_bytes_types_and_validators() {
    let app = server();
    let hello = get(app.port, "/static/hello.txt");
    assert_eq!(
        (hello.status, hello.body.as_slice()),
        (200, &b"hello static\n"[..])
    );
    assert!(hello
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    let index = get(app.port, "/static/index.html");
    assert!(index
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let blob = get(app.port, "/static/blob.bin");
    assert_eq!(blob.body.len(), 307_200);
    assert!(blob
        .body
        .iter()
        .enumerate()
        .all(|(i, &b)| b == (i % 251) as u8));
    assert_eq!(
        blob.header("content-type"),
        Some("application/octet-stream")
    );

    let etag = hello.header("etag").unwrap().to_owned();
    let mut client = Client::connect(app.port);
    let again = client.request(&format!(
        "GET /static/hello.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\n\r\n"
    ));
    assert_eq!(again.status, 304);
    let modified = hello.header("last-modified").unwrap().to_owned();
    let again = client.request(&format!(
        "GET /static/hello.txt HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: {modified}\r\n\r\n"
    ));
    assert_eq!(again.status, 304);
}

#[test]
fn static_ranges_give_206_and_416() {
    let app = server();
    let mut client = Client::connect(app.port);
    let part = client
        .request("GET /static/blob.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=1000-1009\r\n\r\n");
    assert_eq!(part.status, 206);
    assert_eq!(part.header("content-range"), Some("bytes 1000-1009/307200"));
    let expected: Vec<u8> = (1000..1010).map(|i| (i % 251) as u8).collect();
    assert_eq!(part.body, expected);
    let tail =
        client.request("GET /static/blob.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=-5\r\n\r\n");
    assert_eq!(tail.body.len(), 5);
    let none =
        client.request("GET /static/blob.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=400000-\r\n\r\n");
    assert_eq!(none.status, 416);
    assert_eq!(none.header("content-range"), Some("bytes */307200"));
}

#[test]
fn no_path_leaves_the_static_folder() {
    let app = server();
    for escape in [
        "/static/../Cargo.toml",
        "/static/%2e%2e/Cargo.toml",
        "/static/..%2fCargo.toml",
        "/static/%2Fetc%2Fpasswd",
        "/static/../../../../etc/passwd",
    ] {
        let reply = get(app.port, escape);
        assert!(
            [400, 403, 404].contains(&reply.status),
            "{escape} gave {}",
            reply.status
        );
    }
}

#[test]
fn a_hundred_mixed_pipelined_requests_in_one_write_are_answered_in_order() {
    let app = server();
    let mut batch = String::from("GET /sleep?ms=100 HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut expected = vec!["slept 100".to_owned()];
    for i in 1..100 {
        match i % 4 {
            0 => {
                batch.push_str("GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
                expected.push("Hello, World!".into());
            }
            1 => {
                batch.push_str(&format!("GET /users/{i} HTTP/1.1\r\nHost: x\r\n\r\n"));
                expected.push(format!("user {i}"));
            }
            2 => {
                batch.push_str(&format!(
                    "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{i}",
                    i.to_string().len()
                ));
                expected.push(i.to_string());
            }
            _ => {
                batch.push_str(&format!(
                    "GET /sleep?ms={} HTTP/1.1\r\nHost: x\r\n\r\n",
                    i % 7
                ));
                expected.push(format!("slept {}", i % 7));
            }
        }
    }
    let mut client = Client::connect(app.port);
    client.send(batch.as_bytes());
    for (i, want) in expected.iter().enumerate() {
        let reply = client.read(false);
        assert_eq!(&reply.text(), want, "response {i}");
    }
}

#[test]
fn sigterm_stops_listening_finishes_in_flight_closes_idle_and_exits_0() {
    let app = server();
    let port = app.port;
    let mut idle = Client::connect(port);
    assert_eq!(
        idle.request("GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
            .status,
        200
    );
    let mut in_flight = Client::connect(port);
    in_flight.send(b"GET /sleep?ms=800 HTTP/1.1\r\nHost: x\r\n\r\n");
    // Let the request reach its handler: a round trip on another connection.
    assert_eq!(get(port, "/plaintext").status, 200);
    let started = Instant::now();
    let pid = rustix::process::Pid::from_raw(app.pid() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    // The idle keep-alive connection is closed.
    assert!(idle.is_closed_by_server());
    // The in-flight response finishes, marked as the last.
    let reply = in_flight.read(false);
    assert_eq!(reply.text(), "slept 800");
    assert_eq!(reply.header("connection"), Some("close"));
    let status = app.wait_exit();
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "no longer listening"
    );
}

#[test]
fn the_listen_backlog_is_at_least_1024() {
    let app = server();
    let out = match std::process::Command::new("ss")
        .args(["-ltnH", &format!("sport = :{}", app.port)])
        .output()
    {
        Ok(out) => out,
        Err(_) => {
            common::require_tool("ss");
            return;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let backlog: u32 = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2)?.parse().ok())
        .max()
        .expect("a listening socket");
    assert!(backlog >= 1024, "backlog {backlog}: {text}");
}

#[test]
fn python_http_client_keeps_alive_and_posts() {
    let app = server();
    let script = r#"
import http.client, sys
conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
for _ in range(3):
    conn.request("GET", "/plaintext")
    r = conn.getresponse()
    assert r.status == 200 and r.read() == b"Hello, World!", r.status
conn.request("POST", "/echo", body=b"from python", headers={"Content-Type": "text/x-py"})
r = conn.getresponse()
assert r.read() == b"from python" and r.getheader("Content-Type") == "text/x-py"
conn.request("HEAD", "/json")
r = conn.getresponse()
assert r.getheader("Content-Length") == "27" and r.read() == b""
import urllib.request
body = urllib.request.urlopen("http://127.0.0.1:%s/users/%%E5%%BC%%82" % sys.argv[1]).read()
assert body.decode() == "user 异", body
print("ok")
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, &app.port.to_string()])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_slowloris_of_500_connections_leaves_normal_requests_fast() {
    if !common::enough_fds(600) {
        return;
    }
    let app = server();
    let mut trickling = Vec::new();
    for _ in 0..500 {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", app.port)).unwrap();
        c.write_all(b"GET /plaintext HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .unwrap();
        trickling.push(c);
    }
    for round in 0..3 {
        for c in &mut trickling {
            let _ = c.write_all(b"a");
        }
        let started = Instant::now();
        let reply = get(app.port, "/plaintext");
        let took = started.elapsed();
        assert_eq!(reply.status, 200);
        assert!(took < Duration::from_millis(50), "round {round}: {took:?}");
    }
    let mut buf = [0u8; 1];
    trickling[0]
        .set_read_timeout(Some(Duration::from_millis(10)))
        .unwrap();
    assert!(
        trickling[0].read(&mut buf).is_err(),
        "a slow head is not answered yet"
    );
}
