//! The Linux poller: an epoll set and an eventfd, both the loop's own.
//!
//! A wait is one syscall. A timed wait keeps its nanoseconds: it is one `epoll_pwait2`
//! (Linux 5.11), whose timeout is a timespec, so `run_once(400 µs)` waits 400 µs, not a
//! whole millisecond. Where that call is missing (an older kernel: `ENOSYS`; a seccomp
//! filter: `ENOSYS` or `EPERM`), the loop remembers it and waits with `epoll_wait`'s
//! milliseconds, rounded up, as Tornado's and tokio's waits are: a timer may fire late,
//! never early, and a wait asked for is never zero. (rustix's `epoll::wait` takes a
//! timespec but, without its `linux_5_11` feature, rounds it up to milliseconds; with the
//! feature it calls `epoll_pwait2` with no fallback, so the precise wait is made here.)
//!
//! A wakeup is one `write` to the eventfd, which is registered edge-triggered under
//! [`WAKE_KEY`]: epoll reports the edge once, to the wait it ends (or to the next wait, if
//! the loop was busy), and nothing has to be read or re-armed afterwards. mio's and
//! tokio's wakers work the same way. (The `polling` crate's own notifier costs the woken
//! loop five syscalls: re-arming a timerfd, reading the eventfd, re-arming it.)

use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustix::event::epoll::{self, Event, EventData, EventFlags};
use rustix::event::{eventfd, EventfdFlags, Timespec};
use rustix::io::Errno;

use super::PollMode;
use crate::reactor::interest::{Interest, Readiness};

/// The key of the eventfd in the epoll set (sources get small keys).
const WAKE_KEY: u64 = u64::MAX;

/// The longest single wait: a longer one is only woken early and waits again, and
/// `epoll_wait` takes at most `i32::MAX` milliseconds.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// An epoll set and the eventfd that wakes its waits.
#[derive(Debug)]
pub(crate) struct Poller {
    epoll: OwnedFd,
    /// Registered edge-triggered under [`WAKE_KEY`]; closed after the epoll set (field
    /// order), which needs no `EPOLL_CTL_DEL`.
    wake: OwnedFd,
}

/// The events of one wait, and whether timed waits may use `epoll_pwait2`.
pub(crate) struct WaitBuffer {
    events: Vec<Event>,
    /// Cleared when the kernel refuses `epoll_pwait2` (and for every later loop).
    pub(super) precise: bool,
}

impl WaitBuffer {
    /// Room for `capacity` events per wait.
    pub(crate) fn with_capacity(capacity: NonZeroUsize) -> WaitBuffer {
        WaitBuffer {
            events: Vec::with_capacity(capacity.get()),
            precise: !EPOLL_PWAIT2_MISSING.load(Ordering::Relaxed),
        }
    }

    /// How many events one wait can report.
    pub(crate) fn capacity(&self) -> usize {
        self.events.capacity()
    }
}

impl std::fmt::Debug for WaitBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitBuffer")
            .field("capacity", &self.events.capacity())
            .field("precise", &self.precise)
            .finish()
    }
}

