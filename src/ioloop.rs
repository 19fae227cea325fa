//! [`IoLoop`]: the reactor's handle, its callback queue and its run loop.
//!
//! One iteration, in Tornado's order (each step pinned by a test in `tests/ordering.rs`):
//!
//! 1. move callbacks posted from other threads into the local queue;
//! 2. snapshot the number of queued callbacks: callbacks added from now on wait for the
//!    next iteration;
//! 3. collect every timeout whose deadline is `<= now`, before running any of them;
//! 4. run the snapshot of callbacks, then the collected timeouts, skipping any removed in
//!    the meantime;
//! 5. stop here if [`IoLoop::stop`] was called; otherwise poll, with timeout 0 if callbacks
//!    are queued, else until the next deadline, else forever;
//! 6. dispatch readiness one source at a time, skipping sources removed earlier in the
//!    batch.
//!
//! Timers live in `timers.rs` and fd handlers in `handlers.rs`; both add their methods to
//! [`IoLoop`] there.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::num::NonZeroUsize;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

use polling::{PollMode, Poller};

use crate::clock::{Clock, SystemClock};
use crate::error::LoopError;
use crate::failure::{Callback, CallbackKind, ExceptionPolicy, FailureHandling};
use crate::handlers::HandlerRegistry;
use crate::poll::ReadinessBuffer;
use crate::remote::{Remote, Shared};
use crate::task::{TaskKey, TaskRegistry};
use crate::timers::{Timeout, TimerHeap};

thread_local! {
    static CURRENT: RefCell<Option<Weak<LoopInner>>> = const { RefCell::new(None) };
}

/// A handle to an event loop: a timer heap, a callback queue and a set of fd handlers,
/// run on one thread.
///
/// `IoLoop` is a cheap clonable handle (an `Rc` inside) and is neither `Send` nor `Sync`:
/// it belongs to the thread that made it. Other threads reach it through a
/// [`Remote`]. Every callback receives `&IoLoop`, so it can schedule more work, remove
/// handlers or stop the loop without capturing a handle (a callback that captures a
/// clone of its own loop keeps the loop alive until it runs or is removed).
///
/// See the [module documentation](crate#iteration-order) for the order of one iteration.
///
/// # Examples
///
/// ```
/// use ioloop::IoLoop;
/// use std::time::Duration;
///
/// let ioloop = IoLoop::new()?;
/// ioloop.add_timeout(Duration::from_millis(10), |ioloop| {
///     println!("ten milliseconds later");
///     ioloop.stop();
/// });
/// ioloop.start()?;
/// # Ok::<(), ioloop::LoopError>(())
/// ```
#[derive(Clone)]
pub struct IoLoop {
    pub(crate) inner: Rc<LoopInner>,
}

pub(crate) struct LoopInner {
    pub(crate) shared: Arc<Shared>,
    pub(crate) clock: Box<dyn Clock>,
    pub(crate) failure: FailureHandling,
    callbacks: RefCell<VecDeque<Queued>>,
    pub(crate) tasks: RefCell<TaskRegistry>,
    pub(crate) timers: RefCell<TimerHeap>,
    /// Reused buffer for the timeouts collected in step 3.
    due: RefCell<Vec<Timeout>>,
    pub(crate) handlers: RefCell<HandlerRegistry>,
    pub(crate) readiness: RefCell<ReadinessBuffer>,
    pub(crate) poll_mode: PollMode,
    callback_budget: usize,
    running: Cell<bool>,
    in_iteration: Cell<bool>,
    pub(crate) closed: Cell<bool>,
    iterations: Cell<u64>,
    pub(crate) poller_modifications: Cell<u64>,
}

/// Configures an [`IoLoop`] before it is built. Get one from [`IoLoop::builder`].
///
/// # Examples
///
/// ```
/// use ioloop::{ExceptionPolicy, IoLoop, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let ioloop = IoLoop::builder()
///     .clock(clock.clone())
///     .exception_policy(ExceptionPolicy::LogAndContinue)
///     .blocking_threshold(Duration::from_millis(50))
///     .events_capacity(256)
///     .callback_budget(10_000)
///     .build()?;
/// assert_eq!(ioloop.time(), clock.now());
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct IoLoopBuilder {
    clock: Box<dyn Clock>,
    policy: ExceptionPolicy,
    blocking_threshold: Option<Duration>,
    events_capacity: NonZeroUsize,
    callback_budget: usize,
}

