//! A spawned task in one allocation: its header (state, reference count, the loop to
//! schedule on, the waker of whoever awaits it), then its future and its stage (running,
//! or the outcome once it ends), as tokio and async-task lay out theirs. The future stays
//! where it was pinned until it is dropped there.
//!
//! A [`TaskRef`] is a counted reference to that allocation. The loop's task registry holds
//! one while the task is live, each run-queue entry one, each [`Waker`] one, and the
//! `Task` handle one; the memory is freed when the last goes.
//!
//! # Threads
//!
//! The future may be `!Send`: it is polled and dropped only on its loop's thread, which
//! the registry guarantees by holding its reference until the future is gone. Everything
//! other threads touch is atomic: the state bits, the reference count, and the join waker
//! (an [`AtomicWaker`]). The output is written by the loop thread before `COMPLETE` is
//! set and read by exactly one party after: the handle, or the loop when the handle is
//! gone. A `!Send` output has a `!Send` handle, so it never leaves the loop's thread; a
//! waker on another thread may free the memory last, but by then the stage is empty.
//!
//! It imports nothing from the loop: the loop schedules through the [`Schedule`] trait
//! object each task carries.
//!
//! # Why not `async-task`
//!
//! The ecosystem's task cell (smol's and calloop's executors are built on it) is fast:
//! the bench's `async-task` rows, a minimal executor on it, spawn and complete a task in
//! about 22 ns and spawn-and-await one in about 48 ns, below this loop's 50 and 104 and
//! tokio's 125 and 154. It is not used because this loop promises two things its `Task`
//! cannot give without a second cell around it: [`Task::cancel`](crate::Task::cancel) on
//! the loop thread drops the future before it returns (a task cancelling itself, as soon
//! as its poll returns), where `async-task` cancels by scheduling one more run that drops
//! it on a later iteration; and the panic of a task whose handle was dropped reaches the
//! loop's panic policy with the spawn site, where `async-task` drops it with the output.
//! Hence this cell, whose every `unsafe` block the unit tests below run under Miri.

use std::any::Any;
use std::cell::UnsafeCell;
use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::Location;
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use atomic_waker::AtomicWaker;

use super::panics::panic_message;

/// A run-queue entry for the task exists (local or posted from another thread).
const SCHEDULED: usize = 1;
/// The loop is polling the future.
const RUNNING: usize = 1 << 1;
/// The future is gone; the stage holds the output, or held it.
const COMPLETE: usize = 1 << 2;
/// Cancellation was asked for; the loop drops the future at its next chance.
const CANCELLED: usize = 1 << 3;
/// A `Task` handle exists and will take the output.
const HANDLE: usize = 1 << 4;
/// One reference, in the bits above the flags: the state word counts references too.
const REF_ONE: usize = 1 << 5;

/// Where a woken task is queued: implemented by the loop's cross-thread half, so a wake
/// from any thread reaches the loop that owns the task.
pub(crate) trait Schedule: Send + Sync {
    /// Queues one poll of `task` on its loop (the caller set its `SCHEDULED` bit).
    fn schedule(&self, task: TaskRef);
}

/// Why a task ended without an output.
pub(crate) enum TaskEnd {
    /// It was cancelled, or its loop closed.
    Cancelled,
    /// Its future panicked with this payload.
    Panicked(Box<dyn Any + Send>),
}

/// What the loop does with a task taken from its run queue.
pub(crate) enum PollStart {
    /// Poll it.
    Run,
    /// It asked to be cancelled: end it.
    Cancel,
    /// It already ended (a stale entry): nothing.
    Skip,
}

