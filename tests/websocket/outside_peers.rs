//! The WebSocket examples against peers no one here wrote: the Python `websockets`
//! library (client and server) and Node's `ws` package. Each test looks for its peer and
//! says "skipped: X not installed" when it is missing, unless `IOLOOP_REQUIRE_CLIENTS=1`
//! (set by `.ci/run`), which makes a missing peer a failure.

#![cfg(all(feature = "websocket", feature = "signals", target_os = "linux"))]

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use common::example::Example;
use common::require_tool;
use ioloop::websocket::{websocket_connect, Message};
use ioloop::IoLoop;

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

/// Whether `program args` runs and succeeds (a module that imports, say).
fn succeeds(program: &str, args: &[&str], node_path: bool) -> bool {
    let mut command = Command::new(program);
    command
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if node_path {
        command.env("NODE_PATH", global_node_modules());
    }
    command.status().is_ok_and(|s| s.success())
}

fn has_python_websockets() -> bool {
    succeeds("python3", &["-c", "import websockets.sync.client"], false)
}

/// Where `npm install -g` puts packages (`require` does not look there by itself).
fn global_node_modules() -> String {
    Command::new("npm")
        .args(["root", "-g"])
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn python_peer(args: &[&str]) -> Output {
    Command::new("python3")
        .arg(script("ws_peer.py"))
        .args(args)
        .output()
        .expect("python3 runs")
}

fn stdout_of(out: &Output) -> String {
    assert!(out.status.success(), "peer failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn python_websockets_echoes_through_web_app() {
    if !has_python_websockets() {
        return require_tool("python3 websockets");
    }
    let app = Example::start("web_app", &["0"]);
    let url = format!("ws://127.0.0.1:{}/ws/echo", app.port);
    assert_eq!(stdout_of(&python_peer(&["echo", &url])), "ok");
}

#[test]
fn cross_origin_handshakes_get_403_and_the_own_origin_101() {
    if !has_python_websockets() {
        return require_tool("python3 websockets");
    }
    for (example, path) in [("web_app", "/ws/echo"), ("chat_web", "/ws")] {
        let app = Example::start(example, &["0"]);
        let url = format!("ws://127.0.0.1:{}{path}", app.port);
        let own = format!("http://127.0.0.1:{}", app.port);
        for (origin, status) in [
            ("http://evil.example", "403"),
            ("null", "403"),
            ("http://127.0.0.1:1", "403"),
            (own.as_str(), "101"),
        ] {
            let out = python_peer(&["origin", &url, origin]);
            assert_eq!(stdout_of(&out), status, "{example} with Origin {origin}");
        }
    }
}

#[test]
fn chat_web_relays_every_message_to_every_member_verbatim() {
    if !has_python_websockets() {
        return require_tool("python3 websockets");
    }
    let app = Example::start("chat_web", &["0"]);
    let url = format!("ws://127.0.0.1:{}/ws", app.port);
    assert_eq!(stdout_of(&python_peer(&["chat", &url])), "ok");
}

#[test]
fn chat_web_closes_every_member_with_1001_on_sigint() {
    if !has_python_websockets() {
        return require_tool("python3 websockets");
    }
    let app = Example::start("chat_web", &["0"]);
    let url = format!("ws://127.0.0.1:{}/ws", app.port);
    let mut members: Vec<_> = (0..3)
        .map(|_| {
            let mut child = Command::new("python3")
                .arg(script("ws_peer.py"))
                .args(["wait_close", &url])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            assert_eq!(lines.next().unwrap().unwrap(), "connected");
            (child, lines)
        })
        .collect();
    let status = app.signal_and_wait(rustix::process::Signal::INT);
    assert!(status.success(), "{status:?}");
    for (child, lines) in &mut members {
        assert_eq!(lines.next().unwrap().unwrap(), "closed 1001");
        assert!(child.wait().unwrap().success());
    }
}

#[test]
fn node_ws_echoes_through_web_app() {
    if !succeeds("node", &["-e", "require('ws')"], true) {
        return require_tool("node with the ws package (npm install -g ws)");
    }
    let app = Example::start("web_app", &["0"]);
    let url = format!("ws://127.0.0.1:{}/ws/echo", app.port);
    let out = Command::new("node")
        .arg(script("ws_peer.js"))
        .args(["echo", &url])
        .env("NODE_PATH", global_node_modules())
        .output()
        .unwrap();
    assert_eq!(stdout_of(&out), "ok");
}

#[test]
fn the_client_talks_to_a_python_websockets_server() {
    if !has_python_websockets() {
        return require_tool("python3 websockets");
    }
    let mut server = Command::new("python3")
        .arg(script("ws_peer.py"))
        .arg("serve")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let banner = lines.next().unwrap().unwrap();
    let port = banner.rsplit(' ').next().unwrap().to_owned();
    let url = format!("ws://127.0.0.1:{port}/");
    let ioloop = IoLoop::new().unwrap();
    let result = ioloop.run_sync(async move {
        let ws = websocket_connect(&url).await.expect("connected");
        let mut echoed = Vec::new();
        for message in [
            Message::from("Hello, 异步世界!"),
            Message::from(vec![0u8, 1, 2, 255]),
            Message::from("y".repeat(1 << 20)),
        ] {
            ws.send(message.clone()).await.expect("sent");
            echoed.push(ws.recv().await == Some(message));
        }
        ws.close(1000, "done");
        // The server answers the close and ends TCP.
        ws.closed().await;
        echoed.push(ws.close_code() == Some(1000));
        echoed
    });
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(result.unwrap(), vec![true; 4]);
}
