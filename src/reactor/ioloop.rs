//! [`IoLoop`]: the reactor's handle, its callback queue and its run loop.
//!
//! The loop's state and one iteration of it, in the order the [crate
//! documentation](crate#iteration-order) gives (each step pinned by a test in
//! `tests/reactor/ordering.rs`): the handle, the current-loop context, the callback queue,
//! and the dispatch of due timeouts, ready handlers and woken tasks.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::panic::Location;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

use super::clock::Clock;
use super::cross_thread::CrossThread;
use super::interest::Interest;
use super::panics::{CallbackKind, PanicHandling, PanicReport};
use super::poll::ReadinessBuffer;
use super::post_spin::PostSpin;
use super::queue::{Callback, Queued};
use super::raw_task::{PollStart, TaskEnd, TaskRef};
use super::registration::{registered_fd, HandlerRegistry};
use super::sys::PollMode;
use super::task_registry::{cancel_all, TaskRegistry};
use super::timer_heap::{Timeout, TimerHeap};
use crate::error::LoopError;

thread_local! {
    static CURRENT: RefCell<Option<Weak<LoopInner>>> = const { RefCell::new(None) };
}

/// A handle to an event loop: a timer heap, a callback queue and a set of fd handlers,
/// run on one thread.
///
/// `IoLoop` is a cheap clonable handle (an `Rc` inside) and is neither `Send` nor `Sync`:
/// it belongs to the thread that made it. Other threads reach it through a
/// [`Remote`](crate::Remote). Every callback receives `&IoLoop`, so it can schedule more work, remove
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
    pub(super) inner: Rc<LoopInner>,
}

/// A handle to a loop that does not keep it alive (tokio's `Weak` handles, calloop's
/// `LoopHandle` kept weakly): what a value the loop owns (a stream, a timer, a server)
/// keeps of its loop, so that the loop and what it owns never hold each other.
///
/// [`upgrade`](WeakIoLoop::upgrade) gives the loop back while any [`IoLoop`] handle to it
/// lives. Like `IoLoop`, it stays on the loop's thread (use a [`Remote`](crate::Remote)
/// from other threads).
///
/// # Examples
///
/// ```
/// let ioloop = ioloop::IoLoop::new()?;
/// let weak = ioloop.downgrade();
/// assert!(weak.upgrade().is_some());
/// drop(ioloop);
/// assert!(weak.upgrade().is_none());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct WeakIoLoop {
    inner: Weak<LoopInner>,
}

impl WeakIoLoop {
    /// The loop, if a handle to it is still alive.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let weak = ioloop.downgrade();
    /// weak.upgrade().expect("alive").add_callback(|_| {});
    /// assert_eq!(ioloop.stats().callbacks_queued, 1);
    /// drop(ioloop);
    /// assert!(weak.upgrade().is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn upgrade(&self) -> Option<IoLoop> {
        self.inner.upgrade().map(|inner| IoLoop { inner })
    }
}

impl std::fmt::Debug for WeakIoLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeakIoLoop")
            .field("alive", &(self.inner.strong_count() > 0))
            .finish()
    }
}

impl IoLoop {
    /// A [`WeakIoLoop`]: a handle that does not keep this loop alive. Loop thread.
    ///
    /// # Examples
    ///
    /// A callback the loop holds may keep a weak handle without keeping the loop alive:
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let remote = ioloop.remote();
    /// let weak = ioloop.downgrade();
    /// ioloop.add_callback(move |_| drop(weak));
    /// drop(ioloop);
    /// assert!(remote.is_closed()); // dropped, with its queued callback
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn downgrade(&self) -> WeakIoLoop {
        WeakIoLoop {
            inner: Rc::downgrade(&self.inner),
        }
    }
}

