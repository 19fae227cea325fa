//! The Redis client against fake servers that break the protocol (feature `redis`):
//! malformed RESP, a bulk string over the configured limit (and over the 512 MiB
//! default), a reply that never ends, and a server that answers nothing at all. Each is
//! a typed error, with no panic and a bounded buffer. Timeouts run on a `ManualClock`.

#![cfg(all(feature = "redis", unix))]

use crate::common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use ioloop::redis::{ProtocolError, RedisClient, RedisError, RedisOptions, RedisUrl};
use ioloop::IoLoop;

const LIMIT: Duration = Duration::from_secs(20);

/// A server on a thread: accepts one connection, reads until it has `wait_for` bytes (a
/// command, or the handshake), tells the test, writes `answer`, and holds the connection
/// open until the test is done with it.
struct Fake {
    port: u16,
    got: mpsc::Receiver<Vec<u8>>,
    done: mpsc::Sender<()>,
}

fn fake(wait_for: usize, answer: Vec<u8>) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (got_tx, got) = mpsc::channel();
    let (done, done_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut received = Vec::new();
        let mut buf = [0u8; 4096];
        while received.len() < wait_for {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
        let _ = got_tx.send(received);
        let _ = conn.write_all(&answer);
        let _ = done_rx.recv_timeout(LIMIT);
        drop(conn);
    });
    Fake { port, got, done }
}

fn url(port: u16) -> RedisUrl {
    format!("redis://127.0.0.1:{port}").parse().unwrap()
}

/// RESP2 without a password or a database: the client sends nothing until a command.
fn plain(options: RedisOptions) -> RedisOptions {
    RedisOptions {
        resp3: false,
        ..options
    }
}

fn ping_len() -> usize {
    b"*1\r\n$4\r\nPING\r\n".len()
}

/// Connects to `fake`, sends PING, and returns the client and the reply.
fn ping(
    fake: &Fake,
    options: RedisOptions,
) -> (RedisClient, Result<ioloop::redis::Value, RedisError>) {
    let ioloop = IoLoop::new().unwrap();
    let redis = ioloop
        .run_sync_timeout(
            RedisClient::connect_with(&ioloop, &url(fake.port), plain(options)),
            LIMIT,
        )
        .unwrap()
        .unwrap();
    let reply = ioloop.run_sync_timeout(redis.cmd(["PING"]), LIMIT).unwrap();
    (redis, reply)
}

#[test]
fn malformed_resp_is_a_protocol_error_that_closes_the_connection() {
    for (answer, expected) in [
        (&b"!@#garbage\r\n"[..], None),
        (b"?what\r\n", Some(ProtocolError::BadType(b'?'))),
        (b"$abc\r\n", Some(ProtocolError::BadLength)),
        (b"$2\r\nabcd\r\n", Some(ProtocolError::MissingCrlf)),
        (b":not-a-number\r\n", None),
    ] {
        let server = fake(ping_len(), answer.to_vec());
        let (redis, reply) = ping(&server, RedisOptions::default());
        match (reply, &expected) {
            (Err(RedisError::Protocol(e)), Some(want)) => assert_eq!(&e, want),
            (Err(RedisError::Protocol(_)), None) => {}
            (other, _) => panic!("{:?} answered {other:?}", String::from_utf8_lossy(answer)),
        }
        assert!(redis.is_closed());
        let _ = server.done.send(());
    }
}

#[test]
fn a_bulk_string_over_the_limit_fails_at_its_header() {
    // Only the header and a little of the body are sent: the client must not wait for
    // (or buffer) the rest.
    let mut answer = b"$5000\r\n".to_vec();
    answer.extend_from_slice(&[b'x'; 100]);
    let server = fake(ping_len(), answer);
    let options = RedisOptions {
        max_bulk_len: 1024,
        ..Default::default()
    };
    let (redis, reply) = ping(&server, options);
    match reply {
        Err(RedisError::Protocol(ProtocolError::BulkTooLong {
            len: 5000,
            max: 1024,
        })) => {}
        other => panic!("{other:?}"),
    }
    assert!(redis.is_closed());
    let _ = server.done.send(());

    // The default is Redis's own proto-max-bulk-len, 512 MiB.
    let server = fake(
        ping_len(),
        format!("${}\r\n", (512u64 << 20) + 1).into_bytes(),
    );
    let (_, reply) = ping(&server, RedisOptions::default());
    match reply {
        Err(RedisError::Protocol(ProtocolError::BulkTooLong { max, .. })) => {
            assert_eq!(max, 512 << 20)
        }
        other => panic!("{other:?}"),
    }
    let _ = server.done.send(());
}

#[test]
fn a_reply_that_never_ends_stops_at_the_reply_buffer_limit() {
    let mut answer = b"+".to_vec();
    answer.extend(std::iter::repeat_n(b'a', 4 << 20));
    let server = fake(ping_len(), answer);
    let options = RedisOptions {
        max_reply_buffer: 256 << 10,
        ..Default::default()
    };
    let (redis, reply) = ping(&server, options);
    assert!(matches!(reply, Err(RedisError::Protocol(_))), "{reply:?}");
    assert!(redis.is_closed());
    assert!(
        redis.read_buffered() <= 256 << 10,
        "{}",
        redis.read_buffered()
    );
    let _ = server.done.send(());
}

/// Steps the loop (each step waits for I/O, at most 50 ms; 20 s in all against a hang)
/// until `server` has what it waits for.
fn step_until_received(ioloop: &IoLoop, server: &Fake) -> Vec<u8> {
    for _ in 0..400 {
        ioloop.run_once(Duration::from_millis(50)).unwrap();
        if let Ok(got) = server.got.try_recv() {
            return got;
        }
    }
    panic!("the fake server never got the bytes");
}

