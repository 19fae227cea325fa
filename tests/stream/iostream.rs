//! IoStream over real loopback sockets: Tornado's read and write rules, in callback and
//! async style.

use crate::common;

use std::cell::RefCell;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::rc::Rc;
use std::time::Duration;

use common::{tcp_pair, unix_pair, Trace};
use ioloop::testing::{step, LogCapture};
use ioloop::{IoLoop, IoStream, StreamError, StreamOptions};

/// Two connected streams on `ioloop`.
fn stream_pair(ioloop: &IoLoop) -> (IoStream, IoStream) {
    let (a, b) = tcp_pair();
    (
        IoStream::new(ioloop, a).unwrap(),
        IoStream::new(ioloop, b).unwrap(),
    )
}

/// Steps the loop until `done` holds (each step waits at most 1 s for I/O).
fn run_until(ioloop: &IoLoop, mut done: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        ioloop.run_once(Duration::from_secs(1)).unwrap();
    }
    panic!("condition not reached");
}

#[test]
fn two_lines_in_one_packet_are_served_by_two_reads() {
    let ioloop = IoLoop::new().unwrap();
    let (a, b) = stream_pair(&ioloop);
    a.write(b"first\nsecond\n").unwrap();
    let trace = Trace::default();
    let t = trace.clone();
    b.read_until_then(b"\n", 100, move |stream, line| {
        t.push(String::from_utf8(line.unwrap()).unwrap());
        let t = t.clone();
        stream.read_until_then(b"\n", 100, move |_, line| {
            t.push(String::from_utf8(line.unwrap()).unwrap())
        });
    });
    run_until(&ioloop, || trace.len() == 2);
    assert_eq!(trace.take(), ["first\n", "second\n"]);
    // The same in async style.
    a.write(b"third\nfourth\n").unwrap();
    let lines = ioloop
        .run_sync(async move {
            let one = b.read_until(b"\n", 100).await?;
            let two = b.read_until(b"\n", 100).await?;
            Ok::<_, StreamError>((one, two))
        })
        .unwrap()
        .unwrap();
    assert_eq!(lines, (b"third\n".to_vec(), b"fourth\n".to_vec()));
}

#[test]
fn a_read_the_buffer_satisfies_completes_through_the_loop_never_inline() {
    let ioloop = IoLoop::new().unwrap();
    let (a, b) = stream_pair(&ioloop);
    a.write(b"x\ny\n").unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    b.read_until_then(b"\n", 10, move |stream, line| {
        g.borrow_mut().push(line.unwrap());
        let g2 = g.clone();
        // "y\n" is buffered already: still not called from inside this read call.
        stream.read_until_then(b"\n", 10, move |_, line| {
            g2.borrow_mut().push(line.unwrap())
        });
        assert_eq!(g.borrow().len(), 1, "not inline");
    });
    run_until(&ioloop, || !got.borrow().is_empty());
    assert_eq!(got.borrow().len(), 1);
    step(&ioloop);
    assert_eq!(*got.borrow(), [b"x\n".to_vec(), b"y\n".to_vec()]);
}

#[test]
fn a_second_read_is_already_reading_and_the_first_goes_on() {
    let ioloop = IoLoop::new().unwrap();
    let (a, b) = stream_pair(&ioloop);
    let results = Rc::new(RefCell::new(Vec::new()));
    let r = results.clone();
    b.read_bytes_then(3, false, move |_, bytes| r.borrow_mut().push(bytes));
    let r = results.clone();
    b.read_bytes_then(3, false, move |_, bytes| r.borrow_mut().push(bytes));
    step(&ioloop);
    assert!(matches!(
        results.borrow()[0],
        Err(StreamError::AlreadyReading)
    ));
    let mut refused = b.read_until(b"\n", 10);
    assert!(matches!(
        common::poll_once(&mut refused),
        std::task::Poll::Ready(Err(StreamError::AlreadyReading))
    ));
    a.write(b"abc").unwrap();
    run_until(&ioloop, || results.borrow().len() == 2);
    assert_eq!(results.borrow()[1].as_ref().unwrap(), b"abc");
}