impl IoLoopBuilder {
    /// The clock timeouts, periodic callbacks and the blocking threshold are measured on.
    /// Default: [`SystemClock`].
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Box::new(clock);
        self
    }

    /// What a panic in user code does. Default: [`ExceptionPolicy::LogAndContinue`].
    pub fn exception_policy(mut self, policy: ExceptionPolicy) -> Self {
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
    /// Sources beyond it stay ready and are reported on the next iteration.
    pub fn events_capacity(mut self, capacity: usize) -> Self {
        self.events_capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
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
        let epoch = self.clock.now();
        let inner = Rc::new(LoopInner {
            shared: Arc::new(Shared::new(poller)),
            clock: self.clock,
            failure: FailureHandling::new(self.policy, self.blocking_threshold),
            callbacks: RefCell::new(VecDeque::new()),
            tasks: RefCell::new(TaskRegistry::default()),
            timers: RefCell::new(TimerHeap::new(epoch)),
            due: RefCell::new(Vec::new()),
            handlers: RefCell::new(HandlerRegistry::default()),
            readiness: RefCell::new(ReadinessBuffer::with_capacity(self.events_capacity)),
            poll_mode,
            callback_budget: self.callback_budget,
            running: Cell::new(false),
            in_iteration: Cell::new(false),
            closed: Cell::new(false),
            iterations: Cell::new(0),
            poller_modifications: Cell::new(0),
        });
        CURRENT.with(|current| {
            let mut current = current.borrow_mut();
            if current.as_ref().and_then(Weak::upgrade).is_none() {
                *current = Some(Rc::downgrade(&inner));
            }
        });
        Ok(IoLoop { inner })
    }
}

impl fmt::Debug for IoLoopBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoLoopBuilder")
            .field("clock", &self.clock)
            .field("policy", &self.policy)
            .field("blocking_threshold", &self.blocking_threshold)
            .field("events_capacity", &self.events_capacity)
            .field("callback_budget", &self.callback_budget)
            .finish()
    }
}

/// Counters describing a loop's state, from [`IoLoop::stats`].
///
/// # Examples
///
/// ```
/// let ioloop = ioloop::IoLoop::new()?;
/// ioloop.add_callback(|_| {});
/// assert_eq!(ioloop.stats().callbacks_queued, 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LoopStats {
    /// Iterations run so far.
    pub iterations: u64,
    /// Callbacks waiting in the local queue.
    pub callbacks_queued: usize,
    /// Timeouts that have not fired or been removed.
    pub timeouts_pending: usize,
    /// Entries in the timer heap, removed-but-not-yet-compacted ones included.
    pub timer_heap_entries: usize,
    /// Registered fd handlers.
    pub handlers: usize,
    /// Spawned tasks that have not finished.
    pub tasks: usize,
    /// Poller wakeups sent by [`Remote`]s (posts are coalesced into these).
    pub remote_wakeups: u64,
    /// Calls to the poller's `modify` (interest changes, and re-arming on platforms
    /// without level-triggered polling).
    pub poller_modifications: u64,
}

/// Whether the run loop should go on after an iteration.
enum Flow {
    Continue,
    Stopped,
}

/// An entry of the run queue: a callback, or a poll of a woken task.
pub(crate) enum Queued {
    Callback(Callback),
    Task(TaskKey),
}

/// Makes a loop this thread's current loop, and restores the previous one on drop.
struct CurrentGuard {
    previous: Option<Weak<LoopInner>>,
}

impl CurrentGuard {
    fn enter(ioloop: &IoLoop) -> CurrentGuard {
        let previous = CURRENT.with(|c| c.replace(Some(Rc::downgrade(&ioloop.inner))));
        CurrentGuard { previous }
    }
}

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// Sets a flag for a scope, unwinding included.
struct FlagGuard<'a>(&'a Cell<bool>);

impl<'a> FlagGuard<'a> {
    fn set(flag: &'a Cell<bool>) -> Self {
        flag.set(true);
        FlagGuard(flag)
    }
}

