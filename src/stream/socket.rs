//! [`StreamSocket`]: the sockets and pipes an [`IoStream`](crate::IoStream) can own, and
//! the byte-level I/O the stream does on them.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{ChildStderr, ChildStdin, ChildStdout};

#[cfg(feature = "tls")]
use super::tls::{TlsSocket, SEND_BUFFER_LIMIT};

/// What an [`IoStream`](crate::IoStream) can wrap: a TCP stream, a Unix stream, or a pipe
/// end (as a `File`, or a child process's `stdin`/`stdout`/`stderr`).
/// [`IoStream::new`](crate::IoStream::new) makes it non-blocking, whichever it is (a
/// blocking fd would stall the whole loop on its first read).
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
    /// TLS over one of the others (feature `tls`).
    #[cfg(feature = "tls")]
    Tls(Box<TlsSocket>),
}

/// A read from the write end of a pipe fails with `EBADF`. The stream reads it only when
/// the poller reports it in error, which for a write end means its reader closed: that
/// is what the next write would say (`EPIPE`), so say it now.
fn reader_gone(error: io::Error) -> io::Error {
    if rustix::io::Errno::from_io_error(&error) == Some(rustix::io::Errno::BADF) {
        io::ErrorKind::BrokenPipe.into()
    } else {
        error
    }
}

impl StreamSocket {
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            StreamSocket::Tcp(s) => (&*s).read(buf),
            StreamSocket::Unix(s) => (&*s).read(buf),
            StreamSocket::Pipe(f) => (&*f).read(buf).map_err(reader_gone),
            #[cfg(feature = "tls")]
            StreamSocket::Tls(tls) => tls.read(buf),
        }
    }

    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            StreamSocket::Tcp(s) => (&*s).write(buf),
            StreamSocket::Unix(s) => (&*s).write(buf),
            StreamSocket::Pipe(f) => (&*f).write(buf),
            #[cfg(feature = "tls")]
            StreamSocket::Tls(tls) => tls.write(buf),
        }
    }

    pub(crate) fn write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            StreamSocket::Tcp(s) => (&*s).write_vectored(bufs),
            StreamSocket::Unix(s) => (&*s).write_vectored(bufs),
            StreamSocket::Pipe(f) => (&*f).write_vectored(bufs),
            #[cfg(feature = "tls")]
            StreamSocket::Tls(tls) => tls.write_vectored(bufs),
        }
    }

    /// Sends what the transport holds besides the stream's write buffer (a TLS
    /// session's ciphertext), until the socket would block.
    pub(crate) fn send_pending(&self) -> io::Result<()> {
        match self {
            #[cfg(feature = "tls")]
            StreamSocket::Tls(tls) => tls.send_pending(),
            _ => Ok(()),
        }
    }

    /// How many of the bytes the stream counts as written may not have reached the
    /// kernel: a TLS session holding ciphertext holds at most `SEND_BUFFER_LIMIT` bytes'
    /// worth (0 when it holds none, and for other sockets).
    pub(crate) fn held_back(&self) -> usize {
        match self {
            #[cfg(feature = "tls")]
            StreamSocket::Tls(tls) if tls.wants_write() => SEND_BUFFER_LIMIT,
            _ => 0,
        }
    }

    /// Whether the transport holds bytes to send besides the stream's write buffer.
    pub(crate) fn wants_write(&self) -> bool {
        match self {
            #[cfg(feature = "tls")]
            StreamSocket::Tls(tls) => tls.wants_write(),
            _ => false,
        }
    }

    /// Whether bytes can be read now that no readiness event will announce (a TLS
    /// session's decrypted plaintext).
    pub(crate) fn has_unannounced_bytes(&self) -> bool {
        match self {
            #[cfg(feature = "tls")]
            StreamSocket::Tls(tls) => tls.has_plaintext(),
            _ => false,
        }
    }

    /// The TCP socket, also under TLS.
    pub(crate) fn tcp(&self) -> Option<&TcpStream> {
        match self {
            StreamSocket::Tcp(s) => Some(s),
            #[cfg(feature = "tls")]
            StreamSocket::Tls(tls) => tls.transport().tcp(),
            _ => None,
        }
    }

    /// Says "no more from this side" and keeps reading: TLS's close_notify (sent if the
    /// socket takes it now), then a TCP or Unix socket's write shutdown.
    #[cfg(any(feature = "http", feature = "websocket"))]
    pub(crate) fn shutdown_write(&self) {
        match self {
            StreamSocket::Tcp(s) => drop(s.shutdown(std::net::Shutdown::Write)),
            StreamSocket::Unix(s) => drop(s.shutdown(std::net::Shutdown::Write)),
            StreamSocket::Pipe(_) => {}
            #[cfg(feature = "tls")]
            StreamSocket::Tls(tls) => {
                tls.close_notify();
                tls.transport().shutdown_write();
            }
        }
    }

    /// Ends the transport's session before the socket closes (TLS: close_notify, sent
    /// if the socket takes it at once).
    pub(crate) fn end_session(&self) {
        #[cfg(feature = "tls")]
        if let StreamSocket::Tls(tls) = self {
            tls.close_notify();
        }
    }

    pub(crate) fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            StreamSocket::Tcp(s) => s.set_nonblocking(true),
            StreamSocket::Unix(s) => s.set_nonblocking(true),
            // std cannot make a pipe non-blocking: `FIONBIO` does, for any fd.
            StreamSocket::Pipe(f) => Ok(rustix::io::ioctl_fionbio(f, true)?),
            #[cfg(feature = "tls")]
            StreamSocket::Tls(tls) => tls.transport().set_nonblocking(),
        }
    }

    /// The socket's pending error (`SO_ERROR`), for an error event.
    pub(crate) fn take_error(&self) -> Option<io::Error> {
        match self {
            StreamSocket::Tcp(s) => s.take_error().ok().flatten(),
            StreamSocket::Unix(s) => s.take_error().ok().flatten(),
            StreamSocket::Pipe(_) => None,
            #[cfg(feature = "tls")]
            StreamSocket::Tls(tls) => tls.transport().take_error(),
        }
    }
}

impl AsFd for StreamSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            StreamSocket::Tcp(s) => s.as_fd(),
            StreamSocket::Unix(s) => s.as_fd(),
            StreamSocket::Pipe(f) => f.as_fd(),
            #[cfg(feature = "tls")]
            StreamSocket::Tls(tls) => tls.transport().as_fd(),
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

impl From<ChildStdin> for StreamSocket {
    fn from(pipe: ChildStdin) -> Self {
        StreamSocket::Pipe(File::from(OwnedFd::from(pipe)))
    }
}

impl From<ChildStdout> for StreamSocket {
    fn from(pipe: ChildStdout) -> Self {
        StreamSocket::Pipe(File::from(OwnedFd::from(pipe)))
    }
}

impl From<ChildStderr> for StreamSocket {
    fn from(pipe: ChildStderr) -> Self {
        StreamSocket::Pipe(File::from(OwnedFd::from(pipe)))
    }
}
