//! A callback-based reactor in the style of Tornado's `IOLoop`.
//!
//! An [`IoLoop`] owns sockets and a timer heap and calls boxed closures when a source is
//! ready or a deadline passes:
//!
//! - [`IoLoop::add_callback`]: run on the next iteration (FIFO);
//! - [`IoLoop::add_timeout`] / [`call_later`](IoLoop::call_later) /
//!   [`call_at`](IoLoop::call_at): run at a deadline on the loop's [`Clock`];
//! - [`IoLoop::add_handler`]: run when an fd the loop owns is readable or writable
//!   (level-triggered);
//! - [`PeriodicCallback`]: run every period on a fixed grid;
//! - [`Remote`]: post callbacks or stop the loop from any thread.
//!
//! Run it with [`IoLoop::start`] until [`IoLoop::stop`], or step it from a host loop with
//! [`IoLoop::run_once`], [`IoLoop::poll_timeout`] and the loop's fd (`AsFd`). Every
//! callback runs under `catch_unwind`: a panic is reported with the `file:line` where the
//! callback was registered, and the loop keeps going (see [`ExceptionPolicy`]).
//!
//! # Examples
//!
//! ```
//! use ioloop::{IoLoop, PeriodicCallback};
//! use std::time::Duration;
//!
//! let ioloop = IoLoop::new()?;
//! let ticks = PeriodicCallback::new(&ioloop, Duration::from_millis(2), |_, _| println!("tick"));
//! ticks.start();
//! ioloop.add_timeout(Duration::from_millis(7), move |ioloop| {
//!     ticks.stop();
//!     ioloop.stop();
//! });
//! ioloop.start()?;
//! # Ok::<(), ioloop::LoopError>(())
//! ```
//!
//! # Iteration order
//!
//! Each iteration of the loop, in Tornado's order:
//!
//! 1. callbacks posted from other threads move into the local queue;
//! 2. the number of queued callbacks is snapshotted: callbacks added from now on wait for
//!    the next iteration;
//! 3. every timeout with `deadline <= now` is collected before any of them runs;
//! 4. the snapshot of callbacks runs, then the collected timeouts (skipping any removed
//!    meanwhile, also by an earlier timeout of the same batch);
//! 5. if [`IoLoop::stop`] was called the loop stops here; otherwise it polls, with
//!    timeout zero if callbacks are queued, else until the next deadline, else forever;
//! 6. readiness is dispatched one source at a time; a handler removed by an earlier
//!    handler of the batch is not called.
//!
//! # Platform
//!
//! Unix (epoll on Linux and Android, kqueue on macOS and the BSDs, through `polling`).

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![deny(unsafe_op_in_unsafe_fn)]

mod async_fd;
mod clock;
mod completion;
mod error;
mod failure;
mod handlers;
mod ioloop;
mod periodic;
mod poll;
mod remote;
mod run_sync;
mod signals;
mod stream;
mod stream_async;
mod stream_buffer;
mod stream_callbacks;
mod stream_types;
mod task;
mod tcp_client;
mod tcp_server;
mod time;
mod timers;

pub use async_fd::{AsyncFd, Readiness};
pub use clock::{Clock, ManualClock, SystemClock};
pub use completion::{completion, Abandoned, Completer, Completion};
pub use error::LoopError;
pub use failure::{CallbackKind, ExceptionPolicy, PanicReport};
pub use handlers::{HandlerId, Interest, IoEvent, RegisterError};
pub use ioloop::{IoLoop, IoLoopBuilder, LoopStats};
pub use periodic::PeriodicCallback;
pub use remote::Remote;
pub use run_sync::RunSyncError;
pub use signals::SignalHandler;
pub use stream::IoStream;
pub use stream_async::{StreamRead, StreamReadInto, StreamWrite};
pub use stream_types::{StreamError, StreamOptions, StreamSocket};
pub use task::{Task, TaskError, TaskPanic};
pub use tcp_client::{ConnectError, TcpClient};
pub use tcp_server::{
    bind_sockets, bind_unix_socket, TcpServer, ACCEPTS_PER_EVENT, ACCEPT_BACKOFF,
};
pub use time::{sleep, sleep_until, timeout, yield_now, Sleep, TimedOut, YieldNow};
pub use timers::{Deadline, Timeout};

/// Compiles and runs the README's Rust example as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
