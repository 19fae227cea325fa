//! TLS with rustls (feature `tls`), in one place: the transport a TLS stream reads and
//! writes through ([`TlsSocket`], `transport.rs`), the handshakes that make one (servers
//! through a [`TlsAcceptor`] given to [`TcpServer::set_tls`](crate::TcpServer::set_tls),
//! clients through [`TcpClient::connect_tls`](crate::TcpClient::connect_tls), and
//! `start_tls` on an established stream: [`IoStream::start_tls_server`](crate::IoStream::start_tls_server),
//! [`IoStream::start_tls_client`](crate::IoStream::start_tls_client)), configurations from PEM files on rustls's `ring`
//! provider with `webpki-roots` as the clients' default trust, what a stream says about
//! its session ([`IoStream::alpn_protocol`](crate::IoStream::alpn_protocol), [`IoStream::tls_server_name`](crate::IoStream::tls_server_name)), and the
//! lingering close that sends a closed stream's close_notify.
//!
//! The handshake runs in the loop; the stream it yields reads and writes through the
//! session, so every stream operation, and HTTP and WebSocket above them, work over TLS
//! unchanged. The public path is `ioloop::tls`.

mod config;
mod handshake;
mod linger;
mod session;
mod transport;

/// The rustls this crate uses, for its configuration types (`ServerConfig`,
/// `ClientConfig`, `RootCertStore`, `pki_types`) at the same version.
pub use rustls;

pub use self::config::{
    client_config, default_client_config, load_certs, load_private_key, server_config,
    server_config_from_pem, webpki_roots,
};
pub(crate) use self::handshake::{accept_socket, connect_stream};
pub use self::handshake::{TlsAcceptor, TlsError, DEFAULT_HANDSHAKE_TIMEOUT};
pub(crate) use self::linger::close_when_sent;
pub use self::transport::TlsSocket;
pub(crate) use self::transport::SEND_BUFFER_LIMIT;
