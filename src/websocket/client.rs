//! [`websocket_connect`]: a WebSocket client on the loop (Tornado's
//! `websocket_connect`): resolve and connect without blocking, send the handshake, check
//! the answer, and hand back a [`WebSocket`] with the same API as the server's.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use super::frame::Role;
use super::handshake::{check_response, client_request, new_key, MAX_RESPONSE_HEAD};
use super::mask::MaskSource;
use super::options::WebSocketOptions;
use super::socket::WebSocket;
use crate::http::url::{HttpUrl, Schemes};
use crate::net::{TcpClient, TcpConnectError};
use crate::reactor::ioloop::IoLoop;
use crate::time::timeout;

/// How a client connects (Tornado's `websocket_connect` arguments).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let options = ioloop::websocket::ClientOptions {
///     connect_timeout: Duration::from_secs(5),
///     subprotocols: vec!["chat".into()],
///     ..Default::default()
/// };
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Resolution, connection and handshake together (default 20 s, Tornado's).
    pub connect_timeout: Duration,
    /// Subprotocols offered, in order of preference.
    pub subprotocols: Vec<String>,
    /// The `Origin` field to send, if any (a browser's page origin).
    pub origin: Option<String>,
    /// The connection's limits and timers.
    pub options: WebSocketOptions,
    /// For `wss://` URLs (feature `tls`): the TLS configuration; `None` trusts the Web
    /// PKI ([`tls::default_client_config`](crate::tls::default_client_config)).
    #[cfg(feature = "tls")]
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            connect_timeout: Duration::from_secs(20),
            subprotocols: Vec::new(),
            origin: None,
            options: WebSocketOptions::default(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

/// Why [`websocket_connect`] failed.
///
/// # Examples
///
/// ```
/// use ioloop::websocket::WebSocketConnectError;
/// let e = WebSocketConnectError::InvalidUrl("ftp://x".into());
/// assert_eq!(e.to_string(), "invalid WebSocket URL: ftp://x");
/// ```
#[derive(Debug)]
#[non_exhaustive]
#[doc(alias = "ConnectError")]
pub enum WebSocketConnectError {
    /// Not a `ws://` URL (`wss://` needs the `tls` feature), or one with characters a
    /// request line cannot carry.
    InvalidUrl(String),
    /// An `origin` or subprotocol that cannot go in a header field (a subprotocol is a
    /// token: no spaces, commas or controls).
    InvalidOption(String),
    /// The TCP connection failed.
    Connect(TcpConnectError),
    /// `connect_timeout` passed.
    TimedOut,
    /// The server's answer is not a valid WebSocket handshake (a status other than 101,
    /// a wrong accept key, ...).
    Handshake(String),
    /// The connection closed during the handshake.
    Closed,
}

impl fmt::Display for WebSocketConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebSocketConnectError::InvalidUrl(url) => write!(f, "invalid WebSocket URL: {url}"),
            WebSocketConnectError::InvalidOption(what) => {
                write!(f, "invalid WebSocket option: {what}")
            }
            WebSocketConnectError::Connect(e) => write!(f, "WebSocket connection failed: {e}"),
            WebSocketConnectError::TimedOut => f.write_str("WebSocket connection timed out"),
            WebSocketConnectError::Handshake(why) => write!(f, "WebSocket handshake failed: {why}"),
            WebSocketConnectError::Closed => {
                f.write_str("the connection closed during the handshake")
            }
        }
    }
}

impl std::error::Error for WebSocketConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WebSocketConnectError::Connect(e) => Some(e),
            _ => None,
        }
    }
}

/// The WebSocket schemes, plain and secure.
const WS: Schemes = ["ws", "wss"];

/// Parses a `ws://host[:port]/path?query` (or, with the `tls` feature, `wss://`) URL; a
/// fragment is refused (RFC 6455 §3).
fn parse_url(url: &str) -> Result<HttpUrl, WebSocketConnectError> {
    match HttpUrl::parse(url, WS) {
        Some(parsed) if !url.contains('#') && (cfg!(feature = "tls") || !parsed.secure) => {
            Ok(parsed)
        }
        _ => Err(WebSocketConnectError::InvalidUrl(url.to_owned())),
    }
}

/// Connects to a WebSocket server at `url` (`ws://host[:port]/path`) with the default
/// [`ClientOptions`], on the current loop.
///
/// # Errors
///
/// [`WebSocketConnectError`]: a bad URL, a failed connection, a timeout, a refused handshake.
///
/// # Examples
///
/// ```no_run
/// use ioloop::websocket::websocket_connect;
///
/// let ioloop = ioloop::IoLoop::new()?;
/// let reply = ioloop.run_sync(async {
///     let ws = websocket_connect("ws://127.0.0.1:8888/ws/echo").await?;
///     let _ = ws.send("hello").await;
///     Ok::<_, ioloop::websocket::WebSocketConnectError>(ws.recv().await)
/// })??;
/// println!("{reply:?}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn websocket_connect(
    url: &str,
) -> impl Future<Output = Result<WebSocket, WebSocketConnectError>> + 'static {
    websocket_connect_with(url, ClientOptions::default())
}

