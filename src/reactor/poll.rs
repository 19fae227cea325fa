//! Waiting for readiness: one call to the OS poller per iteration, made as cheap as the
//! iteration allows.
//!
//! `polling::Poller::wait` costs about five syscalls on Linux (it re-arms a timerfd and
//! its notifier every time). An iteration that must not block (callbacks are queued) asks
//! first whether anything is ready at all with a single zero-timeout `poll(2)` on the
//! poller's own fd, which is readable exactly when some registered source or a wakeup is
//! pending; only then does it pay for `wait`. An iteration that must not block, has no
//! registered source and has seen no wakeup since its last wait skips the poller
//! altogether: cross-thread callbacks are found in their queue, not through the poller.
//! (A pending wakeup is always consumed, so a host waiting on the loop's fd never spins.)

use std::io;
use std::num::NonZeroUsize;
use std::time::Duration;

use polling::{Events, Poller};

use super::interest::Readiness;

/// The poller's event buffer and the readiness collected from it.
pub(crate) struct ReadinessBuffer {
    events: Events,
    /// `(key, readiness)` of the last wait, in the order the OS reported them.
    pub(crate) ready: Vec<(usize, Readiness)>,
    /// The wakeup count (see `CrossThread::wakeups`) read before the
    /// last real wait: every wakeup counted up to it has been consumed.
    wakeups_consumed: u64,
}

impl ReadinessBuffer {
    pub(crate) fn with_capacity(capacity: NonZeroUsize) -> Self {
        ReadinessBuffer {
            events: Events::with_capacity(capacity),
            ready: Vec::with_capacity(capacity.get().min(1024)),
            wakeups_consumed: 0,
        }
    }

    /// Waits up to `timeout` (`None`: until something happens) and fills `ready`.
    /// `has_sources` says whether any source is registered; `wakeups_sent` is the number
    /// of wakeups sent to the poller so far.
    pub(crate) fn wait(
        &mut self,
        poller: &Poller,
        timeout: Option<Duration>,
        has_sources: bool,
        wakeups_sent: u64,
    ) -> io::Result<()> {
        self.ready.clear();
        if timeout == Some(Duration::ZERO) {
            let nothing_pending = !has_sources && wakeups_sent == self.wakeups_consumed;
            if nothing_pending || !anything_ready(poller)? {
                return Ok(());
            }
        }
        self.events.clear();
        poller.wait(&mut self.events, timeout)?;
        self.wakeups_consumed = wakeups_sent;
        self.ready.extend(
            self.events
                .iter()
                .map(|ev| (ev.key, Readiness::from_event(&ev))),
        );
        Ok(())
    }
}

impl std::fmt::Debug for ReadinessBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadinessBuffer")
            .field("capacity", &self.events.capacity())
            .finish()
    }
}

/// Whether the poller has anything to report right now, in one syscall.
#[cfg(unix)]
fn anything_ready(poller: &Poller) -> io::Result<bool> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(poller, PollFlags::IN)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match poll(&mut fds, Some(&zero)) {
        Ok(n) => Ok(n > 0),
        // Interrupted: let the real wait find out.
        Err(rustix::io::Errno::INTR) => Ok(true),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(unix))]
fn anything_ready(_poller: &Poller) -> io::Result<bool> {
    Ok(true)
}
