//! Waiting for readiness: one call to the OS poller per iteration, made as cheap as the
//! iteration allows.
//!
//! `polling::Poller::wait` costs five syscalls on Linux (it re-arms a timerfd for the
//! timeout and its notifier every time), where one `epoll_wait` would do. So on Linux
//! the loop waits on the poller's epoll fd itself and reads the events as `polling`
//! registered them (the key in the event's data). A timed wait keeps its nanoseconds:
//! it is one `epoll_pwait2` (Linux 5.11), whose timeout is a timespec, so `run_once(400
//! µs)` waits 400 µs, not a whole millisecond. Where that call is missing (an older
//! kernel: `ENOSYS`; a seccomp filter: `ENOSYS` or `EPERM`), the loop remembers it and
//! waits with `epoll_wait`'s milliseconds, rounded up, as Tornado's and tokio's waits
//! are: a timer may fire late, never early, and a wait asked for is never zero. (rustix's
//! `epoll::wait` takes a timespec but, without its `linux_5_11` feature, rounds it up
//! to milliseconds; with the feature it calls `epoll_pwait2` with no fallback, so the
//! precise wait is made here.) A wakeup from another thread is the loop's own
//! edge-triggered eventfd (`notifier.rs`): the wait reports it once and nothing consumes
//! it. Only if `polling`'s notifier fired (the loop never uses it on Linux) would the
//! loop also call `Poller::wait` with a zero timeout, which clears and re-arms it.
//! Elsewhere, `polling`'s notifier wakes the loop and `Poller::wait` is the wait, and
//! an iteration that must not block first asks whether anything is ready at all with a
//! single zero-timeout `poll(2)` on the poller's fd.
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

use std::io;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use polling::{Events, Poller};

use super::interest::Readiness;
#[cfg(target_os = "linux")]
use super::notifier::WAKE_KEY;

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
    /// The events of a direct `epoll_wait` on the poller's fd.
    #[cfg(target_os = "linux")]
    epoll_events: Vec<rustix::event::epoll::Event>,
    /// `(key, readiness)` of the last wait, in the order the OS reported them.
    pub(crate) ready: Vec<(usize, Readiness)>,
    /// The wakeup count (see `CrossThread::wakeups`) read before the
    /// last real wait: every wakeup counted up to it has been consumed.
    wakeups_consumed: u64,
    policy: IoCheck,
    /// Whether timed waits use `epoll_pwait2` (until the kernel refuses it).
    #[cfg(target_os = "linux")]
    precise: bool,
    /// Iterations since sources were last checked for readiness, and when that was.
    unchecked: u32,
    last_check: Option<Instant>,
}

impl ReadinessBuffer {
    pub(crate) fn new(capacity: NonZeroUsize, policy: IoCheck) -> Self {
        ReadinessBuffer {
            events: Events::with_capacity(capacity),
            #[cfg(target_os = "linux")]
            epoll_events: Vec::with_capacity(capacity.get()),
            ready: Vec::with_capacity(capacity.get().min(1024)),
            wakeups_consumed: 0,
            policy,
            #[cfg(target_os = "linux")]
            precise: sys::epoll_pwait2_usable(),
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
            #[cfg(not(target_os = "linux"))]
            if !anything_ready(poller)? {
                return Ok(());
            }
        }
        #[cfg(target_os = "linux")]
        let notified = self.wait_on_epoll(poller, timeout)?;
        #[cfg(not(target_os = "linux"))]
        let notified = true;
        if notified {
            // A wakeup (or, on other systems, every wait): `polling` consumes it. On Linux
            // the sources it reports again (level-triggered ones) are merged into what the
            // direct wait found; oneshot ones it cannot report twice.
            let timeout = if cfg!(target_os = "linux") {
                Some(Duration::ZERO)
            } else {
                timeout
            };
            self.events.clear();
            poller.wait(&mut self.events, timeout)?;
            let reported = self.events.iter().filter(|ev| ev.key != NOTIFY_KEY);
            merge_ready(
                &mut self.ready,
                reported.map(|ev| (ev.key, Readiness::from_event(&ev))),
            );
        }
        if timeout != Some(Duration::ZERO) {
            self.checked(now());
        }
        self.wakeups_consumed = wakeups_sent;
        Ok(())
    }

