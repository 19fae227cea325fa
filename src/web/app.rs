//! [`Application`]: the routing table (Tornado's `web.Application`), and [`MethodRouter`]:
//! which handler answers which method on one route.
//!
//! Routes are tried in the order they were added; the first whose pattern matches the
//! path answers. A matching route without a handler for the method answers 405 with an
//! `Allow` field (a GET handler answers HEAD too, without the body); no matching route
//! answers 404. Methods are compared exactly (RFC 9110 §9.1): `get` is not `GET`, and
//! gets 405.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::auth::Authenticated;
use super::finished::FinishedRequest;
use super::handler::IntoHandler;
use super::output::{Output, OutputSettings};
use super::pattern::Pattern;
use super::settings::{current_user_hook, Settings};
#[cfg(feature = "signed-cookies")]
use super::signed::CookieSecret;
use super::xsrf;
use crate::http::{
    AnswerHooks, Cookie, Dispatch, Handler, HttpError, HttpServer, Request, Responder, Response,
    ServerOptions, Service,
};
use crate::reactor::ioloop::IoLoop;

type Prepare = Rc<dyn Fn(&mut Request) -> Option<Response>>;
type ErrorPage = Rc<dyn Fn(&HttpError, &Request) -> Response>;
type OnFinish = Rc<dyn Fn(&FinishedRequest)>;

/// The handlers of one route, by method, and the route's body options.
///
/// # Examples
///
/// ```
/// use ioloop::web::{get, Application};
/// let app = Application::new().route(
///     "/items",
///     get(|_req| async { "list" }).post(|req: ioloop::http::Request| async move {
///         format!("created {} bytes", req.body().len())
///     }),
/// );
/// # let _ = app;
/// ```
#[derive(Clone, Default)]
pub struct MethodRouter {
    handlers: Vec<(String, Rc<dyn Handler>)>,
    /// A `GET` that switches protocols (a WebSocket route): the service decides.
    upgrade: Option<Rc<dyn Service>>,
    body_limit: Option<u64>,
    stream_body: bool,
    /// The automatic ETag is off for this route.
    no_etag: bool,
    xsrf_exempt: bool,
    /// Every handler of the route is behind [`authenticated`](crate::web::authenticated).
    authenticated: bool,
}

macro_rules! method_fns {
    ($($fn_name:ident $method:literal,)*) => {
        $(
            #[doc = concat!("A route answering `", $method, "` with `handler` (see [`IntoHandler`]).")]
            ///
            /// # Examples
            ///
            /// ```
            /// # fn ask(app: ioloop::web::Application, request: impl Into<Vec<u8>>) -> String {
            /// #     let (ioloop, request) = (ioloop::IoLoop::new().unwrap(), request.into());
            /// #     let (_server, addr) = app.bind(&ioloop, "127.0.0.1:0").unwrap();
            /// #     let client = ioloop::TcpClient::new(&ioloop);
            /// #     let reply = ioloop.run_sync(async move {
            /// #         let stream = client.connect("127.0.0.1", addr.port()).await.unwrap();
            /// #         stream.write_all(&request).await.unwrap();
            /// #         stream.read_until_close().await.unwrap()
            /// #     });
            /// #     String::from_utf8(reply.unwrap()).unwrap()
            /// # }
            #[doc = concat!("use ioloop::web::{", stringify!($fn_name), ", Application};")]
            ///
            #[doc = concat!("let route = ", stringify!($fn_name), "(|_req| async { \"done\" });")]
            /// let app = Application::new().route("/", route);
            /// // `ask` serves the application and returns its answer to one request.
            #[doc = concat!("let request = \"", $method, " / HTTP/1.0\\r\\n\\r\\n\";")]
            /// assert!(ask(app.clone(), request).ends_with("\r\n\r\ndone"));
            /// // Another method gets 405, with the methods the route answers.
            /// let reply = ask(app, "TRACE / HTTP/1.0\r\n\r\n");
            /// assert!(reply.starts_with("HTTP/1.1 405 "));
            #[doc = concat!("assert!(reply.contains(\"\\r\\nAllow: ", $method, "\"));")]
            /// ```
            #[track_caller]
            pub fn $fn_name<S>(handler: impl IntoHandler<S>) -> MethodRouter {
                MethodRouter::default().on($method, handler)
            }
        )*
        impl MethodRouter {
            $(
                #[doc = concat!("Also answers `", $method, "` with `handler`.")]
                ///
                /// # Examples
                ///
                /// ```
                /// # fn ask(app: ioloop::web::Application, request: impl Into<Vec<u8>>) -> String {
                /// #     let (ioloop, request) = (ioloop::IoLoop::new().unwrap(), request.into());
                /// #     let (_server, addr) = app.bind(&ioloop, "127.0.0.1:0").unwrap();
                /// #     let client = ioloop::TcpClient::new(&ioloop);
                /// #     let reply = ioloop.run_sync(async move {
                /// #         let stream = client.connect("127.0.0.1", addr.port()).await.unwrap();
                /// #         stream.write_all(&request).await.unwrap();
                /// #         stream.read_until_close().await.unwrap()
                /// #     });
                /// #     String::from_utf8(reply.unwrap()).unwrap()
                /// # }
                /// use ioloop::http::Request;
                /// use ioloop::web::{Application, MethodRouter};
                ///
                /// let also = |_req: Request| async { "also" };
                /// let route = MethodRouter::default().on("REPORT", |_req| async { "report" });
                #[doc = concat!("let route = route.", stringify!($fn_name), "(also);")]
                /// let app = Application::new().route("/", route);
                /// // `ask` serves the application and returns its answer to one request.
                /// let report = ask(app.clone(), "REPORT / HTTP/1.0\r\n\r\n");
                /// assert!(report.ends_with("\r\n\r\nreport"));
                #[doc = concat!("let request = \"", $method, " / HTTP/1.0\\r\\n\\r\\n\";")]
                /// assert!(ask(app, request).ends_with("\r\n\r\nalso"));
                /// ```
                #[track_caller]
                pub fn $fn_name<S>(self, handler: impl IntoHandler<S>) -> MethodRouter {
                    self.on($method, handler)
                }
            )*
        }
    };
}

