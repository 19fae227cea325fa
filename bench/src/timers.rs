//! Workload 1, the timer storm: `n` timers with deadlines spread over 1 s (same
//! pseudo-random order for everyone), every other one cancelled, the rest fired.
//!
//! Phases are timed separately: add (ns per timer), cancel (ns per cancelled timer), fire
//! (ns per fired timer). CPU is user+sys over the three phases; `rss_kb_per_1k` is the
//! growth of peak RSS over the storm, per 1000 timers (the closure, 8 captured bytes, is
//! included, and so are the bench's own handle vectors, which are touched before the
//! baseline is taken).

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::util::{ns_per, offsets_ns, usage, Report, Usage};

thread_local! {
    static FIRED: Cell<u64> = const { Cell::new(0) };
    static SUM: Cell<u64> = const { Cell::new(0) };
    static POLLED: Cell<u64> = const { Cell::new(0) };
    static DROPPED: Cell<u64> = const { Cell::new(0) };
}

const SPREAD: Duration = Duration::from_secs(1);

#[inline]
/// The `n` deadlines of the storm, `base` plus the shared pseudo-random offsets.
fn deadlines_after<I: Copy + std::ops::Add<Duration, Output = I>>(base: I, n: usize) -> Vec<I> {
    offsets_ns(n, SPREAD)
        .into_iter()
        .map(|o| base + Duration::from_nanos(o))
        .collect()
}

fn fire(i: u64) {
    FIRED.with(|f| f.set(f.get() + 1));
    SUM.with(|s| s.set(s.get().wrapping_add(i)));
}

fn fired() -> u64 {
    FIRED.with(Cell::get)
}

struct Phases {
    add: Duration,
    cancel: Duration,
    fire: Duration,
    before: Usage,
    after: Usage,
}

fn report(imp: &str, n: usize, p: Phases, note: &str) -> Report {
    let cancelled = n / 2;
    let fired_n = n - cancelled;
    let rss_delta_kb = p.after.maxrss_kb.saturating_sub(p.before.maxrss_kb);
    Report::new("timers", imp, n)
        .metric("add_ns", ns_per(p.add, n))
        .metric("cancel_ns", ns_per(p.cancel, cancelled))
        .metric("fire_ns", ns_per(p.fire, fired_n))
        .metric(
            "cpu_ms",
            (p.after.cpu.saturating_sub(p.before.cpu)).as_secs_f64() * 1e3,
        )
        .metric("maxrss_mb", p.after.maxrss_kb as f64 / 1024.0)
        .metric("bytes_per_timer", rss_delta_kb as f64 * 1024.0 / n as f64)
        .note(note)
}

pub fn run(imp: &str, n: Option<usize>) -> Result<Report, String> {
    match imp {
        "ioloop" => Ok(ioloop("ioloop", n.unwrap_or(1_000_000))),
        // At calloop's size, whose storm cannot be larger (its cancel is O(pending)): the
        // heap is shallower at 20 000 timers, so its rows compare with this one.
        "ioloop-20k" => Ok(ioloop("ioloop-20k", n.unwrap_or(20_000))),
        "floor" => Ok(floor(n.unwrap_or(1_000_000))),
        "tokio" => Ok(tokio(n.unwrap_or(1_000_000))),
        "calloop" => Ok(calloop(n.unwrap_or(20_000))),
        _ => Err(format!("timers: unknown implementation {imp}")),
    }
}

fn ioloop(name: &str, n: usize) -> Report {
    use ioloop::{IoLoop, ManualClock, Timeout};
    let clock = ManualClock::new();
    let ioloop = IoLoop::builder().clock(clock.clone()).build().unwrap();
    let base = clock.now();
    let deadlines = deadlines_after(base, n);
    let mut handles: Vec<Option<Timeout>> = vec![None; n];
    let before = usage();

    let t = Instant::now();
    for (i, (&d, h)) in deadlines.iter().zip(handles.iter_mut()).enumerate() {
        let i = i as u64;
        *h = Some(ioloop.add_timeout(d, move |_| fire(i)));
    }
    let add = t.elapsed();

    let t = Instant::now();
    for h in handles.iter().skip(1).step_by(2) {
        ioloop.remove_timeout(h.unwrap());
    }
    let cancel = t.elapsed();
    assert_eq!(fired(), 0);

    let t = Instant::now();
    clock.advance(SPREAD + Duration::from_millis(1));
    let target = (n - n / 2) as u64;
    while fired() < target {
        ioloop.run_once(Duration::ZERO).unwrap();
    }
    let fire_t = t.elapsed();
    let after = usage();
    assert_eq!(ioloop.stats().timeouts_pending, 0);
    report(
        name,
        n,
        Phases {
            add,
            cancel,
            fire: fire_t,
            before,
            after,
        },
        "ManualClock advanced past the last deadline; fired with run_once(ZERO)",
    )
}

