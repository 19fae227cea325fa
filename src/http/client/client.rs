//! [`HttpClient`]: fetching URLs on the loop (Tornado's `AsyncHTTPClient`), with a
//! future or a callback, a whole body or one streamed chunk by chunk; redirects,
//! timeouts on the loop's timers, and the connection pool of `pool.rs`.

#[cfg(feature = "tls")]
use std::cell::OnceCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::error::FetchError;
use super::exchange::{send_request, AttemptError, Connection, Exchange};
use super::pool::{Origin, Pool};
use super::request::ClientRequest;
use super::response::{ClientResponse, ResponseHead};
use crate::http::url::{HttpUrl, HTTP};
use crate::net::TcpClient;
use crate::reactor::ioloop::IoLoop;
use crate::stream::IoStream;
use crate::time::{timeout, Deadline};

/// How a client pools connections and how many requests it runs at once.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let options = ioloop::http::HttpClientOptions {
///     max_clients: 64,
///     idle_timeout: Duration::from_secs(30),
///     ..Default::default()
/// };
/// let ioloop = ioloop::IoLoop::new()?;
/// let client = ioloop::http::HttpClient::with_options(&ioloop, options);
/// # let _ = client;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct HttpClientOptions {
    /// Requests in progress at once (default 10, Tornado's; 0 counts as 1); more wait in
    /// a FIFO queue.
    pub max_clients: usize,
    /// Idle keep-alive connections kept per origin (scheme, host, port); more are
    /// closed (default 16; 0 turns keep-alive off, Tornado's behaviour).
    pub max_idle_per_host: usize,
    /// How long an idle connection is kept (default 60 s).
    pub idle_timeout: Duration,
    /// For `https://` URLs (feature `tls`): the TLS configuration; `None` trusts the Web
    /// PKI ([`tls::default_client_config`](crate::tls::default_client_config)).
    #[cfg(feature = "tls")]
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl Default for HttpClientOptions {
    fn default() -> HttpClientOptions {
        HttpClientOptions {
            max_clients: 10,
            max_idle_per_host: 16,
            idle_timeout: Duration::from_secs(60),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

/// An HTTP/1.1 client bound to a loop. Clones share one pool. Loop thread only.
///
/// Unlike Tornado's, it keeps connections alive: a request to an origin with an idle
/// connection reuses it. A reused connection that turns out closed before any byte of
/// the answer is replaced and the request sent again, once, if its method is idempotent.
///
/// # Examples
///
/// ```
/// use ioloop::http::{HttpClient, HttpServer};
/// # use ioloop::http::{Dispatch, Request, Response, Service};
/// # struct Hi;
/// # impl Service for Hi {
/// #     fn dispatch(&self, _req: &mut Request) -> Dispatch {
/// #         Dispatch::Respond(Response::text("hi"))
/// #     }
/// # }
///
/// let ioloop = ioloop::IoLoop::new()?;
/// let server = HttpServer::new(&ioloop, Hi);
/// let port = server.bind("127.0.0.1:0")?.port();
/// let client = HttpClient::new(&ioloop);
/// let response = ioloop.run_sync(client.fetch(format!("http://127.0.0.1:{port}/")))??;
/// assert_eq!((response.status(), response.body()), (200, &b"hi"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct HttpClient {
    shared: Rc<ClientShared>,
}

struct ClientShared {
    tcp: TcpClient,
    pool: Rc<Pool>,
    #[cfg(feature = "tls")]
    tls: OnceCell<std::sync::Arc<rustls::ClientConfig>>,
}

impl HttpClient {
    /// A client with the default [`HttpClientOptions`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use ioloop::http::{Dispatch, Request, Response, Service};
    /// # struct Hello;
    /// # impl Service for Hello {
    /// #     fn dispatch(&self, _req: &mut Request) -> Dispatch {
    /// #         Dispatch::Respond(Response::text("hello"))
    /// #     }
    /// # }
    /// use ioloop::http::{HttpClient, HttpServer};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let port = HttpServer::new(&ioloop, Hello).bind("127.0.0.1:0")?.port(); // answers "hello"
    /// let client = HttpClient::new(&ioloop);
    /// let response = ioloop.run_sync(client.fetch(format!("http://127.0.0.1:{port}/")))??;
    /// assert_eq!(response.body(), b"hello");
    /// // The connection is kept alive for the next request to the same origin.
    /// assert_eq!(client.idle_connections(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(ioloop: &IoLoop) -> HttpClient {
        HttpClient::with_options(ioloop, HttpClientOptions::default())
    }

    /// A client with `options`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ioloop::http::{Dispatch, Request, Response, Service};
    /// # struct Hello;
    /// # impl Service for Hello {
    /// #     fn dispatch(&self, _req: &mut Request) -> Dispatch {
    /// #         Dispatch::Respond(Response::text("hello"))
    /// #     }
    /// # }
    /// use ioloop::http::{HttpClient, HttpClientOptions, HttpServer};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let port = HttpServer::new(&ioloop, Hello).bind("127.0.0.1:0")?.port(); // answers "hello"
    /// // No idle connections kept: a connection per request, as Tornado's client.
    /// let options = HttpClientOptions { max_idle_per_host: 0, ..Default::default() };
    /// let client = HttpClient::with_options(&ioloop, options);
    /// let response = ioloop.run_sync(client.fetch(format!("http://127.0.0.1:{port}/")))??;
    /// assert_eq!(response.body(), b"hello");
    /// assert_eq!(client.idle_connections(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_options(ioloop: &IoLoop, options: HttpClientOptions) -> HttpClient {
        let pool = Pool::new(
            ioloop,
            options.max_clients,
            options.max_idle_per_host,
            options.idle_timeout,
        );
        #[cfg(feature = "tls")]
        let tls = match options.tls {
            Some(config) => OnceCell::from(config),
            None => OnceCell::new(),
        };
        HttpClient {
            shared: Rc::new(ClientShared {
                tcp: TcpClient::new(ioloop),
                pool,
                #[cfg(feature = "tls")]
                tls,
            }),
        }
    }

    /// Fetches `request` (a [`ClientRequest`], or a URL for a `GET`) and resolves to the
    /// whole response, whatever its status (a 404 is a response, not an error). Polled
    /// on the loop's thread, in a task of the loop or [`run_sync`](IoLoop::run_sync).
    /// Like every Rust future, it starts when first polled: to run requests at once,
    /// poll them together (a join, [`spawn`](IoLoop::spawn)) or use
    /// [`fetch_then`](HttpClient::fetch_then), which starts at once.
    ///
    /// # Errors
    ///
    /// [`FetchError`]: a bad URL or request, a failed connection, a timeout, a
    /// malformed or truncated response, too many redirects, a body over its limit.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ioloop::http::{Dispatch, Request, Response, Service};
    /// # struct Site;
    /// # impl Service for Site {
    /// #     fn dispatch(&self, req: &mut Request) -> Dispatch {
    /// #         Dispatch::Respond(match req.path() {
    /// #             "/" => Response::text("hello"),
    /// #             _ => Response::error(404),
    /// #         })
    /// #     }
    /// # }
    /// use ioloop::http::{ClientRequest, FetchError, HttpClient, HttpServer};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let port = HttpServer::new(&ioloop, Site).bind("127.0.0.1:0")?.port(); // "hello" at / only
    /// let client = HttpClient::new(&ioloop);
    /// let found = ioloop.run_sync(client.fetch(format!("http://127.0.0.1:{port}/")))??;
    /// assert_eq!((found.status(), found.body()), (200, &b"hello"[..]));
    /// let request = ClientRequest::new("DELETE", format!("http://127.0.0.1:{port}/gone"));
    /// let missing = ioloop.run_sync(client.fetch(request))??;
    /// assert_eq!(missing.status(), 404); // a response, not an error
    /// let refused = ioloop.run_sync(client.fetch("ftp://127.0.0.1/"))?;
    /// assert!(matches!(refused, Err(FetchError::InvalidUrl(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fetch(
        &self,
        request: impl Into<ClientRequest>,
    ) -> impl Future<Output = Result<ClientResponse, FetchError>> + 'static {
        let shared = self.shared.clone();
        let request = request.into();
        async move {
            let limit = request.request_timeout;
            let whole = async {
                let (exchange, head, url) = shared.start(request).await?;
                let mut body = Vec::new();
                exchange.read_to_end(&mut body).await?;
                Ok(ClientResponse { head, body, url })
            };
            timeout(limit, whole)
                .await
                .unwrap_or(Err(FetchError::Timeout))
        }
    }

    /// [`fetch`](HttpClient::fetch) calling `callback` with the outcome on the loop
    /// (Tornado's `fetch(request, callback)`). Loop thread only.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::{HttpClient, HttpServer};
    /// # use ioloop::http::{Dispatch, Request, Response, Service};
    /// # struct Hi;
    /// # impl Service for Hi {
    /// #     fn dispatch(&self, _req: &mut Request) -> Dispatch {
    /// #         Dispatch::Respond(Response::text("hi"))
    /// #     }
    /// # }
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let server = HttpServer::new(&ioloop, Hi);
    /// let port = server.bind("127.0.0.1:0")?.port();
    /// HttpClient::new(&ioloop).fetch_then(format!("http://127.0.0.1:{port}/"), |ioloop, response| {
    ///     assert_eq!(response.unwrap().body(), b"hi");
    ///     ioloop.stop();
    /// });
    /// ioloop.start()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fetch_then<F>(&self, request: impl Into<ClientRequest>, callback: F)
    where
        F: FnOnce(&IoLoop, Result<ClientResponse, FetchError>) + 'static,
    {
        if let Some(ioloop) = self.ioloop() {
            ioloop.add_future(self.fetch(request), callback);
        }
    }

    /// Fetches `request` and resolves once the response head is in; the body is then
    /// read chunk by chunk with [`StreamedResponse::next_chunk`], and the connection
    /// reads no further than the chunk asked for (backpressure: a slow consumer holds
    /// the server back instead of filling memory). The request timeout is a deadline
    /// for the whole body too: give a long download a long one.
    ///
    /// # Errors
    ///
    /// As [`fetch`](HttpClient::fetch), up to the head.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::{HttpClient, HttpServer};
    /// # use ioloop::http::{Dispatch, Request, Response, Service};
    /// # struct Large;
    /// # impl Service for Large {
    /// #     fn dispatch(&self, _req: &mut Request) -> Dispatch {
    /// #         Dispatch::Respond(Response::text("x".repeat(200_000)))
    /// #     }
    /// # }
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let server = HttpServer::new(&ioloop, Large);
    /// let port = server.bind("127.0.0.1:0")?.port();
    /// let client = HttpClient::new(&ioloop);
    /// let total = ioloop.run_sync(async move {
    ///     let mut response = client.fetch_streaming(format!("http://127.0.0.1:{port}/")).await?;
    ///     let mut total = 0;
    ///     while let Some(chunk) = response.next_chunk().await? {
    ///         total += chunk.len();
    ///     }
    ///     Ok::<_, ioloop::http::FetchError>(total)
    /// })??;
    /// assert_eq!(total, 200_000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fetch_streaming(
        &self,
        request: impl Into<ClientRequest>,
    ) -> impl Future<Output = Result<StreamedResponse, FetchError>> + 'static {
        let shared = self.shared.clone();
        let request = request.into();
        async move {
            let ioloop = shared.ioloop()?;
            let limit = request.request_timeout;
            // As a timer's: a limit too far to add is as good as none.
            let deadline = limit.resolve(ioloop.time());
            let (exchange, head, url) = timeout(limit, shared.start(request))
                .await
                .unwrap_or(Err(FetchError::Timeout))?;
            // A response without a body (HEAD, 204, 304) is over already.
            let exchange = if exchange.body.is_done() {
                exchange.finish();
                None
            } else {
                Some(exchange)
            };
            Ok(StreamedResponse {
                head,
                url,
                exchange,
                deadline,
            })
        }
    }

    /// Idle keep-alive connections in the pool that are still open (one the server has
    /// closed is not counted, and is never handed out).
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// assert_eq!(ioloop::http::HttpClient::new(&ioloop).idle_connections(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn idle_connections(&self) -> usize {
        self.shared.pool.idle_count()
    }

    /// Requests waiting for one of the `max_clients` places.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// assert_eq!(ioloop::http::HttpClient::new(&ioloop).queued_requests(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn queued_requests(&self) -> usize {
        self.shared.pool.queued()
    }

    /// Closes the idle connections (requests in progress are left alone; their
    /// connections close when they end, if the pool is gone).
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let client = ioloop::http::HttpClient::new(&ioloop);
    /// client.close_idle();
    /// assert_eq!(client.idle_connections(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close_idle(&self) {
        self.shared.pool.close_idle();
    }

    fn ioloop(&self) -> Option<IoLoop> {
        self.shared.ioloop().ok()
    }
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("idle_connections", &self.idle_connections())
            .field("queued_requests", &self.queued_requests())
            .finish()
    }
}