    /// One wait on the poller's fd (`epoll_pwait2` for a timed wait where the kernel has
    /// it, else `epoll_wait`), filling `ready`; says whether the poller's notifier (or its
    /// timerfd, which shares the notifier's key) was among the events.
    #[cfg(target_os = "linux")]
    fn wait_on_epoll(&mut self, poller: &Poller, timeout: Option<Duration>) -> io::Result<bool> {
        use rustix::event::epoll::EventFlags;

        // At most an hour: a longer wait is only woken early and waits again, and
        // `epoll_wait` takes at most `i32::MAX` milliseconds.
        let timeout = timeout.map(|t| t.min(MAX_EPOLL_WAIT));
        self.epoll_events.clear();
        let waited = match timeout {
            Some(t) if self.precise && !t.is_zero() => {
                match sys::epoll_pwait2(poller, &mut self.epoll_events, t) {
                    Err(e) if sys::means_missing(e) => {
                        log::debug!(
                            target: "ioloop",
                            "epoll_pwait2 refused ({e}): waits are rounded up to milliseconds"
                        );
                        self.precise = false;
                        sys::epoll_pwait2_missing();
                        sys::epoll_wait_millis(poller, &mut self.epoll_events, timeout)
                    }
                    other => other,
                }
            }
            _ => sys::epoll_wait_millis(poller, &mut self.epoll_events, timeout),
        };
        match waited {
            Ok(()) => {}
            // Interrupted by a signal: the loop goes round and waits again.
            Err(rustix::io::Errno::INTR) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        let mut notified = false;
        for event in &self.epoll_events {
            let key = event.data.u64() as usize;
            if key == NOTIFY_KEY {
                notified = true;
                continue;
            }
            if key == WAKE_KEY {
                // The loop's own wakeup: reported once, nothing to consume.
                continue;
            }
            // `polling`'s own reading of the flags (its epoll backend).
            let flags = event.flags;
            let readiness = Readiness {
                readable: flags.intersects(
                    EventFlags::IN | EventFlags::HUP | EventFlags::ERR | EventFlags::PRI,
                ),
                writable: flags.intersects(EventFlags::OUT | EventFlags::HUP | EventFlags::ERR),
                error: flags.contains(EventFlags::ERR),
                hangup: flags.contains(EventFlags::HUP),
            };
            self.ready.push((key, readiness));
        }
        Ok(notified)
    }
}

/// Adds `more` to `ready`, a source already there getting the union of both reports.
fn merge_ready(
    ready: &mut Vec<(usize, Readiness)>,
    more: impl Iterator<Item = (usize, Readiness)>,
) {
    let found = ready.len();
    // A short list is searched; a long one indexed.
    let index: std::collections::HashMap<usize, usize> = if found > 32 {
        ready
            .iter()
            .enumerate()
            .map(|(at, (key, _))| (*key, at))
            .collect()
    } else {
        std::collections::HashMap::new()
    };
    for (key, readiness) in more {
        let at = if found > 32 {
            index.get(&key).copied()
        } else {
            ready[..found].iter().position(|(seen, _)| *seen == key)
        };
        match at {
            Some(at) => ready[at].1.merge(readiness),
            None => ready.push((key, readiness)),
        }
    }
}

/// The longest single wait.
#[cfg(target_os = "linux")]
const MAX_EPOLL_WAIT: Duration = Duration::from_secs(3600);

/// The two epoll waits: `epoll_pwait2` with the timeout to the nanosecond, and
/// `epoll_wait` with it rounded up to milliseconds.
#[cfg(target_os = "linux")]
mod sys {
    use std::os::fd::{AsFd, AsRawFd};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use rustix::event::epoll::{self, Event};
    use rustix::event::Timespec;
    use rustix::io::Errno;

