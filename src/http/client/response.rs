//! What a fetch gives back: [`ResponseHead`] (the status line and header fields, parsed
//! by the same head parser as the server's requests) and [`ClientResponse`] (a head with its
//! whole body).

use std::fmt;

use super::error::FetchError;
use crate::http::head::{parse_response_head, HeadError, HeadLimits, ParsedResponseHead, Version};

/// The most bytes of a response head (64 KiB, less one so that every offset in it fits
/// in 16 bits), and the most header lines in one.
pub(crate) const MAX_HEAD_BYTES: usize = 64 * 1024 - 1;
const MAX_HEADERS: usize = 100;

/// A response's status line and header fields, kept as received (one buffer) and read
/// through accessors.
///
/// # Examples
///
/// ```
/// use ioloop::http::ResponseHead;
/// let head = ResponseHead::parse(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").unwrap();
/// assert_eq!((head.status(), head.reason()), (404, "Not Found"));
/// assert_eq!(head.header("content-length"), Some("0"));
/// ```
#[derive(Clone)]
pub struct ResponseHead {
    head: ParsedResponseHead,
}

impl ResponseHead {
    /// Parses a whole response head (the client parses its own; this is for tests and
    /// tools).
    ///
    /// # Errors
    ///
    /// [`FetchError::Protocol`] for a malformed or incomplete head,
    /// [`FetchError::HeadTooLarge`] past 64 KiB or 100 header lines.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::{FetchError, ResponseHead};
    /// let head = ResponseHead::parse(b"HTTP/1.1 301 Moved Permanently\r\nLocation: /a\r\n\r\n")?;
    /// assert_eq!((head.status(), head.header("location")), (301, Some("/a")));
    /// let malformed = ResponseHead::parse(b"HTTP/1.1 abc\r\n\r\n");
    /// assert!(matches!(malformed, Err(FetchError::Protocol(_))));
    /// # Ok::<(), FetchError>(())
    /// ```
    pub fn parse(head: &[u8]) -> Result<ResponseHead, FetchError> {
        let limits = HeadLimits {
            max_bytes: MAX_HEAD_BYTES,
            max_headers: MAX_HEADERS,
        };
        match parse_response_head(head, limits) {
            Ok(head) => Ok(ResponseHead { head }),
            Err(HeadError::TooLarge(_)) => Err(FetchError::HeadTooLarge),
            Err(HeadError::Malformed(why)) => Err(FetchError::Protocol(why)),
        }
    }

    /// The status code.
    ///
    /// # Examples
    ///
    /// ```
    /// let head = ioloop::http::ResponseHead::parse(b"HTTP/1.1 503 Service Unavailable\r\n\r\n")?;
    /// assert_eq!(head.status(), 503);
    /// # Ok::<(), ioloop::http::FetchError>(())
    /// ```
    pub fn status(&self) -> u16 {
        self.head.status
    }

    /// The reason phrase as sent (it may be empty).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::ResponseHead;
    /// assert_eq!(ResponseHead::parse(b"HTTP/1.1 200 Fine by me\r\n\r\n")?.reason(), "Fine by me");
    /// assert_eq!(ResponseHead::parse(b"HTTP/1.1 200 \r\n\r\n")?.reason(), "");
    /// # Ok::<(), ioloop::http::FetchError>(())
    /// ```
    pub fn reason(&self) -> &str {
        let bytes = self.head.fields.span(&self.head.reason);
        // httparse takes a reason of visible ASCII, spaces and obs-text.
        std::str::from_utf8(bytes).unwrap_or("")
    }

    /// The version the server answered with.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::{ResponseHead, Version};
    /// let head = ResponseHead::parse(b"HTTP/1.0 200 OK\r\n\r\n").unwrap();
    /// assert_eq!(head.version(), Version::Http10);
    /// ```
    pub fn version(&self) -> Version {
        self.head.version
    }