/// The state behind an [`IoLoop`] handle.
pub(super) struct LoopInner {
    pub(super) shared: Arc<CrossThread>,
    pub(super) clock: Box<dyn Clock>,
    pub(super) failure: PanicHandling,
    pub(super) callbacks: RefCell<VecDeque<Queued>>,
    pub(super) tasks: RefCell<TaskRegistry>,
    pub(super) timers: RefCell<TimerHeap<Callback>>,
    /// Reused buffer for the timeouts collected in step 3.
    due: RefCell<Vec<Timeout>>,
    pub(super) handlers: RefCell<HandlerRegistry>,
    readiness: RefCell<ReadinessBuffer>,
    /// Whether a running loop spins for a post before it sleeps (`post_spin.rs`).
    post_spin: PostSpin,
    pub(super) poll_mode: PollMode,
    callback_budget: usize,
    pub(super) running: Cell<bool>,
    in_iteration: Cell<bool>,
    pub(super) closed: Cell<bool>,
    pub(super) iterations: Cell<u64>,
    pub(super) poller_modifications: Cell<u64>,
}

impl LoopInner {
    /// A loop's state, registering sources on `shared`'s poller in `poll_mode`. The loop becomes
    /// this thread's current loop if no live loop is.
    pub(super) fn build(
        shared: CrossThread,
        poll_mode: PollMode,
        clock: Box<dyn Clock>,
        failure: PanicHandling,
        readiness: ReadinessBuffer,
        callback_budget: usize,
    ) -> IoLoop {
        let epoch = clock.now();
        let inner = Rc::new(LoopInner {
            shared: Arc::new(shared),
            clock,
            failure,
            callbacks: RefCell::new(VecDeque::new()),
            tasks: RefCell::new(TaskRegistry::default()),
            timers: RefCell::new(TimerHeap::new(epoch)),
            due: RefCell::new(Vec::new()),
            handlers: RefCell::new(HandlerRegistry::default()),
            post_spin: PostSpin::default(),
            readiness: RefCell::new(readiness),
            poll_mode,
            callback_budget,
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
        IoLoop { inner }
    }
}

/// Whether the run loop should go on after an iteration.
enum Flow {
    Continue,
    Stopped,
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
    /// from other threads use [`Remote::add_callback`](crate::Remote::add_callback). On a closed loop the callback is
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
    pub(crate) fn try_queue_local(&self, entry: Queued) -> Result<(), Queued> {
        if self.inner.closed.get() {
            return Err(entry);
        }
        match self.inner.callbacks.try_borrow_mut() {
            Ok(mut callbacks) => {
                callbacks.push_back(entry);
                Ok(())
            }
            Err(_) => Err(entry),
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
    /// Under [`PanicPolicy::Propagate`](crate::PanicPolicy::Propagate), resumes the first panic caught in user code,
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
            if let Flow::Stopped = self.iterate(None, true)? {
                return Ok(());
            }
        }
    }

    /// Asks the loop to stop: the callbacks and timeouts of the current iteration finish,
    /// and [`start`](IoLoop::start) returns before the next poll. Readiness already
    /// collected is still dispatched, the part of the last wait beyond this iteration's
    /// [`dispatch_budget`](crate::IoLoopBuilder::dispatch_budget) included.
    ///
    /// Loop thread only; from other threads use [`Remote::stop`](crate::Remote::stop). Called while the loop is
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
    /// timeouts, registered handlers, live tasks, or ready sources of the last wait still
    /// to be dispatched.
    ///
    /// This is the embedding entry point: a game or device loop calls
    /// `run_once(Duration::ZERO)` once per frame, or sleeps for
    /// [`poll_timeout`](IoLoop::poll_timeout) between calls. A [`stop`](IoLoop::stop)
    /// requested during the iteration skips its poll and is used up.
    ///
    /// Waits keep the precision the OS offers: on Linux 5.11 and later the wait (for
    /// `max_wait` or the next deadline, whichever is first) is to the nanosecond plus the
    /// kernel's timer slack (50 µs by default), so `run_once(400 µs)` on an idle loop
    /// returns after about 400 µs; on older kernels and other systems it is rounded up
    /// to whole milliseconds. Either way it is never shorter than asked, so a timeout
    /// never fires before its deadline.
    ///
    /// # Errors
    ///
    /// - [`LoopError::Reentrant`] if called from inside one of this loop's callbacks;
    /// - [`LoopError::Closed`] after [`close`](IoLoop::close);
    /// - [`LoopError::Io`] if the poller fails.
    ///
    /// # Panics
    ///
    /// Under [`PanicPolicy::Propagate`](crate::PanicPolicy::Propagate), resumes the first panic caught in this
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
        self.iterate(Some(max_wait), false)?;
        Ok(self.has_work())
    }

    /// Whether one of this loop's iterations is running (inside a callback, from
    /// `start` or `run_once`).
    pub(crate) fn in_iteration(&self) -> bool {
        self.inner.in_iteration.get()
    }

    /// The part of the loop other threads reach: its poller and posted work. A task's
    /// owner, and what a [`Remote`](crate::Remote) holds.
    pub(crate) fn cross_thread(&self) -> &Arc<CrossThread> {
        &self.inner.shared
    }

    /// Puts a task the loop now owns in its registry, which cancels it if the loop closes
    /// before it ends. Loop thread only.
    pub(crate) fn register_task(&self, task: TaskRef) {
        self.inner.tasks.borrow_mut().insert(task);
    }

    fn has_work(&self) -> bool {
        let inner = &*self.inner;
        !inner.callbacks.borrow().is_empty()
            || inner.shared.has_posted()
            || !inner.timers.borrow().is_empty()
            || !inner.handlers.borrow().is_empty()
            || !inner.tasks.borrow().is_empty()
            || inner.readiness.borrow().has_undispatched()
    }

    /// How long the host may sleep before the loop has work: `Some(ZERO)` while
    /// callbacks are queued, a stop is pending or sources the last wait reported are
    /// still to be dispatched (see
    /// [`dispatch_budget`](crate::IoLoopBuilder::dispatch_budget)), the time to the next
    /// deadline while timeouts are pending, `None` when only I/O or another thread can
    /// create work (wait on the loop's fd, see [`AsFd`](std::os::fd::AsFd)).
    ///
    /// The time is the loop's clock's: on a [`ManualClock`](crate::ManualClock) loop it is
    /// game time, which passes only when the host calls
    /// [`advance`](crate::ManualClock::advance). Sleeping that long on the wall clock does
    /// not make the deadline due; advance the clock by it (or by the frame), then step.
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
            || inner.readiness.borrow().has_undispatched()
        {
            return Some(Duration::ZERO);
        }
        let next = inner.timers.borrow_mut().next_deadline()?;
        Some(next.saturating_duration_since(inner.clock.now()))
    }