    /// Set once the kernel refused `epoll_pwait2`: it will for the rest of the process.
    static EPOLL_PWAIT2_MISSING: AtomicBool = AtomicBool::new(false);

    /// Whether a new loop should try `epoll_pwait2`.
    pub(super) fn epoll_pwait2_usable() -> bool {
        !EPOLL_PWAIT2_MISSING.load(Ordering::Relaxed)
    }

    /// Records that the kernel refused `epoll_pwait2`.
    pub(super) fn epoll_pwait2_missing() {
        EPOLL_PWAIT2_MISSING.store(true, Ordering::Relaxed);
    }

    /// Whether `epoll_pwait2` failed because it is not there: `ENOSYS` (before Linux
    /// 5.11, or a seccomp filter's usual answer) or `EPERM` (Docker's older default
    /// filter; the call itself never fails with it).
    pub(super) fn means_missing(e: Errno) -> bool {
        e == Errno::NOSYS || e == Errno::PERM
    }

    /// `struct __kernel_timespec`, which `epoll_pwait2` reads on every architecture
    /// (64-bit seconds and nanoseconds, also on 32-bit systems).
    #[repr(C)]
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) struct KernelTimespec {
        pub(super) tv_sec: i64,
        pub(super) tv_nsec: i64,
    }

    /// `timeout` to the nanosecond (the caller caps it at an hour).
    pub(super) fn precise_timespec(timeout: Duration) -> KernelTimespec {
        KernelTimespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: timeout.subsec_nanos().into(),
        }
    }

    /// `timeout` in whole milliseconds, rounded up: a wait is never shorter than asked
    /// (a timer never fires early), and a non-zero one is never zero (no spinning).
    pub(super) fn millis_rounded_up(timeout: Duration) -> i32 {
        let millis = timeout.as_nanos().div_ceil(1_000_000);
        i32::try_from(millis).unwrap_or(i32::MAX)
    }

    /// One `epoll_pwait2` on `epoll` for at most `timeout`, its events in `events`
    /// (empty, with spare capacity).
    pub(super) fn epoll_pwait2(
        epoll: &impl AsFd,
        events: &mut Vec<Event>,
        timeout: Duration,
    ) -> rustix::io::Result<()> {
        let timeout = precise_timespec(timeout);
        let spare = events.spare_capacity_mut();
        let max = libc::c_int::try_from(spare.len()).unwrap_or(libc::c_int::MAX);
        // SAFETY: the fd is open (borrowed); the kernel writes at most `max` events into
        // the spare capacity of `events`, whose `Event` has the kernel's `epoll_event`
        // layout (rustix passes it to the same syscall family); it reads `timeout`, a
        // `__kernel_timespec`, and no signal mask (null, so its size is unused).
        let n = unsafe {
            libc::syscall(
                libc::SYS_epoll_pwait2,
                epoll.as_fd().as_raw_fd(),
                spare.as_mut_ptr().cast::<libc::c_void>(),
                max,
                &timeout as *const KernelTimespec,
                std::ptr::null::<libc::c_void>(),
                0usize,
            )
        };
        if n < 0 {
            let raw = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            return Err(Errno::from_raw_os_error(raw));
        }
        // SAFETY: the kernel initialized the first `n` events, and `n <= max <= capacity`.
        unsafe { events.set_len(n as usize) };
        Ok(())
    }

    /// One `epoll_wait` on `epoll` for at most `timeout` rounded up to milliseconds
    /// (`None`: until an event), its events in `events` (empty, with spare capacity).
    pub(super) fn epoll_wait_millis(
        epoll: &impl AsFd,
        events: &mut Vec<Event>,
        timeout: Option<Duration>,
    ) -> rustix::io::Result<()> {
        // Whole milliseconds, which rustix hands to `epoll_wait` unchanged.
        let timeout = timeout.map(|t| {
            let millis = i64::from(millis_rounded_up(t));
            Timespec {
                tv_sec: millis / 1000,
                // Below 10^9: fits rustix's `Nsecs` (i64, or a 32-bit `c_long`).
                tv_nsec: (millis % 1000 * 1_000_000) as _,
            }
        });
        let buffer = rustix::buffer::spare_capacity(events);
        epoll::wait(epoll, buffer, timeout.as_ref())?;
        Ok(())
    }
}

