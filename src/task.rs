//! Tasks: futures run by the loop ([`IoLoop::spawn`], [`IoLoop::add_future`]) and the
//! [`Task`] handle through which their output comes back.
//!
//! A task is polled from the loop's callback queue. Its waker is `Send + Sync` and
//! deduplicated by a per-task `scheduled` flag: the first wake after a poll queues one
//! "poll this task" entry, later wakes do nothing until the task has been polled. A wake on
//! the loop's own thread (from a callback, a timer, a handler or another task) goes straight
//! into the local queue; a wake from another thread goes through the same coalesced queue
//! as [`Remote::add_callback`](crate::Remote::add_callback), so ten wakes before the next
//! poll cost one poller wakeup. Entries queued during an iteration run on the next one, so
//! no task is polled twice in one iteration and a task that wakes itself forever cannot
//! starve timers or I/O.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use slab::Slab;

use crate::completion::{self, Receiver, SenderDropped, Settle};
use crate::failure::{panic_message, Callback, CallbackKind};
use crate::ioloop::Queued;
use crate::remote::{Posted, Shared};
use crate::IoLoop;

/// A task's slot index and the generation that tells it apart from earlier tasks in the
/// same slot, so a stale wake never polls a newer task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TaskKey {
    index: u32,
    generation: u32,
}

/// The part of a task that wakers share: `Send + Sync` whatever the future is.
pub(crate) struct TaskHeader {
    shared: Arc<Shared>,
    key: TaskKey,
    /// Set by a wake, cleared just before a poll: while set, the task is queued once.
    scheduled: AtomicBool,
    site: &'static Location<'static>,
}

impl TaskHeader {
    /// The header of a task that never ran (spawned on a closed loop).
    fn detached(shared: &Arc<Shared>, site: &'static Location<'static>) -> Arc<TaskHeader> {
        Arc::new(TaskHeader {
            shared: shared.clone(),
            key: TaskKey {
                index: u32::MAX,
                generation: 0,
            },
            scheduled: AtomicBool::new(true),
            site,
        })
    }
}

impl Wake for TaskHeader {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.scheduled.swap(true, Ordering::AcqRel) {
            schedule(&self.shared, self.key);
        }
    }
}

/// The loop owning `shared`, if it is this thread's current loop: then its local state
/// may be used directly.
fn current_owner(shared: &Arc<Shared>) -> Option<IoLoop> {
    IoLoop::current().filter(|ioloop| Arc::ptr_eq(&ioloop.inner.shared, shared))
}

/// Queues a poll of task `key` on the loop owning `shared`: locally when that loop is this
/// thread's current loop, else through the cross-thread queue.
fn schedule(shared: &Arc<Shared>, key: TaskKey) {
    if let Some(ioloop) = current_owner(shared) {
        if ioloop.try_queue_local(Queued::Task(key)) {
            return;
        }
    }
    // Closed: the task was dropped with the loop, nothing is left to poll.
    let _ = shared.post(Posted::Task(key));
}

type TaskBody = Pin<Box<dyn Future<Output = ()>>>;

struct TaskSlot {
    generation: u32,
    /// `None` while the task is being polled.
    body: Option<(TaskBody, Waker)>,
    header: Arc<TaskHeader>,
    /// Delivers a panic, or the cancellation when the slot is dropped, to the [`Task`]
    /// handle.
    outcome: Arc<dyn Settle<TaskError>>,
    /// Cancelled while being polled: dropped when the poll returns.
    cancel_requested: bool,
}

impl Drop for TaskSlot {
    fn drop(&mut self) {
        // Finished tasks already hold their output or panic; anything else was cancelled.
        self.outcome.abandon();
    }
}

/// The loop's live tasks.
#[derive(Default)]
pub(crate) struct TaskRegistry {
    slots: Slab<TaskSlot>,
    last_generation: u32,
}