method_fns! {
    get "GET",
    post "POST",
    put "PUT",
    delete "DELETE",
    patch "PATCH",
    options "OPTIONS",
}

impl MethodRouter {
    /// Answers `method` (any token, such as `"PROPFIND"`) with `handler`. The name is
    /// registered in upper case, as every standard method is spelled; requests must then
    /// spell it exactly so (methods are case-sensitive, RFC 9110 §9.1): `on("report", ..)`
    /// answers `REPORT`, and a request for `report` gets 405.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::web::MethodRouter;
    /// let route = MethodRouter::default().on("REPORT", |_req| async { "report" });
    /// # let _ = route;
    /// ```
    #[track_caller]
    pub fn on<S>(mut self, method: &str, handler: impl IntoHandler<S>) -> MethodRouter {
        let method = method.to_ascii_uppercase();
        self.handlers.retain(|(m, _)| *m != method);
        self.handlers.push((method, handler.into_handler()));
        self
    }

    /// The most body bytes this route accepts (default: the server's
    /// [`max_body_size`](ServerOptions::max_body_size), 2 MiB unless set); a larger body
    /// gets 413, before it is read when its length is declared. It may be larger or
    /// smaller than the server's.
    ///
    /// # Examples
    ///
    /// ```
    /// let upload = ioloop::web::post(|req: ioloop::http::Request| async move {
    ///     req.body().len().to_string()
    /// })
    /// .body_limit(1 << 20);
    /// # let _ = upload;
    /// ```
    pub fn body_limit(mut self, limit: u64) -> MethodRouter {
        self.body_limit = Some(limit);
        self
    }

    /// The handler reads the body itself, piece by piece, with backpressure
    /// ([`Responder::next_body_chunk`]), instead of receiving it whole (Tornado's
    /// `@stream_request_body`).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::{BodyChunk, Request, Responder, Response};
    /// let upload = ioloop::web::post(|_req: Request, responder: Responder| async move {
    ///     let mut total = 0;
    ///     while let BodyChunk::Data(data) = responder.next_body_chunk().await {
    ///         total += data.len();
    ///     }
    ///     responder.send(Response::text(format!("{total}")));
    /// })
    /// .stream_body();
    /// # let _ = upload;
    /// ```
    pub fn stream_body(mut self) -> MethodRouter {
        self.stream_body = true;
        self
    }

    /// Turns the application's automatic ETag ([`Application::compute_etag`]) off for
    /// this route (Tornado: a `compute_etag` that returns `None`), for answers that
    /// differ on every request or are too large to hash.
    ///
    /// # Examples
    ///
    /// ```
    /// let clock = ioloop::web::get(|_req| async { "tick" }).no_etag();
    /// # let _ = clock;
    /// ```
    pub fn no_etag(mut self) -> MethodRouter {
        self.no_etag = true;
        self
    }

    /// This route's requests are not XSRF-checked even when the application has
    /// [`xsrf_cookies`](Application::xsrf_cookies) on (Tornado's per-handler
    /// `check_xsrf_cookie` override): for a webhook or an API authenticated otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// let hook = ioloop::web::post(|_req| async { "received" }).xsrf_exempt();
    /// let app = ioloop::web::Application::new().xsrf_cookies(true).route("/hook", hook);
    /// # let _ = app;
    /// ```
    pub fn xsrf_exempt(mut self) -> MethodRouter {
        self.xsrf_exempt = true;
        self
    }