#[test]
fn data_buffered_before_the_peer_closed_is_readable_and_the_close_callback_comes_last() {
    let ioloop = IoLoop::new().unwrap();
    let (a, mut b) = tcp_pair();
    let a = IoStream::new(&ioloop, a).unwrap();
    b.write_all(b"one\ntwo\nthree\n").unwrap();
    drop(b);
    let trace = Trace::default();
    let t = trace.clone();
    a.set_close_callback(move |_| t.push("closed"));
    fn read_line(stream: &IoStream, trace: Trace) {
        stream.read_until_then(b"\n", 100, move |stream, line| match line {
            Ok(line) => {
                trace.push(String::from_utf8(line).unwrap());
                read_line(stream, trace);
            }
            Err(e) => trace.push(format!("error: {e}")),
        });
    }
    read_line(&a, trace.clone());
    run_until(&ioloop, || trace.len() == 5);
    assert_eq!(
        trace.take(),
        [
            "one\n",
            "two\n",
            "three\n",
            "error: the stream is closed",
            "closed"
        ]
    );
    assert!(a.closed());
    assert!(a.error().is_none(), "a clean end of stream");
}

/// A stream on `ioloop` whose close callback owns it (as an HTTP connection's does: the
/// cycle is broken only when the callback runs or is dropped), with a read result queued
/// for delivery and no handle left; the flag says when the callback is let go. Returns
/// the peer too, to keep it open.
fn owned_by_its_close_callback_with_a_delivery_queued(
    ioloop: &IoLoop,
) -> (common::DropFlag, IoStream) {
    let (a, b) = stream_pair(ioloop);
    let released = common::DropFlag::default();
    let guard = released.guard();
    let owner = a.clone();
    a.set_close_callback(move |_| {
        let _owned = (&owner, &guard);
    });
    a.read_bytes_then(1, false, |_, _| {});
    // A second read is refused: the refusal is delivered on a later iteration.
    a.read_bytes_then(1, false, |_, _| {});
    (released, b)
}

/// A loop dropped while a read result is still queued for delivery must let go of the
/// close callback (LeakSanitizer saw the whole loop leak this way from
/// `tests/http/server.rs`).
#[test]
fn a_loop_dropped_with_a_delivery_queued_lets_go_of_the_close_callback() {
    let ioloop = IoLoop::new().unwrap();
    let (released, _peer) = owned_by_its_close_callback_with_a_delivery_queued(&ioloop);
    drop(ioloop);
    assert!(
        released.is_dropped(),
        "the close callback, and the stream it owns, outlived the loop"
    );
}

/// As above, for a loop closed (not dropped) with a delivery queued: the close drops what
/// will never run.
#[test]
fn a_loop_closed_with_a_delivery_queued_lets_go_of_the_close_callback() {
    let ioloop = IoLoop::new().unwrap();
    let (released, _peer) = owned_by_its_close_callback_with_a_delivery_queued(&ioloop);
    ioloop.close(true).unwrap();
    assert!(
        released.is_dropped(),
        "the close callback, and the stream it owns, outlived the loop's close"
    );
}

/// Closes its stream when dropped.
struct ClosesOnDrop(IoStream);

impl Drop for ClosesOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// A loop dropped with a task that closes a stream from its destructor: the stream cannot
/// reach the loop any more to remove its registration, so the loop must have taken every
/// fd out of its poller before it ends its tasks (otherwise it removes a closed, or
/// reused, descriptor afterwards: `EBADF`, logged).
#[test]
fn a_loop_dropped_takes_its_fds_out_of_the_poller_before_its_tasks_close_them() {
    let capture = LogCapture::start();
    let ioloop = IoLoop::new().unwrap();
    let (a, _peer) = stream_pair(&ioloop);
    let closes_on_drop = ClosesOnDrop(a.clone());
    let task = ioloop.spawn(async move {
        let _closes_on_drop = closes_on_drop;
        std::future::pending::<()>().await;
    });
    step(&ioloop);
    drop(task);
    drop(ioloop);
    assert!(a.closed());
    let removals_failed: Vec<_> = capture
        .records()
        .into_iter()
        .filter(|record| record.message.contains("error removing fd"))
        .collect();
    assert_eq!(
        removals_failed,
        vec![],
        "a closed fd was removed from the poller"
    );
}

