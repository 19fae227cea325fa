//! The run queue's vocabulary: the entries of the loop's callback queue ([`Queued`]) and
//! of its cross-thread queue ([`Posted`]), the boxed [`Callback`] they carry, and the
//! [`TaskKey`] that names a task to poll.
//!
//! A leaf: this file imports nothing from the crate, so the loop, its cross-thread half,
//! the timer heap and the task wakers all name these types without importing each other
//! (as mio keeps `Token` and `Interest` in files that import nothing). The loop appears
//! only as the type parameter `L`, which is always [`IoLoop`](crate::IoLoop): callbacks
//! receive the loop, and naming it here would make this file import its own users.

use std::fmt;
use std::panic::Location;

/// A boxed callback for the loop `L`, and the place it was registered (for panic
/// reports and blocking warnings).
pub(crate) struct Callback<L> {
    pub(crate) f: Box<dyn FnOnce(&L)>,
    pub(crate) site: &'static Location<'static>,
}

impl<L> Callback<L> {
    /// A callback registered at the caller's location.
    #[track_caller]
    pub(crate) fn new(f: Box<dyn FnOnce(&L)>) -> Callback<L> {
        Callback::with_site(f, Location::caller())
    }

    /// A callback registered at `site`.
    pub(crate) fn with_site(f: Box<dyn FnOnce(&L)>, site: &'static Location<'static>) -> Self {
        Callback { f, site }
    }
}

impl<L> fmt::Debug for Callback<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Callback({})", self.site)
    }
}

/// A task's slot index and the generation that tells it apart from earlier tasks in the
/// same slot, so a stale wake never polls a newer task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TaskKey {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

/// An entry of the loop's own run queue: a callback, or a poll of a woken task.
pub(crate) enum Queued<L> {
    Callback(Callback<L>),
    Task(TaskKey),
}

/// Work posted from another thread: a callback and where it was posted, or a wake of a
/// task. The loop turns each into a [`Queued`] entry when it drains the cross-thread
/// queue.
pub(crate) enum Posted<L> {
    Callback(Box<dyn FnOnce(&L) + Send>, &'static Location<'static>),
    Task(TaskKey),
}

impl<L> From<Posted<L>> for Queued<L> {
    fn from(posted: Posted<L>) -> Queued<L> {
        match posted {
            Posted::Callback(f, site) => Queued::Callback(Callback::with_site(f, site)),
            Posted::Task(key) => Queued::Task(key),
        }
    }
}
