//! Child processes on the loop: [`Subprocess`] (Tornado's `tornado.process.Subprocess`),
//! feature `process`.
//!
//! Above `stream` (a child's pipes are [`IoStream`](crate::IoStream)s) and `reactor` (its
//! exit is a pidfd handler or a signal handler); `subprocess.rs` is the public face and
//! `exit.rs` the watcher.

mod exit;
mod subprocess;

pub use subprocess::{Subprocess, WaitForExit};
