//! A callback-based reactor in the style of Tornado's `IOLoop`.
//!
//! An [`IoLoop`] owns sockets and a timer heap and calls boxed closures when a source is
//! ready or a deadline passes:
//!
//! - [`IoLoop::add_callback`]: run on the next iteration (FIFO);
//! - [`IoLoop::add_timeout`] / [`call_later`](IoLoop::call_later) /
//!   [`call_at`](IoLoop::call_at): run at a deadline on the loop's [`Clock`];
//! - [`IoLoop::add_handler`]: run when an fd the loop owns is readable or writable
//!   (level-triggered);
//! - [`PeriodicCallback`]: run every period on a fixed grid;
//! - [`Remote`]: post callbacks or stop the loop from any thread.
//!
//! Run it with [`IoLoop::start`] until [`IoLoop::stop`], or step it from a host loop with
//! [`IoLoop::run_once`], [`IoLoop::poll_timeout`] and the loop's fd (`AsFd`). Every
//! callback runs under `catch_unwind`: a panic is reported with the `file:line` where the
//! callback was registered, and the loop keeps going (see [`PanicPolicy`]).
//!
//! # Examples
//!
//! ```
//! use ioloop::{IoLoop, PeriodicCallback};
//! use std::time::Duration;
//!
//! let ioloop = IoLoop::new()?;
//! let ticks = PeriodicCallback::new(&ioloop, Duration::from_millis(2), |_, _| println!("tick"));
//! ticks.start();
//! ioloop.add_timeout(Duration::from_millis(7), move |ioloop| {
//!     ticks.stop();
//!     ioloop.stop();
//! });
//! ioloop.start()?;
//! # Ok::<(), ioloop::LoopError>(())
//! ```
//!
//! # Iteration order
//!
//! Each iteration of the loop, in Tornado's order:
//!
//! 1. callbacks posted from other threads move into the local queue;
//! 2. the number of queued callbacks is snapshotted: callbacks added from now on wait for
//!    the next iteration;
//! 3. every timeout with `deadline <= now` is collected before any of them runs;
//! 4. the snapshot of callbacks runs, then the collected timeouts (skipping any removed
//!    meanwhile, also by an earlier timeout of the same batch);
//! 5. if [`IoLoop::stop`] was called the loop stops here; otherwise it polls, with
//!    timeout zero if callbacks are queued, else until the next deadline, else forever
//!    (while callbacks keep it from blocking, a running loop checks its sockets as its
//!    [`io_check`](IoLoopBuilder::io_check) policy says: by default at least every 61
//!    iterations and every millisecond; before it sleeps, a running loop that ran
//!    callbacks posted from other threads since it last slept first watches for another
//!    post for up to 2 µs, so a thread answering at once finds it awake);
//! 6. readiness is dispatched one source at a time, at most
//!    [`dispatch_budget`](IoLoopBuilder::dispatch_budget) sources (default 32) per
//!    iteration; a handler removed by an earlier handler of the batch is not called.
//!    When the wait reported more sources, the next iterations skip step 5's poll and
//!    dispatch the rest, in order, so the callbacks the first handlers queued run before
//!    the next handlers (Tornado dispatches a whole wait at once: `dispatch_budget(usize::MAX)`);
//!    a stop in step 5 dispatches the rest of the wait first.
//!
//! # Architecture
//!
//! One module per layer; each uses only the layers below it (`tests/layout.rs` checks
//! this on every `use`):
//!
//! | layer | owns | uses |
//! |---|---|---|
//! | `websocket` | `WebSocket`, its routes and client, `Broadcast` (feature `websocket`) | web and below |
//! | `web` | `Application`: routing, handlers in both styles, static files (feature `web`) | http and below |
//! | `http` | HTTP/1.1 messages, the sans-IO parser and encoder, `HttpServer` (feature `http`) | net and below |
//! | [`net`] | listening sockets, [`TcpServer`], [`TcpClient`] | stream, task, time, reactor |
//! | [`stream`] | [`IoStream`]: buffered reads and writes on a socket the loop owns | reactor |
//! | [`task`] | [`Task`], [`run_sync`](IoLoop::run_sync), [`completion`], [`AsyncFd`] | reactor |
//! | [`time`] | clocks, [`Timeout`], [`PeriodicCallback`], [`sleep`], [`timeout`] | reactor |
//! | `reactor` | [`IoLoop`] and its iteration: the callback queue, [`Remote`], the timer heap, fd handlers, the task registry and wakers, the poller, panics in user code | nothing |
//!
//! The reactor holds every data structure its iteration runs (the timer heap and the
//! task registry included, as tokio's runtime holds its timer wheel and task cells);
//! `time` and `task` are the public faces built on them. The names most programs use are
//! re-exported here at the root; the rest are in their layer's module.
//!
//! # Features
//!
//! - `signals` (default): `IoLoop::add_signal_handler`, through `signal-hook`, and
//!   `ioloop::signal` for the signal numbers.
//! - `http` (default): `ioloop::http`, the HTTP/1.1 server (`httparse`, `httpdate`,
//!   `percent-encoding`).
//! - `web` (default): `ioloop::web`, the application layer (`mime_guess`).
//! - `websocket` (default): `ioloop::websocket`, WebSocket routes, client and broadcast
//!   (`sha1_smol`, `base64`).
//! - `deflate`: permessage-deflate for WebSocket (`flate2` on `zlib-rs`).
//! - `blocking` (default): `IoLoop::run_in_executor`, on the `blocking` crate's thread
//!   pool (its threads start on first use).
//! - `futures-io`: `IoStream::into_futures_io`, `futures-io`'s `AsyncRead`,
//!   `AsyncBufRead` and `AsyncWrite`.
//!
//! Coming from Tornado? `coming_from_tornado` (feature `blocking`) maps its names to
//! these and shows the patterns that differ.
//!
//! # Platform
//!
//! Unix (epoll on Linux and Android, kqueue on macOS and the BSDs, through `polling`).

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![deny(unsafe_op_in_unsafe_fn)]