impl Drop for FlagGuard<'_> {
    fn drop(&mut self) {
        self.0.set(false);
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

    /// A builder for a loop with a chosen clock, exception policy, blocking threshold,
    /// events capacity or callback budget.
    ///
    /// # Examples
    ///
    /// See [`IoLoopBuilder`].
    pub fn builder() -> IoLoopBuilder {
        IoLoopBuilder {
            clock: Box::new(SystemClock),
            policy: ExceptionPolicy::default(),
            blocking_threshold: None,
            events_capacity: NonZeroUsize::new(1024).expect("non-zero"),
            callback_budget: usize::MAX,
        }
    }

    /// The loop this thread is running (inside [`start`](IoLoop::start) or
    /// [`run_once`](IoLoop::run_once)), or else the first loop built on this thread that
    /// is still alive. Library code uses it to reach the loop without a handle passed
    /// down (Tornado's `IOLoop.current()`).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::IoLoop;
    /// let ioloop = IoLoop::new()?;
    /// ioloop.add_callback(|running| {
    ///     let current = IoLoop::current().expect("inside a callback");
    ///     assert!(current.ptr_eq(running));
    /// });
    /// ioloop.run_once(std::time::Duration::ZERO)?;
    /// # Ok::<(), ioloop::LoopError>(())
    /// ```
    pub fn current() -> Option<IoLoop> {
        CURRENT
            .with(|c| c.borrow().as_ref().and_then(Weak::upgrade))
            .map(|inner| IoLoop { inner })
    }

    /// Whether two handles refer to the same loop.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = ioloop::IoLoop::new()?;
    /// assert!(a.ptr_eq(&a.clone()));
    /// assert!(!a.ptr_eq(&ioloop::IoLoop::new()?));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ptr_eq(&self, other: &IoLoop) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }

    /// A `Send + Sync` handle for posting callbacks and stopping the loop from other
    /// threads.
    ///
    /// # Examples
    ///
    /// See [`Remote`].
    pub fn remote(&self) -> Remote {
        Remote {
            shared: self.inner.shared.clone(),
        }
    }

    /// The current time on the loop's clock: what deadlines are compared with.
    ///
    /// # Examples
    ///
    /// ```
    /// let clock = ioloop::ManualClock::new();
    /// let ioloop = ioloop::IoLoop::builder().clock(clock.clone()).build()?;
    /// assert_eq!(ioloop.time(), clock.now());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn time(&self) -> std::time::Instant {
        self.inner.clock.now()
    }

    /// Runs `callback` on the next iteration of the loop.
    ///
    /// Callbacks run in the order they were added (FIFO). One added while the loop is
    /// running its callbacks waits for the next iteration, after a poll with timeout zero,
    /// so a callback that re-adds itself never starves I/O or timers. Loop thread only;
    /// from other threads use [`Remote::add_callback`]. On a closed loop the callback is
    /// dropped.
    ///
    /// A panic in `callback` is caught and reported with this call's `file:line`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let order = Rc::new(RefCell::new(Vec::new()));
    /// for i in 0..3 {
    ///     let order = order.clone();
    ///     ioloop.add_callback(move |_| order.borrow_mut().push(i));
    /// }
    /// ioloop.run_once(std::time::Duration::ZERO)?;
    /// assert_eq!(*order.borrow(), [0, 1, 2]);
    /// # Ok::<(), ioloop::LoopError>(())
    /// ```
    #[track_caller]
    pub fn add_callback<F>(&self, callback: F)
    where
        F: FnOnce(&IoLoop) + 'static,
    {
        self.queue_callback(Callback::new(Box::new(callback)));
    }

    /// [`add_callback`](IoLoop::add_callback) with the registration site already taken.
    pub(crate) fn queue_callback(&self, callback: Callback) {
        if self.inner.closed.get() {
            log::debug!(target: "ioloop", "callback added to a closed IoLoop was dropped");
            return;
        }
        self.queue_local(Queued::Callback(callback));
    }

    pub(crate) fn queue_local(&self, entry: Queued) {
        self.inner.callbacks.borrow_mut().push_back(entry);
    }

    /// Queues `entry` unless the loop is closed or its queue is borrowed (a waker called
    /// from a destructor while the loop moves its queue); `false` asks the caller to post
    /// it instead.
    pub(crate) fn try_queue_local(&self, entry: Queued) -> bool {
        if self.inner.closed.get() {
            return false;
        }
        match self.inner.callbacks.try_borrow_mut() {
            Ok(mut callbacks) => {
                callbacks.push_back(entry);
                true
            }
            Err(_) => false,
        }
    }

    /// The same as [`add_callback`](IoLoop::add_callback) (Tornado kept both names).
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// ioloop.spawn_callback(|ioloop| ioloop.stop());
    /// ioloop.start()?;
    /// # Ok::<(), ioloop::LoopError>(())
    /// ```
    #[track_caller]
    pub fn spawn_callback<F>(&self, callback: F)
    where
        F: FnOnce(&IoLoop) + 'static,
    {
        self.add_callback(callback)
    }

    /// Runs the loop until [`stop`](IoLoop::stop) is called.
    ///
    /// While it runs, this loop is the thread's [`IoLoop::current`]. If `stop` was called
    /// before `start`, `start` returns at once (and the stop request is used up). Pending
    /// callbacks, timeouts and handlers survive a stop and run on the next `start` or
    /// `run_once`.
    ///
    /// # Errors
    ///
    /// - [`LoopError::AlreadyRunning`] if called from inside one of this loop's callbacks
    ///   (never a deadlock);
    /// - [`LoopError::Closed`] after [`close`](IoLoop::close);
    /// - [`LoopError::Io`] if the poller fails.
    ///
    /// # Panics
    ///
    /// Under [`ExceptionPolicy::Propagate`], resumes the first panic caught in user code,
    /// at the end of the batch it happened in.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// ioloop.stop();
    /// ioloop.start()?; // returns at once: stop() came first
    /// # Ok::<(), ioloop::LoopError>(())
    /// ```
    pub fn start(&self) -> Result<(), LoopError> {
        let inner = &*self.inner;
        if inner.closed.get() {
            return Err(LoopError::Closed);
        }
        if inner.running.get() || inner.in_iteration.get() {
            return Err(LoopError::AlreadyRunning);
        }
        if inner.shared.take_stop_request() {
            return Ok(());
        }
        let _running = FlagGuard::set(&inner.running);
        let _current = CurrentGuard::enter(self);
        loop {
            if let Flow::Stopped = self.iterate(None)? {
                return Ok(());
            }
        }
    }

    /// Asks the loop to stop: the callbacks and timeouts of the current iteration finish,
    /// and [`start`](IoLoop::start) returns before the next poll. Readiness already
    /// collected in the current iteration is still dispatched.
    ///
    /// Loop thread only; from other threads use [`Remote::stop`]. Called while the loop is
    /// not running, it makes the next `start` return at once.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// ioloop.add_callback(|ioloop| ioloop.stop());
    /// ioloop.start()?;
    /// # Ok::<(), ioloop::LoopError>(())
    /// ```
    pub fn stop(&self) {
        self.inner.shared.request_stop();
    }

    /// Whether [`start`](IoLoop::start) is running.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// assert!(!ioloop.is_running());
    /// ioloop.add_callback(|ioloop| {
    ///     assert!(ioloop.is_running());
    ///     ioloop.stop();
    /// });
    /// ioloop.start()?;
    /// # Ok::<(), ioloop::LoopError>(())
    /// ```
    pub fn is_running(&self) -> bool {
        self.inner.running.get()
    }

    /// Runs exactly one iteration, waiting at most `max_wait` for I/O (zero: never
    /// block), and reports whether the loop still has work: queued callbacks, pending
    /// timeouts or registered handlers.
    ///
    /// This is the embedding entry point: a game or device loop calls
    /// `run_once(Duration::ZERO)` once per frame, or sleeps for
    /// [`poll_timeout`](IoLoop::poll_timeout) between calls. A [`stop`](IoLoop::stop)
    /// requested during the iteration skips its poll and is used up.
    ///
    /// # Errors
    ///
    /// - [`LoopError::Reentrant`] if called from inside one of this loop's callbacks;
    /// - [`LoopError::Closed`] after [`close`](IoLoop::close);
    /// - [`LoopError::Io`] if the poller fails.
    ///
    /// # Panics
    ///
    /// Under [`ExceptionPolicy::Propagate`], resumes the first panic caught in this
    /// iteration, after the iteration's batch has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// ioloop.add_callback(|_| println!("frame work"));
    /// // One frame: runs the callback, polls without blocking.
    /// let more = ioloop.run_once(Duration::ZERO)?;
    /// assert!(!more);
    /// # Ok::<(), ioloop::LoopError>(())
    /// ```
    pub fn run_once(&self, max_wait: Duration) -> Result<bool, LoopError> {
        let inner = &*self.inner;
        if inner.closed.get() {
            return Err(LoopError::Closed);
        }
        if inner.in_iteration.get() {
            return Err(LoopError::Reentrant);
        }
        let _current = CurrentGuard::enter(self);
        self.iterate(Some(max_wait))?;
        Ok(self.has_work())
    }

    /// Whether one of this loop's iterations is running (inside a callback, from
    /// `start` or `run_once`).
    pub(crate) fn in_iteration(&self) -> bool {
        self.inner.in_iteration.get()
    }

    fn has_work(&self) -> bool {
        let inner = &*self.inner;
        !inner.callbacks.borrow().is_empty()
            || inner.shared.has_posted()
            || !inner.timers.borrow().is_empty()
            || !inner.handlers.borrow().is_empty()
            || !inner.tasks.borrow().is_empty()
    }

    /// How long the host may sleep before the loop has work: `Some(ZERO)` while
    /// callbacks are queued (or a stop is pending), the time to the next deadline while
    /// timeouts are pending, `None` when only I/O or another thread can create work (wait
    /// on the loop's fd, see [`AsFd`](std::os::fd::AsFd)).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let clock = ioloop::ManualClock::new();
    /// let ioloop = ioloop::IoLoop::builder().clock(clock.clone()).build()?;
    /// assert_eq!(ioloop.poll_timeout(), None);
    /// ioloop.call_later(Duration::from_millis(16), |_| {});
    /// assert_eq!(ioloop.poll_timeout(), Some(Duration::from_millis(16)));
    /// ioloop.add_callback(|_| {});
    /// assert_eq!(ioloop.poll_timeout(), Some(Duration::ZERO));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn poll_timeout(&self) -> Option<Duration> {
        let inner = &*self.inner;
        if !inner.callbacks.borrow().is_empty()
            || inner.shared.has_posted()
            || inner.shared.stop_requested()
        {
            return Some(Duration::ZERO);
        }
        let next = inner.timers.borrow_mut().next_deadline()?;
        Some(next.saturating_duration_since(inner.clock.now()))
    }

    /// One iteration, in the order of the module documentation.
    fn iterate(&self, max_wait: Option<Duration>) -> Result<Flow, LoopError> {
        let inner = &*self.inner;
        let _iterating = FlagGuard::set(&inner.in_iteration);
        inner.iterations.set(inner.iterations.get() + 1);

        // 1-3: posted callbacks, snapshot, due timeouts.
        inner.shared.drain_into(&mut inner.callbacks.borrow_mut());
        let snapshot = inner.callbacks.borrow().len().min(inner.callback_budget);
        // The reused buffer of due timeouts; untouched when no timeout is pending.
        let due = {
            let mut timers = inner.timers.borrow_mut();
            (!timers.is_empty()).then(|| {
                let mut due = std::mem::take(&mut *inner.due.borrow_mut());
                timers.collect_due(inner.clock.now(), &mut due);
                due
            })
        };

        // 4: callbacks, then timeouts not removed meanwhile.
        for _ in 0..snapshot {
            let entry = inner.callbacks.borrow_mut().pop_front();
            match entry {
                Some(Queued::Callback(callback)) => {
                    self.run_callback(CallbackKind::Callback, callback)
                }
                Some(Queued::Task(key)) => self.poll_task(key),
                None => break,
            }
        }
        if let Some(mut due) = due {
            for timeout in due.drain(..) {
                let callback = inner.timers.borrow_mut().take_due(timeout);
                if let Some(callback) = callback {
                    self.run_callback(CallbackKind::Timeout, callback);
                }
            }
            *inner.due.borrow_mut() = due;
        }
        self.resume_propagated_panic();

        // 5: stop, or poll.
        if inner.shared.take_stop_request() {
            return Ok(Flow::Stopped);
        }
        let timeout = match (self.poll_timeout(), max_wait) {
            (Some(t), Some(max)) => Some(t.min(max)),
            (t, max) => t.or(max),
        };
        let has_sources = !inner.handlers.borrow().is_empty();
        inner.readiness.borrow_mut().wait(
            &inner.shared.poller,
            timeout,
            has_sources,
            inner.shared.wakeups(),
        )?;

        // 6: readiness.
        self.dispatch_ready();
        self.resume_propagated_panic();
        Ok(Flow::Continue)
    }

    pub(crate) fn run_callback(&self, kind: CallbackKind, callback: Callback) {
        let Callback { f, site } = callback;
        self.run_guarded(kind, site, || f(self));
    }

    fn resume_propagated_panic(&self) {
        if let Some(payload) = self.inner.failure.take_propagating() {
            std::panic::resume_unwind(payload);
        }
    }

    /// Closes the loop: pending callbacks and timeouts are dropped without running,
    /// [`Remote`]s start failing with [`LoopError::Closed`], and every registered source is
    /// removed from the poller. With `all_fds` the sources are dropped (closed); without
    /// it they are handed back, each as a `Box<dyn Any>` holding the type you registered.
    ///
    /// Idempotent. After it, `start` and `run_once` fail with [`LoopError::Closed`],
    /// `add_callback` and `add_timeout` drop their closure, and `add_handler` fails.
    ///
    /// # Errors
    ///
    /// [`LoopError::AlreadyRunning`] if the loop is running (close it after `start`
    /// returns).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::{Interest, IoLoop};
    /// use std::os::unix::net::UnixStream;
    ///
    /// let ioloop = IoLoop::new()?;
    /// let (a, _b) = UnixStream::pair()?;
    /// ioloop.add_handler(a, Interest::READ, |_, _, _| {})?;
    /// let sources = ioloop.close(false)?;
    /// let a: Box<UnixStream> = sources.into_iter().next().unwrap().downcast().unwrap();
    /// # drop(a);
    /// assert!(ioloop.run_once(std::time::Duration::ZERO).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(&self, all_fds: bool) -> Result<Vec<Box<dyn Any>>, LoopError> {
        let inner = &*self.inner;
        if inner.running.get() || inner.in_iteration.get() {
            return Err(LoopError::AlreadyRunning);
        }
        if inner.closed.replace(true) {
            return Ok(Vec::new());
        }
        inner.shared.close();
        let callbacks = std::mem::take(&mut *inner.callbacks.borrow_mut());
        let timeouts = inner.timers.borrow_mut().take_all();
        let tasks = std::mem::take(&mut *inner.tasks.borrow_mut());
        let registrations = inner
            .handlers
            .borrow_mut()
            .unregister_all(&inner.shared.poller);
        // Dropped here, with no borrow held: a closure's destructor may use the loop.
        drop((callbacks, timeouts, tasks));
        let sources = registrations.into_iter().map(|r| r.into_source());
        if all_fds {
            sources.for_each(drop);
            Ok(Vec::new())
        } else {
            Ok(sources.collect())
        }
    }

    /// Whether [`close`](IoLoop::close) was called.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// ioloop.close(true)?;
    /// assert!(ioloop.is_closed());
    /// # Ok::<(), ioloop::LoopError>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.closed.get()
    }

    /// Counters describing the loop's current state.
    ///
    /// # Examples
    ///
    /// See [`LoopStats`].
    pub fn stats(&self) -> LoopStats {
        let inner = &*self.inner;
        let timers = inner.timers.borrow();
        LoopStats {
            iterations: inner.iterations.get(),
            callbacks_queued: inner.callbacks.borrow().len(),
            timeouts_pending: timers.len(),
            timer_heap_entries: timers.heap_entries(),
            handlers: inner.handlers.borrow().len(),
            tasks: inner.tasks.borrow().len(),
            remote_wakeups: inner.shared.wakeups(),
            poller_modifications: inner.poller_modifications.get(),
        }
    }
}

