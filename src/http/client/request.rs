//! [`ClientRequest`]: what to fetch and how (Tornado's `HTTPRequest`), and the request
//! head the client writes for it.

use std::time::Duration;

use super::error::FetchError;
use crate::http::head::{is_safe_value, is_token};
use crate::http::url::HttpUrl;

/// A request for [`HttpClient::fetch`](super::HttpClient::fetch): a method, a URL,
/// header fields, a body, and the limits the fetch keeps. The defaults are Tornado's:
/// 20 s connect and request timeouts, up to 5 redirects followed, gzip decompressed; the
/// body is capped at 100 MiB.
///
/// The client sets `Host`, `Content-Length`, `User-Agent` (unless set here) and
/// `Accept-Encoding: gzip` (when decompressing and unless set here) itself.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ioloop::http::ClientRequest;
///
/// let request = ClientRequest::new("POST", "http://127.0.0.1:8888/items")
///     .header("Content-Type", "application/json")
///     .body(r#"{"name":"a"}"#)
///     .request_timeout(Duration::from_secs(5))
///     .max_redirects(0);
/// assert_eq!(request.method(), "POST");
/// assert_eq!(request.url(), "http://127.0.0.1:8888/items");
/// ```
#[derive(Debug, Clone)]
pub struct ClientRequest {
    pub(super) method: String,
    pub(super) url: String,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
    pub(super) connect_timeout: Duration,
    pub(super) request_timeout: Duration,
    pub(super) follow_redirects: bool,
    pub(super) max_redirects: u32,
    pub(super) decompress: bool,
    pub(super) max_body_size: u64,
    pub(super) expect_continue: bool,
}

/// The cap on a response body by default (Tornado's `max_body_size`).
pub const DEFAULT_MAX_BODY_SIZE: u64 = 100 * 1024 * 1024;

impl ClientRequest {
    /// A request with `method` (a token such as `GET`, sent as given: methods are
    /// case-sensitive, `post` is not `POST`) for `url`
    /// (`http://` or, with the `tls` feature, `https://`). Both are checked when it is
    /// fetched.
    ///
    /// # Examples
    ///
    /// ```
    /// let request = ioloop::http::ClientRequest::new("DELETE", "http://localhost/items/7");
    /// assert_eq!(request.method(), "DELETE");
    /// ```
    pub fn new(method: impl AsRef<str>, url: impl AsRef<str>) -> ClientRequest {
        ClientRequest {
            method: method.as_ref().to_owned(),
            url: url.as_ref().to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            connect_timeout: Duration::from_secs(20),
            request_timeout: Duration::from_secs(20),
            follow_redirects: true,
            max_redirects: 5,
            decompress: true,
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            expect_continue: false,
        }
    }

    /// A `GET` for `url` (also what a `&str` converts into).
    ///
    /// # Examples
    ///
    /// ```
    /// let request = ioloop::http::ClientRequest::get("http://localhost/");
    /// assert_eq!(request.method(), "GET");
    /// ```
    pub fn get(url: impl AsRef<str>) -> ClientRequest {
        ClientRequest::new("GET", url)
    }

