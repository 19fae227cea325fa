//! The run queue's vocabulary: the entries of the loop's callback queue ([`Queued`]) and
//! of its cross-thread queue ([`Posted`]), and the boxed [`Callback`] they carry.
//!
//! This file imports none of its users (only the task reference type of `raw_task.rs`,
//! which imports nothing of the loop), so the loop, its cross-thread half, the timer
//! heap and the task wakers all name these types without importing each other (as mio
//! keeps `Token` and `Interest` in files that import nothing). The loop appears only as
//! the type parameter `L`, which is always [`IoLoop`](crate::IoLoop): callbacks receive
//! the loop, and naming it here would make this file import its own users.

use std::fmt;
use std::panic::Location;

use super::raw_task::{TaskRef, Unadopted};

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

/// An entry of the loop's own run queue: a callback, a poll of a woken task, or a task
/// spawned from another thread, to adopt and poll.
pub(crate) enum Queued<L> {
    Callback(Callback<L>),
    Task(TaskRef),
    Adopt(Unadopted),
}

/// Work posted from another thread: a callback and where it was posted, a wake of a task,
/// or a task spawned there. The loop turns each into a [`Queued`] entry when it drains the
/// cross-thread queue.
pub(crate) enum Posted<L> {
    Callback(Box<dyn FnOnce(&L) + Send>, &'static Location<'static>),
    Task(TaskRef),
    Adopt(Unadopted),
}

impl<L> From<Posted<L>> for Queued<L> {
    fn from(posted: Posted<L>) -> Queued<L> {
        match posted {
            Posted::Callback(f, site) => Queued::Callback(Callback::with_site(f, site)),
            Posted::Task(task) => Queued::Task(task),
            Posted::Adopt(task) => Queued::Adopt(task),
        }
    }
}