impl ClientShared {
    fn ioloop(&self) -> Result<IoLoop, FetchError> {
        self.pool.ioloop().ok_or(FetchError::LoopClosed)
    }

    /// Sends `request`, following redirects, and gives back the final response's
    /// exchange, head and URL.
    async fn start(
        &self,
        mut request: ClientRequest,
    ) -> Result<(Exchange, ResponseHead, String), FetchError> {
        request.check()?;
        let mut url = parse_url(&request.url)?;
        let mut redirects = 0;
        loop {
            let (exchange, head) = self.send(&url, &request).await?;
            let status = head.status();
            let location = match head.header("location") {
                Some(location) if request.follow_redirects && is_redirect(status) => location,
                _ => return Ok((exchange, head, url.display(HTTP).to_string())),
            };
            exchange.discard();
            if redirects == request.max_redirects {
                return Err(FetchError::TooManyRedirects {
                    limit: request.max_redirects,
                });
            }
            let next = url
                .join(location, HTTP)
                .filter(|next| cfg!(feature = "tls") || !next.secure)
                .ok_or_else(|| FetchError::Protocol(format!("a bad Location {location:?}")))?;
            request.redirect(status, url.same_origin(&next));
            url = next;
            redirects += 1;
        }
    }

    /// One request to `url` (waiting for a place, on a pooled connection or a new one),
    /// sent again once on a new connection if a pooled one was found closed.
    async fn send(
        &self,
        url: &HttpUrl,
        request: &ClientRequest,
    ) -> Result<(Exchange, ResponseHead), FetchError> {
        let permit = Pool::acquire(&self.pool).await;
        let origin = Origin::of(url);
        let (stream, reused) = match self.pool.checkout(&origin) {
            Some(stream) => (stream, true),
            None => (self.connect(url, request).await?, false),
        };
        let mut connection = Connection::new(stream, origin.clone(), &self.pool);
        let head = match send_request(&mut connection, url, request).await {
            Err(AttemptError::Stale) if reused && request.is_idempotent() => {
                let stream = self.connect(url, request).await?;
                connection = Connection::new(stream, origin, &self.pool);
                send_request(&mut connection, url, request).await?
            }
            head => head?,
        };
        let exchange = Exchange::new(connection, &head, request, permit)?;
        let mut head = head;
        if exchange.body.decompresses() {
            head.mark_decompressed();
        }
        Ok((exchange, head))
    }