    /// The value of the first header field named `name` (case-insensitive), if UTF-8.
    ///
    /// # Examples
    ///
    /// ```
    /// let head = ioloop::http::ResponseHead::parse(
    ///     b"HTTP/1.1 200 OK\r\nVary: Accept\r\nVary: Cookie\r\nX-Raw: \xff\r\n\r\n",
    /// )?;
    /// assert_eq!(head.header("VARY"), Some("Accept")); // the first of its name
    /// assert_eq!(head.header("x-raw"), None); // not UTF-8: see `header_bytes`
    /// assert_eq!(head.header("etag"), None);
    /// # Ok::<(), ioloop::http::FetchError>(())
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
    /// let head = ioloop::http::ResponseHead::parse(b"HTTP/1.1 200 OK\r\nX: \xff\r\n\r\n").unwrap();
    /// assert_eq!(head.header_bytes("x"), Some(&b"\xff"[..]));
    /// ```
    pub fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        self.head.fields.first(name)
    }

    /// Every header field as (name, value) bytes, in order (`Set-Cookie` may repeat).
    ///
    /// # Examples
    ///
    /// ```
    /// let head = ioloop::http::ResponseHead::parse(
    ///     b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n",
    /// ).unwrap();
    /// let cookies = head.header_fields().filter(|(n, _)| n.eq_ignore_ascii_case(b"set-cookie"));
    /// assert_eq!(cookies.count(), 2);
    /// ```
    pub fn header_fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.head.fields.iter()
    }

    /// Whether some header field `name` lists `token` (comma-separated, case-insensitive).
    ///
    /// # Examples
    ///
    /// ```
    /// let head = ioloop::http::ResponseHead::parse(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n").unwrap();
    /// assert!(head.has_token("connection", "close"));
    /// ```
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.head.fields.lists_token(name, token)
    }

    /// Marks the body as decompressed, as Tornado does: the `Content-Encoding` and
    /// `Content-Length` fields, which described the compressed body, are dropped, and
    /// `X-Consumed-Content-Encoding` says what was undone (when the head has room).
    pub(crate) fn mark_decompressed(&mut self) {
        let coding = self.header("content-encoding").unwrap_or("gzip").to_owned();
        let fields = &mut self.head.fields;
        fields.remove(&["content-encoding", "content-length"]);
        fields.push(
            b"X-Consumed-Content-Encoding",
            coding.as_bytes(),
            MAX_HEAD_BYTES,
        );
    }

    /// Whether the server lets the connection carry another request: HTTP/1.1 unless it
    /// says `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`.
    pub(crate) fn keeps_alive(&self) -> bool {
        match self.head.version {
            Version::Http11 => !self.has_token("connection", "close"),
            Version::Http10 => self.has_token("connection", "keep-alive"),
        }
    }
}

impl fmt::Debug for ResponseHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields: Vec<_> = self
            .header_fields()
            .map(|(n, v)| (String::from_utf8_lossy(n), String::from_utf8_lossy(v)))
            .collect();
        f.debug_struct("ResponseHead")
            .field("status", &self.head.status)
            .field("reason", &self.reason())
            .field("version", &self.head.version)
            .field("fields", &fields)
            .finish()
    }
}

/// A whole response: its head, its body (decompressed when it came gzipped), and the URL
/// it came from after any redirects.
///
/// # Examples
///
/// ```no_run
/// let ioloop = ioloop::IoLoop::new()?;
/// let client = ioloop::http::HttpClient::new(&ioloop);
/// let response = ioloop.run_sync(client.fetch("http://127.0.0.1:8888/"))??;
/// println!("{} {}: {} bytes", response.status(), response.url(), response.body().len());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClientResponse {
    pub(super) head: ResponseHead,
    pub(super) body: Vec<u8>,
    pub(super) url: String,
}

