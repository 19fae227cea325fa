//! Blocking work off the loop (feature `blocking`): [`IoLoop::run_in_executor`] and its
//! callback and [`Remote`] counterparts run a closure on the `blocking` crate's thread
//! pool (Tornado's `IOLoop.run_in_executor`) and hand the result back through the loop.
//!
//! The pool's threads start on first use and end when idle; they never touch the loop:
//! the result wakes the task awaiting it, whose waker posts to the loop's queue.

use super::spawn::Task;
use crate::reactor::ioloop::IoLoop;
use crate::reactor::remote::Remote;

impl IoLoop {
    /// Runs `work` on a thread pool (the `blocking` crate's) and returns a [`Task`] of its
    /// result, awaited on this loop or anywhere: file I/O, DNS, compression, a
    /// synchronous client, anything that must not hold up the loop. A panic in `work`
    /// ends the task as [`TaskError::Panicked`](crate::TaskError::Panicked). Loop thread
    /// only.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let size = ioloop.run_sync(ioloop.run_in_executor(|| {
    ///     std::fs::metadata("Cargo.toml").map(|m| m.len())
    /// }))??;
    /// assert!(size.unwrap() > 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn run_in_executor<T, F>(&self, work: F) -> Task<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawn(blocking::unblock(work))
    }

    /// [`run_in_executor`](IoLoop::run_in_executor) handing the result to `callback` on
    /// the loop thread (never inline); a panic in `work` is reported to the panic
    /// handler instead and `callback` is not called.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// ioloop.run_in_executor_then(|| 6 * 7, |ioloop, answer| {
    ///     assert_eq!(answer, 42);
    ///     ioloop.stop();
    /// });
    /// ioloop.start()?;
    /// # Ok::<(), ioloop::LoopError>(())
    /// ```
    #[track_caller]
    pub fn run_in_executor_then<T, F, C>(&self, work: F, callback: C)
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
        C: FnOnce(&IoLoop, T) + 'static,
    {
        drop(self.spawn(async move {
            let result = blocking::unblock(work).await;
            if let Some(ioloop) = IoLoop::current() {
                callback(&ioloop, result);
            }
        }));
    }
}

impl Remote {
    /// [`IoLoop::run_in_executor`] from any thread: `work` runs on the pool, and the
    /// returned [`Task`] (awaitable by any runtime) completes through the loop, so it is
    /// cancelled if the loop closes first.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let remote = ioloop.remote();
    /// let task = std::thread::spawn(move || remote.run_in_executor(|| "from the pool"))
    ///     .join()
    ///     .unwrap();
    /// assert_eq!(ioloop.run_sync(task)??, "from the pool");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn run_in_executor<T, F>(&self, work: F) -> Task<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawn(blocking::unblock(work))
    }
}
