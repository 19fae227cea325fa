//! [`IoLoopBuilder`]: a loop's settings (clock, panic policy, blocking threshold,
//! events capacity, dispatch and callback budgets), and [`IoLoop::new`] / [`IoLoop::builder`].

use std::fmt;
use std::io;
use std::num::NonZeroUsize;
use std::time::Duration;

use super::sys::{PollMode, Poller};

use super::clock::{Clock, SystemClock};
use super::cross_thread::CrossThread;
use super::ioloop::{IoLoop, LoopInner};
use super::panics::{PanicHandling, PanicPolicy};
use super::poll::{IoCheck, ReadinessBuffer};

/// The default of [`IoLoopBuilder::dispatch_budget`]. Measured on the echo bench at 1 000
/// connections × 4 KiB: with 64 or more reads before their answers, the kernel's copy of
/// the answers out of the application's buffers (`_copy_from_iter`) takes twice the
/// server's time it takes at 16 or 32, where it is the floor's (the bytes are no longer
/// in cache).
const DEFAULT_DISPATCH_BUDGET: usize = 32;

/// Configures an [`IoLoop`] before it is built. Get one from [`IoLoop::builder`].
///
/// # Examples
///
/// ```
/// use ioloop::{PanicPolicy, IoLoop, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let ioloop = IoLoop::builder()
///     .clock(clock.clone())
///     .panic_policy(PanicPolicy::LogAndContinue)
///     .blocking_threshold(Duration::from_millis(50))
///     .events_capacity(256)
///     .callback_budget(10_000)
///     .build()?;
/// assert_eq!(ioloop.time(), clock.now());
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct IoLoopBuilder {
    clock: Box<dyn Clock>,
    policy: PanicPolicy,
    blocking_threshold: Option<Duration>,
    events_capacity: NonZeroUsize,
    dispatch_budget: NonZeroUsize,
    callback_budget: usize,
    io_check: IoCheck,
}

