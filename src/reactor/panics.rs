//! Panics in user code (Tornado's "callback exceptions"): every callback, timeout,
//! handler and periodic call runs under `catch_unwind`, and a panic is reported with the
//! place the callback was registered.
//!
//! What happens to a panic is the loop's [`PanicPolicy`]: by default it goes to the panic
//! handler (which logs it; replace it with [`IoLoop::set_panic_handler`]) and the loop
//! carries on with the rest of the batch.
//! Under [`PanicPolicy::Propagate`] the loop finishes the current batch, so its state
//! stays consistent, and then resumes the panic out of [`IoLoop::start`] or
//! [`IoLoop::run_once`].
//!
//! The same wrapper times each call when a blocking threshold is configured and logs the
//! callbacks that held the loop longer than that, again naming their registration site.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::{self, AssertUnwindSafe, Location};
use std::time::Duration;

use super::clock::Clock;

/// What kind of user code panicked or blocked.
///
/// # Examples
///
/// ```
/// assert_eq!(ioloop::CallbackKind::Timeout.to_string(), "timeout");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallbackKind {
    /// A callback from [`IoLoop::add_callback`](crate::IoLoop::add_callback) or [`Remote::add_callback`](crate::Remote::add_callback).
    Callback,
    /// A timeout from [`IoLoop::add_timeout`](crate::IoLoop::add_timeout) and friends.
    Timeout,
    /// An fd handler from [`IoLoop::add_handler`](crate::IoLoop::add_handler).
    Handler,
    /// A [`PeriodicCallback`](crate::PeriodicCallback)'s callback.
    Periodic,
    /// A poll of a task from [`IoLoop::spawn`](crate::IoLoop::spawn) (panics reach the panic policy only
    /// when nobody holds the task's [`Task`](crate::Task) handle).
    Task,
}

impl fmt::Display for CallbackKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CallbackKind::Callback => "callback",
            CallbackKind::Timeout => "timeout",
            CallbackKind::Handler => "handler",
            CallbackKind::Periodic => "periodic callback",
            CallbackKind::Task => "task",
        })
    }
}

/// What to do when user code panics. Set with
/// [`IoLoopBuilder::panic_policy`](crate::IoLoopBuilder::panic_policy).
///
/// # Examples
///
/// ```
/// use ioloop::{PanicPolicy, IoLoop};
/// let ioloop = IoLoop::builder().panic_policy(PanicPolicy::Propagate).build()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[doc(alias = "ExceptionPolicy")]
pub enum PanicPolicy {
    /// Pass the panic to the panic handler (by default: log it) and keep running.
    /// Tornado's behaviour.
    #[default]
    LogAndContinue,
    /// Finish the current batch, then resume the panic from [`IoLoop::start`](crate::IoLoop::start) or
    /// [`IoLoop::run_once`](crate::IoLoop::run_once). Later panics in the same batch are logged.
    Propagate,
}

/// A panic caught in user code, as given to the panic handler.
///
/// # Examples
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
///
/// let ioloop = ioloop::IoLoop::new()?;
/// let seen = Rc::new(RefCell::new(Vec::new()));
/// let s = seen.clone();
/// ioloop.set_panic_handler(move |report| {
///     s.borrow_mut().push((report.kind(), report.message().to_owned(), report.site().line()));
/// });
/// let line = line!() + 1;
/// ioloop.add_callback(|_| panic!("boom"));
/// ioloop.run_once(std::time::Duration::ZERO)?;
/// assert_eq!(seen.borrow()[0], (ioloop::CallbackKind::Callback, "boom".to_owned(), line));
/// # Ok::<(), ioloop::LoopError>(())
/// ```
pub struct PanicReport<'a> {
    kind: CallbackKind,
    site: &'static Location<'static>,
    payload: &'a (dyn Any + Send),
}

impl PanicReport<'_> {
    /// What kind of callback panicked.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc, time::Duration};
    /// use ioloop::CallbackKind;
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let kind = Rc::new(Cell::new(None));
    /// let k = kind.clone();
    /// ioloop.set_panic_handler(move |report| k.set(Some(report.kind())));
    /// ioloop.add_timeout(Duration::ZERO, |_| panic!("late"));
    /// ioloop.run_once(Duration::ZERO)?;
    /// assert_eq!(kind.get(), Some(CallbackKind::Timeout));
    /// # Ok::<(), ioloop::LoopError>(())
    /// ```
    pub fn kind(&self) -> CallbackKind {
        self.kind
    }

    /// Where the callback was registered (`file:line:column`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc, time::Duration};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let site = Rc::new(Cell::new(None));
    /// let s = site.clone();
    /// ioloop.set_panic_handler(move |report| s.set(Some(report.site())));
    /// let line = line!() + 1;
    /// ioloop.add_callback(|_| panic!("boom"));
    /// ioloop.run_once(Duration::ZERO)?;
    /// let site = site.get().expect("the callback panicked");
    /// assert_eq!((site.file(), site.line()), (file!(), line));
    /// # Ok::<(), ioloop::LoopError>(())
    /// ```
    pub fn site(&self) -> &'static Location<'static> {
        self.site
    }

    /// The panic message, when the payload is a string (it nearly always is).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::{cell::RefCell, rc::Rc, time::Duration};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let message = Rc::new(RefCell::new(String::new()));
    /// let m = message.clone();
    /// ioloop.set_panic_handler(move |report| *m.borrow_mut() = report.message().to_owned());
    /// let disk = 3;
    /// ioloop.add_callback(move |_| panic!("disk {disk} is full"));
    /// ioloop.run_once(Duration::ZERO)?;
    /// assert_eq!(*message.borrow(), "disk 3 is full");
    /// # Ok::<(), ioloop::LoopError>(())
    /// ```
    pub fn message(&self) -> &str {
        panic_message(self.payload)
    }

    /// The raw panic payload.
    ///
    /// # Examples
    ///
    /// A payload given to [`std::panic::panic_any`] comes back with `downcast_ref`:
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc, time::Duration};
    ///
    /// #[derive(Debug, Clone, Copy, PartialEq)]
    /// struct MyError(u32);
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let seen = Rc::new(Cell::new(None));
    /// let s = seen.clone();
    /// ioloop.set_panic_handler(move |report| {
    ///     assert_eq!(report.message(), "<non-string panic payload>");
    ///     s.set(report.payload().downcast_ref::<MyError>().copied());
    /// });
    /// ioloop.add_callback(|_| std::panic::panic_any(MyError(7)));
    /// ioloop.run_once(Duration::ZERO)?;
    /// assert_eq!(seen.get(), Some(MyError(7)));
    /// # Ok::<(), ioloop::LoopError>(())
    /// ```
    pub fn payload(&self) -> &(dyn Any + Send) {
        self.payload
    }
}

