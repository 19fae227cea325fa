//! [`timeout`]: a future with a time limit on the loop's clock (asyncio's `wait_for`,
//! Tornado's `gen.with_timeout`), and its error [`TimedOut`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::sleep::{sleep, Sleep};

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
pub fn timeout<F: Future>(
    duration: Duration,
    future: F,
) -> impl Future<Output = Result<F::Output, TimedOut>> {
    TimeLimited {
        future,
        deadline: sleep(duration),
    }
}

/// The future [`timeout`] returns: the wrapped future and its deadline side by side.
/// (An `async fn` would hold the future twice, as its argument and pinned in a local,
/// doubling the size of every future that awaits a timeout, and every move of it.)
struct TimeLimited<F> {
    future: F,
    deadline: Sleep,
}

impl<F: Future> Future for TimeLimited<F> {
    type Output = Result<F::Output, TimedOut>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is structurally pinned: `TimeLimited` never moves it out (it
        // has no `Drop` of its own, and is `Unpin` only when `F` is). `deadline` is not
        // pinned (`Sleep` is `Unpin`).
        let (future, deadline) = unsafe {
            let this = self.get_unchecked_mut();
            (Pin::new_unchecked(&mut this.future), &mut this.deadline)
        };
        if let Poll::Ready(output) = future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        Pin::new(deadline).poll(cx).map(|()| Err(TimedOut))
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    /// A future that borrows its own local across a suspension (so moving it once
    /// polled would leave the borrow dangling): ready on its second poll.
    async fn self_borrowing() -> usize {
        let local = [7u8; 16];
        let borrowed = &local;
        let mut yielded = false;
        std::future::poll_fn(|cx| {
            if yielded {
                return Poll::Ready(());
            }
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await;
        // Still the local of this future, where it was pinned: a poll of a moved copy
        // would find it elsewhere (a plain test catches that; Miri, a dangling read).
        assert!(std::ptr::eq(borrowed, &local));
        borrowed.iter().map(|&b| usize::from(b)).sum()
    }

    /// The wrapped future is stored once (an `async fn` kept it twice: as its argument
    /// and pinned in a local).
    #[test]
    fn the_wrapped_future_is_stored_once() {
        let large = async {
            let buffer = [1u8; 1024];
            std::future::pending::<()>().await;
            buffer.len()
        };
        let alone = std::mem::size_of_val(&large);
        let limited = std::mem::size_of_val(&timeout(Duration::ZERO, large));
        assert!(
            limited < alone + 256,
            "{alone} bytes alone, {limited} with a time limit"
        );
    }

    /// The wrapped future is polled in place and wins over the deadline; a future that
    /// is ready never arms the deadline (no loop needed: Miri runs this).
    #[test]
    fn the_wrapped_future_is_polled_where_it_is_pinned() {
        let mut cx = Context::from_waker(Waker::noop());
        let mut ready_at_once = std::pin::pin!(timeout(Duration::ZERO, async { 42 }));
        assert_eq!(ready_at_once.as_mut().poll(&mut cx), Poll::Ready(Ok(42)));

        let mut limited = Box::pin(TimeLimited {
            future: self_borrowing(),
            // Never polled: a sleep is armed only once polled, on a loop.
            deadline: sleep(Duration::ZERO),
        });
        // The first poll straight on the wrapped future (polling `limited` would poll
        // the deadline too, which needs a loop): it now borrows itself where it lies.
        // SAFETY: `limited` is pinned in its box, and the future in it never moves.
        let future = unsafe { limited.as_mut().map_unchecked_mut(|this| &mut this.future) };
        assert_eq!(future.poll(&mut cx), Poll::Pending);
        // `TimeLimited::poll` polls it in the same place.
        assert_eq!(limited.as_mut().poll(&mut cx), Poll::Ready(Ok(7 * 16)));
    }
}