impl TaskRegistry {
    fn insert(
        &mut self,
        shared: &Arc<Shared>,
        body: TaskBody,
        outcome: Arc<dyn Settle<TaskError>>,
        site: &'static Location<'static>,
    ) -> Arc<TaskHeader> {
        self.last_generation = self.last_generation.wrapping_add(1);
        let entry = self.slots.vacant_entry();
        let key = TaskKey {
            index: u32::try_from(entry.key()).expect("fewer than 2^32 live tasks"),
            generation: self.last_generation,
        };
        let header = Arc::new(TaskHeader {
            shared: shared.clone(),
            key,
            scheduled: AtomicBool::new(true),
            site,
        });
        let waker = Waker::from(header.clone());
        entry.insert(TaskSlot {
            generation: key.generation,
            body: Some((body, waker)),
            header: header.clone(),
            outcome,
            cancel_requested: false,
        });
        header
    }

    fn get_mut(&mut self, key: TaskKey) -> Option<&mut TaskSlot> {
        self.slots
            .get_mut(key.index as usize)
            .filter(|slot| slot.generation == key.generation)
    }

    /// Takes the body out for a poll and clears the task's `scheduled` flag, so a wake
    /// from now on queues it again.
    fn begin_poll(
        &mut self,
        key: TaskKey,
    ) -> Option<(TaskBody, Waker, &'static Location<'static>)> {
        let slot = self.get_mut(key)?;
        let (body, waker) = slot.body.take()?;
        slot.header.scheduled.swap(false, Ordering::AcqRel);
        Some((body, waker, slot.header.site))
    }

    /// Puts the body back after a poll, or removes the task if it finished or was
    /// cancelled meanwhile; the caller drops what comes back.
    fn end_poll(
        &mut self,
        key: TaskKey,
        body: TaskBody,
        waker: Waker,
        finished: bool,
    ) -> Option<(TaskSlot, TaskBody)> {
        let slot = self
            .get_mut(key)
            .expect("a task is not removed while it is polled");
        if finished || slot.cancel_requested {
            return Some((self.slots.remove(key.index as usize), body));
        }
        slot.body = Some((body, waker));
        None
    }

    /// Removes a task that is not being polled (the caller drops it), or marks one that is
    /// for removal when its poll returns.
    fn cancel(&mut self, key: TaskKey) -> Option<TaskSlot> {
        let slot = self.get_mut(key)?;
        if slot.body.is_none() {
            slot.cancel_requested = true;
            return None;
        }
        Some(self.slots.remove(key.index as usize))
    }

    fn outcome(&self, key: TaskKey) -> Option<Arc<dyn Settle<TaskError>>> {
        self.slots
            .get(key.index as usize)
            .filter(|slot| slot.generation == key.generation)
            .map(|slot| slot.outcome.clone())
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

impl fmt::Debug for TaskRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskRegistry")
            .field("tasks", &self.slots.len())
            .finish()
    }
}

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
    header: Arc<TaskHeader>,
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
            outcome.abandon(); // the task reads as cancelled
            let header = TaskHeader::detached(&inner.shared, site);
            return Task { receiver, header };
        }
        let header = inner
            .tasks
            .borrow_mut()
            .insert(&inner.shared, body, outcome, site);
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

    /// Polls the task `key` if it still exists (a queued entry may be stale).
    pub(crate) fn poll_task(&self, key: TaskKey) {
        let inner = &*self.inner;
        let Some((mut body, waker, site)) = inner.tasks.borrow_mut().begin_poll(key) else {
            return;
        };
        let mut cx = Context::from_waker(&waker);
        // A panic ends the task too.
        let mut finished = true;
        let polled = self.run_timed(CallbackKind::Task, site, || {
            finished = body.as_mut().poll(&mut cx).is_ready();
        });
        if let Err(payload) = polled {
            let outcome = inner
                .tasks
                .borrow()
                .outcome(key)
                .expect("polled task exists");
            let panic = TaskError::Panicked(TaskPanic::new(payload, site));
            if let Err(TaskError::Panicked(panic)) = outcome.fail_with(panic) {
                inner
                    .failure
                    .report(CallbackKind::Task, site, panic.into_payload());
            }
        }
        let ended = inner
            .tasks
            .borrow_mut()
            .end_poll(key, body, waker, finished);
        drop(ended);
    }

    /// Drops the task `key` now, or when its current poll returns.
    pub(crate) fn cancel_task(&self, key: TaskKey) {
        let cancelled = self.inner.tasks.borrow_mut().cancel(key);
        drop(cancelled);
    }
}