/// The operations that depend on the future's type, for a type-erased [`TaskRef`].
struct Vtable {
    /// Polls the future; on `Ready` stores its output. Loop thread, state `RUNNING`.
    poll: unsafe fn(NonNull<Header>, &mut Context<'_>) -> Poll<()>,
    /// Drops the future (if it is still there) and stores `Err(end)`. Loop thread.
    end: unsafe fn(NonNull<Header>, TaskEnd),
    /// Takes the output out: drops an `Ok` output and returns an `Err` end. Once complete,
    /// by the one party that owns the output.
    take_end: unsafe fn(NonNull<Header>) -> Option<TaskEnd>,
    /// Moves the output into `*dst` (an `Option<Result<F::Output, TaskEnd>>`). Same rule.
    read_output: unsafe fn(NonNull<Header>, *mut ()),
    /// Frees the allocation (and drops the future if it is still running, or the outcome
    /// the stage still holds).
    dealloc: unsafe fn(NonNull<Header>),
}

/// The part of a task every thread may touch.
#[repr(C)]
struct Header {
    /// The flags above, and the reference count in units of [`REF_ONE`].
    state: AtomicUsize,
    vtable: &'static Vtable,
    owner: Arc<dyn Schedule>,
    site: &'static Location<'static>,
    /// The task's index in its loop's registry, read and written by the loop thread only
    /// (atomic so that reading it needs no promise from the caller).
    slot: AtomicU32,
    /// Whoever awaits the task's handle.
    join_waker: AtomicWaker,
}

/// The whole allocation: the header first, so a pointer to one is a pointer to the other.
///
/// The future and the outcome are stored apart: the future is pinned here from its
/// first poll to its destructor, and the stage already reads as finished while that
/// destructor runs (it may end, complete or read this very task).
#[repr(C)]
struct Cell<F: Future> {
    header: Header,
    /// Alive while the stage is `Running`; dropped in place by [`finish`] or with the cell.
    future: UnsafeCell<ManuallyDrop<F>>,
    stage: UnsafeCell<Stage<F::Output>>,
}

enum Stage<T> {
    Running,
    Finished(Result<T, TaskEnd>),
    Consumed,
}

impl<F: Future> Drop for Cell<F> {
    fn drop(&mut self) {
        if matches!(self.stage.get_mut(), Stage::Running) {
            // SAFETY: a running stage means the future is alive; it is dropped where it is
            // pinned, once (the cell goes with it).
            unsafe { ManuallyDrop::drop(self.future.get_mut()) };
        }
    }
}

/// A counted reference to a task.
pub(crate) struct TaskRef {
    header: NonNull<Header>,
}

// SAFETY: what other threads reach through a `TaskRef` is atomic (state, count, join
// waker, registry slot) or read-only (vtable, owner, site); the future is touched only on
// the loop's thread (see the module documentation).
unsafe impl Send for TaskRef {}
// SAFETY: as for `Send`: `&TaskRef` gives no other access.
unsafe impl Sync for TaskRef {}

impl TaskRef {
    /// Allocates a task running `future`, scheduled on `owner`, and returns `N`
    /// references to it. The task starts `SCHEDULED` (one of the references is for the
    /// caller to queue) and with a `Task` handle (one is for the handle).
    pub(crate) fn allocate<F: Future + 'static, const N: usize>(
        future: F,
        owner: Arc<dyn Schedule>,
        site: &'static Location<'static>,
    ) -> [TaskRef; N] {
        let cell = Box::new(Cell {
            header: Header {
                state: AtomicUsize::new(SCHEDULED | HANDLE | (N * REF_ONE)),
                vtable: vtable::<F>(),
                owner,
                site,
                slot: AtomicU32::new(u32::MAX),
                join_waker: AtomicWaker::new(),
            },
            future: UnsafeCell::new(ManuallyDrop::new(future)),
            stage: UnsafeCell::new(Stage::Running),
        });
        let header = NonNull::from(Box::leak(cell)).cast::<Header>();
        // Each of the `N` references was counted above.
        [(); N].map(|()| TaskRef { header })
    }

    fn header(&self) -> &Header {
        // SAFETY: a `TaskRef` holds a reference, so the allocation is alive.
        unsafe { self.header.as_ref() }
    }

    /// Where the task was spawned.
    pub(crate) fn site(&self) -> &'static Location<'static> {
        self.header().site
    }

    /// Whether `self` and `other` are references to the same task.
    pub(crate) fn ptr_eq(&self, other: &TaskRef) -> bool {
        self.header == other.header
    }

    /// Whether the task's loop is `owner` (compared by address).
    pub(crate) fn is_owned_by(&self, owner: *const ()) -> bool {
        Arc::as_ptr(&self.header().owner) as *const () == owner
    }

    /// The task's registry slot (set by its loop's registry, on the loop thread).
    pub(crate) fn slot(&self) -> u32 {
        self.header().slot.load(Ordering::Relaxed)
    }

    /// Records the task's registry slot. Its loop's registry, on the loop thread.
    pub(crate) fn set_slot(&self, slot: u32) {
        self.header().slot.store(slot, Ordering::Relaxed)
    }