#[test]
fn read_until_over_max_bytes_is_unsatisfiable_and_closes_even_when_buffered() {
    let ioloop = IoLoop::new().unwrap();
    let (a, b) = stream_pair(&ioloop);
    a.write(b"0123456789\n").unwrap();
    // Let the data reach b's buffer through an unrelated partial read first.
    let head = ioloop.run_sync(b.read_bytes(1, false)).unwrap().unwrap();
    assert_eq!(head, b"0");
    let result = ioloop.run_sync(b.read_until(b"\n", 5)).unwrap();
    assert!(
        matches!(result, Err(StreamError::Unsatisfiable)),
        "{result:?}"
    );
    assert!(b.closed());
    // The delimiter within reach but past max_bytes counts too.
    let (c, d) = stream_pair(&ioloop);
    c.write(b"abcdef\n").unwrap();
    let result = ioloop.run_sync(d.read_until(b"\n", 6)).unwrap();
    assert!(
        matches!(result, Err(StreamError::Unsatisfiable)),
        "{result:?}"
    );
}

#[test]
fn a_fast_writer_against_a_small_buffer_is_flow_controlled_not_overflowed() {
    const TOTAL: usize = 10 << 20;
    const LIMIT: usize = 5 << 20;
    let ioloop = IoLoop::new().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let writer = std::thread::spawn(move || {
        let mut client = TcpStream::connect(addr).unwrap();
        let chunk = vec![7u8; 1 << 16];
        for _ in 0..TOTAL / chunk.len() {
            client.write_all(&chunk).unwrap();
        }
    });
    let (server, _) = listener.accept().unwrap();
    let options = StreamOptions {
        max_buffer_size: LIMIT,
        ..Default::default()
    };
    let stream = IoStream::with_options(&ioloop, server, options).unwrap();
    let s = stream.clone();
    let (received, peak) = ioloop
        .run_sync(async move {
            let (mut received, mut peak) = (0, 0);
            while received < TOTAL {
                peak = peak.max(s.buffered());
                received += s.read_bytes(1 << 20, false).await.unwrap().len();
                peak = peak.max(s.buffered());
            }
            (received, peak)
        })
        .unwrap();
    writer.join().unwrap();
    assert_eq!(received, TOTAL);
    assert!(peak <= LIMIT, "buffered {peak} > {LIMIT}");
}

#[test]
fn read_until_close_past_the_buffer_limit_is_buffer_full() {
    let ioloop = IoLoop::new().unwrap();
    let (a, b) = tcp_pair();
    let options = StreamOptions {
        max_buffer_size: 1000,
        ..Default::default()
    };
    let a = IoStream::with_options(&ioloop, a, options).unwrap();
    let b = IoStream::new(&ioloop, b).unwrap();
    b.write(&[1u8; 5000]).unwrap();
    let result = ioloop.run_sync(a.read_until_close()).unwrap();
    assert!(matches!(result, Err(StreamError::BufferFull)), "{result:?}");
    assert!(a.closed());
}

#[test]
fn a_connection_reset_closes_quietly_keeping_the_os_error() {
    let logs = LogCapture::start();
    let ioloop = IoLoop::new().unwrap();
    let (a, b) = tcp_pair();
    let a = IoStream::new(&ioloop, a).unwrap();
    // SO_LINGER 0: closing sends a reset.
    rustix::net::sockopt::set_socket_linger(&b, Some(Duration::ZERO)).unwrap();
    drop(b);
    let result = ioloop.run_sync(a.read_bytes(1, false)).unwrap();
    let error = result.unwrap_err();
    let real = error.real_error().expect("the OS error is kept");
    assert_eq!(real.kind(), std::io::ErrorKind::ConnectionReset);
    assert!(a.closed());
    assert!(logs.messages(log::Level::Warn).is_empty(), "closed quietly");
}

#[test]
fn a_write_to_a_closed_stream_fails_at_once() {
    let ioloop = IoLoop::new().unwrap();
    let (a, _b) = stream_pair(&ioloop);
    a.close();
    assert!(matches!(a.write(b"x"), Err(StreamError::Closed { .. })));
    assert!(a.write_then(b"x", |_, _| unreachable!()).is_err());
    let mut write = a.write_all(b"x");
    assert!(matches!(
        common::poll_once(&mut write),
        std::task::Poll::Ready(Err(StreamError::Closed { .. }))
    ));
}

