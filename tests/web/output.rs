//! The output transforms of `Application`: gzip (`compress_response`) and the automatic
//! ETag (`compute_etag`), checked on the wire by Python's `http.client` (which leaves
//! the body compressed, so the test decodes it itself) and curl `--compressed`.

#![cfg(all(feature = "web", target_os = "linux"))]

use crate::common;

use std::cell::RefCell;
use std::process::Command;
use std::rc::Rc;

use common::{has_tool, require_tool, with_client};
use ioloop::http::{Request, Responder, Response};
use ioloop::web::{get, Application, StaticFiles};

fn big() -> String {
    "Tornado-style reactor. ".repeat(200)
}

/// The application under test, with a `/stream` route whose second piece waits for a
/// request to `/go`.
fn app(dir: &std::path::Path) -> Application {
    let release: Rc<RefCell<Option<futures_channel::oneshot::Sender<()>>>> = Rc::default();
    let go = release.clone();
    Application::new()
        .compress_response(true)
        .compute_etag(true)
        .route(
            "/big",
            get(|_req| async { big() }).post(|_req| async { big() }),
        )
        .route("/small", get(|_req| async { "tiny" }))
        .route(
            "/png",
            get(|_req| async {
                Response::new(200)
                    .header("Content-Type", "image/png")
                    .body(vec![7u8; 4096])
            }),
        )
        .route(
            "/encoded",
            get(|_req| async { Response::text(big()).header("Content-Encoding", "br") }),
        )
        .route("/fresh", get(|_req| async { big() }).no_etag())
        .route("/created", get(|_req| async { (201, big()) }))
        .route(
            "/stream",
            get(move |_req: Request, responder: Responder| {
                let release = release.clone();
                async move {
                    let (tx, rx) = futures_channel::oneshot::channel();
                    *release.borrow_mut() = Some(tx);
                    let mut body =
                        responder.start(Response::new(200).header("Content-Type", "text/plain"));
                    body.write_all(b"first piece\n").await.unwrap();
                    let _ = rx.await;
                    body.write_all(b"second piece\n").await.unwrap();
                    body.finish();
                }
            }),
        )
        .route(
            "/go",
            get(move |_req| {
                let sender = go.borrow_mut().take();
                async move {
                    sender.map(|tx| tx.send(()));
                    "released"
                }
            }),
        )
        .route("/static/{*path}", get(StaticFiles::new(dir)))
}

fn run_python(case: &str) {
    if !has_tool("python3", &["--version"]) {
        return require_tool("python3");
    }
    let dir = std::env::temp_dir().join(format!("ioloop-output-{case}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("style.css"), "body { color: red; }\n".repeat(100)).unwrap();
    std::fs::write(dir.join("large.css"), "p { margin: 0; }\n".repeat(8000)).unwrap();
    let ioloop = ioloop::IoLoop::new().unwrap();
    let (_server, addr) = app(&dir).bind(&ioloop, "127.0.0.1:0").unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/web_output.py");
    let case = case.to_owned();
    let out = with_client(&ioloop, addr, move |addr| {
        Command::new("python3")
            .args([script, &addr.port().to_string(), &case])
            .output()
            .unwrap()
    });
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        out.status.success() && out.stdout == b"ok\n",
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn gzip_is_negotiated_for_compressible_bodies_above_the_threshold() {
    run_python("gzip");
}

#[test]
fn a_streamed_body_arrives_compressed_piece_by_piece() {
    run_python("stream");
}

#[test]
fn the_etag_is_the_sha1_of_the_body_and_if_none_match_gets_304() {
    run_python("etag");
}

#[test]
fn curl_compressed_reads_the_gzipped_body() {
    if !has_tool("curl", &["--version"]) {
        return require_tool("curl");
    }
    let dir = std::env::temp_dir().join(format!("ioloop-output-curl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ioloop = ioloop::IoLoop::new().unwrap();
    let (_server, addr) = app(&dir).bind(&ioloop, "127.0.0.1:0").unwrap();
    let out = with_client(&ioloop, addr, move |addr| {
        Command::new("curl")
            .args(["-s", "-D", "-", "--compressed", "--max-time", "20"])
            .arg(format!("http://{addr}/big"))
            .output()
            .unwrap()
    });
    std::fs::remove_dir_all(&dir).ok();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.to_ascii_lowercase().contains("content-encoding: gzip"),
        "{text}"
    );
    assert!(text.ends_with(&big()), "{text}");
}
