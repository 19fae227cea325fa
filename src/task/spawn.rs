//! Tasks: futures run by the loop ([`IoLoop::spawn`], [`IoLoop::add_future`]) and the
//! [`Task`] handle through which their output comes back.
//!
//! A task is one allocation holding its future, then its output (see
//! `reactor/raw_task.rs`); the loop keeps it in its task registry and polls it from its
//! run queue (see `reactor/wakers.rs` for how a wake becomes one poll). This file is the
//! typed face of that: spawning, and the [`Task`] handle through which the output, a
//! panic or the cancellation comes back.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use crate::reactor::ioloop::IoLoop;
use crate::reactor::panics::panic_message;
use crate::reactor::queue::{Callback, Posted, Queued};
use crate::reactor::raw_task::{JoinRef, Schedule, TaskEnd, TaskRef, Unadopted};
use crate::reactor::remote::Remote;
use crate::reactor::wakers::current_owner_of;

/// A handle to a task spawned with [`IoLoop::spawn`]: a future of its output.
///
/// Await it from anywhere: another task on the loop, or any executor on any thread
/// (`Task<T>` is `Send` when `T` is). It resolves to `Ok(output)`, or to a [`TaskError`]
/// if the task panicked or was cancelled.
///
/// **Dropping a `Task` detaches it**: the task keeps running to completion and its output
/// is dropped (as in Tornado, where a coroutine runs whether or not anyone waits for it,
/// and like tokio's `JoinHandle`). A detached task's panic goes to the loop's panic
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
    join: JoinRef<T>,
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
    pub fn cancel(&self) {
        let task = self.join.task();
        if !task.request_cancel() {
            return; // it already ended
        }
        match current_owner_of(task) {
            // SAFETY: its own loop's thread (the current loop owns it), not being polled.
            Some(ioloop) if !task.is_running() => unsafe {
                ioloop.end_task(task, TaskEnd::Cancelled)
            },
            // Running (it cancels itself), or another thread: its loop ends it at the next
            // chance it has.
            _ => task.schedule(),
        }
    }

    /// Cancels the task from the thread of `ioloop`, its loop, whichever loop is current
    /// there. A task of another loop is cancelled as by [`cancel`](Task::cancel).
    pub(crate) fn cancel_on(&self, ioloop: &IoLoop) {
        let task = self.join.task();
        if !ioloop.owns(task) {
            return self.cancel();
        }
        if task.request_cancel() && !task.is_running() {
            // SAFETY: the task's own loop (checked above), on its thread (an `IoLoop` never
            // leaves it), and not being polled.
            unsafe { ioloop.end_task(task, TaskEnd::Cancelled) };
        }
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
        self.join.task().is_complete()
    }
}

