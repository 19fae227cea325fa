//! Child processes on the loop: [`Subprocess`] (Tornado's `tornado.process.Subprocess`),
//! feature `process`.
//!
//! A child's pipes are [`IoStream`](crate::IoStream)s, and its exit is watched by the
//! loop (a pidfd handler where the kernel has pidfds, else a `SIGCHLD` handler), so
//! waiting for it never blocks. This layer builds on `stream` and the reactor.

mod exit;
mod subprocess;

pub use subprocess::{Subprocess, WaitForExit};
