//! The poller outside Linux: the `polling` crate (kqueue, event ports, `poll(2)`), with
//! its own notifier for wakeups.
//!
//! `Poller::wait` with a zero timeout costs more than one syscall there, so a wait that
//! must not block first asks whether anything is ready at all with a single zero-timeout
//! `poll(2)` on the poller's fd.

use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use polling::{Event, Events};

use super::PollMode;
use crate::reactor::interest::{Interest, Readiness};

/// `polling`'s poller.
#[derive(Debug)]
pub(crate) struct Poller {
    poller: polling::Poller,
}

/// The events of one wait.
#[derive(Debug)]
pub(crate) struct WaitBuffer {
    events: Events,
}

impl WaitBuffer {
    /// Room for `capacity` events per wait.
    pub(crate) fn with_capacity(capacity: NonZeroUsize) -> WaitBuffer {
        WaitBuffer {
            events: Events::with_capacity(capacity),
        }
    }

    /// How many events one wait can report.
    pub(crate) fn capacity(&self) -> usize {
        self.events.capacity().get()
    }
}

fn mode(mode: PollMode) -> polling::PollMode {
    match mode {
        PollMode::Level => polling::PollMode::Level,
        PollMode::Oneshot => polling::PollMode::Oneshot,
    }
}

fn event(key: usize, interest: Interest) -> Event {
    Event::new(key, interest.is_readable(), interest.is_writable())
}

impl Poller {
    /// A new poller.
    ///
    /// # Errors
    ///
    /// The OS refused it (out of descriptors).
    pub(crate) fn new() -> io::Result<Poller> {
        Ok(Poller {
            poller: polling::Poller::new()?,
        })
    }

    /// Whether sources can be registered in [`PollMode::Level`].
    pub(crate) fn supports_level(&self) -> bool {
        self.poller.supports_level()
    }

    /// Registers `fd` under `key` (below `usize::MAX`) for `interest`.
    ///
    /// # Safety
    ///
    /// `fd` is open, and is [deleted](Poller::delete) before it is closed.
    ///
    /// # Errors
    ///
    /// The OS refused it.
    pub(crate) unsafe fn add(
        &self,
        fd: RawFd,
        key: usize,
        interest: Interest,
        poll_mode: PollMode,
    ) -> io::Result<()> {
        // SAFETY: as the caller promises.
        unsafe {
            self.poller
                .add_with_mode(fd, event(key, interest), mode(poll_mode))
        }
    }

    /// Changes the interest of a registered `fd` (and re-arms a oneshot one).
    ///
    /// # Errors
    ///
    /// `fd` is not registered, or the OS refused the change.
    pub(crate) fn modify(
        &self,
        fd: BorrowedFd<'_>,
        key: usize,
        interest: Interest,
        poll_mode: PollMode,
    ) -> io::Result<()> {
        self.poller
            .modify_with_mode(fd, event(key, interest), mode(poll_mode))
    }

    /// Removes `fd`.
    ///
    /// # Errors
    ///
    /// `fd` is not registered.
    pub(crate) fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.poller.delete(fd)
    }

    /// Ends the current or next wait. Any thread.
    ///
    /// # Errors
    ///
    /// `polling`'s notify failed.
    pub(crate) fn notify(&self) -> io::Result<()> {
        self.poller.notify()
    }

    /// Waits up to `timeout` (`None`: until something happens) and appends the readiness
    /// of the sources reported to `ready`; a wakeup ends the wait and is consumed.
    ///
    /// # Errors
    ///
    /// The wait failed.
    pub(crate) fn wait(
        &self,
        buffer: &mut WaitBuffer,
        timeout: Option<Duration>,
        ready: &mut Vec<(usize, Readiness)>,
    ) -> io::Result<()> {
        if timeout == Some(Duration::ZERO) && !self.anything_ready()? {
            return Ok(());
        }
        buffer.events.clear();
        self.poller.wait(&mut buffer.events, timeout)?;
        ready.extend(buffer.events.iter().map(|ev| {
            let readiness = Readiness {
                readable: ev.readable,
                writable: ev.writable,
                error: ev.is_err() == Some(true),
                hangup: ev.is_interrupt(),
            };
            (ev.key, readiness)
        }));
        Ok(())
    }

    /// Whether the poller has anything to report right now, in one syscall.
    fn anything_ready(&self) -> io::Result<bool> {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        let mut fds = [PollFd::new(&self.poller, PollFlags::IN)];
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
}

impl AsFd for Poller {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.poller.as_fd()
    }
}

impl AsRawFd for Poller {
    fn as_raw_fd(&self) -> RawFd {
        self.poller.as_raw_fd()
    }
}