impl<T> Future for Task<T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let site = self.join.task().site();
        self.join.poll_output(cx).map(|outcome| match outcome {
            Some(Ok(output)) => Ok(output),
            Some(Err(end)) => Err(TaskError::from_end(end, site)),
            // Polled again after it returned its outcome.
            None => Err(TaskError::Cancelled),
        })
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("site", &self.join.task().site())
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
    fn from_end(end: TaskEnd, site: &'static Location<'static>) -> TaskError {
        match end {
            TaskEnd::Cancelled => TaskError::Cancelled,
            TaskEnd::Panicked(payload) => TaskError::Panicked(TaskPanic::new(payload, site)),
        }
    }

    /// Whether the task was cancelled.
    ///
    /// # Examples
    ///
    /// A loop dropped before its task finished cancels it:
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let task = ioloop.spawn(std::future::pending::<()>());
    /// drop(ioloop);
    /// let err = futures_lite::future::block_on(task).unwrap_err();
    /// assert!(err.is_cancelled());
    /// assert!(!err.is_panic());
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
/// ```
/// let ioloop = ioloop::IoLoop::new()?;
/// let task = ioloop.spawn(async { panic!("boom") });
/// let Err(ioloop::TaskError::Panicked(panic)) = ioloop.run_sync(task)? else {
///     unreachable!("the task panicked")
/// };
/// assert!(panic.to_string().starts_with("task spawned at "));
/// assert!(panic.to_string().ends_with(" panicked: boom"));
/// # Ok::<(), ioloop::RunSyncError>(())
/// ```
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
    /// ```
    /// use ioloop::TaskError;
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let n = 3;
    /// let formatted = ioloop.spawn(async move { panic!("{n} retries left") });
    /// let Err(TaskError::Panicked(panic)) = ioloop.run_sync(formatted)? else { unreachable!() };
    /// assert_eq!(panic.message(), "3 retries left");
    ///
    /// let other = ioloop.spawn(async { std::panic::panic_any(42_u32) });
    /// let Err(TaskError::Panicked(panic)) = ioloop.run_sync(other)? else { unreachable!() };
    /// assert_eq!(panic.message(), "<non-string panic payload>");
    /// # Ok::<(), ioloop::RunSyncError>(())
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Where the task was spawned.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let line = line!() + 1;
    /// let task = ioloop.spawn(async { panic!("boom") });
    /// let Err(ioloop::TaskError::Panicked(panic)) = ioloop.run_sync(task)? else {
    ///     unreachable!("the task panicked")
    /// };
    /// assert_eq!((panic.site().file(), panic.site().line()), (file!(), line));
    /// # Ok::<(), ioloop::RunSyncError>(())
    /// ```
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
    /// the panic policy instead, naming this call's `file:line`.
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
        self.spawn_at(future, Location::caller())
    }

    /// [`spawn`](IoLoop::spawn) naming `site` as where the task comes from.
    pub(crate) fn spawn_at<F>(&self, future: F, site: &'static Location<'static>) -> Task<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let owner: Arc<dyn Schedule> = self.cross_thread().clone();
        if self.is_closed() {
            log::debug!(target: "ioloop", "task spawned on a closed IoLoop was dropped");
            let [handle] = TaskRef::allocate(future, owner, site);
            // The task never runs: it reads as cancelled.
            // SAFETY: this loop's new task, on its thread (spawn is loop-thread only),
            // never polled.
            unsafe { self.end_task(&handle, TaskEnd::Cancelled) };
            // SAFETY: the handle's reference, for a future whose output is `F::Output`.
            return Task {
                join: unsafe { JoinRef::new(handle) },
            };
        }
        let [registered, queued, handle] = TaskRef::allocate(future, owner, site);
        self.register_task(registered);
        self.queue_local(Queued::Task(queued));
        // SAFETY: the handle's reference, for a future whose output is `F::Output`.
        Task {
            join: unsafe { JoinRef::new(handle) },
        }
    }

    /// Spawns `future` and polls it once at once, inside the caller's callback, as
    /// Tornado runs a coroutine up to its first `await`: a future that finishes without
    /// waiting never goes through the run queue, so its effects land in the caller's
    /// batch (the HTTP server runs `async` handlers this way). Outside an iteration of
    /// this loop (before [`start`](IoLoop::start), say) it is queued as by
    /// [`spawn`](IoLoop::spawn). A panic in that first poll is caught as in any poll.
    /// Loop thread only.
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
    /// ioloop.add_callback(move |ioloop| {
    ///     let task = ioloop.spawn_eager(async move { flag.set(true) });
    ///     assert!(task.is_finished(), "ran to the end before spawn_eager returned");
    /// });
    /// ioloop.run_once(std::time::Duration::ZERO)?;
    /// assert!(ran.get());
    /// # Ok::<(), ioloop::LoopError>(())
    /// ```
    #[track_caller]
    pub fn spawn_eager<F>(&self, future: F) -> Task<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.spawn_eager_at(future, Location::caller())
    }

    /// [`spawn_eager`](IoLoop::spawn_eager) naming `site` as where the task comes from.
    pub(crate) fn spawn_eager_at<F>(
        &self,
        future: F,
        site: &'static Location<'static>,
    ) -> Task<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        if !self.in_iteration() || self.is_closed() {
            return self.spawn_at(future, site);
        }
        let (first_poll, task) = self.register_eager(future, site);
        self.poll_task(first_poll);
        task
    }

    /// [`spawn_eager_at`](IoLoop::spawn_eager_at) without a handle: the task is detached
    /// before its first poll, so a panic in that poll goes to the panic policy, as a
    /// dropped `Task`'s does.
    #[cfg(feature = "web")]
    pub(crate) fn spawn_eager_detached<F>(&self, future: F, site: &'static Location<'static>)
    where
        F: Future<Output = ()> + 'static,
    {
        if !self.in_iteration() || self.is_closed() {
            drop(self.spawn_at(future, site));
            return;
        }
        let (first_poll, task) = self.register_eager(future, site);
        drop(task);
        self.poll_task(first_poll);
    }

    /// Allocates a task for `future`, puts it in the registry, and returns the reference
    /// for its first poll and its handle.
    fn register_eager<F>(
        &self,
        future: F,
        site: &'static Location<'static>,
    ) -> (TaskRef, Task<F::Output>)
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let owner: Arc<dyn Schedule> = self.cross_thread().clone();
        let [registered, first_poll, handle] = TaskRef::allocate(future, owner, site);
        self.register_task(registered);
        // SAFETY: `handle` is the one handle reference `allocate` made (the third of its
        // three), for a future whose output is `F::Output`.
        let task = Task {
            join: unsafe { JoinRef::new(handle) },
        };
        (first_poll, task)
    }

    /// Calls `callback` with the output of `future` on the iteration after the future
    /// resolves, also when it is already complete (Tornado's `add_future`): a callback
    /// never runs inline, in the middle of the code that completed the future.
    ///
    /// The future runs as a detached task: a panic in it goes to the panic policy
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
        let ioloop = self.downgrade();
        let task = self.spawn(async move {
            let output = future.await;
            if let Some(ioloop) = ioloop.upgrade() {
                let callback = move |ioloop: &IoLoop| callback(ioloop, output);
                ioloop.queue_callback(Callback::with_site(Box::new(callback), site));
            }
        });
        drop(task);
    }
}