mod error;
#[cfg(feature = "http")]
pub mod http;
pub mod net;
#[cfg(feature = "process")]
pub mod process;
mod reactor;
#[cfg(feature = "redis")]
pub mod redis;
pub mod stream;
pub mod task;
pub mod testing;
pub mod time;
#[cfg(feature = "web")]
pub mod web;
#[cfg(feature = "websocket")]
pub mod websocket;

pub use error::LoopError;
pub use net::{bind_sockets, bind_unix_socket, TcpClient, TcpConnectError, TcpServer, UdpSocket};
#[cfg(feature = "tls")]
pub use stream::tls;

/// Unix signals for [`IoLoop::add_signal_handler`]: the signal numbers (`SIGINT`,
/// `SIGTERM`, ...) and the handler type, so a program needs no other crate for them.
///
/// # Examples
///
/// ```no_run
/// use ioloop::signal::{SIGINT, SIGTERM};
///
/// let ioloop = ioloop::IoLoop::new()?;
/// for signal in [SIGINT, SIGTERM] {
///     let handler = ioloop.add_signal_handler(signal, |ioloop| ioloop.stop())?;
///     # drop(handler);
/// }
/// ioloop.start()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(feature = "signals")]
pub mod signal {
    pub use crate::reactor::SignalHandler;
    pub use signal_hook::consts::signal::*;
}
pub use reactor::{
    CallbackKind, HandlerId, Interest, IoEvent, IoLoop, IoLoopBuilder, LoopStats, PanicPolicy,
    PanicReport, RegisterError, Remote, WeakIoLoop,
};
pub use stream::{IoStream, StreamError, StreamOptions, StreamSocket};
pub use task::{completion, spawn, AsyncFd, RunSyncError, Task, TaskError};
pub use time::{
    sleep, sleep_until, timeout, yield_now, Clock, Deadline, ManualClock, PeriodicCallback,
    SystemClock, TimedOut, Timeout,
};

