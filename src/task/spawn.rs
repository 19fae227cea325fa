//! Tasks: futures run by the loop ([`IoLoop::spawn`], [`IoLoop::add_future`]) and the
//! [`Task`] handle through which their output comes back.
//!
//! The loop keeps spawned futures in its task registry and polls them from its run queue
//! (see `reactor/task_registry.rs` and `reactor/wakers.rs` for how a wake becomes one
//! poll). This file wires each future's output, panic or cancellation to its [`Task`].

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::completion::{self, Receiver, SenderDropped, Settle};
use crate::reactor::failure::panic_message;
use crate::reactor::ioloop::IoLoop;
use crate::reactor::queue::{Callback, Posted, Queued, TaskKey};
use crate::reactor::task_registry::{TaskBody, TaskHeader, TaskOutcome};
use crate::reactor::wakers::current_owner;

/// A handle to a task spawned with [`IoLoop::spawn`]: a future of its output.
///
/// Await it from anywhere: another task on the loop, or any executor on any thread
/// (`Task<T>` is `Send` when `T` is). It resolves to `Ok(output)`, or to a [`TaskError`]
/// if the task panicked or was cancelled.
///
/// **Dropping a `Task` detaches it**: the task keeps running to completion and its output
/// is dropped (as in Tornado, where a coroutine runs whether or not anyone waits for it,
/// and like tokio's `JoinHandle`). A detached task's panic goes to the loop's exception
/// policy (logged by default). Use [`cancel`](Task::cancel) to stop it instead.
///
/// # Examples
///
/// ```
/// let ioloop = ioloop::IoLoop::new()?;
/// let task = ioloop.spawn(async { 6 * 7 });
/// assert_eq!(ioloop.run_sync(task)?.unwrap(), 42);
/// # Ok::<(), ioloop::RunSyncError>(())
/// ```
pub struct Task<T> {
    receiver: Receiver<Result<T, TaskError>>,
    header: Arc<TaskHeader<IoLoop>>,
}

impl<T> Task<T> {
    /// Cancels the task: its future is dropped without being polled again, and awaiting
    /// the `Task` gives [`TaskError::Cancelled`]. A task that already finished keeps its
    /// output.
    ///
    /// On the loop thread (with the loop as [`IoLoop::current`], as inside its callbacks
    /// and tasks) the future is dropped before `cancel` returns, or, if the task cancels
    /// itself, as soon as its poll returns. Elsewhere the cancellation is posted to the
    /// loop and takes effect on its next iteration. Thread-safe.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let task = ioloop.spawn(ioloop::sleep(Duration::from_secs(3600)));
    /// task.cancel();
    /// assert!(ioloop.run_sync(task)?.unwrap_err().is_cancelled());
    /// # Ok::<(), ioloop::RunSyncError>(())
    /// ```
    #[track_caller]
    pub fn cancel(&self) {
        let key = self.header.key;
        match current_owner(&self.header.shared) {
            Some(ioloop) => ioloop.cancel_task(key),
            None => {
                let cancel = Box::new(move |ioloop: &IoLoop| ioloop.cancel_task(key));
                // Closed: the task was dropped with the loop already.
                let _ = self
                    .header
                    .shared
                    .post(Posted::Callback(cancel, Location::caller()));
            }
        }
    }

    pub(crate) fn key(&self) -> TaskKey {
        self.header.key
    }

    /// Whether the task finished (completed, panicked or was cancelled), so awaiting it
    /// returns at once.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let task = ioloop.spawn(async {});
    /// assert!(!task.is_finished());
    /// ioloop.run_once(std::time::Duration::ZERO)?;
    /// assert!(task.is_finished());
    /// # Ok::<(), ioloop::LoopError>(())
    /// ```
    pub fn is_finished(&self) -> bool {
        self.receiver.is_done()
    }
}

