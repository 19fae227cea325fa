//! TLS with rustls (feature `tls`): servers ([`TlsAcceptor`], given to
//! [`TcpServer::set_tls`](crate::TcpServer::set_tls)), clients
//! ([`TcpClient::connect_tls`](crate::TcpClient::connect_tls)), and `start_tls` on an
//! established stream ([`IoStream::start_tls_server`](crate::IoStream::start_tls_server),
//! [`IoStream::start_tls_client`](crate::IoStream::start_tls_client)); configurations
//! from PEM files, on rustls's `ring` provider, with `webpki-roots` as the clients'
//! default trust.
//!
//! The handshake runs in the loop (`handshake.rs`); the stream it yields reads and writes
//! through the session (`stream/tls.rs`), so every stream operation, and HTTP and
//! WebSocket above them, work over TLS unchanged.

mod config;
mod handshake;

/// The rustls this crate uses, for its configuration types (`ServerConfig`,
/// `ClientConfig`, `RootCertStore`, `pki_types`) at the same version.
pub use rustls;

pub use self::config::{
    client_config, default_client_config, load_certs, load_private_key, server_config,
    server_config_from_pem, webpki_roots,
};
pub(crate) use self::handshake::{accept_socket, connect_stream};
pub use self::handshake::{TlsAcceptor, TlsError, DEFAULT_HANDSHAKE_TIMEOUT};
