//! sleep, sleep_until, timeout and yield_now on the loop's timer heap, driven by a
//! ManualClock.

use crate::common;

use std::cell::Cell;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use common::{manual_loop, poll_once, DropFlag};
use ioloop::testing::step;
use ioloop::TimedOut;

#[test]
fn sleep_completes_on_the_iteration_its_timer_fires_never_before() {
    let (ioloop, clock) = manual_loop();
    let done = Rc::new(Cell::new(false));
    let d = done.clone();
    drop(ioloop.spawn(async move {
        ioloop::sleep(Duration::from_secs(10)).await;
        d.set(true);
    }));
    step(&ioloop); // first poll: deadline = now + 10 s
    assert_eq!(ioloop.stats().timeouts_pending, 1);
    clock.advance(Duration::from_millis(9_999));
    step(&ioloop);
    step(&ioloop);
    assert!(!done.get(), "not before the deadline");
    clock.advance(Duration::from_millis(1));
    step(&ioloop); // the timer fires and wakes the task
    step(&ioloop); // the task runs
    assert!(done.get());
    assert_eq!(ioloop.stats().timeouts_pending, 0);
}

#[test]
fn the_sleep_duration_counts_from_the_first_poll() {
    let (ioloop, clock) = manual_loop();
    let sleep = ioloop::sleep(Duration::from_secs(1));
    clock.advance(Duration::from_secs(5)); // before the first poll: does not count
    let mut task = ioloop.spawn(sleep);
    step(&ioloop);
    assert_eq!(ioloop.poll_timeout(), Some(Duration::from_secs(1)));
    clock.advance(Duration::from_secs(1));
    step(&ioloop);
    step(&ioloop);
    assert!(matches!(poll_once(&mut task), Poll::Ready(Ok(()))));
}

#[test]
fn sleep_until_a_past_deadline_resumes_on_the_next_iteration() {
    let (ioloop, clock) = manual_loop();
    let deadline = clock.now();
    clock.advance(Duration::from_secs(1));
    let mut task = ioloop.spawn(ioloop::sleep_until(deadline));
    step(&ioloop); // polled: the timer is already due
    assert!(poll_once(&mut task).is_pending());
    step(&ioloop); // fires
    step(&ioloop); // resumes
    assert!(matches!(poll_once(&mut task), Poll::Ready(Ok(()))));
}

#[test]
fn dropping_a_sleep_removes_its_timer() {
    let (ioloop, _) = manual_loop();
    let task = ioloop.spawn(ioloop::sleep(Duration::from_secs(3600)));
    step(&ioloop);
    assert_eq!(ioloop.stats().timeouts_pending, 1);
    task.cancel(); // drops the future, and with it the sleep
    assert_eq!(ioloop.stats().timeouts_pending, 0);
}

#[test]
fn timeout_gives_timed_out_and_drops_the_inner_future() {
    let (ioloop, clock) = manual_loop();
    let dropped = DropFlag::default();
    let guard = dropped.guard();
    let inner = async move {
        let _guard = guard;
        std::future::pending::<()>().await
    };
    let mut task = ioloop.spawn(ioloop::timeout(Duration::from_secs(2), inner));
    step(&ioloop);
    clock.advance(Duration::from_secs(2));
    step(&ioloop);
    step(&ioloop);
    assert!(matches!(
        poll_once(&mut task),
        Poll::Ready(Ok(Err(TimedOut)))
    ));
    assert!(dropped.is_dropped());
}

#[test]
fn timeout_passes_the_output_through_and_removes_its_timer() {
    let (ioloop, clock) = manual_loop();
    let mut task = ioloop.spawn(ioloop::timeout(
        Duration::from_secs(2),
        ioloop::sleep(Duration::from_secs(1)),
    ));
    step(&ioloop);
    assert_eq!(ioloop.stats().timeouts_pending, 2);
    clock.advance(Duration::from_secs(1));
    step(&ioloop);
    step(&ioloop);
    assert!(matches!(poll_once(&mut task), Poll::Ready(Ok(Ok(())))));
    assert_eq!(ioloop.stats().timeouts_pending, 0);
}

#[test]
fn when_the_future_and_the_deadline_are_ready_together_the_future_wins() {
    let (ioloop, clock) = manual_loop();
    let mut task = ioloop.spawn(ioloop::timeout(
        Duration::from_secs(1),
        ioloop::sleep(Duration::from_secs(1)),
    ));
    step(&ioloop);
    clock.advance(Duration::from_secs(1));
    step(&ioloop);
    step(&ioloop);
    assert!(matches!(poll_once(&mut task), Poll::Ready(Ok(Ok(())))));
}

#[test]
fn yield_now_gives_exactly_one_iteration() {
    let (ioloop, _) = manual_loop();
    let seen = Rc::new(Cell::new((0, 0)));
    let s = seen.clone();
    let handle = ioloop.clone();
    drop(ioloop.spawn(async move {
        let before = handle.stats().iterations;
        ioloop::yield_now().await;
        let after = handle.stats().iterations;
        s.set((before, after));
    }));
    for _ in 0..3 {
        step(&ioloop);
    }
    let (before, after) = seen.get();
    assert_eq!(after - before, 1);
}

#[test]
fn a_sleep_polled_by_a_new_task_wakes_that_task() {
    let (ioloop, clock) = manual_loop();
    let sleep = Rc::new(std::cell::RefCell::new(Some(ioloop::sleep(
        Duration::from_secs(1),
    ))));
    // The sleep is first polled with a waker that does nothing, then handed to task B.
    let s = sleep.clone();
    drop(ioloop.spawn(async move {
        let mut first = s.borrow_mut().take().unwrap();
        assert!(poll_once(&mut first).is_pending()); // armed with a no-op waker
        *s.borrow_mut() = Some(first);
    }));
    step(&ioloop);
    let s = sleep.clone();
    let mut b = ioloop.spawn(async move {
        let first = s.borrow_mut().take().unwrap();
        first.await
    });
    step(&ioloop); // B polls: the timer is re-armed with B's waker
    assert_eq!(ioloop.stats().timeouts_pending, 1);
    clock.advance(Duration::from_secs(1));
    step(&ioloop);
    step(&ioloop);
    assert!(matches!(poll_once(&mut b), Poll::Ready(Ok(()))));
}
