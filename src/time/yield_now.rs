//! [`yield_now`]: give the loop exactly one iteration (Tornado's `gen.moment`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Gives the loop exactly one iteration, then completes (Tornado's `gen.moment`).
///
/// The first poll wakes the task and returns `Pending`: the task is queued for the next
/// iteration, after a zero-timeout poll for I/O, so a long computation can let timers
/// and handlers run between its steps.
///
/// # Examples
///
/// ```
/// let ioloop = ioloop::IoLoop::new()?;
/// let task = ioloop.spawn(async {
///     let before = ioloop::IoLoop::current().unwrap().stats().iterations;
///     ioloop::yield_now().await;
///     ioloop::IoLoop::current().unwrap().stats().iterations - before
/// });
/// assert_eq!(ioloop.run_sync(task)?.unwrap(), 1);
/// # Ok::<(), ioloop::RunSyncError>(())
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
///
/// # Examples
///
/// ```
/// use std::future::Future;
/// use std::task::{Context, Waker};
///
/// let mut moment = std::pin::pin!(ioloop::yield_now());
/// let mut cx = Context::from_waker(Waker::noop());
/// assert!(moment.as_mut().poll(&mut cx).is_pending()); // wakes itself, yields once
/// assert!(moment.as_mut().poll(&mut cx).is_ready());
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
