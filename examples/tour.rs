//! A guided tour of `ioloop`, one section per feature, each printing what happens:
//!
//! 1. callbacks: FIFO order, and a callback added during a batch waits for the next
//!    iteration;
//! 2. timers: deadline order, equal deadlines in insertion order, removing a timeout;
//! 3. a `PeriodicCallback` that runs three times and stops itself;
//! 4. fd handlers on a socket pair, and `remove_handler` giving the socket back;
//! 5. callbacks posted from another thread through a `Remote`;
//! 6. a panicking callback, caught and reported with where it was registered, while the
//!    loop keeps going;
//! 7. async/await on the loop: a task that sleeps on the loop's timers, awaits a callback
//!    API through a completion, and hands its result to a callback;
//! 8. an echo round trip over loopback: a `TcpServer` and a `TcpClient`, with `IoStream`.
//!
//! Every section runs on the same loop, until the section stops it. Run it with:
//!
//! ```text
//! cargo run --example tour
//! ```

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::panic;
use std::thread;
use std::time::{Duration, Instant};

use ioloop::{Interest, IoLoop, PeriodicCallback};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result {
    env_logger::init();

    let ioloop = IoLoop::new()?;
    callbacks(&ioloop)?;
    timers(&ioloop)?;
    periodic(&ioloop)?;
    fd_handlers(&ioloop)?;
    remote(&ioloop)?;
    panics(&ioloop)?;
    async_await(&ioloop)?;
    echo(&ioloop)?;

    println!("\nEnd of the tour.");
    Ok(())
}

fn section(title: &str) {
    println!("\n== {title} ==");
}

/// Milliseconds since `start`, for printing.
fn ms(start: Instant) -> u128 {
    start.elapsed().as_millis()
}

/// 1. Callbacks run in the order they were added. The loop snapshots its queue at the
///    start of each iteration, so a callback added by a callback runs on the next one.
fn callbacks(ioloop: &IoLoop) -> Result {
    section("1. Callbacks: FIFO order, one batch per iteration");
    let first = ioloop.stats().iterations + 1;

    for name in ["A", "B", "C"] {
        ioloop.add_callback(move |ioloop| {
            let iteration = ioloop.stats().iterations - first + 1;
            println!("  iteration {iteration}: callback {name}");
        });
    }
    ioloop.add_callback(move |ioloop| {
        let iteration = ioloop.stats().iterations - first + 1;
        println!("  iteration {iteration}: callback D adds callback E");
        ioloop.add_callback(move |ioloop| {
            let iteration = ioloop.stats().iterations - first + 1;
            println!("  iteration {iteration}: callback E (added during the batch)");
            ioloop.stop();
        });
    });

    ioloop.start()?;
    Ok(())
}

/// 2. Timeouts run in deadline order; equal deadlines run in the order they were added;
///    a removed timeout never runs.
fn timers(ioloop: &IoLoop) -> Result {
    section("2. Timers");
    let start = Instant::now();

    // Added out of order on purpose.
    ioloop.call_later(Duration::from_millis(30), move |ioloop| {
        println!("  {:3} ms: the 30 ms timeout; stopping", ms(start));
        ioloop.stop();
    });

    // Equal deadlines: pass the same `Instant` to both (two `Duration`s would be
    // measured from two slightly different "now"s).
    let at = ioloop.time() + Duration::from_millis(20);
    ioloop.call_at(at, move |_| {
        println!("  {:3} ms: 20 ms, added first", ms(start))
    });
    ioloop.call_at(at, move |_| {
        println!("  {:3} ms: 20 ms, added second", ms(start))
    });

    // This one is removed by the 10 ms timeout before its deadline.
    let doomed = ioloop.call_later(Duration::from_millis(15), |_| {
        unreachable!("a removed timeout never runs")
    });
    ioloop.call_later(Duration::from_millis(10), move |ioloop| {
        let removed = ioloop.remove_timeout(doomed);
        println!(
            "  {:3} ms: the 10 ms timeout removes the 15 ms one (was pending: {removed})",
            ms(start)
        );
    });

    println!("  {} timeouts pending", ioloop.stats().timeouts_pending);
    ioloop.start()?;
    Ok(())
}

/// 3. A periodic callback every 20 ms that stops itself after three calls.
fn periodic(ioloop: &IoLoop) -> Result {
    section("3. PeriodicCallback");
    let start = Instant::now();

    let mut calls = 0;
    let ticker = PeriodicCallback::new(ioloop, Duration::from_millis(20), move |ioloop, me| {
        calls += 1;
        println!("  {:3} ms: tick {calls}", ms(start));
        if calls == 3 {
            println!("  stopping the ticker and the loop");
            me.stop();
            ioloop.stop();
        }
    });
    ticker.start();
    ioloop.start()?;
    println!("  ticker running: {}", ticker.is_running());
    Ok(())
}

