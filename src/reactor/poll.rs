//! Waiting for readiness: one wait on the OS poller per iteration (see `sys/` for what
//! a wait costs on each platform), made only when the iteration needs it.
//!
//! An iteration that must not block, has no registered source and has seen no wakeup
//! since its last wait skips the poller altogether: cross-thread callbacks are found in
//! their queue, not through the poller. (A pending wakeup is always consumed, so a host
//! waiting on the loop's fd never spins.)
//!
//! Even that one check costs more than a short callback, so a running loop that keeps
//! finding callbacks queued checks only as its [`IoCheck`] policy says: at least every
//! `interval` iterations, and as soon as `max_delay` has passed on the loop's clock since
//! the last check (tokio checks for I/O every 61 scheduler ticks; Tornado polls on every
//! iteration, which `interval` 1 restores).
//!
//! An iteration dispatches at most `dispatch_budget` of the sources one wait reported;
//! the next iterations dispatch the rest, in order, before the loop waits again. The
//! callbacks the first handlers queued (a read's result, the write that answers it) run
//! in between, so the bytes a read brought in are still in the CPU's cache when the
//! callback that uses them runs, however many sources one wait reported.

use std::io;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use super::interest::Readiness;
use super::sys::{Poller, WaitBuffer};

/// How often a running loop that keeps finding work queued checks its sources for
/// readiness (a loop about to block always does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IoCheck {
    /// At least every this many iterations (1: every iteration).
    pub(super) interval: u32,
    /// And as soon as this much time passed on the loop's clock since the last check.
    pub(super) max_delay: Duration,
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
    events: WaitBuffer,
    /// `(key, readiness)` of the last wait, in the order the OS reported them.
    ready: Vec<(usize, Readiness)>,
    /// How many of them have been handed out for dispatch.
    dispatched: usize,
    /// The most sources one iteration dispatches.
    dispatch_budget: usize,
    /// The wakeup count (see `CrossThread::wakeups`) read before the
    /// last real wait: every wakeup counted up to it has been consumed.
    wakeups_consumed: u64,
    policy: IoCheck,
    /// Iterations since sources were last checked for readiness, and when that was.
    unchecked: u32,
    last_check: Option<Instant>,
}

impl ReadinessBuffer {
    /// A buffer taking up to `capacity` events per wait, `dispatch_budget` of them to be
    /// dispatched per iteration.
    pub(crate) fn new(
        capacity: NonZeroUsize,
        policy: IoCheck,
        dispatch_budget: NonZeroUsize,
    ) -> Self {
        ReadinessBuffer {
            events: WaitBuffer::with_capacity(capacity),
            ready: Vec::with_capacity(capacity.get().min(1024)),
            dispatched: 0,
            dispatch_budget: dispatch_budget.get(),
            wakeups_consumed: 0,
            policy,
            unchecked: 0,
            last_check: None,
        }
    }

    /// Whether the last wait reported sources not yet handed out for dispatch.
    pub(crate) fn has_undispatched(&self) -> bool {
        self.dispatched < self.ready.len()
    }

    /// The most sources one iteration dispatches.
    pub(crate) fn dispatch_budget(&self) -> usize {
        self.dispatch_budget
    }

    /// Hands out the next source of the last wait to dispatch, one at a time (the loop
    /// holds no borrow of the buffer while a handler runs).
    pub(crate) fn next_ready(&mut self) -> Option<(usize, Readiness)> {
        let next = *self.ready.get(self.dispatched)?;
        self.dispatched += 1;
        Some(next)
    }

    /// Forgets the last wait's readiness (before the next wait, or when the loop closes).
    pub(crate) fn clear(&mut self) {
        self.ready.clear();
        self.dispatched = 0;
    }

