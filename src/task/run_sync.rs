//! [`IoLoop::run_sync`]: run the loop until one future resolves (Tornado's `run_sync`), the
//! way a `main` function or a test drives async code on the loop.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use super::spawn::{TaskError, TaskPanic};
use crate::error::LoopError;
use crate::reactor::cross_thread::CrossThread;
use crate::reactor::ioloop::IoLoop;

/// Why [`IoLoop::run_sync`] returned without the future's output.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let ioloop = ioloop::IoLoop::new()?;
/// let never = std::future::pending::<()>();
/// let err = ioloop.run_sync_timeout(never, Duration::from_millis(1)).unwrap_err();
/// assert!(matches!(err, ioloop::RunSyncError::TimedOut));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum RunSyncError {
    /// The time limit of [`IoLoop::run_sync_timeout`] passed first; the future was
    /// dropped.
    TimedOut,
    /// [`IoLoop::stop`] (or [`Remote::stop`](crate::Remote::stop)) stopped the loop first;
    /// the future was dropped.
    Stopped,
    /// The future panicked.
    Panicked(TaskPanic),
    /// The loop could not run: closed, already running, or a poller error.
    Loop(LoopError),
}

impl fmt::Display for RunSyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunSyncError::TimedOut => f.write_str("run_sync timed out"),
            RunSyncError::Stopped => f.write_str("the IoLoop stopped before the future completed"),
            RunSyncError::Panicked(panic) => panic.fmt(f),
            RunSyncError::Loop(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RunSyncError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunSyncError::Loop(e) => Some(e),
            _ => None,
        }
    }
}

impl From<LoopError> for RunSyncError {
    fn from(e: LoopError) -> Self {
        RunSyncError::Loop(e)
    }
}

impl From<std::io::Error> for RunSyncError {
    fn from(e: std::io::Error) -> Self {
        RunSyncError::Loop(LoopError::Io(e))
    }
}

impl From<RunSyncError> for std::io::Error {
    fn from(e: RunSyncError) -> Self {
        match e {
            RunSyncError::Loop(e) => e.into(),
            RunSyncError::TimedOut => std::io::Error::new(std::io::ErrorKind::TimedOut, e),
            other => std::io::Error::other(other),
        }
    }
}

/// Wakes `run_sync` by stopping the loop: the task it waits for completed. Tasks complete
/// on the loop thread, so no poller wakeup is needed. Disarmed before `run_sync` cancels
/// the task itself, which must not leave a stop request behind.
struct StopLoop {
    shared: Arc<CrossThread>,
    armed: AtomicBool,
}

impl Wake for StopLoop {
    fn wake(self: Arc<Self>) {
        if self.armed.load(Ordering::Acquire) {
            self.shared.request_stop();
        }
    }
}

impl IoLoop {
    /// Runs the loop until `future` resolves and returns its output (Tornado's
    /// `run_sync`).
    ///
    /// The future runs as a task on this loop (so it need not be `Send`, and
    /// [`IoLoop::current`] works inside it). Other callbacks, timers and tasks run as
    /// usual meanwhile; the loop stops at the end of the iteration in which the future
    /// resolved, and whatever else is pending stays pending for the next run.
    ///
    /// # Errors
    ///
    /// - [`RunSyncError::Stopped`] if the loop is stopped first (a `stop()` requested
    ///   before the call counts); the future is dropped;
    /// - [`RunSyncError::Panicked`] if the future panics;
    /// - [`RunSyncError::Loop`] if the loop is closed, already running (`run_sync` from
    ///   one of its own callbacks), or the poller fails.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let answer = ioloop.run_sync(async {
    ///     ioloop::yield_now().await;
    ///     42
    /// })?;
    /// assert_eq!(answer, 42);
    /// # Ok::<(), ioloop::RunSyncError>(())
    /// ```
    #[track_caller]
    pub fn run_sync<F>(&self, future: F) -> Result<F::Output, RunSyncError>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.run_sync_until(future, None)
    }

    /// [`run_sync`](IoLoop::run_sync) with a time limit on the loop's clock: if `limit`
    /// passes first, the future is dropped and [`RunSyncError::TimedOut`] comes back.
    ///
    /// # Errors
    ///
    /// As [`run_sync`](IoLoop::run_sync), plus [`RunSyncError::TimedOut`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// assert_eq!(ioloop.run_sync_timeout(async { 42 }, Duration::from_secs(60))?, 42);
    /// let slow = ioloop::sleep(Duration::from_secs(3600));
    /// let err = ioloop.run_sync_timeout(slow, Duration::from_millis(1)).unwrap_err();
    /// assert!(matches!(err, ioloop::RunSyncError::TimedOut));
    /// assert_eq!(ioloop.stats().timeouts_pending, 0); // the sleep was dropped
    /// # Ok::<(), ioloop::RunSyncError>(())
    /// ```
    #[track_caller]
    pub fn run_sync_timeout<F>(&self, future: F, limit: Duration) -> Result<F::Output, RunSyncError>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.run_sync_until(future, Some(limit))
    }

    #[track_caller]
    fn run_sync_until<F>(
        &self,
        future: F,
        limit: Option<Duration>,
    ) -> Result<F::Output, RunSyncError>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        if self.is_closed() {
            return Err(LoopError::Closed.into());
        }
        if self.is_running() || self.in_iteration() {
            return Err(LoopError::AlreadyRunning.into());
        }
        let mut task = self.spawn(future);
        let timed_out = Rc::new(Cell::new(false));
        let timer = limit.map(|limit| {
            let timed_out = timed_out.clone();
            self.call_later(limit, move |ioloop| {
                timed_out.set(true);
                ioloop.stop();
            })
        });
        let stop_loop = Arc::new(StopLoop {
            shared: self.cross_thread().clone(),
            armed: AtomicBool::new(true),
        });
        let waker = Waker::from(stop_loop.clone());
        let mut cx = Context::from_waker(&waker);
        let outcome = loop {
            if let Poll::Ready(output) = Pin::new(&mut task).poll(&mut cx) {
                break output.map_err(|e| match e {
                    TaskError::Panicked(panic) => RunSyncError::Panicked(panic),
                    // Nobody else holds the task to cancel it; only closing the loop does.
                    _ => RunSyncError::Stopped,
                });
            }
            if timed_out.get() {
                break Err(RunSyncError::TimedOut);
            }
            if let Err(e) = self.start() {
                break Err(e.into());
            }
            if !task.is_finished() && !timed_out.get() {
                break Err(RunSyncError::Stopped);
            }
        };
        if let Some(timer) = timer {
            self.remove_timeout(timer);
        }
        stop_loop.armed.store(false, Ordering::Release);
        if outcome.is_err() {
            // Directly, not through `Task::cancel`: this loop may not be the current one.
            task.cancel_on(self);
        }
        outcome
    }
}
