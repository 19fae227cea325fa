//! Embedding the loop in a host's own frame loop, as a game or a device would.
//!
//! - Part (a): a 60 fps frame loop on the system clock. Each frame calls
//!   `ioloop.run_once(Duration::ZERO)` (never blocks), then sleeps until the next frame.
//!   Meanwhile a timer re-arms itself every 250 ms, and a TCP echo server on 127.0.0.1
//!   serves a client thread. The frame loop ends when the client posts "done" through a
//!   [`Remote`](ioloop::Remote).
//! - Part (b): a fixed-timestep simulation on a [`ManualClock`]: 120 steps of 1/60 s,
//!   with timers in simulated time. Nothing sleeps: two simulated seconds take a
//!   fraction of a millisecond.
//!
//! Run it with:
//!
//! ```text
//! cargo run --example game_loop
//! ```

use std::cell::Cell;
use std::error::Error;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::thread;
use std::time::{Duration, Instant};

use ioloop::{Interest, IoEvent, IoLoop, ManualClock, PeriodicCallback};

/// One frame at 60 fps, rounded up to whole nanoseconds (see part (b) for why up).
const FRAME: Duration = Duration::from_nanos(16_666_667);

thread_local! {
    /// Set by the client's posted callback. Callbacks posted through a `Remote` must be
    /// `Send`, so they cannot capture the loop thread's `Rc`s; but they run on the loop
    /// thread, so they can reach its thread-local state.
    static CLIENT_DONE: Cell<bool> = const { Cell::new(false) };
}

fn main() -> Result<(), Box<dyn Error>> {
    env_logger::init();
    realtime_frame_loop()?;
    fixed_timestep()?;
    Ok(())
}

/// Part (a): real time, real sockets.
fn realtime_frame_loop() -> Result<(), Box<dyn Error>> {
    println!("== (a) 60 fps frame loop on the system clock ==");
    let ioloop = IoLoop::new()?;
    let start = Instant::now();

    // A timer that re-arms itself every 250 ms.
    heartbeat(&ioloop, start, 1);

    // A non-blocking listener; the loop owns it from now on.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    ioloop.add_handler(listener, Interest::READ, accept_connections)?;
    println!("[server] listening on {addr}");

    // The client runs on its own thread, with blocking sockets.
    let remote = ioloop.remote();
    let client = thread::spawn(move || {
        let result = run_client(addr);
        // Tell the loop thread we are done. The callback runs there, on the loop's next
        // iteration; posting also wakes the loop if it is waiting. It fails only if the
        // loop is gone already (the host gave up on us), so there is no one to tell.
        let _ = remote.add_callback(|_| {
            println!("[loop] the client posted: done");
            CLIENT_DONE.set(true);
        });
        result
    });

    // The host's frame loop.
    let mut frame = 0u32;
    let mut next_frame = start;
    while !CLIENT_DONE.get() {
        if start.elapsed() > Duration::from_secs(5) {
            return Err("the client did not finish within 5 s".into());
        }

        // Run whatever is ready: posted callbacks, due timers, ready sockets. Never blocks.
        ioloop.run_once(Duration::ZERO)?;
        // ... update the game, render ...

        // How long the loop itself could sleep: until the next timer (or `None` if only
        // I/O could wake it). A host with nothing else to do could sleep that long, or
        // wait on the loop's fd (`AsFd`); a game sleeps until its next frame.
        if frame < 3 || frame % 30 == 0 {
            let idle = match ioloop.poll_timeout() {
                Some(wait) => format!("{wait:.1?}"),
                None => "until I/O arrives".to_owned(),
            };
            println!(
                "frame {frame:3} at {:4} ms: the loop could sleep {idle}",
                start.elapsed().as_millis()
            );
        }

        frame += 1;
        next_frame += FRAME;
        let now = Instant::now();
        if next_frame > now {
            thread::sleep(next_frame - now);
        } else {
            next_frame = now; // running late: do not try to catch up
        }
    }

    let lines = client.join().expect("the client thread panicked")?;
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "client echoed {lines} lines; {frame} frames in {elapsed:.2} s ({:.1} fps)",
        f64::from(frame) / elapsed
    );
    // Drop the listener and the heartbeat timer.
    ioloop.close(true)?;
    Ok(())
}

/// Prints a heartbeat in 250 ms and schedules the next one.
///
/// Each one is re-armed from when the previous one ran, which is up to a frame after its
/// deadline, so heartbeats drift by that much; a [`PeriodicCallback`] stays on its grid.
fn heartbeat(ioloop: &IoLoop, start: Instant, n: u32) {
    ioloop.call_later(Duration::from_millis(250), move |ioloop| {
        println!(
            "[timer] heartbeat {n} at {} ms",
            start.elapsed().as_millis()
        );
        heartbeat(ioloop, start, n + 1);
    });
}

