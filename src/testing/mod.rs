//! Helpers for testing loop code (Tornado's `tornado.testing`): run an async test body
//! on a fresh loop with a time limit that says what was still pending
//! ([`run_test`]); step a loop, move a [`ManualClock`](crate::ManualClock) loop to its
//! next deadline, or run a loop until a condition holds ([`step`],
//! [`advance_to_next_deadline`], [`run_until`]); a listening socket on a free port
//! ([`bind_unused_port`]); and a capture of this thread's log records, to assert that a
//! failure was reported ([`LogCapture`]).
//!
//! The top layer: it uses the reactor and time layers and nothing uses it.

mod drive;
mod logs;
mod ports;
mod run;

pub use drive::{advance_to_next_deadline, run_until, run_until_within, step};
pub use logs::{CapturedRecord, LogCapture};
pub use ports::{bind_refusing_port, bind_unused_port};
pub use run::run_test;