impl Poller {
    /// A new epoll set with its wakeup eventfd.
    ///
    /// # Errors
    ///
    /// The kernel refused a descriptor (out of descriptors).
    pub(crate) fn new() -> io::Result<Poller> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let wake = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        epoll::add(
            &epoll,
            &wake,
            EventData::new_u64(WAKE_KEY),
            EventFlags::IN | EventFlags::ET,
        )?;
        Ok(Poller { epoll, wake })
    }

    /// Whether sources can be registered in [`PollMode::Level`] (always, on Linux).
    pub(crate) fn supports_level(&self) -> bool {
        true
    }

    /// Registers `fd` under `key` (below `usize::MAX`) for `interest`.
    ///
    /// # Safety
    ///
    /// `fd` is open, and is [deleted](Poller::delete) before it is closed.
    ///
    /// # Errors
    ///
    /// The kernel refused it (`fd` already registered, not pollable, out of memory).
    pub(crate) unsafe fn add(
        &self,
        fd: RawFd,
        key: usize,
        interest: Interest,
        mode: PollMode,
    ) -> io::Result<()> {
        // SAFETY: the caller promises `fd` is open for the call.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        epoll::add(&self.epoll, fd, data(key), flags(interest, mode))?;
        Ok(())
    }

    /// Changes the interest of a registered `fd` (and re-arms a oneshot one).
    ///
    /// # Errors
    ///
    /// `fd` is not registered, or the kernel refused the change.
    pub(crate) fn modify(
        &self,
        fd: BorrowedFd<'_>,
        key: usize,
        interest: Interest,
        mode: PollMode,
    ) -> io::Result<()> {
        epoll::modify(&self.epoll, fd, data(key), flags(interest, mode))?;
        Ok(())
    }

    /// Removes `fd` from the set.
    ///
    /// # Errors
    ///
    /// `fd` is not registered.
    pub(crate) fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        epoll::delete(&self.epoll, fd)?;
        Ok(())
    }

    /// Ends the current or next wait. Any thread.
    ///
    /// # Errors
    ///
    /// The write to the eventfd failed.
    pub(crate) fn notify(&self) -> io::Result<()> {
        let one = 1u64.to_ne_bytes();
        match rustix::io::write(&self.wake, &one) {
            Ok(_) => Ok(()),
            // The counter is full (2^64 - 2 wakeups nobody read): empty it, write again.
            Err(Errno::AGAIN) => {
                let mut count = [0u8; 8];
                let _ = rustix::io::read(&self.wake, &mut count);
                rustix::io::write(&self.wake, &one)?;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Waits up to `timeout` (`None`: until something happens; at most an hour) and
    /// appends the readiness of the sources reported to `ready`. A wakeup ends the wait
    /// and reports nothing; so does a signal.
    ///
    /// # Errors
    ///
    /// The wait failed for another reason than a signal.
    pub(crate) fn wait(
        &self,
        buffer: &mut WaitBuffer,
        timeout: Option<Duration>,
        ready: &mut Vec<(usize, Readiness)>,
    ) -> io::Result<()> {
        let timeout = timeout.map(|t| t.min(MAX_WAIT));
        buffer.events.clear();
        let waited = match timeout {
            Some(t) if buffer.precise && !t.is_zero() => {
                match epoll_pwait2(&self.epoll, &mut buffer.events, t) {
                    Err(e) if means_missing(e) => {
                        log::debug!(
                            target: "ioloop",
                            "epoll_pwait2 refused ({e}): waits are rounded up to milliseconds"
                        );
                        buffer.precise = false;
                        EPOLL_PWAIT2_MISSING.store(true, Ordering::Relaxed);
                        epoll_wait_millis(&self.epoll, &mut buffer.events, timeout)
                    }
                    other => other,
                }
            }
            _ => epoll_wait_millis(&self.epoll, &mut buffer.events, timeout),
        };
        match waited {
            Ok(()) => {}
            // Interrupted by a signal: the loop goes round and waits again.
            Err(Errno::INTR) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let sources = buffer.events.iter().filter(|ev| ev.data.u64() != WAKE_KEY);
        ready.extend(sources.map(|ev| (ev.data.u64() as usize, readiness(ev.flags))));
        Ok(())
    }
}

impl AsFd for Poller {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }
}

impl AsRawFd for Poller {
    fn as_raw_fd(&self) -> RawFd {
        self.epoll.as_raw_fd()
    }
}

fn data(key: usize) -> EventData {
    debug_assert!(key as u64 != WAKE_KEY, "the wakeup's key");
    EventData::new_u64(key as u64)
}

/// The epoll flags for `interest` in `mode` (errors and hangups are always reported).
fn flags(interest: Interest, mode: PollMode) -> EventFlags {
    let mut flags = match mode {
        PollMode::Level => EventFlags::empty(),
        PollMode::Oneshot => EventFlags::ONESHOT,
    };
    if interest.is_readable() {
        flags |= EventFlags::IN | EventFlags::HUP | EventFlags::ERR | EventFlags::PRI;
    }
    if interest.is_writable() {
        flags |= EventFlags::OUT | EventFlags::HUP | EventFlags::ERR;
    }
    flags
}

/// What a source's reported flags mean to its handler: a hangup or an error wakes both
/// directions, so the handler's read or write finds out.
fn readiness(flags: EventFlags) -> Readiness {
    Readiness {
        readable: flags
            .intersects(EventFlags::IN | EventFlags::HUP | EventFlags::ERR | EventFlags::PRI),
        writable: flags.intersects(EventFlags::OUT | EventFlags::HUP | EventFlags::ERR),
        error: flags.contains(EventFlags::ERR),
        hangup: flags.contains(EventFlags::HUP),
    }
}

/// Set once the kernel refused `epoll_pwait2`: it will for the rest of the process.
static EPOLL_PWAIT2_MISSING: AtomicBool = AtomicBool::new(false);

/// Whether `epoll_pwait2` failed because it is not there: `ENOSYS` (before Linux 5.11,
/// or a seccomp filter's usual answer) or `EPERM` (Docker's older default filter; the
/// call itself never fails with it).
fn means_missing(e: Errno) -> bool {
    e == Errno::NOSYS || e == Errno::PERM
}

/// `struct __kernel_timespec`, which `epoll_pwait2` reads on every architecture (64-bit
/// seconds and nanoseconds, also on 32-bit systems).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KernelTimespec {
    tv_sec: i64,
    tv_nsec: i64,
}

/// `timeout` to the nanosecond (the caller caps it at an hour).
fn precise_timespec(timeout: Duration) -> KernelTimespec {
    KernelTimespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: timeout.subsec_nanos().into(),
    }
}