    /// A new connection to `url`'s origin, TLS for `https://`, within the request's
    /// connect timeout.
    ///
    /// Boxed: its state (a TCP connect and a TLS handshake, about 1.4 KB) would otherwise
    /// be part of every fetch's future, which is copied whole each time it moves, though
    /// a request on a pooled connection never connects.
    fn connect<'a>(
        &'a self,
        url: &'a HttpUrl,
        request: &'a ClientRequest,
    ) -> Pin<Box<impl Future<Output = Result<IoStream, FetchError>> + 'a>> {
        Box::pin(self.connect_unboxed(url, request))
    }

    async fn connect_unboxed(
        &self,
        url: &HttpUrl,
        request: &ClientRequest,
    ) -> Result<IoStream, FetchError> {
        let limit = request.connect_timeout;
        let stream = match url.secure {
            #[cfg(feature = "tls")]
            true => {
                let config = self
                    .tls
                    .get_or_init(crate::stream::tls::default_client_config)
                    .clone();
                timeout(limit, self.tcp.connect_tls(&url.host, url.port, config))
                    .await
                    .map_err(|_| FetchError::ConnectTimeout)??
            }
            _ => self.tcp.connect_timeout(&url.host, url.port, limit).await?,
        };
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

/// A redirect status that names where to go (RFC 9110 §15.4).
fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// Parses a request URL: `http://`, or `https://` with the `tls` feature.
fn parse_url(url: &str) -> Result<HttpUrl, FetchError> {
    match HttpUrl::parse(url, HTTP) {
        Some(parsed) if cfg!(feature = "tls") || !parsed.secure => Ok(parsed),
        _ => Err(FetchError::InvalidUrl(url.to_owned())),
    }
}

/// The most bytes one [`StreamedResponse::next_chunk`] takes from the connection's
/// buffer (the read buffer holds at most a read chunk more).
const STREAMED_CHUNK: usize = 64 * 1024;

/// A response whose head is in and whose body is read on demand, chunk by chunk
/// ([`HttpClient::fetch_streaming`]). Dropping it before the end closes the connection.
///
/// # Examples
///
/// ```
/// # use ioloop::http::{Dispatch, Request, Response, Service};
/// # struct Big;
/// # impl Service for Big {
/// #     fn dispatch(&self, _req: &mut Request) -> Dispatch {
/// #         Dispatch::Respond(Response::text("z".repeat(300_000)))
/// #     }
/// # }
/// use ioloop::http::{HttpClient, HttpServer, StreamedResponse};
///
/// let ioloop = ioloop::IoLoop::new()?;
/// let port = HttpServer::new(&ioloop, Big).bind("127.0.0.1:0")?.port(); // 300 000 bytes
/// let client = HttpClient::new(&ioloop);
/// let (status, body) = ioloop.run_sync(async move {
///     let mut response: StreamedResponse =
///         client.fetch_streaming(format!("http://127.0.0.1:{port}/")).await?;
///     let mut body = Vec::new();
///     while let Some(chunk) = response.next_chunk().await? {
///         body.extend_from_slice(&chunk);
///     }
///     Ok::<_, ioloop::http::FetchError>((response.status(), body))
/// })??;
/// assert_eq!(status, 200);
/// assert!(body.len() == 300_000 && body.iter().all(|&b| b == b'z'));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct StreamedResponse {
    head: ResponseHead,
    url: String,
    /// `None` once the body is over.
    exchange: Option<Exchange>,
    deadline: Instant,
}

