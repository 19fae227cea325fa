//! [`PeriodicCallback`]: a callback run every period on a fixed grid, with Tornado's
//! scheduling rules.
//!
//! The first call is one period after [`PeriodicCallback::start`]. After each call the
//! next deadline is computed from the scheduled time of the call just made, not from when
//! it ended, so the calls stay on the grid `start + k × period` and do not drift. Periods
//! missed because a call overran are skipped (no burst of catch-up calls). If the clock
//! went backwards during a call, the next call is one period after the previous deadline.
//! With jitter `j`, each period is scaled by a random factor in `1 ± j/2`.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::Location;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::reactor::ioloop::{IoLoop, WeakIoLoop};
use crate::reactor::panics::CallbackKind;
use crate::reactor::timer_heap::Timeout;

type PeriodicFn = Box<dyn FnMut(&IoLoop, &PeriodicCallback)>;
type RandomFn = Box<dyn FnMut() -> f64>;

/// Calls a function every `period` on a loop, until stopped.
///
/// The callback receives the loop and the `PeriodicCallback` itself, so it can
/// [`stop`](PeriodicCallback::stop) it without capturing a handle (which would keep it
/// alive forever). A panic in the callback is reported to the loop's panic policy
/// with the `file:line` of [`new`](PeriodicCallback::new), and the schedule continues.
/// Clones share the same schedule. Not `Send`: it belongs to its loop's thread.
///
/// # Examples
///
/// ```
/// use ioloop::{IoLoop, PeriodicCallback};
/// use std::time::Duration;
///
/// let ioloop = IoLoop::new()?;
/// let mut calls = 0;
/// let ticker = PeriodicCallback::new(&ioloop, Duration::from_millis(1), move |ioloop, me| {
///     calls += 1;
///     if calls == 3 {
///         me.stop();
///         ioloop.stop();
///     }
/// });
/// ticker.start();
/// ioloop.start()?;
/// assert!(!ticker.is_running());
/// # Ok::<(), ioloop::LoopError>(())
/// ```
#[derive(Clone)]
pub struct PeriodicCallback {
    inner: Rc<PeriodicInner>,
}

struct PeriodicInner {
    ioloop: WeakIoLoop,
    period: Duration,
    site: &'static Location<'static>,
    callback: RefCell<Option<PeriodicFn>>,
    jitter: Cell<f64>,
    /// `None` while it is being called (see `draw`).
    random: RefCell<Option<RandomFn>>,
    running: Cell<bool>,
    /// The deadline of the call last scheduled.
    next: Cell<Option<Instant>>,
    timeout: Cell<Option<Timeout>>,
}

impl PeriodicCallback {
    /// A periodic callback on `ioloop`, every `period`. It does nothing until
    /// [`start`](PeriodicCallback::start).
    ///
    /// # Panics
    ///
    /// If `period` is zero (it would spin the loop).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let pc = ioloop::PeriodicCallback::new(&ioloop, Duration::from_secs(1), |_, _| {});
    /// assert!(!pc.is_running());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    #[must_use = "a PeriodicCallback does nothing until start() is called"]
    pub fn new<F>(ioloop: &IoLoop, period: Duration, callback: F) -> PeriodicCallback
    where
        F: FnMut(&IoLoop, &PeriodicCallback) + 'static,
    {
        assert!(
            !period.is_zero(),
            "PeriodicCallback period must be greater than zero"
        );
        PeriodicCallback {
            inner: Rc::new(PeriodicInner {
                ioloop: ioloop.downgrade(),
                period,
                site: Location::caller(),
                callback: RefCell::new(Some(Box::new(callback))),
                jitter: Cell::new(0.0),
                random: RefCell::new(Some(Box::new(xorshift_source()))),
                running: Cell::new(false),
                next: Cell::new(None),
                timeout: Cell::new(None),
            }),
        }
    }

