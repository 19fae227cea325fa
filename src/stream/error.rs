//! [`StreamError`]: why an [`IoStream`](crate::IoStream) operation failed.

use std::fmt;
use std::io;
use std::sync::Arc;

/// Why an [`IoStream`](crate::IoStream) operation failed.
///
/// # Examples
///
/// ```
/// use ioloop::StreamError;
/// let e = StreamError::Closed { real_error: None };
/// assert_eq!(e.to_string(), "the stream is closed");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum StreamError {
    /// The stream is closed; `real_error` is the OS error that closed it, if any (`None`
    /// for a clean end of stream or a local `close`).
    Closed {
        /// The error that closed the stream.
        real_error: Option<Arc<io::Error>>,
    },
    /// `read_until` found no delimiter within `max_bytes`; the stream was closed.
    Unsatisfiable,
    /// The read buffer (or, for a write, the write buffer) would have grown past its
    /// limit.
    BufferFull,
    /// A read was started while another was pending.
    AlreadyReading,
}

impl StreamError {
    /// The OS error behind a [`Closed`](StreamError::Closed), if any.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = ioloop::StreamError::Closed { real_error: None };
    /// assert!(e.real_error().is_none());
    /// ```
    pub fn real_error(&self) -> Option<&io::Error> {
        match self {
            StreamError::Closed { real_error } => real_error.as_deref(),
            _ => None,
        }
    }
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Closed { real_error: None } => f.write_str("the stream is closed"),
            StreamError::Closed {
                real_error: Some(e),
            } => write!(f, "the stream is closed: {e}"),
            StreamError::Unsatisfiable => {
                f.write_str("unsatisfiable read: no delimiter within max_bytes")
            }
            StreamError::BufferFull => f.write_str("the stream's buffer is full"),
            StreamError::AlreadyReading => f.write_str("a read is already pending on this stream"),
        }
    }
}

impl std::error::Error for StreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.real_error().map(|e| e as _)
    }
}

impl From<StreamError> for io::Error {
    fn from(e: StreamError) -> Self {
        let kind = match &e {
            StreamError::Closed {
                real_error: Some(real),
            } => real.kind(),
            StreamError::Closed { real_error: None } => io::ErrorKind::UnexpectedEof,
            StreamError::Unsatisfiable | StreamError::BufferFull => io::ErrorKind::InvalidData,
            StreamError::AlreadyReading => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}
