//! HTTP conformance of the server and web layer (issue 24), each test naming the RFC
//! section it holds the server to: `If-Range` on static files (Python's `http.client` as
//! the client), a bare CR in the chunked coding, case-sensitive methods, `Host` required
//! and valid, absolute-form targets, and the 2 MiB default body limit. Raw requests go
//! over loopback sockets to a server on a manual-clock loop the test steps.

#![cfg(feature = "web")]

use crate::common;

use common::http::SteppedServer;
use ioloop::http::Request;
use ioloop::web::{get, post, Application, MethodRouter};

fn serve(app: Application) -> SteppedServer {
    SteppedServer::start(|ioloop| app.bind(ioloop, "127.0.0.1:0"))
}

/// Routes that show what the server made of a request.
fn app() -> Application {
    Application::new()
        .route("/", get(|_req| async { "root" }))
        .route("/plaintext", get(|_req| async { "Hello, World!" }))
        .route(
            "/users/{id}",
            get(|req: Request| async move {
                format!(
                    "id={} path={} query={} host={} host-field={}",
                    req.param("id").unwrap_or(""),
                    req.path(),
                    req.query(),
                    req.host().unwrap_or("-"),
                    req.header("host").unwrap_or("-"),
                )
            }),
        )
        .route(
            "/echo",
            post(|mut req: Request| async move { req.take_body() }),
        )
        .route(
            "/report",
            MethodRouter::default().on("REPORT", |_req| async { "report" }),
        )
}

/// One request on a new connection: the reply's status and body, and whether the server
/// ended its side of the connection after it (a FIN; it then lingers, reading, until the
/// client closes: RFC 9112 §9.6). The connection is gone from the server when this
/// returns (so that the next `connect` sees the count it waits for rise).
fn once(server: &SteppedServer, request: &str) -> (u16, String, bool) {
    let before = server.server.connections();
    let mut client = server.connect();
    let reply = client.request(server, request);
    let closed = client.is_closed(server);
    drop(client);
    server.settle_until(|| server.server.connections() <= before);
    (reply.status, reply.text(), closed)
}

// ---- If-Range on static files ----

/// Python's `http.client` asks for bytes 100-199 of `data.bin` with each `If-Range`
/// value on its line of stdin (`ETAG` and `DATE` stand for the file's own validators,
/// read from a first plain GET) and prints, per request: status, Content-Range (or `-`),
/// body length, first body byte.
const PYTHON_IF_RANGE: &str = r#"
import http.client, sys
port = int(sys.argv[1])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
conn.request("GET", "/files/data.bin")
first = conn.getresponse()
first.read()
etag, date = first.getheader("ETag"), first.getheader("Last-Modified")
for line in sys.stdin.read().splitlines():
    value = line.replace("ETAG", etag).replace("DATE", date)
    conn.request("GET", "/files/data.bin", headers={"Range": "bytes=100-199", "If-Range": value})
    r = conn.getresponse()
    body = r.read()
    print(r.status, r.getheader("Content-Range") or "-", len(body), body[0])
"#;