/// The listener's handler: accepts every pending connection and registers each one.
fn accept_connections(ioloop: &IoLoop, listener: &mut TcpListener, _: IoEvent<TcpListener>) {
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                println!("[server] accepted {peer}");
                if let Err(e) = stream.set_nonblocking(true) {
                    eprintln!("[server] {peer}: {e}");
                    continue;
                }
                if let Err(e) = ioloop.add_handler(stream, Interest::READ, echo) {
                    eprintln!("[server] cannot register {peer}: {}", e.error());
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return, // no more pending
            Err(e) => {
                eprintln!("[server] accept failed: {e}");
                return;
            }
        }
    }
}

/// A connection's handler: echoes back what it reads, and closes on end of stream.
fn echo(ioloop: &IoLoop, stream: &mut TcpStream, event: IoEvent<TcpStream>) {
    let mut buf = [0; 1024];
    // Readiness is level-triggered: one read per event is enough, anything left over is
    // reported again next iteration.
    match stream.read(&mut buf) {
        Ok(0) => {
            println!("[server] peer closed; closing our end");
            // Removing itself from inside its own call: the stream is dropped (closed)
            // when this handler returns.
            ioloop.remove_handler(event.id());
        }
        Ok(n) => {
            println!("[server] echoing {n} bytes");
            // A few bytes always fit in the socket buffer. A real server would keep
            // unsent data and wait for `Interest::WRITE`.
            if let Err(e) = stream.write_all(&buf[..n]) {
                eprintln!("[server] write failed: {e}");
                ioloop.remove_handler(event.id());
            }
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Err(e) => {
            eprintln!("[server] read failed: {e}");
            ioloop.remove_handler(event.id());
        }
    }
}

/// The client: sends a few lines, 250 ms apart, and checks each echo. Returns how many
/// lines were echoed.
fn run_client(addr: SocketAddr) -> io::Result<usize> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);

    let lines = ["hello", "from", "the", "client"];
    for line in lines {
        thread::sleep(Duration::from_millis(250));
        writer.write_all(format!("{line}\n").as_bytes())?; // one write, one segment
        let mut echo = String::new();
        reader.read_line(&mut echo)?;
        println!("[client] sent {line:?}, got back {:?}", echo.trim_end());
        assert_eq!(echo.trim_end(), line);
    }

    // Close our sending side, then wait for the server to close its end, so that the
    // server has finished with us before we report "done".
    writer.shutdown(Shutdown::Write)?;
    reader.read_to_end(&mut Vec::new())?;
    Ok(lines.len())
}

/// Part (b): fixed timestep on a manual clock; no sleeping, fully deterministic.
fn fixed_timestep() -> Result<(), Box<dyn Error>> {
    println!("\n== (b) fixed timestep on a ManualClock ==");
    let clock = ManualClock::new();
    let ioloop = IoLoop::builder().clock(clock.clone()).build()?;
    let t0 = clock.now();
    let wall = Instant::now();

    // The frame being simulated, for the timers to print.
    let frame = Rc::new(Cell::new(0u32));

    let f = frame.clone();
    ioloop.add_timeout(Duration::from_millis(500), move |ioloop| {
        let t = (ioloop.time() - t0).as_secs_f64();
        println!(
            "frame {:3} (t = {t:.3} s): the 0.5 s timeout fires",
            f.get()
        );
    });

    let f = frame.clone();
    let ticker = PeriodicCallback::new(&ioloop, Duration::from_millis(250), move |ioloop, _| {
        let t = (ioloop.time() - t0).as_secs_f64();
        println!(
            "frame {:3} (t = {t:.3} s): the 0.25 s periodic callback",
            f.get()
        );
    });
    ticker.start();

    // 1/60 s is not a whole number of nanoseconds. `FRAME` rounds it up, so 30 steps
    // reach 0.5 s; rounded down (16_666_666 ns), 30 steps would end 20 ns short of it
    // and the 0.5 s timeout would fire one frame late, at frame 31.
    for n in 1..=120 {
        clock.advance(FRAME); // move simulated time forward by one step ...
        frame.set(n);
        ioloop.run_once(Duration::ZERO)?; // ... and run whatever became due
    }
    ticker.stop();

    println!(
        "simulated {:.3} s in {:.2?} of wall time",
        (clock.now() - t0).as_secs_f64(),
        wall.elapsed()
    );
    Ok(())
}
