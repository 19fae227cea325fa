//! Oneshot completions: the bridge from a callback API to a future.
//!
//! [`completion`] returns a [`Completer`], which a callback completes with a value, and a
//! [`Completion`], a future that resolves to that value. Both halves are `Send` when the
//! value is, so the callback may run on any thread; the task awaiting the `Completion` is
//! woken through its waker (for an `ioloop` task from another thread, that is the loop's
//! coalesced cross-thread queue).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// The state shared by the two halves of a oneshot.
struct Cell<V> {
    value: Option<V>,
    waker: Option<Waker>,
    /// The sending half sent its value or was dropped.
    sender_done: bool,
    receiver_gone: bool,
}

type Shared<V> = Arc<Mutex<Cell<V>>>;

fn lock<V>(shared: &Mutex<Cell<V>>) -> MutexGuard<'_, Cell<V>> {
    // Only plain field updates run under the lock, so a poisoned lock is still consistent.
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

fn new_cell<V>() -> Shared<V> {
    Arc::new(Mutex::new(Cell {
        value: None,
        waker: None,
        sender_done: false,
        receiver_gone: false,
    }))
}

/// The sending half of a oneshot cell.
pub(crate) struct Sender<V> {
    shared: Shared<V>,
}

/// The receiving half of a oneshot cell.
pub(crate) struct Receiver<V> {
    shared: Shared<V>,
}

/// A oneshot cell: its sending and its receiving half.
pub(crate) fn channel<V>() -> (Sender<V>, Receiver<V>) {
    let shared = new_cell();
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

impl<V> Sender<V> {
    /// Stores `value` and wakes the receiver. Hands `value` back if the receiver is gone.
    pub(crate) fn send(self, value: V) -> Result<(), V> {
        store(&self.shared, value)
    }

    /// Whether the receiving half still exists.
    pub(crate) fn receiver_alive(&self) -> bool {
        !lock(&self.shared).receiver_gone
    }
}

/// Stores `value` unless the receiver is gone or a value was already stored, then wakes
/// the receiver (outside the lock).
fn store<V>(shared: &Mutex<Cell<V>>, value: V) -> Result<(), V> {
    let waker = {
        let mut cell = lock(shared);
        if cell.receiver_gone || cell.sender_done {
            return Err(value);
        }
        cell.value = Some(value);
        cell.sender_done = true;
        cell.waker.take()
    };
    if let Some(waker) = waker {
        waker.wake();
    }
    Ok(())
}

impl<V> Drop for Sender<V> {
    fn drop(&mut self) {
        abandon(&self.shared);
    }
}

/// Marks the cell finished without a value (unless it has one) and wakes the receiver.
fn abandon<V>(shared: &Mutex<Cell<V>>) {
    let waker = {
        let mut cell = lock(shared);
        if cell.sender_done {
            return;
        }
        cell.sender_done = true;
        cell.waker.take()
    };
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// The sender finished without sending (it was dropped).
pub(crate) struct SenderDropped;

impl<V> Receiver<V> {
    /// The value once sent; `Err` once the sender is gone without sending.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<V, SenderDropped>> {
        let mut cell = lock(&self.shared);
        if let Some(value) = cell.value.take() {
            return Poll::Ready(Ok(value));
        }
        if cell.sender_done {
            return Poll::Ready(Err(SenderDropped));
        }
        let replaced = match &cell.waker {
            Some(waker) if waker.will_wake(cx.waker()) => None,
            _ => cell.waker.replace(cx.waker().clone()),
        };
        // A waker is a user value: dropped once the lock is released.
        drop(cell);
        drop(replaced);
        Poll::Pending
    }

    /// Whether the sender sent its value or is gone.
    pub(crate) fn is_done(&self) -> bool {
        lock(&self.shared).sender_done
    }
}

impl<V> Drop for Receiver<V> {
    fn drop(&mut self) {
        lock(&self.shared).receiver_gone = true;
    }
}

/// A [`Completer`] and the [`Completion`] it completes: turns a callback API into a
/// future.
///
/// Complete it from any thread (both halves are `Send` when `T` is). The `Completion`
/// resolves to `Ok(value)`, or to `Err(Abandoned)` if the `Completer` is dropped without
/// completing, so an API that forgets its callback gives a clear error, never a hang.
///
/// # Examples
///
/// ```
/// use ioloop::IoLoop;
/// use std::time::Duration;
///
/// // A callback API: calls `on_done` with the result later.
/// fn compute_later(ioloop: &IoLoop, on_done: impl FnOnce(u32) + 'static) {
///     ioloop.call_later(Duration::from_millis(1), move |_| on_done(42));
/// }
///
/// let ioloop = IoLoop::new()?;
/// let handle = ioloop.clone();
/// let answer = ioloop.run_sync(async move {
///     let (done, result) = ioloop::completion();
///     compute_later(&handle, move |v| done.complete(v));
///     result.await
/// })?;
/// assert_eq!(answer, Ok(42));
/// # Ok::<(), ioloop::RunSyncError>(())
/// ```
pub fn completion<T>() -> (Completer<T>, Completion<T>) {
    let (sender, receiver) = channel();
    (Completer { sender }, Completion { receiver })
}

/// The completing half of a [`completion`]: call [`complete`](Completer::complete) once,
/// from any thread.
///
/// # Examples
///
/// ```
/// let ioloop = ioloop::IoLoop::new()?;
/// let (done, result) = ioloop::completion();
/// let worker = std::thread::spawn(move || done.complete(6 * 7)); // a Completer is Send
/// assert_eq!(ioloop.run_sync(result)?, Ok(42));
/// worker.join().unwrap();
/// # Ok::<(), ioloop::RunSyncError>(())
/// ```
pub struct Completer<T> {
    sender: Sender<T>,
}

impl<T> Completer<T> {
    /// Resolves the [`Completion`] with `value` and wakes whoever awaits it. If the
    /// `Completion` was dropped, `value` is dropped (check
    /// [`is_abandoned`](Completer::is_abandoned) first to keep it). Thread-safe.
    ///
    /// # Examples
    ///
    /// ```
    /// let (done, result) = ioloop::completion();
    /// done.complete(String::from("ready")); // before anyone awaits: kept until then
    /// let ioloop = ioloop::IoLoop::new()?;
    /// assert_eq!(ioloop.run_sync(result)?.as_deref(), Ok("ready"));
    /// # Ok::<(), ioloop::RunSyncError>(())
    /// ```
    pub fn complete(self, value: T) {
        let _ = self.sender.send(value);
    }

    /// Whether the [`Completion`] was dropped, so nobody will see the value.
    ///
    /// # Examples
    ///
    /// ```
    /// let (done, result) = ioloop::completion::<u8>();
    /// assert!(!done.is_abandoned());
    /// drop(result);
    /// assert!(done.is_abandoned());
    /// ```
    pub fn is_abandoned(&self) -> bool {
        !self.sender.receiver_alive()
    }
}

impl<T> fmt::Debug for Completer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completer")
            .field("abandoned", &self.is_abandoned())
            .finish()
    }
}

