//! Redis on the loop (feature `redis`): a client whose commands are futures or callbacks,
//! pipelined on one connection ([`RedisClient`]), and pub/sub that reconnects and
//! resubscribes by itself ([`Subscriber`]).
//!
//! Replies are RESP2 or RESP3 (`HELLO 3` is tried first), decoded by the
//! `redis-protocol` crate behind a header scan that enforces this crate's limits
//! ([`RedisOptions::max_bulk_len`], default 512 MiB like Redis's `proto-max-bulk-len`,
//! and [`RedisOptions::max_reply_buffer`]); every failure is a typed [`RedisError`]. The
//! layer builds on `net` (the connection), `stream`, `task` and `time`.
//!
//! # Examples
//!
//! ```no_run
//! use ioloop::redis::RedisClient;
//! let ioloop = ioloop::IoLoop::new()?;
//! let handle = ioloop.clone();
//! let n = ioloop.run_sync(async move {
//!     let redis = RedisClient::connect(&handle, "redis://127.0.0.1:6379").await?;
//!     redis.cmd(["INCR", "visits"]).await
//! })??;
//! println!("visit {:?}", n.as_int());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod client;
mod error;
mod messages;
mod pubsub;
pub(crate) mod resp;
mod url;

pub use self::client::{RedisClient, RedisOptions, Reply};
pub use self::error::RedisError;
pub use self::messages::{Messages, NextMessage, PubSubMessage};
pub use self::pubsub::{backoff, ConnectionEvent, Subscribed, Subscriber, SubscriberOptions};
pub use self::resp::{ProtocolError, Value, MAX_DEPTH};
pub use self::url::RedisUrl;
