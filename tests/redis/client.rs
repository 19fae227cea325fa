//! The Redis client (feature `redis`) against a real `redis-server`, started by the test
//! on a free port with no persistence, and `redis-cli` as the other side: commands as
//! futures and callbacks, pipelined in order, typed replies and errors, `AUTH` and
//! `SELECT` from the URL, RESP2 and RESP3, and pub/sub with reconnect and resubscribe.
//! Says "skipped: redis-server not installed" unless `IOLOOP_REQUIRE_CLIENTS=1`.

#![cfg(all(feature = "redis", unix))]

use crate::common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::redis::{available, free_port, RedisServer};
use ioloop::redis::{
    ConnectionEvent, RedisClient, RedisError, RedisOptions, Subscriber, SubscriberOptions, Value,
};
use ioloop::IoLoop;

const LIMIT: Duration = Duration::from_secs(20);

fn bulk(s: &str) -> Value {
    Value::Bulk(s.as_bytes().to_vec())
}

#[test]
fn connect_to_nothing_is_a_clear_error() {
    let ioloop = IoLoop::new().unwrap();
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let result = ioloop
        .run_sync_timeout(RedisClient::connect(&ioloop, &url), LIMIT)
        .unwrap();
    let error = result.unwrap_err();
    assert!(matches!(error, RedisError::Connect(_)), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains(&format!("127.0.0.1:{port}")) && text.contains("refused"),
        "{text}"
    );
    let bad = ioloop
        .run_sync_timeout(RedisClient::connect(&ioloop, "http://x"), LIMIT)
        .unwrap();
    assert!(matches!(bad, Err(RedisError::Url(_))));
}

#[test]
fn commands_are_futures_with_typed_replies_and_errors() {
    if !available() {
        return;
    }
    let server = RedisServer::start(&[]);
    let ioloop = IoLoop::new().unwrap();
    let handle = ioloop.clone();
    let url = server.url();
    ioloop
        .run_sync_timeout(
            async move {
                let redis = RedisClient::connect(&handle, &url).await.unwrap();
                assert!(redis.is_resp3(), "redis-server 6+ speaks RESP3");
                assert_eq!(
                    redis.cmd(["SET", "k", "v"]).await.unwrap(),
                    Value::Status("OK".into())
                );
                assert_eq!(redis.cmd(["GET", "k"]).await.unwrap(), bulk("v"));
                assert_eq!(redis.cmd(["GET", "missing"]).await.unwrap(), Value::Nil);
                assert_eq!(redis.cmd(["INCR", "n"]).await.unwrap(), Value::Int(1));
                redis.cmd(["HSET", "h", "f", "x"]).await.unwrap();
                assert_eq!(
                    redis.cmd(["HGETALL", "h"]).await.unwrap(),
                    Value::Map(vec![(bulk("f"), bulk("x"))])
                );
                let binary: &[u8] = b"\x00\r\n\xff";
                redis.cmd([b"SET" as &[u8], b"b", binary]).await.unwrap();
                assert_eq!(
                    redis.cmd(["GET", "b"]).await.unwrap(),
                    Value::Bulk(binary.to_vec())
                );
                // A Redis error reply is a typed error; the connection goes on.
                let error = redis.cmd(["INCR", "k"]).await.unwrap_err();
                assert!(matches!(error, RedisError::Server(_)), "{error:?}");
                assert_eq!(error.code(), Some("ERR"));
                let error = redis.cmd(["LPUSH", "k", "x"]).await.unwrap_err();
                assert_eq!(error.code(), Some("WRONGTYPE"));
                assert_eq!(
                    redis.cmd(["PING"]).await.unwrap(),
                    Value::Status("PONG".into())
                );
                // A closed connection fails what waits and what comes after.
                redis.close();
                assert!(matches!(
                    redis.cmd(["PING"]).await,
                    Err(RedisError::Closed(_))
                ));
            },
            LIMIT,
        )
        .unwrap();
    assert_eq!(
        server.cli_text(&["GET", "k"]),
        "v",
        "redis-cli sees what the client set"
    );
}