    /// One iteration, in the order of the module documentation.
    /// `follow_policy`: a running loop checks its sources as its [`IoCheck`] policy says;
    /// a step from [`run_once`](IoLoop::run_once) always does.
    fn iterate(&self, max_wait: Option<Duration>, follow_policy: bool) -> Result<Flow, LoopError> {
        let inner = &*self.inner;
        let _iterating = FlagGuard::set(&inner.in_iteration);
        inner.iterations.set(inner.iterations.get() + 1);

        // 1-3: posted callbacks, snapshot, due timeouts.
        if inner.shared.drain_into(&mut inner.callbacks.borrow_mut()) && follow_policy {
            inner.post_spin.found_posts();
        }
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
                Some(Queued::Task(task)) => self.poll_task(task),
                Some(Queued::Adopt(unadopted)) => {
                    let task = unadopted.adopt();
                    self.register_task(task.clone());
                    self.poll_task(task);
                }
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
            // Readiness a wait collected is dispatched before the loop stops, as a whole
            // wait was before the dispatch budget: a host that starts the loop again much
            // later finds no stale readiness (and oneshot sources are re-armed).
            while inner.readiness.borrow().has_undispatched() {
                self.dispatch_ready();
            }
            self.resume_propagated_panic();
            return Ok(Flow::Stopped);
        }
        let timeout = match (self.poll_timeout(), max_wait) {
            (Some(t), Some(max)) => Some(t.min(max)),
            (t, max) => t.or(max),
        };
        let timeout = if follow_policy {
            inner.post_spin.before_wait(&inner.shared, timeout)
        } else {
            timeout
        };
        let has_sources = !inner.handlers.borrow().is_empty();
        inner.readiness.borrow_mut().wait(
            &inner.shared.poller,
            timeout,
            has_sources,
            inner.shared.wakeups(),
            follow_policy,
            || inner.clock.now(),
        )?;

