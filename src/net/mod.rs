//! Networking: listening sockets ([`bind_sockets`], [`bind_unix_socket`]), servers that
//! accept connections as streams ([`TcpServer`]) and a client that connects by host name
//! without blocking the loop ([`TcpClient`]), and datagrams ([`UdpSocket`]) (Tornado's
//! `tcpserver`, `tcpclient` and `netutil`). It builds on streams, tasks and time, and on
//! the reactor.

mod bind;
mod tcp_client;
mod tcp_server;
mod udp;

// Documented at the crate root, their one path.
#[doc(hidden)]
pub use self::bind::{bind_sockets, bind_unix_socket};
#[doc(hidden)]
pub use self::tcp_client::{TcpClient, TcpConnectError};
#[doc(hidden)]
pub use self::tcp_server::TcpServer;
pub use self::tcp_server::{ACCEPTS_PER_EVENT, ACCEPT_BACKOFF};
// The HTTP server's cap on open connections; unused without the `http` feature.
#[cfg_attr(not(feature = "http"), allow(unused_imports))]
pub(crate) use self::tcp_server::ConnectionClosed;
#[doc(hidden)]
pub use self::udp::UdpSocket;