// Its snippets use `run_in_executor`, hence the feature.
#[cfg(feature = "blocking")]
#[doc = include_str!("../docs/coming-from-tornado.md")]
pub mod coming_from_tornado {}

/// Compiles and runs the README's Rust examples as doctests (with the features they use:
/// the web layer, the HTTP client, WebSocket).
#[cfg(all(doctest, feature = "http-client", feature = "websocket"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// Thin wrappers over the crate's sans-IO internals for the fuzz targets in `fuzz/`
/// (feature `fuzzing`, off by default). Not a stable API: it follows the internals.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    /// HTTP/1.1: request heads and bodies, the client's response bodies, URLs.
    pub mod http {
        use std::io::Write as _;
        use std::ops::Range;

        use crate::http::url::HttpUrl;
        use crate::http::{BodyDecoding, HeadLimits, ResponseHead};
        use crate::{IoLoop, IoStream};

        /// The server's sans-IO pipeline of owed responses, driven with the connection's
        /// calls.
        pub use crate::http::server_fuzzing::{Completion, Output as PipelineOutput, Pipeline};

        /// Where a head ends in `buf`, resuming the scan at `*scanned`.
        pub fn find_head_end(buf: &[u8], scanned: &mut usize) -> Option<usize> {
            crate::http::find_head_end(buf, scanned)
        }

        /// The empty lines before a request line.
        pub fn leading_empty_lines(buf: &[u8]) -> usize {
            crate::http::leading_empty_lines(buf)
        }

        /// A parsed head: the parts as ranges into the head's bytes.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Head {
            /// The method.
            pub method: Range<usize>,
            /// The request target.
            pub target: Range<usize>,
            /// `true` for HTTP/1.1, `false` for HTTP/1.0.
            pub http11: bool,
            /// The header fields, name and value.
            pub headers: Vec<(Range<usize>, Range<usize>)>,
        }

        /// Parses a complete head; the error is the status the server answers and why.
        ///
        /// # Errors
        ///
        /// As the server's parser.
        pub fn parse_head(
            buf: &[u8],
            max_bytes: usize,
            max_headers: usize,
        ) -> Result<Head, (u16, String)> {
            let limits = HeadLimits {
                max_bytes,
                max_headers,
            };
            let head =
                crate::http::parse_head(buf, limits).map_err(|e| (e.status(), e.to_string()))?;
            let r = |r: &Range<u16>| r.start as usize..r.end as usize;
            Ok(Head {
                method: r(&head.method),
                target: r(&head.target),
                http11: head.version == crate::http::Version::Http11,
                headers: head
                    .fields
                    .ranges()
                    .iter()
                    .map(|(n, v)| (r(n), r(v)))
                    .collect(),
            })
        }

        /// How a request body is delimited.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Framing {
            /// No body.
            Empty,
            /// This many bytes.
            Length(u64),
            /// Chunked.
            Chunked,
        }

        /// The framing the server reads for these fields.
        ///
        /// # Errors
        ///
        /// As the server: the request is refused (400).
        pub fn request_framing(fields: &[(&[u8], &[u8])]) -> Result<Framing, String> {
            match crate::http::request_framing(fields.iter().copied()) {
                Ok(crate::http::Framing::Empty) => Ok(Framing::Empty),
                Ok(crate::http::Framing::Length(n)) => Ok(Framing::Length(n)),
                Ok(crate::http::Framing::Chunked) => Ok(Framing::Chunked),
                Err(e) => Err(e.to_string()),
            }
        }

        /// The server's body decoder.
        #[derive(Debug)]
        pub struct BodyDecoder(crate::http::BodyDecoder);

        impl BodyDecoder {
            /// The decoder for `framing`; `None` for no body.
            pub fn new(framing: Framing) -> Option<BodyDecoder> {
                let framing = match framing {
                    Framing::Empty => crate::http::Framing::Empty,
                    Framing::Length(n) => crate::http::Framing::Length(n),
                    Framing::Chunked => crate::http::Framing::Chunked,
                };
                crate::http::BodyDecoder::for_framing(framing).map(BodyDecoder)
            }

            /// Decodes what `input` holds: `(consumed, done)`, data to `sink`.
            ///
            /// # Errors
            ///
            /// A malformed body.
            pub fn decode(
                &mut self,
                input: &[u8],
                sink: impl FnMut(&[u8]),
            ) -> Result<(usize, bool), String> {
                self.0
                    .decode(input, sink)
                    .map(|p| (p.consumed, p.done))
                    .map_err(|e| e.to_string())
            }
        }

        /// What the client read of a response body.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct ClientBody {
            /// The body, decompressed if it was gzipped.
            pub body: Vec<u8>,
            /// The body ended.
            pub done: bool,
        }

        thread_local! {
            static LOOP: IoLoop = IoLoop::new().expect("a loop");
        }

        /// Decodes a response body with the client's decoder as it comes off a stream in
        /// `pieces` (each written to the peer socket, then taken from the stream's buffer).
        ///
        /// # Errors
        ///
        /// The head or the body is refused (the error's text).
        pub fn client_body(
            head: &[u8],
            method: &str,
            decompress: bool,
            limit: u64,
            pieces: &[&[u8]],
        ) -> Result<ClientBody, String> {
            let head = ResponseHead::parse(head).map_err(|e| e.to_string())?;
            let mut decoding =
                BodyDecoding::new(&head, method, decompress, limit).map_err(|e| e.to_string())?;
            LOOP.with(|ioloop| {
                let (ours, theirs) = std::os::unix::net::UnixStream::pair().expect("a pair");
                let stream = IoStream::new(ioloop, ours).expect("a stream");
                let mut body = Vec::new();
                for piece in pieces.iter().filter(|p| !p.is_empty()) {
                    if decoding.is_done() {
                        break;
                    }
                    (&theirs).write_all(piece).expect("room in the socket");
                    let want = stream.buffered() + piece.len();
                    while stream.buffered() < want {
                        ioloop
                            .run_sync(stream.wait_for_more(stream.buffered()))
                            .expect("the loop runs")
                            .expect("the stream reads");
                    }
                    decoding
                        .take_buffered(&stream, &mut body, usize::MAX)
                        .map_err(|e| e.to_string())?;
                }
                Ok(ClientBody {
                    body,
                    done: decoding.is_done(),
                })
            })
        }

        /// A client URL's parts.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Url {
            /// `https`/`wss`.
            pub secure: bool,
            /// The host, without brackets.
            pub host: String,
            /// The port.
            pub port: u16,
            /// `host[:port]` as written.
            pub authority: String,
            /// Path and query.
            pub target: String,
            /// The URL written out again.
            pub shown: String,
        }

        fn url(u: &HttpUrl, schemes: [&'static str; 2]) -> Url {
            Url {
                secure: u.secure,
                host: u.host.clone(),
                port: u.port,
                authority: u.authority.clone(),
                target: u.target.clone(),
                shown: u.display(schemes).to_string(),
            }
        }

        /// Parses a client URL with `http`/`https` (or `ws`/`wss` when `websocket`).
        pub fn parse_url(input: &str, websocket: bool) -> Option<Url> {
            let schemes = if websocket {
                ["ws", "wss"]
            } else {
                ["http", "https"]
            };
            HttpUrl::parse(input, schemes).map(|u| url(&u, schemes))
        }

        /// Resolves a `Location` against a base URL (`http`/`https`).
        pub fn join_url(base: &str, location: &str) -> Option<Url> {
            let schemes = ["http", "https"];
            let base = HttpUrl::parse(base, schemes)?;
            base.join(location, schemes).map(|u| url(&u, schemes))
        }
    }

    /// WebSocket: frame headers, UTF-8, close payloads, handshakes, permessage-deflate.
    pub mod websocket {
        use crate::http::Request;
        use crate::websocket::{DeflateOptions, HandshakePolicy, Opcode, OriginPolicy, Role};

        /// A frame header as read.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct Header {
            /// FIN.
            pub fin: bool,
            /// RSV1 (compressed).
            pub rsv1: bool,
            /// The opcode, as on the wire.
            pub opcode: u8,
            /// The masking key.
            pub mask: Option<[u8; 4]>,
            /// The payload's length.
            pub payload_len: u64,
            /// The header's length.
            pub header_len: usize,
        }

        /// Reads a frame header as a server (`server`) or a client would.
        ///
        /// # Errors
        ///
        /// The close code the reader answers with.
        pub fn read_header(
            buf: &[u8],
            server: bool,
            compression: bool,
        ) -> Result<Option<Header>, u16> {
            let role = if server { Role::Server } else { Role::Client };
            let header =
                crate::websocket::read_header(buf, role, compression).map_err(|v| v.code)?;
            Ok(header.map(|h| Header {
                fin: h.fin,
                rsv1: h.rsv1,
                opcode: match h.opcode {
                    Opcode::Continuation => 0x0,
                    Opcode::Text => 0x1,
                    Opcode::Binary => 0x2,
                    Opcode::Close => 0x8,
                    Opcode::Ping => 0x9,
                    Opcode::Pong => 0xA,
                },
                mask: h.mask,
                payload_len: h.payload_len,
                header_len: h.header_len,
            }))
        }

        /// Unmasks `data` as if it started `offset` bytes into the payload.
        pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: u64) {
            crate::websocket::apply_mask(data, key, offset);
        }

        /// The incremental UTF-8 check of a text message.
        pub fn check_utf8(text: &[u8], checked: &mut usize, complete: bool) -> bool {
            crate::websocket::check_utf8(text, checked, complete)
        }

        /// A close frame's code and reason.
        ///
        /// # Errors
        ///
        /// The close code answered.
        pub fn parse_close(payload: &[u8]) -> Result<Option<(u16, String)>, u16> {
            crate::websocket::parse_close(payload).map_err(|v| v.code)
        }

        /// `Sec-WebSocket-Accept` for a key.
        pub fn accept_key(key: &str) -> String {
            crate::websocket::accept_key(key)
        }

        /// The server's check of a handshake request: the 101's fields, or the refusal's
        /// status.
        ///
        /// # Errors
        ///
        /// The status of the refusal.
        pub fn check_request(
            request: &Request,
            same_origin: bool,
            subprotocols: &[String],
            compression: bool,
        ) -> Result<Vec<(String, String)>, u16> {
            let policy = HandshakePolicy {
                origins: if same_origin {
                    OriginPolicy::SameOrigin
                } else {
                    OriginPolicy::Any
                },
                subprotocols: subprotocols.to_vec(),
                compression: compression.then(DeflateOptions::default),
            };
            match crate::websocket::check_request(request, &policy) {
                Ok(accepted) => Ok(accepted
                    .response
                    .headers()
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect()),
                Err(response) => Err(response.status()),
            }
        }

        /// The client's check of the server's answer.
        ///
        /// # Errors
        ///
        /// Why it is refused.
        pub fn check_response(
            head: &[u8],
            key: &str,
            subprotocols: &[String],
            compression: bool,
        ) -> Result<Option<String>, String> {
            let options = DeflateOptions::default();
            crate::websocket::check_response(
                head,
                key,
                subprotocols,
                compression.then_some(&options),
            )
            .map(|n| n.subprotocol)
        }

        /// The server's choice among permessage-deflate offers: its answer.
        pub fn accept_offer(offers: &[&str], no_context_takeover: bool) -> Option<String> {
            let options = DeflateOptions {
                no_context_takeover,
                ..DeflateOptions::default()
            };
            crate::websocket::accept_offer(offers.iter().copied(), &options).map(|(_, a)| a)
        }

        /// The client's check of the server's permessage-deflate answer.
        ///
        /// # Errors
        ///
        /// Why it is refused.
        pub fn accept_answer(answer: &str) -> Result<(), String> {
            crate::websocket::accept_answer(answer, &DeflateOptions::default()).map(|_| ())
        }

        /// A permessage-deflate pair: a client compressor and the server's decompressor,
        /// as negotiated from the client's offer `offer`.
        #[allow(missing_debug_implementations)]
        pub struct Deflate {
            client: crate::websocket::Deflate,
            server: crate::websocket::Deflate,
        }

        /// Why a message did not inflate.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum InflateError {
            /// Corrupt (1007).
            Corrupt,
            /// Over the limit (1009).
            TooBig,
        }

        impl Deflate {
            /// Negotiates `offer` (a `Sec-WebSocket-Extensions` value); `None` if declined.
            pub fn new(offer: &str, no_context_takeover: bool) -> Option<Deflate> {
                let options = DeflateOptions {
                    no_context_takeover,
                    ..DeflateOptions::default()
                };
                let (agreed, answer) =
                    crate::websocket::accept_offer(std::iter::once(offer), &options)?;
                let client_agreed = crate::websocket::accept_answer(&answer, &options).ok()?;
                Some(Deflate {
                    client: crate::websocket::Deflate::new(client_agreed, Role::Client, &options),
                    server: crate::websocket::Deflate::new(agreed, Role::Server, &options),
                })
            }

            /// Compresses a message as the client sends it.
            pub fn compress(&mut self, data: &[u8]) -> Vec<u8> {
                let mut out = Vec::new();
                self.client.compress(data, &mut out);
                out
            }

            /// Inflates a message as the server reads it, at most `limit` bytes.
            ///
            /// # Errors
            ///
            /// Corrupt or over the limit.
            pub fn decompress(
                &mut self,
                data: &[u8],
                limit: usize,
            ) -> Result<Vec<u8>, InflateError> {
                self.server.decompress(data, limit).map_err(|e| match e {
                    crate::websocket::InflateError::Corrupt => InflateError::Corrupt,
                    crate::websocket::InflateError::TooBig => InflateError::TooBig,
                })
            }
        }
    }

    /// The static-file handler's path resolution and validators.
    pub mod web {
        use std::path::PathBuf;
        use std::time::SystemTime;

        use crate::http::Request;
        use crate::web::{RangeAnswer, StaticFiles};

        /// The file `relative` names under `root`, or the status answered.
        ///
        /// # Errors
        ///
        /// 403 or 404.
        pub fn resolve(root: &std::path::Path, relative: &str) -> Result<PathBuf, u16> {
            StaticFiles::new(root)
                .resolve(relative)
                .map(|(path, _)| path)
        }

        /// A `Range` field against a file of `size` bytes: `Ok(None)` for the whole file,
        /// `Ok(Some((first, last)))` for a part, `Err(())` for 416.
        #[allow(clippy::result_unit_err)]
        pub fn byte_range(field: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
            match crate::web::byte_range(field, size) {
                RangeAnswer::Whole => Ok(None),
                RangeAnswer::Part(first, last) => Ok(Some((first, last))),
                RangeAnswer::Unsatisfiable => Err(()),
            }
        }

        /// Whether an `If-Range` value lets a range be answered.
        pub fn if_range_holds(
            if_range: Option<&[u8]>,
            etag: &str,
            modified: SystemTime,
            now: SystemTime,
        ) -> bool {
            crate::web::if_range_holds(if_range, etag, modified, now)
        }

        /// Whether the request's validators say its copy is current (304).
        pub fn not_modified(request: &Request, etag: &str, modified: SystemTime) -> bool {
            crate::web::not_modified(request, etag, modified)
        }
    }

    /// The Redis client's reply decoding: the header scan that enforces its limits, then
    /// `redis-protocol`'s decoder, as the client runs them over its read buffer.
    pub mod redis {
        pub use crate::redis::{ProtocolError, Value, MAX_DEPTH};

        /// Where the first complete reply of `buf` ends, `None` while it is incomplete,
        /// or the violation its headers show (bulk over `max_bulk`, too deep, not RESP).
        ///
        /// # Errors
        ///
        /// The violation.
        pub fn frame_len(buf: &[u8], max_bulk: usize) -> Result<Option<usize>, ProtocolError> {
            crate::redis::resp::frame_len(buf, max_bulk)
        }

        /// Decodes one complete reply (as delimited by [`frame_len`]).
        ///
        /// # Errors
        ///
        /// The decoder's refusal.
        pub fn decode(frame: &[u8], resp3: bool) -> Result<Value, ProtocolError> {
            crate::redis::resp::decode(frame, resp3)
        }

        /// The client's read of its buffer: every whole reply, the bytes they took, and
        /// the violation that stopped the reading.
        pub fn decode_replies(
            buf: &[u8],
            max_bulk: usize,
            resp3: bool,
        ) -> (Vec<Value>, usize, Option<ProtocolError>) {
            crate::redis::resp::decode_replies(buf, max_bulk, resp3)
        }

        /// Appends `args` as one command, as the client sends it.
        pub fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
            crate::redis::resp::encode_command(out, args);
        }
    }

    /// XSRF tokens' format (Tornado's version 2 and version 1).
    pub mod xsrf {
        /// The raw token and timestamp of a cookie's or argument's token, or `None`.
        pub fn decode_token(text: &str) -> Option<([u8; 16], u64)> {
            crate::web::decode_xsrf_token(text)
        }

        /// `token` masked with `mask`, as the pages show it.
        pub fn mask_token(token: &[u8; 16], mask: [u8; 4], timestamp: u64) -> String {
            crate::web::mask_xsrf_token(token, mask, timestamp)
        }
    }

    /// The loop's timer heap.
    pub mod timers {
        use std::time::Instant;

        use crate::reactor::timer_heap::TimerHeap;
        use crate::Timeout;

        /// The timer heap holding `u64` values instead of callbacks.
        #[derive(Debug)]
        pub struct Timers(TimerHeap<u64>);

        impl Timers {
            /// An empty heap measuring from `epoch`.
            pub fn new(epoch: Instant) -> Timers {
                Timers(TimerHeap::new(epoch))
            }
            /// Adds a timeout.
            pub fn insert(&mut self, deadline: Instant, value: u64) -> Timeout {
                self.0.insert(deadline, value)
            }
            /// Whether it is pending.
            pub fn contains(&self, timeout: Timeout) -> bool {
                self.0.contains(timeout)
            }
            /// Cancels it.
            pub fn remove(&mut self, timeout: Timeout) -> Option<u64> {
                self.0.remove(timeout)
            }
            /// Collects the due batch.
            pub fn collect_due(&mut self, now: Instant, due: &mut Vec<Timeout>) {
                self.0.collect_due(now, due);
            }
            /// Takes one entry of the due batch.
            pub fn take_due(&mut self, timeout: Timeout) -> Option<u64> {
                self.0.take_due(timeout)
            }
            /// The earliest deadline.
            pub fn next_deadline(&mut self) -> Option<Instant> {
                self.0.next_deadline()
            }
            /// Pending timeouts.
            pub fn len(&self) -> usize {
                self.0.len()
            }
            /// Whether none is pending.
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
            /// Heap entries, stale ones included.
            pub fn heap_entries(&self) -> usize {
                self.0.heap_entries()
            }
        }
    }
}