    /// Scales each period by a random factor in `1 ± jitter/2` (Tornado's jitter), so
    /// that many periodic tasks started together spread out. `0.0` (the default)
    /// disables it; values are clamped to `0.0..=1.0`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let pc = ioloop::PeriodicCallback::new(&ioloop, Duration::from_secs(1), |_, _| {});
    /// pc.set_jitter(0.1); // periods between 0.95 s and 1.05 s
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_jitter(&self, jitter: f64) {
        self.inner.jitter.set(jitter.clamp(0.0, 1.0));
    }

    /// Replaces the source of random numbers in `[0, 1)` used for jitter (by default a
    /// small xorshift generator seeded from the clock); for reproducible schedules.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let pc = ioloop::PeriodicCallback::new(&ioloop, Duration::from_secs(1), |_, _| {});
    /// pc.set_jitter(0.5);
    /// pc.set_random_source(|| 0.5); // factor exactly 1: no jitter after all
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_random_source(&self, random: impl FnMut() -> f64 + 'static) {
        // The source replaced is a user value: dropped after the borrow.
        let replaced = self.inner.random.replace(Some(Box::new(random)));
        drop(replaced);
    }

    /// Starts calling: the first call is one period from now on the loop's clock. Does
    /// nothing if already running, or if the loop was dropped. Loop thread only.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc, time::Duration};
    /// use ioloop::{testing::advance_to_next_deadline, IoLoop, ManualClock, PeriodicCallback};
    ///
    /// let clock = ManualClock::new();
    /// let ioloop = IoLoop::builder().clock(clock.clone()).build()?;
    /// let calls = Rc::new(Cell::new(0));
    /// let c = calls.clone();
    /// let pc = PeriodicCallback::new(&ioloop, Duration::from_secs(5), move |_, _| {
    ///     c.set(c.get() + 1)
    /// });
    /// pc.start();
    /// assert_eq!(advance_to_next_deadline(&ioloop, &clock), Some(Duration::from_secs(5)));
    /// assert_eq!(advance_to_next_deadline(&ioloop, &clock), Some(Duration::from_secs(5)));
    /// assert_eq!(calls.get(), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn start(&self) {
        let Some(ioloop) = self.ioloop() else {
            log::warn!(target: "ioloop", "PeriodicCallback started after its IoLoop was dropped");
            return;
        };
        if self.inner.running.replace(true) {
            return;
        }
        self.inner.next.set(Some(ioloop.time()));
        schedule_next(&self.inner, &ioloop);
    }

    /// Stops calling and removes the pending timeout. Works from inside the callback.
    /// Idempotent.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let pc = ioloop::PeriodicCallback::new(&ioloop, Duration::from_secs(1), |_, _| {});
    /// pc.start();
    /// assert_eq!(ioloop.stats().timeouts_pending, 1);
    /// pc.stop();
    /// assert_eq!(ioloop.stats().timeouts_pending, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stop(&self) {
        self.inner.running.set(false);
        if let (Some(timeout), Some(ioloop)) = (self.inner.timeout.take(), self.ioloop()) {
            ioloop.remove_timeout(timeout);
        }
    }

    /// Whether it is started and not stopped.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ioloop::{testing::advance_to_next_deadline, IoLoop, ManualClock, PeriodicCallback};
    ///
    /// let clock = ManualClock::new();
    /// let ioloop = IoLoop::builder().clock(clock.clone()).build()?;
    /// let once = PeriodicCallback::new(&ioloop, Duration::from_secs(1), |_, me| me.stop());
    /// assert!(!once.is_running());
    /// once.start();
    /// assert!(once.is_running());
    /// advance_to_next_deadline(&ioloop, &clock); // the first call stops it
    /// assert!(!once.is_running());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_running(&self) -> bool {
        self.inner.running.get()
    }

    fn ioloop(&self) -> Option<IoLoop> {
        self.inner.ioloop.upgrade()
    }
}

