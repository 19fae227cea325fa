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
//!    timeout zero if callbacks are queued, else until the next deadline, else forever
//!    (while callbacks keep it from blocking, a running loop checks its sockets as its
//!    [`io_check`](IoLoopBuilder::io_check) policy says: by default at least every 61
//!    iterations and every millisecond);
//! 6. readiness is dispatched one source at a time; a handler removed by an earlier
//!    handler of the batch is not called.
//!
//! # Architecture
//!
//! One module per layer; each uses only the layers below it (`tests/layout.rs` checks
//! this on every `use`, and that no two files import each other):
//!
//! | layer | owns | uses |
//! |---|---|---|
//! | `websocket` | `WebSocket`, its routes and client, `Broadcast` (feature `websocket`) | web and below |
//! | `web` | `Application`: routing, handlers in both styles, static files (feature `web`) | http and below |
//! | `http` | HTTP/1.1 messages, the sans-IO parser and encoder, `HttpServer` (feature `http`) | net and below |
//! | [`net`] | listening sockets, [`TcpServer`], [`TcpClient`] | stream, task, time, reactor |
//! | [`stream`] | [`IoStream`]: buffered reads and writes on a socket the loop owns | reactor |
//! | [`task`] | [`Task`], [`run_sync`](IoLoop::run_sync), [`completion`], [`AsyncFd`] | reactor |
//! | [`time`] | clocks, [`Timeout`], [`PeriodicCallback`], [`sleep`], [`timeout`] | reactor |
//! | [`reactor`] | [`IoLoop`] and its iteration: the callback queue, [`Remote`], the timer heap, fd handlers, the task registry and wakers, the poller, panics in user code | nothing |
//!
//! The reactor holds every data structure its iteration runs (the timer heap and the
//! task registry included, as tokio's runtime holds its timer wheel and task cells);
//! `time` and `task` are the public faces built on them. The names most programs use are
//! re-exported here at the root; the rest are in their layer's module.
//!
//! # Features
//!
//! - `signals` (default): `IoLoop::add_signal_handler`, through `signal-hook`, and
//!   `ioloop::signal` for the signal numbers.
//! - `http` (default): `ioloop::http`, the HTTP/1.1 server (`httparse`, `httpdate`,
//!   `percent-encoding`).
//! - `web` (default): `ioloop::web`, the application layer (`mime_guess`).
//! - `websocket` (default): `ioloop::websocket`, WebSocket routes, client and broadcast
//!   (`sha1_smol`, `base64`).
//! - `deflate`: permessage-deflate for WebSocket (`flate2` on `zlib-rs`).
//! - `blocking` (default): `IoLoop::run_in_executor`, on the `blocking` crate's thread
//!   pool (its threads start on first use).
//! - `futures-io`: `IoStream::into_futures_io`, `futures-io`'s `AsyncRead`,
//!   `AsyncBufRead` and `AsyncWrite`.
//!
//! Coming from Tornado? `coming_from_tornado` (feature `blocking`) maps its names to
//! these and shows the patterns that differ.
//!
//! # Platform
//!
//! Unix (epoll on Linux and Android, kqueue on macOS and the BSDs, through `polling`).

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![deny(unsafe_op_in_unsafe_fn)]

mod error;
#[cfg(feature = "http")]
pub mod http;
pub mod net;
#[cfg(feature = "process")]
pub mod process;
pub mod reactor;
#[cfg(feature = "redis")]
pub mod redis;
pub mod stream;
pub mod task;
pub mod testing;
pub mod time;
#[cfg(feature = "web")]
pub mod web;
#[cfg(feature = "websocket")]
pub mod websocket;

pub use error::LoopError;
#[cfg(feature = "tls")]
pub use net::tls;
pub use net::{bind_sockets, bind_unix_socket, ConnectError, TcpClient, TcpServer, UdpSocket};
#[cfg(feature = "signals")]
pub use reactor::SignalHandler;

/// Unix signals for [`IoLoop::add_signal_handler`]: the signal numbers (`SIGINT`,
/// `SIGTERM`, ...) and the handler type, so a program needs no other crate for them.
///
/// # Examples
///
/// ```no_run
/// use ioloop::signal::{SIGINT, SIGTERM};
///
/// let ioloop = ioloop::IoLoop::new()?;
/// for signal in [SIGINT, SIGTERM] {
///     let handler = ioloop.add_signal_handler(signal, |ioloop| ioloop.stop())?;
///     # drop(handler);
/// }
/// ioloop.start()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(feature = "signals")]
pub mod signal {
    pub use crate::reactor::SignalHandler;
    pub use signal_hook::consts::signal::*;
}
pub use reactor::{
    CallbackKind, ExceptionPolicy, HandlerId, Interest, IoEvent, IoLoop, IoLoopBuilder, LoopStats,
    PanicReport, RegisterError, Remote,
};
pub use stream::{IoStream, StreamError, StreamOptions, StreamSocket};
pub use task::{completion, spawn, AsyncFd, RunSyncError, Task, TaskError};
pub use time::{
    sleep, sleep_until, timeout, yield_now, Clock, Deadline, ManualClock, PeriodicCallback,
    SystemClock, TimedOut, Timeout,
};

// Its snippets use `run_in_executor`, hence the feature.
#[cfg(feature = "blocking")]
#[doc = include_str!("../docs/coming-from-tornado.md")]
pub mod coming_from_tornado {}

/// Compiles and runs the README's Rust examples as doctests (with the `web` feature, which
/// one of them uses).
#[cfg(all(doctest, feature = "web"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
