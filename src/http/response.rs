//! [`Response`]: a status, header fields and a whole body, and [`IntoResponse`] for the
//! values handlers return.

use std::borrow::Cow;
use std::fmt;

use super::cookie::{Cookie, CookieError};
use super::error::HttpError;
use super::head::{is_safe_value, is_token};
use super::status::reason_phrase;

/// An HTTP response with its whole body (for a body sent piece by piece, see
/// [`Responder::start`](crate::http::Responder::start)).
///
/// The server adds `Date`, `Server`, `Content-Length` (or the chunked coding) and
/// `Connection` itself; set them here only to override `Server`.
///
/// # Examples
///
/// ```
/// use ioloop::http::Response;
/// let response = Response::new(200)
///     .header("Content-Type", "application/json")
///     .body(r#"{"ok":true}"#);
/// assert_eq!(response.status(), 200);
/// assert_eq!(response.get_header("content-type"), Some("application/json"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    reason: Option<Cow<'static, str>>,
    headers: Vec<(Cow<'static, str>, Cow<'static, str>)>,
    body: Cow<'static, [u8]>,
    /// The error this response is the default page of (an [`HttpError`]'s answer), for
    /// the web layer's error page to replace.
    pub(crate) error: Option<Box<HttpError>>,
}

/// Whether a header field can be written as is: the name a token (RFC 9110 §5.6.2), the
/// value free of line breaks and NUL. Logs a warning when not.
fn is_safe_field(name: &str, value: &str) -> bool {
    let safe = is_token(name) && is_safe_value(value);
    if !safe {
        log::warn!(target: "ioloop::http", "dropped an unsafe response header field {name:?}");
    }
    safe
}

/// The bytes of a whole response body, made from a `&'static str` or `&'static [u8]`
/// without copying, or from an owned `String` or `Vec<u8>`.
///
/// # Examples
///
/// ```
/// use ioloop::http::{Body, Response};
/// let from_text: Body = "static text".into();
/// let from_bytes = Body::from(vec![1u8, 2, 3]);
/// assert_eq!(from_bytes.as_bytes(), &[1, 2, 3]);
/// let r = Response::new(200).body(from_text);
/// assert_eq!(r.body_bytes(), b"static text");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Body(Cow<'static, [u8]>);

impl Body {
    /// The bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Body;
    /// assert_eq!(Body::from("abc").as_bytes(), b"abc");
    /// assert_eq!(Body::from(String::from("é")).as_bytes(), "é".as_bytes());
    /// assert!(Body::default().as_bytes().is_empty());
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Body {
        Body(Cow::Borrowed(text.as_bytes()))
    }
}

impl From<String> for Body {
    fn from(text: String) -> Body {
        Body(Cow::Owned(text.into_bytes()))
    }
}

impl From<&'static [u8]> for Body {
    fn from(bytes: &'static [u8]) -> Body {
        Body(Cow::Borrowed(bytes))
    }
}

impl<const N: usize> From<&'static [u8; N]> for Body {
    fn from(bytes: &'static [u8; N]) -> Body {
        Body(Cow::Borrowed(bytes))
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Body {
        Body(Cow::Owned(bytes))
    }
}

impl From<Cow<'static, [u8]>> for Body {
    fn from(bytes: Cow<'static, [u8]>) -> Body {
        Body(bytes)
    }
}

impl From<Cow<'static, str>> for Body {
    fn from(text: Cow<'static, str>) -> Body {
        match text {
            Cow::Borrowed(s) => Body::from(s),
            Cow::Owned(s) => Body::from(s),
        }
    }
}

impl Response {
    /// An empty response with `status`.
    ///
    /// # Examples
    ///
    /// ```
    /// let r = ioloop::http::Response::new(204);
    /// assert_eq!((r.status(), r.reason_phrase()), (204, "No Content"));
    /// assert!(r.body_bytes().is_empty());
    /// assert_eq!(r.headers().count(), 0);
    /// ```
    pub fn new(status: u16) -> Response {
        Response {
            status,
            reason: None,
            headers: Vec::new(),
            body: Cow::Borrowed(&[]),
            error: None,
        }
    }

    /// `200 OK` with `body` as `text/plain; charset=utf-8`.
    ///
    /// # Examples
    ///
    /// ```
    /// let r = ioloop::http::Response::text("hi");
    /// assert_eq!(r.body_bytes(), b"hi");
    /// ```
    pub fn text(body: impl Into<Cow<'static, str>>) -> Response {
        Response::new(200)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(body.into())
    }

