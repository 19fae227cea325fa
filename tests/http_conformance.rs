//! HTTP conformance of the server and web layer (issue 24), each test naming the RFC
//! section it holds the server to: `If-Range` on static files (Python's `http.client` as
//! the client), a bare CR in the chunked coding, case-sensitive methods, `Host` required
//! and valid, absolute-form targets, and the 2 MiB default body limit. Raw requests go
//! over loopback sockets to a server on a manual-clock loop the test steps.

#![cfg(feature = "web")]

mod common;

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
                    req.header("host").unwrap_or("-"),
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
/// closed the connection after it. The connection is gone when this returns (so the
/// next `connect` counts from zero).
fn once(server: &SteppedServer, request: &str) -> (u16, String, bool) {
    let mut client = server.connect();
    let reply = client.request(server, request);
    let closed = client.is_closed(server);
    drop(client);
    server.settle_until(|| server.server.connections() == 0);
    (reply.status, reply.text(), closed)
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
