//! The output transforms an [`Application`](super::Application) applies where responses
//! leave it: the automatic ETag with its 304 (`compute_etag`, `check_etag_header`) and
//! gzip (`compress_response`). They sit between a handler's responder and the
//! connection, and run only for applications that turn them on.

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

use super::compress::{accepts_gzip, gzip, is_compressible, StreamEncoder, MIN_LENGTH};
use super::etag::{compute_etag, etag_matches};
use crate::http::{BodyChunk, Request, RequestConnection, ResponseParts, WrittenCallback};
use crate::stream::StreamError;

/// What the application turned on (its settings), per request.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct OutputSettings {
    /// `compress_response`.
    pub(super) gzip: bool,
    /// The automatic ETag.
    pub(super) etag: bool,
}

impl OutputSettings {
    pub(crate) fn any(&self) -> bool {
        self.gzip || self.etag
    }
}

/// A request's connection seen through the transforms.
pub(crate) struct Output {
    inner: Rc<dyn RequestConnection>,
    /// gzip is on and the client accepts it.
    gzip: bool,
    /// `compress_response` is on (`Vary: Accept-Encoding` goes on every answer).
    vary: bool,
    /// The ETag applies (a GET or HEAD on a route that keeps it), with the request's
    /// `If-None-Match`.
    etag: Option<Option<String>>,
    /// A HEAD request: a streamed answer keeps its length, uncompressed.
    head: bool,
    /// The encoder of a streamed body being compressed.
    encoder: RefCell<Option<StreamEncoder>>,
}

impl Output {
    /// Wraps `inner` for `request` (its method and fields are read now).
    pub(crate) fn wrap(
        inner: Rc<dyn RequestConnection>,
        settings: OutputSettings,
        route_etag: bool,
        request: &Request,
    ) -> Rc<dyn RequestConnection> {
        let safe = matches!(request.method(), "GET" | "HEAD");
        let etag = (settings.etag && route_etag && safe)
            .then(|| request.header("if-none-match").map(str::to_owned));
        let gzip = settings.gzip && request.header("accept-encoding").is_some_and(accepts_gzip);
        Rc::new(Output {
            inner,
            gzip,
            vary: settings.gzip,
            etag,
            head: request.method() == "HEAD",
            encoder: RefCell::new(None),
        })
    }
}

fn header<'a>(parts: &'a ResponseParts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| &**v)
}

fn remove(parts: &mut ResponseParts, name: &str) {
    parts.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
}

fn add_vary(parts: &mut ResponseParts) {
    match parts
        .headers
        .iter_mut()
        .find(|(n, _)| n.eq_ignore_ascii_case("vary"))
    {
        Some((_, value))
            if value
                .split(',')
                .any(|v| v.trim().eq_ignore_ascii_case("accept-encoding")) => {}
        Some((_, value)) => *value = Cow::Owned(format!("{value}, Accept-Encoding")),
        None => parts
            .headers
            .push(("Vary".into(), "Accept-Encoding".into())),
    }
}

/// Whether a response of this status and header fields may be gzipped.
fn may_gzip(parts: &ResponseParts) -> bool {
    !matches!(parts.status, 204 | 206 | 304)
        && !(100..200).contains(&parts.status)
        && header(parts, "content-encoding").is_none()
        && header(parts, "content-type").is_some_and(is_compressible)
}

impl RequestConnection for Output {
    fn answer(self: Rc<Self>, seq: u64, mut response: ResponseParts) {
        if let Some(if_none_match) = &self.etag {
            if response.status == 200 && header(&response, "etag").is_none() {
                let etag = compute_etag(&response.body);
                let fresh = if_none_match
                    .as_deref()
                    .is_some_and(|inm| etag_matches(inm, &etag));
                response.headers.push(("ETag".into(), etag.into()));
                if fresh {
                    // 304: no body, and none of the representation's own fields.
                    response.status = 304;
                    response.reason = None;
                    response.body = Cow::Borrowed(&[]);
                    for name in [
                        "content-type",
                        "content-length",
                        "content-encoding",
                        "content-language",
                    ] {
                        remove(&mut response, name);
                    }
                }
            }
        }
        if self.vary {
            add_vary(&mut response);
        }
        if self.gzip && response.body.len() >= MIN_LENGTH && may_gzip(&response) {
            response.body = Cow::Owned(gzip(&response.body));
            remove(&mut response, "content-length");
            response
                .headers
                .push(("Content-Encoding".into(), "gzip".into()));
        }
        self.inner.clone().answer(seq, response);
    }

    fn start_body(self: Rc<Self>, seq: u64, mut head: ResponseParts, length: Option<u64>) {
        if self.vary {
            add_vary(&mut head);
        }
        let mut length = length;
        if self.gzip && !self.head && may_gzip(&head) && length != Some(0) {
            remove(&mut head, "content-length");
            head.headers
                .push(("Content-Encoding".into(), "gzip".into()));
            length = None;
            *self.encoder.borrow_mut() = Some(StreamEncoder::new());
        }
        self.inner.clone().start_body(seq, head, length);
    }

    fn write_body(
        self: Rc<Self>,
        seq: u64,
        data: &[u8],
        written: Option<WrittenCallback>,
    ) -> Result<(), StreamError> {
        // The borrow ends before the connection runs (it may call `written` at once).
        let compressed = self.encoder.borrow_mut().as_mut().map(|e| e.piece(data));
        match compressed {
            Some(bytes) => self.inner.clone().write_body(seq, &bytes, written),
            None => self.inner.clone().write_body(seq, data, written),
        }
    }

    fn finish_body(self: Rc<Self>, seq: u64) {
        let tail = self.encoder.borrow_mut().take().map(|mut e| e.finish());
        if let Some(tail) = tail {
            let _ = self.inner.clone().write_body(seq, &tail, None);
        }
        self.inner.clone().finish_body(seq);
    }

    fn abandon_body(self: Rc<Self>, seq: u64) {
        let encoder = self.encoder.borrow_mut().take();
        drop(encoder);
        self.inner.clone().abandon_body(seq);
    }

    fn next_body_chunk(self: Rc<Self>, seq: u64, callback: Box<dyn FnOnce(BodyChunk)>) {
        self.inner.clone().next_body_chunk(seq, callback);
    }

    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    fn on_close(&self, seq: u64, callback: Box<dyn FnOnce()>) {
        self.inner.on_close(seq, callback);
    }
}