#[test]
fn a_range_request_whose_if_range_does_not_match_gets_the_whole_file() {
    // RFC 9110 §13.1.5: a range request whose If-Range entity-tag (strong comparison; a
    // weak tag never matches) or HTTP-date (an exact match of Last-Modified) does not
    // match the representation gets it whole: 200, not 206.
    use common::{has_tool, require_tool, with_client};
    use ioloop::web::StaticFiles;
    use ioloop::IoLoop;
    use std::io::Write;
    use std::process::{Command, Stdio};
    use std::time::{Duration, UNIX_EPOCH};

    if !has_tool("python3", &["--version"]) {
        return require_tool("python3");
    }
    let dir = std::env::temp_dir().join(format!("ioloop-if-range-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("data.bin"), &data).unwrap();
    // Modified long ago (whole seconds): Last-Modified is a strong validator.
    let modified = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    std::fs::File::options()
        .write(true)
        .open(dir.join("data.bin"))
        .unwrap()
        .set_modified(modified)
        .unwrap();

    let ioloop = IoLoop::new().unwrap();
    let (_server, addr) = Application::new()
        .route("/files/{*path}", get(StaticFiles::new(&dir)))
        .bind(&ioloop, "127.0.0.1:0")
        .unwrap();
    let cases = [
        ("ETAG", "206 bytes 100-199/1000 100 100"),
        ("DATE", "206 bytes 100-199/1000 100 100"),
        // A tag of an older version of the file: the whole new file, not new bytes
        // spliced onto an old download.
        ("\"3e8-0-0\"", "200 - 1000 0"),
        ("W/ETAG", "200 - 1000 0"),
        ("Tue, 14 Nov 2023 22:13:21 GMT", "200 - 1000 0"),
        ("not a validator", "200 - 1000 0"),
    ];
    let input: String = cases
        .iter()
        .map(|(value, _)| format!("{value}\n"))
        .collect();
    let out = with_client(&ioloop, addr, move |addr| {
        let mut child = Command::new("python3")
            .args(["-c", PYTHON_IF_RANGE, &addr.port().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    });
    std::fs::remove_dir_all(&dir).ok();
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let expected: Vec<String> = cases.iter().map(|(_, want)| want.to_string()).collect();
    assert_eq!(lines, expected, "If-Range values: {cases:?}");
}

// ---- a bare CR in the chunked coding ----

#[test]
fn a_bare_cr_in_a_chunk_extension_or_a_trailer_line_gets_400_and_closes() {
    // RFC 9112 §7.1.1 (chunk-ext is tokens and quoted strings: no CR) and §7.1.2 (trailer
    // fields are field lines): a bare CR is neither; a proxy that ends lines at CR would
    // frame the body differently (request smuggling).
    let server = serve(app());
    let chunked = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    let good = format!("{chunked}3;ext=a\r\nabc\r\n0\r\nTrailer: b\r\n\r\n");
    assert_eq!(once(&server, &good), (200, "abc".into(), false));
    for bad in [
        format!("{chunked}3;ext=a\rb\r\nabc\r\n0\r\n\r\n"),
        format!("{chunked}3;ext=a\r\r\nabc\r\n0\r\n\r\n"),
        format!("{chunked}3\r\nabc\r\n0;x\ry\r\n\r\n"),
        format!("{chunked}3\r\nabc\r\n0\r\nTrailer: a\rb\r\n\r\n"),
        format!("{chunked}3\r\nabc\r\n0\r\nTrailer: a\r\r\n\r\n"),
    ] {
        let (status, _, closed) = once(&server, &bad);
        assert_eq!((status, closed), (400, true), "{bad:?}");
    }
}

// ---- methods are case-sensitive ----

#[test]
fn empty_lines_before_a_request_line_are_ignored_within_the_head_limit() {
    // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request
    // line. Ignored, but counted against the head limit (64 KiB), so a peer cannot
    // stream them for ever.
    let server = serve(app());
    let request = "\r\n\n\r\nGET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_eq!(once(&server, request).0, 200);
    let flood = "\r\n".repeat(40 * 1024);
    let (status, _, closed) = once(&server, &flood);
    assert_eq!((status, closed), (431, true));
}

#[test]
fn a_method_in_the_wrong_case_is_an_unknown_method_405_with_allow() {
    // RFC 9110 §9.1: "The method token is case-sensitive". `get` is not GET: on a known
    // path it is a method the route does not answer, 405 with Allow (as Tornado answers).
    let server = serve(app());
    let mut client = server.connect();
    for method in ["get", "Get", "head", "hEAD", "post"] {
        let reply = client.request(
            &server,
            &format!("{method} /plaintext HTTP/1.1\r\nHost: x\r\n\r\n"),
        );
        assert_eq!(reply.status, 405, "{method}");
        assert_eq!(reply.header("allow"), Some("GET, HEAD"), "{method}");
        // Not HEAD: the answer has its body (the client read it whole to get here).
        assert!(!reply.body.is_empty(), "{method}: 405 with its body");
    }
    // The exact methods still work, on the same connection.
    let reply = client.request(&server, "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((reply.status, reply.text()), (200, "Hello, World!".into()));
    let reply = client.request(&server, "HEAD /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((reply.status, reply.body.len()), (200, 0));
    assert_eq!(reply.header("content-length"), Some("13"));
    let reply = client.request(&server, "REPORT /report HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((reply.status, reply.text()), (200, "report".into()));
    let reply = client.request(&server, "report /report HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((reply.status, reply.header("allow")), (405, Some("REPORT")));
}

#[cfg(feature = "websocket")]
#[test]
fn a_lowercase_get_on_a_websocket_route_is_405() {
    // RFC 9110 §9.1: methods are case-sensitive; a WebSocket handshake is a GET (RFC 6455
    // §4.1), so `get` does not switch protocols.
    let app = Application::new().route(
        "/ws",
        ioloop::websocket::websocket(|_ws, _req| async {}).allow_any_origin(),
    );
    let server = serve(app);
    let handshake = |method: &str| {
        format!(
            "{method} /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
    };
    let mut client = server.connect();
    let reply = client.request(&server, &handshake("get"));
    assert_eq!((reply.status, reply.header("allow")), (405, Some("GET")));
    let mut client = server.connect();
    let reply = client.request(&server, &handshake("GET"));
    assert_eq!(reply.status, 101);
}

// ---- Host ----

#[test]
fn an_http_1_1_request_without_host_or_with_an_invalid_host_gets_400() {
    // RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to any
    // HTTP/1.1 request message that lacks a Host header field and to any request message
    // that contains more than one Host header field line or a Host header field with an
    // invalid field value." Host = uri-host [ ":" port ] (RFC 9110 §7.2, RFC 3986 §3.2).
    let server = serve(app());
    let (status, _, closed) = once(&server, "GET /plaintext HTTP/1.1\r\n\r\n");
    assert_eq!((status, closed), (400, true), "no Host");
    for bad in [
        "a b",
        "a@b",
        "user@example.com",
        "a/b",
        "a?b",
        "a#b",
        "a:b",
        "a:1x",
        "a:65536",
        "a:1:2",
        "a\"b",
        "%zz",
        "%4",
        "[::1",
        "[::1]x",
        "[::1]:x",
        "[not-ip]",
        "::1",
    ] {
        let request = format!("GET /plaintext HTTP/1.1\r\nHost: {bad}\r\n\r\n");
        let (status, _, closed) = once(&server, &request);
        assert_eq!((status, closed), (400, true), "Host: {bad}");
    }
    for good in [
        "example.com",
        "example.com:8080",
        "127.0.0.1",
        "127.0.0.1:80",
        "[::1]",
        "[::1]:8080",
        "[v1.fe80::a+en1]",
        "xn--bcher-kva.example",
        "a%41b",
        "under_score~-.!$&'()*+,;=",
        "localhost:",
    ] {
        let request = format!("GET /plaintext HTTP/1.1\r\nHost: {good}\r\n\r\n");
        let (status, body, closed) = once(&server, &request);
        assert_eq!(
            (status, body.as_str(), closed),
            (200, "Hello, World!", false),
            "Host: {good}"
        );
    }
    // Two Host fields stay refused (same section).
    let (status, _, closed) = once(
        &server,
        "GET /plaintext HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
    );
    assert_eq!((status, closed), (400, true), "two Host fields");
}

#[test]
fn http_1_0_without_host_is_accepted_and_with_an_invalid_one_refused() {
    // RFC 9112 §3.2: only HTTP/1.1 requires Host; an invalid value is refused in "any
    // request message".
    let server = serve(app());
    let mut client = server.connect();
    let reply = client.request(
        &server,
        "GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    );
    assert_eq!((reply.status, reply.text()), (200, "Hello, World!".into()));
    let (status, _, closed) = once(&server, "GET /plaintext HTTP/1.0\r\nHost: a b\r\n\r\n");
    assert_eq!((status, closed), (400, true));
}

// ---- absolute-form ----

#[test]
fn an_absolute_form_target_routes_by_its_path_and_its_authority_is_the_host() {
    // RFC 9112 §3.2.2: "a server MUST accept the absolute-form in requests"; the server
    // "MUST ignore the received Host header field (if any) and instead use the host
    // information of the request-target".
    let server = serve(app());
    let mut client = server.connect();
    let reply = client.request(
        &server,
        "GET http://example.com:8080/users/7?name=x HTTP/1.1\r\nHost: other.example\r\n\r\n",
    );
    assert_eq!(
        (reply.status, reply.text()),
        (
            200,
            "id=7 path=/users/7 query=name=x host=example.com:8080 \
             host-field=example.com:8080"
                .into()
        )
    );
    // The scheme is case-insensitive (RFC 3986 §3.1); an empty path is "/".
    let reply = client.request(
        &server,
        "GET HTTPS://Example.COM HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!((reply.status, reply.text()), (200, "root".into()));
    let reply = client.request(
        &server,
        "GET http://a.example?q=1 HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!((reply.status, reply.text()), (200, "root".into()));
    // The origin form on the same connection is unchanged.
    let reply = client.request(&server, "GET /users/8 HTTP/1.1\r\nHost: h:1\r\n\r\n");
    assert_eq!(
        reply.text(),
        "id=8 path=/users/8 query= host=h:1 host-field=h:1"
    );
    // The authority is validated as Host is: userinfo, a bad port.
    for bad in [
        "http://u@a/users/1",
        "http://a:x/users/1",
        "http:///users/1",
    ] {
        let request = format!("GET {bad} HTTP/1.1\r\nHost: a\r\n\r\n");
        let (status, _, closed) = once(&server, &request);
        assert_eq!((status, closed), (400, true), "{bad}");
    }
    // HTTP/1.1 still needs a Host field (RFC 9112 §3.2, "MUST send a Host header field
    // in all HTTP/1.1 request messages").
    let (status, _, _) = once(&server, "GET http://a/users/1 HTTP/1.1\r\n\r\n");
    assert_eq!(status, 400);
}

// ---- the default body limit ----

use common::http::SteppedClient;
use ioloop::http::ServerOptions;

const MIB: usize = 1 << 20;

/// Sends a `len`-byte POST to `path` and returns the reply.
fn upload(server: &SteppedServer, client: &mut SteppedClient, path: &str, len: usize) -> u16 {
    client.send(
        server,
        format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n").as_bytes(),
    );
    client.send(server, &vec![b'b'; len]);
    client.reply(server).status
}

fn counting() -> MethodRouter {
    post(|req: Request| async move { req.body().len().to_string() })
}

#[test]
fn the_default_body_limit_is_2_mib_and_a_route_or_the_server_can_raise_it() {
    // RFC 9110 §15.5.14: a body over the limit is 413 Content Too Large, before it is
    // read when its length is declared. The default guards memory: 2 MiB (axum's).
    assert_eq!(ServerOptions::default().max_body_size, 2 * MIB as u64);
    let server = serve(
        Application::new()
            .route("/count", counting())
            .route("/big", counting().body_limit(4 * MIB as u64)),
    );
    let mut client = server.connect();
    assert_eq!(upload(&server, &mut client, "/count", 2 * MIB), 200);
    let mut client = server.connect();
    client.send(
        &server,
        format!(
            "POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            2 * MIB + 1
        )
        .as_bytes(),
    );
    assert_eq!(client.reply(&server).status, 413, "declared over 2 MiB");
    assert!(client.is_closed(&server));
    let mut client = server.connect();
    assert_eq!(
        upload(&server, &mut client, "/big", 3 * MIB),
        200,
        "a route"
    );

    let server = serve(
        Application::new()
            .route("/count", counting())
            .server_options(ServerOptions {
                max_body_size: 4 * MIB as u64,
                ..Default::default()
            }),
    );
    let mut client = server.connect();
    assert_eq!(
        upload(&server, &mut client, "/count", 3 * MIB),
        200,
        "the server"
    );
}