impl IoLoopBuilder {
    /// The clock timeouts, periodic callbacks and the blocking threshold are measured on.
    /// Default: [`SystemClock`].
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Box::new(clock);
        self
    }

    /// What a panic in user code does. Default: [`PanicPolicy::LogAndContinue`].
    #[doc(alias = "exception_policy")]
    pub fn panic_policy(mut self, policy: PanicPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Log (at `warn`) every callback, timeout or handler that runs longer than
    /// `threshold` on the loop's clock, naming where it was registered. Default: off
    /// (timing every callback costs two clock reads).
    pub fn blocking_threshold(mut self, threshold: Duration) -> Self {
        self.blocking_threshold = Some(threshold);
        self
    }

    /// The most readiness events taken from the OS per poll (at least 1). Default: 1024.
    /// Sources beyond it stay ready and are reported by the next wait.
    pub fn events_capacity(mut self, capacity: usize) -> Self {
        self.events_capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        self
    }

    /// The most ready sources whose handlers one iteration calls (at least 1). When a
    /// wait reports more, the next iterations call the rest, in the order reported, before
    /// the loop waits again; the callbacks the first handlers queued (a read's result,
    /// the write answering it) run in between, so the bytes a read brought in are still
    /// in the CPU's cache when they are used, and timeouts due meanwhile are not held up
    /// by a thousand ready sockets. Default: 32. `usize::MAX` is Tornado's behaviour:
    /// every source one wait reported, then the callbacks they queued.
    ///
    /// # Examples
    ///
    /// ```
    /// let tornado_exact = ioloop::IoLoop::builder().dispatch_budget(usize::MAX).build()?;
    /// # drop(tornado_exact);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn dispatch_budget(mut self, budget: usize) -> Self {
        self.dispatch_budget = NonZeroUsize::new(budget).unwrap_or(NonZeroUsize::MIN);
        self
    }

    /// The most queued callbacks run per iteration (at least 1), so that one
    /// [`IoLoop::run_once`] never stalls a frame on a flood of callbacks. The rest run
    /// first thing next iteration, still in order. Default: unlimited (Tornado runs the
    /// whole snapshot).
    pub fn callback_budget(mut self, budget: usize) -> Self {
        self.callback_budget = budget.max(1);
        self
    }

    /// How often a running loop that keeps finding callbacks or tasks queued checks its
    /// sockets for readiness: at least every `interval` iterations (at least 1), and as
    /// soon as `max_delay` has passed on the loop's clock since the last check, whichever
    /// comes first. So callbacks and tasks that reschedule themselves forever cannot
    /// starve I/O beyond that bound, while a chain of short callbacks does not pay a
    /// readiness probe (a syscall) each. A loop about to wait always checks, and so does
    /// every [`IoLoop::run_once`] step.
    ///
    /// Default: 61 iterations (tokio's event interval) and 1 ms. `io_check(1, ..)` is
    /// Tornado's exact behaviour: readiness is checked on every iteration.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let tornado_exact = ioloop::IoLoop::builder().io_check(1, Duration::ZERO).build()?;
    /// # drop(tornado_exact);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn io_check(mut self, interval: u32, max_delay: Duration) -> Self {
        self.io_check = IoCheck {
            interval: interval.max(1),
            max_delay,
        };
        self
    }

    /// Builds the loop. It becomes this thread's [`IoLoop::current`] if no live loop is.
    ///
    /// # Errors
    ///
    /// The OS refused to create the poller (for example, out of file descriptors).
    pub fn build(self) -> io::Result<IoLoop> {
        let poller = Poller::new()?;
        let poll_mode = if poller.supports_level() {
            PollMode::Level
        } else {
            PollMode::Oneshot
        };
        self.build_with(poller, poll_mode)
    }

    /// Builds on `poller`, registering sources in `poll_mode` (`Oneshot` is re-armed after
    /// every event; the tests force it to cover platforms without level-triggered polling).
    pub(crate) fn build_with(self, poller: Poller, poll_mode: PollMode) -> io::Result<IoLoop> {
        Ok(LoopInner::build(
            CrossThread::new(poller)?,
            poll_mode,
            self.clock,
            PanicHandling::new(self.policy, self.blocking_threshold),
            ReadinessBuffer::new(self.events_capacity, self.io_check, self.dispatch_budget),
            self.callback_budget,
        ))
    }
}

impl fmt::Debug for IoLoopBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoLoopBuilder")
            .field("clock", &self.clock)
            .field("policy", &self.policy)
            .field("blocking_threshold", &self.blocking_threshold)
            .field("events_capacity", &self.events_capacity)
            .field("dispatch_budget", &self.dispatch_budget)
            .field("callback_budget", &self.callback_budget)
            .field("io_check", &self.io_check)
            .finish()
    }
}

impl IoLoop {
    /// A loop with the default settings (system clock, log-and-continue, no blocking
    /// threshold). It becomes this thread's [`IoLoop::current`] if no live loop is.
    ///
    /// # Errors
    ///
    /// The OS refused to create the poller.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> io::Result<IoLoop> {
        IoLoop::builder().build()
    }

    /// A builder for a loop with a chosen clock, panic policy, blocking threshold,
    /// events capacity, dispatch budget or callback budget.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let ioloop = ioloop::IoLoop::builder().callback_budget(1).build()?;
    /// ioloop.add_callback(|_| {});
    /// ioloop.add_callback(|_| {});
    /// ioloop.run_once(Duration::ZERO)?;
    /// assert_eq!(ioloop.stats().callbacks_queued, 1); // one per iteration: one waits
    /// # Ok::<(), ioloop::LoopError>(())
    /// ```
    pub fn builder() -> IoLoopBuilder {
        IoLoopBuilder {
            clock: Box::new(SystemClock),
            policy: PanicPolicy::default(),
            blocking_threshold: None,
            events_capacity: NonZeroUsize::new(1024).expect("non-zero"),
            dispatch_budget: NonZeroUsize::new(DEFAULT_DISPATCH_BUDGET).expect("non-zero"),
            callback_budget: usize::MAX,
            io_check: IoCheck::default(),
        }
    }
}
