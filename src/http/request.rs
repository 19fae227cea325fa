//! [`Request`]: a parsed request head, its body, the peer, and the path captures the
//! router found; with query, form and cookie arguments decoded on demand.

use std::fmt;
use std::net::SocketAddr;

use percent_encoding::percent_decode;

use super::cookie::unquote;
use super::extensions::Extensions;
use super::head::{split_host, ParsedHead, Version};

/// An HTTP request, as a handler receives it.
///
/// Its head is kept as received (one buffer) and read through accessors; the body is
/// whole for ordinary routes (and empty for routes that stream it, see
/// [`Responder`](crate::http::Responder)).
///
/// # Examples
///
/// ```
/// use ioloop::http::Request;
/// let req = Request::parse(b"GET /users/7?name=a%20b HTTP/1.1\r\nHost: x\r\nCookie: s=1; t=2\r\n\r\n")
///     .unwrap();
/// assert_eq!(req.method(), "GET");
/// assert_eq!(req.path(), "/users/7");
/// assert_eq!(req.query_arg("name").as_deref(), Some("a b"));
/// assert_eq!(req.header("host"), Some("x"));
/// assert_eq!(req.cookie("t").as_deref(), Some("2"));
/// ```
pub struct Request {
    head: ParsedHead,
    body: Vec<u8>,
    peer: SocketAddr,
    /// The request came over TLS.
    secure: bool,
    params: Vec<(String, String)>,
    ext: Extensions,
}

impl Request {
    pub(crate) fn new(head: ParsedHead, peer: SocketAddr) -> Request {
        Request {
            head,
            body: Vec::new(),
            peer,
            secure: false,
            params: Vec::new(),
            ext: Extensions::default(),
        }
    }

