//! The loop's live tasks: each spawned future with its waker, the [`TaskHeader`] its
//! wakers share, and the [`TaskOutcome`] through which its end reaches the `Task` handle.
//!
//! The loop polls a task when its run queue holds a [`Queued::Task`](super::queue::Queued)
//! entry for it (step 4 of an iteration); while it is polled its body is out of the slot,
//! so the task may spawn, cancel or wake tasks (itself included) with no borrow held. The
//! generation in each [`TaskKey`] tells a task apart from earlier tasks of the same slot,
//! so a stale wake never polls a newer task. The loop appears only as the type parameter
//! `L` of the header's cross-thread queue.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Waker;

use slab::Slab;

use super::cross_thread::CrossThread;
use super::queue::TaskKey;

/// The part of a task that wakers share: `Send + Sync` whatever the future is. Its
/// `Wake` implementation is in `wakers.rs`.
pub(crate) struct TaskHeader<L> {
    pub(crate) shared: Arc<CrossThread<L>>,
    pub(crate) key: TaskKey,
    /// Set by a wake, cleared just before a poll: while set, the task is queued once.
    pub(crate) scheduled: AtomicBool,
    pub(crate) site: &'static Location<'static>,
}

impl<L> TaskHeader<L> {
    /// The header of a task that never ran (spawned on a closed loop).
    pub(crate) fn detached(
        shared: &Arc<CrossThread<L>>,
        site: &'static Location<'static>,
    ) -> Arc<TaskHeader<L>> {
        Arc::new(TaskHeader {
            shared: shared.clone(),
            key: TaskKey {
                index: u32::MAX,
                generation: 0,
            },
            scheduled: AtomicBool::new(true),
            site,
        })
    }
}

/// Where the end of a task is reported: implemented by the task layer's output cell, so
/// the reactor needs nothing of `Task` or `TaskError`.
pub(crate) trait TaskOutcome {
    /// The task panicked with `payload`. Gives the payload back when nobody awaits the
    /// task, for the loop's exception policy.
    fn panicked(
        &self,
        payload: Box<dyn Any + Send>,
        site: &'static Location<'static>,
    ) -> Option<Box<dyn Any + Send>>;

    /// The task is dropped unfinished (cancelled, or the loop closed); a finished task's
    /// output stays.
    fn abandon(&self);
}

/// A spawned future, its output already wired to its `Task` handle.
pub(crate) type TaskBody = Pin<Box<dyn Future<Output = ()>>>;

struct TaskSlot<L> {
    generation: u32,
    /// `None` while the task is being polled.
    body: Option<(TaskBody, Waker)>,
    header: Arc<TaskHeader<L>>,
    /// Delivers a panic, or the cancellation when the slot is dropped, to the `Task`
    /// handle.
    outcome: Arc<dyn TaskOutcome>,
    /// Cancelled while being polled: dropped when the poll returns.
    cancel_requested: bool,
}

impl<L> Drop for TaskSlot<L> {
    fn drop(&mut self) {
        // Finished tasks already hold their output or panic; anything else was cancelled.
        self.outcome.abandon();
    }
}

/// A task removed from the registry, to be dropped by the caller once no borrow of the
/// registry is held (its future's destructor may use the loop).
pub(crate) struct RemovedTask<L> {
    _slot: TaskSlot<L>,
}

/// The loop's live tasks.
pub(crate) struct TaskRegistry<L> {
    slots: Slab<TaskSlot<L>>,
    last_generation: u32,
}

impl<L> Default for TaskRegistry<L> {
    fn default() -> Self {
        TaskRegistry {
            slots: Slab::new(),
            last_generation: 0,
        }
    }
}

impl<L> TaskRegistry<L> {
    /// Adds a task whose wakers post to `shared`; `waker` makes the waker from the new
    /// header. Returns the header, which the `Task` handle keeps.
    pub(crate) fn insert(
        &mut self,
        shared: &Arc<CrossThread<L>>,
        body: TaskBody,
        outcome: Arc<dyn TaskOutcome>,
        site: &'static Location<'static>,
        waker: impl FnOnce(&Arc<TaskHeader<L>>) -> Waker,
    ) -> Arc<TaskHeader<L>> {
        self.last_generation = self.last_generation.wrapping_add(1);
        let entry = self.slots.vacant_entry();
        let key = TaskKey {
            index: u32::try_from(entry.key()).expect("fewer than 2^32 live tasks"),
            generation: self.last_generation,
        };
        let header = Arc::new(TaskHeader {
            shared: shared.clone(),
            key,
            scheduled: AtomicBool::new(true),
            site,
        });
        let waker = waker(&header);
        entry.insert(TaskSlot {
            generation: key.generation,
            body: Some((body, waker)),
            header: header.clone(),
            outcome,
            cancel_requested: false,
        });
        header
    }

    fn get_mut(&mut self, key: TaskKey) -> Option<&mut TaskSlot<L>> {
        self.slots
            .get_mut(key.index as usize)
            .filter(|slot| slot.generation == key.generation)
    }

    /// Takes the body out for a poll and clears the task's `scheduled` flag, so a wake
    /// from now on queues it again.
    pub(crate) fn begin_poll(
        &mut self,
        key: TaskKey,
    ) -> Option<(TaskBody, Waker, &'static Location<'static>)> {
        let slot = self.get_mut(key)?;
        let (body, waker) = slot.body.take()?;
        slot.header.scheduled.swap(false, Ordering::AcqRel);
        Some((body, waker, slot.header.site))
    }

    /// Puts the body back after a poll, or removes the task if it finished or was
    /// cancelled meanwhile; the caller drops what comes back.
    pub(crate) fn end_poll(
        &mut self,
        key: TaskKey,
        body: TaskBody,
        waker: Waker,
        finished: bool,
    ) -> Option<(RemovedTask<L>, TaskBody)> {
        let slot = self
            .get_mut(key)
            .expect("a task is not removed while it is polled");
        if finished || slot.cancel_requested {
            return Some((self.remove(key), body));
        }
        slot.body = Some((body, waker));
        None
    }

    /// Removes a task that is not being polled (the caller drops it), or marks one that is
    /// for removal when its poll returns.
    pub(crate) fn cancel(&mut self, key: TaskKey) -> Option<RemovedTask<L>> {
        let slot = self.get_mut(key)?;
        if slot.body.is_none() {
            slot.cancel_requested = true;
            return None;
        }
        Some(self.remove(key))
    }

    fn remove(&mut self, key: TaskKey) -> RemovedTask<L> {
        RemovedTask {
            _slot: self.slots.remove(key.index as usize),
        }
    }

    /// The outcome of a live task.
    pub(crate) fn outcome(&self, key: TaskKey) -> Option<Arc<dyn TaskOutcome>> {
        self.slots
            .get(key.index as usize)
            .filter(|slot| slot.generation == key.generation)
            .map(|slot| slot.outcome.clone())
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

impl<L> fmt::Debug for TaskRegistry<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskRegistry")
            .field("tasks", &self.slots.len())
            .finish()
    }
}