    /// `200 OK` with `body` as `application/json` (the text is sent as given).
    ///
    /// # Examples
    ///
    /// ```
    /// let r = ioloop::http::Response::json(r#"{"a":1}"#);
    /// assert_eq!(r.get_header("Content-Type"), Some("application/json"));
    /// ```
    pub fn json(body: impl Into<Cow<'static, str>>) -> Response {
        Response::text(body).header("Content-Type", "application/json")
    }

    /// `status` with a short plain-text body saying what it is (`"404 Not Found\n"`):
    /// the answer the server gives to bad requests.
    ///
    /// # Examples
    ///
    /// ```
    /// let r = ioloop::http::Response::error(404);
    /// assert_eq!(r.body_bytes(), b"404 Not Found\n");
    /// ```
    pub fn error(status: u16) -> Response {
        let text = format!("{status} {}\n", reason_phrase(status));
        Response::text(text).status_code(status)
    }

    /// A redirect to `location`: 301 when `permanent`, else 302 (Tornado's `redirect`).
    ///
    /// # Examples
    ///
    /// ```
    /// let r = ioloop::http::Response::redirect("/login", false);
    /// assert_eq!((r.status(), r.get_header("Location")), (302, Some("/login")));
    /// ```
    pub fn redirect(location: impl Into<Cow<'static, str>>, permanent: bool) -> Response {
        Response::new(if permanent { 301 } else { 302 }).header("Location", location)
    }

    /// Sets the status.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ioloop::http::Response::text("gone").status_code(410).status(), 410);
    /// ```
    pub fn status_code(mut self, status: u16) -> Response {
        self.status = status;
        self
    }

    /// Sets the reason phrase (default: the standard one for the status).
    ///
    /// # Examples
    ///
    /// ```
    /// let r = ioloop::http::Response::new(299).reason("Fine");
    /// assert_eq!(r.reason_phrase(), "Fine");
    /// ```
    pub fn reason(mut self, reason: impl Into<Cow<'static, str>>) -> Response {
        let reason = reason.into();
        // A reason phrase is one line of visible text.
        if reason
            .bytes()
            .all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
        {
            self.reason = Some(reason);
        }
        self
    }

    /// Adds a header field. A name that is not a token (RFC 9110 §5.1) or a value with a
    /// line break or NUL is refused: the field is dropped (and a warning logged), so a value
    /// from a request can never inject fields.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Response;
    /// let r = Response::new(200)
    ///     .header("X-Request-Id", "42")
    ///     .header("X-Evil", "a\r\nSet-Cookie: b");
    /// assert_eq!(r.get_header("x-request-id"), Some("42"));
    /// // A value with a line break is dropped, so it cannot add a field.
    /// assert_eq!(r.get_header("X-Evil"), None);
    /// ```
    pub fn header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> Response {
        self.set_header(name, value);
        self
    }

    /// Sets a header field, replacing others of the same name (case-insensitive). Unsafe
    /// fields are dropped as by [`header`](Response::header).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut r = ioloop::http::Response::text("x");
    /// r.set_header("content-type", "text/html");
    /// assert_eq!(r.get_header("Content-Type"), Some("text/html"));
    /// ```
    pub fn set_header(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) {
        let (name, value) = (name.into(), value.into());
        if !is_safe_field(&name, &value) {
            return;
        }
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        self.headers.push((name, value));
    }

    /// Adds a header field without replacing others of the same name (`Set-Cookie`).
    /// Unsafe fields are dropped as by [`header`](Response::header).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut r = ioloop::http::Response::new(204);
    /// r.append_header("Set-Cookie", "a=1");
    /// r.append_header("Set-Cookie", "b=2");
    /// assert_eq!(r.headers().count(), 2);
    /// ```
    pub fn append_header(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) {
        let (name, value) = (name.into(), value.into());
        if is_safe_field(&name, &value) {
            self.headers.push((name, value));
        }
    }

    /// Sets a cookie: adds `Set-Cookie: name=value; Path=/` (for more attributes, see
    /// [`with_cookie`](Response::with_cookie)).
    ///
    /// The name must be a token and the value cookie-octets, optionally in double quotes
    /// (RFC 6265 §4.1.1): a value is never quoted, escaped or cut on the caller's behalf.
    /// A handler may return the `Result` as is: an error answers 500 without the cookie.
    ///
    /// # Errors
    ///
    /// A [`CookieError`] naming the byte at fault; the response is dropped with it, so
    /// nothing of a refused cookie can be sent by mistake.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::{CookieError, Response};
    /// let r = Response::new(204).cookie("session", "abc")?.cookie("theme", "\"dark\"")?;
    /// assert_eq!(r.get_header("Set-Cookie"), Some("session=abc; Path=/"));
    /// assert!(Response::new(204).cookie("session", "x; Domain=evil").is_err());
    /// # Ok::<(), CookieError>(())
    /// ```
    pub fn cookie(self, name: &str, value: &str) -> Result<Response, CookieError> {
        self.with_cookie(&Cookie::new(name, value))
    }

