//! Task wakers: how a wake, on the loop's thread or any other, becomes one poll of the
//! task on the loop.
//!
//! A waker is its task's [`TaskHeader`], deduplicated by the header's `scheduled` flag:
//! the first wake after a poll queues one "poll this task" entry, later wakes do nothing
//! until the task has been polled. A wake on the loop's own thread (from a callback, a
//! timer, a handler or another task) goes straight into the local queue; a wake from
//! another thread goes through the coalesced cross-thread queue that
//! [`Remote::add_callback`](crate::Remote::add_callback) uses, so ten wakes before the
//! next poll cost one poller wakeup. Entries queued during an iteration run on the next
//! one, so no task is polled twice in one iteration and a task that wakes itself forever
//! cannot starve timers or I/O.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Wake;

use super::cross_thread::CrossThread;
use super::ioloop::IoLoop;
use super::queue::{Posted, Queued, TaskKey};
use super::task_registry::TaskHeader;

impl Wake for TaskHeader<IoLoop> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.scheduled.swap(true, Ordering::AcqRel) {
            schedule(&self.shared, self.key);
        }
    }
}

/// The loop owning `shared`, if it is this thread's current loop: then its local state
/// may be used directly.
pub(crate) fn current_owner(shared: &Arc<CrossThread<IoLoop>>) -> Option<IoLoop> {
    IoLoop::current().filter(|ioloop| Arc::ptr_eq(&ioloop.inner.shared, shared))
}

/// Queues a poll of task `key` on the loop owning `shared`: locally when that loop is this
/// thread's current loop, else through the cross-thread queue.
fn schedule(shared: &Arc<CrossThread<IoLoop>>, key: TaskKey) {
    if let Some(ioloop) = current_owner(shared) {
        if ioloop.try_queue_local(Queued::Task(key)) {
            return;
        }
    }
    // Closed: the task was dropped with the loop, nothing is left to poll.
    let _ = shared.post(Posted::Task(key));
}
