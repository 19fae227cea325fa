//! [`LoopError`]: why running, stepping or posting to a loop failed.

use std::fmt;
use std::io;

/// Why a loop operation failed.
///
/// # Examples
///
/// ```
/// use ioloop::{IoLoop, LoopError};
///
/// let ioloop = IoLoop::new()?;
/// ioloop.add_callback(|ioloop| {
///     // Stepping a loop from inside its own callback is refused, not a deadlock.
///     assert!(matches!(ioloop.run_once(std::time::Duration::ZERO), Err(LoopError::Reentrant)));
/// });
/// ioloop.run_once(std::time::Duration::ZERO)?;
/// # Ok::<(), LoopError>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum LoopError {
    /// [`IoLoop::start`](crate::IoLoop::start) was called while the loop was already
    /// running (from one of its own callbacks).
    AlreadyRunning,
    /// [`IoLoop::run_once`](crate::IoLoop::run_once) was called from inside one of the
    /// loop's own callbacks; iterations never nest.
    Reentrant,
    /// The loop was closed (or, for a [`Remote`](crate::Remote), dropped).
    Closed,
    /// The operating system's poller failed.
    Io(io::Error),
}

impl fmt::Display for LoopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoopError::AlreadyRunning => f.write_str("the IoLoop is already running"),
            LoopError::Reentrant => {
                f.write_str("run_once called from inside a callback of the same IoLoop")
            }
            LoopError::Closed => f.write_str("the IoLoop is closed"),
            LoopError::Io(e) => write!(f, "poller error: {e}"),
        }
    }
}

impl std::error::Error for LoopError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoopError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for LoopError {
    fn from(e: io::Error) -> Self {
        LoopError::Io(e)
    }
}

impl From<LoopError> for io::Error {
    fn from(e: LoopError) -> Self {
        match e {
            LoopError::Io(e) => e,
            other => io::Error::other(other),
        }
    }
}
