//! A web application with one route per behaviour of the HTTP server and the web layer.
//!
//! ```text
//! cargo run --example web_app -- 8080
//! cargo run --features tls --example web_app -- --tls cert.pem key.pem 8443
//! curl -i http://localhost:8080/plaintext
//! curl -i http://localhost:8080/json
//! curl -i -d 'some data' http://localhost:8080/echo
//! curl -i 'http://localhost:8080/stream?chunks=3&delay_ms=500'
//! curl -i http://localhost:8080/users/a%2Fb
//! curl -i 'http://localhost:8080/sleep?ms=200'
//! curl -i http://localhost:8080/panic
//! curl -i http://localhost:8080/static/hello.txt
//! python3 -m websockets ws://localhost:8080/ws/echo
//! ```
//!
//! | route | behaviour |
//! |---|---|
//! | `GET /plaintext` | `Hello, World!` as `text/plain` |
//! | `GET /json` | `{"message":"Hello, World!"}` as `application/json` |
//! | `POST /echo` | the request body with its `Content-Type`; at most 1 MiB (413 beyond, before the body is read when the client sent `Expect: 100-continue`) |
//! | `GET /stream?chunks=N&delay_ms=D` | a chunked response of N chunks `chunk {i}\n`, D ms apart |
//! | `GET /users/{id}` | `user {id}`, the id percent-decoded |
//! | `GET /sleep?ms=N` | `slept {N}` after an async sleep of N ms |
//! | `GET /panic` | the handler panics: 500, and the server goes on |
//! | `GET /static/{path}` | the files under `examples/static/` |
//! | `GET /ws/echo` | a WebSocket echoing every text and binary message |
//!
//! SIGINT or SIGTERM shuts it down gracefully: it stops listening at once, finishes the
//! responses in flight, closes idle connections, and exits within 5 seconds.

use std::time::Duration;

use ioloop::http::{Request, Responder, Response};
use ioloop::signal::{SIGINT, SIGTERM};
use ioloop::web::{get, post, Application, StaticFiles};
use ioloop::websocket::websocket;
use ioloop::IoLoop;

/// The most body bytes `POST /echo` takes.
const ECHO_LIMIT: u64 = 1024 * 1024;

fn app() -> Application {
    let static_root = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/static");
    Application::new()
        .route("/plaintext", get(|_req| async { "Hello, World!" }))
        .route(
            "/json",
            get(|_req| async { Response::json(r#"{"message":"Hello, World!"}"#) }),
        )
        .route("/echo", post(echo).body_limit(ECHO_LIMIT))
        .route("/stream", get(stream))
        .route(
            "/users/{id}",
            get(|req: Request| async move { format!("user {}", req.param("id").unwrap_or("")) }),
        )
        .route("/sleep", get(sleep))
        .route("/panic", get(panics))
        .route("/static/{*path}", get(StaticFiles::new(static_root)))
        .route("/ws/echo", websocket(echo_messages))
}

/// Echoes every message until the client closes.
async fn echo_messages(ws: ioloop::websocket::WebSocket, _req: Request) {
    while let Some(message) = ws.recv().await {
        if ws.send(message).await.is_err() {
            break;
        }
    }
}

/// The request body back, with the request's `Content-Type`.
async fn echo(mut req: Request) -> Response {
    let content_type = req
        .header("content-type")
        .unwrap_or("application/octet-stream")
        .to_owned();
    Response::new(200)
        .header("Content-Type", content_type)
        .body(req.take_body())
}

/// N chunks `chunk {i}\n`, D ms apart, each sent once the one before reached the kernel.
async fn stream(req: Request, responder: Responder) {
    let chunks: u64 = req
        .query_arg("chunks")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let delay = Duration::from_millis(
        req.query_arg("delay_ms")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    );
    let mut body = responder.start(Response::new(200).header("Content-Type", "text/plain"));
    for i in 0..chunks {
        if i > 0 && !delay.is_zero() {
            ioloop::sleep(delay).await;
        }
        if body
            .write_all(format!("chunk {i}\n").as_bytes())
            .await
            .is_err()
        {
            return; // the client left
        }
    }
    body.finish();
}

/// Panics: the server answers 500 and goes on.
async fn panics(_req: Request) -> &'static str {
    panic!("GET /panic panics on purpose")
}

/// `slept {N}` after an async sleep of N ms.
async fn sleep(req: Request) -> Response {
    let ms: u64 = req
        .query_arg("ms")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    ioloop::sleep(Duration::from_millis(ms)).await;
    Response::text(format!("slept {ms}"))
}

/// The command line: `[PORT]`, or `--tls CERT.pem KEY.pem [PORT]`.
struct Args {
    port: u16,
    tls: Option<(String, String)>,
}

fn args() -> Result<Args, Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let tls = if args.first().is_some_and(|a| a == "--tls") {
        if args.len() < 3 {
            return Err("usage: web_app --tls CERT.pem KEY.pem [PORT]".into());
        }
        let mut taken = args.drain(..3).skip(1);
        Some((taken.next().unwrap(), taken.next().unwrap()))
    } else {
        None
    };
    let port = args.first().map_or(Ok(8080), |p| p.parse())?;
    Ok(Args { port, tls })
}

/// Makes `server` speak HTTPS (and wss://) with the certificate and key in PEM files.
#[cfg(feature = "tls")]
fn serve_tls(server: &ioloop::http::HttpServer, cert: &str, key: &str) -> std::io::Result<()> {
    let config = ioloop::tls::server_config_from_pem(cert, key)?;
    server.set_tls(ioloop::tls::TlsAcceptor::new(config));
    Ok(())
}

#[cfg(not(feature = "tls"))]
fn serve_tls(_: &ioloop::http::HttpServer, _: &str, _: &str) -> std::io::Result<()> {
    Err(std::io::Error::other(
        "built without TLS: cargo run --features tls --example web_app -- --tls CERT KEY",
    ))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let Args { port, tls } = args()?;
    let ioloop = IoLoop::new()?;
    let server = app().listen(&ioloop, port)?;
    let scheme = match &tls {
        Some((cert, key)) => {
            serve_tls(&server, cert, key)?;
            "https"
        }
        None => "http",
    };
    let mut handlers = Vec::new();
    for signal in [SIGINT, SIGTERM] {
        let server = server.clone();
        handlers.push(ioloop.add_signal_handler(signal, move |_| {
            println!("shutting down");
            server.shutdown_then(Duration::from_secs(4), |ioloop| ioloop.stop());
        })?);
    }
    // Said once the signals are handled: a script that signals on this line is safe.
    for addr in server.local_addrs() {
        println!("web_app listening on {scheme}://{addr}");
    }
    ioloop.start()?;
    for handler in handlers {
        ioloop.remove_signal_handler(handler);
    }
    println!("bye");
    Ok(())
}
