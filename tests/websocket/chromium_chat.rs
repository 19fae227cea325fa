//! `examples/chat_web` in a real browser: two headless Chromium pages (Debian's
//! `chromium`), driven through the DevTools protocol by `tests/clients/chromium_chat.py`;
//! a message typed in one page appears in both. Says "skipped: chromium not installed"
//! when the browser (or Python's `websockets`, which speaks the protocol) is missing,
//! unless `IOLOOP_REQUIRE_CLIENTS=1`. With feature `redis`, the same across two processes
//! that share the room through a real `redis-server`.

#![cfg(all(feature = "websocket", feature = "signals", target_os = "linux"))]

use crate::common;

use std::process::Command;

use common::example::Example;
use common::{chromium, require_tool};

#[test]
fn a_message_typed_in_one_page_appears_in_the_other() {
    let Some(browser) = chromium() else {
        return require_tool("chromium");
    };
    let python_ok = Command::new("python3")
        .args(["-c", "import websockets.sync.client"])
        .status()
        .is_ok_and(|s| s.success());
    if !python_ok {
        return require_tool("python3 websockets");
    }
    let app = Example::start("chat_web", &["0"]);
    let url = format!("http://127.0.0.1:{}/", app.port);
    common::python_client_ok("chromium_chat.py", &[browser, &url]);
}

/// Two `chat_web` processes on two ports sharing one room through a real `redis-server`
/// (started by the test): a browser page on each; what page one types appears in page
/// two.
#[cfg(feature = "redis")]
#[test]
fn two_processes_through_redis_a_message_typed_on_one_appears_on_the_other() {
    let Some(browser) = chromium() else {
        return require_tool("chromium");
    };
    if !common::redis::available() {
        return;
    }
    let python_ok = Command::new("python3")
        .args(["-c", "import websockets.sync.client"])
        .status()
        .is_ok_and(|s| s.success());
    if !python_ok {
        return require_tool("python3 websockets");
    }
    let server = common::redis::RedisServer::start(&[]);
    let url = server.url();
    let one = Example::start("chat_web", &["0", "--redis", &url]);
    let two = Example::start("chat_web", &["0", "--redis", &url, "--threads", "2"]);
    let urls = [one.port, two.port].map(|p| format!("http://127.0.0.1:{p}/"));
    common::python_client_ok("chromium_chat.py", &[browser, &urls[0], &urls[1]]);
}
