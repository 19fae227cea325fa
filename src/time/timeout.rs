//! [`timeout`]: a future with a time limit on the loop's clock (asyncio's `wait_for`,
//! Tornado's `gen.with_timeout`), and its error [`TimedOut`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use super::sleep::sleep;

/// Runs `future` with a time limit: its output, or [`TimedOut`] if `duration` (on the
/// loop's clock, counted from the first poll) passes first, in which case `future` is
/// dropped.
///
/// Unlike Tornado's `with_timeout`, which leaves the wrapped future running, the future is
/// owned here and dropping it is what cancels it (asyncio's `wait_for`). If the future
/// and the deadline are ready in the same iteration, the future wins.
///
/// # Panics
///
/// When polled on a thread without a live [`IoLoop`](crate::IoLoop).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let ioloop = ioloop::IoLoop::new()?;
/// let never = std::future::pending::<()>();
/// let result = ioloop.run_sync(ioloop::timeout(Duration::from_millis(1), never))?;
/// assert_eq!(result, Err(ioloop::TimedOut));
/// # Ok::<(), ioloop::RunSyncError>(())
/// ```
pub async fn timeout<F: Future>(duration: Duration, future: F) -> Result<F::Output, TimedOut> {
    let mut future = std::pin::pin!(future);
    let mut deadline = sleep(duration);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        Pin::new(&mut deadline).poll(cx).map(|()| Err(TimedOut))
    })
    .await
}

/// The time limit of a [`timeout`] or
/// [`run_sync_timeout`](crate::IoLoop::run_sync_timeout) passed first.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ioloop::{timeout, TimedOut};
///
/// let ioloop = ioloop::IoLoop::new()?;
/// let quick = ioloop.run_sync(timeout(Duration::from_secs(60), async { 42 }))?;
/// assert_eq!(quick, Ok(42));
/// let never = std::future::pending::<()>();
/// let err: TimedOut = ioloop.run_sync(timeout(Duration::from_millis(1), never))?.unwrap_err();
/// assert_eq!(err.to_string(), "the operation timed out");
/// # Ok::<(), ioloop::RunSyncError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut;

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the operation timed out")
    }
}

impl std::error::Error for TimedOut {}