    /// Only signed-in requests reach this route's handlers, whatever the method (Tornado's
    /// `@authenticated` on every method of a handler): each one is wrapped in
    /// [`authenticated`](crate::web::authenticated) when the route is added, so a handler
    /// added after this call is covered too. Anonymous GET and HEAD requests are
    /// redirected to the [`login_url`](Application::login_url), others get 403; a method
    /// the route does not answer still gets 405. WebSocket routes check
    /// [`Request::current_user`] in their session instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// use ioloop::web::{get, Application};
    ///
    /// let app = Application::new()
    ///     .current_user(|req| req.cookie("user"))
    ///     .login_url("/login")
    ///     .route(
    ///         "/api/items",
    ///         get(|_req| async { "the items" })
    ///             .post(|req: Request| async move {
    ///                 format!("added by {}", req.current_user::<String>().unwrap())
    ///             })
    ///             .authenticated(),
    ///     );
    /// # let _ = app;
    /// ```
    pub fn authenticated(mut self) -> MethodRouter {
        self.authenticated = true;
        self
    }

    /// A route whose `GET` requests `service` dispatches, switching protocols (the
    /// WebSocket layer's routes); other methods get 405.
    #[cfg_attr(not(feature = "websocket"), allow(dead_code))]
    pub(crate) fn upgrade(service: Rc<dyn Service>) -> MethodRouter {
        MethodRouter {
            upgrade: Some(service),
            ..MethodRouter::default()
        }
    }

    /// The handler of `method`, compared exactly: methods are case-sensitive (RFC 9110
    /// §9.1), so `get` is not `GET` but a method the route does not answer.
    fn handler(&self, method: &str) -> Option<&Rc<dyn Handler>> {
        let find = |m: &str| {
            self.handlers
                .iter()
                .find(|(name, _)| name == m)
                .map(|(_, h)| h)
        };
        find(method).or_else(|| (method == "HEAD").then(|| find("GET")).flatten())
    }

    /// The `Allow` field: the methods answered (HEAD with GET).
    fn allow(&self) -> String {
        let mut methods: Vec<&str> = self.handlers.iter().map(|(m, _)| m.as_str()).collect();
        if self.upgrade.is_some() {
            methods.push("GET");
        }
        if methods.contains(&"GET") && !methods.contains(&"HEAD") {
            methods.push("HEAD");
        }
        methods.join(", ")
    }
}

#[derive(Clone)]
struct Route {
    pattern: Pattern,
    methods: MethodRouter,
}

/// A web application: routes to handlers, hooks around them, and the server options it
/// is served with (Tornado's `web.Application`).
///
/// # Examples
///
/// The seed program: `GET /` answers after an async sleep.
///
/// ```no_run
/// use std::time::Duration;
/// use ioloop::web::{get, Application};
///
/// let ioloop = ioloop::IoLoop::new()?;
/// Application::new()
///     .route("/", get(|_req| async {
///         ioloop::sleep(Duration::from_secs(2)).await;
///         "Hello, 异步世界!"
///     }))
///     .listen(&ioloop, 8888)?;
/// ioloop.start()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct Application {
    routes: Rc<Vec<Route>>,
    hooks: Rc<Hooks>,
    options: ServerOptions,
}

/// The application's hooks around every handler.
#[derive(Clone, Default)]
struct Hooks {
    prepare: Vec<Prepare>,
    on_finish: Vec<OnFinish>,
    error_page: Option<ErrorPage>,
    /// gzip and the automatic ETag.
    output: OutputSettings,
    settings: Option<Rc<Settings>>,
}

impl Hooks {
    fn is_empty(&self) -> bool {
        self.prepare.is_empty()
            && self.on_finish.is_empty()
            && self.error_page.is_none()
            && !self.output.any()
            && self.settings.is_none()
    }
}

impl Application {
    /// An application with no routes (every request gets 404).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn ask(app: ioloop::web::Application, request: impl Into<Vec<u8>>) -> String {
    /// #     let (ioloop, request) = (ioloop::IoLoop::new().unwrap(), request.into());
    /// #     let (_server, addr) = app.bind(&ioloop, "127.0.0.1:0").unwrap();
    /// #     let client = ioloop::TcpClient::new(&ioloop);
    /// #     let reply = ioloop.run_sync(async move {
    /// #         let stream = client.connect("127.0.0.1", addr.port()).await.unwrap();
    /// #         stream.write_all(&request).await.unwrap();
    /// #         stream.read_until_close().await.unwrap()
    /// #     });
    /// #     String::from_utf8(reply.unwrap()).unwrap()
    /// # }
    /// use ioloop::web::Application;
    ///
    /// // `ask` serves the application and returns its answer to one request.
    /// let reply = ask(Application::new(), "GET /anything HTTP/1.0\r\n\r\n");
    /// assert!(reply.starts_with("HTTP/1.1 404 Not Found\r\n"));
    /// ```
    pub fn new() -> Application {
        Application::default()
    }

    /// Adds a route: `pattern` is a path with `{name}` capturing one segment and a final
    /// `{*name}` capturing the rest (percent-decoded, in [`Request::param`]).
    ///
    /// # Panics
    ///
    /// On a malformed pattern (an unclosed brace, an empty name, `{*name}` not last).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::web::{get, Application};
    /// let app = Application::new().route("/users/{id}", get(|req: ioloop::http::Request| async move {
    ///     format!("user {}", req.param("id").unwrap_or(""))
    /// }));
    /// # let _ = app;
    /// ```
    pub fn route(mut self, pattern: &str, methods: impl Into<MethodRouter>) -> Application {
        let mut methods = methods.into();
        if methods.authenticated {
            // Wrapped once, here, so that requests pay nothing for it.
            for (_, handler) in &mut methods.handlers {
                *handler = Rc::new(Authenticated::wrap(handler.clone()));
            }
        }
        Rc::make_mut(&mut self.routes).push(Route {
            pattern: Pattern::parse(pattern),
            methods,
        });
        self
    }

