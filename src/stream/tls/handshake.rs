//! The TLS handshake, run in the loop: [`TlsAcceptor`] for servers, the client side for
//! [`TcpClient::connect_tls`](crate::TcpClient::connect_tls), and `start_tls` on a plain
//! stream. Each drives rustls over an [`AsyncFd`] until the session is established, then
//! registers the socket and its session as a new [`IoStream`].

use std::fmt;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use rustls::{ClientConfig, ServerConfig};

use super::transport::{SocketIo, TlsSocket};
use crate::reactor::ioloop::IoLoop;
use crate::stream::{IoStream, StreamOptions, StreamSocket};
use crate::task::AsyncFd;
use crate::time::timeout;

/// How long a server waits for a client to finish its handshake, unless
/// [`TlsAcceptor::handshake_timeout`] says otherwise (a client that connects and stalls
/// costs a socket until then).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a TLS handshake failed.
///
/// # Examples
///
/// ```
/// let error = ioloop::tls::TlsError::TimedOut;
/// assert_eq!(error.to_string(), "the TLS handshake did not finish in time");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// TLS itself failed: the peer's certificate was refused (unknown issuer, wrong
    /// name, expired), no protocol version or cipher in common, a malformed message. The
    /// peer was sent the matching alert.
    Handshake(rustls::Error),
    /// The connection failed: [`UnexpectedEof`](io::ErrorKind::UnexpectedEof) if the peer
    /// closed it during the handshake.
    Io(io::Error),
    /// The handshake did not finish in time.
    TimedOut,
    /// The peer sent plain text where a TLS handshake should start (a server answering
    /// HTTP answered it `400 Bad Request`).
    NotTls,
    /// `start_tls` on a stream that cannot start TLS now (a read or write pending, bytes
    /// already read, closed, TLS already): the reason.
    NotReady(&'static str),
    /// The client's server name is neither a DNS name nor an IP address.
    InvalidServerName(String),
    /// The loop closed during the handshake.
    LoopClosed,
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Handshake(e) => write!(f, "TLS handshake failed: {e}"),
            TlsError::Io(e) => write!(f, "connection failed during the TLS handshake: {e}"),
            TlsError::TimedOut => f.write_str("the TLS handshake did not finish in time"),
            TlsError::NotTls => f.write_str("the peer does not speak TLS"),
            TlsError::NotReady(why) => write!(f, "cannot start TLS: {why}"),
            TlsError::InvalidServerName(name) => write!(f, "not a server name: {name:?}"),
            TlsError::LoopClosed => f.write_str("the loop closed during the TLS handshake"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Handshake(e) => Some(e),
            TlsError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// The server side of TLS: a rustls [`ServerConfig`] and how long a handshake may take.
/// Give it to [`TcpServer::set_tls`](crate::TcpServer::set_tls) (or
/// [`HttpServer::set_tls`](crate::http::HttpServer::set_tls)) to speak TLS on every
/// accepted connection, or use it with
/// [`IoStream::start_tls_server`](crate::IoStream::start_tls_server) on one.
///
/// Handshake failures (a client that does not trust the certificate, one that leaves
/// mid-handshake, a scanner) are logged at debug: they are the clients' business, and a
/// server facing the internet sees many.
///
/// # Examples
///
/// ```no_run
/// use ioloop::{tls, IoLoop, TcpServer};
///
/// let ioloop = IoLoop::new()?;
/// let acceptor = tls::TlsAcceptor::new(tls::server_config_from_pem("cert.pem", "key.pem")?);
/// let server = TcpServer::new_async(&ioloop, |stream, _peer| async move {
///     let _ = stream.write_all(b"hello over TLS\n").await;
/// });
/// server.set_tls(acceptor);
/// server.listen(8443)?;
/// ioloop.start()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct TlsAcceptor {
    config: Arc<ServerConfig>,
    handshake_timeout: Duration,
    answer_plain_http: bool,
}

impl TlsAcceptor {
    /// An acceptor for `config`, with [`DEFAULT_HANDSHAKE_TIMEOUT`].
    ///
    /// # Examples
    ///
    /// A TLS handshake over a socket pair, with a self-signed certificate made by `rcgen`:
    ///
    /// ```
    /// use ioloop::tls::{self, rustls, TlsAcceptor};
    /// use ioloop::{IoLoop, IoStream};
    /// # use std::sync::Arc;
    ///
    /// let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    /// let key = rustls::pki_types::PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der());
    /// let config = tls::server_config(vec![cert.cert.der().clone()], key.into())?;
    /// let acceptor = TlsAcceptor::new(config);
    /// # let mut roots = rustls::RootCertStore::empty();
    /// # roots.add(cert.cert.der().clone())?;
    /// # let client_config = Arc::new(tls::client_config(roots)); // trusts that certificate
    ///
    /// let ioloop = IoLoop::new()?;
    /// let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// let (a, b) = (IoStream::new(&ioloop, a)?, IoStream::new(&ioloop, b)?);
    /// let server = ioloop.spawn(async move { a.start_tls_server(&acceptor).await });
    /// let client = async move { b.start_tls_client(client_config, "localhost").await };
    /// let client = ioloop.run_sync(client)??;
    /// let server = ioloop.run_sync(server)???;
    /// assert!(client.is_tls());
    /// assert_eq!(server.tls_server_name().as_deref(), Some("localhost"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(config: impl Into<Arc<ServerConfig>>) -> TlsAcceptor {
        TlsAcceptor {
            config: config.into(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            answer_plain_http: false,
        }
    }

    /// Sets how long a handshake may take.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let config = ioloop::tls::server_config_from_pem("cert.pem", "key.pem")?;
    /// let acceptor = ioloop::tls::TlsAcceptor::new(config)
    ///     .handshake_timeout(std::time::Duration::from_secs(3));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn handshake_timeout(mut self, limit: Duration) -> TlsAcceptor {
        self.handshake_timeout = limit;
        self
    }

    /// The same acceptor, answering a client that speaks plain HTTP to it with
    /// `400 Bad Request` (as nginx does) before closing: for HTTP servers.
    #[cfg(feature = "http")]
    pub(crate) fn answering_plain_http(mut self) -> TlsAcceptor {
        self.answer_plain_http = true;
        self
    }

    /// The rustls configuration.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let config = ioloop::tls::server_config_from_pem("cert.pem", "key.pem")?;
    /// let acceptor = ioloop::tls::TlsAcceptor::new(config);
    /// assert!(acceptor.config().alpn_protocols.is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("alpn_protocols", &self.config.alpn_protocols)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

/// The server's handshake on an accepted socket, within the acceptor's time limit.
pub(crate) async fn accept_socket(
    ioloop: &IoLoop,
    socket: StreamSocket,
    acceptor: &TlsAcceptor,
    options: StreamOptions,
) -> Result<IoStream, TlsError> {
    let session =
        rustls::ServerConnection::new(acceptor.config.clone()).map_err(TlsError::Handshake)?;
    let handshake = handshake(
        ioloop,
        socket,
        session.into(),
        options,
        Some(acceptor.answer_plain_http),
    );
    timeout(acceptor.handshake_timeout, handshake)
        .await
        .unwrap_or(Err(TlsError::TimedOut))
}

/// The client's handshake on a connected stream, for `server_name` (checked against the
/// server's certificate and sent as SNI), within [`DEFAULT_HANDSHAKE_TIMEOUT`].
pub(crate) async fn connect_stream(
    stream: &IoStream,
    config: Arc<ClientConfig>,
    server_name: &str,
) -> Result<IoStream, TlsError> {
    let name = rustls_pki_types::ServerName::try_from(server_name.to_owned())
        .map_err(|_| TlsError::InvalidServerName(server_name.to_owned()))?;
    let session = rustls::ClientConnection::new(config, name).map_err(TlsError::Handshake)?;
    let ioloop = stream.ioloop().ok_or(TlsError::LoopClosed)?;
    let options = stream.options();
    let socket = stream.take_socket_for_tls().map_err(TlsError::NotReady)?;
    let handshake = handshake(&ioloop, socket, session.into(), options, None);
    timeout(DEFAULT_HANDSHAKE_TIMEOUT, handshake)
        .await
        .unwrap_or(Err(TlsError::TimedOut))
}

impl IoStream {
    /// Starts TLS as the server on this plain stream (Tornado's `start_tls(server_side=
    /// True)`, for STARTTLS-style protocols) and resolves with the new TLS stream; this
    /// one is done with (closed, without its close callback). Nothing may be pending or
    /// buffered: bytes the peer sent before the handshake are refused, not trusted.
    ///
    /// # Errors
    ///
    /// [`TlsError::NotReady`] for a stream that cannot start TLS now; otherwise the
    /// handshake's error (within the acceptor's time limit).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(stream: ioloop::IoStream, acceptor: ioloop::tls::TlsAcceptor) -> Result<(), Box<dyn std::error::Error>> {
    /// let command = stream.read_until(b"\r\n", 1024).await?;
    /// if command == b"STARTTLS\r\n" {
    ///     stream.write_all(b"220 go ahead\r\n").await?;
    ///     let stream = stream.start_tls_server(&acceptor).await?;
    ///     stream.write_all(b"now encrypted\r\n").await?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn start_tls_server(&self, acceptor: &TlsAcceptor) -> Result<IoStream, TlsError> {
        let ioloop = self.ioloop().ok_or(TlsError::LoopClosed)?;
        let options = self.options();
        let socket = self.take_socket_for_tls().map_err(TlsError::NotReady)?;
        accept_socket(&ioloop, socket, acceptor, options).await
    }

    /// Starts TLS as the client on this plain stream, verifying the server's certificate
    /// for `server_name` with `config` (use [`default_client_config`](super::default_client_config)
    /// for the Web PKI), and resolves with the new TLS stream; this one is done with. The
    /// handshake may take [`DEFAULT_HANDSHAKE_TIMEOUT`].
    ///
    /// # Errors
    ///
    /// As [`start_tls_server`](IoStream::start_tls_server) ([`TlsError::TimedOut`] past
    /// the time limit), and [`TlsError::InvalidServerName`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(stream: ioloop::IoStream) -> Result<(), Box<dyn std::error::Error>> {
    /// stream.write_all(b"STARTTLS\r\n").await?;
    /// stream.read_until(b"\r\n", 1024).await?;
    /// let config = ioloop::tls::default_client_config();
    /// let stream = stream.start_tls_client(config, "mail.example.com").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn start_tls_client(
        &self,
        config: Arc<ClientConfig>,
        server_name: &str,
    ) -> Result<IoStream, TlsError> {
        connect_stream(self, config, server_name).await
    }
}

