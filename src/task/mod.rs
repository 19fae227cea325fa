//! Tasks: futures on the loop, and the bridges between callback code and async code.
//!
//! [`IoLoop::spawn`](crate::IoLoop::spawn) runs a future on the loop and returns a
//! [`Task`], a future of its output that any executor can await;
//! [`run_sync`](crate::IoLoop::run_sync) runs the loop until a future resolves;
//! [`add_future`](crate::IoLoop::add_future) turns a future into a callback and
//! [`completion`] a callback into a future; [`AsyncFd`] gives async code readiness of a
//! source the loop owns; `run_in_executor` (feature `blocking`) runs blocking work on a
//! thread pool. The registry that holds spawned futures and the wakers that
//! queue their polls belong to the reactor, whose iteration polls them; this layer builds
//! on the reactor only.

mod async_fd;
mod completion;
#[cfg(feature = "blocking")]
mod run_in_executor;
mod run_sync;
mod spawn;

pub use self::async_fd::ReadyFuture;
pub use self::completion::{Abandoned, Completer, Completion};
pub use self::spawn::TaskPanic;
// Documented at the crate root, their one path.
#[doc(hidden)]
pub use self::{
    async_fd::AsyncFd,
    completion::completion,
    run_sync::RunSyncError,
    spawn::{spawn, Task, TaskError},
};
