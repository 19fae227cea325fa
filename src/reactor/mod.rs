//! The reactor: the [`IoLoop`] and everything one of its iterations runs.
//!
//! It owns the callback queue, the cross-thread queue behind [`Remote`], the timer heap,
//! the fd handler registry, the registry of spawned tasks and their wakers, the poller,
//! the clock and the handling of panics in user code. It is the bottom layer: it imports
//! from no other folder (only `error.rs`), and every other layer builds on it.
//!
//! The loop's data structures (the timer heap, the handler registry, the task registry,
//! the cross-thread queue) are tested on their own, without a running loop; the OS
//! poller is behind a small backend of the loop's own (`sys/`: epoll on Linux, the
//! `polling` crate elsewhere), so nothing above it names a platform.
//!
//! The loop's clock and timeout handle are public under [`crate::time`], next to the
//! time futures built on them; the task registry's public face is [`crate::task`].

pub(crate) mod builder;
pub(crate) mod clock;
pub(crate) mod cross_thread;
pub(crate) mod event;
pub(crate) mod handlers;
pub(crate) mod interest;
pub(crate) mod ioloop;
pub(crate) mod panics;
pub(crate) mod poll;
pub(crate) mod post_spin;
pub(crate) mod queue;
pub(crate) mod raw_task;
pub(crate) mod registration;
pub(crate) mod remote;
#[cfg(feature = "signals")]
pub(crate) mod signals;
pub(crate) mod stats;
pub(crate) mod sys;
pub(crate) mod task_registry;
pub(crate) mod timeouts;
pub(crate) mod timer_heap;
pub(crate) mod wakers;

pub use self::builder::IoLoopBuilder;
pub use self::event::IoEvent;
pub use self::interest::Interest;
pub use self::ioloop::{IoLoop, WeakIoLoop};
pub use self::panics::{CallbackKind, PanicPolicy, PanicReport};
pub use self::registration::{HandlerId, RegisterError};
pub use self::remote::Remote;
#[cfg(feature = "signals")]
pub use self::signals::SignalHandler;
pub use self::stats::LoopStats;
