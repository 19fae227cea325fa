//! The reactor and time layers (`src/reactor`, `src/time`) and `ioloop::testing`: timers,
//! fd handlers, the iteration order and run controls, `Remote`, panics, signals, sleeps
//! and timeouts, periodic callbacks, embedding, and the user values dropped while the
//! loop's state is borrowed. One test binary; each file is a module.

#[path = "../common/mod.rs"]
mod common;

mod embedding;
mod handlers;
mod io_check;
mod ordering;
mod panics;
mod periodic;
mod reentrant_drops;
mod remote;
mod signals;
mod testing_helpers;
mod time;
mod timer_model;
mod timer_precision;
mod timers;
