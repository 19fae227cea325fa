//! [`Remote`]: the `Send + Sync` handle through which other threads post callbacks to a
//! loop and stop it. What it posts to is the loop's [`CrossThread`] half.

use std::fmt;
use std::panic::Location;
use std::sync::Arc;

use super::cross_thread::CrossThread;
use super::ioloop::IoLoop;
use super::queue::Posted;
use crate::error::LoopError;

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
    pub(super) shared: Arc<CrossThread>,
}

impl Remote {
    /// The loop's cross-thread part: a task's owner when a `Remote` spawns it.
    pub(crate) fn cross_thread(&self) -> &Arc<CrossThread> {
        &self.shared
    }

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
        self.shared.is_closed()
    }
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl IoLoop {
    /// A `Send + Sync` handle for posting callbacks and stopping the loop from other
    /// threads.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let remote = ioloop.remote();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let poster = std::thread::spawn(move || {
    ///     remote.add_callback(move |ioloop| {
    ///         tx.send(std::thread::current().id()).unwrap();
    ///         ioloop.stop();
    ///     })
    /// });
    /// ioloop.start()?;
    /// poster.join().unwrap()?;
    /// // The callback posted from the other thread ran on the loop's thread.
    /// assert_eq!(rx.recv().unwrap(), std::thread::current().id());
    /// # Ok::<(), ioloop::LoopError>(())
    /// ```
    pub fn remote(&self) -> Remote {
        Remote {
            shared: self.inner.shared.clone(),
        }
    }
}
