//! `examples/hello_web.rs`, the seed program: `GET /` answers `Hello, 异步世界!` after an
//! async 2-second sleep, and a thousand requests at once all finish in about 2 seconds.

#![cfg(all(feature = "web", target_os = "linux"))]

use crate::common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::example::Example;
use common::http::Client;

#[test]
fn get_root_answers_hello_in_utf8_after_two_seconds() {
    let app = Example::start("hello_web", &["0"]);
    let started = Instant::now();
    let reply = common::http::get(app.port, "/");
    let took = started.elapsed();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "Hello, 异步世界!");
    assert!(reply
        .header("content-type")
        .unwrap()
        .to_ascii_lowercase()
        .contains("utf-8"));
    assert!(took >= Duration::from_secs(2), "{took:?}");
}

#[test]
fn the_banner_names_the_url() {
    let app = Example::start("hello_web", &["0"]);
    assert_eq!(
        app.banner,
        format!("服务运行在 http://localhost:{}", app.port)
    );
}

#[test]
fn a_thousand_concurrent_requests_are_all_answered_in_about_two_seconds() {
    if !common::enough_fds(1100) {
        return;
    }
    let app = Example::start("hello_web", &["0"]);
    let started = Instant::now();
    let mut clients: Vec<Client> = (0..1000).map(|_| Client::connect(app.port)).collect();
    for client in &mut clients {
        client.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    }
    for client in &mut clients {
        let reply = client.read(false);
        assert_eq!(reply.text(), "Hello, 异步世界!");
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_millis(3500),
        "1000 concurrent requests took {took:?}"
    );
    let _ = std::io::stdout().flush();
}