/// `timeout` in whole milliseconds, rounded up: a wait is never shorter than asked (a
/// timer never fires early), and a non-zero one is never zero (no spinning).
fn millis_rounded_up(timeout: Duration) -> i32 {
    let millis = timeout.as_nanos().div_ceil(1_000_000);
    i32::try_from(millis).unwrap_or(i32::MAX)
}

/// One `epoll_pwait2` on `epoll` for at most `timeout`, its events in `events` (empty,
/// with spare capacity).
fn epoll_pwait2(
    epoll: &impl AsFd,
    events: &mut Vec<Event>,
    timeout: Duration,
) -> rustix::io::Result<()> {
    let timeout = precise_timespec(timeout);
    let spare = events.spare_capacity_mut();
    let max = libc::c_int::try_from(spare.len()).unwrap_or(libc::c_int::MAX);
    // SAFETY: the fd is open (borrowed); the kernel writes at most `max` events into the
    // spare capacity of `events`, whose `Event` has the kernel's `epoll_event` layout
    // (rustix passes it to the same syscall family); it reads `timeout`, a
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
        let raw = io::Error::last_os_error().raw_os_error().unwrap_or(0);
        return Err(Errno::from_raw_os_error(raw));
    }
    // SAFETY: the kernel initialized the first `n` events, and `n <= max <= capacity`.
    unsafe { events.set_len(n as usize) };
    Ok(())
}