impl StreamedResponse {
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
    /// #             "/" => Response::text("hello"),
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
    /// // The head is in; the body is not read yet.
    /// let url = format!("http://127.0.0.1:{port}/missing");
    /// let response = ioloop.run_sync(client.fetch_streaming(url))??;
    /// assert_eq!(response.status(), 404);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn status(&self) -> u16 {
        self.head.status()
    }

    /// The status line and header fields.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ioloop::http::{Dispatch, Request, Response, Service};
    /// # struct Site;
    /// # impl Service for Site {
    /// #     fn dispatch(&self, req: &mut Request) -> Dispatch {
    /// #         Dispatch::Respond(match req.path() {
    /// #             "/" => Response::text("hello"),
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
    /// use ioloop::http::Version;
    /// let url = format!("http://127.0.0.1:{port}/");
    /// let response = ioloop.run_sync(client.fetch_streaming(url))??;
    /// let head = response.head();
    /// assert_eq!((head.version(), head.status(), head.reason()), (Version::Http11, 200, "OK"));
    /// assert_eq!(head.header("content-length"), Some("5"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn head(&self) -> &ResponseHead {
        &self.head
    }

    /// The value of the first header field named `name`, as [`ResponseHead::header`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use ioloop::http::{Dispatch, Request, Response, Service};
    /// # struct Site;
    /// # impl Service for Site {
    /// #     fn dispatch(&self, req: &mut Request) -> Dispatch {
    /// #         Dispatch::Respond(match req.path() {
    /// #             "/" => Response::text("hello"),
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
    /// let url = format!("http://127.0.0.1:{port}/");
    /// let response = ioloop.run_sync(client.fetch_streaming(url))??;
    /// assert_eq!(response.header("Content-Type"), Some("text/plain; charset=utf-8"));
    /// assert_eq!(response.header("location"), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }

    /// The URL the response came from, after any redirects.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ioloop::http::{Dispatch, Request, Response, Service};
    /// # struct Site;
    /// # impl Service for Site {
    /// #     fn dispatch(&self, req: &mut Request) -> Dispatch {
    /// #         Dispatch::Respond(match req.path() {
    /// #             "/" => Response::text("hello"),
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
    /// let url = format!("http://127.0.0.1:{port}/old");
    /// let response = ioloop.run_sync(client.fetch_streaming(url))??;
    /// assert_eq!(response.url(), format!("http://127.0.0.1:{port}/new"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The next piece of the body: about 64 KiB at most (decompressed, a gzipped body's
    /// piece may be up to about 1 MiB more); `None` once the body is over, when the
    /// connection has gone back to the pool. Nothing more is read from the connection
    /// until this is called again.
    ///
    /// # Errors
    ///
    /// As [`HttpClient::fetch`]; the request's timeout is a deadline for the whole
    /// body. After an error the body is over (the connection is closed).
    ///
    /// # Examples
    ///
    /// ```
    /// # use ioloop::http::{Dispatch, Request, Response, Service};
    /// # struct Site;
    /// # impl Service for Site {
    /// #     fn dispatch(&self, req: &mut Request) -> Dispatch {
    /// #         Dispatch::Respond(match req.path() {
    /// #             "/" => Response::text("hello"),
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
    /// let url = format!("http://127.0.0.1:{port}/");
    /// let (body, after_end) = ioloop.run_sync(async move {
    ///     let mut response = client.fetch_streaming(url).await?;
    ///     let mut body = Vec::new();
    ///     while let Some(chunk) = response.next_chunk().await? {
    ///         body.extend_from_slice(&chunk);
    ///     }
    ///     Ok::<_, ioloop::http::FetchError>((body, response.next_chunk().await?))
    /// })??;
    /// assert_eq!(body, b"hello");
    /// assert_eq!(after_end, None); // once over, the body stays over
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, FetchError> {
        let Some(exchange) = self.exchange.as_mut() else {
            return Ok(None);
        };
        let now = IoLoop::current().map_or_else(Instant::now, |ioloop| ioloop.time());
        let left = self.deadline.saturating_duration_since(now);
        let mut chunk = Vec::new();
        let stream = &exchange.connection.stream;
        let read = timeout(
            left,
            exchange.body.read_some(stream, &mut chunk, STREAMED_CHUNK),
        )
        .await
        .unwrap_or(Err(FetchError::Timeout));
        if let Err(e) = read {
            self.exchange = None;
            return Err(e);
        }
        if exchange.body.is_done() {
            if let Some(exchange) = self.exchange.take() {
                exchange.finish();
            }
        }
        Ok((!chunk.is_empty()).then_some(chunk))
    }

    /// [`next_chunk`](StreamedResponse::next_chunk) calling `callback` with this
    /// response back and the chunk, on the loop. Loop thread only.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::{HttpClient, HttpServer, StreamedResponse};
    /// # use ioloop::http::{Dispatch, Request, Response, Service};
    /// # struct Large;
    /// # impl Service for Large {
    /// #     fn dispatch(&self, _req: &mut Request) -> Dispatch {
    /// #         Dispatch::Respond(Response::text("y".repeat(100_000)))
    /// #     }
    /// # }
    ///
    /// fn read_all(response: StreamedResponse, mut total: usize) {
    ///     response.next_chunk_then(move |ioloop, response, chunk| match chunk.unwrap() {
    ///         Some(chunk) => read_all(response, total + chunk.len()),
    ///         None => {
    ///             assert_eq!(total, 100_000);
    ///             ioloop.stop();
    ///         }
    ///     });
    /// }
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let server = HttpServer::new(&ioloop, Large);
    /// let port = server.bind("127.0.0.1:0")?.port();
    /// let client = HttpClient::new(&ioloop);
    /// ioloop.add_future(client.fetch_streaming(format!("http://127.0.0.1:{port}/")), |_, response| {
    ///     read_all(response.unwrap(), 0)
    /// });
    /// ioloop.start()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next_chunk_then<F>(mut self, callback: F)
    where
        F: FnOnce(&IoLoop, StreamedResponse, Result<Option<Vec<u8>>, FetchError>) + 'static,
    {
        let Some(ioloop) = IoLoop::current() else {
            return;
        };
        let read = async move {
            let chunk = self.next_chunk().await;
            (self, chunk)
        };
        ioloop.add_future(read, move |ioloop, (response, chunk)| {
            callback(ioloop, response, chunk)
        });
    }
}

impl std::fmt::Debug for StreamedResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamedResponse")
            .field("head", &self.head)
            .field("url", &self.url)
            .field("done", &self.exchange.is_none())
            .finish()
    }
}
