//! Workload 2, callback throughput.
//!
//! - `chained`: each callback schedules the next (on ioloop one loop iteration per
//!   callback, Tornado's order); ns per callback over the whole chain.
//! - `batch`: batches of `batch` callbacks queued, then one loop iteration runs them.
//!
//! Every closure captures 8 bytes (its index), so boxing it allocates everywhere.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::util::{ns_per, usage, Report};

thread_local! {
    static RAN: Cell<u64> = const { Cell::new(0) };
    static SUM: Cell<u64> = const { Cell::new(0) };
}

#[inline]
pub(crate) fn work(i: u64) {
    RAN.with(|r| r.set(r.get() + 1));
    SUM.with(|s| s.set(s.get().wrapping_add(i)));
}

pub(crate) fn ran() -> u64 {
    RAN.with(Cell::get)
}

/// What one counted operation of a workload is, and its metric names.
pub(crate) struct Unit {
    pub(crate) name: &'static str,
    pub(crate) ns: &'static str,
    pub(crate) cpu_ns: &'static str,
}

pub(crate) const CALLBACK: Unit = Unit {
    name: "callbacks",
    ns: "ns_per_cb",
    cpu_ns: "cpu_ns_per_cb",
};

/// A report of `n` operations of `unit` that took `elapsed` and `cpu`, checking that all
/// of them ran.
pub(crate) fn report(
    workload: &str,
    imp: &str,
    n: usize,
    (elapsed, cpu): (Duration, Duration),
    unit: &Unit,
    note: &str,
) -> Report {
    assert_eq!(ran(), n as u64, "{imp}: wrong number of {} ran", unit.name);
    Report::new(workload, imp, n)
        .metric(unit.ns, ns_per(elapsed, n))
        .metric(unit.cpu_ns, ns_per(cpu, n))
        .note(note)
}

/// Times `f` and the process CPU it used.
pub(crate) fn timed(f: impl FnOnce()) -> (Duration, Duration) {
    let u0 = usage();
    let t = Instant::now();
    f();
    let elapsed = t.elapsed();
    (elapsed, usage().cpu.saturating_sub(u0.cpu))
}

pub fn chained(imp: &str, n: Option<usize>) -> Result<Report, String> {
    let n = n.unwrap_or(10_000_000);
    let (elapsed, cpu, note) = match imp {
        "ioloop" => {
            let (e, c) = ioloop_chained(n, false);
            (e, c, "start(); each callback add_callback()s the next")
        }
        "ioloop-fd" => {
            let (e, c) = ioloop_chained(n, true);
            (
                e,
                c,
                "as ioloop, with one idle UnixStream registered for READ (a server always has one)",
            )
        }
        "floor" => {
            let (e, c) = floor_chained(n);
            (e, c, "VecDeque<Box<dyn FnOnce>> popped in a loop")
        }
        "tokio" => {
            let (e, c) = tokio_chained(n);
            (e, c, "LocalSet::spawn_local, each task spawns the next")
        }
        "calloop" => {
            let (e, c) = calloop_chained(n);
            (
                e,
                c,
                "insert_idle, each idle inserts the next; one dispatch(ZERO) per callback",
            )
        }
        _ => return Err(format!("chained: unknown implementation {imp}")),
    };
    Ok(report("chained", imp, n, (elapsed, cpu), &CALLBACK, note))
}

pub fn batch(imp: &str, n: Option<usize>, batch: usize) -> Result<Report, String> {
    let n = n.unwrap_or(10_000_000);
    let n = n / batch * batch;
    let (elapsed, cpu, note) = match imp {
        "ioloop" => {
            let (e, c) = ioloop_batch(n, batch, false);
            (e, c, "add_callback x batch, then run_once(ZERO)")
        }
        "ioloop-fd" => {
            let (e, c) = ioloop_batch(n, batch, true);
            (
                e,
                c,
                "as ioloop, with one idle UnixStream registered for READ",
            )
        }
        "floor" => {
            let (e, c) = floor_batch(n, batch);
            (
                e,
                c,
                "push x batch onto a VecDeque<Box<dyn FnOnce>>, then drain",
            )
        }
        "tokio" => {
            let (e, c) = tokio_batch(n, batch);
            (e, c, "spawn_local x batch, then yield until they ran")
        }
        "calloop" => {
            let (e, c) = calloop_batch(n, batch);
            (e, c, "insert_idle x batch, then dispatch(ZERO)")
        }
        _ => return Err(format!("batch: unknown implementation {imp}")),
    };
    Ok(report("batch", imp, n, (elapsed, cpu), &CALLBACK, note))
}

fn idle_fd(ioloop: &ioloop::IoLoop) -> std::os::unix::net::UnixStream {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    ioloop
        .add_handler(a, ioloop::Interest::READ, |_, _, _| {})
        .unwrap();
    b
}

