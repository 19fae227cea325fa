//! The HTTP/1.1 client (feature `http-client`): Tornado's `AsyncHTTPClient` on the
//! loop, with the keep-alive pool Tornado's client never had.
//!
//! [`HttpClient::fetch`] resolves to a [`ClientResponse`] (or calls back, with
//! [`fetch_then`](HttpClient::fetch_then)); [`fetch_streaming`](HttpClient::fetch_streaming)
//! hands the body over chunk by chunk, reading no further than asked. Requests are
//! described by a [`ClientRequest`]; failures are a typed [`FetchError`].
//!
//! The layers, each in its own file: `request.rs` writes the request head;
//! `response.rs` parses the response head; `body.rs` decodes the body in place from the
//! connection's buffer (the server's chunked decoder, gzip in bounded steps);
//! `exchange.rs` runs one request on one connection; `pool.rs` keeps idle connections
//! and the `max_clients` queue; `client.rs` ties them together with redirects and
//! timeouts. Names resolve through [`TcpClient`](crate::TcpClient) (off the loop's
//! thread), and `https://` goes through its TLS path.

mod body;
#[allow(clippy::module_inception)]
mod client;
mod error;
mod exchange;
mod pool;
mod request;
mod response;

pub use self::client::{HttpClient, HttpClientOptions, StreamedResponse};
pub use self::error::FetchError;
pub use self::request::{ClientRequest, DEFAULT_MAX_BODY_SIZE};
pub use self::response::{ClientResponse, ResponseHead};

// The response body's decoding, for `crate::fuzzing` only.
#[cfg(feature = "fuzzing")]
pub(crate) use self::body::BodyDecoding;
