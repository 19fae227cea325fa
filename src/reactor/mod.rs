//! The reactor: the [`IoLoop`] and everything one of its iterations runs.
//!
//! It owns the callback queue, the cross-thread queue behind [`Remote`], the timer heap,
//! the fd handler registry, the registry of spawned tasks and their wakers, the poller,
//! the clock and the handling of panics in user code. It is the bottom layer: it imports
//! from no other folder (only `error.rs`), and every other layer builds on it.
//!
//! Files, from the leaves up:
//! - `queue.rs`: the run queue's entry types (a leaf: it imports nothing);
//! - `clock.rs`, `interest.rs`, `failure.rs`, `timer_heap.rs`, `registration.rs`,
//!   `cross_thread.rs`, `task_registry.rs`, `poll.rs`: the loop's data structures, which
//!   never name [`IoLoop`] (where they hold closures taking the loop, they take its type
//!   as a parameter);
//! - `ioloop.rs`: the handle, its state and the iteration;
//! - `builder.rs`, `timeouts.rs`, `handlers.rs`, `event.rs`, `remote.rs`, `wakers.rs`,
//!   `stats.rs`, `signals.rs`: the rest of the API, each extending [`IoLoop`] from above.
//!
//! The loop's clock and timeout handle are public under [`crate::time`], next to the
//! time futures built on them; the task registry's public face is [`crate::task`].

pub(crate) mod builder;
pub(crate) mod clock;
pub(crate) mod cross_thread;
pub(crate) mod event;
pub(crate) mod failure;
pub(crate) mod handlers;
pub(crate) mod interest;
pub(crate) mod ioloop;
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
pub use self::failure::{CallbackKind, ExceptionPolicy, PanicReport};
pub use self::interest::Interest;
pub use self::ioloop::{IoLoop, WeakIoLoop};
pub use self::registration::{HandlerId, RegisterError};
pub use self::remote::Remote;
#[cfg(feature = "signals")]
pub use self::signals::SignalHandler;
pub use self::stats::LoopStats;