/// The floor: a bare `BinaryHeap<Reverse<(deadline, seq, slot)>>` and a slab of boxed
/// closures; cancel frees the slot and leaves the heap entry to be skipped.
fn floor(n: usize) -> Report {
    use slab::Slab;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    type Cb = Box<dyn FnOnce()>;
    let deadlines = offsets_ns(n, SPREAD);
    let mut handles: Vec<(usize, u64)> = vec![(0, 0); n];
    let mut heap: BinaryHeap<Reverse<(u64, u64, usize)>> = BinaryHeap::new();
    let mut slots: Slab<(u64, Cb)> = Slab::new();
    let before = usage();

    let t = Instant::now();
    for (i, (&d, h)) in deadlines.iter().zip(handles.iter_mut()).enumerate() {
        let seq = i as u64;
        let slot = slots.insert((seq, Box::new(move || fire(seq))));
        heap.push(Reverse((d, seq, slot)));
        *h = (slot, seq);
    }
    let add = t.elapsed();

    let t = Instant::now();
    for &(slot, seq) in handles.iter().skip(1).step_by(2) {
        if slots.get(slot).is_some_and(|s| s.0 == seq) {
            drop(slots.remove(slot));
        }
    }
    let cancel = t.elapsed();

    let t = Instant::now();
    let now = SPREAD.as_nanos() as u64 + 1_000_000;
    while let Some(&Reverse((d, seq, slot))) = heap.peek() {
        if d > now {
            break;
        }
        heap.pop();
        if slots.get(slot).is_some_and(|s| s.0 == seq) {
            (slots.remove(slot).1)();
        }
    }
    let fire_t = t.elapsed();
    let after = usage();
    assert_eq!(fired(), (n - n / 2) as u64);
    report(
        "floor",
        n,
        Phases {
            add,
            cancel,
            fire: fire_t,
            before,
            after,
        },
        "BinaryHeap + slab of boxed closures, lazy cancel",
    )
}

struct DropCount;

impl Drop for DropCount {
    fn drop(&mut self) {
        DROPPED.with(|d| d.set(d.get() + 1));
    }
}

/// tokio current_thread with paused time: one spawned task per timer sleeping until its
/// deadline; cancel = `JoinHandle::abort`. The add phase lasts until every task has been
/// polled once (the sleep is registered in the wheel only then); the cancel phase until
/// every aborted task has been dropped.
fn tokio(n: usize) -> Report {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async move {
        use tokio::task::yield_now;
        let base = tokio::time::Instant::now();
        let deadlines = deadlines_after(base, n);
        let mut handles: Vec<Option<tokio::task::JoinHandle<()>>> =
            std::iter::repeat_with(|| None).take(n).collect();
        let before = usage();

        let t = Instant::now();
        for (i, (&d, h)) in deadlines.iter().zip(handles.iter_mut()).enumerate() {
            let i = i as u64;
            *h = Some(tokio::spawn(async move {
                let _guard = DropCount;
                POLLED.with(|p| p.set(p.get() + 1));
                tokio::time::sleep_until(d).await;
                fire(i);
            }));
        }
        while POLLED.with(Cell::get) < n as u64 {
            yield_now().await;
        }
        let add = t.elapsed();

        let t = Instant::now();
        for h in handles.iter().skip(1).step_by(2) {
            h.as_ref().unwrap().abort();
        }
        while DROPPED.with(Cell::get) < (n / 2) as u64 {
            yield_now().await;
        }
        let cancel = t.elapsed();
        assert_eq!(fired(), 0, "tokio auto-advanced the paused clock");

        let t = Instant::now();
        tokio::time::advance(SPREAD + Duration::from_millis(1)).await;
        let target = (n - n / 2) as u64;
        while fired() < target {
            yield_now().await;
        }
        let fire_t = t.elapsed();
        let after = usage();
        drop(handles);
        report(
            "tokio",
            n,
            Phases {
                add,
                cancel,
                fire: fire_t,
                before,
                after,
            },
            "spawned sleep_until tasks on paused time; add includes first poll, cancel includes reaping the aborted task",
        )
    })
}