    /// Marks the request as received over TLS.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub(crate) fn set_secure(&mut self) {
        self.secure = true;
    }

    /// `"https"` when the request came over TLS, else `"http"` (Tornado's
    /// `request.protocol`, without its `xheaders`: behind a proxy that ends TLS, this is
    /// the proxy's connection).
    ///
    /// # Examples
    ///
    /// ```
    /// let req = ioloop::http::Request::parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    /// assert_eq!(req.protocol(), "http");
    /// ```
    pub fn protocol(&self) -> &'static str {
        if self.secure {
            "https"
        } else {
            "http"
        }
    }

    /// Parses a whole request head (for tests and tools; the server parses its own).
    ///
    /// # Errors
    ///
    /// A description of what is malformed.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// let req = Request::parse(b"POST /items HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    ///     .unwrap();
    /// assert_eq!((req.method(), req.path()), ("POST", "/items"));
    /// assert!(Request::parse(b"not a request\r\n\r\n").is_err());
    /// ```
    pub fn parse(head: &[u8]) -> Result<Request, String> {
        let limits = super::head::HeadLimits {
            max_bytes: 65536,
            max_headers: 100,
        };
        let parsed = super::head::parse_head(head, limits).map_err(|e| e.to_string())?;
        Ok(Request::new(parsed, SocketAddr::from(([127, 0, 0, 1], 0))))
    }

    /// The method or the target, as `str`.
    fn request_line_part(&self, range: &std::ops::Range<u16>) -> &str {
        let bytes = self.head.fields.span(range);
        // `parse_head` refuses a head whose method or target is not ASCII, and the head's
        // bytes never change after it, so this is always UTF-8 (checking costs a few
        // nanoseconds for a request line).
        debug_assert!(bytes.is_ascii());
        std::str::from_utf8(bytes).unwrap_or_default()
    }

    /// Refuses a request whose `Host` does not name the resource as RFC 9112 §3.2 asks:
    /// an HTTP/1.1 request without one, or any request with more than one or with a
    /// value that is not `uri-host [ ":" port ]`. The server answers it with 400.
    pub(crate) fn check_host(&self) -> Result<(), &'static str> {
        let mut hosts = self
            .header_fields()
            .filter(|(name, _)| name.eq_ignore_ascii_case(b"host"))
            .map(|(_, value)| value);
        match (hosts.next(), hosts.next()) {
            (Some(_), Some(_)) => Err("more than one Host field"),
            (None, _) if self.version() == Version::Http11 => {
                Err("an HTTP/1.1 request without Host")
            }
            (Some(host), None) if split_host(host).is_none() => Err("an invalid Host"),
            // The authority of an absolute-form target stands for Host (RFC 9112 §3.2.2),
            // and an `http` URI names a host (RFC 9110 §4.2.1).
            _ => match absolute_form(self.target()) {
                Some((authority, _))
                    if split_host(authority.as_bytes()).is_none_or(|(h, _)| h.is_empty()) =>
                {
                    Err("an invalid authority in the request target")
                }
                _ => Ok(()),
            },
        }
    }

    /// The method (`GET`, `POST`, ...), as sent.
    ///
    /// # Examples
    ///
    /// ```
    /// let req = ioloop::http::Request::parse(b"DELETE /a HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    /// assert_eq!(req.method(), "DELETE");
    /// ```
    pub fn method(&self) -> &str {
        self.request_line_part(&self.head.method)
    }

    /// The request target as sent: path and query (the origin form), or a whole URI
    /// (the absolute form, `http://host/path?query`).
    ///
    /// # Examples
    ///
    /// ```
    /// let req = ioloop::http::Request::parse(b"GET /a?b=c HTTP/1.1\r\n\r\n").unwrap();
    /// assert_eq!(req.target(), "/a?b=c");
    /// ```
    pub fn target(&self) -> &str {
        self.request_line_part(&self.head.target)
    }

    /// The path and query of the target: the target itself, or what follows the
    /// authority of an absolute-form target.
    fn path_and_query(&self) -> &str {
        let target = self.target();
        absolute_form(target).map_or(target, |(_, rest)| rest)
    }

    /// The path (the target before `?`), not decoded. For an absolute-form target
    /// (RFC 9112 §3.2.2) it is the URI's path, `/` if it has none.
    ///
    /// # Examples
    ///
    /// ```
    /// let req = ioloop::http::Request::parse(b"GET http://a.example/b?c HTTP/1.1\r\n\r\n").unwrap();
    /// assert_eq!(req.path(), "/b");
    /// ```
    pub fn path(&self) -> &str {
        let rest = self.path_and_query();
        match rest.split_once('?').map_or(rest, |(path, _)| path) {
            "" => "/",
            path => path,
        }
    }

    /// The query string (after `?`), not decoded; empty without one.
    ///
    /// # Examples
    ///
    /// ```
    /// let req = ioloop::http::Request::parse(b"GET /a?b=c HTTP/1.1\r\n\r\n").unwrap();
    /// assert_eq!(req.query(), "b=c");
    /// ```
    pub fn query(&self) -> &str {
        self.path_and_query()
            .split_once('?')
            .map_or("", |(_, query)| query)
    }

    /// The host the request is for, `host[:port]` as sent: the authority of an
    /// absolute-form target, which replaces the `Host` field (RFC 9112 §3.2.2), else the
    /// `Host` field. The server has checked it (400 otherwise); `None` only for an
    /// HTTP/1.0 request without `Host`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// let req = Request::parse(b"GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n").unwrap();
    /// assert_eq!(req.host(), Some("example.com:8080"));
    /// let req = Request::parse(b"GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n").unwrap();
    /// assert_eq!(req.host(), Some("a.example"));
    /// ```
    pub fn host(&self) -> Option<&str> {
        self.header("host")
    }

    /// The HTTP version.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::{Request, Version};
    /// let req = Request::parse(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    /// assert_eq!(req.version(), Version::Http10);
    /// ```
    pub fn version(&self) -> Version {
        self.head.version
    }

    /// The value of the first header field named `name` (case-insensitive), if it is
    /// UTF-8. For an absolute-form target, `host` reads as the target's authority, which
    /// replaces the field (RFC 9112 §3.2.2; see [`host`](Request::host)).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// let req = Request::parse(b"GET / HTTP/1.1\r\nAccept: text/html\r\n\r\n").unwrap();
    /// assert_eq!(req.header("ACCEPT"), Some("text/html"));
    /// assert_eq!(req.header("user-agent"), None);
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_bytes(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The raw value of the first header field named `name` (case-insensitive).
    ///
    /// # Examples
    ///
    /// ```
    /// let req = ioloop::http::Request::parse(b"GET / HTTP/1.1\r\nX: \xff\r\n\r\n").unwrap();
    /// assert_eq!(req.header_bytes("x"), Some(&b"\xff"[..]));
    /// assert_eq!(req.header("x"), None);
    /// ```
    pub fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        if name.eq_ignore_ascii_case("host") {
            if let Some((authority, _)) = absolute_form(self.target()) {
                return Some(authority.as_bytes());
            }
        }
        self.head.fields.first(name)
    }

    /// Every header field as (name, value) bytes, in order, as sent (a `Host` field
    /// included, even where an absolute-form target replaces it).
    ///
    /// # Examples
    ///
    /// ```
    /// let req = ioloop::http::Request::parse(b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n").unwrap();
    /// assert_eq!(req.header_fields().count(), 2);
    /// ```
    pub fn header_fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.head.fields.iter()
    }

    /// Whether some header field `name` lists `token` (comma-separated, case-insensitive):
    /// `has_token("connection", "close")`.
    ///
    /// # Examples
    ///
    /// ```
    /// let req = ioloop::http::Request::parse(b"GET / HTTP/1.1\r\nConnection: Keep-Alive, Upgrade\r\n\r\n").unwrap();
    /// assert!(req.has_token("connection", "upgrade"));
    /// ```
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.head.fields.lists_token(name, token)
    }

    /// The body (empty for a route that streams it).
    ///
    /// # Examples
    ///
    /// ```
    /// let req = ioloop::http::Request::parse(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    /// assert!(req.body().is_empty());
    /// ```
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Takes the body out.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut req = ioloop::http::Request::parse(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    /// assert!(req.take_body().is_empty());
    /// ```
    pub fn take_body(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.body)
    }

    /// A copy of the request without its body (for an error page written after the
    /// handler took the request); it shares the extensions.
    #[cfg_attr(not(feature = "web"), allow(dead_code))]
    pub(crate) fn clone_without_body(&self) -> Request {
        Request {
            head: self.head.clone(),
            body: Vec::new(),
            peer: self.peer,
            secure: self.secure,
            params: self.params.clone(),
            ext: self.ext.clone(),
        }
    }

    /// Sets the body (the server does, once it is read; tests of handlers may).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut req = ioloop::http::Request::parse(b"POST / HTTP/1.1\r\n\r\n").unwrap();
    /// req.set_body(b"hello".to_vec());
    /// assert_eq!(req.body(), b"hello");
    /// ```
    pub fn set_body(&mut self, body: Vec<u8>) {
        self.body = body;
    }

    /// The address of the client.
    ///
    /// # Examples
    ///
    /// ```
    /// let req = ioloop::http::Request::parse(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    /// assert!(req.peer_addr().ip().is_loopback());
    /// ```
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// A path capture by name (`{id}` in the route), percent-decoded.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut req = ioloop::http::Request::parse(b"GET /users/a%2Fb HTTP/1.1\r\n\r\n").unwrap();
    /// req.set_params(vec![("id".into(), "a/b".into())]);
    /// assert_eq!(req.param("id"), Some("a/b"));
    /// ```
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sets the path captures (the router does, after matching).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// let mut req = Request::parse(b"GET /posts/3/comments/9 HTTP/1.1\r\n\r\n").unwrap();
    /// req.set_params(vec![("post".into(), "3".into()), ("comment".into(), "9".into())]);
    /// assert_eq!((req.param("post"), req.param("comment")), (Some("3"), Some("9")));
    /// ```
    pub fn set_params(&mut self, params: Vec<(String, String)>) {
        self.params = params;
    }

    /// The request's [`Extensions`]: values of any type handed along with it (by a
    /// `prepare` hook, the current-user hook, the web layer).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut req = ioloop::http::Request::parse(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    /// assert!(req.extensions().is_empty());
    /// req.extensions_mut().insert(42u32);
    /// assert_eq!(req.extensions().get::<u32>(), Some(&42));
    /// ```
    pub fn extensions(&self) -> &Extensions {
        &self.ext
    }

    /// The request's [`Extensions`], to add a value.
    ///
    /// # Examples
    ///
    /// ```
    /// struct UserId(u64);
    /// let mut req = ioloop::http::Request::parse(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    /// req.extensions_mut().insert(UserId(7));
    /// assert_eq!(req.extensions().get::<UserId>().map(|u| u.0), Some(7));
    /// ```
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.ext
    }

    /// The first query argument named `name`, decoded (`+` is a space).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// let req = Request::parse(b"GET /search?q=caf%C3%A9+au+lait&q=2 HTTP/1.1\r\n\r\n").unwrap();
    /// assert_eq!(req.query_arg("q").as_deref(), Some("café au lait"));
    /// assert_eq!(req.query_arg("page"), None);
    /// ```
    pub fn query_arg(&self, name: &str) -> Option<String> {
        form_arg(self.query().as_bytes(), name)
    }

    /// The first argument named `name` of an `application/x-www-form-urlencoded` body,
    /// decoded; `None` for other bodies.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// let mut req = Request::parse(b"POST / HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n").unwrap();
    /// req.set_body(b"a=1&b=x+y".to_vec());
    /// assert_eq!(req.form_arg("b").as_deref(), Some("x y"));
    /// ```
    pub fn form_arg(&self, name: &str) -> Option<String> {
        let form = self
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
        if !form {
            return None;
        }
        form_arg(&self.body, name)
    }

    /// The value of cookie `name` from the `Cookie` header fields (the first one of that
    /// name), without the double quotes around it if it has them (as Tornado's
    /// `get_cookie`; RFC 6265 §4.1.1 allows them). Whitespace around the name and the
    /// value is ignored.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// let req = Request::parse(b"GET / HTTP/1.1\r\nHost: x\r\nCookie: a=1; b=\"two\"\r\n\r\n")
    ///     .unwrap();
    /// assert_eq!(req.cookie("b").as_deref(), Some("two"));
    /// ```
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.header_fields()
            .filter(|(n, _)| n.eq_ignore_ascii_case(b"cookie"))
            .flat_map(|(_, v)| v.split(|&b| b == b';'))
            .find_map(|pair| {
                let eq = pair.iter().position(|&b| b == b'=')?;
                let value = unquote(pair[eq + 1..].trim_ascii());
                (pair[..eq].trim_ascii() == name.as_bytes())
                    .then(|| String::from_utf8_lossy(value).into_owned())
            })
    }
}

