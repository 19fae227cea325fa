//! [`Remote`]: the `Send + Sync` handle through which other threads post callbacks to a
//! loop and stop it.
//!
//! Posted callbacks go into a mutex-protected queue shared with the loop. The poller is
//! notified only when the queue goes from empty to non-empty, so any number of posts
//! between two iterations cost one wakeup; the loop moves the whole queue into its local
//! queue at the start of each iteration (step 1 of the iteration order). Wakes of tasks
//! from other threads take the same path.

use std::collections::VecDeque;
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use polling::Poller;

use crate::error::LoopError;
use crate::failure::Callback;
use crate::ioloop::Queued;
use crate::task::TaskKey;
use crate::IoLoop;

/// Work posted from another thread: a callback and where it was posted, or a wake of a
/// task.
pub(crate) enum Posted {
    Callback(Box<dyn FnOnce(&IoLoop) + Send>, &'static Location<'static>),
    Task(TaskKey),
}

impl From<Posted> for Queued {
    fn from(posted: Posted) -> Queued {
        match posted {
            Posted::Callback(f, site) => Queued::Callback(Callback::with_site(f, site)),
            Posted::Task(key) => Queued::Task(key),
        }
    }
}

#[derive(Default)]
struct PostedQueue {
    callbacks: VecDeque<Posted>,
    closed: bool,
}

/// State shared between the loop and its [`Remote`]s.
pub(crate) struct Shared {
    pub(crate) poller: Poller,
    queue: Mutex<PostedQueue>,
    /// Set after a post, cleared by the loop before it drains: lets the loop skip the lock
    /// on iterations where nothing was posted.
    posted: AtomicBool,
    stop_requested: AtomicBool,
    wakeups: AtomicU64,
}