impl<T> Future for Task<T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.receiver
            .poll_recv(cx)
            .map(|received| received.unwrap_or_else(|SenderDropped| Err(TaskError::Cancelled)))
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        if let Some(Err(TaskError::Panicked(panic))) = self.receiver.try_take() {
            log::error!(
                target: "ioloop",
                "{panic} (its Task was dropped without being awaited)"
            );
        }
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("site", &self.header.site)
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Why a [`Task`] has no output.
///
/// # Examples
///
/// ```
/// let ioloop = ioloop::IoLoop::new()?;
/// let task = ioloop.spawn(async { panic!("boom") });
/// match ioloop.run_sync(task)? {
///     Err(ioloop::TaskError::Panicked(panic)) => assert_eq!(panic.message(), "boom"),
///     other => unreachable!("{other:?}"),
/// }
/// # Ok::<(), ioloop::RunSyncError>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum TaskError {
    /// [`Task::cancel`] was called, or the loop was closed or dropped before the task
    /// finished.
    Cancelled,
    /// The task's future panicked while being polled.
    Panicked(TaskPanic),
}

impl TaskError {
    /// Whether the task was cancelled.
    ///
    /// # Examples
    ///
    /// See [`Task::cancel`].
    pub fn is_cancelled(&self) -> bool {
        matches!(self, TaskError::Cancelled)
    }

    /// Whether the task panicked.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let task = ioloop.spawn(async { panic!("boom") });
    /// assert!(ioloop.run_sync(task)?.unwrap_err().is_panic());
    /// # Ok::<(), ioloop::RunSyncError>(())
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self, TaskError::Panicked(_))
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Cancelled => f.write_str("the task was cancelled"),
            TaskError::Panicked(panic) => panic.fmt(f),
        }
    }
}

impl std::error::Error for TaskError {}

/// A panic caught while polling a task: its message, where the task was spawned, and the
/// payload (for `std::panic::resume_unwind`).
///
/// # Examples
///
/// See [`TaskError`].
pub struct TaskPanic {
    message: String,
    site: &'static Location<'static>,
    /// In a mutex only so that the error is `Sync`; never contended.
    payload: Mutex<Box<dyn Any + Send>>,
}

impl TaskPanic {
    pub(crate) fn new(payload: Box<dyn Any + Send>, site: &'static Location<'static>) -> Self {
        TaskPanic {
            message: panic_message(&*payload).to_owned(),
            site,
            payload: Mutex::new(payload),
        }
    }

    /// The panic message (`"<non-string panic payload>"` if the payload is not a string).
    ///
    /// # Examples
    ///
    /// See [`TaskError`].
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Where the task was spawned.
    ///
    /// # Examples
    ///
    /// See [`TaskError`]; `panic.site().line()` is the line of the `spawn` call.
    pub fn site(&self) -> &'static Location<'static> {
        self.site
    }

    /// The panic payload, to resume the panic with `std::panic::resume_unwind`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let ioloop = ioloop::IoLoop::new()?;
    /// # let task = ioloop.spawn(async { panic!("boom") });
    /// if let Err(ioloop::TaskError::Panicked(panic)) = ioloop.run_sync(task)? {
    ///     std::panic::resume_unwind(panic.into_payload());
    /// }
    /// # Ok::<(), ioloop::RunSyncError>(())
    /// ```
    pub fn into_payload(self) -> Box<dyn Any + Send> {
        self.payload.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for TaskPanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskPanic")
            .field("message", &self.message)
            .field("site", &self.site)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for TaskPanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "task spawned at {} panicked: {}",
            self.site, self.message
        )
    }
}