#[test]
fn a_peer_vanishing_mid_write_gives_the_writer_an_error_not_a_hang() {
    let ioloop = IoLoop::new().unwrap();
    let (a, b) = tcp_pair();
    let a = IoStream::new(&ioloop, a).unwrap();
    let big = vec![0u8; 32 << 20]; // far more than the socket buffers hold
    let result = Rc::new(RefCell::new(None));
    let r = result.clone();
    a.write_then(&big, move |_, outcome| *r.borrow_mut() = Some(outcome))
        .unwrap();
    assert!(a.writing());
    rustix::net::sockopt::set_socket_linger(&b, Some(Duration::ZERO)).unwrap();
    drop(b);
    run_until(&ioloop, || result.borrow().is_some());
    let outcome = result.borrow_mut().take().unwrap();
    assert!(
        matches!(
            outcome,
            Err(StreamError::Closed {
                real_error: Some(_)
            })
        ),
        "{outcome:?}"
    );
}

#[test]
fn writes_complete_in_order_and_an_empty_write_after_the_earlier_ones() {
    let ioloop = IoLoop::new().unwrap();
    let (a, b) = stream_pair(&ioloop);
    let trace = Trace::default();
    let big = vec![1u8; 8 << 20];
    for (name, data) in [("big", &big[..]), ("small", b"x"), ("empty", b"")] {
        let t = trace.clone();
        a.write_then(data, move |_, r| {
            r.unwrap();
            t.push(name)
        })
        .unwrap();
    }
    let total = big.len() + 1;
    let drained = ioloop.run_sync(async move {
        let mut n = 0;
        while n < total {
            n += b.read_bytes(1 << 20, true).await.unwrap().len();
        }
        n
    });
    assert_eq!(drained.unwrap(), total);
    run_until(&ioloop, || trace.len() == 3);
    assert_eq!(trace.take(), ["big", "small", "empty"]);
}

/// A small xorshift generator: deterministic "random" sizes without a dependency.
struct Sizes(u64);

impl Sizes {
    fn next(&mut self, max: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        1 + (self.0 as usize) % max
    }
}

fn fnv1a(hash: &mut u64, bytes: &[u8]) {
    for &b in bytes {
        *hash ^= u64::from(b);
        *hash = hash.wrapping_mul(0x100_0000_01b3);
    }
}

#[test]
fn a_mebibyte_in_random_sized_writes_and_reads_keeps_its_hash() {
    const TOTAL: usize = 1 << 20;
    let ioloop = IoLoop::new().unwrap();
    let (a, b) = stream_pair(&ioloop);
    let mut sizes = Sizes(0x9e37_79b9_7f4a_7c15);
    let mut sent_hash = 0xcbf2_9ce4_8422_2325u64;
    let mut sent = 0;
    let mut byte = 0u8;
    while sent < TOTAL {
        let n = sizes.next(7000).min(TOTAL - sent);
        let chunk: Vec<u8> = (0..n)
            .map(|_| {
                byte = byte.wrapping_mul(31).wrapping_add(17);
                byte
            })
            .collect();
        fnv1a(&mut sent_hash, &chunk);
        a.write(&chunk).unwrap();
        sent += n;
    }
    let received_hash = ioloop
        .run_sync(async move {
            let mut sizes = Sizes(42);
            let mut hash = 0xcbf2_9ce4_8422_2325u64;
            let mut received = 0;
            let mut buf = vec![0u8; 9000];
            while received < TOTAL {
                let want = sizes.next(9000).min(TOTAL - received);
                let n = if want % 2 == 0 {
                    b.read_into(&mut buf[..want], true).await.unwrap()
                } else {
                    let bytes = b.read_bytes(want, false).await.unwrap();
                    buf[..bytes.len()].copy_from_slice(&bytes);
                    bytes.len()
                };
                fnv1a(&mut hash, &buf[..n]);
                received += n;
            }
            hash
        })
        .unwrap();
    assert_eq!(received_hash, sent_hash);
}

#[test]
fn a_dropped_read_future_leaves_its_bytes_in_the_buffer() {
    let ioloop = IoLoop::new().unwrap();
    let (a, b) = stream_pair(&ioloop);
    let b2 = b.clone();
    let timed_out = ioloop
        .run_sync(ioloop::timeout(
            Duration::from_millis(1),
            b2.read_until(b"\n", 100),
        ))
        .unwrap();
    assert!(timed_out.is_err());
    assert!(!b.reading(), "the read was withdrawn");
    a.write(b"partial").unwrap();
    let head = ioloop.run_sync(b.read_bytes(3, false)).unwrap().unwrap();
    assert_eq!(head, b"par");
    a.write(b" line\n").unwrap();
    let rest = ioloop.run_sync(b.read_until(b"\n", 100)).unwrap().unwrap();
    assert_eq!(rest, b"tial line\n");
}