    /// Queues a poll unless one is queued or the task ended. Any thread.
    pub(crate) fn schedule(&self) {
        let state = &self.header().state;
        let mut current = state.load(Ordering::Acquire);
        loop {
            if current & (SCHEDULED | COMPLETE) != 0 {
                return;
            }
            match state.compare_exchange_weak(
                current,
                current | SCHEDULED,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        self.header().owner.schedule(self.clone());
    }

    /// Takes the task out of the run queue for a poll. Loop thread.
    pub(crate) fn start_poll(&self) -> PollStart {
        let state = &self.header().state;
        let mut current = state.load(Ordering::Acquire);
        loop {
            if current & COMPLETE != 0 {
                return PollStart::Skip;
            }
            if current & CANCELLED != 0 {
                // The end of a cancelled task is stored outside `RUNNING`.
                state.fetch_and(!SCHEDULED, Ordering::AcqRel);
                return PollStart::Cancel;
            }
            let next = (current & !SCHEDULED) | RUNNING;
            match state.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return PollStart::Run,
                Err(actual) => current = actual,
            }
        }
    }

    /// Polls the future with a waker that schedules this task.
    ///
    /// # Safety
    ///
    /// Loop thread, after [`start_poll`](TaskRef::start_poll) returned `Run`.
    pub(crate) unsafe fn poll(&self) -> Poll<()> {
        // A waker borrowing this reference: cloning it counts, this one does not.
        // SAFETY: the waker's data is this task's header, alive while `self` is.
        let waker = ManuallyDrop::new(unsafe { Waker::from_raw(raw_waker(self.header)) });
        let mut cx = Context::from_waker(&waker);
        // SAFETY: the caller is the loop thread polling a `RUNNING` task.
        unsafe { (self.header().vtable.poll)(self.header, &mut cx) }
    }

    /// Ends a poll that returned `Pending`; says whether the task must now be cancelled
    /// (it was asked to while it ran). Loop thread.
    pub(crate) fn end_poll_pending(&self) -> bool {
        let previous = self.header().state.fetch_and(!RUNNING, Ordering::AcqRel);
        previous & CANCELLED != 0
    }

    /// Drops the future (if it is still there) and stores `end` as the outcome.
    ///
    /// # Safety
    ///
    /// Loop thread, the task not complete, not being polled by anyone else.
    pub(crate) unsafe fn end(&self, end: TaskEnd) {
        // SAFETY: as the caller promises.
        unsafe { (self.header().vtable.end)(self.header, end) }
    }

    /// Marks the task complete (its outcome is stored) and hands the outcome on: wakes the
    /// handle's awaiter, or, when no handle is left, takes the outcome and returns its
    /// end, if it has one, for the loop to report. Loop thread.
    pub(crate) fn complete(&self) -> Option<TaskEnd> {
        let state = &self.header().state;
        let mut previous = state.load(Ordering::Acquire);
        while let Err(actual) = state.compare_exchange_weak(
            previous,
            (previous & !RUNNING) | COMPLETE,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            previous = actual;
        }
        if previous & HANDLE != 0 {
            self.header().join_waker.wake();
            None
        } else {
            // SAFETY: complete, and no handle: the loop owns the outcome.
            unsafe { (self.header().vtable.take_end)(self.header) }
        }
    }

    /// Asks for cancellation; returns `false` if the task already ended. Any thread; the
    /// caller then ends it at once (on its loop, when it is not running) or schedules it.
    pub(crate) fn request_cancel(&self) -> bool {
        let previous = self.header().state.fetch_or(CANCELLED, Ordering::AcqRel);
        previous & COMPLETE == 0
    }

    /// Whether the task is being polled now.
    pub(crate) fn is_running(&self) -> bool {
        self.header().state.load(Ordering::Acquire) & RUNNING != 0
    }

    /// Whether the task ended (its outcome is stored, or was taken).
    pub(crate) fn is_complete(&self) -> bool {
        self.header().state.load(Ordering::Acquire) & COMPLETE != 0
    }
}

impl Clone for TaskRef {
    fn clone(&self) -> TaskRef {
        self.header().state.fetch_add(REF_ONE, Ordering::Relaxed);
        TaskRef {
            header: self.header,
        }
    }
}

impl Drop for TaskRef {
    fn drop(&mut self) {
        release(self.header);
    }
}

impl std::fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskRef")
            .field("site", &self.site())
            .field("complete", &self.is_complete())
            .finish()
    }
}

/// Drops one reference; the last frees the task.
fn release(header: NonNull<Header>) {
    // SAFETY: the caller held a reference, so the header is alive until this decrement.
    let h = unsafe { header.as_ref() };
    // AcqRel rather than Release and a separate Acquire fence: on x86 both are one
    // `lock xadd`, and ThreadSanitizer does not model fences, so with a fence it reports
    // the other threads' last writes to the cell (a join waker registered on the awaiting
    // thread) as racing with the free.
    if h.state.fetch_sub(REF_ONE, Ordering::AcqRel) / REF_ONE == 1 {
        // SAFETY: that was the last reference; the acquire half of the decrement orders
        // every other holder's use of the cell before the free.
        unsafe { (h.vtable.dealloc)(header) }
    }
}

/// The typed side of a task, held by its `Task<T>` handle: waits for and takes the output.
pub(crate) struct JoinRef<T> {
    task: TaskRef,
    _output: PhantomData<T>,
}