    /// Adds a hook that runs before every handler, after the body is read (Tornado's
    /// `prepare`): returning a response answers the request with it instead of the handler
    /// (an authentication check, a redirect), or `None` to go on; a value it adds to the
    /// request's [`extensions`](Request::extensions_mut) reaches the handler. Hooks run in
    /// the order they were added, after the XSRF check.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::{HttpError, IntoResponse, Request};
    /// use ioloop::web::{get, Application};
    ///
    /// struct Tenant(String);
    /// let app = Application::new()
    ///     .prepare(|req| match req.header("x-tenant").map(str::to_owned) {
    ///         Some(tenant) => {
    ///             req.extensions_mut().insert(Tenant(tenant));
    ///             None
    ///         }
    ///         None => Some(HttpError::new(401).into_response()),
    ///     })
    ///     .route("/", get(|req: Request| async move {
    ///         format!("tenant {}", req.extensions().get::<Tenant>().unwrap().0)
    ///     }));
    /// # let _ = app;
    /// ```
    pub fn prepare(mut self, hook: impl Fn(&mut Request) -> Option<Response> + 'static) -> Self {
        Rc::make_mut(&mut self.hooks).prepare.push(Rc::new(hook));
        self
    }

    /// Adds a hook that runs once each response is complete — sent whole, or its streamed
    /// body finished or cut — with the request's method, path, status and time taken
    /// (Tornado's `on_finish`; an access log, metrics). It runs for the application's own
    /// 404 and 405 answers too, when they are made (with zero elapsed), not for the
    /// server's protocol errors (400, 408, 413 before a handler, 431). Hooks run in the
    /// order they were added.
    ///
    /// # Examples
    ///
    /// ```
    /// let app = ioloop::web::Application::new().on_finish(|done| {
    ///     println!("{} {} {} {:?}", done.status(), done.method(), done.path(), done.elapsed());
    /// });
    /// # let _ = app;
    /// ```
    pub fn on_finish(mut self, hook: impl Fn(&FinishedRequest) + 'static) -> Self {
        Rc::make_mut(&mut self.hooks).on_finish.push(Rc::new(hook));
        self
    }

    /// Sets the page of every error the application answers (Tornado's `write_error`): a
    /// handler's [`HttpError`] (returned as `Err`, or sent through its responder), the
    /// application's own 404 and 405, the 413 of a route's
    /// [`body_limit`](MethodRouter::body_limit) (for a declared length), argument, XSRF,
    /// cross-origin and [`authenticated`](crate::web::authenticated) refusals, and the
    /// 500 of a handler that panicked or dropped its responder. The status is set to the
    /// error's whatever the page says. Protocol errors the server answers before routing
    /// (400, 408, 431, a body over the server's own limit) are not the application's.
    ///
    /// # Examples
    ///
    /// JSON under `/api/`, plain text elsewhere:
    ///
    /// ```
    /// use ioloop::http::Response;
    /// let app = ioloop::web::Application::new().error_page(|err, req| {
    ///     if req.path().starts_with("/api/") {
    ///         let message = err.public_reason().replace('\\', "\\\\").replace('"', "\\\"");
    ///         Response::json(format!(r#"{{"error": "{message}", "status": {}}}"#, err.status()))
    ///     } else {
    ///         Response::text(format!("no {} here ({})", req.path(), err.status()))
    ///     }
    /// });
    /// # let _ = app;
    /// ```
    pub fn error_page(mut self, page: impl Fn(&HttpError, &Request) -> Response + 'static) -> Self {
        Rc::make_mut(&mut self.hooks).error_page = Some(Rc::new(page));
        self
    }