    /// Sets a cookie with its attributes (see [`Cookie`]): the builder form of
    /// [`set_cookie`](Response::set_cookie).
    ///
    /// # Errors
    ///
    /// A [`CookieError`] naming the part of `cookie` that is not valid.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::{Cookie, CookieError, Response};
    /// let r = Response::new(204).with_cookie(&Cookie::new("session", "abc").http_only())?;
    /// assert_eq!(r.get_header("Set-Cookie"), Some("session=abc; Path=/; HttpOnly"));
    /// # Ok::<(), CookieError>(())
    /// ```
    pub fn with_cookie(mut self, cookie: &Cookie) -> Result<Response, CookieError> {
        self.set_cookie(cookie)?;
        Ok(self)
    }

    /// Deletes cookie `name` of path `/` (Tornado's `clear_cookie`; for another path or a
    /// domain, [`with_cookie`](Response::with_cookie) with [`Cookie::removal`]).
    ///
    /// # Errors
    ///
    /// A [`CookieError`] if `name` is not a token.
    ///
    /// # Examples
    ///
    /// ```
    /// let r = ioloop::http::Response::redirect("/", false).clear_cookie("user")?;
    /// assert_eq!(
    ///     r.get_header("Set-Cookie"),
    ///     Some("user=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0")
    /// );
    /// # Ok::<(), ioloop::http::CookieError>(())
    /// ```
    pub fn clear_cookie(self, name: &str) -> Result<Response, CookieError> {
        self.with_cookie(&Cookie::new(name, "").removal())
    }

    /// Adds a `Set-Cookie` field for `cookie` (see [`Cookie`]), or nothing if any part of
    /// it is not valid.
    ///
    /// # Errors
    ///
    /// A [`CookieError`] naming the part of `cookie` that is not valid; the response is
    /// left unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::{Cookie, Response};
    /// let mut r = Response::new(204);
    /// assert!(r.set_cookie(&Cookie::new("my session", "x")).is_err());
    /// assert_eq!(r.get_header("Set-Cookie"), None);
    /// r.set_cookie(&Cookie::new("session", "x").path("/app"))?;
    /// assert_eq!(r.get_header("Set-Cookie"), Some("session=x; Path=/app"));
    /// # Ok::<(), ioloop::http::CookieError>(())
    /// ```
    pub fn set_cookie(&mut self, cookie: &Cookie) -> Result<(), CookieError> {
        let value = cookie.to_header_value()?;
        self.append_header("Set-Cookie", value);
        Ok(())
    }

    /// Sets the body: a `&'static str` or byte string (not copied), a `String`, a
    /// `Vec<u8>` (see [`Body`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Response;
    /// assert_eq!(Response::new(200).body("static").body_bytes(), b"static");
    /// assert_eq!(Response::new(200).body(vec![0u8, 1]).body_bytes(), [0, 1]);
    /// assert_eq!(Response::new(200).body(format!("{}!", 7)).body_bytes(), b"7!");
    /// ```
    pub fn body(mut self, body: impl Into<Body>) -> Response {
        self.body = body.into().0;
        self
    }

    /// The status code.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Response;
    /// assert_eq!(Response::text("ok").status(), 200);
    /// assert_eq!(Response::error(503).status(), 503);
    /// ```
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase sent with the status.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Response;
    /// assert_eq!(Response::new(404).reason_phrase(), "Not Found");
    /// assert_eq!(Response::new(299).reason_phrase(), "Unknown");
    /// assert_eq!(Response::new(200).reason("Fine").reason_phrase(), "Fine");
    /// ```
    pub fn reason_phrase(&self) -> &str {
        self.reason
            .as_deref()
            .unwrap_or_else(|| reason_phrase(self.status))
    }