impl<T> JoinRef<T> {
    /// The handle's reference to a task whose future outputs `T`.
    ///
    /// # Safety
    ///
    /// `task` was allocated with a future whose output is `T`, and this is the one
    /// handle reference its `HANDLE` bit stands for.
    pub(crate) unsafe fn new(task: TaskRef) -> JoinRef<T> {
        JoinRef {
            task,
            _output: PhantomData,
        }
    }

    /// The task, for cancelling it.
    pub(crate) fn task(&self) -> &TaskRef {
        &self.task
    }

    /// The outcome once the task ended; registers `cx`'s waker before that. `None` inside
    /// `Ready` when the outcome was taken already.
    pub(crate) fn poll_output(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, TaskEnd>>> {
        let header = self.task.header();
        if header.state.load(Ordering::Acquire) & COMPLETE == 0 {
            header.join_waker.register(cx.waker());
            if header.state.load(Ordering::Acquire) & COMPLETE == 0 {
                return Poll::Pending;
            }
        }
        let mut output: Option<Result<T, TaskEnd>> = None;
        // SAFETY: complete, and this handle owns the output (`HANDLE` is set); `T` is the
        // future's output type (see `new`).
        unsafe {
            (header.vtable.read_output)(self.task.header, (&mut output as *mut Option<_>).cast())
        };
        Poll::Ready(output)
    }
}

// The output is never pinned: it is moved out once ready.
impl<T> Unpin for JoinRef<T> {}

impl<T> Drop for JoinRef<T> {
    fn drop(&mut self) {
        let header = self.task.header();
        let previous = header.state.fetch_and(!HANDLE, Ordering::AcqRel);
        if previous & COMPLETE != 0 {
            // The loop left the outcome to this handle: drop it here, on the handle's
            // thread (the output is `Send` if the handle crossed threads).
            let mut output: Option<Result<T, TaskEnd>> = None;
            // SAFETY: complete, and this handle owned the output until now.
            unsafe {
                (header.vtable.read_output)(
                    self.task.header,
                    (&mut output as *mut Option<_>).cast(),
                )
            };
            if let Some(Err(TaskEnd::Panicked(payload))) = output {
                log::error!(
                    target: "ioloop",
                    "task spawned at {} panicked: {} (its Task was dropped without being awaited)",
                    header.site,
                    panic_message(&*payload)
                );
            }
        }
    }
}

/// A task spawned from another thread, on its way to its loop: the loop adopts it into
/// its registry when the entry runs. Dropped unadopted (the loop was closed), it ends
/// the task as cancelled, on whatever thread drops it, which is sound because such tasks
/// are `Send`.
pub(crate) struct Unadopted {
    task: Option<TaskRef>,
}

impl Unadopted {
    /// Allocates a `Send` task, as [`TaskRef::allocate`] does, for another thread to
    /// send to its loop: the task on its way, and the reference for its handle.
    pub(crate) fn allocate<F: Future + Send + 'static>(
        future: F,
        owner: Arc<dyn Schedule>,
        site: &'static Location<'static>,
    ) -> (Unadopted, TaskRef) {
        let [queued, handle] = TaskRef::allocate(future, owner, site);
        (Unadopted { task: Some(queued) }, handle)
    }

    /// The task, now the loop's.
    pub(crate) fn adopt(mut self) -> TaskRef {
        self.task.take().expect("adopted once")
    }
}

impl Drop for Unadopted {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            // SAFETY: no loop owns the task, nobody polls it, and its future is `Send`.
            unsafe { task.end(TaskEnd::Cancelled) };
            drop(task.complete());
        }
    }
}

fn vtable<F: Future + 'static>() -> &'static Vtable {
    &Vtable {
        poll: poll::<F>,
        end: end::<F>,
        take_end: take_end::<F>,
        read_output: read_output::<F>,
        dealloc: dealloc::<F>,
    }
}

/// The task's stage.
///
/// # Safety
///
/// `header` heads a live `Cell<F>`, and the caller has the access rights the module
/// documentation gives (the loop thread before `COMPLETE`, the output's owner after).
unsafe fn stage<'a, F: Future>(header: NonNull<Header>) -> &'a mut Stage<F::Output> {
    // SAFETY: `Cell` is `repr(C)` with the header first; the caller's promise covers the
    // exclusive access.
    unsafe { &mut *header.cast::<Cell<F>>().as_ref().stage.get() }
}

