//! The types around [`IoStream`](crate::IoStream): the sockets it can own, its options and
//! its error.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;

/// What an [`IoStream`](crate::IoStream) can wrap: a TCP stream, a Unix stream, or a pipe
/// end (as a `File`). It must be non-blocking; [`IoStream::new`](crate::IoStream::new)
/// sets that for sockets, and pipes must already be.
///
/// # Examples
///
/// ```
/// use ioloop::StreamSocket;
/// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
/// let socket = StreamSocket::from(a);
/// assert!(matches!(socket, StreamSocket::Unix(_)));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum StreamSocket {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A Unix domain stream socket.
    Unix(UnixStream),
    /// A pipe end, or any other non-blocking fd usable through `Read`/`Write` on `&File`.
    Pipe(File),
}

impl StreamSocket {
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            StreamSocket::Tcp(s) => (&*s).read(buf),
            StreamSocket::Unix(s) => (&*s).read(buf),
            StreamSocket::Pipe(f) => (&*f).read(buf),
        }
    }

    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            StreamSocket::Tcp(s) => (&*s).write(buf),
            StreamSocket::Unix(s) => (&*s).write(buf),
            StreamSocket::Pipe(f) => (&*f).write(buf),
        }
    }

    pub(crate) fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            StreamSocket::Tcp(s) => s.set_nonblocking(true),
            StreamSocket::Unix(s) => s.set_nonblocking(true),
            StreamSocket::Pipe(_) => Ok(()),
        }
    }

    /// The socket's pending error (`SO_ERROR`), for an error event.
    pub(crate) fn take_error(&self) -> Option<io::Error> {
        match self {
            StreamSocket::Tcp(s) => s.take_error().ok().flatten(),
            StreamSocket::Unix(s) => s.take_error().ok().flatten(),
            StreamSocket::Pipe(_) => None,
        }
    }
}

impl AsFd for StreamSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            StreamSocket::Tcp(s) => s.as_fd(),
            StreamSocket::Unix(s) => s.as_fd(),
            StreamSocket::Pipe(f) => f.as_fd(),
        }
    }
}

impl From<TcpStream> for StreamSocket {
    fn from(s: TcpStream) -> Self {
        StreamSocket::Tcp(s)
    }
}

impl From<UnixStream> for StreamSocket {
    fn from(s: UnixStream) -> Self {
        StreamSocket::Unix(s)
    }
}

impl From<File> for StreamSocket {
    fn from(f: File) -> Self {
        StreamSocket::Pipe(f)
    }
}

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
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamOptions {
    /// The most unread bytes the stream buffers (default 100 MiB). When it is full the
    /// stream stops reading from the socket until a read takes bytes out; a read that
    /// could only be satisfied by buffering more fails with [`StreamError::BufferFull`].
    pub max_buffer_size: usize,
    /// The most bytes taken from the socket per `read` call (default 64 KiB).
    pub read_chunk_size: usize,
    /// The most bytes queued for writing; a `write` beyond it fails with
    /// [`StreamError::BufferFull`] and queues nothing (default: unbounded).
    pub max_write_buffer_size: Option<usize>,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            max_buffer_size: 100 * 1024 * 1024,
            read_chunk_size: 64 * 1024,
            max_write_buffer_size: None,
        }
    }
}

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