/// Pings the echo server at the other end of `client` 100 times after a warm-up, and
/// returns the loop's poller interest changes per ping.
fn poller_changes_per_ping(ioloop: &IoLoop, client: IoStream) -> f64 {
    let handle = ioloop.clone();
    ioloop
        .run_sync(async move {
            client.write(b"warm up\n").unwrap();
            client.read_until(b"\n", 100).await.unwrap();
            let before = handle.stats().poller_modifications;
            for _ in 0..100 {
                client.write(b"ping\n").unwrap();
                assert_eq!(client.read_until(b"\n", 100).await.unwrap(), b"ping\n");
            }
            (handle.stats().poller_modifications - before) as f64 / 100.0
        })
        .unwrap()
}

#[test]
fn a_steady_ping_pong_changes_poller_interest_only_when_it_must() {
    let ioloop = IoLoop::new().unwrap();
    let (client, server) = stream_pair(&ioloop);
    drop(ioloop.spawn(async move {
        while let Ok(line) = server.read_until(b"\n", 100).await {
            server.write(&line).unwrap();
        }
    }));
    let per_round = poller_changes_per_ping(&ioloop, client);
    // A stream keeps READ while idle with an empty buffer, so a read that follows a
    // read changes nothing: no epoll_ctl per message.
    assert_eq!(per_round, 0.0, "{per_round} epoll_ctl per round");
}

#[test]
fn a_callback_ping_pong_changes_poller_interest_only_when_it_must() {
    fn serve(stream: &IoStream) {
        stream.read_until_then(b"\n", 100, |stream, line| {
            if let Ok(line) = line {
                stream.write(&line).unwrap();
                serve(stream);
            }
        });
    }
    let ioloop = IoLoop::new().unwrap();
    let (client, server) = stream_pair(&ioloop);
    serve(&server);
    let per_round = poller_changes_per_ping(&ioloop, client);
    // A read result on its way to a callback keeps READ: the callback reads again before
    // the next poll.
    assert_eq!(per_round, 0.0, "{per_round} epoll_ctl per round");
}

#[test]
fn a_child_process_pipe_is_made_non_blocking_and_serves_both_ways() {
    use std::process::{Command, Stdio};
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("cat runs");
    let ioloop = IoLoop::new().unwrap();
    let to_cat = IoStream::new(&ioloop, child.stdin.take().unwrap()).unwrap();
    let from_cat = IoStream::new(&ioloop, child.stdout.take().unwrap()).unwrap();
    for stream in [&to_cat, &from_cat] {
        let flags = stream
            .with_socket(|s| rustix::fs::fcntl_getfl(s).unwrap())
            .unwrap();
        assert!(
            flags.contains(rustix::fs::OFlags::NONBLOCK),
            "a blocking pipe stalls the loop"
        );
    }
    let echoed = ioloop
        .run_sync(async move {
            to_cat.write_all(b"through cat\n").await?;
            let line = from_cat.read_until(b"\n", 100).await?;
            // cat keeps its stdout open: a blocking pipe would hang this second read.
            let nothing_yet =
                ioloop::timeout(Duration::from_millis(20), from_cat.read_bytes(1, true)).await;
            assert!(nothing_yet.is_err(), "timed out, the loop kept running");
            to_cat.close();
            let rest = from_cat.read_until_close().await?;
            Ok::<_, ioloop::StreamError>((line, rest))
        })
        .unwrap()
        .unwrap();
    assert_eq!(echoed, (b"through cat\n".to_vec(), Vec::new()));
    child.wait().unwrap();
}

