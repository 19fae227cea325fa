//! The timeout API of [`IoLoop`]: [`add_timeout`](IoLoop::add_timeout),
//! [`call_later`](IoLoop::call_later), [`call_at`](IoLoop::call_at) and
//! [`remove_timeout`](IoLoop::remove_timeout), on the loop's [`TimerHeap`] (whose due
//! entries the loop runs in step 4 of each iteration).

use std::time::{Duration, Instant};

use super::ioloop::IoLoop;
use super::queue::Callback;
use super::timer_heap::{Deadline, Timeout};

impl IoLoop {
    /// Runs `callback` once the loop's clock reaches `deadline`: an [`Instant`], or a
    /// [`Duration`] from [`IoLoop::time`].
    ///
    /// Never early: the timeout runs on the first iteration whose time is `>= deadline`.
    /// Timeouts with equal deadlines run in the order they were added. A timeout added by
    /// a callback or timeout runs no earlier than the next iteration, even if already due.
    /// Loop thread only; on a closed loop the callback is dropped. A panic in `callback`
    /// is reported with this call's `file:line`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let ioloop = ioloop::IoLoop::new()?;
    /// ioloop.add_timeout(Duration::from_millis(5), |ioloop| ioloop.stop());
    /// let deadline = ioloop.time() + Duration::from_secs(3600);
    /// let later = ioloop.add_timeout(deadline, |_| unreachable!());
    /// ioloop.start()?;
    /// ioloop.remove_timeout(later);
    /// # Ok::<(), ioloop::LoopError>(())
    /// ```
    #[track_caller]
    pub fn add_timeout<F>(&self, deadline: impl Deadline, callback: F) -> Timeout
    where
        F: FnOnce(&IoLoop) + 'static,
    {
        let callback = Callback::new(Box::new(callback));
        let inner = &*self.inner;
        if inner.closed.get() {
            log::debug!(target: "ioloop", "timeout added to a closed IoLoop was dropped");
            return Timeout::never_added();
        }
        let deadline = deadline.resolve(inner.clock.now());
        inner.timers.borrow_mut().insert(deadline, callback)
    }

    /// Runs `callback` after `delay` (asyncio's name for
    /// [`add_timeout`](IoLoop::add_timeout) with a [`Duration`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// ioloop.call_later(std::time::Duration::ZERO, |ioloop| ioloop.stop());
    /// ioloop.start()?;
    /// # Ok::<(), ioloop::LoopError>(())
    /// ```
    #[track_caller]
    pub fn call_later<F>(&self, delay: Duration, callback: F) -> Timeout
    where
        F: FnOnce(&IoLoop) + 'static,
    {
        self.add_timeout(delay, callback)
    }

    /// Runs `callback` at `when` (asyncio's name for
    /// [`add_timeout`](IoLoop::add_timeout) with an [`Instant`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// ioloop.call_at(ioloop.time(), |ioloop| ioloop.stop());
    /// ioloop.start()?;
    /// # Ok::<(), ioloop::LoopError>(())
    /// ```
    #[track_caller]
    pub fn call_at<F>(&self, when: Instant, callback: F) -> Timeout
    where
        F: FnOnce(&IoLoop) + 'static,
    {
        self.add_timeout(when, callback)
    }

    /// Cancels a pending timeout and drops its closure at once. Returns whether it was
    /// pending; a timeout that already fired, was already removed or is unknown is left
    /// alone. A timeout removed by a callback or an earlier timeout of the same iteration
    /// does not run. Loop thread only.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let t = ioloop.call_later(Duration::from_secs(1), |_| unreachable!());
    /// assert!(ioloop.remove_timeout(t));
    /// assert_eq!(ioloop.stats().timeouts_pending, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn remove_timeout(&self, timeout: Timeout) -> bool {
        let removed = self.inner.timers.borrow_mut().remove(timeout);
        // Dropped after the borrow ends: the closure's destructor may use the loop.
        removed.is_some()
    }

    /// Whether `timeout` is still pending (neither fired nor removed).
    pub(crate) fn timeout_pending(&self, timeout: Timeout) -> bool {
        self.inner.timers.borrow().contains(timeout)
    }

    /// [`remove_timeout`](IoLoop::remove_timeout) from a destructor: never a panic. Were
    /// the timer heap busy (no path drops a timer's owner inside its borrow), the timeout
    /// goes on the next iteration instead (firing meanwhile only wakes a task spuriously).
    pub(crate) fn remove_timeout_from_drop(&self, timeout: Timeout) {
        if self.inner.timers.try_borrow_mut().is_ok() {
            self.remove_timeout(timeout);
        } else {
            self.add_callback(move |ioloop| {
                ioloop.remove_timeout(timeout);
            });
        }
    }
}