/// [`websocket_connect`] with options.
///
/// # Errors
///
/// As [`websocket_connect`].
///
/// # Examples
///
/// ```no_run
/// use ioloop::websocket::{websocket_connect_with, ClientOptions};
///
/// let ioloop = ioloop::IoLoop::new()?;
/// let options = ClientOptions { subprotocols: vec!["chat".into()], ..Default::default() };
/// let ws = ioloop.run_sync(websocket_connect_with("ws://127.0.0.1:8888/ws", options))??;
/// println!("speaking {:?}", ws.subprotocol());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn websocket_connect_with(
    url: &str,
    options: ClientOptions,
) -> impl Future<Output = Result<WebSocket, WebSocketConnectError>> + 'static {
    let url = parse_url(url).and_then(|url| check_options(&options).map(|()| url));
    async move {
        let url = url?;
        let limit = options.connect_timeout;
        timeout(limit, handshake(url, options))
            .await
            .unwrap_or(Err(WebSocketConnectError::TimedOut))
    }
}

/// Refuses an origin or subprotocol that would break the request's header fields.
fn check_options(options: &ClientOptions) -> Result<(), WebSocketConnectError> {
    let is_token = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
    };
    if let Some(bad) = options.subprotocols.iter().find(|p| !is_token(p)) {
        return Err(WebSocketConnectError::InvalidOption(format!(
            "subprotocol {bad:?}"
        )));
    }
    if let Some(origin) = &options.origin {
        if origin.bytes().any(|b| b < b' ' || b == 0x7F) {
            return Err(WebSocketConnectError::InvalidOption(format!(
                "origin {origin:?}"
            )));
        }
    }
    Ok(())
}

/// Closes a stream whose handshake did not complete (failed, or dropped at the timeout),
/// unless it was handed to the `WebSocket`.
struct CloseUnlessKept(Option<crate::stream::IoStream>);

impl Drop for CloseUnlessKept {
    fn drop(&mut self) {
        if let Some(stream) = self.0.take() {
            stream.close();
        }
    }
}

async fn handshake(
    url: HttpUrl,
    options: ClientOptions,
) -> Result<WebSocket, WebSocketConnectError> {
    let ioloop = IoLoop::current().ok_or(WebSocketConnectError::Closed)?;
    let client = TcpClient::new(&ioloop);
    // `wss://` parses only with the tls feature.
    let stream = match url.secure {
        #[cfg(feature = "tls")]
        true => {
            let config = options
                .tls
                .clone()
                .unwrap_or_else(crate::stream::tls::default_client_config);
            client.connect_tls(&url.host, url.port, config).await
        }
        _ => client.connect(&url.host, url.port).await,
    }
    .map_err(WebSocketConnectError::Connect)?;
    let _ = stream.set_nodelay(true);
    let mut guard = CloseUnlessKept(Some(stream.clone()));
    let key = new_key(&mut MaskSource::new());
    let mut fields = Vec::new();
    if let Some(origin) = &options.origin {
        fields.push(("Origin", origin.clone()));
    }
    #[cfg(feature = "deflate")]
    let compression = options.options.compression.as_ref();
    #[cfg(feature = "deflate")]
    if let Some(compression) = compression {
        fields.push((
            "Sec-WebSocket-Extensions",
            super::deflate::offer(compression),
        ));
    }
    let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let request = client_request(
        &url.authority,
        &url.target,
        &key,
        &options.subprotocols,
        &fields,
    );
    stream
        .write_all(&request)
        .await
        .map_err(|_| WebSocketConnectError::Closed)?;
    let head = stream
        .read_until(b"\r\n\r\n", MAX_RESPONSE_HEAD)
        .await
        .map_err(|e| match e {
            crate::stream::StreamError::Unsatisfiable | crate::stream::StreamError::BufferFull => {
                WebSocketConnectError::Handshake("the response head is too large".into())
            }
            _ => WebSocketConnectError::Closed,
        })?;
    let negotiated = check_response(
        &head,
        &key,
        &options.subprotocols,
        #[cfg(feature = "deflate")]
        compression,
    )
    .map_err(WebSocketConnectError::Handshake)?;
    // What followed the head is already the first frames.
    guard.0 = None;
    Ok(WebSocket::start(
        stream,
        Role::Client,
        options.options,
        negotiated,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_host_port_and_path() {
        let url = parse_url("ws://example.com:8080/chat?room=1").unwrap();
        assert_eq!(
            (
                url.host.as_str(),
                url.port,
                url.authority.as_str(),
                url.target.as_str()
            ),
            ("example.com", 8080, "example.com:8080", "/chat?room=1")
        );
        let url = parse_url("ws://example.com").unwrap();
        assert_eq!((url.port, url.target.as_str()), (80, "/"));
        let url = parse_url("ws://[::1]:9000/ws").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("::1", 9000));
        let url = parse_url("ws://h?x=1").unwrap();
        assert_eq!(url.target, "/?x=1");
        assert!(!url.secure);
        let secure = parse_url("wss://example.com/chat");
        if cfg!(feature = "tls") {
            let url = secure.unwrap();
            assert_eq!((url.secure, url.port), (true, 443));
        } else {
            assert!(matches!(secure, Err(WebSocketConnectError::InvalidUrl(_))));
        }
        for bad in [
            "http://h/",
            "ws://",
            "ws://h:notaport/",
            "ws://[::1/",
            "ws://u@h/",
            "ws://h/#f",
            "ws://h/a b",
            "ws://h/a\r\nX-Injected: 1",
        ] {
            assert!(
                matches!(parse_url(bad), Err(WebSocketConnectError::InvalidUrl(_))),
                "{bad}"
            );
        }
    }
}