/// The answer to plain HTTP on a TLS port.
const PLAIN_HTTP_ANSWER: &str = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\
     Content-Length: 45\r\nConnection: close\r\n\r\nThis port speaks HTTPS: use an https:// URL.\n";

/// Drives `session` over `socket` until it is established, then registers the two as a
/// stream. `plain_text_check` (servers only): whether to look at the first byte for
/// plain text, and whether to answer it with HTTP's 400.
async fn handshake(
    ioloop: &IoLoop,
    socket: StreamSocket,
    mut session: rustls::Connection,
    options: StreamOptions,
    plain_text_check: Option<bool>,
) -> Result<IoStream, TlsError> {
    let fd = AsyncFd::new(ioloop, socket).map_err(|e| TlsError::Io(e.into_parts().0))?;
    let driven = async {
        if let Some(answer_http) = plain_text_check {
            refuse_plain_text(&fd, answer_http).await?;
        }
        drive(&fd, &mut session).await
    }
    .await;
    let socket = fd.into_inner().ok_or(TlsError::LoopClosed)?;
    driven?;
    let tls = StreamSocket::Tls(Box::new(TlsSocket::new(socket, session)));
    IoStream::register(ioloop, tls, options).map_err(|e| TlsError::Io(e.into_parts().0))
}