/// 4. An fd handler on one end of a socket pair. The loop owns the socket while it is
///    registered; `remove_handler` gives it back.
fn fd_handlers(ioloop: &IoLoop) -> Result {
    section("4. fd handlers");
    let (reader, mut writer) = UnixStream::pair()?;
    reader.set_nonblocking(true)?;

    const MESSAGE: &[u8] = b"hello, handler";
    let mut received = Vec::new();
    let id = ioloop.add_handler(reader, Interest::READ, move |ioloop, reader, _event| {
        // Read at most 5 bytes per call: readiness is level-triggered, so while data is
        // left the handler is called again on the next iteration.
        let mut buf = [0; 5];
        match reader.read(&mut buf) {
            Ok(n) => {
                println!("  handler read {:?}", String::from_utf8_lossy(&buf[..n]));
                received.extend_from_slice(&buf[..n]);
                if received == MESSAGE {
                    ioloop.stop();
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("read failed: {e}"),
        }
    })?;
    println!(
        "  registered {id:?}; writing {} bytes to the other end",
        MESSAGE.len()
    );
    writer.write_all(MESSAGE)?;
    ioloop.start()?;

    // Unregister: the socket is ours again (and the handler closure is dropped).
    let mut reader = ioloop.remove_handler(id).expect("still registered");
    println!("  remove_handler gave the socket back; reading it directly:");
    writer.write_all(b"bye")?;
    reader.set_nonblocking(false)?;
    let mut buf = [0; 3];
    reader.read_exact(&mut buf)?;
    println!(
        "  read {:?} without the loop",
        String::from_utf8_lossy(&buf)
    );
    Ok(())
}

/// 5. Another thread posts callbacks through a `Remote` (the `Send` handle to the loop);
///    they run on the loop thread, in the order they were posted.
fn remote(ioloop: &IoLoop) -> Result {
    section("5. Callbacks from another thread");
    let remote = ioloop.remote();
    let worker = thread::Builder::new()
        .name("worker".into())
        .spawn(move || {
            for i in 1..=3 {
                let square = i * i; // some work, off the loop thread
                println!("  [worker] posting result {i}");
                remote
                    .add_callback(move |_| {
                        let here = thread::current();
                        let here = here.name().unwrap_or("?");
                        println!("  [{here}] result {i}: {square}");
                    })
                    .expect("the loop is alive");
            }
            remote
                .add_callback(|ioloop| {
                    println!("  [main] the worker is done; stopping");
                    ioloop.stop();
                })
                .expect("the loop is alive");
        })?;

    ioloop.start()?;
    worker.join().expect("the worker panicked");
    Ok(())
}

/// 6. A panic in a callback is caught: the loop reports it to the panic handler,
///    with the `file:line` where the callback was registered, and carries on.
fn panics(ioloop: &IoLoop) -> Result {
    section("6. A panicking callback");

    // The default panic handler logs the report (target "ioloop", level error);
    // this one prints it.
    ioloop.set_panic_handler(|report| {
        let site = report.site();
        println!(
            "  caught: the {} registered at {}:{} panicked with {:?}",
            report.kind(),
            site.file(),
            site.line(),
            report.message()
        );
    });

    // Rust's panic hook would also print "thread 'main' panicked at ..." to stderr; keep
    // the tour's output tidy by silencing it for this section.
    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));

    ioloop.add_callback(|_| panic!("boom"));
    ioloop.add_callback(|_| println!("  the next callback still runs"));
    ioloop.call_later(Duration::from_millis(10), |ioloop| {
        println!("  and so do timers; stopping");
        ioloop.stop();
    });
    let result = ioloop.start();

    panic::set_hook(default_hook);
    result?;
    Ok(())
}

/// 7. Futures run on the same loop as callbacks: `spawn` makes a task, `sleep` uses the
///    loop's timer heap, `completion` turns a callback API into an awaitable, and
///    `add_future` hands a future's output to a callback; `run_sync` drives it all.
fn async_await(ioloop: &IoLoop) -> Result {
    section("7. async/await on the loop");
    let start = Instant::now();

    // A callback-style API: calls `on_done` with a value 20 ms later.
    fn fetch_later(ioloop: &IoLoop, on_done: impl FnOnce(u32) + 'static) {
        ioloop.call_later(Duration::from_millis(20), move |_| on_done(21));
    }

    let handle = ioloop.clone();
    let task = ioloop.spawn(async move {
        ioloop::sleep(Duration::from_millis(10)).await;
        println!(
            "  [{:>3} ms] task: slept on the loop's timer heap",
            ms(start)
        );
        let (done, value) = ioloop::completion();
        fetch_later(&handle, move |v| done.complete(v));
        let v = value.await.expect("fetch_later always answers");
        println!(
            "  [{:>3} ms] task: the callback API answered {v}",
            ms(start)
        );
        v * 2
    });
    ioloop.add_future(task, move |_, result| {
        println!(
            "  [{:>3} ms] callback: the task returned {:?}",
            ms(start),
            result
        );
    });
    // run_sync runs the loop until this future resolves; the callback above runs too.
    ioloop.run_sync(ioloop::sleep(Duration::from_millis(50)))?;
    Ok(())
}

/// 8. A `TcpServer` echoes lines in callback style; a `TcpClient` connects over loopback
///    and talks to it in async style.
fn echo(ioloop: &IoLoop) -> Result {
    section("8. An echo round trip over loopback");
    fn echo_lines(stream: &ioloop::IoStream) {
        stream.read_until_then(b"\n", 1024, |stream, line| match line {
            Ok(line) => {
                println!("  server: echoing {:?}", String::from_utf8_lossy(&line));
                let _ = stream.write(&line);
                echo_lines(stream);
            }
            Err(_) => stream.close(),
        });
    }
    let server = ioloop::TcpServer::new(ioloop, |_, stream, peer| {
        println!("  server: connection from {peer}");
        echo_lines(&stream);
    });
    let addr = server.bind("127.0.0.1:0")?;
    let client = ioloop::TcpClient::new(ioloop);
    let reply = ioloop.run_sync(async move {
        let stream = client.connect("127.0.0.1", addr.port()).await?;
        stream.write_all(b"ping\n").await?;
        let reply = stream.read_until(b"\n", 1024).await?;
        stream.close();
        Ok::<_, Box<dyn std::error::Error>>(reply)
    })??;
    println!("  client: got {:?} back", String::from_utf8_lossy(&reply));
    server.stop();
    Ok(())
}