    /// The value of the first header field named `name` (case-insensitive).
    ///
    /// # Examples
    ///
    /// ```
    /// let r = ioloop::http::Response::text("hi");
    /// assert_eq!(r.get_header("CONTENT-TYPE"), Some("text/plain; charset=utf-8"));
    /// assert_eq!(r.get_header("Location"), None);
    /// ```
    pub fn get_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &**v)
    }

    /// Every header field, in order.
    ///
    /// # Examples
    ///
    /// ```
    /// let r = ioloop::http::Response::new(200).header("A", "1").header("B", "2");
    /// let fields: Vec<(&str, &str)> = r.headers().collect();
    /// assert_eq!(fields, [("A", "1"), ("B", "2")]);
    /// ```
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (&**n, &**v))
    }

    /// The body.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Response;
    /// assert_eq!(Response::new(200).body(&b"\x00\x01"[..]).body_bytes(), [0, 1]);
    /// assert!(Response::new(204).body_bytes().is_empty());
    /// ```
    pub fn body_bytes(&self) -> &[u8] {
        &self.body
    }

    /// Marks this response as the default page of `error`, for an application's error
    /// page to replace (the typed errors of JSON, forms and templates).
    #[cfg_attr(not(feature = "web"), allow(dead_code))]
    pub(crate) fn default_page_of(mut self, error: HttpError) -> Response {
        self.error = Some(Box::new(error));
        self
    }

    /// Takes out the error this response is the default page of, if it is one.
    #[cfg_attr(not(feature = "web"), allow(dead_code))]
    pub(crate) fn take_error(&mut self) -> Option<Box<HttpError>> {
        self.error.take()
    }

    pub(crate) fn into_parts(self) -> ResponseParts {
        ResponseParts {
            status: self.status,
            reason: self.reason,
            headers: self.headers,
            body: self.body,
        }
    }
}

/// A response taken apart, for the connection to encode.
pub(crate) struct ResponseParts {
    pub(crate) status: u16,
    pub(crate) reason: Option<Cow<'static, str>>,
    pub(crate) headers: Vec<(Cow<'static, str>, Cow<'static, str>)>,
    pub(crate) body: Cow<'static, [u8]>,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// A value a handler can answer with: a [`Response`], a string (200, `text/plain`), a
/// `Vec<u8>` (200, `application/octet-stream`), a `(status, value)` pair, or a `Result`
/// of two of these.
///
/// # Examples
///
/// ```
/// use ioloop::http::IntoResponse;
/// assert_eq!("hi".into_response().status(), 200);
/// assert_eq!((404, "no such user").into_response().status(), 404);
/// ```
pub trait IntoResponse {
    /// The response.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        Response::text(self)
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        Response::text(self)
    }
}

impl IntoResponse for Vec<u8> {
    fn into_response(self) -> Response {
        Response::new(200)
            .header("Content-Type", "application/octet-stream")
            .body(self)
    }
}

impl<R: IntoResponse> IntoResponse for (u16, R) {
    fn into_response(self) -> Response {
        self.1.into_response().status_code(self.0)
    }
}

/// The default page, `"{status} {public reason}\n"` in plain text, marked so that an
/// application's error page replaces it; logs the log message, if any, at `warn` level.
impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        if let Some(message) = self.log_message() {
            log::warn!(target: "ioloop::web", "{} {}: {message}", self.status(), self.public_reason());
        }
        let text = format!("{} {}\n", self.status(), self.public_reason());
        let status = self.status();
        let mut response = Response::text(text).status_code(status);
        response.error = Some(Box::new(self));
        response
    }
}

/// A refused cookie: `500 Internal Server Error` without the cookie, logged at `error`
/// level (Tornado's `set_cookie` raises `ValueError`, which answers 500).
impl IntoResponse for CookieError {
    fn into_response(self) -> Response {
        log::error!(target: "ioloop::http", "refused to set a cookie: {self}");
        Response::text("Internal Server Error").status_code(500)
    }
}

impl<R: IntoResponse, E: IntoResponse> IntoResponse for Result<R, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_that_could_inject_others_are_dropped() {
        let r = Response::new(200)
            .header("X-Ok", "fine")
            .header("X-Evil", "a\r\nSet-Cookie: stolen=1")
            .header("Bad Name", "x")
            .header("X-Colon:", "x")
            .header("", "x")
            .header("X-Nul", "a\0b");
        let names: Vec<&str> = r.headers().map(|(n, _)| n).collect();
        assert_eq!(names, ["X-Ok"]);
    }

    #[test]
    fn bodies_come_from_text_or_bytes_borrowed_or_owned() {
        assert_eq!(Response::new(200).body("abc").body_bytes(), b"abc");
        assert_eq!(
            Response::new(200).body(String::from("abc")).body_bytes(),
            b"abc"
        );
        assert_eq!(Response::new(200).body(b"abc").body_bytes(), b"abc");
        assert_eq!(Response::new(200).body(vec![b'a']).body_bytes(), b"a");
    }
}