#[test]
fn pipelined_commands_are_answered_in_order_as_futures_and_callbacks() {
    if !available() {
        return;
    }
    let server = RedisServer::start(&[]);
    let ioloop = IoLoop::new().unwrap();
    let handle = ioloop.clone();
    let url = server.url();
    let order = ioloop
        .run_sync_timeout(
            async move {
                let redis = RedisClient::connect(&handle, &url).await.unwrap();
                // Sent before any reply is read: one connection, in order.
                let futures: Vec<_> = (0..2000).map(|_| redis.cmd(["INCR", "counter"])).collect();
                let order = Rc::new(RefCell::new(Vec::new()));
                for i in 0..500 {
                    let order = order.clone();
                    redis.cmd_then(["RPUSH", "list", &i.to_string()], move |reply| {
                        order
                            .borrow_mut()
                            .push((i, reply.unwrap().as_int().unwrap()));
                    });
                }
                assert!(redis.pending() > 0);
                for (i, future) in futures.into_iter().enumerate() {
                    assert_eq!(future.await.unwrap(), Value::Int(i as i64 + 1));
                }
                redis.cmd(["PING"]).await.unwrap();
                let order = order.borrow().clone();
                order
            },
            LIMIT,
        )
        .unwrap();
    assert_eq!(order.len(), 500);
    for (n, (i, len)) in order.iter().enumerate() {
        assert_eq!((*i, *len), (n, n as i64 + 1), "callbacks in order");
    }
    assert_eq!(server.cli_text(&["GET", "counter"]), "2000");
    assert_eq!(server.cli_text(&["LINDEX", "list", "499"]), "499");
}

#[test]
fn the_url_authenticates_and_selects_in_resp3_and_resp2() {
    if !available() {
        return;
    }
    let server = RedisServer::start(&["--requirepass", "s3cret"]);
    for resp3 in [true, false] {
        let ioloop = IoLoop::new().unwrap();
        let handle = ioloop.clone();
        let url: ioloop::redis::RedisUrl = format!("redis://:s3cret@127.0.0.1:{}/2", server.port)
            .parse()
            .unwrap();
        let options = RedisOptions {
            resp3,
            ..Default::default()
        };
        ioloop
            .run_sync_timeout(
                async move {
                    let redis = RedisClient::connect_with(&handle, &url, options)
                        .await
                        .unwrap();
                    assert_eq!(redis.is_resp3(), resp3);
                    redis
                        .cmd(["SET", "where", if resp3 { "3" } else { "2" }])
                        .await
                        .unwrap();
                    // RESP2's null bulk inside an array, and RESP3's null.
                    assert_eq!(
                        redis
                            .cmd(["MGET", "where", "nothing"])
                            .await
                            .unwrap()
                            .as_array()
                            .unwrap()[1],
                        Value::Nil
                    );
                },
                LIMIT,
            )
            .unwrap();
        let got = server.cli_text(&[
            "-a",
            "s3cret",
            "--no-auth-warning",
            "-n",
            "2",
            "GET",
            "where",
        ]);
        assert_eq!(got, if resp3 { "3" } else { "2" });
    }
    // A wrong password is the server's error, from connect.
    let ioloop = IoLoop::new().unwrap();
    let url = format!("redis://:wrong@127.0.0.1:{}", server.port);
    let error = ioloop
        .run_sync_timeout(RedisClient::connect(&ioloop, &url), LIMIT)
        .unwrap()
        .unwrap_err();
    assert!(matches!(error, RedisError::Server(_)), "{error:?}");
    assert!(error.to_string().contains("WRONGPASS"), "{error}");
}

#[test]
fn pub_sub_delivers_what_redis_cli_publishes_to_a_callback_and_a_stream() {
    if !available() {
        return;
    }
    let server = RedisServer::start(&[]);
    let ioloop = IoLoop::new().unwrap();
    let handle = ioloop.clone();
    let url = server.url();
    let port = server.port;
    let got = ioloop
        .run_sync_timeout(
            async move {
                let sub = Subscriber::connect(&handle, &url).await.unwrap();
                let seen = Rc::new(RefCell::new(Vec::new()));
                let log = seen.clone();
                sub.on_message(move |m| log.borrow_mut().push(m.clone()));
                let mut stream = sub.messages();
                sub.subscribe("news").await.unwrap();
                sub.psubscribe("room:*").await.unwrap();
                // redis-cli publishes, from another process.
                let publish = |channel: &str, text: &str| {
                    let out = std::process::Command::new("redis-cli")
                        .args(["-p", &port.to_string(), "PUBLISH", channel, text])
                        .output()
                        .unwrap();
                    String::from_utf8_lossy(&out.stdout).trim().to_owned()
                };
                assert_eq!(publish("news", "hello 世界"), "1");
                assert_eq!(publish("room:7", "in the room"), "1");
                let first = stream.recv().await.unwrap();
                assert_eq!(
                    (&first.channel[..], &first.payload[..]),
                    (&b"news"[..], "hello 世界".as_bytes())
                );
                assert_eq!(first.pattern, None);
                let second = stream.recv().await.unwrap();
                assert_eq!(second.pattern.as_deref(), Some(&b"room:*"[..]));
                assert_eq!(second.channel, b"room:7");
                // Unsubscribed: nothing more from that channel; publishing on the same
                // connection works while subscribed (RESP3).
                sub.unsubscribe("news");
                sub.cmd(["PING"]).await.unwrap();
                assert_eq!(publish("news", "unheard"), "0");
                sub.publish("room:8", "from ioloop").await.unwrap();
                let third = stream.recv().await.unwrap();
                assert_eq!(third.payload, b"from ioloop");
                let got = seen.borrow().clone();
                got
            },
            LIMIT,
        )
        .unwrap();
    let payloads: Vec<_> = got
        .iter()
        .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
        .collect();
    assert_eq!(payloads, ["hello 世界", "in the room", "from ioloop"]);
}

