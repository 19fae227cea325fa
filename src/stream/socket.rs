//! [`StreamSocket`]: the sockets and pipes an [`IoStream`](crate::IoStream) can own, and
//! the byte-level I/O the stream does on them.

#[cfg(feature = "tls")]
use std::cell::RefCell;
#[cfg(feature = "tls")]
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::{ChildStderr, ChildStdin, ChildStdout};

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

/// What the loop holds for a stream's registration: the fd of a socket the stream owns.
/// The stream removes the registration before it closes the socket, so the fd is valid
/// whenever the loop uses it.
pub(crate) struct RegisteredFd(RawFd);

impl RegisteredFd {
    pub(crate) fn of(socket: &StreamSocket) -> RegisteredFd {
        RegisteredFd(socket.as_fd().as_raw_fd())
    }
}

impl AsFd for RegisteredFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the stream owning the socket removes this registration before closing
        // it (see `IoStream::close_with` and `StreamCore`'s `Drop`).
        unsafe { BorrowedFd::borrow_raw(self.0) }
    }
}

// ---- TLS (feature `tls`) ----
//
// The TLS transport under `IoStream`: a socket and its rustls session,
// read and written as one socket, so every stream operation works over TLS unchanged.
//
// rustls is sans-IO: ciphertext goes in with `read_tls` and out with `write_tls`,
// plaintext comes out of its reader and goes into its writer. A read here returns the
// plaintext rustls holds first and pulls ciphertext from the socket only when it holds
// none; a write hands plaintext to rustls (which encrypts it at once, up to
// `SEND_BUFFER_LIMIT` of ciphertext not yet sent) and sends what the socket takes.
// The stream watches for writability while rustls has ciphertext to send
// (`TlsSocket::wants_write`), and reads again without waiting for the poller when
// rustls already holds plaintext a read needs (`TlsSocket::has_plaintext`): the socket
// would never become readable for bytes that already left it.

#[cfg(feature = "tls")]
/// The most ciphertext rustls keeps waiting for the socket; a write beyond it stays in
/// the stream's own (bounded) write buffer.
pub(crate) const SEND_BUFFER_LIMIT: usize = 64 * 1024;

#[cfg(feature = "tls")]
/// A socket speaking TLS after its handshake: what [`StreamSocket::Tls`] holds. Made by
/// the TLS handshakes of `ioloop::tls`.
///
/// # Examples
///
/// See [`transport`](TlsSocket::transport).
pub struct TlsSocket {
    transport: StreamSocket,
    session: RefCell<rustls::Connection>,
    /// rustls may hold plaintext not read yet: the last read filled its buffer (or, at
    /// first, the handshake's last flight brought some). Kept by [`read`](Self::read), so
    /// asking costs nothing.
    plaintext_left: std::cell::Cell<bool>,
}

#[cfg(feature = "tls")]
/// `Read` and `Write` on a shared transport, for rustls's `read_tls` and `write_tls`
/// (here and in the handshake).
pub(crate) struct SocketIo<'a>(pub(crate) &'a StreamSocket);

#[cfg(feature = "tls")]
impl Read for SocketIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

#[cfg(feature = "tls")]
impl Write for SocketIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    /// `write_tls` hands every queued record over at once: one `writev` sends them all
    /// (the default would send only the first, a syscall and a segment per record).
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.0.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(feature = "tls")]
impl TlsSocket {
    /// Wraps a transport whose handshake `session` completed.
    pub(crate) fn new(transport: StreamSocket, mut session: rustls::Connection) -> TlsSocket {
        session.set_buffer_limit(Some(SEND_BUFFER_LIMIT));
        let plaintext_left = session
            .process_new_packets()
            .is_ok_and(|state| state.plaintext_bytes_to_read() > 0);
        TlsSocket {
            transport,
            session: RefCell::new(session),
            plaintext_left: std::cell::Cell::new(plaintext_left),
        }
    }

    /// The socket under the session (for its options and addresses; reading or writing
    /// it directly would corrupt the session).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(stream: &ioloop::IoStream) {
    /// use ioloop::StreamSocket;
    /// stream.with_socket(|socket| {
    ///     if let StreamSocket::Tls(tls) = socket {
    ///         if let StreamSocket::Tcp(tcp) = tls.transport() {
    ///             println!("TLS with {:?}", tcp.peer_addr());
    ///         }
    ///     }
    /// });
    /// # }
    /// ```
    pub fn transport(&self) -> &StreamSocket {
        &self.transport
    }