    /// Shares `state` with every handler, which reads it with
    /// [`Request::state`] (Tornado's `self.application.settings` and handler attributes):
    /// one value for the application, reached through the request, so a route needs no
    /// `Rc` of its own. Use `Cell`/`RefCell` inside for what changes.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn ask(app: ioloop::web::Application, request: impl Into<Vec<u8>>) -> String {
    /// #     let (ioloop, request) = (ioloop::IoLoop::new().unwrap(), request.into());
    /// #     let (_server, addr) = app.bind(&ioloop, "127.0.0.1:0").unwrap();
    /// #     let client = ioloop::TcpClient::new(&ioloop);
    /// #     let reply = ioloop.run_sync(async move {
    /// #         let stream = client.connect("127.0.0.1", addr.port()).await.unwrap();
    /// #         stream.write_all(&request).await.unwrap();
    /// #         stream.read_until_close().await.unwrap()
    /// #     });
    /// #     String::from_utf8(reply.unwrap()).unwrap()
    /// # }
    /// use std::cell::Cell;
    /// use ioloop::http::Request;
    /// use ioloop::web::{get, Application};
    ///
    /// struct Hits(Cell<u32>);
    /// let app = Application::new()
    ///     .with_state(Hits(Cell::new(0)))
    ///     .route("/", get(|req: Request| async move {
    ///         let hits = &req.state::<Hits>().0;
    ///         hits.set(hits.get() + 1);
    ///         format!("hit {}", hits.get())
    ///     }));
    /// // `ask` serves the application and returns its answer to one request.
    /// assert!(ask(app.clone(), "GET / HTTP/1.0\r\n\r\n").ends_with("hit 1"));
    /// assert!(ask(app, "GET / HTTP/1.0\r\n\r\n").ends_with("hit 2")); // clones share it
    /// ```
    pub fn with_state<T: 'static>(mut self, state: T) -> Self {
        self.settings_mut().state = Some(Rc::new(state));
        self
    }

    /// Sets how a request's user is found (Tornado's `get_current_user`): `find` runs on
    /// every request the application routes, once its head is read (before `prepare`
    /// hooks and before the body), usually reading a signed cookie; handlers read the
    /// result with [`Request::current_user`], and [`authenticated`](crate::web::authenticated)
    /// routes refuse requests where it is `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "signed-cookies")] {
    /// use ioloop::http::Request;
    /// use ioloop::web::{get, Application};
    ///
    /// let app = Application::new()
    ///     .cookie_secret("a long random secret")
    ///     .current_user(|req| req.get_signed_cookie("user", 31))
    ///     .route("/", get(|req: Request| async move {
    ///         match req.current_user::<String>() {
    ///             Some(name) => format!("hello, {name}"),
    ///             None => "hello, stranger".to_owned(),
    ///         }
    ///     }));
    /// # let _ = app;
    /// # }
    /// ```
    pub fn current_user<U: 'static>(
        mut self,
        find: impl Fn(&Request) -> Option<U> + 'static,
    ) -> Self {
        self.settings_mut().current_user = Some(current_user_hook(find));
        self
    }

    /// Compresses responses with gzip when the client accepts it (Tornado's
    /// `compress_response=True`): bodies of a compressible type (`text/*`, JSON,
    /// JavaScript, XML, Atom, XHTML, SVG) of at least 1 024 bytes, and streamed bodies of
    /// those types piece by piece as they are written; every answer then says
    /// `Vary: Accept-Encoding`. Never a 206, a 304, a streamed HEAD answer or a response
    /// that has a `Content-Encoding`. Off by default (no per-request work then).
    ///
    /// # Examples
    ///
    /// ```
    /// let app = ioloop::web::Application::new().compress_response(true);
    /// # let _ = app;
    /// ```
    pub fn compress_response(mut self, on: bool) -> Self {
        Rc::make_mut(&mut self.hooks).output.gzip = on;
        self
    }

    /// Gives every whole `200` answer to a GET or HEAD an `ETag` (the quoted hex SHA-1
    /// of the body, Tornado's `compute_etag`) and answers `304 Not Modified` without a
    /// body when the request's `If-None-Match` matches it (weak comparison, `*`
    /// included; Tornado's `check_etag_header`). Streamed bodies, responses that set
    /// their own `ETag` and routes with [`MethodRouter::no_etag`] are left alone. With
    /// [`compress_response`](Application::compress_response), the tag is the
    /// uncompressed body's. Off by default (Tornado has it on; here it costs a hash of
    /// every body, so it is asked for).
    ///
    /// # Examples
    ///
    /// ```
    /// let app = ioloop::web::Application::new().compute_etag(true);
    /// # let _ = app;
    /// ```
    pub fn compute_etag(mut self, on: bool) -> Self {
        Rc::make_mut(&mut self.hooks).output.etag = on;
        self
    }

    /// Where [`authenticated`](crate::web::authenticated) routes send anonymous GET and
    /// HEAD requests (Tornado's `login_url`).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn ask(app: ioloop::web::Application, request: impl Into<Vec<u8>>) -> String {
    /// #     let (ioloop, request) = (ioloop::IoLoop::new().unwrap(), request.into());
    /// #     let (_server, addr) = app.bind(&ioloop, "127.0.0.1:0").unwrap();
    /// #     let client = ioloop::TcpClient::new(&ioloop);
    /// #     let reply = ioloop.run_sync(async move {
    /// #         let stream = client.connect("127.0.0.1", addr.port()).await.unwrap();
    /// #         stream.write_all(&request).await.unwrap();
    /// #         stream.read_until_close().await.unwrap()
    /// #     });
    /// #     String::from_utf8(reply.unwrap()).unwrap()
    /// # }
    /// use ioloop::web::{get, Application};
    ///
    /// let admin = get(|_req| async { "admin" }).post(|_req| async { "saved" });
    /// let app = Application::new()
    ///     .current_user(|req| req.cookie("user"))
    ///     .login_url("/login")
    ///     .route("/admin", admin.authenticated());
    /// // `ask` serves the application and returns its answer to one request.
    /// let reply = ask(app.clone(), "GET /admin?tab=2 HTTP/1.0\r\n\r\n");
    /// assert!(reply.starts_with("HTTP/1.1 302 "));
    /// assert!(reply.contains("\r\nLocation: /login?next=%2Fadmin%3Ftab%3D2\r\n"));
    /// // Other methods are refused, not redirected.
    /// assert!(ask(app, "POST /admin HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 403 "));
    /// ```
    pub fn login_url(mut self, url: impl Into<String>) -> Self {
        self.settings_mut().login_url = Some(url.into());
        self
    }

    /// The secret of signed cookies (Tornado's `cookie_secret`): one key, or keys by
    /// version for rotation (a [`CookieSecret`]). Keep it out of the source code.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::web::{Application, CookieSecret};
    /// let app = Application::new().cookie_secret("a long random secret");
    /// let rotated = Application::new()
    ///     .cookie_secret(CookieSecret::versioned([(1, "old"), (2, "new")], 2));
    /// # let _ = (app, rotated);
    /// ```
    #[cfg(feature = "signed-cookies")]
    pub fn cookie_secret(mut self, secret: impl Into<CookieSecret>) -> Self {
        self.settings_mut().cookie_secret = Some(secret.into());
        self
    }

    /// XSRF protection (Tornado's `xsrf_cookies=True`): every request but GET, HEAD and
    /// OPTIONS must send the token of its `_xsrf` cookie back in an `_xsrf` form field or
    /// an `X-XSRFToken`/`X-CSRFToken` header, or gets 403; pages put it in forms with
    /// [`Request::xsrf_form_html`] (scripts take [`Request::xsrf_token`]), which also sets
    /// the cookie when the request had none. A route opts out with
    /// [`MethodRouter::xsrf_exempt`].
    ///
    /// # Examples
    ///
    /// ```
    /// # fn ask(app: ioloop::web::Application, request: impl Into<Vec<u8>>) -> String {
    /// #     let (ioloop, request) = (ioloop::IoLoop::new().unwrap(), request.into());
    /// #     let (_server, addr) = app.bind(&ioloop, "127.0.0.1:0").unwrap();
    /// #     let client = ioloop::TcpClient::new(&ioloop);
    /// #     let reply = ioloop.run_sync(async move {
    /// #         let stream = client.connect("127.0.0.1", addr.port()).await.unwrap();
    /// #         stream.write_all(&request).await.unwrap();
    /// #         stream.read_until_close().await.unwrap()
    /// #     });
    /// #     String::from_utf8(reply.unwrap()).unwrap()
    /// # }
    /// use ioloop::web::{post, Application};
    ///
    /// let app = Application::new().xsrf_cookies(true).route("/", post(|_req| async { "posted" }));
    /// // `ask` serves the application and returns its answer to one request. Without the
    /// // token sent back, as from a form on another site, the request is refused.
    /// assert!(ask(app.clone(), "POST / HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 403 "));
    /// // The cookie's token sent back (a page takes it from `xsrf_form_html` or `xsrf_token`).
    /// let token = "00112233445566778899aabbccddeeff";
    /// let fields = format!("Cookie: _xsrf={token}\r\nX-XSRFToken: {token}");
    /// let sent = format!("POST / HTTP/1.0\r\n{fields}\r\n\r\n");
    /// assert!(ask(app, sent).ends_with("\r\n\r\nposted"));
    /// ```
    pub fn xsrf_cookies(mut self, on: bool) -> Self {
        self.settings_mut().xsrf_cookies = on;
        self
    }

    /// The XSRF cookie's name and attributes (Tornado's `xsrf_cookie_name` and
    /// `xsrf_cookie_kwargs`): `template`'s name, path, domain, `Secure`, `HttpOnly`,
    /// `SameSite` and lifetime, the value being the token. A site on HTTPS can make it
    /// `Secure` with a `__Host-` name, so that a neighbour on another subdomain cannot
    /// plant one. The form field stays `_xsrf`. Default: `_xsrf` with `Path=/`, kept 30
    /// days once a user is signed in.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::{Cookie, SameSite};
    /// let app = ioloop::web::Application::new()
    ///     .xsrf_cookies(true)
    ///     .xsrf_cookie(Cookie::new("__Host-xsrf", "").secure().same_site(SameSite::Strict));
    /// # let _ = app;
    /// ```
    pub fn xsrf_cookie(mut self, template: Cookie) -> Self {
        self.settings_mut().xsrf_cookie = Some(template);
        self
    }

    /// Cross-origin protection (Tornado 6.6's `cross_origin_protection`, Go's
    /// `CrossOriginProtection`): a request but GET, HEAD and OPTIONS that a browser says
    /// comes from another origin (`Sec-Fetch-Site`, else an `Origin` whose host is not the
    /// `Host`) gets 403, unless its `Origin` is one of `trusted_origins` (exactly, such as
    /// `"https://app.example"`). Requests without either field (not from a browser) pass.
    ///
    /// # Examples
    ///
    /// ```
    /// let app = ioloop::web::Application::new()
    ///     .cross_origin_protection(["https://admin.example"]);
    /// # let _ = app;
    /// ```
    pub fn cross_origin_protection<S: Into<String>>(
        mut self,
        trusted_origins: impl IntoIterator<Item = S>,
    ) -> Self {
        let trusted = trusted_origins.into_iter().map(Into::into).collect();
        self.settings_mut().cross_origin = Some(trusted);
        self
    }

    /// The application's templates (Tornado's `template_path` setting), which handlers
    /// render with [`Request::render`] and [`Request::render_string`] (Tornado's
    /// `self.render`) without a handle of their own (feature `templates`).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ioloop::http::{HttpError, Request, Response};
    /// use ioloop::web::minijinja::context;
    /// use ioloop::web::{get, Application, Templates};
    ///
    /// async fn home(req: Request) -> Result<Response, HttpError> {
    ///     let name = req.get_argument_or("name", "world")?;
    ///     req.render("home.html", context! { name })
    /// }
    /// let app = Application::new()
    ///     .templates(Templates::new("templates"))
    ///     .route("/", get(home));
    /// # let _ = app;
    /// ```
    #[cfg(feature = "templates")]
    pub fn templates(mut self, templates: super::templates::Templates) -> Self {
        self.settings_mut().templates = Some(Rc::new(templates));
        self
    }

    fn settings_mut(&mut self) -> &mut Settings {
        let hooks = Rc::make_mut(&mut self.hooks);
        Rc::make_mut(hooks.settings.get_or_insert_with(Default::default))
    }

    /// The limits and timeouts the application is served with (see [`ServerOptions`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let options = ioloop::http::ServerOptions { max_body_size: 1 << 20, ..Default::default() };
    /// let app = ioloop::web::Application::new().server_options(options);
    /// # let _ = app;
    /// ```
    #[doc(alias = "options")]
    pub fn server_options(mut self, options: ServerOptions) -> Self {
        self.options = options;
        self
    }

    /// Serves the application on `port` (all interfaces; 0 picks one) on `ioloop`. The
    /// server lives until it is stopped or the loop closes; the returned handle stops it
    /// or shuts it down gracefully.
    ///
    /// # Errors
    ///
    /// Binding failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::web::{get, Application};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let app = Application::new().route("/", get(|_req| async { "Hello, World!" }));
    /// let server = app.listen(&ioloop, 0)?; // port 0: the OS picks one
    /// let port = server.local_addrs()[0].port();
    /// let client = ioloop::TcpClient::new(&ioloop);
    /// let reply = ioloop.run_sync(async move {
    ///     let stream = client.connect("127.0.0.1", port).await?;
    ///     stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await?;
    ///     Ok::<_, Box<dyn std::error::Error>>(stream.read_until_close().await?)
    /// })??;
    /// assert!(reply.ends_with(b"\r\n\r\nHello, World!"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn listen(self, ioloop: &IoLoop, port: u16) -> io::Result<HttpServer> {
        let options = self.options;
        let server = HttpServer::with_options(ioloop, options, self);
        server.listen(port)?;
        Ok(server)
    }

    /// Serves the application on one address.
    ///
    /// # Errors
    ///
    /// Resolving or binding failed.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let (server, addr) = ioloop::web::Application::new().bind(&ioloop, "127.0.0.1:0")?;
    /// # let _ = (server, addr);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn bind(
        self,
        ioloop: &IoLoop,
        address: impl std::net::ToSocketAddrs,
    ) -> io::Result<(HttpServer, SocketAddr)> {
        let options = self.options;
        let server = HttpServer::with_options(ioloop, options, self);
        let addr = server.bind(address)?;
        Ok((server, addr))
    }

    /// The application's own error answer to `request`, told to the finish hooks.
    fn error(&self, error: HttpError, request: &Request) -> Response {
        use crate::http::IntoResponse;
        let status = error.status();
        let response = match &self.hooks.error_page {
            Some(page) => page(&error, request).status_code(status),
            None => error.into_response(),
        };
        if !self.hooks.on_finish.is_empty() {
            let done = FinishedRequest {
                method: request.method().to_owned(),
                path: request.path().to_owned(),
                peer: request.peer_addr(),
                status,
                elapsed: Duration::ZERO,
            };
            self.hooks.on_finish.iter().for_each(|hook| hook(&done));
        }
        response
    }
}

