//! [`sleep`] and [`sleep_until`]: futures on the loop's own timer heap and clock
//! (Tornado's `gen.sleep`).
//!
//! They find their loop with [`IoLoop::current`] when first polled, so inside a task they
//! need no handle, and a loop built on a [`ManualClock`](crate::ManualClock) drives them
//! deterministically. Each sleep is one entry of the loop's timer heap; dropping it removes
//! the entry at once.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::reactor::ioloop::{IoLoop, WeakIoLoop};
use crate::reactor::timer_heap::{Deadline, Timeout};

/// A future that completes on the loop iteration whose timers include its deadline.
///
/// Made by [`sleep`] or [`sleep_until`]. It is one timer on the heap of the loop that
/// first polls it; dropping it before it fires removes that timer.
///
/// # Examples
///
/// Dropping an armed `Sleep` takes its timer off the loop:
///
/// ```
/// use std::future::Future;
/// use std::task::{Context, Waker};
/// use std::time::Duration;
///
/// let ioloop = ioloop::IoLoop::new()?;
/// let mut sleep: std::pin::Pin<Box<ioloop::time::Sleep>> =
///     Box::pin(ioloop::sleep(Duration::from_secs(60)));
/// let mut cx = Context::from_waker(Waker::noop());
/// assert!(sleep.as_mut().poll(&mut cx).is_pending()); // first poll: the timer is set
/// assert_eq!(ioloop.stats().timeouts_pending, 1);
/// drop(sleep);
/// assert_eq!(ioloop.stats().timeouts_pending, 0);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Sleep {
    state: SleepState,
}

enum SleepState {
    /// Not polled yet: the deadline is resolved on the loop's clock at the first poll.
    Unarmed(When),
    Armed {
        ioloop: WeakIoLoop,
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
        ioloop: ioloop.downgrade(),
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
                let Some(ioloop) = ioloop.upgrade() else {
                    panic!("ioloop::sleep polled after its IoLoop was dropped");
                };
                if !ioloop.timeout_pending(*timeout) {
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
            let Some(ioloop) = ioloop.upgrade() else {
                return;
            };
            ioloop.remove_timeout_from_drop(*timeout);
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