    /// Plaintext into `buf`: what rustls holds, else what the socket's next ciphertext
    /// decrypts to. `Ok(0)` after the peer's close_notify; `UnexpectedEof` when the peer
    /// closed the connection without one; `InvalidData` with the TLS error (after sending
    /// its alert) when the peer broke the protocol.
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        // A short read (or none) leaves rustls without plaintext; a full one may not.
        let read = self.read_session(buf);
        self.plaintext_left
            .set(matches!(read, Ok(n) if n == buf.len() && n > 0));
        read
    }

    fn read_session(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut session = self.session.borrow_mut();
        loop {
            let got = read_plaintext(&mut session, buf)?;
            if got > 0 || buf.is_empty() {
                return Ok(got);
            }
            let arrived = session.read_tls(&mut SocketIo(&self.transport))?;
            let processed = session.process_new_packets();
            // What rustls has to say now (an alert, a key update's answer) goes out if
            // the socket takes it; otherwise when it is writable.
            let _ = send_pending(&mut session, &self.transport);
            if let Err(e) = processed {
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            if arrived == 0 {
                // The peer ended the connection: with close_notify, plaintext reads say
                // end of stream; without, `UnexpectedEof`.
                return match session.reader().read(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        Err(io::ErrorKind::UnexpectedEof.into())
                    }
                    result => result,
                };
            }
        }
    }

    /// Hands `buf` to rustls and sends what the socket takes. `WouldBlock` when rustls
    /// holds [`SEND_BUFFER_LIMIT`] of unsent ciphertext already.
    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let mut session = self.session.borrow_mut();
        let taken = session.writer().write(buf)?;
        sent_or_blocked(send_pending(&mut session, &self.transport))?;
        if taken == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(taken)
    }

    /// [`write`](Self::write) of several slices.
    pub(crate) fn write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let mut session = self.session.borrow_mut();
        let taken = session.writer().write_vectored(bufs)?;
        sent_or_blocked(send_pending(&mut session, &self.transport))?;
        if taken == 0 && bufs.iter().any(|b| !b.is_empty()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(taken)
    }

    /// Sends the ciphertext rustls holds, until the socket would block.
    pub(crate) fn send_pending(&self) -> io::Result<()> {
        send_pending(&mut self.session.borrow_mut(), &self.transport)
    }

    /// Whether rustls holds ciphertext the socket has not taken.
    pub(crate) fn wants_write(&self) -> bool {
        self.session.borrow().wants_write()
    }

    /// Whether rustls may hold decrypted plaintext not read yet (bytes no readiness event
    /// will announce: they left the socket already). At worst a read finds none.
    pub(crate) fn has_plaintext(&self) -> bool {
        self.plaintext_left.get()
    }

    /// Queues close_notify and sends it if the socket takes it now (closing does not
    /// wait for it).
    pub(crate) fn close_notify(&self) {
        let mut session = self.session.borrow_mut();
        session.send_close_notify();
        let _ = send_pending(&mut session, &self.transport);
    }

    /// The protocol agreed through ALPN.
    pub(crate) fn alpn_protocol(&self) -> Option<Vec<u8>> {
        self.session.borrow().alpn_protocol().map(<[u8]>::to_vec)
    }

    /// The name the client asked for (SNI), on the server's side.
    pub(crate) fn server_name(&self) -> Option<String> {
        match &*self.session.borrow() {
            rustls::Connection::Server(server) => server.server_name().map(str::to_owned),
            rustls::Connection::Client(_) => None,
        }
    }
}

#[cfg(feature = "tls")]
/// Plaintext rustls holds, as much as fits (`Ok(0)`: none now, or the close_notify).
fn read_plaintext(session: &mut rustls::Connection, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match session.reader().read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            // Deliver what came first; the next read reports the error.
            Err(_) if got > 0 => break,
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(feature = "tls")]
fn send_pending(session: &mut rustls::Connection, transport: &StreamSocket) -> io::Result<()> {
    while session.wants_write() {
        if session.write_tls(&mut SocketIo(transport))? == 0 {
            break;
        }
    }
    Ok(())
}

#[cfg(feature = "tls")]
/// A send that stopped because the socket is full is not a failure of the write.
fn sent_or_blocked(sent: io::Result<()>) -> io::Result<()> {
    match sent {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        other => other,
    }
}

#[cfg(feature = "tls")]
impl fmt::Debug for TlsSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSocket")
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

// Without a loop or a socket (a file stands in for it), so that Miri runs the borrow of a
// registered fd.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registered_fd_borrows_the_open_file_it_was_made_from() {
        let file = File::open(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
        let socket = StreamSocket::Pipe(file);
        let registered = RegisteredFd::of(&socket);
        let borrowed = registered.as_fd();
        assert_eq!(borrowed.as_raw_fd(), socket.as_fd().as_raw_fd());
        // The borrow is the live file: a duplicate of it reads the file.
        let mut text = String::new();
        File::from(borrowed.try_clone_to_owned().unwrap())
            .read_to_string(&mut text)
            .unwrap();
        assert!(text.contains("[package]"));
    }
}
