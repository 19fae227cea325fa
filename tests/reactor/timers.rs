//! Timeouts on a manual clock: ordering, never early, removal, memory.

use crate::common;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use common::{manual_loop, Trace};
use ioloop::testing::step;
use ioloop::IoLoop;

const MS: Duration = Duration::from_millis(1);

#[test]
fn equal_deadlines_fire_in_insertion_order() {
    let (ioloop, clock) = manual_loop();
    let trace = Trace::default();
    let deadline = clock.now() + 10 * MS;
    for i in 0..50 {
        let t = trace.clone();
        ioloop.add_timeout(deadline, move |_| t.push(i.to_string()));
    }
    clock.advance(10 * MS);
    step(&ioloop);
    let expected: Vec<String> = (0..50).map(|i| i.to_string()).collect();
    assert_eq!(trace.take(), expected);
}

#[test]
fn timeouts_fire_in_deadline_order_not_insertion_order() {
    let (ioloop, clock) = manual_loop();
    let trace = Trace::default();
    for ms in [30u32, 10, 20] {
        let t = trace.clone();
        ioloop.call_later(ms * MS, move |_| t.push(ms.to_string()));
    }
    clock.advance(30 * MS);
    step(&ioloop);
    assert_eq!(trace.take(), ["10", "20", "30"]);
}

#[test]
fn a_timeout_never_fires_early() {
    let (ioloop, clock) = manual_loop();
    let fired = Rc::new(Cell::new(false));
    let f = fired.clone();
    ioloop.add_timeout(10 * MS, move |_| f.set(true));
    clock.advance(10 * MS - Duration::from_nanos(1));
    step(&ioloop);
    assert!(!fired.get());
    assert_eq!(ioloop.poll_timeout(), Some(Duration::from_nanos(1)));
    clock.advance(Duration::from_nanos(1));
    step(&ioloop);
    assert!(fired.get());
}

#[test]
fn deadlines_can_be_absolute_or_relative() {
    let (ioloop, clock) = manual_loop();
    let trace = Trace::default();
    let (a, b) = (trace.clone(), trace.clone());
    ioloop.add_timeout(clock.now() + 5 * MS, move |_| a.push("instant"));
    ioloop.add_timeout(5 * MS, move |_| b.push("duration"));
    clock.advance(5 * MS);
    step(&ioloop);
    assert_eq!(trace.take(), ["instant", "duration"]);
}

#[test]
fn call_later_and_call_at_follow_the_loop_clock() {
    let (ioloop, clock) = manual_loop();
    let trace = Trace::default();
    let (a, b) = (trace.clone(), trace.clone());
    ioloop.call_at(ioloop.time() + 2 * MS, move |_| a.push("at"));
    ioloop.call_later(MS, move |_| b.push("later"));
    assert_eq!(ioloop.time(), clock.now());
    clock.advance(2 * MS);
    step(&ioloop);
    assert_eq!(trace.take(), ["later", "at"]);
}

/// Counts live instances, so a test can see when a closure is dropped.
struct DropCounter(Rc<Cell<usize>>);
impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn remove_timeout_drops_the_closure_immediately() {
    let (ioloop, _clock) = manual_loop();
    let drops = Rc::new(Cell::new(0));
    let guard = DropCounter(drops.clone());
    let t = ioloop.call_later(Duration::from_secs(3600), move |_| drop(guard));
    assert_eq!(drops.get(), 0);
    assert!(ioloop.remove_timeout(t));
    assert_eq!(drops.get(), 1);
}

#[test]
fn remove_timeout_after_it_fired_is_a_no_op() {
    let (ioloop, clock) = manual_loop();
    let fired = Rc::new(Cell::new(0));
    let f = fired.clone();
    let t = ioloop.call_later(MS, move |_| f.set(f.get() + 1));
    clock.advance(MS);
    step(&ioloop);
    assert_eq!(fired.get(), 1);
    assert!(!ioloop.remove_timeout(t));
    // A newer timeout that may reuse the slot is not affected by the stale handle.
    let g = fired.clone();
    ioloop.call_later(MS, move |_| g.set(g.get() + 1));
    assert!(!ioloop.remove_timeout(t));
    clock.advance(MS);
    step(&ioloop);
    assert_eq!(fired.get(), 2);
}

#[test]
fn a_timeout_removed_by_a_callback_of_the_same_iteration_does_not_fire() {
    let (ioloop, clock) = manual_loop();
    let fired = Rc::new(Cell::new(false));
    let f = fired.clone();
    let t = ioloop.call_later(MS, move |_| f.set(true));
    clock.advance(MS);
    // The timeout is due when the iteration starts, and collected before callbacks run.
    ioloop.add_callback(move |ioloop| assert!(ioloop.remove_timeout(t)));
    step(&ioloop);
    assert!(!fired.get());
}

#[test]
fn a_timeout_removed_by_an_earlier_timeout_of_the_same_batch_does_not_fire() {
    let (ioloop, clock) = manual_loop();
    let fired = Rc::new(Cell::new(false));
    let f = fired.clone();
    let victim = Rc::new(Cell::new(None));
    let v = victim.clone();
    ioloop.call_later(MS, move |ioloop| {
        assert!(ioloop.remove_timeout(v.get().unwrap()));
    });
    victim.set(Some(ioloop.call_later(MS, move |_| f.set(true))));
    clock.advance(MS);
    step(&ioloop);
    assert!(!fired.get());
    assert_eq!(ioloop.stats().timeouts_pending, 0);
}

