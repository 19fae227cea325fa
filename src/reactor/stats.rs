//! [`LoopStats`]: counters describing a loop's state, and the loop's `Debug` output.

use std::fmt;

use super::ioloop::IoLoop;

/// Counters describing a loop's state, from [`IoLoop::stats`].
///
/// # Examples
///
/// ```
/// let ioloop = ioloop::IoLoop::new()?;
/// ioloop.add_callback(|_| {});
/// assert_eq!(ioloop.stats().callbacks_queued, 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LoopStats {
    /// Iterations run so far.
    pub iterations: u64,
    /// Callbacks waiting in the local queue.
    pub callbacks_queued: usize,
    /// Timeouts that have not fired or been removed.
    pub timeouts_pending: usize,
    /// Entries in the timer heap, removed-but-not-yet-compacted ones included.
    pub timer_heap_entries: usize,
    /// Registered fd handlers.
    pub handlers: usize,
    /// Spawned tasks that have not finished.
    pub tasks: usize,
    /// Poller wakeups sent by [`Remote`](crate::Remote)s (posts are coalesced into these).
    pub remote_wakeups: u64,
    /// Calls to the poller's `modify` (interest changes, and re-arming on platforms
    /// without level-triggered polling).
    pub poller_modifications: u64,
}

impl IoLoop {
    /// Counters describing the loop's current state.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// ioloop.add_timeout(Duration::from_secs(60), |_| {});
    /// ioloop.run_once(Duration::ZERO)?;
    /// let stats = ioloop.stats();
    /// assert_eq!((stats.iterations, stats.timeouts_pending), (1, 1));
    /// # Ok::<(), ioloop::LoopError>(())
    /// ```
    pub fn stats(&self) -> LoopStats {
        let inner = &*self.inner;
        let timers = inner.timers.borrow();
        LoopStats {
            iterations: inner.iterations.get(),
            callbacks_queued: inner.callbacks.borrow().len(),
            timeouts_pending: timers.len(),
            timer_heap_entries: timers.heap_entries(),
            handlers: inner.handlers.borrow().len(),
            tasks: inner.tasks.borrow().len(),
            remote_wakeups: inner.shared.wakeups(),
            poller_modifications: inner.poller_modifications.get(),
        }
    }
}

impl fmt::Debug for IoLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoLoop")
            .field("running", &self.inner.running.get())
            .field("closed", &self.inner.closed.get())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
