//! Driving a loop from a test: [`step`], [`advance_to_next_deadline`], [`run_until`] and
//! [`run_until_within`].

use std::time::{Duration, Instant};

use super::run::describe_pending;
use crate::reactor::ioloop::IoLoop;
use crate::time::ManualClock;

/// How long [`run_until`] waits, in real time, for its condition.
const RUN_UNTIL_LIMIT: Duration = Duration::from_secs(10);

/// Runs one iteration of `ioloop` without waiting: the callbacks due now, the handlers
/// of sockets ready now, the timeouts due on its clock.
///
/// # Panics
///
/// If the loop fails (it was closed).
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
///
/// let ioloop = ioloop::IoLoop::new()?;
/// let ran = Rc::new(Cell::new(false));
/// let flag = ran.clone();
/// ioloop.add_callback(move |_| flag.set(true));
/// ioloop::testing::step(&ioloop);
/// assert!(ran.get());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn step(ioloop: &IoLoop) {
    if let Err(e) = ioloop.run_once(Duration::ZERO) {
        panic!("the loop cannot run: {e}");
    }
}

/// Moves `clock` (the loop's [`ManualClock`]) forward to the loop's next deadline and
/// runs one iteration, so the timeouts due then fire; returns how far the clock moved,
/// or `None` (and runs nothing) when nothing is scheduled. Queued callbacks count as a
/// deadline of now: the clock stays and they run.
///
/// # Panics
///
/// If the loop fails (it was closed).
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use std::time::Duration;
/// use ioloop::testing::advance_to_next_deadline;
///
/// let clock = ioloop::ManualClock::new();
/// let ioloop = ioloop::IoLoop::builder().clock(clock.clone()).build()?;
/// let fired = Rc::new(Cell::new(false));
/// let flag = fired.clone();
/// ioloop.call_later(Duration::from_secs(30), move |_| flag.set(true));
/// assert_eq!(advance_to_next_deadline(&ioloop, &clock), Some(Duration::from_secs(30)));
/// assert!(fired.get());
/// assert_eq!(advance_to_next_deadline(&ioloop, &clock), None);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn advance_to_next_deadline(ioloop: &IoLoop, clock: &ManualClock) -> Option<Duration> {
    let wait = ioloop.poll_timeout()?;
    clock.advance(wait);
    step(ioloop);
    Some(wait)
}

/// Runs `ioloop` until `condition` holds, waiting for I/O (in real time, never more than
/// 10 s in all) when nothing else is ready: [`run_until_within`] with 10 s.
///
/// # Panics
///
/// As [`run_until_within`].
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// use std::io::Write;
/// use std::rc::Rc;
///
/// let ioloop = ioloop::IoLoop::new()?;
/// let (a, mut b) = std::os::unix::net::UnixStream::pair()?;
/// let stream = ioloop::IoStream::new(&ioloop, a)?;
/// let line = Rc::new(Cell::new(None));
/// let got = line.clone();
/// stream.read_until_then(b"\n", 64, move |_, read| got.set(Some(read.unwrap())));
/// std::thread::spawn(move || b.write_all(b"hello\n"));
/// ioloop::testing::run_until(&ioloop, || line.take().inspect(|l| assert_eq!(l, b"hello\n")).is_some());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn run_until(ioloop: &IoLoop, condition: impl FnMut() -> bool) {
    run_until_within(ioloop, RUN_UNTIL_LIMIT, condition);
}

/// Runs `ioloop` until `condition` holds, waiting for I/O when nothing else is ready,
/// for at most `limit` of real time. It does not move a [`ManualClock`]: on such a loop,
/// timeouts fire only through [`advance_to_next_deadline`], so a test waiting for a reply
/// does not fire the idle timeout meant for later.
///
/// # Panics
///
/// If `condition` does not hold within `limit`, saying what the loop still had pending;
/// if the loop fails.
///
/// # Examples
///
/// ```should_panic
/// use std::time::Duration;
///
/// let ioloop = ioloop::IoLoop::new().unwrap();
/// // Panics: "condition not met after 10ms; pending: nothing (...)".
/// ioloop::testing::run_until_within(&ioloop, Duration::from_millis(10), || false);
/// ```
pub fn run_until_within(ioloop: &IoLoop, limit: Duration, mut condition: impl FnMut() -> bool) {
    let give_up = Instant::now() + limit;
    while !condition() {
        let now = Instant::now();
        if now >= give_up {
            panic!(
                "condition not met after {limit:?}; pending: {}",
                describe_pending(&ioloop.stats(), 0)
            );
        }
        let wait = (give_up - now).min(Duration::from_millis(50));
        if let Err(e) = ioloop.run_once(wait) {
            panic!("the loop cannot run: {e}");
        }
    }
}