impl Shared {
    pub(crate) fn new(poller: Poller) -> Shared {
        Shared {
            poller,
            queue: Mutex::new(PostedQueue::default()),
            posted: AtomicBool::new(false),
            stop_requested: AtomicBool::new(false),
            wakeups: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PostedQueue> {
        // A panic while the lock is held cannot leave the queue inconsistent (only push and
        // drain run under it), so a poisoned lock is still usable.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the loop's current or next poll.
    ///
    /// The counter is bumped after the notification is sent, so a loop that read the
    /// counter before its wait has consumed every notification counted so far.
    fn wake(&self) {
        if let Err(e) = self.poller.notify() {
            log::error!(target: "ioloop", "failed to wake the loop: {e}");
        }
        self.wakeups.fetch_add(1, Ordering::Release);
    }

    /// Queues `callback` for the loop's next iteration, waking the loop if its queue was
    /// empty. Fails once the loop is closed or dropped.
    pub(crate) fn post(&self, callback: Posted) -> Result<(), LoopError> {
        let was_empty = {
            let mut queue = self.lock();
            if queue.closed {
                return Err(LoopError::Closed);
            }
            let was_empty = queue.callbacks.is_empty();
            queue.callbacks.push_back(callback);
            was_empty
        };
        self.posted.store(true, Ordering::Release);
        if was_empty {
            self.wake();
        }
        Ok(())
    }

    /// Whether callbacks were posted since the last [`Shared::drain_into`].
    pub(crate) fn has_posted(&self) -> bool {
        self.posted.load(Ordering::Acquire)
    }

    /// Moves every posted callback to the end of `local`.
    pub(crate) fn drain_into(&self, local: &mut VecDeque<Queued>) {
        // A plain load first: the locked swap is paid only when something was posted.
        if !self.posted.load(Ordering::Relaxed) || !self.posted.swap(false, Ordering::Acquire) {
            return;
        }
        let mut queue = self.lock();
        local.extend(queue.callbacks.drain(..).map(Queued::from));
    }

    pub(crate) fn request_stop(&self) {
        self.stop_requested.store(true, Ordering::Release);
    }

    pub(crate) fn stop_requested(&self) -> bool {
        self.stop_requested.load(Ordering::Acquire)
    }

    /// Consumes a pending stop request.
    pub(crate) fn take_stop_request(&self) -> bool {
        self.stop_requested.load(Ordering::Relaxed)
            && self.stop_requested.swap(false, Ordering::AcqRel)
    }

    /// Refuses further posts and drops what was queued (outside the lock: a closure's
    /// destructor may post again, and must then get `Closed`, not a deadlock).
    pub(crate) fn close(&self) {
        let queued = {
            let mut queue = self.lock();
            queue.closed = true;
            std::mem::take(&mut queue.callbacks)
        };
        drop(queued);
    }

    /// Wakeups sent so far; each is counted after its notification was sent.
    pub(crate) fn wakeups(&self) -> u64 {
        self.wakeups.load(Ordering::Acquire)
    }
}

/// A `Send + Sync + Clone` handle to an [`IoLoop`], for use from other threads.
///
/// This is the only way into a loop from another thread (Tornado's thread-safe
/// `add_callback`). Get one with [`IoLoop::remote`]. Posting is cheap: a mutex-protected
/// push, plus one poller wakeup when the loop's queue was empty.
///
/// # Examples
///
/// ```
/// use ioloop::IoLoop;
///
/// let ioloop = IoLoop::new()?;
/// let remote = ioloop.remote();
/// let worker = std::thread::spawn(move || {
///     let answer = 6 * 7; // some work off the loop thread
///     remote
///         .add_callback(move |ioloop| {
///             assert_eq!(answer, 42);
///             ioloop.stop();
///         })
///         .unwrap();
/// });
/// ioloop.start()?;
/// worker.join().unwrap();
/// # Ok::<(), ioloop::LoopError>(())
/// ```
#[derive(Clone)]
pub struct Remote {
    pub(crate) shared: Arc<Shared>,
}

impl Remote {
    /// Schedules `callback` to run on the loop thread, on the loop's next iteration.
    ///
    /// Thread-safe. Callbacks posted from one thread run in the order they were posted,
    /// after the callbacks the loop had already queued. The loop is woken if it is waiting;
    /// many posts before the loop's next iteration cost one wakeup.
    ///
    /// # Errors
    ///
    /// [`LoopError::Closed`] if the loop was closed or dropped; the callback is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let remote = ioloop.remote();
    /// std::thread::spawn(move || remote.add_callback(|ioloop| ioloop.stop()).unwrap())
    ///     .join()
    ///     .unwrap();
    /// ioloop.start()?;
    /// # Ok::<(), ioloop::LoopError>(())
    /// ```
    #[track_caller]
    pub fn add_callback<F>(&self, callback: F) -> Result<(), LoopError>
    where
        F: FnOnce(&IoLoop) + Send + 'static,
    {
        self.shared
            .post(Posted::Callback(Box::new(callback), Location::caller()))
    }

    /// Asks the loop to stop, from any thread, and wakes it.
    ///
    /// Thread-safe. Same effect as [`IoLoop::stop`]: the loop finishes the callbacks and
    /// timers of its current iteration and returns from [`IoLoop::start`] before polling
    /// again. A stop requested while the loop is not running makes the next
    /// [`IoLoop::start`] return at once.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let remote = ioloop.remote();
    /// let t = std::thread::spawn(move || remote.stop());
    /// ioloop.start()?; // returns once the other thread has called stop()
    /// t.join().unwrap();
    /// # Ok::<(), ioloop::LoopError>(())
    /// ```
    pub fn stop(&self) {
        self.shared.request_stop();
        self.shared.wake();
    }

    /// Whether the loop was closed or dropped; posts then fail with [`LoopError::Closed`].
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let remote = ioloop.remote();
    /// assert!(!remote.is_closed());
    /// drop(ioloop);
    /// assert!(remote.is_closed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("stop_requested", &self.stop_requested())
            .field("wakeups", &self.wakeups())
            .finish_non_exhaustive()
    }
}