#[test]
fn a_due_timeout_added_by_a_timeout_waits_for_the_next_iteration() {
    // tornado#947: collecting due timers first means this cannot loop forever.
    let (ioloop, clock) = manual_loop();
    let trace = Trace::default();
    let t = trace.clone();
    ioloop.call_later(MS, move |ioloop| {
        t.push("first");
        let t2 = t.clone();
        ioloop.call_later(Duration::ZERO, move |_| t2.push("second"));
    });
    clock.advance(MS);
    step(&ioloop);
    assert_eq!(trace.take(), ["first"]);
    step(&ioloop);
    assert_eq!(trace.take(), ["second"]);
}

#[test]
fn cancelled_far_future_timeouts_do_not_grow_memory() {
    let (ioloop, _clock) = manual_loop();
    let keep = ioloop.call_later(Duration::from_secs(7200), |_| {});
    let mut peak = 0;
    for _ in 0..100_000 {
        let t = ioloop.call_later(Duration::from_secs(3600), |_| {});
        assert!(ioloop.remove_timeout(t));
        peak = peak.max(ioloop.stats().timer_heap_entries);
    }
    // Tornado's rule: compact once more than 512 stale entries are over half the heap.
    assert!(peak <= 1026, "heap grew to {peak} entries");
    assert_eq!(ioloop.stats().timeouts_pending, 1);
    assert!(ioloop.remove_timeout(keep));
}

#[test]
fn cancelled_timeouts_are_also_compacted_while_the_loop_runs() {
    let (ioloop, clock) = manual_loop();
    let fired = Rc::new(Cell::new(0));
    for round in 0..200u32 {
        let handles: Vec<_> = (0..1000)
            .map(|_| ioloop.call_later(Duration::from_secs(3600), |_| {}))
            .collect();
        for h in handles {
            ioloop.remove_timeout(h);
        }
        let f = fired.clone();
        ioloop.call_later(MS, move |_| f.set(f.get() + 1));
        clock.advance(MS);
        step(&ioloop);
        assert_eq!(fired.get(), round + 1);
        assert!(ioloop.stats().timer_heap_entries <= 1026);
    }
}

#[test]
fn timeouts_on_a_closed_loop_are_dropped() {
    let ioloop = IoLoop::new().unwrap();
    ioloop.close(true).unwrap();
    let drops = Rc::new(Cell::new(0));
    let guard = DropCounter(drops.clone());
    let t = ioloop.call_later(MS, move |_| drop(guard));
    assert_eq!(drops.get(), 1);
    assert!(!ioloop.remove_timeout(t));
}

#[test]
fn system_clock_timeouts_fire_with_a_blocking_start() {
    let ioloop = IoLoop::new().unwrap();
    let started = std::time::Instant::now();
    ioloop.call_later(5 * MS, |ioloop| ioloop.stop());
    ioloop.start().unwrap();
    assert!(started.elapsed() >= 5 * MS);
}

#[test]
fn deadlines_before_the_loop_was_made_fire_in_deadline_order() {
    let (ioloop, clock) = manual_loop();
    let trace = Trace::default();
    let created = clock.now();
    for ms in [1u32, 5, 3] {
        let t = trace.clone();
        ioloop.add_timeout(created - ms * MS, move |_| t.push(format!("-{ms}")));
    }
    step(&ioloop);
    assert_eq!(trace.take(), ["-5", "-3", "-1"]);
}

#[test]
fn a_timeout_handle_from_another_loop_is_left_alone() {
    let (a, clock) = manual_loop();
    let b = IoLoop::builder().clock(clock.clone()).build().unwrap();
    let fired = Rc::new(Cell::new(false));
    let f = fired.clone();
    let in_a = a.call_later(MS, move |_| f.set(true));
    let in_b = b.call_later(MS, |_| {});
    assert!(!a.remove_timeout(in_b), "b's handle names nothing of a's");
    assert!(b.remove_timeout(in_b));
    assert_ne!(in_a, in_b);
    clock.advance(MS);
    step(&a);
    assert!(fired.get(), "a's timeout was not cancelled by b's handle");
}

#[test]
fn after_a_mass_firing_the_heap_holds_no_more_than_twice_the_live_timeouts() {
    let (ioloop, clock) = manual_loop();
    for _ in 0..20_000 {
        ioloop.call_later(MS, |_| {});
    }
    let far: Vec<_> = (0..10_000)
        .map(|_| ioloop.call_later(Duration::from_secs(3600), |_| {}))
        .collect();
    let kept = ioloop.call_later(Duration::from_secs(3600), |_| {});
    for t in far {
        ioloop.remove_timeout(t);
    }
    clock.advance(MS);
    step(&ioloop);
    let stats = ioloop.stats();
    assert_eq!(stats.timeouts_pending, 1);
    let live = stats.timeouts_pending;
    assert!(
        stats.timer_heap_entries <= (2 * live).max(live + 512),
        "{} heap entries for {live} live timeout",
        stats.timer_heap_entries
    );
    assert!(ioloop.remove_timeout(kept));
}