impl fmt::Debug for PanicReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PanicReport")
            .field("kind", &self.kind)
            .field("site", &self.site)
            .field("message", &self.message())
            .finish()
    }
}

impl fmt::Display for PanicReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "panic in {} registered at {}: {}",
            self.kind,
            self.site,
            self.message()
        )
    }
}

pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "<non-string panic payload>"
    }
}

pub(crate) type PanicHandler = Box<dyn FnMut(&PanicReport<'_>)>;

/// The loop's failure settings and the panic waiting to be propagated.
pub(crate) struct PanicHandling {
    policy: PanicPolicy,
    blocking_threshold: Option<Duration>,
    handler: RefCell<Option<PanicHandler>>,
    /// Bumped by every `set_panic_handler`, so a handler that replaces itself while it
    /// runs is not put back afterwards.
    handler_version: Cell<u64>,
    propagating: RefCell<Option<Box<dyn Any + Send>>>,
}

impl PanicHandling {
    pub(crate) fn new(policy: PanicPolicy, blocking_threshold: Option<Duration>) -> Self {
        PanicHandling {
            policy,
            blocking_threshold,
            handler: RefCell::new(None),
            handler_version: Cell::new(0),
            propagating: RefCell::new(None),
        }
    }

    /// The panic to resume, if [`PanicPolicy::Propagate`] caught one.
    pub(crate) fn take_propagating(&self) -> Option<Box<dyn Any + Send>> {
        self.propagating.borrow_mut().take()
    }

    pub(crate) fn report(
        &self,
        kind: CallbackKind,
        site: &'static Location<'static>,
        payload: Box<dyn Any + Send>,
    ) {
        if self.policy == PanicPolicy::Propagate {
            let mut slot = self.propagating.borrow_mut();
            if slot.is_none() {
                *slot = Some(payload);
                return;
            }
        }
        let report = PanicReport {
            kind,
            site,
            payload: &*payload,
        };
        let taken = self.handler.borrow_mut().take();
        let Some(mut handler) = taken else {
            log::error!(target: "ioloop", "{report}");
            return;
        };
        let version = self.handler_version.get();
        if let Err(inner) = panic::catch_unwind(AssertUnwindSafe(|| handler(&report))) {
            log::error!(
                target: "ioloop",
                "the panic handler panicked ({}) while handling: {report}",
                panic_message(&*inner)
            );
        }
        if self.handler_version.get() == version {
            *self.handler.borrow_mut() = Some(handler);
        }
    }
}

impl fmt::Debug for PanicHandling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PanicHandling")
            .field("policy", &self.policy)
            .field("blocking_threshold", &self.blocking_threshold)
            .finish_non_exhaustive()
    }
}

impl PanicHandling {
    /// Runs user code `f` on behalf of a callback of `kind` registered at `site`: catches a
    /// panic and hands it to the panic policy, and logs the call if it took longer
    /// than the blocking threshold (measured on the loop's clock).
    pub(crate) fn run_guarded(
        &self,
        clock: &dyn Clock,
        kind: CallbackKind,
        site: &'static Location<'static>,
        f: impl FnOnce(),
    ) {
        if let Err(payload) = self.run_timed(clock, kind, site, f) {
            self.report(kind, site, payload);
        }
    }

    /// Runs `f` under `catch_unwind` and the blocking threshold, and returns the panic (if
    /// any) to the caller instead of reporting it.
    pub(crate) fn run_timed(
        &self,
        clock: &dyn Clock,
        kind: CallbackKind,
        site: &'static Location<'static>,
        f: impl FnOnce(),
    ) -> std::thread::Result<()> {
        let started = self.blocking_threshold.map(|_| clock.now());
        let result = panic::catch_unwind(AssertUnwindSafe(f));
        if let (Some(threshold), Some(started)) = (self.blocking_threshold, started) {
            let took = clock.now().saturating_duration_since(started);
            if took > threshold {
                log::warn!(
                    target: "ioloop",
                    "IoLoop blocked for {took:?} (threshold {threshold:?}) by a {kind} registered at {site}"
                );
            }
        }
        result
    }

    /// Replaces the panic handler (see [`IoLoop::set_panic_handler`](crate::IoLoop::set_panic_handler)).
    pub(crate) fn set_handler(&self, handler: PanicHandler) {
        self.handler_version.set(self.handler_version.get() + 1);
        // The handler replaced is a user value: dropped after the borrow (its destructor
        // may set a handler in turn).
        let replaced = self.handler.replace(Some(handler));
        drop(replaced);
    }
}
