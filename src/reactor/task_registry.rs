//! The loop's live tasks: one reference to each spawned task that has not ended, so the
//! loop can end them all when it closes (on its own thread, where their futures must be
//! dropped) and count them.
//!
//! Each task records its slot, so removing it when it ends costs O(1).

use std::fmt;

use slab::Slab;

use super::raw_task::{TaskEnd, TaskRef};

/// The loop's live tasks.
#[derive(Default)]
pub(crate) struct TaskRegistry {
    slots: Slab<TaskRef>,
}

impl TaskRegistry {
    /// Adds a task (the registry keeps this reference until the task ends).
    pub(crate) fn insert(&mut self, task: TaskRef) {
        let entry = self.slots.vacant_entry();
        let slot = u32::try_from(entry.key()).expect("fewer than 2^32 live tasks");
        task.set_slot(slot);
        entry.insert(task);
    }

    /// Removes an ended task; the caller drops the reference once no borrow is held.
    pub(crate) fn remove(&mut self, task: &TaskRef) -> Option<TaskRef> {
        let slot = task.slot() as usize;
        let mine = self.slots.get(slot).is_some_and(|held| held.ptr_eq(task));
        mine.then(|| self.slots.remove(slot))
    }

    /// Takes every live task out, for the loop to end them.
    pub(crate) fn take_all(&mut self) -> Vec<TaskRef> {
        self.slots.drain().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// Ends `tasks` as cancelled: their futures are dropped here, their handles see
/// [`TaskEnd::Cancelled`]. Loop thread, with no borrow of the loop held (a future's
/// destructor may use the loop).
pub(crate) fn cancel_all(tasks: Vec<TaskRef>) {
    for task in tasks {
        if !task.is_complete() {
            // SAFETY: the loop thread ends its own task, which is not being polled (the
            // loop is closing or dropped, outside any iteration).
            unsafe { task.end(TaskEnd::Cancelled) };
            drop(task.complete());
        }
    }
}

impl Drop for TaskRegistry {
    fn drop(&mut self) {
        cancel_all(self.take_all());
    }
}

impl fmt::Debug for TaskRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskRegistry")
            .field("tasks", &self.slots.len())
            .finish()
    }
}