        // 6: readiness.
        self.dispatch_ready();
        self.resume_propagated_panic();
        Ok(Flow::Continue)
    }

    fn run_callback(&self, kind: CallbackKind, callback: Callback) {
        let Callback { f, site } = callback;
        self.run_guarded(kind, site, || f(self));
    }

    /// Runs user code `f` on behalf of a callback of `kind` registered at `site`: catches a
    /// panic and hands it to the panic policy, and logs the call if it took longer
    /// than the blocking threshold (measured on the loop's clock).
    pub(crate) fn run_guarded(
        &self,
        kind: CallbackKind,
        site: &'static Location<'static>,
        f: impl FnOnce(),
    ) {
        let inner = &*self.inner;
        inner.failure.run_guarded(&*inner.clock, kind, site, f);
    }

    /// Step 6 of an iteration: calls the handler of each ready source, one at a time, up
    /// to the dispatch budget.
    fn dispatch_ready(&self) {
        let inner = &*self.inner;
        let budget = inner.readiness.borrow().dispatch_budget();
        for _ in 0..budget {
            let Some((key, readiness)) = inner.readiness.borrow_mut().next_ready() else {
                break;
            };
            let found = inner.handlers.borrow_mut().for_dispatch(key);
            let Some(registration) = found else {
                continue; // removed earlier in this batch
            };
            let site = registration.site();
            // The loop's own reference goes with the call: if the handler removed itself,
            // its source and closure are dropped as it returns, with no borrow held.
            self.run_guarded(CallbackKind::Handler, site, || {
                registration.dispatch(self, key, readiness)
            });
            if inner.poll_mode == PollMode::Oneshot {
                let armed = inner.handlers.borrow_mut().get(key);
                if let Some((fd, interest)) = armed {
                    // SAFETY: the registration is still in its slot, alive.
                    if let Err(e) = unsafe { self.arm(fd, key, interest) } {
                        log::error!(target: "ioloop", "failed to re-arm fd {fd}: {e}");
                    }
                }
            }
        }
    }

    /// Tells the poller the interest of the registration `key` of `fd` (a change, or a
    /// re-arm on platforms without level-triggered polling).
    ///
    /// # Safety
    ///
    /// `fd` is the source of the live registration `key` (see [`registered_fd`]).
    pub(super) unsafe fn arm(&self, fd: RawFd, key: usize, interest: Interest) -> io::Result<()> {
        let inner = &*self.inner;
        inner
            .poller_modifications
            .set(inner.poller_modifications.get() + 1);
        // SAFETY: `fd` comes from a live registration, as the caller promises.
        let source = unsafe { registered_fd(fd) };
        inner
            .shared
            .poller
            .modify(source, key, interest, inner.poll_mode)
    }

    /// Polls `task` from a run-queue entry (which may be stale: the task ended), and ends
    /// it if it finished, panicked or was cancelled.
    pub(crate) fn poll_task(&self, task: TaskRef) {
        match task.start_poll() {
            PollStart::Skip => return,
            // SAFETY: this loop's task (it was in its run queue), not being polled.
            PollStart::Cancel => return unsafe { self.end_task(&task, TaskEnd::Cancelled) },
            PollStart::Run => {}
        }
        let inner = &*self.inner;
        let mut ready = false;
        let polled =
            inner
                .failure
                .run_timed(&*inner.clock, CallbackKind::Task, task.site(), || {
                    // SAFETY: the loop thread polls a task that `start_poll` let run.
                    ready = unsafe { task.poll() }.is_ready();
                });
        match polled {
            // SAFETY: this loop's task; its poll has unwound.
            Err(payload) => unsafe { self.end_task(&task, TaskEnd::Panicked(payload)) },
            Ok(()) if ready => self.complete_task(&task),
            // Cancelled while it ran: it ends now.
            // SAFETY: this loop's task; its poll has returned.
            Ok(()) if task.end_poll_pending() => unsafe {
                self.end_task(&task, TaskEnd::Cancelled)
            },
            Ok(()) => {}
        }
    }

    /// Ends one of this loop's tasks: drops its future and delivers `end` to its handle
    /// (or, for a panic nobody awaits, to the panic policy).
    ///
    /// # Safety
    ///
    /// `task` belongs to this loop, this is the loop's thread, and no poll of the task is
    /// running (none is on the stack: a poll that panicked has unwound).
    pub(crate) unsafe fn end_task(&self, task: &TaskRef, end: TaskEnd) {
        // SAFETY: the loop thread ends its own task, which no poll is running (the
        // caller's promise).
        unsafe { task.end(end) };
        self.complete_task(task);
    }

    /// Marks a task whose outcome is stored as complete and removes it from the registry.
    fn complete_task(&self, task: &TaskRef) {
        let unclaimed = task.complete();
        let registered = self.inner.tasks.borrow_mut().remove(task);
        drop(registered);
        if let Some(TaskEnd::Panicked(payload)) = unclaimed {
            self.inner
                .failure
                .report(CallbackKind::Task, task.site(), payload);
        }
    }

    /// Replaces the panic handler: the function that receives panics caught in
    /// callbacks, timeouts, handlers and periodic callbacks under
    /// [`PanicPolicy::LogAndContinue`](crate::PanicPolicy::LogAndContinue). The default handler logs the report at
    /// `error` level (target `ioloop`).
    ///
    /// Runs on the loop thread, after the panicking callback unwound and before the next
    /// callback of the batch. A panic inside the handler itself is logged and ignored.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let panics = Rc::new(Cell::new(0));
    /// let p = panics.clone();
    /// ioloop.set_panic_handler(move |_report| p.set(p.get() + 1));
    /// ioloop.add_callback(|_| panic!("first"));
    /// ioloop.add_callback(|_| panic!("second"));
    /// ioloop.run_once(std::time::Duration::ZERO)?;
    /// assert_eq!(panics.get(), 2);
    /// # Ok::<(), ioloop::LoopError>(())
    /// ```
    #[doc(alias = "set_exception_handler", alias = "handle_callback_exception")]
    pub fn set_panic_handler<F>(&self, handler: F)
    where
        F: FnMut(&PanicReport<'_>) + 'static,
    {
        self.inner.failure.set_handler(Box::new(handler));
    }

    fn resume_propagated_panic(&self) {
        if let Some(payload) = self.inner.failure.take_propagating() {
            std::panic::resume_unwind(payload);
        }
    }

    /// Closes the loop: pending callbacks and timeouts are dropped without running,
    /// [`Remote`](crate::Remote)s start failing with [`LoopError::Closed`], and every registered source is
    /// removed from the poller. With `all_fds` the sources are dropped (closed); without
    /// it they are handed back, each as a `Box<dyn Any>` holding the type you registered
    /// with [`add_handler`](IoLoop::add_handler). Streams ([`IoStream`](crate::IoStream))
    /// open on the loop close either way, and run their close callbacks.
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
        let tasks = inner.tasks.borrow_mut().take_all();
        let registrations = inner
            .handlers
            .borrow_mut()
            .unregister_all(&inner.shared.poller);
        inner.readiness.borrow_mut().clear();
        // Dropped here, with no borrow held: a closure's destructor may use the loop.
        drop((callbacks, timeouts));
        cancel_all(tasks);
        let sources = registrations.into_iter().filter_map(|r| r.release());
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
}

impl Drop for LoopInner {
    fn drop(&mut self) {
        self.shared.close();
        // Every source leaves the poller first, as in `close`: a task's destructor may
        // close a stream's socket, and the stream cannot reach this loop to remove its
        // registration any more (the poller outlives us while Remotes hold it). Then
        // tasks end: a task that watches a stream (a WebSocket saying "going away") still
        // finds it open; the streams close after, when the loop lets go of their
        // registrations.
        let registrations = self.handlers.get_mut().unregister_all(&self.shared.poller);
        cancel_all(self.tasks.get_mut().take_all());
        registrations.into_iter().for_each(|r| drop(r.release()));
    }
}

/// The poller's fd: readable when a registered source is ready or another thread posted
/// work (not when a timeout is due, nor for ready sources of the last wait still to be
/// dispatched: use [`IoLoop::poll_timeout`] for those). An embedding
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
