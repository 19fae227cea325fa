//! `RedisRoom` against a real `redis-server` (started by the test, no persistence) and
//! `redis-cli`. Two nodes, each a hub loop on its own thread with its own room (its own
//! origin id) and WebSocket server, stand for two processes
//! (tests/websocket/chat_web_scaling.rs and tests/websocket/chromium_chat.rs, with feature
//! `redis`, run two real ones). Says "skipped: redis-server not installed" unless
//! `IOLOOP_REQUIRE_CLIENTS=1`.

#![cfg(all(feature = "redis", feature = "websocket", unix))]

use crate::common;

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::redis::{available, free_port, wait_line, RedisServer};
use ioloop::redis::ConnectionEvent;
use ioloop::web::Application;
use ioloop::websocket::{
    websocket, websocket_connect, Message, RedisRoom, RedisRoomOptions, WebSocket,
};
use ioloop::{IoLoop, Remote};

const LIMIT: Duration = Duration::from_secs(30);

/// One "process": a loop with a RedisRoom on channel `chat` and a `/ws` route whose
/// members join it and say what they get.
struct Node {
    port: u16,
    remote: Remote,
    room: RedisRoom,
    /// Connection events of the room, as they happen.
    events: mpsc::Receiver<ConnectionEvent>,
    /// One line per member that joined.
    joined: mpsc::Receiver<()>,
}

impl Node {
    fn start(url: &str, options: RedisRoomOptions) -> Node {
        let url = url.to_owned();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let ioloop = IoLoop::new().unwrap();
            let room = RedisRoom::new(&ioloop, &url, "chat", options).unwrap();
            let (events_tx, events) = mpsc::channel();
            room.on_event(move |e| drop(events_tx.send(e.clone())));
            let (joined_tx, joined) = mpsc::channel();
            let members = room.clone();
            let route = websocket(move |ws, _req| {
                let (room, joined) = (members.clone(), joined_tx.clone());
                async move {
                    room.join(&ws);
                    let _ = joined.send(());
                    while let Some(Message::Text(text)) = ws.recv().await {
                        room.say(text);
                    }
                    room.leave(&ws);
                }
            });
            let server = Application::new()
                .route("/ws", route)
                .listen(&ioloop, 0)
                .unwrap();
            let port = server.local_addrs()[0].port();
            tx.send((port, ioloop.remote(), room, events, joined))
                .unwrap();
            ioloop.start().unwrap();
        });
        let (port, remote, room, events, joined) = rx.recv().unwrap();
        Node {
            port,
            remote,
            room,
            events,
            joined,
        }
    }

    /// Waits for the room to be connected (and subscribed); returns `reconnected`.
    fn connected(&self) -> bool {
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left).expect("the room connects") {
                ConnectionEvent::Connected { reconnected } => return reconnected,
                _ => continue,
            }
        }
    }

    fn lost(&self) {
        loop {
            if let ConnectionEvent::Lost(_) = self.events.recv_timeout(LIMIT).unwrap() {
                return;
            }
        }
    }

    /// Connects `n` members on `client` and waits until the room has them.
    fn members(&self, client: &IoLoop, n: usize) -> Vec<WebSocket> {
        let url = format!("ws://127.0.0.1:{}/ws", self.port);
        let members = client
            .run_sync_timeout(
                async move {
                    let mut members = Vec::new();
                    for _ in 0..n {
                        members.push(websocket_connect(&url).await.unwrap());
                    }
                    members
                },
                LIMIT,
            )
            .unwrap();
        for _ in 0..n {
            self.joined.recv_timeout(LIMIT).unwrap();
        }
        members
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.room.close();
        self.remote.stop();
    }
}

/// Reads on every member until each has seen `last`; returns what each saw, counted.
fn read_until(client: &IoLoop, members: &[WebSocket], last: &str) -> Vec<HashMap<String, usize>> {
    read_until_all(client, members, &[last])
}

