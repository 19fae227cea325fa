//! How a task's wake, on the loop's thread or any other, becomes one poll on its loop.
//!
//! A waker is a counted reference to its task (see `raw_task.rs`); waking it sets the
//! task's `SCHEDULED` bit, and only the wake that set it queues an entry, so many wakes
//! before the next poll cost one entry. The entry goes straight into the local queue when
//! the task's loop is this thread's current loop; from other threads it goes through the
//! coalesced cross-thread queue that [`Remote::add_callback`](crate::Remote::add_callback)
//! uses, so ten wakes before the next poll cost one poller wakeup. Entries queued during
//! an iteration run on the next one, so no task is polled twice in one iteration and a
//! task that wakes itself forever cannot starve timers or I/O.

use std::sync::Arc;

use super::cross_thread::CrossThread;
use super::ioloop::IoLoop;
use super::queue::{Posted, Queued};
use super::raw_task::{Schedule, TaskRef};

impl Schedule for CrossThread {
    fn schedule(&self, task: TaskRef) {
        let task = match current_owner(self) {
            Some(ioloop) => match ioloop.try_queue_local(Queued::Task(task)) {
                Ok(()) => return,
                Err(Queued::Task(task)) => task,
                Err(_) => unreachable!("the entry comes back as it went"),
            },
            None => task,
        };
        // Closed: the task was ended with the loop; the entry is dropped.
        let _ = self.post(Posted::Task(task));
    }
}

/// The loop owning `shared`, if it is this thread's current loop: then its local state
/// may be used directly.
pub(crate) fn current_owner(shared: &CrossThread) -> Option<IoLoop> {
    IoLoop::current().filter(|ioloop| std::ptr::eq(Arc::as_ptr(&ioloop.inner.shared), shared))
}

/// The loop owning `task`, if it is this thread's current loop.
pub(crate) fn current_owner_of(task: &TaskRef) -> Option<IoLoop> {
    IoLoop::current().filter(|ioloop| ioloop.owns(task))
}

impl IoLoop {
    /// Whether `task` is one of this loop's.
    pub(crate) fn owns(&self, task: &TaskRef) -> bool {
        task.is_owned_by(Arc::as_ptr(&self.inner.shared) as *const ())
    }
}
