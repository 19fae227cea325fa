//! The task layer (`src/task`): spawned tasks and their handles, `run_sync`, wakers,
//! `AsyncFd`, `run_in_executor`, and futures and runtimes from elsewhere (tokio, the
//! ecosystem's channels). One test binary; each file is a module.

#[path = "../common/mod.rs"]
mod common;

mod async_fd;
mod interop;
mod run_in_executor;
mod tasks;
mod tokio_bridge_example;