impl Service for Application {
    fn dispatch(&self, request: &mut Request) -> Dispatch {
        let settings = self.hooks.settings.as_ref();
        if let Some(settings) = settings {
            request.extensions_mut().insert_rc(settings.clone());
        }
        for route in self.routes.iter() {
            let Some(captures) = route.pattern.matches(request.path()) else {
                continue;
            };
            if let Some(upgrade) = &route.methods.upgrade {
                // Exactly `GET` (RFC 9110 §9.1: methods are case-sensitive).
                if request.method() != "GET" {
                    let response = self
                        .error(HttpError::new(405), request)
                        .header("Allow", "GET");
                    return Dispatch::Respond(response);
                }
                request.set_params(captures);
                if let Some(settings) = settings {
                    settings.find_current_user(request);
                }
                // `prepare` (authentication, say) sees the handshake; an answer refuses it.
                for hook in &self.hooks.prepare {
                    if let Some(response) = hook(request) {
                        return Dispatch::Respond(response);
                    }
                }
                return upgrade.dispatch(request);
            }
            let Some(handler) = route.methods.handler(request.method()) else {
                let response = self
                    .error(HttpError::new(405), request)
                    .header("Allow", route.methods.allow());
                return Dispatch::Respond(response);
            };
            request.set_params(captures);
            if let Some(limit) = route.methods.body_limit {
                // Refused here, not by the server, so that the error page writes it.
                let declared = request
                    .header("content-length")
                    .and_then(|n| n.parse().ok());
                if declared.is_some_and(|n: u64| n > limit) {
                    return Dispatch::Respond(self.error(HttpError::new(413), request));
                }
            }
            if let Some(settings) = settings {
                settings.find_current_user(request);
                if let Err(refused) = xsrf::check_cross_origin(settings, request) {
                    return Dispatch::Respond(self.error(refused, request));
                }
            }
            let handler = if self.hooks.is_empty() {
                handler.clone()
            } else {
                Rc::new(Hooked {
                    hooks: self.hooks.clone(),
                    handler: handler.clone(),
                    etag: !route.methods.no_etag,
                    check_xsrf: !route.methods.xsrf_exempt,
                })
            };
            return Dispatch::Handle {
                handler,
                body_limit: route.methods.body_limit,
                stream_body: route.methods.stream_body,
            };
        }
        Dispatch::Respond(self.error(HttpError::new(404), request))
    }
}

