//! The I/O-check policy: a running loop whose callbacks keep rescheduling themselves
//! checks its sockets at least every `interval` iterations and as soon as `max_delay` has
//! passed, so I/O and timers are never starved beyond that bound; `run_once` always
//! checks; `interval` 1 is Tornado's check on every iteration.

use std::cell::Cell;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use ioloop::{Interest, IoLoop, ManualClock};

/// A loop on a manual clock with the given policy.
fn loop_with(interval: u32, max_delay: Duration) -> (IoLoop, ManualClock) {
    let clock = ManualClock::new();
    let ioloop = IoLoop::builder()
        .clock(clock.clone())
        .io_check(interval, max_delay)
        .build()
        .unwrap();
    (ioloop, clock)
}

/// Registers a socket that is readable from the start; returns the iteration its handler
/// first ran in (0 until then) and the peer end.
fn ready_socket(ioloop: &IoLoop) -> (Rc<Cell<u64>>, UnixStream) {
    let (a, mut b) = UnixStream::pair().unwrap();
    b.write_all(b"x").unwrap();
    let seen_at = Rc::new(Cell::new(0));
    let seen = seen_at.clone();
    ioloop
        .add_handler(a, Interest::READ, move |ioloop, _, event| {
            if seen.get() == 0 {
                seen.set(ioloop.stats().iterations);
            }
            ioloop.remove_handler(event.id());
        })
        .unwrap();
    (seen_at, b)
}

/// A callback that reschedules itself forever (each run is one iteration), running `each`
/// every time, and stops the loop once `done` holds.
type Each = Rc<dyn Fn(&IoLoop)>;
type Done = Rc<dyn Fn() -> bool>;

fn spin(ioloop: &IoLoop, each: impl Fn(&IoLoop) + 'static, done: impl Fn() -> bool + 'static) {
    fn again(ioloop: &IoLoop, each: Each, done: Done) {
        each(ioloop);
        if done() || ioloop.stats().iterations > 100_000 {
            ioloop.stop();
        } else {
            ioloop.add_callback(move |ioloop| again(ioloop, each, done));
        }
    }
    let (each, done): (Each, Done) = (Rc::new(each), Rc::new(done));
    ioloop.add_callback(move |ioloop| again(ioloop, each, done));
}

#[test]
fn a_spinning_chain_lets_a_ready_socket_in_within_the_iteration_bound() {
    let (ioloop, _clock) = loop_with(8, Duration::from_secs(3600));
    let (a, b) = UnixStream::pair().unwrap();
    let seen_at = Rc::new(Cell::new(0));
    let seen = seen_at.clone();
    ioloop
        .add_handler(a, Interest::READ, move |ioloop, _, event| {
            seen.set(ioloop.stats().iterations);
            ioloop.remove_handler(event.id());
        })
        .unwrap();
    // The peer writes during iteration 3, after the loop last checked.
    let peer = std::cell::RefCell::new(Some(b));
    let seen = seen_at.clone();
    spin(
        &ioloop,
        move |ioloop| {
            if ioloop.stats().iterations == 3 {
                peer.borrow_mut().as_mut().unwrap().write_all(b"x").unwrap();
            }
        },
        move || seen.get() > 0,
    );
    ioloop.start().unwrap();
    let at = seen_at.get();
    assert!(
        at > 3,
        "the handler ran at iteration {at}, before the write"
    );
    assert!(
        at <= 3 + 8,
        "the handler ran at iteration {at}, beyond the bound"
    );
    assert!(
        at > 4,
        "iterations in between skipped the check (ran at {at})"
    );
}

#[test]
fn a_spinning_chain_lets_a_ready_socket_in_once_the_time_bound_passes() {
    let (ioloop, clock) = loop_with(1_000_000, Duration::from_millis(1));
    let (seen_at, _peer) = ready_socket(&ioloop);
    let seen = seen_at.clone();
    // Each iteration takes 400 µs of loop time: the 1 ms bound passes on the third.
    let tick = clock.clone();
    spin(
        &ioloop,
        move |_| tick.advance(Duration::from_micros(400)),
        move || seen.get() > 0,
    );
    ioloop.start().unwrap();
    let at = seen_at.get();
    assert!((1..=4).contains(&at), "the handler ran at iteration {at}");
}

#[test]
fn timeouts_still_fire_inside_a_spinning_chain() {
    let (ioloop, clock) = loop_with(1_000_000, Duration::from_secs(3600));
    let fired = Rc::new(Cell::new(false));
    let f = fired.clone();
    ioloop.call_later(Duration::from_millis(5), move |_| f.set(true));
    let tick = clock.clone();
    let seen = fired.clone();
    spin(
        &ioloop,
        move |_| tick.advance(Duration::from_millis(1)),
        move || seen.get(),
    );
    ioloop.start().unwrap();
    assert!(fired.get());
    assert!(ioloop.stats().iterations < 10);
}

#[test]
fn interval_one_is_tornados_check_on_every_iteration() {
    let (ioloop, _clock) = loop_with(1, Duration::ZERO);
    let (seen_at, _peer) = ready_socket(&ioloop);
    let seen = seen_at.clone();
    spin(&ioloop, |_| {}, move || seen.get() > 0);
    ioloop.start().unwrap();
    assert_eq!(seen_at.get(), 1, "checked on the first iteration");
}

#[test]
fn run_once_always_checks_readiness() {
    let (ioloop, _clock) = loop_with(1_000_000, Duration::from_secs(3600));
    let (seen_at, _peer) = ready_socket(&ioloop);
    ioloop.add_callback(|_| {});
    ioloop.run_once(Duration::ZERO).unwrap();
    assert_eq!(seen_at.get(), 1);
}