/// The key `polling` gives its notifier and timerfd (`usize::MAX`), which it refuses for
/// sources.
const NOTIFY_KEY: usize = usize::MAX;

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
#[cfg(all(unix, not(target_os = "linux")))]
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    fn buffer() -> ReadinessBuffer {
        ReadinessBuffer::new(NonZeroUsize::new(8).unwrap(), IoCheck::default())
    }

    fn wait(buffer: &mut ReadinessBuffer, poller: &Poller, timeout: Duration, wakeups: u64) {
        let now = Instant::now();
        buffer
            .wait(poller, Some(timeout), true, wakeups, false, || now)
            .unwrap();
    }

    #[test]
    fn a_timed_wait_reports_sources_and_times_out_without_events() {
        let poller = Poller::new().unwrap();
        let (a, mut b) = UnixStream::pair().unwrap();
        let level = polling::PollMode::Level;
        // SAFETY: `a` outlives its registration (deleted below).
        unsafe { poller.add_with_mode(&a, polling::Event::readable(7), level) }.unwrap();
        let mut ready = buffer();
        let started = Instant::now();
        wait(&mut ready, &poller, Duration::from_millis(20), 0);
        assert!(ready.ready.is_empty());
        assert!(started.elapsed() >= Duration::from_millis(20), "woke early");
        std::io::Write::write_all(&mut b, b"x").unwrap();
        wait(&mut ready, &poller, Duration::from_secs(5), 0);
        assert_eq!(ready.ready.len(), 1);
        let (key, readiness) = ready.ready[0];
        assert_eq!(key, 7);
        assert!(readiness.readable && !readiness.writable && !readiness.hangup);
        drop(b);
        wait(&mut ready, &poller, Duration::from_secs(5), 0);
        assert!(ready.ready[0].1.hangup);
        poller.delete(&a).unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_400_us_wait_becomes_a_400_us_timespec() {
        let timespec = |tv_sec, tv_nsec| sys::KernelTimespec { tv_sec, tv_nsec };
        let precise = sys::precise_timespec;
        assert_eq!(precise(Duration::from_micros(400)), timespec(0, 400_000));
        assert_eq!(
            precise(Duration::from_micros(16_667)),
            timespec(0, 16_667_000)
        );
        assert_eq!(precise(Duration::new(2, 5)), timespec(2, 5));
        assert_eq!(precise(MAX_EPOLL_WAIT), timespec(3600, 0));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_non_zero_wait_is_never_zero() {
        for nanos in [1, 999, 1_000, 400_000, 999_999, 1_000_001] {
            let t = Duration::from_nanos(nanos);
            assert_ne!(
                sys::precise_timespec(t),
                sys::precise_timespec(Duration::ZERO)
            );
            assert!(sys::millis_rounded_up(t) >= 1, "{t:?}");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_millisecond_fallback_rounds_up() {
        let ms = |t: Duration| sys::millis_rounded_up(t);
        assert_eq!(ms(Duration::ZERO), 0);
        assert_eq!(ms(Duration::from_nanos(1)), 1);
        assert_eq!(ms(Duration::from_micros(400)), 1);
        assert_eq!(ms(Duration::from_millis(1)), 1);
        assert_eq!(ms(Duration::from_millis(1) + Duration::from_nanos(1)), 2);
        assert_eq!(ms(Duration::from_micros(16_667)), 17);
        assert_eq!(ms(MAX_EPOLL_WAIT), 3_600_000);
        assert_eq!(ms(Duration::MAX), i32::MAX);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn enosys_and_eperm_mean_epoll_pwait2_is_missing() {
        use rustix::io::Errno;
        assert!(sys::means_missing(Errno::NOSYS) && sys::means_missing(Errno::PERM));
        assert!(!sys::means_missing(Errno::INTR) && !sys::means_missing(Errno::INVAL));
    }

    /// Both waits, the precise one (where the kernel has it) and the fallback in
    /// milliseconds, report a source and never return before their timeout.
    #[cfg(target_os = "linux")]
    #[test]
    fn both_waits_report_sources_and_never_end_early() {
        for precise in [true, false] {
            let poller = Poller::new().unwrap();
            let (a, mut b) = UnixStream::pair().unwrap();
            let level = polling::PollMode::Level;
            // SAFETY: `a` outlives its registration (deleted below).
            unsafe { poller.add_with_mode(&a, polling::Event::readable(5), level) }.unwrap();
            let mut ready = buffer();
            ready.precise &= precise;
            for micros in [1, 400, 1500] {
                let timeout = Duration::from_micros(micros);
                let started = Instant::now();
                wait(&mut ready, &poller, timeout, 0);
                assert!(ready.ready.is_empty());
                assert!(started.elapsed() >= timeout, "{precise}: woke early");
            }
            std::io::Write::write_all(&mut b, b"x").unwrap();
            wait(&mut ready, &poller, Duration::from_secs(5), 0);
            assert_eq!(ready.ready.iter().map(|r| r.0).collect::<Vec<_>>(), [5]);
            poller.delete(&a).unwrap();
        }
    }

    #[test]
    fn a_wait_longer_than_epoll_takes_is_capped_not_refused() {
        let poller = Poller::new().unwrap();
        poller.notify().unwrap();
        let mut ready = buffer();
        // Years: more milliseconds than an i32 holds.
        wait(&mut ready, &poller, Duration::from_secs(1 << 40), 1);
        assert!(ready.ready.is_empty());
    }

    #[test]
    fn reports_of_one_source_are_merged_and_others_kept() {
        let readable = Readiness {
            readable: true,
            writable: false,
            error: false,
            hangup: false,
        };
        let writable = Readiness {
            readable: false,
            writable: true,
            ..readable
        };
        for first in [2, 40] {
            let mut ready: Vec<_> = (0..first).map(|key| (key, readable)).collect();
            merge_ready(&mut ready, [(1, writable), (100, writable)].into_iter());
            assert_eq!(ready.len(), first + 1);
            assert!(ready[1].1.readable && ready[1].1.writable);
            assert_eq!(ready[first], (100, writable));
        }
    }

    #[test]
    fn a_oneshot_event_is_kept_when_a_wakeup_comes_with_it() {
        let poller = Poller::new().unwrap();
        let (a, mut b) = UnixStream::pair().unwrap();
        let oneshot = polling::PollMode::Oneshot;
        // SAFETY: `a` outlives its registration (deleted below).
        unsafe { poller.add_with_mode(&a, polling::Event::readable(3), oneshot) }.unwrap();
        std::io::Write::write_all(&mut b, b"x").unwrap();
        poller.notify().unwrap();
        let mut ready = buffer();
        wait(&mut ready, &poller, Duration::from_secs(5), 1);
        assert_eq!(
            ready.ready.iter().map(|(key, _)| *key).collect::<Vec<_>>(),
            [3]
        );
        poller.delete(&a).unwrap();
    }

    #[test]
    fn a_wakeup_ends_a_wait_is_consumed_and_is_armed_again() {
        let poller = Poller::new().unwrap();
        let mut ready = buffer();
        for round in 1..=3 {
            poller.notify().unwrap();
            let started = Instant::now();
            wait(&mut ready, &poller, Duration::from_secs(5), round);
            assert!(started.elapsed() < Duration::from_secs(4), "round {round}");
            assert!(ready.ready.is_empty(), "the notifier is no source");
            // Consumed: the next wait times out.
            wait(&mut ready, &poller, Duration::from_millis(1), round);
            assert!(ready.ready.is_empty());
        }
    }
}