#[test]
fn pipes_and_unix_sockets_work_too_and_nodelay_is_a_no_op_there() {
    let ioloop = IoLoop::new().unwrap();
    let (a, b) = unix_pair();
    let (a, b) = (
        IoStream::new(&ioloop, a).unwrap(),
        IoStream::new(&ioloop, b).unwrap(),
    );
    a.set_nodelay(true).unwrap();
    a.write(b"over unix\n").unwrap();
    let line = ioloop.run_sync(b.read_until(b"\n", 64)).unwrap().unwrap();
    assert_eq!(line, b"over unix\n");

    let (reader, writer) = rustix::pipe::pipe().unwrap();
    let mut writer = std::fs::File::from(writer);
    let reader = std::fs::File::from(reader);
    rustix::fs::fcntl_setfl(&reader, rustix::fs::OFlags::NONBLOCK).unwrap();
    let reader = IoStream::new(&ioloop, reader).unwrap();
    writer.write_all(b"through a pipe").unwrap();
    drop(writer);
    let all = ioloop.run_sync(reader.read_until_close()).unwrap().unwrap();
    assert_eq!(all, b"through a pipe");
}

#[test]
fn a_bounded_write_buffer_refuses_a_write_that_would_overflow_it_and_queues_nothing() {
    let ioloop = IoLoop::new().unwrap();
    let (a, _b) = unix_pair();
    let options = StreamOptions {
        max_write_buffer_size: Some(1 << 20),
        ..Default::default()
    };
    let a = IoStream::with_options(&ioloop, a, options).unwrap();
    // The socket takes some of it at once; the rest fills the bounded buffer.
    let chunk = vec![0u8; 256 << 10];
    let mut refused = None;
    for _ in 0..64 {
        if let Err(e) = a.write(&chunk) {
            refused = Some(e);
            break;
        }
    }
    assert!(
        matches!(refused, Some(StreamError::BufferFull)),
        "{refused:?}"
    );
    assert!(!a.closed(), "a refused write leaves the stream usable");
    assert!(a.writing(), "the earlier writes stay queued");
}

/// Writes 64 KiB chunks to `stream` until the socket leaves some of them buffered.
fn fill_until_buffered(stream: &IoStream) {
    let chunk = vec![7u8; 64 * 1024];
    while stream.write_buffered() == 0 {
        stream.write(&chunk).unwrap();
    }
}

#[test]
fn write_buffered_counts_what_waits_for_the_socket() {
    let ioloop = IoLoop::new().unwrap();
    let (a, b) = unix_pair();
    let a = IoStream::new(&ioloop, a).unwrap();
    a.write(b"taken at once").unwrap();
    assert_eq!(a.write_buffered(), 0);
    fill_until_buffered(&a);
    let waiting = a.write_buffered();
    assert!(waiting > 0 && waiting <= 64 * 1024);
    assert!(a.writing());
    drop(b);
}

#[test]
fn drained_then_waits_for_the_peer_to_read_and_later_writes_do_not_delay_it() {
    let ioloop = IoLoop::new().unwrap();
    let (a, mut b) = unix_pair();
    b.set_nonblocking(true).unwrap();
    let a = IoStream::new(&ioloop, a).unwrap();
    fill_until_buffered(&a);
    let trace = Trace::default();
    let t = trace.clone();
    a.drained_then(0, move |stream, drained| {
        drained.unwrap();
        t.push(format!("drained with {} waiting", stream.write_buffered()));
    });
    // A write after the call: the drain does not wait for it.
    a.write(&[8u8; 1024]).unwrap();
    for _ in 0..3 {
        step(&ioloop);
    }
    assert_eq!(trace.len(), 0, "nobody read: nothing drained");
    // The peer reads everything written before the drain was asked for.
    let mut seen = 0;
    let mut buf = vec![0u8; 256 * 1024];
    run_until(&ioloop, || {
        while let Ok(n) = std::io::Read::read(&mut b, &mut buf) {
            if n == 0 {
                break;
            }
            seen += n;
        }
        trace.len() == 1
    });
    assert!(seen > 0);
    assert!(trace.take()[0].starts_with("drained with "));
}

#[test]
fn a_drain_already_reached_completes_on_the_next_iteration_and_a_closed_stream_fails_it() {
    let ioloop = IoLoop::new().unwrap();
    let (a, _b) = unix_pair();
    let a = IoStream::new(&ioloop, a).unwrap();
    let trace = Trace::default();
    let t = trace.clone();
    a.drained_then(0, move |_, drained| t.push(format!("{drained:?}")));
    assert_eq!(trace.len(), 0, "never inline");
    step(&ioloop);
    assert_eq!(trace.take(), ["Ok(())"]);

    a.close();
    let t = trace.clone();
    a.drained_then(0, move |_, drained| {
        t.push(format!(
            "{}",
            matches!(drained, Err(StreamError::Closed { .. }))
        ))
    });
    step(&ioloop);
    assert_eq!(trace.take(), ["true"]);
    assert!(ioloop.run_sync(a.drained(0)).unwrap().is_err());
}