unsafe fn poll<F: Future>(header: NonNull<Header>, cx: &mut Context<'_>) -> Poll<()> {
    // SAFETY: see `Vtable::poll`.
    if !matches!(unsafe { stage::<F>(header) }, Stage::Running) {
        return Poll::Ready(());
    }
    // SAFETY: the cell is alive (as above); the stage is running, so the future is alive,
    // and only the loop thread polling the task reaches it.
    let future = unsafe { &mut *header.cast::<Cell<F>>().as_ref().future.get() };
    // SAFETY: the future never moves: it lives in the heap allocation until dropped there.
    let future = unsafe { Pin::new_unchecked(&mut **future) };
    match future.poll(cx) {
        Poll::Ready(output) => {
            // SAFETY: as for this call; the reference to the future is not used again.
            unsafe { finish::<F>(header, Ok(output)) };
            Poll::Ready(())
        }
        Poll::Pending => Poll::Pending,
    }
}

unsafe fn end<F: Future>(header: NonNull<Header>, end: TaskEnd) {
    // SAFETY: see `Vtable::end`.
    unsafe { finish::<F>(header, Err(end)) }
}

/// Stores the task's outcome, then drops the future where it lies (it is pinned: a future
/// that borrows from itself, an async block holding a reference to its own local across
/// an await, must not move before its destructor runs). The stage reads as finished
/// while the destructor runs, which may end, complete or read this very task. A stage
/// that had already finished has its outcome replaced, the old one dropped after.
///
/// # Safety
///
/// As for [`stage`], and no reference to the stage or the future is live.
unsafe fn finish<F: Future>(header: NonNull<Header>, outcome: Result<F::Output, TaskEnd>) {
    // SAFETY: the caller's promise.
    let stage = unsafe { stage::<F>(header) };
    let previous = std::mem::replace(stage, Stage::Finished(outcome));
    if matches!(previous, Stage::Running) {
        // SAFETY: the stage was running, so the future is alive; it now reads as finished,
        // so nothing drops or polls the future again. The cell is alive (as above).
        unsafe { ManuallyDrop::drop(&mut *header.cast::<Cell<F>>().as_ref().future.get()) };
    } else {
        drop(previous);
    }
}

unsafe fn take_end<F: Future>(header: NonNull<Header>) -> Option<TaskEnd> {
    // SAFETY: see `Vtable::take_end`.
    let stage = unsafe { stage::<F>(header) };
    match std::mem::replace(stage, Stage::Consumed) {
        Stage::Finished(Err(end)) => Some(end),
        _ => None,
    }
}

unsafe fn read_output<F: Future>(header: NonNull<Header>, dst: *mut ()) {
    // SAFETY: see `Vtable::read_output`; `dst` points to an
    // `Option<Result<F::Output, TaskEnd>>`.
    unsafe {
        let stage = stage::<F>(header);
        if let Stage::Finished(outcome) = std::mem::replace(stage, Stage::Consumed) {
            *dst.cast::<Option<Result<F::Output, TaskEnd>>>() = Some(outcome);
        }
    }
}

unsafe fn dealloc<F: Future>(header: NonNull<Header>) {
    // SAFETY: the last reference is gone; the allocation came from `Box<Cell<F>>`.
    drop(unsafe { Box::from_raw(header.cast::<Cell<F>>().as_ptr()) });
}

fn raw_waker(header: NonNull<Header>) -> RawWaker {
    RawWaker::new(header.as_ptr() as *const (), &WAKER_VTABLE)
}

static WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(waker_clone, waker_wake, waker_wake_by_ref, waker_drop);

/// The task header a waker's data points to.
///
/// # Safety
///
/// `data` is the data of a waker made by [`raw_waker`]: a live task's header pointer.
unsafe fn header_of(data: *const ()) -> NonNull<Header> {
    // SAFETY: as the caller promises, `data` is a task header pointer, never null.
    unsafe { NonNull::new_unchecked(data as *mut Header) }
}

unsafe fn waker_clone(data: *const ()) -> RawWaker {
    // SAFETY: the waker vtable's functions get the data of a waker from `raw_waker`.
    let header = unsafe { header_of(data) };
    // SAFETY: the waker being cloned holds (or borrows) a reference.
    unsafe { header.as_ref() }
        .state
        .fetch_add(REF_ONE, Ordering::Relaxed);
    raw_waker(header)
}

unsafe fn waker_wake(data: *const ()) {
    let task = TaskRef {
        // SAFETY: as in `waker_clone`.
        header: unsafe { header_of(data) },
    };
    task.schedule();
    // `task` drops the waker's reference.
}

unsafe fn waker_wake_by_ref(data: *const ()) {
    let task = ManuallyDrop::new(TaskRef {
        // SAFETY: as in `waker_clone`.
        header: unsafe { header_of(data) },
    });
    task.schedule();
}

unsafe fn waker_drop(data: *const ()) {
    // SAFETY: as in `waker_clone`.
    release(unsafe { header_of(data) });
}