    /// Waits up to `timeout` (`None`: until something happens) and collects the
    /// readiness it reports; returns at once, collecting nothing, while the last wait's
    /// readiness has not all been handed out. `has_sources` says whether any source is
    /// registered; `wakeups_sent` is the number of wakeups sent to the poller so far;
    /// `now` reads the loop's clock. With `follow_policy`, a zero-timeout iteration checks
    /// registered sources only when the [`IoCheck`] policy says it is time; without, it
    /// always does.
    pub(crate) fn wait(
        &mut self,
        poller: &Poller,
        timeout: Option<Duration>,
        has_sources: bool,
        wakeups_sent: u64,
        follow_policy: bool,
        now: impl Fn() -> Instant,
    ) -> io::Result<()> {
        if self.has_undispatched() {
            return Ok(());
        }
        self.clear();
        if timeout == Some(Duration::ZERO) {
            let nothing_pending = !has_sources && wakeups_sent == self.wakeups_consumed;
            if nothing_pending || (follow_policy && has_sources && self.may_skip(&now)) {
                return Ok(());
            }
            self.checked(now());
        }
        poller.wait(&mut self.events, timeout, &mut self.ready)?;
        if timeout != Some(Duration::ZERO) {
            self.checked(now());
        }
        self.wakeups_consumed = wakeups_sent;
        Ok(())
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reactor::interest::Interest;
    use crate::reactor::sys::PollMode;
    use std::io::Write;
    use std::os::fd::{AsFd, AsRawFd};
    use std::os::unix::net::UnixStream;

    fn buffer(policy: IoCheck) -> ReadinessBuffer {
        ReadinessBuffer::new(NonZeroUsize::new(8).unwrap(), policy, NonZeroUsize::MAX)
    }

    /// A blocking wait of up to `timeout`, then the readiness it reported, dispatched.
    fn wait(
        buffer: &mut ReadinessBuffer,
        poller: &Poller,
        timeout: Duration,
        wakeups: u64,
    ) -> Vec<(usize, Readiness)> {
        let now = Instant::now();
        buffer
            .wait(poller, Some(timeout), true, wakeups, false, || now)
            .unwrap();
        dispatch(buffer)
    }

    /// The next iteration's sources, handed out as the loop's dispatch does.
    fn dispatch(buffer: &mut ReadinessBuffer) -> Vec<(usize, Readiness)> {
        (0..buffer.dispatch_budget())
            .map_while(|_| buffer.next_ready())
            .collect()
    }

    /// `n` sources registered under keys `0..n`, the first `readable` of them readable,
    /// and a buffer that dispatches `budget` of them per iteration.
    fn ready_sources(
        poller: &Poller,
        n: usize,
        readable: usize,
        budget: usize,
    ) -> (Vec<(UnixStream, UnixStream)>, ReadinessBuffer) {
        let pairs: Vec<_> = (0..n).map(|_| UnixStream::pair().unwrap()).collect();
        for (key, (source, peer)) in pairs.iter().enumerate() {
            // SAFETY: the sources outlive their registrations (`delete_all`).
            unsafe { poller.add(source.as_raw_fd(), key, Interest::READ, PollMode::Level) }
                .unwrap();
            if key < readable {
                (&*peer).write_all(b"x").unwrap();
            }
        }
        let capacity = NonZeroUsize::new(8).unwrap();
        let budget = NonZeroUsize::new(budget).unwrap();
        let buffer = ReadinessBuffer::new(capacity, IoCheck::default(), budget);
        (pairs, buffer)
    }

    fn delete_all(poller: &Poller, pairs: &[(UnixStream, UnixStream)]) {
        for (source, _) in pairs {
            poller.delete(source.as_fd()).unwrap();
        }
    }

    fn keys(dispatched: &[(usize, Readiness)]) -> Vec<usize> {
        dispatched.iter().map(|(key, _)| *key).collect()
    }

    #[test]
    fn a_timed_wait_reports_sources_and_times_out_without_events() {
        let poller = Poller::new().unwrap();
        let (a, mut b) = UnixStream::pair().unwrap();
        // SAFETY: `a` outlives its registration (deleted below).
        unsafe { poller.add(a.as_raw_fd(), 7, Interest::READ, PollMode::Level) }.unwrap();
        let mut ready = buffer(IoCheck::default());
        let started = Instant::now();
        assert!(wait(&mut ready, &poller, Duration::from_millis(20), 0).is_empty());
        assert!(started.elapsed() >= Duration::from_millis(20), "woke early");
        b.write_all(b"x").unwrap();
        let got = wait(&mut ready, &poller, Duration::from_secs(5), 0);
        assert_eq!(got.len(), 1);
        let (key, readiness) = got[0];
        assert_eq!(key, 7);
        assert!(readiness.readable && !readiness.writable && !readiness.hangup);
        drop(b);
        assert!(
            wait(&mut ready, &poller, Duration::from_secs(5), 0)[0]
                .1
                .hangup
        );
        poller.delete(a.as_fd()).unwrap();
    }

    /// A wait's readiness is handed out `dispatch_budget` sources at a time, and the
    /// buffer does not wait again (nor report a source ready since) until all of it is.
    #[test]
    fn a_wait_is_handed_out_a_budget_at_a_time_before_the_next_wait() {
        let poller = Poller::new().unwrap();
        let (pairs, mut ready) = ready_sources(&poller, 4, 3, 2);
        let mut first = keys(&wait(&mut ready, &poller, Duration::from_secs(5), 0));
        assert_eq!(first.len(), 2);
        assert!(ready.has_undispatched());
        (&pairs[3].1).write_all(b"x").unwrap();
        // Returns at once with the rest of the same wait: source 3 is not in it.
        let rest = keys(&wait(&mut ready, &poller, Duration::from_secs(5), 0));
        assert_eq!(rest.len(), 1);
        assert!(!ready.has_undispatched());
        first.extend(rest);
        first.sort();
        assert_eq!(first, [0, 1, 2]);
        // Only the next wait finds it (with the others, still readable).
        let mut next = keys(&wait(&mut ready, &poller, Duration::from_secs(5), 0));
        next.extend(keys(&dispatch(&mut ready)));
        next.sort();
        assert_eq!(next, [0, 1, 2, 3]);
        delete_all(&poller, &pairs);
    }

    /// A dispatch cut short (a panic escaped the panic policy after one handler) leaves
    /// the rest of its wait to the next iteration, each source handed out once.
    #[test]
    fn a_dispatch_cut_short_leaves_the_rest_of_its_wait_to_the_next() {
        let poller = Poller::new().unwrap();
        let (pairs, mut ready) = ready_sources(&poller, 3, 3, 3);
        let now = Instant::now();
        ready
            .wait(&poller, Some(Duration::ZERO), true, 0, false, || now)
            .unwrap();
        let (first, _) = ready.next_ready().unwrap(); // then the dispatch unwinds
        let mut rest = keys(&dispatch(&mut ready));
        assert!(!ready.has_undispatched());
        rest.push(first);
        rest.sort();
        assert_eq!(rest, [0, 1, 2]);
        // The next wait reports the sources again.
        assert_eq!(
            wait(&mut ready, &poller, Duration::from_secs(5), 0).len(),
            3
        );
        delete_all(&poller, &pairs);
    }

    #[test]
    fn a_wait_longer_than_epoll_takes_is_capped_not_refused() {
        let poller = Poller::new().unwrap();
        poller.notify().unwrap();
        let mut ready = buffer(IoCheck::default());
        // Years: more milliseconds than an i32 holds.
        assert!(wait(&mut ready, &poller, Duration::from_secs(1 << 40), 1).is_empty());
    }

    /// A zero-timeout iteration of a running loop checks its sources only as the policy
    /// says: every `interval` iterations, or once `max_delay` passed since the last check.
    #[test]
    fn a_running_loop_checks_its_sources_as_the_policy_says() {
        let poller = Poller::new().unwrap();
        let (a, mut b) = UnixStream::pair().unwrap();
        // SAFETY: `a` outlives its registration (deleted below).
        unsafe { poller.add(a.as_raw_fd(), 4, Interest::READ, PollMode::Level) }.unwrap();
        b.write_all(b"x").unwrap();
        let policy = IoCheck {
            interval: 3,
            max_delay: Duration::from_millis(10),
        };
        let mut ready = buffer(policy);
        let start = Instant::now();
        let at = |ready: &mut ReadinessBuffer, ms: u64| {
            let now = start + Duration::from_millis(ms);
            ready
                .wait(&poller, Some(Duration::ZERO), true, 0, true, || now)
                .unwrap();
            keys(&dispatch(ready))
        };
        // The first iteration has no last check: it checks.
        assert_eq!(at(&mut ready, 0), [4]);
        // Then it skips until the third iteration since that check...
        assert!(at(&mut ready, 1).is_empty());
        assert!(at(&mut ready, 2).is_empty());
        assert_eq!(at(&mut ready, 3), [4]);
        // ...or until `max_delay` has passed, whichever comes first.
        assert!(at(&mut ready, 4).is_empty());
        assert_eq!(at(&mut ready, 13), [4]);
        // Without the policy (an iteration about to block, or `run_once`), every wait
        // checks.
        let now = start + Duration::from_millis(14);
        ready
            .wait(&poller, Some(Duration::ZERO), true, 0, false, || now)
            .unwrap();
        assert_eq!(keys(&dispatch(&mut ready)), [4]);
        poller.delete(a.as_fd()).unwrap();
    }
}