/// One `epoll_wait` on `epoll` for at most `timeout` rounded up to milliseconds (`None`:
/// until an event), its events in `events` (empty, with spare capacity).
fn epoll_wait_millis(
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use std::time::Instant;

    fn buffer() -> WaitBuffer {
        WaitBuffer::with_capacity(NonZeroUsize::new(8).unwrap())
    }

    /// The keys of one raw wait, the wakeup's included.
    fn raw_keys(poller: &Poller, timeout: Duration) -> Vec<u64> {
        let mut events = Vec::with_capacity(8);
        epoll_wait_millis(&poller.epoll, &mut events, Some(timeout)).unwrap();
        events.iter().map(|ev| ev.data.u64()).collect()
    }

    fn keys(poller: &Poller, buffer: &mut WaitBuffer, timeout: Duration) -> Vec<usize> {
        let mut ready = Vec::new();
        poller.wait(buffer, Some(timeout), &mut ready).unwrap();
        ready.iter().map(|(key, _)| *key).collect()
    }

    #[test]
    fn a_wakeup_is_reported_once_and_none_is_lost() {
        let poller = Poller::new().unwrap();
        // Sent while nobody waits: the next wait sees it at once.
        poller.notify().unwrap();
        assert_eq!(raw_keys(&poller, Duration::from_secs(5)), [WAKE_KEY]);
        // Reported once, though nothing read the eventfd: no spinning.
        assert!(raw_keys(&poller, Duration::ZERO).is_empty());
        for _ in 0..3 {
            poller.notify().unwrap();
            assert_eq!(raw_keys(&poller, Duration::from_secs(5)), [WAKE_KEY]);
        }
        // From another thread, during the wait.
        std::thread::scope(|s| {
            s.spawn(|| poller.notify().unwrap());
            assert_eq!(raw_keys(&poller, Duration::from_secs(5)), [WAKE_KEY]);
        });
    }

    #[test]
    fn a_full_counter_is_emptied_and_the_wakeup_still_sent() {
        let poller = Poller::new().unwrap();
        let almost_full = (u64::MAX - 1).to_ne_bytes();
        rustix::io::write(&poller.wake, &almost_full).unwrap();
        assert_eq!(raw_keys(&poller, Duration::from_secs(5)), [WAKE_KEY]);
        poller.notify().unwrap();
        assert_eq!(raw_keys(&poller, Duration::from_secs(5)), [WAKE_KEY]);
    }

    #[test]
    fn a_wakeup_ends_a_wait_and_reports_no_source() {
        let poller = Poller::new().unwrap();
        let mut buffer = buffer();
        for round in 1..=3 {
            poller.notify().unwrap();
            let started = Instant::now();
            assert!(keys(&poller, &mut buffer, Duration::from_secs(5)).is_empty());
            assert!(started.elapsed() < Duration::from_secs(4), "round {round}");
            // Consumed: the next wait times out.
            let started = Instant::now();
            assert!(keys(&poller, &mut buffer, Duration::from_millis(1)).is_empty());
            assert!(
                started.elapsed() >= Duration::from_millis(1),
                "round {round}"
            );
        }
    }

    /// Both waits, the precise one (where the kernel has it) and the fallback in
    /// milliseconds, report a source and never return before their timeout.
    #[test]
    fn both_waits_report_sources_and_never_end_early() {
        for precise in [true, false] {
            let poller = Poller::new().unwrap();
            let (a, mut b) = UnixStream::pair().unwrap();
            // SAFETY: `a` outlives its registration (deleted below).
            unsafe { poller.add(a.as_raw_fd(), 5, Interest::READ, PollMode::Level) }.unwrap();
            let mut buffer = buffer();
            buffer.precise &= precise;
            for micros in [1, 400, 1500] {
                let timeout = Duration::from_micros(micros);
                let started = Instant::now();
                assert!(keys(&poller, &mut buffer, timeout).is_empty());
                assert!(started.elapsed() >= timeout, "{precise}: woke early");
            }
            b.write_all(b"x").unwrap();
            assert_eq!(keys(&poller, &mut buffer, Duration::from_secs(5)), [5]);
            poller.delete(a.as_fd()).unwrap();
        }
    }

    #[test]
    fn a_level_source_is_reported_until_drained_a_oneshot_one_until_re_armed() {
        let poller = Poller::new().unwrap();
        let (level, mut level_peer) = UnixStream::pair().unwrap();
        let (oneshot, mut oneshot_peer) = UnixStream::pair().unwrap();
        // SAFETY: both outlive their registrations (deleted below).
        unsafe {
            poller
                .add(level.as_raw_fd(), 1, Interest::READ, PollMode::Level)
                .unwrap();
            poller
                .add(oneshot.as_raw_fd(), 2, Interest::READ, PollMode::Oneshot)
                .unwrap();
        }
        level_peer.write_all(b"x").unwrap();
        oneshot_peer.write_all(b"x").unwrap();
        let mut buffer = buffer();
        let mut both = keys(&poller, &mut buffer, Duration::from_secs(5));
        both.sort();
        assert_eq!(both, [1, 2]);
        assert_eq!(keys(&poller, &mut buffer, Duration::ZERO), [1]);
        poller
            .modify(oneshot.as_fd(), 2, Interest::READ, PollMode::Oneshot)
            .unwrap();
        let mut again = keys(&poller, &mut buffer, Duration::ZERO);
        again.sort();
        assert_eq!(again, [1, 2]);
        poller.delete(level.as_fd()).unwrap();
        poller.delete(oneshot.as_fd()).unwrap();
    }

    #[test]
    fn flags_read_as_readiness() {
        let read = readiness(EventFlags::IN);
        assert!(read.readable && !read.writable && !read.error && !read.hangup);
        let write = readiness(EventFlags::OUT);
        assert!(!write.readable && write.writable);
        let hangup = readiness(EventFlags::HUP);
        assert!(hangup.readable && hangup.writable && hangup.hangup && !hangup.error);
        let error = readiness(EventFlags::ERR);
        assert!(error.readable && error.writable && error.error);
        assert_eq!(
            flags(Interest::WRITE, PollMode::Level),
            EventFlags::OUT | EventFlags::HUP | EventFlags::ERR
        );
        assert!(
            flags(Interest::READ, PollMode::Oneshot).contains(EventFlags::ONESHOT | EventFlags::IN)
        );
    }

    #[test]
    fn a_400_us_wait_becomes_a_400_us_timespec() {
        let timespec = |tv_sec, tv_nsec| KernelTimespec { tv_sec, tv_nsec };
        assert_eq!(
            precise_timespec(Duration::from_micros(400)),
            timespec(0, 400_000)
        );
        assert_eq!(
            precise_timespec(Duration::from_micros(16_667)),
            timespec(0, 16_667_000)
        );
        assert_eq!(precise_timespec(Duration::new(2, 5)), timespec(2, 5));
        assert_eq!(precise_timespec(MAX_WAIT), timespec(3600, 0));
    }

    #[test]
    fn a_non_zero_wait_is_never_zero() {
        for nanos in [1, 999, 1_000, 400_000, 999_999, 1_000_001] {
            let t = Duration::from_nanos(nanos);
            assert_ne!(precise_timespec(t), precise_timespec(Duration::ZERO));
            assert!(millis_rounded_up(t) >= 1, "{t:?}");
        }
    }

    #[test]
    fn the_millisecond_fallback_rounds_up() {
        let ms = millis_rounded_up;
        assert_eq!(ms(Duration::ZERO), 0);
        assert_eq!(ms(Duration::from_nanos(1)), 1);
        assert_eq!(ms(Duration::from_micros(400)), 1);
        assert_eq!(ms(Duration::from_millis(1)), 1);
        assert_eq!(ms(Duration::from_millis(1) + Duration::from_nanos(1)), 2);
        assert_eq!(ms(Duration::from_micros(16_667)), 17);
        assert_eq!(ms(MAX_WAIT), 3_600_000);
        assert_eq!(ms(Duration::MAX), i32::MAX);
    }

    #[test]
    fn enosys_and_eperm_mean_epoll_pwait2_is_missing() {
        assert!(means_missing(Errno::NOSYS) && means_missing(Errno::PERM));
        assert!(!means_missing(Errno::INTR) && !means_missing(Errno::INVAL));
    }
}
