//! [`IoEvent`]: what a handler is told when its source is ready.

use std::fmt;

use super::interest::Readiness;
use super::registration::HandlerId;

/// What a handler is told when its source is ready.
///
/// Level-triggered: a source that is still readable (or writable) is reported again on
/// the next iteration. Errors and hang-ups are reported whatever the interest; on Linux a
/// hang-up also shows as readable (and an error as readable and writable), so a handler
/// that reads until end-of-file handles both without looking at the flags.
///
/// # Examples
///
/// See [`IoLoop::add_handler`](crate::IoLoop::add_handler).
pub struct IoEvent<S> {
    pub(crate) id: HandlerId<S>,
    pub(crate) readiness: Readiness,
}

impl<S> IoEvent<S> {
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