/// calloop `Timer` sources. calloop timers use the real clock, so the deadlines are in the
/// past (spread over the second that ended 2 s ago) and all are due at the first dispatch.
/// Default n is 20 000, not 10^6: calloop's cancel (`TimerWheel::cancel`) is a
/// `BinaryHeap::retain`, O(pending), so 500 000 cancels of 10^6 would take hours.
fn calloop(n: usize) -> Report {
    use calloop::timer::{TimeoutAction, Timer};
    use calloop::{EventLoop, RegistrationToken};
    let mut event_loop: EventLoop<'static, u64> = EventLoop::try_new().unwrap();
    let handle = event_loop.handle();
    let base = Instant::now() - SPREAD - Duration::from_secs(1);
    let deadlines = deadlines_after(base, n);
    let mut handles: Vec<Option<RegistrationToken>> = vec![None; n];
    let before = usage();

    let t = Instant::now();
    for (i, (&d, h)) in deadlines.iter().zip(handles.iter_mut()).enumerate() {
        let i = i as u64;
        let token = handle
            .insert_source(Timer::from_deadline(d), move |_, _, count: &mut u64| {
                *count += 1;
                fire(i);
                TimeoutAction::Drop
            })
            .unwrap();
        *h = Some(token);
    }
    let add = t.elapsed();

    let t = Instant::now();
    for h in handles.iter().skip(1).step_by(2) {
        handle.remove(h.unwrap());
    }
    let cancel = t.elapsed();

    let t = Instant::now();
    let target = (n - n / 2) as u64;
    let mut count = 0u64;
    while count < target {
        event_loop.dispatch(Duration::ZERO, &mut count).unwrap();
    }
    let fire_t = t.elapsed();
    let after = usage();
    report(
        "calloop",
        n,
        Phases {
            add,
            cancel,
            fire: fire_t,
            before,
            after,
        },
        "real-clock deadlines already in the past; n reduced because cancel is O(pending)",
    )
}

/// The batch of the hardening issue's finding 3: 100 000 pending far-future timeouts,
/// 60 000 cancelled entries and 20 000 live ones due in the same batch, each of which
/// removes one far-future timeout when it runs. Reports the batch's wall time (a loop
/// that compacted its heap on every removal took 5 s here).
pub fn cancel_in_batch(imp: &str) -> Result<Report, String> {
    use ioloop::{IoLoop, ManualClock, Timeout};
    use std::cell::RefCell;
    use std::rc::Rc;
    if imp != "ioloop" {
        return Err(format!("timer-batch: unknown implementation {imp}"));
    }
    let clock = ManualClock::new();
    let ioloop = IoLoop::builder().clock(clock.clone()).build().unwrap();
    let now = clock.now();
    let far: Vec<Timeout> = (0..100_000)
        .map(|_| ioloop.add_timeout(Duration::from_secs(3600), |_| {}))
        .collect();
    let cancelled: Vec<Timeout> = (0..60_000)
        .map(|_| ioloop.add_timeout(now, |_| {}))
        .collect();
    let far = Rc::new(RefCell::new(far));
    for _ in 0..20_000 {
        let far = far.clone();
        ioloop.add_timeout(now, move |ioloop| {
            let victim = far.borrow_mut().pop().expect("one per due timeout");
            ioloop.remove_timeout(victim);
        });
    }
    for t in cancelled {
        ioloop.remove_timeout(t);
    }
    let t = Instant::now();
    ioloop.run_once(Duration::ZERO).unwrap();
    let batch = t.elapsed();
    assert_eq!(ioloop.stats().timeouts_pending, 80_000);
    Ok(Report::new("timer-batch", "ioloop", 20_000)
        .metric("batch_ms", batch.as_secs_f64() * 1e3)
        .metric("heap_entries", ioloop.stats().timer_heap_entries as f64)
        .note("100k far-future + 60k cancelled-due + 20k due that each remove one far-future timeout; one run_once"))
}