#[test]
fn a_server_that_answers_nothing_times_out_on_the_loop_clock() {
    let (ioloop, clock) = common::manual_loop();
    // The connection: nothing answers the handshake (HELLO 3).
    let server = fake(1, Vec::new());
    let options = RedisOptions {
        connect_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let connect = ioloop.spawn(RedisClient::connect_with(
        &ioloop,
        &url(server.port),
        options,
    ));
    // Step the loop (no wall-clock wait) until the HELLO has reached the server.
    let hello = step_until_received(&ioloop, &server);
    assert!(
        hello.starts_with(b"*2\r\n$5\r\nHELLO\r\n"),
        "{:?}",
        String::from_utf8_lossy(&hello)
    );
    assert!(!connect.is_finished());
    clock.advance(Duration::from_secs(5));
    let result = ioloop.run_sync(connect).unwrap().unwrap();
    assert!(matches!(result, Err(RedisError::Timeout)), "{result:?}");
    let _ = server.done.send(());

    // A command: every command waiting fails with Timeout when the oldest is due.
    let server = fake(2 * ping_len(), Vec::new());
    let options = plain(RedisOptions {
        command_timeout: Some(Duration::from_secs(2)),
        ..Default::default()
    });
    let redis = ioloop
        .run_sync(RedisClient::connect_with(
            &ioloop,
            &url(server.port),
            options,
        ))
        .unwrap()
        .unwrap();
    let first = ioloop.spawn(redis.cmd(["PING"]));
    clock.advance(Duration::from_secs(1));
    let second = ioloop.spawn(redis.cmd(["PING"]));
    step_until_received(&ioloop, &server);
    clock.advance(Duration::from_millis(999));
    ioloop.run_once(Duration::ZERO).unwrap();
    assert!(!first.is_finished(), "not due yet");
    clock.advance(Duration::from_millis(1));
    let first = ioloop.run_sync(first).unwrap().unwrap();
    assert!(matches!(first, Err(RedisError::Timeout)), "{first:?}");
    let second = ioloop.run_sync(second).unwrap().unwrap();
    assert!(matches!(second, Err(RedisError::Timeout)), "{second:?}");
    assert!(redis.is_closed());
    let _ = server.done.send(());
}

#[test]
fn a_closed_connection_fails_waiting_commands_with_closed() {
    // The server reads the command and hangs up.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut conn, _): (TcpStream, _) = listener.accept().unwrap();
        let mut buf = [0u8; 64];
        let _ = conn.read(&mut buf);
    });
    let ioloop = IoLoop::new().unwrap();
    let redis = ioloop
        .run_sync_timeout(
            RedisClient::connect_with(&ioloop, &url(port), plain(RedisOptions::default())),
            LIMIT,
        )
        .unwrap()
        .unwrap();
    let reply = ioloop.run_sync_timeout(redis.cmd(["PING"]), LIMIT).unwrap();
    assert!(matches!(reply, Err(RedisError::Closed(_))), "{reply:?}");
}

#[test]
fn callbacks_never_run_inside_the_call_that_fails_the_connection() {
    use std::cell::RefCell;
    use std::rc::Rc;
    let server = fake(usize::MAX, Vec::new());
    let ioloop = IoLoop::new().unwrap();
    let redis = ioloop
        .run_sync_timeout(
            RedisClient::connect_with(&ioloop, &url(server.port), plain(RedisOptions::default())),
            LIMIT,
        )
        .unwrap()
        .unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let (a, b, c) = (log.clone(), log.clone(), log.clone());
    redis.cmd_then(["PING"], move |r| {
        a.borrow_mut().push(format!("ping {r:?}"))
    });
    redis.on_close(move |e| b.borrow_mut().push(format!("closed {e}")));
    redis.close();
    // After close, a command fails too, also on a later iteration.
    redis.cmd_then(["PING"], move |r| {
        c.borrow_mut().push(format!("late {r:?}"))
    });
    assert!(
        log.borrow().is_empty(),
        "nothing runs inside close or cmd_then"
    );
    ioloop.run_once(Duration::ZERO).unwrap();
    let log = log.borrow().clone();
    assert_eq!(log.len(), 3, "{log:?}");
    assert!(log[0].starts_with("ping Err(Closed"), "{log:?}");
    assert!(log[1].starts_with("closed"), "{log:?}");
    assert!(log[2].starts_with("late Err(Closed"), "{log:?}");
    let _ = server.done.send(());
}

#[test]
fn dropping_the_last_handle_closes_the_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (eof_tx, eof) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 64];
        while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
        let _ = eof_tx.send(());
    });
    let ioloop = IoLoop::new().unwrap();
    let redis = ioloop
        .run_sync_timeout(
            RedisClient::connect_with(&ioloop, &url(port), plain(RedisOptions::default())),
            LIMIT,
        )
        .unwrap()
        .unwrap();
    let pending = redis.cmd(["PING"]);
    let clone = redis.clone();
    drop(redis);
    assert!(eof.try_recv().is_err(), "a clone keeps it open");
    drop(clone);
    eof.recv_timeout(LIMIT)
        .expect("the server sees the connection end");
    // The command that was waiting gets an error, not a hang.
    let reply = ioloop.run_sync_timeout(pending, LIMIT).unwrap();
    assert!(matches!(reply, Err(RedisError::Closed(_))), "{reply:?}");
}
