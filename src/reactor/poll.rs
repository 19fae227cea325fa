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
//!
//! Even that one probe costs more than a short callback, so a running loop that keeps
//! finding callbacks queued probes only as its [`IoCheck`] policy says: at least every
//! `interval` iterations, and as soon as `max_delay` has passed on the loop's clock since
//! the last check (tokio checks for I/O every 61 scheduler ticks; Tornado polls on every
//! iteration, which `interval` 1 restores).

use std::io;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use polling::{Events, Poller};

use super::interest::Readiness;

/// How often a running loop that keeps finding work queued checks its sources for
/// readiness (a loop about to block always does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IoCheck {
    /// At least every this many iterations (1: every iteration).
    pub(crate) interval: u32,
    /// And as soon as this much time passed on the loop's clock since the last check.
    pub(crate) max_delay: Duration,
}

impl Default for IoCheck {
    fn default() -> Self {
        IoCheck {
            interval: 61,
            max_delay: Duration::from_millis(1),
        }
    }
}

/// The poller's event buffer and the readiness collected from it.
pub(crate) struct ReadinessBuffer {
    events: Events,
    /// `(key, readiness)` of the last wait, in the order the OS reported them.
    pub(crate) ready: Vec<(usize, Readiness)>,
    /// The wakeup count (see `CrossThread::wakeups`) read before the
    /// last real wait: every wakeup counted up to it has been consumed.
    wakeups_consumed: u64,
    policy: IoCheck,
    /// Iterations since sources were last checked for readiness, and when that was.
    unchecked: u32,
    last_check: Option<Instant>,
}

impl ReadinessBuffer {
    pub(crate) fn new(capacity: NonZeroUsize, policy: IoCheck) -> Self {
        ReadinessBuffer {
            events: Events::with_capacity(capacity),
            ready: Vec::with_capacity(capacity.get().min(1024)),
            wakeups_consumed: 0,
            policy,
            unchecked: 0,
            last_check: None,
        }
    }

    /// Waits up to `timeout` (`None`: until something happens) and fills `ready`.
    /// `has_sources` says whether any source is registered; `wakeups_sent` is the number
    /// of wakeups sent to the poller so far; `now` reads the loop's clock. With
    /// `follow_policy`, a zero-timeout iteration checks registered sources only when the
    /// [`IoCheck`] policy says it is time; without, it always does.
    pub(crate) fn wait(
        &mut self,
        poller: &Poller,
        timeout: Option<Duration>,
        has_sources: bool,
        wakeups_sent: u64,
        follow_policy: bool,
        now: impl Fn() -> Instant,
    ) -> io::Result<()> {
        self.ready.clear();
        if timeout == Some(Duration::ZERO) {
            let nothing_pending = !has_sources && wakeups_sent == self.wakeups_consumed;
            if nothing_pending || (follow_policy && has_sources && self.may_skip(&now)) {
                return Ok(());
            }
            self.checked(now());
            if !anything_ready(poller)? {
                return Ok(());
            }
        }
        self.events.clear();
        poller.wait(&mut self.events, timeout)?;
        if timeout != Some(Duration::ZERO) {
            self.checked(now());
        }
        self.wakeups_consumed = wakeups_sent;
        self.ready.extend(
            self.events
                .iter()
                .map(|ev| (ev.key, Readiness::from_event(&ev))),
        );
        Ok(())
    }
}

impl ReadinessBuffer {
    /// Counts an iteration that may skip its check; says whether the policy allows it.
    fn may_skip(&mut self, now: &impl Fn() -> Instant) -> bool {
        self.unchecked += 1;
        if self.unchecked >= self.policy.interval {
            return false;
        }
        match self.last_check {
            Some(last) => now().saturating_duration_since(last) < self.policy.max_delay,
            None => false,
        }
    }

    fn checked(&mut self, now: Instant) {
        self.unchecked = 0;
        self.last_check = Some(now);
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