impl fmt::Debug for IoLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoLoop")
            .field("running", &self.inner.running.get())
            .field("closed", &self.inner.closed.get())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Drop for LoopInner {
    fn drop(&mut self) {
        self.shared.close();
        // The poller outlives us while Remotes hold it: unregister every source before it
        // is dropped, as polling requires.
        let registrations = self.handlers.get_mut().unregister_all(&self.shared.poller);
        drop(registrations);
    }
}

/// The poller's fd: readable when a registered source is ready or another thread posted
/// work (not when a timeout is due: use [`IoLoop::poll_timeout`] for that). An embedding
/// host can wait on it in its own loop, then call [`IoLoop::run_once`] with a zero wait.
///
/// # Examples
///
/// ```
/// use std::os::fd::AsFd;
/// let ioloop = ioloop::IoLoop::new()?;
/// let fd = ioloop.as_fd();
/// # let _ = fd;
/// # Ok::<(), std::io::Error>(())
/// ```
#[cfg(unix)]
impl std::os::fd::AsFd for IoLoop {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.inner.shared.poller.as_fd()
    }
}

/// See the [`AsFd`](std::os::fd::AsFd) implementation.
///
/// # Examples
///
/// ```
/// use std::os::fd::AsRawFd;
/// let ioloop = ioloop::IoLoop::new()?;
/// assert!(ioloop.as_raw_fd() >= 0);
/// # Ok::<(), std::io::Error>(())
/// ```
#[cfg(unix)]
impl std::os::fd::AsRawFd for IoLoop {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.inner.shared.poller.as_raw_fd()
    }
}