fn schedule_next(inner: &Rc<PeriodicInner>, ioloop: &IoLoop) {
    if !inner.running.get() || inner.timeout.get().is_some() {
        return;
    }
    let mut period = inner.period;
    let jitter = inner.jitter.get();
    if jitter > 0.0 {
        let r = draw(inner);
        period = period.mul_f64(1.0 + jitter * (r - 0.5));
    }
    let now = ioloop.time();
    let next = next_deadline(inner.next.get().unwrap_or(now), now, period);
    inner.next.set(Some(next));
    let this = inner.clone();
    let timeout = ioloop.add_timeout(next, move |ioloop| run(this, ioloop));
    inner.timeout.set(Some(timeout));
}

fn run(inner: Rc<PeriodicInner>, ioloop: &IoLoop) {
    inner.timeout.set(None);
    if !inner.running.get() {
        return;
    }
    let taken = inner.callback.borrow_mut().take();
    if let Some(mut callback) = taken {
        let handle = PeriodicCallback {
            inner: inner.clone(),
        };
        ioloop.run_guarded(CallbackKind::Periodic, inner.site, || {
            callback(ioloop, &handle)
        });
        *inner.callback.borrow_mut() = Some(callback);
    }
    schedule_next(&inner, ioloop);
}

/// A number from the random source. The source is taken out for the call, so it may use
/// this `PeriodicCallback` (replace itself, restart it); a draw from inside the source
/// itself gets 0.5 (a factor of 1). Put back unless it was replaced meanwhile.
fn draw(inner: &PeriodicInner) -> f64 {
    let Some(mut random) = inner.random.take() else {
        return 0.5;
    };
    let r = random();
    let replaced = {
        let mut slot = inner.random.borrow_mut();
        match *slot {
            None => {
                *slot = Some(random);
                None
            }
            Some(_) => Some(random),
        }
    };
    // A user value: dropped after the borrow.
    drop(replaced);
    r
}

/// The deadline after `previous`, given that the call for `previous` ended at `now`: the
/// first point of the grid `previous + k × period` (k ≥ 1) strictly after `now`, or
/// `previous + period` if the clock went backwards.
pub(crate) fn next_deadline(previous: Instant, now: Instant, period: Duration) -> Instant {
    if previous > now {
        return previous + period;
    }
    let behind = (now - previous).as_nanos();
    let periods = behind / period.as_nanos().max(1) + 1;
    let advance = period.as_nanos().saturating_mul(periods);
    previous + Duration::from_nanos(u64::try_from(advance).unwrap_or(u64::MAX))
}

/// A xorshift64* generator of floats in `[0, 1)`, seeded from the system clock. Jitter
/// only needs to spread timers apart, not cryptographic quality.
fn xorshift_source() -> impl FnMut() -> f64 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut state = seed | 1;
    move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let x = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl fmt::Debug for PeriodicCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeriodicCallback")
            .field("period", &self.inner.period)
            .field("jitter", &self.inner.jitter.get())
            .field("running", &self.inner.running.get())
            .field("site", &self.inner.site)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_deadline_skips_missed_periods_and_keeps_the_grid() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let p = s(10);
        assert_eq!(next_deadline(t0, t0, p), t0 + s(10));
        assert_eq!(next_deadline(t0, t0 + s(9), p), t0 + s(10));
        assert_eq!(next_deadline(t0, t0 + s(10), p), t0 + s(20));
        assert_eq!(next_deadline(t0, t0 + s(35), p), t0 + s(40));
        // Clock went backwards: one period after the previous deadline.
        assert_eq!(next_deadline(t0 + s(10), t0 + s(8), p), t0 + s(20));
    }

    #[test]
    fn xorshift_stays_in_the_unit_interval() {
        let mut r = xorshift_source();
        for _ in 0..10_000 {
            let x = r();
            assert!((0.0..1.0).contains(&x));
        }
    }
}