impl IoLoop {
    /// Runs `future` on the loop as a task and returns a [`Task`] handle to its output.
    ///
    /// The future need not be `Send`: it is polled only on the loop thread, first on the
    /// next iteration (like [`add_callback`](IoLoop::add_callback); `spawn` never polls
    /// inline), then whenever its waker is woken, at most once per iteration. Inside it,
    /// [`IoLoop::current`] is this loop, so [`sleep`](crate::sleep) and friends need no
    /// handle. Loop thread only. On a closed loop the future is dropped and the task is
    /// [cancelled](TaskError::Cancelled).
    ///
    /// A panic while polling is caught: it ends the task and is delivered to whoever
    /// awaits the `Task` as [`TaskError::Panicked`]; if the `Task` was dropped it goes to
    /// the exception policy instead, naming this call's `file:line`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let task = ioloop.spawn(async {
    ///     ioloop::sleep(Duration::from_millis(1)).await;
    ///     "slept"
    /// });
    /// assert_eq!(ioloop.run_sync(task)?.unwrap(), "slept");
    /// # Ok::<(), ioloop::RunSyncError>(())
    /// ```
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> Task<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let site = Location::caller();
        let (setter, outcome, receiver) = completion::task_channel();
        let body: TaskBody = Box::pin(async move {
            let output = future.await;
            // A detached task's output is dropped here, on the loop thread.
            let _ = setter.send(Ok(output));
        });
        let inner = &*self.inner;
        if inner.closed.get() {
            log::debug!(target: "ioloop", "task spawned on a closed IoLoop was dropped");
            drop(body);
            Settle::abandon(&*outcome); // the task reads as cancelled
            let header = TaskHeader::detached(&inner.shared, site);
            return Task { receiver, header };
        }
        let outcome: Arc<dyn TaskOutcome> = outcome;
        let header =
            inner
                .tasks
                .borrow_mut()
                .insert(&inner.shared, body, outcome, site, |header| {
                    Waker::from(header.clone())
                });
        self.queue_local(Queued::Task(header.key));
        Task { receiver, header }
    }

    /// Calls `callback` with the output of `future` on the iteration after the future
    /// resolves, also when it is already complete (Tornado's `add_future`): a callback
    /// never runs inline, in the middle of the code that completed the future.
    ///
    /// The future runs as a detached task: a panic in it goes to the exception policy
    /// (naming this call's `file:line`) and the callback is not called. Loop thread only.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// ioloop.add_future(std::future::ready(7), |ioloop, seven| {
    ///     assert_eq!(seven, 7);
    ///     ioloop.stop();
    /// });
    /// ioloop.start()?;
    /// # Ok::<(), ioloop::LoopError>(())
    /// ```
    #[track_caller]
    pub fn add_future<F, C>(&self, future: F, callback: C)
    where
        F: Future + 'static,
        C: FnOnce(&IoLoop, F::Output) + 'static,
    {
        let site = Location::caller();
        let ioloop = Rc::downgrade(&self.inner);
        let task = self.spawn(async move {
            let output = future.await;
            if let Some(inner) = ioloop.upgrade() {
                let callback = move |ioloop: &IoLoop| callback(ioloop, output);
                IoLoop { inner }.queue_callback(Callback::with_site(Box::new(callback), site));
            }
        });
        drop(task);
    }

    /// Drops the task `key` now, or when its current poll returns.
    pub(crate) fn cancel_task(&self, key: TaskKey) {
        let cancelled = self.inner.tasks.borrow_mut().cancel(key);
        drop(cancelled);
    }
}

/// Runs `future` as a task on this thread's current loop ([`IoLoop::current`]): the same
/// as `IoLoop::current().unwrap().spawn(future)`, for code inside callbacks and tasks
/// that holds no handle (tokio's `spawn_local`).
///
/// # Panics
///
/// When this thread has no live [`IoLoop`].
///
/// # Examples
///
/// ```
/// let ioloop = ioloop::IoLoop::new()?;
/// let answer = ioloop.run_sync(async {
///     let task = ioloop::spawn(async { 6 * 7 });
///     task.await.unwrap()
/// })?;
/// assert_eq!(answer, 42);
/// # Ok::<(), ioloop::RunSyncError>(())
/// ```
#[track_caller]
pub fn spawn<F>(future: F) -> Task<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    match IoLoop::current() {
        Some(ioloop) => ioloop.spawn(future),
        None => panic!("ioloop::spawn called on a thread without a live IoLoop"),
    }
}

/// A task's output cell reports a panic as [`TaskError::Panicked`] to whoever awaits the
/// [`Task`], and an unfinished task dropped by the loop as [`TaskError::Cancelled`].
impl<S: Settle<TaskError> + ?Sized> TaskOutcome for S {
    fn panicked(
        &self,
        payload: Box<dyn Any + Send>,
        site: &'static Location<'static>,
    ) -> Option<Box<dyn Any + Send>> {
        match self.fail_with(TaskError::Panicked(TaskPanic::new(payload, site))) {
            Ok(()) => None,
            Err(TaskError::Panicked(panic)) => Some(panic.into_payload()),
            Err(TaskError::Cancelled) => None,
        }
    }

    fn abandon(&self) {
        Settle::abandon(self);
    }
}
