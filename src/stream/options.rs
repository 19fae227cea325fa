//! [`StreamOptions`]: the limits of an [`IoStream`](crate::IoStream).

/// Limits of an [`IoStream`](crate::IoStream) (Tornado's `max_buffer_size`,
/// `read_chunk_size`, `max_write_buffer_size`).
///
/// # Examples
///
/// ```
/// let options = ioloop::StreamOptions {
///     max_buffer_size: 5 << 20,
///     ..Default::default()
/// };
/// assert_eq!(options.read_chunk_size, 64 * 1024);
/// assert_eq!(options.max_write_buffer_size, Some(100 << 20));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamOptions {
    /// The most unread bytes the stream buffers (default 100 MiB). When it is full the
    /// stream stops reading from the socket until a read takes bytes out; a read that
    /// could only be satisfied by buffering more fails with
    /// [`StreamError::BufferFull`](crate::StreamError::BufferFull).
    pub max_buffer_size: usize,
    /// The most bytes taken from the socket per `read` call (default 64 KiB).
    pub read_chunk_size: usize,
    /// The most bytes queued for writing (default 100 MiB, the same bound as the read
    /// side; `None`: unbounded, as in Tornado). A write that would pass it fails with
    /// [`StreamError::BufferFull`](crate::StreamError::BufferFull) and queues nothing; the
    /// stream stays usable, and most programs close it then (its peer has stopped
    /// reading).
    ///
    /// The default is finite so that a peer that never reads cannot grow a program
    /// without bound; it is large because a program that wants less should not rely on
    /// a refused write but apply backpressure (see
    /// [`IoStream::drained_then`](crate::IoStream::drained_then)) or set its own bound.
    pub max_write_buffer_size: Option<usize>,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            max_buffer_size: 100 * 1024 * 1024,
            read_chunk_size: 64 * 1024,
            max_write_buffer_size: Some(100 * 1024 * 1024),
        }
    }
}

/// [`StreamOptions`] as a stream keeps them: one word each, no write bound being
/// `usize::MAX`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_buffer_size: usize,
    pub(crate) read_chunk_size: usize,
    pub(crate) max_write_buffer_size: usize,
}

impl From<StreamOptions> for Limits {
    fn from(options: StreamOptions) -> Limits {
        Limits {
            max_buffer_size: options.max_buffer_size,
            read_chunk_size: options.read_chunk_size.max(1),
            max_write_buffer_size: options.max_write_buffer_size.unwrap_or(usize::MAX),
        }
    }
}