    /// Adds a header field (sent in the order added; a name may repeat).
    ///
    /// # Examples
    ///
    /// ```
    /// # use ioloop::http::{Dispatch, Request, Response, Service};
    /// # struct EchoToken;
    /// # impl Service for EchoToken {
    /// #     fn dispatch(&self, req: &mut Request) -> Dispatch {
    /// #         Dispatch::Respond(Response::text(req.header("x-token").unwrap_or("").to_owned()))
    /// #     }
    /// # }
    /// use ioloop::http::{ClientRequest, HttpClient, HttpServer};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// // A server answering with the request's X-Token field.
    /// let port = HttpServer::new(&ioloop, EchoToken).bind("127.0.0.1:0")?.port();
    /// let request = ClientRequest::get(format!("http://127.0.0.1:{port}/"))
    ///     .header("X-Token", "s3cret");
    /// let response = ioloop.run_sync(HttpClient::new(&ioloop).fetch(request))??;
    /// assert_eq!(response.body(), b"s3cret");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn header(mut self, name: impl AsRef<str>, value: impl AsRef<str>) -> ClientRequest {
        let (name, value) = (name.as_ref(), value.as_ref());
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The body, sent with a `Content-Length`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::rc::Rc;
    /// # use ioloop::http::{Dispatch, Handler, Request, Responder, Service};
    /// # struct Echo;
    /// # impl Handler for Echo {
    /// #     fn call(&self, mut req: Request, responder: Responder) {
    /// #         let length = req.header("content-length").unwrap_or("none").to_owned();
    /// #         let body = String::from_utf8(req.take_body()).unwrap();
    /// #         responder.send(format!("{length}: {body}"));
    /// #     }
    /// # }
    /// # struct App;
    /// # impl Service for App {
    /// #     fn dispatch(&self, _req: &mut Request) -> Dispatch {
    /// #         Dispatch::handle(Rc::new(Echo))
    /// #     }
    /// # }
    /// use ioloop::http::{ClientRequest, HttpClient, HttpServer};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// // A server answering with the request's Content-Length and body.
    /// let port = HttpServer::new(&ioloop, App).bind("127.0.0.1:0")?.port();
    /// let request = ClientRequest::new("POST", format!("http://127.0.0.1:{port}/"))
    ///     .body("a=1&b=2");
    /// let response = ioloop.run_sync(HttpClient::new(&ioloop).fetch(request))??;
    /// assert_eq!(response.body(), b"7: a=1&b=2");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> ClientRequest {
        self.body = body.into();
        self
    }

    /// The limit on resolving, connecting and the TLS handshake (default 20 s).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let request = ioloop::http::ClientRequest::get("http://localhost/")
    ///     .connect_timeout(Duration::from_secs(2));
    /// # let _ = request;
    /// ```
    pub fn connect_timeout(mut self, limit: Duration) -> ClientRequest {
        self.connect_timeout = limit;
        self
    }

    /// The limit on the whole fetch, from the call to the body's last byte, waiting for
    /// a free connection and every redirect included (default 20 s). For
    /// [`fetch_streaming`](super::HttpClient::fetch_streaming), the body's chunks must
    /// arrive by the same deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ioloop::http::{ClientRequest, FetchError, HttpClient};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// // A listening socket that never accepts: the connection is made, no answer comes.
    /// let (_silent, port) = ioloop::testing::bind_unused_port()?;
    /// let request = ClientRequest::get(format!("http://127.0.0.1:{port}/"))
    ///     .request_timeout(Duration::from_millis(50));
    /// let outcome = ioloop.run_sync(HttpClient::new(&ioloop).fetch(request))?;
    /// assert!(matches!(outcome, Err(FetchError::Timeout)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn request_timeout(mut self, limit: Duration) -> ClientRequest {
        self.request_timeout = limit;
        self
    }

    /// Whether to follow redirects (default yes); when not, a 3xx is the response.
    ///
    /// # Examples
    ///
    /// ```
    /// let request = ioloop::http::ClientRequest::get("http://localhost/").follow_redirects(false);
    /// # let _ = request;
    /// ```
    pub fn follow_redirects(mut self, follow: bool) -> ClientRequest {
        self.follow_redirects = follow;
        self
    }

    /// The most redirects followed (default 5); one more is
    /// [`FetchError::TooManyRedirects`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use ioloop::http::{Dispatch, Request, Response, Service};
    /// # struct Loop;
    /// # impl Service for Loop {
    /// #     fn dispatch(&self, _req: &mut Request) -> Dispatch {
    /// #         Dispatch::Respond(Response::redirect("/again", false))
    /// #     }
    /// # }
    /// use ioloop::http::{ClientRequest, FetchError, HttpClient, HttpServer};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// // A server that redirects every request.
    /// let port = HttpServer::new(&ioloop, Loop).bind("127.0.0.1:0")?.port();
    /// let request = ClientRequest::get(format!("http://127.0.0.1:{port}/")).max_redirects(2);
    /// let outcome = ioloop.run_sync(HttpClient::new(&ioloop).fetch(request))?;
    /// assert!(matches!(outcome, Err(FetchError::TooManyRedirects { limit: 2 })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_redirects(mut self, limit: u32) -> ClientRequest {
        self.max_redirects = limit;
        self
    }

    /// Whether to ask for and decompress a gzip body (default yes).
    ///
    /// # Examples
    ///
    /// ```
    /// let request = ioloop::http::ClientRequest::get("http://localhost/").decompress(false);
    /// # let _ = request;
    /// ```
    pub fn decompress(mut self, decompress: bool) -> ClientRequest {
        self.decompress = decompress;
        self
    }

    /// The most bytes of body accepted, after decompression (default 100 MiB); past it
    /// the fetch fails with [`FetchError::BodyTooLarge`], whatever the server declared.
    ///
    /// # Examples
    ///
    /// ```
    /// let request = ioloop::http::ClientRequest::get("http://localhost/").max_body_size(1 << 20);
    /// # let _ = request;
    /// ```
    pub fn max_body_size(mut self, limit: u64) -> ClientRequest {
        self.max_body_size = limit;
        self
    }

    /// Sends `Expect: 100-continue` and holds the body back until the server answers
    /// `100 Continue` (or for one second, as curl does), so a server that refuses the
    /// request (413, 401) does so before the body travels. A request without a body
    /// sends no `Expect`.
    ///
    /// # Examples
    ///
    /// ```
    /// let request = ioloop::http::ClientRequest::new("PUT", "http://localhost/upload")
    ///     .body(vec![0u8; 1 << 20])
    ///     .expect_continue(true);
    /// # let _ = request;
    /// ```
    pub fn expect_continue(mut self, expect: bool) -> ClientRequest {
        self.expect_continue = expect;
        self
    }

    /// The method.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::ClientRequest;
    /// assert_eq!(ClientRequest::new("PATCH", "http://localhost/items/7").method(), "PATCH");
    /// assert_eq!(ClientRequest::from("http://localhost/").method(), "GET");
    /// ```
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The URL as given.
    ///
    /// # Examples
    ///
    /// ```
    /// let request = ioloop::http::ClientRequest::get("HTTP://LocalHost:8080/a?q=1");
    /// assert_eq!(request.url(), "HTTP://LocalHost:8080/a?q=1"); // as given, not normalized
    /// ```
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Refuses a method or field the request line and head cannot carry, and framing
    /// fields set by hand (the client frames the body itself: a second framing would be
    /// request smuggling).
    pub(crate) fn check(&self) -> Result<(), FetchError> {
        if !is_token(&self.method) {
            return Err(FetchError::InvalidRequest(format!(
                "method {:?}",
                self.method
            )));
        }
        for (name, value) in &self.headers {
            let framing = name.eq_ignore_ascii_case("content-length")
                || name.eq_ignore_ascii_case("transfer-encoding");
            if framing || !is_token(name) || !is_safe_value(value) {
                return Err(FetchError::InvalidRequest(format!("header field {name:?}")));
            }
        }
        Ok(())
    }

    /// Whether the method is idempotent (RFC 9110 §9.2.2): safe to send again when a
    /// reused connection turns out to be closed.
    pub(crate) fn is_idempotent(&self) -> bool {
        ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"].contains(&&*self.method)
    }

    /// Whether the request asks to close the connection after its response.
    pub(crate) fn asks_close(&self) -> bool {
        self.headers.iter().any(|(name, value)| {
            name.eq_ignore_ascii_case("connection")
                && value
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("close"))
        })
    }

    /// Whether the body waits for `100 Continue`: asked for, and there is a body.
    pub(crate) fn waits_for_continue(&self) -> bool {
        self.expect_continue && !self.body.is_empty()
    }

    fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// Becomes the request a redirect with `status` asks for (RFC 9110 §15.4): a `POST`
    /// answered with 301 or 302, or anything but `HEAD` answered with 303, becomes a
    /// `GET` without a body; 307 and 308 keep both. Credentials, cookies and a `Host` set
    /// by hand are not sent to another origin.
    pub(crate) fn redirect(&mut self, status: u16, same_origin: bool) {
        let to_get = match status {
            301 | 302 => self.method == "POST",
            303 => self.method != "HEAD",
            _ => false,
        };
        if to_get {
            self.method = "GET".to_owned();
            self.body = Vec::new();
            self.expect_continue = false;
            self.headers.retain(|(name, _)| {
                !(name.len() > 8 && name[..8].eq_ignore_ascii_case("content-"))
            });
        }
        if !same_origin {
            self.headers.retain(|(name, _)| {
                !["authorization", "cookie", "proxy-authorization", "host"]
                    .iter()
                    .any(|n| name.eq_ignore_ascii_case(n))
            });
        }
    }

    /// Writes the request line and head for `url` into `out`.
    pub(crate) fn write_head(&self, url: &HttpUrl, out: &mut Vec<u8>) {
        let push = |out: &mut Vec<u8>, parts: &[&str]| {
            for part in parts {
                out.extend_from_slice(part.as_bytes());
            }
        };
        push(out, &[&self.method, " ", &url.target, " HTTP/1.1\r\n"]);
        if !self.has_header("host") {
            push(out, &["Host: ", &url.authority, "\r\n"]);
        }
        for (name, value) in &self.headers {
            push(out, &[name, ": ", value, "\r\n"]);
        }
        if !self.has_header("user-agent") {
            out.extend_from_slice(b"User-Agent: ioloop\r\n");
        }
        if self.decompress && !self.has_header("accept-encoding") {
            out.extend_from_slice(b"Accept-Encoding: gzip\r\n");
        }
        let expects_body = ["POST", "PUT", "PATCH"].contains(&&*self.method);
        if !self.body.is_empty() || expects_body {
            push(
                out,
                &["Content-Length: ", &self.body.len().to_string(), "\r\n"],
            );
        }
        if self.waits_for_continue() {
            out.extend_from_slice(b"Expect: 100-continue\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
}

impl From<&str> for ClientRequest {
    fn from(url: &str) -> ClientRequest {
        ClientRequest::get(url)
    }
}

impl From<String> for ClientRequest {
    fn from(url: String) -> ClientRequest {
        ClientRequest::get(url)
    }
}

impl From<&String> for ClientRequest {
    fn from(url: &String) -> ClientRequest {
        ClientRequest::get(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::url::HTTP;

    fn head(request: &ClientRequest, url: &str) -> String {
        let mut out = Vec::new();
        request.write_head(&HttpUrl::parse(url, HTTP).unwrap(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_head_carries_host_framing_and_defaults() {
        let get = ClientRequest::get("http://h:81/a?b");
        assert_eq!(
            head(&get, "http://h:81/a?b"),
            "GET /a?b HTTP/1.1\r\nHost: h:81\r\nUser-Agent: ioloop\r\nAccept-Encoding: gzip\r\n\r\n"
        );
        let post = ClientRequest::new("POST", "http://h/")
            .header("User-Agent", "me")
            .decompress(false)
            .body("abc")
            .expect_continue(true);
        assert_eq!(
            head(&post, "http://h/"),
            "POST / HTTP/1.1\r\nHost: h\r\nUser-Agent: me\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
        );
        let empty_put = ClientRequest::new("PUT", "http://h/").decompress(false);
        assert!(head(&empty_put, "http://h/").contains("Content-Length: 0\r\n"));
    }

    #[test]
    fn unsafe_methods_and_fields_are_refused() {
        for request in [
            ClientRequest::new("GE T", "http://h/"),
            ClientRequest::get("http://h/").header("X", "a\r\nInjected: 1"),
            ClientRequest::get("http://h/").header("Bad Name", "v"),
            ClientRequest::get("http://h/").header("Content-Length", "5"),
            ClientRequest::get("http://h/").header("transfer-encoding", "chunked"),
        ] {
            assert!(matches!(
                request.check(),
                Err(FetchError::InvalidRequest(_))
            ));
        }
        assert!(ClientRequest::get("http://h/")
            .header("X", "ok")
            .check()
            .is_ok());
    }

    #[test]
    fn redirects_follow_the_method_rules() {
        let post = || {
            ClientRequest::new("POST", "http://h/")
                .header("Content-Type", "text/plain")
                .header("Authorization", "secret")
                .body("x")
        };
        for (status, method, body) in [
            (301, "GET", ""),
            (302, "GET", ""),
            (303, "GET", ""),
            (307, "POST", "x"),
            (308, "POST", "x"),
        ] {
            let mut request = post();
            request.redirect(status, true);
            assert_eq!(
                (&*request.method, &*request.body),
                (method, body.as_bytes())
            );
            assert_eq!(request.has_header("content-type"), method == "POST");
            assert!(request.has_header("authorization"));
        }
        let mut request = post().header("Host", "virtual.example");
        request.redirect(307, false);
        assert!(!request.has_header("authorization"));
        assert!(!request.has_header("host"));
        let mut head = ClientRequest::new("HEAD", "http://h/");
        head.redirect(303, true);
        assert_eq!(head.method, "HEAD");
        let mut put = ClientRequest::new("PUT", "http://h/").body("x");
        put.redirect(302, true);
        assert_eq!((&*put.method, &*put.body), ("PUT", &b"x"[..]));
    }
}
