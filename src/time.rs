//! Time futures on the loop's own timer heap and clock: [`sleep`], [`sleep_until`],
//! [`timeout`] and [`yield_now`] (Tornado's `gen.sleep`, `gen.with_timeout` and
//! `gen.moment`).
//!
//! They find their loop with [`IoLoop::current`] when first polled, so inside a task they
//! need no handle, and a loop built on a [`ManualClock`](crate::ManualClock) drives them
//! deterministically. Each sleep is one entry of the loop's timer heap; dropping it removes
//! the entry at once.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::ioloop::LoopInner;
use crate::timers::{Deadline, Timeout};
use crate::IoLoop;

/// A future that completes on the loop iteration whose timers include its deadline.
///
/// Made by [`sleep`] or [`sleep_until`]. It is one timer on the heap of the loop that
/// first polls it; dropping it before it fires removes that timer.
///
/// # Examples
///
/// See [`sleep`].
pub struct Sleep {
    state: SleepState,
}

enum SleepState {
    /// Not polled yet: the deadline is resolved on the loop's clock at the first poll.
    Unarmed(When),
    Armed {
        ioloop: Weak<LoopInner>,
        deadline: Instant,
        timeout: Timeout,
        /// The waker the timer will wake, to re-arm if the task's waker changes.
        waker: Waker,
    },
    Done,
}

#[derive(Debug, Clone, Copy)]
enum When {
    After(Duration),
    At(Instant),
}

/// Completes after `duration` on the clock of the loop that polls it (Tornado's
/// `gen.sleep`).
///
/// The duration counts from the first poll. The sleep always completes through the
/// loop's timer heap, on the iteration whose due timers include it (so `sleep(ZERO)`
/// resumes on the next iteration, like Tornado's `call_later(0)`). Dropping it cancels its
/// timer.
///
/// # Panics
///
/// When polled on a thread without a live [`IoLoop`], or after that loop was closed.
///
/// # Examples
///
/// ```
/// use ioloop::{IoLoop, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let ioloop = IoLoop::builder().clock(clock.clone()).build()?;
/// let task = ioloop.spawn(ioloop::sleep(Duration::from_secs(60)));
/// ioloop.run_once(Duration::ZERO)?; // first poll: the timer is set
/// clock.advance(Duration::from_secs(60));
/// ioloop.run_once(Duration::ZERO)?; // the timer fires and wakes the task
/// ioloop.run_once(Duration::ZERO)?; // the task completes
/// assert!(task.is_finished());
/// # Ok::<(), ioloop::LoopError>(())
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    Sleep {
        state: SleepState::Unarmed(When::After(duration)),
    }
}

/// Completes at `deadline` on the clock of the loop that polls it. A deadline already
/// past completes on the next iteration. See [`sleep`].
///
/// # Panics
///
/// When polled on a thread without a live [`IoLoop`], or after that loop was closed.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let ioloop = ioloop::IoLoop::new()?;
/// let deadline = ioloop.time() + Duration::from_millis(2);
/// ioloop.run_sync(ioloop::sleep_until(deadline))?;
/// assert!(ioloop.time() >= deadline);
/// # Ok::<(), ioloop::RunSyncError>(())
/// ```
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        state: SleepState::Unarmed(When::At(deadline)),
    }
}

fn loop_for(what: &str) -> IoLoop {
    match IoLoop::current() {
        Some(ioloop) if !ioloop.is_closed() => ioloop,
        _ => {
            panic!("{what} polled outside a live IoLoop (spawn it on one, or run it with run_sync)")
        }
    }
}

fn arm(ioloop: &IoLoop, deadline: Instant, waker: &Waker) -> SleepState {
    let wake = waker.clone();
    let timeout = ioloop.call_at(deadline, move |_| wake.wake());
    SleepState::Armed {
        ioloop: Rc::downgrade(&ioloop.inner),
        deadline,
        timeout,
        waker: waker.clone(),
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        match &this.state {
            SleepState::Done => Poll::Ready(()),
            SleepState::Unarmed(when) => {
                let ioloop = loop_for("ioloop::sleep");
                let deadline = match *when {
                    When::After(duration) => duration.resolve(ioloop.time()),
                    When::At(instant) => instant,
                };
                this.state = arm(&ioloop, deadline, cx.waker());
                Poll::Pending
            }
            SleepState::Armed {
                ioloop,
                deadline,
                timeout,
                waker,
            } => {
                let Some(inner) = ioloop.upgrade() else {
                    panic!("ioloop::sleep polled after its IoLoop was dropped");
                };
                let ioloop = IoLoop { inner };
                if !ioloop.inner.timers.borrow().contains(*timeout) {
                    this.state = SleepState::Done;
                    return Poll::Ready(());
                }
                if !waker.will_wake(cx.waker()) {
                    // Polled by another task than before: the timer must wake that one.
                    let deadline = *deadline;
                    ioloop.remove_timeout(*timeout);
                    this.state = arm(&ioloop, deadline, cx.waker());
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let SleepState::Armed {
            ioloop, timeout, ..
        } = &self.state
        {
            // Gone: the loop dropped its timers itself.
            if let Some(inner) = ioloop.upgrade() {
                IoLoop { inner }.remove_timeout(*timeout);
            }
        }
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Sleep");
        match &self.state {
            SleepState::Unarmed(when) => s.field("unarmed", when),
            SleepState::Armed { deadline, .. } => s.field("deadline", deadline),
            SleepState::Done => s.field("done", &true),
        };
        s.finish()
    }
}

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
/// When polled on a thread without a live [`IoLoop`].
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
/// [`run_sync_timeout`](IoLoop::run_sync_timeout) passed first.
///
/// # Examples
///
/// See [`timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut;

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the operation timed out")
    }
}

impl std::error::Error for TimedOut {}

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
/// See [`yield_now`].
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