/// A handler behind the application's hooks.
struct Hooked {
    hooks: Rc<Hooks>,
    handler: Rc<dyn Handler>,
    /// The route keeps the automatic ETag.
    etag: bool,
    /// Whether the route is XSRF-checked (when the application is).
    check_xsrf: bool,
}

impl Handler for Hooked {
    fn call(&self, mut request: Request, mut responder: Responder) {
        let mut answer_hooks = AnswerHooks::default();
        let xsrf_on = self.hooks.settings.as_ref().is_some_and(|s| s.xsrf_cookies);
        let xsrf = if xsrf_on {
            let template = self
                .hooks
                .settings
                .as_ref()
                .and_then(|s| s.xsrf_cookie.as_ref());
            match xsrf::start(&mut request, template) {
                Ok(set_cookie) => {
                    answer_hooks.before_answer = Some(set_cookie);
                    Ok(())
                }
                Err(e) => Err(e),
            }
        } else {
            Ok(())
        };
        if let Some(page) = &self.hooks.error_page {
            let page = page.clone();
            let request = request.clone_without_body();
            answer_hooks.error_page = Some(Box::new(move |error| page(error, &request)));
        }
        if !self.hooks.on_finish.is_empty() {
            let hooks = self.hooks.clone();
            let clock = IoLoop::current();
            let started = clock.as_ref().map_or_else(Instant::now, IoLoop::time);
            let (method, path, peer) = (
                request.method().to_owned(),
                request.path().to_owned(),
                request.peer_addr(),
            );
            answer_hooks.on_finish = Some(Box::new(move |status| {
                let now = clock.as_ref().map_or_else(Instant::now, IoLoop::time);
                let done = FinishedRequest {
                    method,
                    path,
                    peer,
                    status,
                    elapsed: now.saturating_duration_since(started),
                };
                hooks.on_finish.iter().for_each(|hook| hook(&done));
            }));
        }
        responder.set_hooks(answer_hooks);
        let output = self.hooks.output;
        if output.any() {
            responder.wrap_connection(|conn| Output::wrap(conn, output, self.etag, &request));
        }
        // Tornado checks XSRF before `prepare`.
        let checked = xsrf.and_then(|()| match xsrf_on && self.check_xsrf {
            true => xsrf::check(&request),
            false => Ok(()),
        });
        if let Err(refused) = checked {
            return responder.send(refused);
        }
        for hook in &self.hooks.prepare {
            if let Some(response) = hook(&mut request) {
                return responder.send(response);
            }
        }
        self.handler.call(request, responder);
    }

    fn error_page(&self, status: u16, request: &Request) -> Option<Response> {
        let page = self.hooks.error_page.as_ref()?;
        Some(page(&HttpError::new(status), request))
    }
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("routes", &self.routes.len())
            .field("prepare_hooks", &self.hooks.prepare.len())
            .field("finish_hooks", &self.hooks.on_finish.len())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for MethodRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MethodRouter")
            .field("methods", &self.allow())
            .field("body_limit", &self.body_limit)
            .field("stream_body", &self.stream_body)
            .field("no_etag", &self.no_etag)
            .field("xsrf_exempt", &self.xsrf_exempt)
            .field("authenticated", &self.authenticated)
            .field("upgrade", &self.upgrade.is_some())
            .finish()
    }
}