// These tests drive the task cell without a loop (a queue stands in for it), so that
// Miri runs every `unsafe` block above: allocation, polling, waking from another thread,
// cancellation, panics, the handle taking or dropping the output, and the last reference
// freeing the memory on whatever thread drops it.
#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Mutex;

    /// The loop's run queue, standing in for it.
    #[derive(Default)]
    struct Queue(Mutex<Vec<TaskRef>>);

    impl Schedule for Queue {
        fn schedule(&self, task: TaskRef) {
            self.0.lock().unwrap().push(task);
        }
    }

    impl Queue {
        fn pop(&self) -> Option<TaskRef> {
            self.0.lock().unwrap().pop()
        }
    }

    fn queue() -> (Arc<Queue>, Arc<dyn Schedule>) {
        let queue = Arc::new(Queue::default());
        (queue.clone(), queue)
    }

    fn noop_context<R>(f: impl FnOnce(&mut Context<'_>) -> R) -> R {
        f(&mut Context::from_waker(Waker::noop()))
    }

    /// A future of output `()` that panics with `message`. (`async { panic!(..) }` has
    /// output `!` on toolchains whose never type falls back to itself, and a
    /// `JoinRef<()>` for it would read its output as the wrong type: Miri on nightly
    /// reported the invalid enum tag.)
    async fn panics(message: &'static str) {
        std::panic::panic_any(message)
    }

    /// Polls `task` as the loop does; ends it on a panic. Returns whether it finished.
    fn run(task: &TaskRef) -> bool {
        match task.start_poll() {
            PollStart::Run => {}
            PollStart::Cancel => {
                // SAFETY: the test is the loop thread; the task is not running.
                unsafe { task.end(TaskEnd::Cancelled) };
                return true;
            }
            PollStart::Skip => return true,
        }
        // SAFETY: the test is the loop thread, and `start_poll` said `Run`.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { task.poll() })) {
            Ok(Poll::Pending) => {
                if task.end_poll_pending() {
                    // SAFETY: as above; the poll has ended.
                    unsafe { task.end(TaskEnd::Cancelled) };
                    return true;
                }
                false
            }
            Ok(Poll::Ready(())) => true,
            Err(payload) => {
                // SAFETY: as above; the poll has ended.
                unsafe { task.end(TaskEnd::Panicked(payload)) };
                true
            }
        }
    }

    /// A future that never completes and holds `value` until it is dropped.
    async fn pending_holding<T>(value: T) {
        let _held = value;
        std::future::pending::<()>().await;
    }

    /// Sets its flag when dropped.
    struct DropFlag(Arc<AtomicBool>);

    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// Pending until its waker is taken and woken by someone.
    struct WaitOnce {
        waker: Arc<Mutex<Option<Waker>>>,
        polled: bool,
    }

    impl Future for WaitOnce {
        type Output = String;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<String> {
            if self.polled {
                return Poll::Ready("woken".to_owned());
            }
            self.polled = true;
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    #[test]
    fn a_ready_task_hands_its_output_to_its_handle() {
        let (queue, owner) = queue();
        let [queued, registry, handle] =
            TaskRef::allocate(async { vec![1, 2, 3] }, owner, Location::caller());
        // SAFETY: `handle` is the handle reference of a future with this output.
        let mut join = unsafe { JoinRef::<Vec<i32>>::new(handle) };
        registry.set_slot(7);
        assert_eq!(registry.slot(), 7);
        assert!(queued.ptr_eq(&registry));
        assert!(run(&queued));
        assert!(queued.complete().is_none(), "the handle takes the outcome");
        drop(queued);
        assert!(registry.is_complete() && !registry.is_running());
        let output = noop_context(|cx| join.poll_output(cx));
        assert!(matches!(output, Poll::Ready(Some(Ok(ref v))) if v == &[1, 2, 3]));
        let again = noop_context(|cx| join.poll_output(cx));
        assert!(matches!(again, Poll::Ready(None)), "taken once");
        drop(join);
        drop(registry);
        assert!(queue.pop().is_none());
    }

    #[test]
    fn a_waker_sent_to_another_thread_schedules_the_task_once() {
        let (queue, owner) = queue();
        let slot = Arc::new(Mutex::new(None));
        let future = WaitOnce {
            waker: slot.clone(),
            polled: false,
        };
        let [queued, registry, handle] = TaskRef::allocate(future, owner, Location::caller());
        // SAFETY: as above.
        let mut join = unsafe { JoinRef::<String>::new(handle) };
        assert!(noop_context(|cx| join.poll_output(cx)).is_pending());
        assert!(!run(&queued));
        drop(queued);
        let waker = slot
            .lock()
            .unwrap()
            .take()
            .expect("the future kept its waker");
        std::thread::spawn(move || {
            let clone = waker.clone();
            waker.wake_by_ref();
            clone.wake_by_ref(); // already scheduled: no second entry
            drop(clone);
            waker.wake();
        })
        .join()
        .unwrap();
        let queued = queue.pop().expect("the wake scheduled it");
        assert!(queue.pop().is_none(), "scheduled once");
        assert!(run(&queued));
        assert!(queued.complete().is_none());
        drop(queued);
        let output = noop_context(|cx| join.poll_output(cx));
        assert!(matches!(output, Poll::Ready(Some(Ok(ref s))) if s == "woken"));
        drop(registry);
        drop(join);
    }

    #[test]
    fn a_cancelled_task_drops_its_future_and_its_handle_sees_the_cancel() {
        let (queue, owner) = queue();
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(dropped.clone());
        let [queued, handle] = TaskRef::allocate(pending_holding(flag), owner, Location::caller());
        // SAFETY: as above.
        let mut join = unsafe { JoinRef::<()>::new(handle) };
        assert!(!run(&queued));
        drop(queued);
        assert!(join.task().request_cancel());
        // The loop's turn: the entry the cancel scheduled (the queue must not keep it: it
        // holds the queue through its owner, a cycle).
        join.task().schedule();
        let queued = queue.pop().expect("scheduled");
        assert!(run(&queued), "a cancelled task ends at its next turn");
        assert!(
            dropped.load(Ordering::SeqCst),
            "the future is dropped at once"
        );
        assert!(queued.complete().is_none());
        assert!(!queued.request_cancel(), "it already ended");
        let output = noop_context(|cx| join.poll_output(cx));
        assert!(matches!(output, Poll::Ready(Some(Err(TaskEnd::Cancelled)))));
        drop(queued);
        drop(join);
    }

    /// Panics in its destructor unless it is where it was when the future was first
    /// polled: a future is pinned, and one that borrows from itself breaks if moved.
    struct PinnedWitness {
        address_when_polled: Arc<std::sync::atomic::AtomicUsize>,
        dropped: Arc<AtomicBool>,
    }

    impl Drop for PinnedWitness {
        fn drop(&mut self) {
            let here = std::ptr::from_mut(self) as usize;
            assert_eq!(
                here,
                self.address_when_polled.load(Ordering::SeqCst),
                "the future moved before its destructor"
            );
            self.dropped.store(true, Ordering::SeqCst);
        }
    }

    /// An async block whose witness notes its own address at the first poll, then waits
    /// for `wait`.
    fn witnessed<W: Future>(wait: W) -> (impl Future<Output = W::Output>, Arc<AtomicBool>) {
        let address = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let dropped = Arc::new(AtomicBool::new(false));
        let witness = PinnedWitness {
            address_when_polled: address.clone(),
            dropped: dropped.clone(),
        };
        let future = async move {
            let mut witness = witness;
            address.store(std::ptr::from_mut(&mut witness) as usize, Ordering::SeqCst);
            let output = wait.await;
            drop(address);
            std::hint::black_box(&mut witness);
            output
        };
        (future, dropped)
    }

    #[test]
    fn a_cancelled_future_is_dropped_where_it_was_pinned() {
        let (_queue, owner) = queue();
        let (future, dropped) = witnessed(std::future::pending::<()>());
        let [queued, handle] = TaskRef::allocate(future, owner, Location::caller());
        // SAFETY: as above.
        let join = unsafe { JoinRef::<()>::new(handle) };
        assert!(!run(&queued));
        // SAFETY: the test is the loop thread; the task is not running.
        unsafe { queued.end(TaskEnd::Cancelled) };
        assert!(dropped.load(Ordering::SeqCst));
        assert!(queued.complete().is_none());
        drop((queued, join));
    }

    /// Ends its own task from its destructor.
    struct EndsItsTask {
        task: Arc<Mutex<Option<TaskRef>>>,
        drops: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Drop for EndsItsTask {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::SeqCst);
            if let Some(task) = self.task.lock().unwrap().take() {
                // SAFETY: the test is the loop thread, inside the task's own `end`.
                unsafe { task.end(TaskEnd::Cancelled) };
            }
        }
    }

    #[test]
    fn a_future_that_ends_its_own_task_from_its_destructor_is_dropped_once() {
        let (_queue, owner) = queue();
        let slot = Arc::new(Mutex::new(None));
        let drops = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let ends_its_task = EndsItsTask {
            task: slot.clone(),
            drops: drops.clone(),
        };
        let [queued, registry, handle] =
            TaskRef::allocate(pending_holding(ends_its_task), owner, Location::caller());
        // SAFETY: as above.
        let mut join = unsafe { JoinRef::<()>::new(handle) };
        assert!(!run(&queued));
        *slot.lock().unwrap() = Some(registry);
        // SAFETY: the test is the loop thread; the task is not running.
        unsafe { queued.end(TaskEnd::Panicked(Box::new("outer"))) };
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert!(queued.complete().is_none());
        let output = noop_context(|cx| join.poll_output(cx));
        assert!(
            matches!(output, Poll::Ready(Some(Err(TaskEnd::Cancelled)))),
            "the end from inside the destructor came last"
        );
        drop((queued, join));
    }

    #[test]
    fn a_panic_without_a_handle_goes_to_the_loop_and_the_memory_is_freed() {
        let (_queue, owner) = queue();
        let [queued, handle] = TaskRef::allocate(panics("boom"), owner, Location::caller());
        // SAFETY: as above.
        drop(unsafe { JoinRef::<()>::new(handle) });
        assert!(run(&queued));
        let end = queued.complete();
        assert!(matches!(end, Some(TaskEnd::Panicked(ref p)) if panic_message(&**p) == "boom"));
        drop(queued);
    }

    #[test]
    fn a_handle_dropped_after_the_end_drops_the_output_on_its_thread() {
        let (_queue, owner) = queue();
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(dropped.clone());
        let [queued, handle] = TaskRef::allocate(async move { flag }, owner, Location::caller());
        // SAFETY: as above.
        let join = unsafe { JoinRef::<DropFlag>::new(handle) };
        assert!(run(&queued));
        assert!(queued.complete().is_none());
        assert!(
            !dropped.load(Ordering::SeqCst),
            "the output waits for the handle"
        );
        std::thread::spawn(move || drop(join)).join().unwrap();
        assert!(dropped.load(Ordering::SeqCst));
        drop(queued);
    }

    #[test]
    fn a_handle_dropped_after_a_panic_reports_it() {
        let (_queue, owner) = queue();
        let [queued, handle] = TaskRef::allocate(panics("late"), owner, Location::caller());
        // SAFETY: as above.
        let join = unsafe { JoinRef::<()>::new(handle) };
        assert!(run(&queued));
        assert!(queued.complete().is_none());
        drop(join);
        drop(queued);
    }

    #[test]
    fn an_unadopted_task_dropped_is_cancelled_and_a_waker_frees_it_last() {
        let (queue, owner) = queue();
        let slot = Arc::new(Mutex::new(None));
        let (unadopted, handle) = Unadopted::allocate(
            WaitOnce {
                waker: slot.clone(),
                polled: false,
            },
            owner.clone(),
            Location::caller(),
        );
        // SAFETY: as above.
        let mut join = unsafe { JoinRef::<String>::new(handle) };
        drop(unadopted);
        let output = noop_context(|cx| join.poll_output(cx));
        assert!(matches!(output, Poll::Ready(Some(Err(TaskEnd::Cancelled)))));
        drop(join);

        // Adopted, polled once, then everything but a waker on another thread is gone.
        let (unadopted, handle) = Unadopted::allocate(
            WaitOnce {
                waker: slot.clone(),
                polled: false,
            },
            owner,
            Location::caller(),
        );
        // SAFETY: as above.
        let join = unsafe { JoinRef::<String>::new(handle) };
        let task = unadopted.adopt();
        assert!(task.is_owned_by(Arc::as_ptr(&queue) as *const ()));
        assert!(!run(&task));
        // SAFETY: the loop thread, not running.
        unsafe { task.end(TaskEnd::Cancelled) };
        assert!(task.complete().is_none());
        drop(task);
        drop(join);
        let waker = slot.lock().unwrap().take().unwrap();
        std::thread::spawn(move || {
            waker.wake_by_ref(); // complete: no schedule
            drop(waker); // the last reference: frees the task here
        })
        .join()
        .unwrap();
        assert!(queue.pop().is_none());
    }

    #[test]
    fn the_registry_cancels_the_tasks_it_still_holds_when_dropped() {
        use super::super::task_registry::TaskRegistry;
        let (_queue, owner) = queue();
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(dropped.clone());
        let [queued, live, handle] =
            TaskRef::allocate(pending_holding(flag), owner, Location::caller());
        // SAFETY: as above.
        let mut join = unsafe { JoinRef::<()>::new(handle) };
        let mut registry = TaskRegistry::default();
        registry.insert(live);
        assert_eq!(registry.len(), 1);
        assert!(!run(&queued));
        drop(registry);
        assert!(dropped.load(Ordering::SeqCst));
        let output = noop_context(|cx| join.poll_output(cx));
        assert!(matches!(output, Poll::Ready(Some(Err(TaskEnd::Cancelled)))));
        assert!(matches!(queued.start_poll(), PollStart::Skip));
        drop(queued);
        drop(join);
    }
}