/// Fails with [`TlsError::NotTls`] if the client's first byte is text (an HTTP method's
/// first letter) rather than a TLS record's type, answering HTTP's 400 if asked to.
async fn refuse_plain_text(fd: &AsyncFd<StreamSocket>, answer_http: bool) -> Result<(), TlsError> {
    let StreamSocket::Tcp(tcp) = fd.get_ref() else {
        return Ok(());
    };
    let mut first = [0u8; 1];
    loop {
        match tcp.peek(&mut first) {
            Ok(0) => return Ok(()), // the handshake reports the end
            Ok(_) if first[0].is_ascii_alphabetic() => {
                if answer_http {
                    // Take what the client sent first (up to 64 KiB): closing with unread
                    // bytes would reset the connection, and the reset could destroy the
                    // answer in flight.
                    let mut request = [0u8; 8192];
                    for _ in 0..8 {
                        if !matches!((&*tcp).read(&mut request), Ok(n) if n > 0) {
                            break;
                        }
                    }
                    let _ = (&*tcp).write(PLAIN_HTTP_ANSWER.as_bytes());
                    let _ = tcp.shutdown(std::net::Shutdown::Write);
                }
                return Err(TlsError::NotTls);
            }
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                fd.readable().await.map_err(TlsError::Io)?
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(TlsError::Io(e)),
        }
    }
}

/// Exchanges handshake messages until the session is established.
async fn drive(
    fd: &AsyncFd<StreamSocket>,
    session: &mut rustls::Connection,
) -> Result<(), TlsError> {
    loop {
        while session.wants_write() {
            match session.write_tls(&mut SocketIo(fd.get_ref())) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    fd.writable().await.map_err(TlsError::Io)?
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(TlsError::Io(e)),
            }
        }
        if !session.is_handshaking() {
            return Ok(());
        }
        match session.read_tls(&mut SocketIo(fd.get_ref())) {
            Ok(0) => {
                return Err(TlsError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection during the TLS handshake",
                )))
            }
            Ok(_) => {
                if let Err(e) = session.process_new_packets() {
                    // Tell the peer why (the alert rustls queued), if it can be sent now.
                    while session.wants_write() {
                        if !matches!(session.write_tls(&mut SocketIo(fd.get_ref())), Ok(n) if n > 0)
                        {
                            break;
                        }
                    }
                    return Err(TlsError::Handshake(e));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                fd.readable().await.map_err(TlsError::Io)?
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(TlsError::Io(e)),
        }
    }
}