/// The awaiting half of a [`completion`]: a future of `Result<T, Abandoned>`.
///
/// # Examples
///
/// ```
/// use ioloop::task::{Abandoned, Completion};
///
/// let ioloop = ioloop::IoLoop::new()?;
/// let (done, result): (_, Completion<&str>) = ioloop::completion();
/// ioloop.add_callback(move |_| done.complete("from a callback"));
/// assert_eq!(ioloop.run_sync(result)?, Ok("from a callback"));
///
/// let (forgotten, result) = ioloop::completion::<()>();
/// ioloop.add_callback(move |_| drop(forgotten));
/// assert_eq!(ioloop.run_sync(result)?, Err(Abandoned));
/// # Ok::<(), ioloop::RunSyncError>(())
/// ```
pub struct Completion<T> {
    receiver: Receiver<T>,
}

impl<T> Completion<T> {
    /// Whether the [`Completer`] completed or was dropped, so awaiting returns at once.
    ///
    /// # Examples
    ///
    /// ```
    /// let (done, result) = ioloop::completion();
    /// assert!(!result.is_done());
    /// done.complete("ready");
    /// assert!(result.is_done());
    /// ```
    pub fn is_done(&self) -> bool {
        self.receiver.is_done()
    }
}

impl<T> Future for Completion<T> {
    type Output = Result<T, Abandoned>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.receiver
            .poll_recv(cx)
            .map_err(|SenderDropped| Abandoned)
    }
}

impl<T> fmt::Debug for Completion<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completion")
            .field("done", &self.is_done())
            .finish()
    }
}

/// The [`Completer`] was dropped without completing.
///
/// # Examples
///
/// ```
/// let (done, result) = ioloop::completion::<u8>();
/// drop(done);
/// let ioloop = ioloop::IoLoop::new()?;
/// assert_eq!(ioloop.run_sync(result)?, Err(ioloop::task::Abandoned));
/// # Ok::<(), ioloop::RunSyncError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abandoned;

impl fmt::Display for Abandoned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the completer was dropped without completing")
    }
}

impl std::error::Error for Abandoned {}
