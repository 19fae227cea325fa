//! Workload 3, cross-thread.
//!
//! - `rtt`: a worker thread (pinned to another core) posts a callback that stores a
//!   sequence number in an atomic; the worker spins until it sees it. The loop thread is
//!   blocked in its poller between round trips. Median and p99 in µs.
//! - `post`: one producer thread posts `n` callbacks as fast as it can; the rate is `n`
//!   over the time from the first post to the last callback run on the loop.

use std::cell::Cell;
use std::hint::spin_loop;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{percentile, pin_current_thread, Report};

pub(crate) static ACK: AtomicU64 = AtomicU64::new(0);
/// When the last posted callback ran (the `post` workload).
static END: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
static DONE: tokio::sync::Notify = tokio::sync::Notify::const_new();
static REQ: AtomicU64 = AtomicU64::new(0);
const STOP: u64 = u64::MAX;
const WARMUP: u64 = 1_000;
/// Pause between round trips, in ns (see [`ping_pong`]); 0 for back-to-back.
static GAP_NS: AtomicU64 = AtomicU64::new(20_000);

thread_local! {
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

pub(crate) fn spawn_worker<T: Send + 'static>(
    cpu: Option<usize>,
    f: impl FnOnce() -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    thread::spawn(move || {
        if let Some(cpu) = cpu {
            pin_current_thread(cpu);
        }
        f()
    })
}

/// The worker side of the ping-pong: `post(k)` must make the loop store `k` in `ACK`.
///
/// Between round trips the worker spins for `GAP_NS` (20 µs by default) so that the loop thread is asleep in its
/// poller when the next post arrives: this measures a wakeup from idle, not a loop that
/// happens to still be busy with the previous round trip.
pub(crate) fn ping_pong(n: u64, mut post: impl FnMut(u64)) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(n as usize);
    let pause = Duration::from_nanos(GAP_NS.load(Ordering::Relaxed));
    for k in 1..=WARMUP + n {
        let gap = Instant::now();
        while gap.elapsed() < pause {
            spin_loop();
        }
        let t = Instant::now();
        post(k);
        while ACK.load(Ordering::Acquire) != k {
            spin_loop();
        }
        if k > WARMUP {
            samples.push(t.elapsed());
        }
    }
    samples
}

pub(crate) fn rtt_report(
    workload: &str,
    imp: &str,
    mut samples: Vec<Duration>,
    note: &str,
) -> Report {
    samples.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mean = samples.iter().sum::<Duration>() / samples.len().max(1) as u32;
    Report::new(workload, imp, samples.len())
        .metric("median_us", us(percentile(&samples, 50.0)))
        .metric("p99_us", us(percentile(&samples, 99.0)))
        .metric("mean_us", us(mean))
        .note(note)
}

pub fn rtt(
    workload: &str,
    imp: &str,
    n: Option<usize>,
    cpu: Option<usize>,
) -> Result<Report, String> {
    let n = n.unwrap_or(100_000) as u64;
    if workload == "rtt-b2b" {
        GAP_NS.store(0, Ordering::Relaxed);
    }
    let (samples, note) = match imp {
        "ioloop" => (rtt_ioloop(n, cpu), "Remote::add_callback; loop in start()"),
        "floor" => (
            rtt_floor_polling(n, cpu),
            "raw polling::Poller::notify + wait(None) ping-pong",
        ),
        "floor-eventfd" => (
            rtt_floor_eventfd(n, cpu),
            "raw eventfd: write(2) / blocking read(2)",
        ),
        "tokio" => (
            rtt_tokio(n, cpu, true),
            "Handle::spawn onto current_thread (IO driver on: parks in epoll)",
        ),
        "calloop" => (
            rtt_calloop(n, cpu),
            "calloop::channel::Sender::send; loop in run()",
        ),
        _ => return Err(format!("rtt: unknown implementation {imp}")),
    };
    Ok(rtt_report(workload, imp, samples, note))
}

fn rtt_ioloop(n: u64, cpu: Option<usize>) -> Vec<Duration> {
    let ioloop = ioloop::IoLoop::new().unwrap();
    let remote = ioloop.remote();
    let worker = spawn_worker(cpu, move || {
        let s = ping_pong(n, |k| {
            remote
                .add_callback(move |_| ACK.store(k, Ordering::Release))
                .unwrap()
        });
        remote.stop();
        s
    });
    ioloop.start().unwrap();
    worker.join().unwrap()
}