/// The authority and the rest (path and query) of an absolute-form target,
/// `scheme "://" authority [path] ["?" query]` (RFC 9112 §3.2.2, RFC 3986 §3); `None` for
/// the origin form (`/path`) and the others.
fn absolute_form(target: &str) -> Option<(&str, &str)> {
    if target.starts_with('/') {
        return None;
    }
    let (scheme, rest) = target.split_once("://")?;
    let mut scheme = scheme.bytes();
    let valid_scheme = scheme.next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !valid_scheme {
        return None;
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    Some(rest.split_at(end))
}

/// The first `name=value` pair of a urlencoded string, decoded.
fn form_arg(encoded: &[u8], name: &str) -> Option<String> {
    encoded.split(|&b| b == b'&').find_map(|pair| {
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &b""[..]),
        };
        (decode_form(key) == name).then(|| decode_form(value))
    })
}

fn decode_form(bytes: &[u8]) -> String {
    let spaced: Vec<u8> = bytes
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_decode(&spaced).decode_utf8_lossy().into_owned()
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method())
            .field("target", &self.target())
            .field("version", &self.version())
            .field("body_len", &self.body.len())
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absolute_form_target_gives_its_path_query_and_authority() {
        // RFC 9112 §3.2.2: the server accepts the absolute-form and uses its authority
        // in place of the Host field.
        let req =
            Request::parse(b"GET http://example.com:8080/a/b?c=d HTTP/1.1\r\nHost: other\r\n\r\n")
                .unwrap();
        assert_eq!(req.target(), "http://example.com:8080/a/b?c=d");
        assert_eq!((req.path(), req.query()), ("/a/b", "c=d"));
        assert_eq!(req.host(), Some("example.com:8080"));
        assert_eq!(req.header("Host"), Some("example.com:8080"));
        assert_eq!(
            req.header_fields().next().unwrap().1,
            b"other",
            "the field as sent"
        );
        assert_eq!(req.check_host(), Ok(()));

        for (target, path, query) in [
            ("HTTPS://a", "/", ""),
            ("http://a?x=1", "/", "x=1"),
            ("svn+ssh.1://a/p", "/p", ""),
        ] {
            let req =
                Request::parse(format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes())
                    .unwrap();
            assert_eq!(
                (req.path(), req.query(), req.host()),
                (path, query, Some("a")),
                "{target}"
            );
        }
        // Not the absolute-form: as sent.
        for target in ["/http://a/b", "1http://a/b", "*", "a/b?u=http://c/d"] {
            let req =
                Request::parse(format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes())
                    .unwrap();
            assert_eq!(req.host(), Some("h"), "{target}");
            assert_eq!(req.path(), target.split('?').next().unwrap(), "{target}");
        }
        // Its authority is checked as Host is, and names a host.
        for bad in ["http://u@a/", "http://a:x/", "http:///x", "http://:80/x"] {
            let req = Request::parse(format!("GET {bad} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes())
                .unwrap();
            assert!(req.check_host().is_err(), "{bad}");
        }
    }

    #[test]
    fn host_is_required_in_http_1_1_and_valid_in_any_version() {
        // RFC 9112 §3.2.
        let check = |head: &str| Request::parse(head.as_bytes()).unwrap().check_host();
        assert!(check("GET / HTTP/1.1\r\n\r\n").is_err());
        assert!(check("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n").is_err());
        assert!(check("GET / HTTP/1.1\r\nHost: a b\r\n\r\n").is_err());
        assert!(check("GET / HTTP/1.0\r\nHost: a/b\r\n\r\n").is_err());
        assert_eq!(check("GET / HTTP/1.0\r\n\r\n"), Ok(()));
        assert_eq!(check("GET / HTTP/1.1\r\nhOST: a:1\r\n\r\n"), Ok(()));
    }
}