#[test]
fn a_drain_future_resolves_once_the_backlog_is_below_the_mark() {
    let ioloop = IoLoop::new().unwrap();
    let (a, b) = unix_pair();
    let a = IoStream::new(&ioloop, a).unwrap();
    let b = IoStream::new(&ioloop, b).unwrap();
    fill_until_buffered(&a);
    let written = a.write_buffered();
    let reader = b.clone();
    // The peer drains everything in the background.
    ioloop.spawn(async move { while reader.read_bytes(1 << 20, true).await.is_ok() {} });
    ioloop
        .run_sync_timeout(a.drained(written / 2), Duration::from_secs(10))
        .unwrap()
        .unwrap();
    assert!(a.write_buffered() <= written / 2);
}

#[test]
fn the_write_buffer_is_bounded_by_default() {
    assert_eq!(
        StreamOptions::default().max_write_buffer_size,
        Some(100 * 1024 * 1024)
    );
}

#[cfg(feature = "websocket")]
mod vectored {
    //! Writes made of several parts (a WebSocket frame's header and payload) go out in
    //! order, whole, also when the socket takes only some of them.
    use ioloop::web::Application;
    use ioloop::websocket::{websocket, websocket_connect, Message};
    use ioloop::IoLoop;

    #[test]
    fn large_frames_written_as_header_and_payload_arrive_whole_and_in_order() {
        let ioloop = IoLoop::new().unwrap();
        let (_server, addr) = Application::new()
            .route(
                "/echo",
                websocket(|ws, _req| async move {
                    while let Some(message) = ws.recv().await {
                        // Fire-and-forget sends pile up past what the socket takes.
                        let _ = ws.write_message(message.clone());
                        let _ = ws.write_message(message);
                    }
                }),
            )
            .bind(&ioloop, "127.0.0.1:0")
            .unwrap();
        ioloop
            .run_sync(async move {
                let ws = websocket_connect(&format!("ws://{addr}/echo"))
                    .await
                    .unwrap();
                let messages: Vec<Message> = (0..8u8)
                    .map(|i| Message::Binary(vec![i; 300_000 + usize::from(i)]))
                    .collect();
                for message in &messages {
                    ws.send(message.clone()).await.unwrap();
                }
                for message in &messages {
                    assert_eq!(ws.recv().await.as_ref(), Some(message));
                    assert_eq!(ws.recv().await.as_ref(), Some(message));
                }
            })
            .unwrap();
    }
}

/// A request/response exchange parsed in place (`fill`, then `consume` of a head, then of
/// a body), as the HTTP client does: in steady state it makes no `epoll_ctl`.
#[test]
fn in_place_parsing_of_messages_changes_poller_interest_only_at_the_start() {
    let ioloop = IoLoop::new().unwrap();
    let (a, b) = tcp_pair();
    let client = IoStream::new(&ioloop, a).unwrap();
    let server = IoStream::new(&ioloop, b).unwrap();
    let rounds = 200;
    drop(ioloop.spawn(async move {
        for _ in 0..rounds {
            if server.read_until(b"\n", 64).await.is_err() {
                return;
            }
            let _ = server.write_all(b"HEAD\nbody").await;
        }
    }));
    let handle = ioloop.clone();
    let modifications = ioloop
        .run_sync(async move {
            let mut first = 0;
            for round in 0..rounds {
                drop(client.write_all(b"ask\n"));
                while client.buffered() < 9 {
                    client.wait_for_more(client.buffered()).await.unwrap();
                }
                // The head, then the body: READ stays on in between.
                client.consume(5);
                assert_eq!(client.with_buffered(|b| b.to_vec()), b"body");
                client.consume(4);
                if round == 0 {
                    first = handle.stats().poller_modifications;
                }
            }
            handle.stats().poller_modifications - first
        })
        .unwrap();
    assert_eq!(modifications, 0, "steady state makes no epoll_ctl");
}
