//! `examples/chat_web` scaled out, run as a user would: `--threads 2` (one room across
//! the loops of a process) and two processes with `--redis URL` on two ports (one room
//! through a real `redis-server`, started by the test). WebSocket clients on every
//! thread and process see every message once.

#![cfg(all(feature = "websocket", feature = "signals", target_os = "linux"))]

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use common::example::Example;
use ioloop::websocket::{websocket_connect, Message, WebSocket};
use ioloop::IoLoop;

const LIMIT: Duration = Duration::from_secs(30);

/// Connects to each of `ports` (`per_port` members each), waits until a first message
/// from each has gone round (so everyone is in the room), then has every member say
/// `m<i>` and `end<i>`, and returns what each member saw, counted.
fn chat(ports: &[u16], per_port: usize) -> Vec<HashMap<String, usize>> {
    let client = IoLoop::new().unwrap();
    let urls: Vec<String> = ports
        .iter()
        .flat_map(|p| std::iter::repeat_n(format!("ws://127.0.0.1:{p}/ws"), per_port))
        .collect();
    client
        .run_sync_timeout(
            async move {
                let mut members: Vec<WebSocket> = Vec::new();
                for url in &urls {
                    let ws = websocket_connect(url).await.unwrap();
                    members.push(ws);
                }
                // Membership: each member says "hi i" until every member has heard all
                // of them (the server joins a member just after its handshake, so one
                // that is not in yet misses some: then everyone says hi again).
                let n = members.len();
                for (i, ws) in members.iter().enumerate() {
                    ws.send(format!("hi{i}")).await.unwrap();
                }
                let mut heard: Vec<Vec<bool>> = vec![vec![false; n]; n];
                for (me, ws) in members.iter().enumerate() {
                    while heard[me].iter().any(|h| !h) {
                        let next = ioloop::time::timeout(Duration::from_millis(500), ws.recv());
                        let Ok(next) = next.await else {
                            for (i, ws) in members.iter().enumerate() {
                                ws.send(format!("hi{i}")).await.unwrap();
                            }
                            continue;
                        };
                        match next {
                            Some(Message::Text(t)) => {
                                if let Some(i) =
                                    t.strip_prefix("hi").and_then(|i| i.parse::<usize>().ok())
                                {
                                    heard[me][i] = true;
                                }
                            }
                            other => panic!("{other:?}"),
                        }
                    }
                }
                for (i, ws) in members.iter().enumerate() {
                    ws.send(format!("m{i}")).await.unwrap();
                    ws.send(format!("end{i}")).await.unwrap();
                }
                let mut all = Vec::new();
                for ws in &members {
                    let mut seen: HashMap<String, usize> = HashMap::new();
                    while (0..n).any(|i| !seen.contains_key(&format!("end{i}"))) {
                        match ws.recv().await {
                            Some(Message::Text(t)) if t.starts_with("hi") => {}
                            Some(Message::Text(t)) => *seen.entry(t).or_default() += 1,
                            other => panic!("{other:?}"),
                        }
                    }
                    all.push(seen);
                }
                all
            },
            LIMIT,
        )
        .unwrap()
}

fn assert_each_once(seen: &[HashMap<String, usize>]) {
    let n = seen.len();
    for (member, counts) in seen.iter().enumerate() {
        for i in 0..n {
            assert_eq!(
                counts.get(&format!("m{i}")),
                Some(&1),
                "member {member}: {counts:?}"
            );
        }
        assert!(
            counts.values().all(|&c| c == 1),
            "member {member}: {counts:?}"
        );
    }
}

#[test]
fn chat_web_with_two_threads_is_one_room() {
    let app = Example::start("chat_web", &["0", "--threads", "2"]);
    let seen = chat(&[app.port], 8);
    assert_each_once(&seen);
    let status = app.signal_and_wait(rustix::process::Signal::TERM);
    assert!(status.success(), "{status:?}");
}

#[cfg(feature = "redis")]
#[test]
fn two_chat_web_processes_share_a_room_through_redis() {
    use common::redis::{available, RedisServer};
    if !available() {
        return;
    }
    let server = RedisServer::start(&[]);
    let url = server.url();
    let one = Example::start("chat_web", &["0", "--redis", &url]);
    let two = Example::start("chat_web", &["0", "--redis", &url, "--threads", "2"]);
    let seen = chat(&[one.port, two.port], 3);
    assert_each_once(&seen);
    for app in [one, two] {
        let status = app.signal_and_wait(rustix::process::Signal::TERM);
        assert!(status.success(), "{status:?}");
    }
}