impl Remote {
    /// Runs a `Send` future on the loop as a task, from any thread, and returns its
    /// [`Task`] handle, which any runtime can await (it is `Send` when the output is).
    ///
    /// Thread-safe. The future is sent to the loop through the same coalesced queue as
    /// [`add_callback`](Remote::add_callback) and first polled on the loop's next
    /// iteration; from then on it is an ordinary task of that loop. If the loop is closed
    /// or dropped, the future is dropped and the task reads as
    /// [cancelled](TaskError::Cancelled). For a future that is not `Send` (one that uses
    /// the loop's own futures, [`sleep`](crate::sleep) or an [`IoStream`](crate::IoStream)),
    /// send a function that makes it: [`spawn_with`](Remote::spawn_with).
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let remote = ioloop.remote();
    /// let task = std::thread::spawn(move || remote.spawn(async { 6 * 7 }))
    ///     .join()
    ///     .unwrap();
    /// assert_eq!(ioloop.run_sync(task)?.unwrap(), 42);
    /// # Ok::<(), ioloop::RunSyncError>(())
    /// ```
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_with(move || future)
    }

    /// Runs the future that `make` returns on the loop as a task, from any thread: `make`
    /// runs on the loop thread when the task is first polled, so the future need not be
    /// `Send` and may use the loop's own futures (tokio-util's `spawn_pinned` idiom).
    /// Returns the [`Task`] handle, which any runtime can await.
    ///
    /// Thread-safe; ordering and closing as for [`spawn`](Remote::spawn) (a task whose
    /// loop closed before it started never calls `make`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let remote = ioloop.remote();
    /// let other_thread = std::thread::spawn(move || {
    ///     remote.spawn_with(|| async {
    ///         ioloop::sleep(Duration::from_millis(1)).await; // a loop-local future
    ///         "ran on the loop"
    ///     })
    /// });
    /// let task = other_thread.join().unwrap();
    /// assert_eq!(ioloop.run_sync(task)?.unwrap(), "ran on the loop");
    /// # Ok::<(), ioloop::RunSyncError>(())
    /// ```
    #[track_caller]
    pub fn spawn_with<M, F>(&self, make: M) -> Task<F::Output>
    where
        M: FnOnce() -> F + Send + 'static,
        F: Future + 'static,
        F::Output: Send + 'static,
    {
        let owner: Arc<dyn Schedule> = self.cross_thread().clone();
        let future = StartOnLoop::Unstarted(Some(make));
        let (unadopted, handle) = Unadopted::allocate(future, owner, Location::caller());
        // Refused (closed): the entry comes back dropped, which cancels the task.
        let _ = self.cross_thread().post(Posted::Adopt(unadopted));
        // SAFETY: the handle's reference, for a future whose output is `F::Output`.
        Task {
            join: unsafe { JoinRef::new(handle) },
        }
    }
}