fn rtt_floor_polling(n: u64, cpu: Option<usize>) -> Vec<Duration> {
    let poller = Arc::new(polling::Poller::new().unwrap());
    let p = poller.clone();
    let worker = spawn_worker(cpu, move || {
        let s = ping_pong(n, |k| {
            REQ.store(k, Ordering::Release);
            p.notify().unwrap();
        });
        REQ.store(STOP, Ordering::Release);
        p.notify().unwrap();
        s
    });
    let mut events = polling::Events::new();
    loop {
        events.clear();
        poller.wait(&mut events, None).unwrap();
        let r = REQ.load(Ordering::Acquire);
        if r == STOP {
            break;
        }
        ACK.store(r, Ordering::Release);
    }
    worker.join().unwrap()
}

pub(crate) fn rtt_floor_eventfd(n: u64, cpu: Option<usize>) -> Vec<Duration> {
    // SAFETY: plain syscalls on an fd we own for the whole function.
    let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    assert!(efd >= 0);
    let signal = move || {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64.
        let r = unsafe { libc::write(efd, (&one as *const u64).cast(), 8) };
        assert_eq!(r, 8);
    };
    let worker = spawn_worker(cpu, move || {
        let s = ping_pong(n, |k| {
            REQ.store(k, Ordering::Release);
            signal();
        });
        REQ.store(STOP, Ordering::Release);
        signal();
        s
    });
    loop {
        let mut buf: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64.
        let r = unsafe { libc::read(efd, (&mut buf as *mut u64).cast(), 8) };
        assert_eq!(r, 8);
        let r = REQ.load(Ordering::Acquire);
        if r == STOP {
            break;
        }
        ACK.store(r, Ordering::Release);
    }
    let samples = worker.join().unwrap();
    // SAFETY: closing the fd we opened.
    unsafe { libc::close(efd) };
    samples
}

fn rtt_tokio(n: u64, cpu: Option<usize>, io: bool) -> Vec<Duration> {
    let mut b = tokio::runtime::Builder::new_current_thread();
    if io {
        b.enable_io();
    }
    let rt = b.build().unwrap();
    let handle = rt.handle().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<Vec<Duration>>();
    let worker = spawn_worker(cpu, move || {
        let s = ping_pong(n, |k| {
            drop(handle.spawn(async move { ACK.store(k, Ordering::Release) }));
        });
        let _ = tx.send(s);
    });
    let samples = rt.block_on(rx).unwrap();
    worker.join().unwrap();
    samples
}

fn rtt_calloop(n: u64, cpu: Option<usize>) -> Vec<Duration> {
    use calloop::channel::{channel, Event};
    let mut event_loop: calloop::EventLoop<'static, ()> = calloop::EventLoop::try_new().unwrap();
    let (tx, rx) = channel::<u64>();
    event_loop
        .handle()
        .insert_source(rx, |e, _, _| {
            if let Event::Msg(k) = e {
                ACK.store(k, Ordering::Release);
            }
        })
        .unwrap();
    let signal = event_loop.get_signal();
    let worker = spawn_worker(cpu, move || {
        let s = ping_pong(n, |k| tx.send(k).unwrap());
        signal.stop();
        signal.wakeup();
        s
    });
    event_loop.run(None, &mut (), |_| {}).unwrap();
    worker.join().unwrap()
}

fn post_report(imp: &str, n: usize, elapsed: Duration, post_ns: f64, note: &str) -> Report {
    Report::new("post", imp, n)
        .metric("cb_per_s", n as f64 / elapsed.as_secs_f64())
        .metric("producer_ns_per_post", post_ns)
        .note(note)
}

/// Run on the loop thread by every posted callback; returns true at the last one.
#[inline]
fn count_one(i: u64, n: u64) -> bool {
    COUNT.with(|c| {
        let v = c.get() + 1;
        c.set(v);
        std::hint::black_box(i);
        v == n
    })
}

