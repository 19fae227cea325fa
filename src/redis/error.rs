//! [`RedisError`]: what a command, a connection or a subscription can fail with.

use std::fmt;
use std::sync::Arc;

use super::resp::ProtocolError;

/// Why a Redis command or connection failed. Cheap to clone: every command waiting on a
/// connection that fails gets the same error.
///
/// # Examples
///
/// ```
/// use ioloop::redis::RedisError;
/// let e = RedisError::Server("WRONGTYPE Operation against a key".into());
/// assert_eq!(e.code(), Some("WRONGTYPE"));
/// assert!(e.to_string().contains("WRONGTYPE"));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RedisError {
    /// The URL could not be parsed.
    Url(String),
    /// No connection could be made (the address and the reason).
    Connect(String),
    /// Redis answered with an error reply (`-ERR ...`).
    Server(String),
    /// The connection closed (the OS error, when there was one) before the reply came.
    Closed(Option<Arc<std::io::Error>>),
    /// The server broke the protocol or a limit: malformed RESP, a bulk string over
    /// [`max_bulk_len`](super::RedisOptions::max_bulk_len), a reply over
    /// [`max_reply_buffer`](super::RedisOptions::max_reply_buffer). The connection is
    /// closed.
    Protocol(ProtocolError),
    /// No reply within the command timeout (or, while connecting, the connect timeout).
    /// The connection is closed: the replies after the missing one could not be matched.
    Timeout,
    /// [`max_pending`](super::RedisOptions::max_pending) commands already wait for replies,
    /// or the write buffer is full; the command was not sent.
    QueueFull,
    /// The subscriber is between connections (it reconnects by itself).
    NotConnected,
}

impl RedisError {
    /// The error code of a server error (its first word: `ERR`, `WRONGTYPE`, `NOAUTH`...).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::redis::RedisError;
    /// let refused = RedisError::Server("NOAUTH Authentication required.".into());
    /// assert_eq!(refused.code(), Some("NOAUTH"));
    /// assert_eq!(RedisError::Timeout.code(), None); // not a server error
    /// ```
    pub fn code(&self) -> Option<&str> {
        match self {
            RedisError::Server(message) => message.split_whitespace().next(),
            _ => None,
        }
    }
}

impl fmt::Display for RedisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisError::Url(e) => write!(f, "invalid redis URL: {e}"),
            RedisError::Connect(e) => write!(f, "cannot connect to redis: {e}"),
            RedisError::Server(e) => write!(f, "redis error: {e}"),
            RedisError::Closed(Some(e)) => write!(f, "redis connection closed: {e}"),
            RedisError::Closed(None) => f.write_str("redis connection closed"),
            RedisError::Protocol(e) => write!(f, "redis protocol violation: {e}"),
            RedisError::Timeout => f.write_str("redis did not answer in time"),
            RedisError::QueueFull => f.write_str("too many redis commands waiting"),
            RedisError::NotConnected => f.write_str("not connected to redis"),
        }
    }
}

impl std::error::Error for RedisError {}
