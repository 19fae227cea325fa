//! Time sources for the loop: the system monotonic clock and a [`ManualClock`] the host
//! advances.
//!
//! Every deadline the loop keeps (timeouts, [`PeriodicCallback`](crate::PeriodicCallback)
//! schedules, the blocking-callback threshold) is measured on the clock the loop was built
//! with, so a [`ManualClock`] makes all timing logic deterministic: a test or a
//! fixed-timestep game moves time forward itself and steps the loop with
//! [`IoLoop::run_once(Duration::ZERO)`](crate::IoLoop::run_once).

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A source of monotonic time for an [`IoLoop`](crate::IoLoop).
///
/// The loop calls [`now`](Clock::now) at most a few times per iteration. Implementations
/// should be cheap and must never go backwards except on purpose (a clock that does is
/// tolerated: timers simply fire later, and periodic callbacks add one period).
///
/// # Examples
///
/// ```
/// use ioloop::{Clock, IoLoop};
/// use std::time::Instant;
///
/// /// A clock that runs 0.5 s ahead of the system clock.
/// #[derive(Debug)]
/// struct Ahead;
/// impl Clock for Ahead {
///     fn now(&self) -> Instant {
///         Instant::now() + std::time::Duration::from_millis(500)
///     }
/// }
///
/// let ioloop = IoLoop::builder().clock(Ahead).build()?;
/// assert!(ioloop.time() > Instant::now());
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait Clock: fmt::Debug {
    /// The current time on this clock.
    fn now(&self) -> Instant;
}

/// The operating system's monotonic clock ([`Instant::now`]); the default.
///
/// # Examples
///
/// ```
/// use ioloop::{Clock, SystemClock};
///
/// let a = SystemClock.now();
/// let b = SystemClock.now();
/// assert!(b >= a);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that only moves when the host moves it.
///
/// Clones share the same time, so the host keeps one clone and gives another to
/// [`IoLoopBuilder::clock`](crate::IoLoopBuilder::clock). Use it for deterministic tests,
/// replays and fixed-timestep game loops. It is not `Send`: it belongs to the loop's
/// thread.
///
/// # Examples
///
/// ```
/// use ioloop::{IoLoop, ManualClock};
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let ioloop = IoLoop::builder().clock(clock.clone()).build()?;
/// let fired = Rc::new(Cell::new(false));
/// let f = fired.clone();
/// ioloop.call_later(Duration::from_secs(60), move |_| f.set(true));
///
/// ioloop.run_once(Duration::ZERO)?;
/// assert!(!fired.get());
/// clock.advance(Duration::from_secs(60));
/// ioloop.run_once(Duration::ZERO)?;
/// assert!(fired.get());
/// # Ok::<(), ioloop::LoopError>(())
/// ```
#[derive(Clone)]
pub struct ManualClock {
    now: Rc<Cell<Instant>>,
}

impl ManualClock {
    /// A manual clock that starts at the current system time.
    ///
    /// # Examples
    ///
    /// ```
    /// let clock = ioloop::ManualClock::new();
    /// let t0 = clock.now();
    /// assert_eq!(clock.now(), t0);
    /// ```
    pub fn new() -> ManualClock {
        ManualClock::starting_at(Instant::now())
    }

    /// A manual clock that starts at `start`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// let start = Instant::now();
    /// let clock = ioloop::ManualClock::starting_at(start);
    /// assert_eq!(clock.now(), start);
    /// ```
    pub fn starting_at(start: Instant) -> ManualClock {
        ManualClock {
            now: Rc::new(Cell::new(start)),
        }
    }

    /// The clock's current time.
    ///
    /// # Examples
    ///
    /// ```
    /// let clock = ioloop::ManualClock::new();
    /// assert_eq!(clock.now(), clock.clone().now());
    /// ```
    pub fn now(&self) -> Instant {
        self.now.get()
    }

    /// Moves the clock forward by `by`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let clock = ioloop::ManualClock::new();
    /// let t0 = clock.now();
    /// clock.advance(Duration::from_millis(16));
    /// assert_eq!(clock.now() - t0, Duration::from_millis(16));
    /// ```
    pub fn advance(&self, by: Duration) {
        self.now.set(self.now.get() + by);
    }

    /// Sets the clock to `to`, which may be earlier than now (a clock jumping backwards).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let clock = ioloop::ManualClock::new();
    /// let t0 = clock.now();
    /// clock.advance(Duration::from_secs(5));
    /// clock.set(t0);
    /// assert_eq!(clock.now(), t0);
    /// ```
    pub fn set(&self, to: Instant) {
        self.now.set(to);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &self.now.get())
            .finish()
    }
}

impl Clock for ManualClock {
    #[inline]
    fn now(&self) -> Instant {
        self.now.get()
    }
}