pub fn post(imp: &str, n: Option<usize>, cpu: Option<usize>) -> Result<Report, String> {
    let n = n.unwrap_or(1_000_000);
    let (elapsed, post_ns, note) = match imp {
        "ioloop" => {
            let (e, p) = post_ioloop(n as u64, cpu);
            (e, p, "Remote::add_callback x n; loop in start()")
        }
        "floor" => {
            let (e, p) = post_floor(n as u64, cpu);
            (
                e,
                p,
                "Mutex<Vec<Box<dyn FnOnce + Send>>>, Poller::notify on empty->non-empty, swap-drain",
            )
        }
        "tokio" => {
            let (e, p) = post_tokio(n as u64, cpu);
            (e, p, "Handle::spawn x n onto current_thread")
        }
        "calloop" => {
            let (e, p) = post_calloop(n as u64, cpu);
            (
                e,
                p,
                "calloop::channel::Sender::send(u64) x n (a message, not a boxed closure)",
            )
        }
        _ => return Err(format!("post: unknown implementation {imp}")),
    };
    Ok(post_report(imp, n, elapsed, post_ns, note))
}

/// Spawns the producer: it records the start time, calls `post(i)` for `0..n`, and
/// returns (start, ns per post).
fn producer(
    n: u64,
    cpu: Option<usize>,
    mut post: impl FnMut(u64) + Send + 'static,
) -> thread::JoinHandle<(Instant, f64)> {
    spawn_worker(cpu, move || {
        let t0 = Instant::now();
        for i in 0..n {
            post(i);
        }
        (t0, t0.elapsed().as_nanos() as f64 / n as f64)
    })
}

fn post_ioloop(n: u64, cpu: Option<usize>) -> (Duration, f64) {
    let ioloop = ioloop::IoLoop::new().unwrap();
    let remote = ioloop.remote();
    let worker = producer(n, cpu, move |i| {
        remote
            .add_callback(move |l| {
                if count_one(i, n) {
                    let _ = END.set(Instant::now());
                    l.stop();
                }
            })
            .unwrap();
    });
    ioloop.start().unwrap();
    let (t0, per) = worker.join().unwrap();
    (*END.get().unwrap() - t0, per)
}

fn post_floor(n: u64, cpu: Option<usize>) -> (Duration, f64) {
    type Cb = Box<dyn FnOnce() -> bool + Send>;
    struct Shared {
        poller: polling::Poller,
        queue: std::sync::Mutex<Vec<Cb>>,
    }
    let shared = Arc::new(Shared {
        poller: polling::Poller::new().unwrap(),
        queue: std::sync::Mutex::new(Vec::new()),
    });
    let s = shared.clone();
    let worker = producer(n, cpu, move |i| {
        let was_empty = {
            let mut q = s.queue.lock().unwrap();
            let was_empty = q.is_empty();
            q.push(Box::new(move || count_one(i, n)));
            was_empty
        };
        if was_empty {
            s.poller.notify().unwrap();
        }
    });
    let mut events = polling::Events::new();
    let mut local: Vec<Cb> = Vec::new();
    let end = 'outer: loop {
        std::mem::swap(&mut *shared.queue.lock().unwrap(), &mut local);
        if local.is_empty() {
            events.clear();
            shared.poller.wait(&mut events, None).unwrap();
            continue;
        }
        for cb in local.drain(..) {
            if cb() {
                break 'outer Instant::now();
            }
        }
    };
    let (t0, per) = worker.join().unwrap();
    (end - t0, per)
}

fn post_tokio(n: u64, cpu: Option<usize>) -> (Duration, f64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let handle = rt.handle().clone();
    let worker = producer(n, cpu, move |i| {
        drop(handle.spawn(async move {
            if count_one(i, n) {
                let _ = END.set(Instant::now());
                DONE.notify_one();
            }
        }));
    });
    rt.block_on(DONE.notified());
    let (t0, per) = worker.join().unwrap();
    (*END.get().unwrap() - t0, per)
}

fn post_calloop(n: u64, cpu: Option<usize>) -> (Duration, f64) {
    use calloop::channel::{channel, Event};
    let mut event_loop: calloop::EventLoop<'static, Option<Instant>> =
        calloop::EventLoop::try_new().unwrap();
    let (tx, rx) = channel::<u64>();
    let signal = event_loop.get_signal();
    event_loop
        .handle()
        .insert_source(rx, move |e, _, end: &mut Option<Instant>| {
            if let Event::Msg(i) = e {
                if count_one(i, n) {
                    *end = Some(Instant::now());
                    signal.stop();
                }
            }
        })
        .unwrap();
    let worker = producer(n, cpu, move |i| tx.send(i).unwrap());
    let mut end = None;
    event_loop.run(None, &mut end, |_| {}).unwrap();
    let (t0, per) = worker.join().unwrap();
    (end.unwrap() - t0, per)
}
