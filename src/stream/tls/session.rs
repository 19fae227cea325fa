//! What a stream says about its TLS session (feature `tls`): [`IoStream::alpn_protocol`],
//! [`IoStream::tls_server_name`], [`IoStream::is_tls`]. The transport itself,
//! [`TlsSocket`](super::TlsSocket), is in `transport.rs`.

use crate::stream::{IoStream, StreamSocket};

impl IoStream {
    /// The application protocol agreed through ALPN on a TLS stream (`b"h2"`,
    /// `b"http/1.1"`), `None` if none was (or the stream is not TLS).
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let plain = ioloop::IoStream::new(&ioloop, a)?;
    /// assert_eq!(plain.alpn_protocol(), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn alpn_protocol(&self) -> Option<Vec<u8>> {
        self.with_socket(|socket| match socket {
            StreamSocket::Tls(tls) => tls.alpn_protocol(),
            _ => None,
        })
        .flatten()
    }

    /// On a TLS server's stream, the host name the client asked for (SNI).
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let plain = ioloop::IoStream::new(&ioloop, a)?;
    /// assert_eq!(plain.tls_server_name(), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tls_server_name(&self) -> Option<String> {
        self.with_socket(|socket| match socket {
            StreamSocket::Tls(tls) => tls.server_name(),
            _ => None,
        })
        .flatten()
    }

    /// Whether the stream speaks TLS.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// assert!(!ioloop::IoStream::new(&ioloop, a)?.is_tls());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_tls(&self) -> bool {
        self.with_socket(|socket| matches!(socket, StreamSocket::Tls(_)))
            .unwrap_or(false)
    }
}