impl ClientResponse {
    /// The status code.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ioloop::http::{Dispatch, Request, Response, Service};
    /// # struct Site;
    /// # impl Service for Site {
    /// #     fn dispatch(&self, req: &mut Request) -> Dispatch {
    /// #         Dispatch::Respond(match req.path() {
    /// #             "/" => Response::text("hello").header("X-Served-By", "site"),
    /// #             "/teapot" => Response::new(418).reason("I Am A Teapot"),
    /// #             "/old" => Response::redirect("/new", true),
    /// #             "/new" => Response::text("moved here"),
    /// #             _ => Response::error(404),
    /// #         })
    /// #     }
    /// # }
    /// use ioloop::http::{HttpClient, HttpServer};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let port = HttpServer::new(&ioloop, Site).bind("127.0.0.1:0")?.port();
    /// let client = HttpClient::new(&ioloop);
    /// let response = ioloop.run_sync(client.fetch(format!("http://127.0.0.1:{port}/missing")))??;
    /// assert_eq!(response.status(), 404);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn status(&self) -> u16 {
        self.head.status()
    }

    /// The reason phrase as sent, as [`ResponseHead::reason`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use ioloop::http::{Dispatch, Request, Response, Service};
    /// # struct Site;
    /// # impl Service for Site {
    /// #     fn dispatch(&self, req: &mut Request) -> Dispatch {
    /// #         Dispatch::Respond(match req.path() {
    /// #             "/" => Response::text("hello").header("X-Served-By", "site"),
    /// #             "/teapot" => Response::new(418).reason("I Am A Teapot"),
    /// #             "/old" => Response::redirect("/new", true),
    /// #             "/new" => Response::text("moved here"),
    /// #             _ => Response::error(404),
    /// #         })
    /// #     }
    /// # }
    /// use ioloop::http::{HttpClient, HttpServer};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let port = HttpServer::new(&ioloop, Site).bind("127.0.0.1:0")?.port();
    /// let client = HttpClient::new(&ioloop);
    /// // /teapot answers "418 I Am A Teapot".
    /// let response = ioloop.run_sync(client.fetch(format!("http://127.0.0.1:{port}/teapot")))??;
    /// assert_eq!((response.status(), response.reason()), (418, "I Am A Teapot"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reason(&self) -> &str {
        self.head.reason()
    }

    /// The status line and header fields. A body that came gzipped and was
    /// decompressed has lost its `Content-Encoding` and `Content-Length` fields and
    /// gained `X-Consumed-Content-Encoding`, as in Tornado.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let ioloop = ioloop::IoLoop::new()?;
    /// # let client = ioloop::http::HttpClient::new(&ioloop);
    /// let response = ioloop.run_sync(client.fetch("http://127.0.0.1:8888/"))??;
    /// println!("{:?}", response.head().header("content-type"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn head(&self) -> &ResponseHead {
        &self.head
    }

    /// The value of the first header field named `name`, as
    /// [`ResponseHead::header`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use ioloop::http::{Dispatch, Request, Response, Service};
    /// # struct Site;
    /// # impl Service for Site {
    /// #     fn dispatch(&self, req: &mut Request) -> Dispatch {
    /// #         Dispatch::Respond(match req.path() {
    /// #             "/" => Response::text("hello").header("X-Served-By", "site"),
    /// #             "/teapot" => Response::new(418).reason("I Am A Teapot"),
    /// #             "/old" => Response::redirect("/new", true),
    /// #             "/new" => Response::text("moved here"),
    /// #             _ => Response::error(404),
    /// #         })
    /// #     }
    /// # }
    /// use ioloop::http::{HttpClient, HttpServer};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let port = HttpServer::new(&ioloop, Site).bind("127.0.0.1:0")?.port();
    /// let client = HttpClient::new(&ioloop);
    /// // / answers with an "X-Served-By: site" field.
    /// let response = ioloop.run_sync(client.fetch(format!("http://127.0.0.1:{port}/")))??;
    /// assert_eq!(response.header("x-served-by"), Some("site"));
    /// assert_eq!(response.header("Content-Length"), Some("5"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }

    /// The body.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ioloop::http::{Dispatch, Request, Response, Service};
    /// # struct Site;
    /// # impl Service for Site {
    /// #     fn dispatch(&self, req: &mut Request) -> Dispatch {
    /// #         Dispatch::Respond(match req.path() {
    /// #             "/" => Response::text("hello").header("X-Served-By", "site"),
    /// #             "/teapot" => Response::new(418).reason("I Am A Teapot"),
    /// #             "/old" => Response::redirect("/new", true),
    /// #             "/new" => Response::text("moved here"),
    /// #             _ => Response::error(404),
    /// #         })
    /// #     }
    /// # }
    /// use ioloop::http::{HttpClient, HttpServer};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let port = HttpServer::new(&ioloop, Site).bind("127.0.0.1:0")?.port();
    /// let client = HttpClient::new(&ioloop);
    /// let response = ioloop.run_sync(client.fetch(format!("http://127.0.0.1:{port}/")))??;
    /// assert_eq!(response.body(), b"hello");
    /// let response = ioloop.run_sync(client.fetch(format!("http://127.0.0.1:{port}/missing")))??;
    /// assert_eq!(response.body(), b"404 Not Found\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Takes the body.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let ioloop = ioloop::IoLoop::new()?;
    /// # let client = ioloop::http::HttpClient::new(&ioloop);
    /// let body: Vec<u8> = ioloop.run_sync(client.fetch("http://127.0.0.1:8888/"))??.into_body();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// The URL the response came from: the request's, or the last redirect's.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ioloop::http::{Dispatch, Request, Response, Service};
    /// # struct Site;
    /// # impl Service for Site {
    /// #     fn dispatch(&self, req: &mut Request) -> Dispatch {
    /// #         Dispatch::Respond(match req.path() {
    /// #             "/" => Response::text("hello").header("X-Served-By", "site"),
    /// #             "/teapot" => Response::new(418).reason("I Am A Teapot"),
    /// #             "/old" => Response::redirect("/new", true),
    /// #             "/new" => Response::text("moved here"),
    /// #             _ => Response::error(404),
    /// #         })
    /// #     }
    /// # }
    /// use ioloop::http::{HttpClient, HttpServer};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let port = HttpServer::new(&ioloop, Site).bind("127.0.0.1:0")?.port();
    /// let client = HttpClient::new(&ioloop);
    /// // /old redirects to /new.
    /// let response = ioloop.run_sync(client.fetch(format!("http://127.0.0.1:{port}/old")))??;
    /// assert_eq!(response.url(), format!("http://127.0.0.1:{port}/new"));
    /// assert_eq!(response.body(), b"moved here");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn url(&self) -> &str {
        &self.url
    }
}
