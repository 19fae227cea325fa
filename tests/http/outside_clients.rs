//! `examples/web_app.rs` against HTTP clients no one here wrote: curl (HTTP/1.0, `Expect:
//! 100-continue`, ranges, chunked uploads), wrk (keep-alive load) and h2load (pipelined
//! HTTP/1.1 load). Each test looks for its tool and says "skipped: X not installed" when
//! it is missing, unless `IOLOOP_REQUIRE_CLIENTS=1` (set by `.ci/run`), which makes a
//! missing tool a failure.

#![cfg(all(feature = "web", feature = "signals", target_os = "linux"))]

use crate::common;

use std::process::Command;

use common::example::Example;
use common::{has_tool, require_tool};

fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "curl {args:?}: {out:?}");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn curl_speaks_http_1_0_expect_ranges_and_chunked_uploads() {
    if !has_tool("curl", &["--version"]) {
        return require_tool("curl");
    }
    let app = Example::start("web_app", &["0"]);
    let base = format!("http://127.0.0.1:{}", app.port);

    let (out, _) = curl(&["-0", "-i", &format!("{base}/plaintext")]);
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.ends_with("Hello, World!"), "{out}");

    // A body over curl's Expect threshold (1 MiB) within the route's limit: curl waits
    // for 100 Continue.
    let body = "e".repeat(1 << 20);
    let file = std::env::temp_dir().join(format!("ioloop-curl-{}.txt", std::process::id()));
    std::fs::write(&file, &body).unwrap();
    let (out, err) = curl(&[
        "-v",
        "-H",
        "Expect: 100-continue",
        "-H",
        "Content-Type: text/x-curl",
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("{base}/echo"),
    ]);
    assert_eq!(out.len(), body.len());
    assert!(err.contains("HTTP/1.1 100 Continue"), "{err}");
    // Chunked upload.
    let (out, _) = curl(&[
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        "chunked from curl",
        &format!("{base}/echo"),
    ]);
    assert_eq!(out, "chunked from curl");
    std::fs::remove_file(&file).ok();

    let (out, _) = curl(&["-i", "-r", "0-9", &format!("{base}/static/blob.bin")]);
    assert!(out.starts_with("HTTP/1.1 206"), "{out}");
    assert!(out.contains("Content-Range: bytes 0-9/307200"), "{out}");
    let (out, _) = curl(&["-I", &format!("{base}/json")]);
    assert!(out.contains("Content-Length: 27"), "{out}");
}

#[test]
fn wrk_keep_alive_load_gets_no_errors() {
    if !has_tool("wrk", &["--version"]) {
        return require_tool("wrk");
    }
    let app = Example::start("web_app", &["0"]);
    let out = Command::new("wrk")
        .args([
            "-t1",
            "-c32",
            "-d1s",
            &format!("http://127.0.0.1:{}/plaintext", app.port),
        ])
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("Non-2xx"), "{text}");
    assert!(!text.contains("Socket errors"), "{text}");
    let requests: u64 = text
        .lines()
        .find_map(|l| {
            l.split_once(" requests in ")
                .map(|(n, _)| n.trim().parse().ok())
        })
        .flatten()
        .expect("a request count");
    assert!(requests > 1000, "{text}");
}

#[test]
fn h2load_pipelined_http1_load_gets_no_errors() {
    if !has_tool("h2load", &["--version"]) {
        return require_tool("h2load");
    }
    let app = Example::start("web_app", &["0"]);
    let out = Command::new("h2load")
        .args([
            "--h1",
            "-n",
            "20000",
            "-c",
            "16",
            "-m",
            "16",
            &format!("http://127.0.0.1:{}/plaintext", app.port),
        ])
        .output()
        .expect("h2load runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("20000 succeeded, 0 failed, 0 errored"),
        "{text}"
    );
    assert!(text.contains("status codes: 20000 2xx"), "{text}");
}
