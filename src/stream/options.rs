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
    ///
    /// At most 2 GiB: a larger value counts as 2 GiB.
    pub max_buffer_size: usize,
    /// The most bytes taken from the socket per `read` call (default 64 KiB; at most
    /// 1 GiB, and 0 counts as 1).
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
    /// `None`, or a bound of 2 GiB or more, counts as 2 GiB − 1: what a stream's write
    /// buffer can hold.
    pub max_write_buffer_size: Option<usize>,
}

/// The default bound of each buffer (read and write): 100 MiB.
const DEFAULT_BUFFER_BOUND: usize = 100 * 1024 * 1024;

/// The default read chunk: 64 KiB.
const DEFAULT_READ_CHUNK: usize = 64 * 1024;

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            max_buffer_size: DEFAULT_BUFFER_BOUND,
            read_chunk_size: DEFAULT_READ_CHUNK,
            max_write_buffer_size: Some(DEFAULT_BUFFER_BOUND),
        }
    }
}

/// The largest read buffer a stream keeps: a larger
/// [`max_buffer_size`](StreamOptions::max_buffer_size) counts as this (so that the read
/// buffer's offsets fit in 32 bits).
const MAX_READ_BUFFER: usize = 1 << 31;

/// The largest read chunk: a larger [`read_chunk_size`](StreamOptions::read_chunk_size)
/// counts as this.
const MAX_READ_CHUNK: usize = 1 << 30;

/// The largest write bound: `None` and larger bounds count as this (so that the write
/// buffer's offsets fit in 32 bits).
const MAX_WRITE_BUFFER: usize = (1 << 31) - 1;

/// [`StreamOptions`] as a stream keeps them: 32 bits each (a stream keeps its limits for
/// its whole life, and an idle connection's size is mostly its stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    max_buffer_size: u32,
    read_chunk_size: u32,
    max_write_buffer_size: u32,
}

impl Limits {
    /// The limits of [`StreamOptions::default`].
    pub(crate) const DEFAULT: Limits = Limits {
        max_buffer_size: DEFAULT_BUFFER_BOUND as u32,
        read_chunk_size: DEFAULT_READ_CHUNK as u32,
        max_write_buffer_size: DEFAULT_BUFFER_BOUND as u32,
    };

    /// The most unread bytes buffered; at most [`MAX_READ_BUFFER`].
    pub(crate) fn max_buffer_size(self) -> usize {
        self.max_buffer_size as usize
    }

    /// The most bytes taken per socket read; at least 1.
    pub(crate) fn read_chunk_size(self) -> usize {
        self.read_chunk_size as usize
    }

    /// The most bytes queued for writing; at most [`MAX_WRITE_BUFFER`].
    pub(crate) fn max_write_buffer_size(self) -> usize {
        self.max_write_buffer_size as usize
    }
}

impl From<StreamOptions> for Limits {
    fn from(options: StreamOptions) -> Limits {
        let narrow = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Limits {
            max_buffer_size: narrow(options.max_buffer_size.min(MAX_READ_BUFFER)),
            read_chunk_size: narrow(options.read_chunk_size.clamp(1, MAX_READ_CHUNK)),
            max_write_buffer_size: narrow(
                options
                    .max_write_buffer_size
                    .map_or(MAX_WRITE_BUFFER, |max| max.min(MAX_WRITE_BUFFER)),
            ),
        }
    }
}

#[cfg(feature = "tls")]
impl From<Limits> for StreamOptions {
    fn from(limits: Limits) -> StreamOptions {
        StreamOptions {
            max_buffer_size: limits.max_buffer_size(),
            read_chunk_size: limits.read_chunk_size(),
            max_write_buffer_size: match limits.max_write_buffer_size() {
                MAX_WRITE_BUFFER => None,
                bound => Some(bound),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_beyond_32_bits_saturate() {
        let huge = StreamOptions {
            max_buffer_size: usize::MAX,
            read_chunk_size: usize::MAX,
            max_write_buffer_size: Some(u32::MAX as usize + 1),
        };
        let limits = Limits::from(huge);
        assert_eq!(limits.max_buffer_size(), MAX_READ_BUFFER);
        assert_eq!(limits.read_chunk_size(), MAX_READ_CHUNK);
        assert_eq!(limits.max_write_buffer_size(), MAX_WRITE_BUFFER);
        let default = Limits::from(StreamOptions::default());
        assert_eq!(default, Limits::DEFAULT);
        assert_eq!(default.max_buffer_size(), 100 << 20);
        assert_eq!(default.read_chunk_size(), 64 << 10);
        assert_eq!(default.max_write_buffer_size(), 100 << 20);
        let tiny = Limits::from(StreamOptions {
            read_chunk_size: 0,
            max_write_buffer_size: None,
            ..StreamOptions::default()
        });
        assert_eq!(tiny.read_chunk_size(), 1);
        assert_eq!(tiny.max_write_buffer_size(), MAX_WRITE_BUFFER);
    }
}
