//! [`IoEvent`]: what a handler is told when its source is ready.

use std::fmt;

use super::interest::Readiness;
use super::registration::HandlerId;

/// What a handler is told when its source is ready.
///
/// Level-triggered: a source that is still readable (or writable) is reported again by
/// the next wait. Errors and hang-ups are reported whatever the interest; on Linux a
/// hang-up also shows as readable (and an error as readable and writable), so a handler
/// that reads until end-of-file handles both without looking at the flags.
///
/// # Examples
///
/// ```
/// use ioloop::{Interest, IoLoop};
/// use std::{cell::Cell, io::Write, os::unix::net::UnixStream, rc::Rc, time::Duration};
///
/// let ioloop = IoLoop::new()?;
/// let (a, mut b) = UnixStream::pair()?;
/// let seen = Rc::new(Cell::new(None));
/// let s = seen.clone();
/// let id = ioloop.add_handler(a, Interest::READ, move |_, _, event| {
///     s.set(Some((event.id(), event.is_readable(), event.is_writable(), event.is_hangup())));
/// })?;
/// b.write_all(b"ping")?;
/// ioloop.run_once(Duration::ZERO)?;
/// assert_eq!(seen.get(), Some((id, true, false, false)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct IoEvent<S> {
    pub(super) id: HandlerId<S>,
    pub(super) readiness: Readiness,
}

impl<S> IoEvent<S> {
    /// The event of registration `key` with `readiness`.
    pub(crate) fn new(key: usize, readiness: Readiness) -> Self {
        IoEvent {
            id: HandlerId::new(key),
            readiness,
        }
    }

    /// The registration this event is for (pass it to
    /// [`IoLoop::update_handler`](crate::IoLoop::update_handler) or [`IoLoop::remove_handler`](crate::IoLoop::remove_handler)).
    pub fn id(&self) -> HandlerId<S> {
        self.id
    }
    /// The source is readable (or at end of stream, or in error).
    pub fn is_readable(&self) -> bool {
        self.readiness.readable
    }
    /// The source is writable (or in error).
    pub fn is_writable(&self) -> bool {
        self.readiness.writable
    }
    /// The source reported an error condition (`EPOLLERR`).
    pub fn is_error(&self) -> bool {
        self.readiness.error
    }
    /// The peer hung up (`EPOLLHUP`).
    pub fn is_hangup(&self) -> bool {
        self.readiness.hangup
    }
}

impl<S> fmt::Debug for IoEvent<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoEvent")
            .field("id", &self.id)
            .field("readable", &self.readiness.readable)
            .field("writable", &self.readiness.writable)
            .field("error", &self.readiness.error)
            .field("hangup", &self.readiness.hangup)
            .finish()
    }
}
