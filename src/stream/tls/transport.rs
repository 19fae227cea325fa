//! [`TlsSocket`]: the TLS transport under `IoStream`, a socket and its rustls session,
//! read and written as one socket, so every stream operation works over TLS unchanged.
//!
//! rustls is sans-IO: ciphertext goes in with `read_tls` and out with `write_tls`,
//! plaintext comes out of its reader and goes into its writer. A read here returns the
//! plaintext rustls holds first and pulls ciphertext from the socket only when it holds
//! none; a write hands plaintext to rustls (which encrypts it at once, up to
//! `SEND_BUFFER_LIMIT` of ciphertext not yet sent) and sends what the socket takes.
//! The stream watches for writability while rustls has ciphertext to send
//! (`TlsSocket::wants_write`), and reads again without waiting for the poller when
//! rustls already holds plaintext a read needs (`TlsSocket::has_plaintext`): the socket
//! would never become readable for bytes that already left it.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Read, Write};

use crate::stream::StreamSocket;

/// The most ciphertext rustls keeps waiting for the socket; a write beyond it stays in
/// the stream's own (bounded) write buffer.
pub(crate) const SEND_BUFFER_LIMIT: usize = 64 * 1024;

/// A socket speaking TLS after its handshake: what [`StreamSocket::Tls`] holds. Made by
/// the TLS handshakes of `ioloop::tls`.
///
/// # Examples
///
/// ```
/// use ioloop::tls::{self, rustls, TlsAcceptor};
/// use ioloop::{IoLoop, IoStream, StreamSocket};
/// # use std::sync::Arc;
///
/// # let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
/// # let key = rustls::pki_types::PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der());
/// # let config = tls::server_config(vec![cert.cert.der().clone()], key.into())?;
/// # let acceptor = TlsAcceptor::new(config);
/// # let mut roots = rustls::RootCertStore::empty();
/// # roots.add(cert.cert.der().clone())?;
/// # let client_config = Arc::new(tls::client_config(roots));
/// let ioloop = IoLoop::new()?;
/// let (a, b) = std::os::unix::net::UnixStream::pair()?;
/// let (a, b) = (IoStream::new(&ioloop, a)?, IoStream::new(&ioloop, b)?);
/// let server = ioloop.spawn(async move { a.start_tls_server(&acceptor).await });
/// let client = async move { b.start_tls_client(client_config, "localhost").await };
/// let client = ioloop.run_sync(client)??;
/// # let _server = ioloop.run_sync(server)???;
/// // The stream's socket is now a TlsSocket over the Unix socket.
/// let over_unix = client.with_socket(|socket| match socket {
///     StreamSocket::Tls(tls) => matches!(tls.transport(), StreamSocket::Unix(_)),
///     _ => false,
/// });
/// assert_eq!(over_unix, Some(true));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TlsSocket {
    transport: StreamSocket,
    session: RefCell<rustls::Connection>,
    /// rustls may hold plaintext not read yet: the last read filled its buffer (or, at
    /// first, the handshake's last flight brought some). Kept by [`read`](Self::read), so
    /// asking costs nothing.
    plaintext_left: std::cell::Cell<bool>,
}

/// `Read` and `Write` on a shared transport, for rustls's `read_tls` and `write_tls`
/// (here and in the handshake).
pub(crate) struct SocketIo<'a>(pub(crate) &'a StreamSocket);

impl Read for SocketIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

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

fn send_pending(session: &mut rustls::Connection, transport: &StreamSocket) -> io::Result<()> {
    while session.wants_write() {
        if session.write_tls(&mut SocketIo(transport))? == 0 {
            break;
        }
    }
    Ok(())
}

/// A send that stopped because the socket is full is not a failure of the write.
fn sent_or_blocked(sent: io::Result<()>) -> io::Result<()> {
    match sent {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        other => other,
    }
}

impl fmt::Debug for TlsSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSocket")
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}