/// Reads on every member until each has seen every one of `lasts`.
fn read_until_all(
    client: &IoLoop,
    members: &[WebSocket],
    lasts: &[&str],
) -> Vec<HashMap<String, usize>> {
    let members = members.to_vec();
    let lasts: Vec<String> = lasts.iter().map(|s| s.to_string()).collect();
    client
        .run_sync_timeout(
            async move {
                let mut all = Vec::new();
                for ws in &members {
                    let mut seen: HashMap<String, usize> = HashMap::new();
                    while !lasts.iter().all(|l| seen.contains_key(l)) {
                        match ws.recv().await {
                            Some(Message::Text(t)) => *seen.entry(t).or_default() += 1,
                            other => panic!("{other:?} before {lasts:?}"),
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

fn say(client: &IoLoop, ws: &WebSocket, text: &str) {
    let sent = ws.send(text.to_owned());
    client.run_sync_timeout(sent, LIMIT).unwrap().unwrap();
}

#[test]
fn members_of_two_processes_hear_each_other_once_and_redis_cli_joins_in() {
    if !available() {
        return;
    }
    let server = RedisServer::start(&[]);
    // redis-cli listens to what the room says.
    let (mut cli, cli_lines) = server.subscribe_cli("chat");
    wait_line(&cli_lines, LIMIT, |l| l.contains("subscribe")).expect("redis-cli subscribed");
    let a = Node::start(&server.url(), RedisRoomOptions::default());
    let b = Node::start(&server.url(), RedisRoomOptions::default());
    assert!(!a.connected());
    assert!(!b.connected());
    let client = IoLoop::new().unwrap();
    let on_a = a.members(&client, 2);
    let on_b = b.members(&client, 2);
    let everyone: Vec<WebSocket> = on_a.iter().chain(&on_b).cloned().collect();

    say(&client, &on_a[0], "hello from A");
    say(&client, &on_b[0], "hello from B");
    say(&client, &on_a[0], "end A");
    say(&client, &on_b[0], "end B");
    // Each connection's messages arrive in order, so once both ends are in, all is.
    let seen = read_until_all(&client, &everyone, &["end A", "end B"]);
    for (member, all) in seen.iter().enumerate() {
        for text in ["hello from A", "hello from B", "end A", "end B"] {
            assert_eq!(all.get(text), Some(&1), "member {member} saw {all:?}");
        }
    }
    // redis-cli saw each message once, in A's envelope.
    let line = wait_line(&cli_lines, LIMIT, |l| l.contains("hello from A")).unwrap();
    assert!(
        line.contains(&format!("ioloop/1 {} 1 t hello from A", a.room.origin())),
        "{line}"
    );
    // redis-cli publishes to the room: every member on both nodes gets it once.
    assert_eq!(
        server
            .cli_text(&["PUBSUB", "NUMSUB", "chat"])
            .lines()
            .last(),
        Some("3")
    );
    assert_eq!(server.cli_text(&["PUBLISH", "chat", "from redis-cli"]), "3");
    let seen = read_until(&client, &everyone, "from redis-cli");
    assert!(seen.iter().all(|s| s.get("from redis-cli") == Some(&1)));
    let (sa, sb) = (a.room.stats(), b.room.stats());
    assert_eq!(
        (sa.published, sa.received, sa.lost, sa.dropped),
        (2, 3, 0, 0),
        "{sa:?}"
    );
    assert_eq!(
        (sb.published, sb.received, sb.lost, sb.dropped),
        (2, 3, 0, 0),
        "{sb:?}"
    );
    let _ = cli.kill();
    let _ = cli.wait();
}

/// `RedisRoom::say` from several threads at once: the numbers in the envelopes reach the
/// channel in increasing order, so the other process takes none for a duplicate. (They
/// were taken before the queue's lock: a thread could queue its message after a larger
/// number another thread queued first, and the receiver dropped it; chat_web's
/// two-process test lost a message about one run in ten that way.)
#[test]
fn messages_said_from_many_threads_at_once_all_reach_the_other_process() {
    if !available() {
        return;
    }
    const THREADS: usize = 4;
    const EACH: usize = 5000;
    let server = RedisServer::start(&[]);
    let roomy = RedisRoomOptions {
        max_queued: THREADS * EACH + 1,
        max_queued_bytes: 64 << 20,
        ..RedisRoomOptions::default()
    };
    let a = Node::start(&server.url(), roomy.clone());
    let b = Node::start(&server.url(), roomy);
    assert!(!a.connected());
    assert!(!b.connected());
    let client = IoLoop::new().unwrap();
    let on_b = b.members(&client, 1);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let room = a.room.clone();
            s.spawn(move || {
                for i in 0..EACH {
                    room.say(format!("{t}-{i}"));
                }
            });
        }
    });
    // Said after every thread finished: queued, so published and received, last.
    a.room.say("end");
    let seen = read_until(&client, &on_b, "end").remove(0);
    let missing: Vec<String> = (0..THREADS)
        .flat_map(|t| (0..EACH).map(move |i| format!("{t}-{i}")))
        .filter(|m| seen.get(m) != Some(&1))
        .collect();
    assert!(
        missing.is_empty(),
        "{} missing or twice: {missing:?}",
        missing.len()
    );
    let stats = b.room.stats();
    assert_eq!(
        (stats.received, stats.lost),
        ((THREADS * EACH + 1) as u64, 0)
    );
    assert_eq!(a.room.stats().dropped, 0);
}

#[test]
fn a_room_started_without_redis_is_local_and_joins_redis_when_it_comes_up() {
    if !available() {
        return;
    }
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let a = Node::start(&url, RedisRoomOptions::default());
    let b = Node::start(&url, RedisRoomOptions::default());
    let client = IoLoop::new().unwrap();
    let on_a = a.members(&client, 2);
    let on_b = b.members(&client, 1);
    // Local delivery works with Redis away; the message for other processes waits.
    say(&client, &on_a[0], "local only");
    let seen = read_until(&client, &on_a, "local only");
    assert!(seen.iter().all(|s| s.len() == 1));
    assert_eq!(a.room.stats().connections, 0);

    let _server = RedisServer::start_on(port, &[]);
    a.connected();
    b.connected();
    say(&client, &on_a[0], "now shared");
    let seen = read_until(&client, &on_b, "now shared");
    // "local only" was published when A connected: B got it if it was subscribed by
    // then (a process that was never connected has no gap to count). Nothing is
    // delivered twice.
    let stats = b.room.stats();
    assert!(seen[0].values().all(|&n| n == 1), "{seen:?}");
    assert_eq!(seen[0].len() as u64, stats.received, "{stats:?}");
    let sa = a.room.stats();
    assert_eq!((sa.dropped, sa.failed), (0, 0), "{sa:?}");
}

#[test]
fn redis_killed_and_restarted_local_talk_goes_on_and_only_the_gap_is_lost() {
    if !available() {
        return;
    }
    let mut server = RedisServer::start(&[]);
    let a = Node::start(&server.url(), RedisRoomOptions::default());
    let b = Node::start(&server.url(), RedisRoomOptions::default());
    a.connected();
    b.connected();
    let client = IoLoop::new().unwrap();
    let on_a = a.members(&client, 2);
    let on_b = b.members(&client, 1);
    say(&client, &on_a[0], "before");
    read_until(&client, &on_b, "before");

    server.kill();
    a.lost();
    b.lost();
    // Local members keep their connections and keep talking.
    for i in 0..10 {
        say(&client, &on_a[1], &format!("during {i}"));
    }
    let seen = read_until(&client, &on_a, "during 9");
    assert!(seen
        .iter()
        .all(|s| (0..10).all(|i| s.get(&format!("during {i}")) == Some(&1))));
    assert!(on_a.iter().chain(&on_b).all(|ws| !ws.is_closed()));

    server.restart();
    let back = Instant::now();
    assert!(a.connected());
    assert!(b.connected());
    let took = back.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "resubscribed {took:?} after Redis came back"
    );
    say(&client, &on_a[0], "after");
    let seen = read_until(&client, &on_b, "after");
    // A said 12; B got each at most once, and counts every one it did not get.
    let stats = b.room.stats();
    assert!(seen[0].values().all(|&n| n == 1), "{seen:?}");
    assert_eq!(stats.received + stats.lost, 12, "{stats:?} {seen:?}");
    assert_eq!(stats.received, 1 + seen[0].len() as u64, "{stats:?}");
    let sent = a.room.stats();
    assert_eq!(sent.dropped, 0, "{sent:?}");
}

fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .unwrap()
        * 1024
}

#[test]
fn while_redis_is_paused_a_flood_is_dropped_and_counted_past_the_bounded_queue() {
    if !available() {
        return;
    }
    let server = RedisServer::start(&[]);
    let a = Node::start(&server.url(), RedisRoomOptions::default());
    let b = Node::start(&server.url(), RedisRoomOptions::default());
    a.connected();
    b.connected();
    let client = IoLoop::new().unwrap();
    let on_b = b.members(&client, 1);
    assert_eq!(server.cli_text(&["CLIENT", "PAUSE", "5000"]), "OK");
    let before = rss();
    let payload = "y".repeat(1024);
    let total = 64 * 1024; // 64 MiB said while Redis answers nothing
    for _ in 0..total {
        a.room.say(payload.as_str());
    }
    let grown = rss().saturating_sub(before);
    let stats = a.room.stats();
    let options = RedisRoomOptions::default();
    assert!(stats.queued <= options.max_queued as u64, "{stats:?}");
    assert!(
        stats.dropped >= total - (options.max_queued + options.max_in_flight) as u64,
        "{stats:?}"
    );
    assert!(grown < 24 << 20, "memory grew by {grown} bytes");
    let _ = server.cli(&["CLIENT", "UNPAUSE"]);
    // What A kept is published once Redis answers: B's member gets all of it, and B
    // counts the dropped ones as lost (their sequence numbers never arrive).
    let kept = total - stats.dropped;
    let ws = on_b[0].clone();
    let got = client
        .run_sync_timeout(
            async move {
                let mut got = 0;
                while got < kept {
                    match ws.recv().await {
                        Some(Message::Text(t)) => assert_eq!(t.len(), 1024),
                        other => panic!("{other:?} after {got}"),
                    }
                    got += 1;
                }
                got
            },
            LIMIT,
        )
        .unwrap();
    assert_eq!(got, kept);
    // A's queue is empty now: the marker goes out.
    a.room.say("after the pause");
    let seen = read_until(&client, &on_b, "after the pause");
    assert_eq!(seen[0].len(), 1);
    let stats_b = b.room.stats();
    assert_eq!(stats_b.received, kept + 1, "{stats_b:?}");
    assert_eq!(stats_b.received + stats_b.lost, total + 1, "{stats_b:?}");
}
