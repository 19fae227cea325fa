//! [`CrossThread`]: the part of a loop that other threads reach: the poller (to wake the
//! loop), the queue of work posted to it and its stop flag.
//!
//! Posted work goes into a mutex-protected queue. The loop is woken (by its poller's
//! notify) only when the queue goes from empty to non-empty, so any number of posts
//! between two iterations cost one wakeup; the loop moves the whole queue into its local
//! queue at the start of each iteration (step 1 of the iteration order). Wakes of tasks
//! from other threads take the same path.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::queue::{Posted, Queued};
use super::sys::Poller;
use crate::error::LoopError;

struct PostedQueue {
    callbacks: VecDeque<Posted>,
    closed: bool,
}

/// The thread-safe half of a loop, shared by the loop and its [`Remote`](super::remote::Remote)s.
pub(crate) struct CrossThread {
    pub(super) poller: Poller,
    queue: Mutex<PostedQueue>,
    /// Set after a post, cleared by the loop before it drains: lets the loop skip the lock
    /// on iterations where nothing was posted.
    posted: AtomicBool,
    stop_requested: AtomicBool,
    wakeups: AtomicU64,
}

impl CrossThread {
    /// The shared half of a loop waiting on `poller`.
    ///
    /// # Errors
    ///
    /// None yet (the poller made its notifier when it was created).
    pub(crate) fn new(poller: Poller) -> std::io::Result<CrossThread> {
        Ok(CrossThread {
            poller,
            queue: Mutex::new(PostedQueue {
                callbacks: VecDeque::new(),
                closed: false,
            }),
            posted: AtomicBool::new(false),
            stop_requested: AtomicBool::new(false),
            wakeups: AtomicU64::new(0),
        })
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
    pub(crate) fn wake(&self) {
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

    /// Whether callbacks were posted since the last [`CrossThread::drain_into`].
    pub(crate) fn has_posted(&self) -> bool {
        self.posted.load(Ordering::Acquire)
    }

    /// Moves every posted callback to the end of `local`; says whether anything had been
    /// posted.
    pub(crate) fn drain_into(&self, local: &mut VecDeque<Queued>) -> bool {
        // A plain load first: the locked swap is paid only when something was posted.
        if !self.posted.load(Ordering::Relaxed) || !self.posted.swap(false, Ordering::Acquire) {
            return false;
        }
        let mut queue = self.lock();
        local.extend(queue.callbacks.drain(..).map(Queued::from));
        true
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

    /// Whether the loop was closed or dropped: posts fail from then on.
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Wakeups sent so far; each is counted after its notification was sent.
    pub(crate) fn wakeups(&self) -> u64 {
        self.wakeups.load(Ordering::Acquire)
    }
}

impl fmt::Debug for CrossThread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrossThread")
            .field("stop_requested", &self.stop_requested())
            .field("wakeups", &self.wakeups())
            .finish_non_exhaustive()
    }
}