fn ioloop_chained(n: usize, with_fd: bool) -> (Duration, Duration) {
    use ioloop::IoLoop;
    fn step(l: &IoLoop, i: u64, n: u64) {
        work(i);
        if i + 1 < n {
            l.add_callback(move |l| step(l, i + 1, n));
        } else {
            l.stop();
        }
    }
    let ioloop = IoLoop::new().unwrap();
    let _peer = with_fd.then(|| idle_fd(&ioloop));
    let n = n as u64;
    ioloop.add_callback(move |l| step(l, 0, n));
    timed(|| ioloop.start().unwrap())
}

fn ioloop_batch(n: usize, batch: usize, with_fd: bool) -> (Duration, Duration) {
    let ioloop = ioloop::IoLoop::new().unwrap();
    let _peer = with_fd.then(|| idle_fd(&ioloop));
    timed(|| {
        let mut i = 0u64;
        for _ in 0..n / batch {
            for _ in 0..batch {
                let k = i;
                ioloop.add_callback(move |_| work(k));
                i += 1;
            }
            ioloop.run_once(Duration::ZERO).unwrap();
        }
    })
}

type FloorCb = Box<dyn FnOnce(&mut Floor)>;

struct Floor {
    queue: std::collections::VecDeque<FloorCb>,
}

fn floor_chained(n: usize) -> (Duration, Duration) {
    fn step(f: &mut Floor, i: u64, n: u64) {
        work(i);
        if i + 1 < n {
            f.queue.push_back(Box::new(move |f| step(f, i + 1, n)));
        }
    }
    let mut floor = Floor {
        queue: Default::default(),
    };
    let n = n as u64;
    floor.queue.push_back(Box::new(move |f| step(f, 0, n)));
    timed(|| {
        while let Some(cb) = floor.queue.pop_front() {
            cb(&mut floor);
        }
    })
}

fn floor_batch(n: usize, batch: usize) -> (Duration, Duration) {
    let mut floor = Floor {
        queue: Default::default(),
    };
    timed(|| {
        let mut i = 0u64;
        for _ in 0..n / batch {
            for _ in 0..batch {
                let k = i;
                floor.queue.push_back(Box::new(move |_| work(k)));
                i += 1;
            }
            for _ in 0..batch {
                let cb = floor.queue.pop_front().unwrap();
                cb(&mut floor);
            }
        }
    })
}

pub(crate) fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn tokio_chained(n: usize) -> (Duration, Duration) {
    thread_local! {
        static DONE: std::cell::RefCell<Option<tokio::sync::oneshot::Sender<()>>> =
            const { std::cell::RefCell::new(None) };
    }
    fn step(i: u64, n: u64) {
        work(i);
        if i + 1 < n {
            tokio::task::spawn_local(async move { step(i + 1, n) });
        } else if let Some(tx) = DONE.with(|d| d.borrow_mut().take()) {
            let _ = tx.send(());
        }
    }
    let rt = tokio_rt();
    let local = tokio::task::LocalSet::new();
    let n = n as u64;
    timed(|| {
        local.block_on(&rt, async move {
            let (tx, rx) = tokio::sync::oneshot::channel();
            DONE.with(|d| *d.borrow_mut() = Some(tx));
            tokio::task::spawn_local(async move { step(0, n) });
            rx.await.unwrap();
        })
    })
}

fn tokio_batch(n: usize, batch: usize) -> (Duration, Duration) {
    let rt = tokio_rt();
    let local = tokio::task::LocalSet::new();
    timed(|| {
        local.block_on(&rt, async move {
            let mut i = 0u64;
            for _ in 0..n / batch {
                for _ in 0..batch {
                    let k = i;
                    tokio::task::spawn_local(async move { work(k) });
                    i += 1;
                }
                while ran() < i {
                    tokio::task::yield_now().await;
                }
            }
        })
    })
}

fn calloop_chained(n: usize) -> (Duration, Duration) {
    use calloop::{EventLoop, LoopHandle};
    struct Data {
        done: bool,
    }
    fn step(h: &LoopHandle<'static, Data>, d: &mut Data, i: u64, n: u64) {
        work(i);
        if i + 1 < n {
            let h2 = h.clone();
            h.insert_idle(move |d| step(&h2, d, i + 1, n));
        } else {
            d.done = true;
        }
    }
    let mut event_loop: EventLoop<'static, Data> = EventLoop::try_new().unwrap();
    let handle = event_loop.handle();
    let n = n as u64;
    let h = handle.clone();
    handle.insert_idle(move |d| step(&h, d, 0, n));
    let mut data = Data { done: false };
    timed(|| {
        while !data.done {
            event_loop.dispatch(Duration::ZERO, &mut data).unwrap();
        }
    })
}

fn calloop_batch(n: usize, batch: usize) -> (Duration, Duration) {
    use calloop::EventLoop;
    let mut event_loop: EventLoop<'static, ()> = EventLoop::try_new().unwrap();
    let handle = event_loop.handle();
    timed(|| {
        let mut i = 0u64;
        for _ in 0..n / batch {
            for _ in 0..batch {
                let k = i;
                handle.insert_idle(move |_| work(k));
                i += 1;
            }
            event_loop.dispatch(Duration::ZERO, &mut ()).unwrap();
        }
    })
}
