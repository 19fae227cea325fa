//! The run queue's vocabulary: the entries of the loop's callback queue ([`Queued`]) and
//! of its cross-thread queue ([`Posted`]), and the boxed [`Callback`] they carry.
//!
use std::fmt;
use std::panic::Location;

use super::ioloop::IoLoop;
use super::raw_task::{TaskRef, Unadopted};

/// A boxed callback for the loop, and the place it was registered (for panic
/// reports and blocking warnings).
pub(crate) struct Callback {
    pub(super) f: Box<dyn FnOnce(&IoLoop)>,
    pub(super) site: &'static Location<'static>,
}

impl Callback {
    /// A callback registered at the caller's location.
    #[track_caller]
    pub(crate) fn new(f: Box<dyn FnOnce(&IoLoop)>) -> Callback {
        Callback::with_site(f, Location::caller())
    }

    /// A callback registered at `site`.
    pub(crate) fn with_site(f: Box<dyn FnOnce(&IoLoop)>, site: &'static Location<'static>) -> Self {
        Callback { f, site }
    }
}

impl fmt::Debug for Callback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Callback({})", self.site)
    }
}

/// An entry of the loop's own run queue: a callback, a poll of a woken task, or a task
/// spawned from another thread, to adopt and poll.
pub(crate) enum Queued {
    Callback(Callback),
    Task(TaskRef),
    Adopt(Unadopted),
}

/// Work posted from another thread: a callback and where it was posted, a wake of a task,
/// or a task spawned there. The loop turns each into a [`Queued`] entry when it drains the
/// cross-thread queue.
pub(crate) enum Posted {
    Callback(Box<dyn FnOnce(&IoLoop) + Send>, &'static Location<'static>),
    Task(TaskRef),
    Adopt(Unadopted),
}

impl From<Posted> for Queued {
    fn from(posted: Posted) -> Queued {
        match posted {
            Posted::Callback(f, site) => Queued::Callback(Callback::with_site(f, site)),
            Posted::Task(task) => Queued::Task(task),
            Posted::Adopt(task) => Queued::Adopt(task),
        }
    }
}