#[test]
fn a_subscriber_resubscribes_within_a_second_of_redis_coming_back_after_sigkill() {
    if !available() {
        return;
    }
    let mut server = RedisServer::start(&[]);
    let ioloop = IoLoop::new().unwrap();
    let url = server.url().parse().unwrap();
    let sub = Subscriber::new(&ioloop, url, SubscriberOptions::default());
    let (events_tx, events) = async_channel::unbounded();
    sub.on_event(move |e| drop(events_tx.try_send(e.clone())));
    let mut stream = sub.messages();
    let first = sub.subscribe("alerts");
    ioloop.run_sync_timeout(first, LIMIT).unwrap().unwrap();
    let next_event = |ioloop: &IoLoop| {
        let events = events.clone();
        let event = ioloop.run_sync_timeout(async move { events.recv().await }, LIMIT);
        event.unwrap().unwrap()
    };
    assert!(matches!(
        next_event(&ioloop),
        ConnectionEvent::Connected { reconnected: false }
    ));

    server.kill();
    // The loss is seen at once (the kernel closes the dead server's sockets); attempts
    // fail while it is down.
    assert!(matches!(next_event(&ioloop), ConnectionEvent::Lost(_)));
    assert!(!sub.is_connected());
    server.restart();
    let back = Instant::now();
    loop {
        match next_event(&ioloop) {
            ConnectionEvent::Connected { reconnected } => {
                assert!(reconnected);
                break;
            }
            ConnectionEvent::Lost(e) => assert!(matches!(e, RedisError::Connect(_)), "{e:?}"),
            _ => {}
        }
    }
    let took = back.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "resubscribed {took:?} after Redis came back"
    );
    // Resubscribed: the SUBSCRIBE went out right after the handshake, so the server has
    // done it once it answers a PING sent after it on the same connection.
    ioloop
        .run_sync_timeout(sub.cmd(["PING"]), LIMIT)
        .unwrap()
        .unwrap();
    let numsub = server.cli_text(&["PUBSUB", "NUMSUB", "alerts"]);
    assert!(numsub.ends_with('1'), "{numsub}");
    assert_eq!(server.cli_text(&["PUBLISH", "alerts", "back"]), "1");
    let message = ioloop
        .run_sync_timeout(async move { stream.recv().await }, LIMIT)
        .unwrap();
    assert_eq!(message.unwrap().payload, b"back");
}

/// `rediss://`: TLS to a redis-server with a certificate from a test CA (Debian's
/// redis-server is built with TLS), verified by name; a client that does not trust the CA
/// fails to connect.
#[cfg(feature = "tls")]
#[test]
fn rediss_speaks_tls_and_verifies_the_server() {
    if !available() {
        return;
    }
    let pki = common::tls::TestPki::new();
    let files = pki.files("redis");
    let port = free_port();
    let (cert, key, ca) = (
        files.cert.to_str().unwrap().to_owned(),
        files.key.to_str().unwrap().to_owned(),
        files.ca.to_str().unwrap().to_owned(),
    );
    let port_arg = port.to_string();
    let _server = RedisServer::start(&[
        "--port",
        "0",
        "--tls-port",
        &port_arg,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
        "--tls-auth-clients",
        "no",
    ]);
    let url: ioloop::redis::RedisUrl = format!("rediss://localhost:{port}").parse().unwrap();
    let ioloop = IoLoop::new().unwrap();
    let options = RedisOptions {
        tls: Some(pki.client_config()),
        ..Default::default()
    };
    let redis = ioloop
        .run_sync_timeout(RedisClient::connect_with(&ioloop, &url, options), LIMIT)
        .unwrap()
        .unwrap();
    let reply = ioloop
        .run_sync_timeout(redis.cmd(["ECHO", "over tls"]), LIMIT)
        .unwrap();
    assert_eq!(reply.unwrap(), bulk("over tls"));
    // The Web PKI does not know the test CA.
    let refused = ioloop
        .run_sync_timeout(
            RedisClient::connect_with(&ioloop, &url, RedisOptions::default()),
            LIMIT,
        )
        .unwrap();
    assert!(
        matches!(refused, Err(RedisError::Connect(_))),
        "{refused:?}"
    );
}
