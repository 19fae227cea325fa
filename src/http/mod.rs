//! HTTP/1.1: the request and response types, a sans-IO parser and encoder, and a server
//! that serves a [`Service`] on the loop (Tornado's `httpserver` and `http1connection`).
//!
//! Parsing and encoding work over byte slices and are tested without sockets; so are the
//! server connection's write pipeline and its states, which the connection drives over
//! an [`IoStream`](crate::IoStream), reading requests in place from its buffer.
//! This layer builds on `net`, `stream`, `task`, `time` and the reactor; the web layer
//! (routing, handlers in both styles, static files) builds on it.

mod body;
#[cfg(feature = "http-client")]
mod client;
mod cookie;
mod encode;
mod error;
mod extensions;
mod head;
mod multipart;
mod request;
mod responder;
mod response;
mod server;
mod service;
mod status;
#[cfg(any(feature = "http-client", feature = "websocket"))]
pub(crate) mod url;

#[cfg(feature = "http-client")]
pub use self::client::{
    ClientRequest, ClientResponse, FetchError, HttpClient, HttpClientOptions, ResponseHead,
    StreamedResponse, DEFAULT_MAX_BODY_SIZE,
};
// The range of an HTTP date, for the static files' `Last-Modified`.
#[cfg_attr(not(feature = "web"), allow(unused_imports))]
pub(crate) use self::cookie::http_date_range;
pub use self::cookie::{Cookie, CookieError, SameSite};
pub use self::error::HttpError;
pub use self::extensions::Extensions;
pub use self::head::Version;
pub use self::multipart::{Multipart, MultipartError, MultipartLimits, UploadedFile};
pub use self::request::Request;
// The web layer's hooks on a responder; unused by the `http` feature alone.
#[cfg_attr(not(feature = "web"), allow(unused_imports))]
pub(crate) use self::responder::{AnswerHooks, BeforeAnswerHook};
pub use self::responder::{BodyChunk, BodyReader, BodyWriter, Responder};
#[cfg_attr(not(feature = "web"), allow(unused_imports))]
pub(crate) use self::responder::{RequestConnection, WrittenCallback};
#[cfg_attr(not(feature = "web"), allow(unused_imports))]
pub(crate) use self::response::ResponseParts;
pub use self::response::{Body, IntoResponse, Response};
#[cfg_attr(not(feature = "websocket"), allow(unused_imports))]
pub(crate) use self::server::{register_upgraded, LiveConnection, Upgraded};
pub use self::server::{serve_on_threads, HttpServer, ServerOptions, ThreadedServer};
pub use self::service::{Dispatch, Handler, Service};
pub use self::status::reason_phrase;

// The response-head parser, for the WebSocket client's handshake.
#[cfg(feature = "websocket")]
pub(crate) use self::head::{parse_response_head, HeadError, HeadLimits};
// The sans-IO internals the fuzz targets drive, for `crate::fuzzing` only.
#[cfg(all(feature = "fuzzing", not(feature = "websocket")))]
pub(crate) use self::head::HeadLimits;
#[cfg(feature = "fuzzing")]
pub(crate) use self::server::fuzzing as server_fuzzing;
#[cfg(feature = "fuzzing")]
pub(crate) use self::{
    body::{request_framing, BodyDecoder, Framing},
    client::BodyDecoding,
    head::{find_head_end, leading_empty_lines, parse_head},
};