/// A future made on the loop thread, at its first poll, by a `Send` function.
enum StartOnLoop<M, F> {
    Unstarted(Option<M>),
    Started(F),
}

// SAFETY: a `StartOnLoop` crosses threads only before its first poll, when it holds just
// the `Send` function: `Remote::spawn_with` sends it to its loop unpolled, and the loop
// polls (so makes the future) and drops it on its own thread from then on. Dropped
// unpolled on the sending thread (its loop was closed), it drops only the function.
unsafe impl<M: Send, F> Send for StartOnLoop<M, F> {}

impl<M, F> Future for StartOnLoop<M, F>
where
    M: FnOnce() -> F,
    F: Future,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: the future is never moved out of the pinned enum; the function is taken
        // out by value before the future exists.
        let this = unsafe { self.get_unchecked_mut() };
        if let StartOnLoop::Unstarted(make) = this {
            let make = make.take().expect("polled once before it starts");
            *this = StartOnLoop::Started(make());
        }
        match this {
            // SAFETY: `this` is pinned, so the future in it is.
            StartOnLoop::Started(future) => unsafe { Pin::new_unchecked(future) }.poll(cx),
            StartOnLoop::Unstarted(_) => unreachable!("started above"),
        }
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

// Without a loop, so that Miri runs the pin projection of `StartOnLoop`.
#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;
    use std::task::Waker;

    /// `cancel_on` given a loop that does not own the task cancels it through its own
    /// loop, which ends it and drops it from its registry; the other loop is untouched.
    #[test]
    #[cfg_attr(miri, ignore = "a loop needs epoll")]
    fn cancel_on_another_loop_cancels_through_the_tasks_own_loop() {
        let owner = IoLoop::new().unwrap();
        let other = IoLoop::new().unwrap();
        let task = owner.spawn(std::future::pending::<()>());
        assert_eq!(owner.stats().tasks, 1);
        task.cancel_on(&other);
        assert!(
            task.is_finished(),
            "the owner is this thread's current loop"
        );
        assert_eq!((owner.stats().tasks, other.stats().tasks), (0, 0));
        assert!(owner.run_sync(task).unwrap().unwrap_err().is_cancelled());
    }

    #[test]
    fn start_on_loop_makes_its_future_at_the_first_poll_and_keeps_it_pinned() {
        // Sent to another thread unpolled, as `Remote::spawn_with` does, and back.
        let unstarted = StartOnLoop::Unstarted(Some(|| async {
            // A borrow across an await: the future must not move once polled.
            let polls = Rc::new(Cell::new(0));
            let seen = &polls;
            crate::time::yield_now().await;
            seen.set(seen.get() + 1);
            polls.get()
        }));
        let unstarted = std::thread::spawn(move || unstarted).join().unwrap();
        let mut future = Box::pin(unstarted);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(future.as_mut().poll(&mut cx).is_pending());
        assert!(matches!(future.as_mut().poll(&mut cx), Poll::Ready(1)));
    }
}
