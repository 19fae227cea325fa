//! [`FetchError`]: why [`HttpClient::fetch`](super::HttpClient::fetch) gave no response.

use std::fmt;

use crate::net::TcpConnectError;

/// Why a fetch failed. A response with any status, 404 or 500 included, is not an
/// error: check [`ClientResponse::status`](super::ClientResponse::status).
///
/// # Examples
///
/// ```
/// use ioloop::http::FetchError;
/// let e = FetchError::TooManyRedirects { limit: 5 };
/// assert_eq!(e.to_string(), "more than 5 redirects");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum FetchError {
    /// Not an `http://` URL (`https://` needs the `tls` feature), or one a request line
    /// cannot carry.
    InvalidUrl(String),
    /// A method or header field the request cannot carry (not a token, a value with a
    /// line break, a `Content-Length` or `Transfer-Encoding` set by hand).
    InvalidRequest(String),
    /// Resolving the host or connecting to it failed.
    Connect(TcpConnectError),
    /// The TLS handshake failed (an untrusted certificate, the wrong name). Feature `tls`.
    #[cfg(feature = "tls")]
    Tls(crate::stream::tls::TlsError),
    /// The connect timeout passed before the connection (and its TLS handshake) was up.
    ConnectTimeout,
    /// The request timeout passed before the response was complete (it also ends a
    /// body that keeps coming without end, such as gzip's empty blocks).
    Timeout,
    /// The server's answer is not valid HTTP/1.1 (a malformed status line or header, a
    /// bad chunk size, a `Content-Length` with a `Transfer-Encoding`, a bad gzip body).
    Protocol(String),
    /// The connection closed before the response was complete (a truncated body, a
    /// server that answered nothing).
    Closed,
    /// More redirects than the request allows.
    TooManyRedirects {
        /// The request's limit.
        limit: u32,
    },
    /// The body, or its decompressed form, is over the request's `max_body_size`.
    BodyTooLarge {
        /// The limit passed, in bytes.
        limit: u64,
    },
    /// The response head is over 64 KiB or 100 header fields.
    HeadTooLarge,
    /// The loop was closed or dropped.
    LoopClosed,
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::InvalidUrl(url) => write!(f, "invalid URL: {url}"),
            FetchError::InvalidRequest(why) => write!(f, "invalid request: {why}"),
            FetchError::Connect(e) => e.fmt(f),
            #[cfg(feature = "tls")]
            FetchError::Tls(e) => e.fmt(f),
            FetchError::ConnectTimeout => f.write_str("the connection timed out"),
            FetchError::Timeout => f.write_str("the request timed out"),
            FetchError::Protocol(why) => write!(f, "invalid response: {why}"),
            FetchError::Closed => {
                f.write_str("the connection closed before the response was complete")
            }
            FetchError::TooManyRedirects { limit } => write!(f, "more than {limit} redirects"),
            FetchError::BodyTooLarge { limit } => {
                write!(f, "the response is over its limit of {limit} bytes")
            }
            FetchError::HeadTooLarge => {
                f.write_str("the response head is over 64 KiB or 100 fields")
            }
            FetchError::LoopClosed => f.write_str("the IoLoop is closed"),
        }
    }
}

impl std::error::Error for FetchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FetchError::Connect(e) => Some(e),
            #[cfg(feature = "tls")]
            FetchError::Tls(e) => Some(e),
            _ => None,
        }
    }
}

impl From<TcpConnectError> for FetchError {
    fn from(e: TcpConnectError) -> FetchError {
        match e {
            #[cfg(feature = "tls")]
            TcpConnectError::Tls(e) => FetchError::Tls(e),
            TcpConnectError::TimedOut => FetchError::ConnectTimeout,
            TcpConnectError::LoopClosed => FetchError::LoopClosed,
            e => FetchError::Connect(e),
        }
    }
}
