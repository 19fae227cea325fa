//! The web layer: an [`Application`] routing requests to handlers written as `async`
//! functions or as callbacks, with Tornado's `RequestHandler` hooks where they serve
//! users (`prepare`, error pages, `redirect`, `on_connection_close`, a `flush` that
//! completes when written), and [`StaticFiles`].
//!
//! It builds on the `http` layer: an [`Application`] is an
//! [`http::Service`](crate::http::Service), served by an
//! [`HttpServer`](crate::http::HttpServer).
//!
//! # Examples
//!
//! ```no_run
//! use ioloop::http::Request;
//! use ioloop::web::{get, Application};
//!
//! let ioloop = ioloop::IoLoop::new()?;
//! Application::new()
//!     .route("/", get(|_req| async { "Hello, World!" }))
//!     .route("/users/{id}", get(|req: Request| async move {
//!         format!("user {}", req.param("id").unwrap_or(""))
//!     }))
//!     .listen(&ioloop, 8080)?;
//! ioloop.start()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod app;
mod compress;
mod etag;
mod handler;
#[cfg(feature = "json")]
mod json;
mod output;
mod pattern;
mod static_files;
#[cfg(feature = "templates")]
mod templates;

pub use self::app::{
    delete, get, options, patch, post, put, Application, FinishedRequest, MethodRouter,
};
pub use self::handler::{
    AsyncResponderStyle, AsyncStyle, CallbackStyle, HandlerStyle, IntoHandler,
};
#[cfg(feature = "json")]
pub use self::json::{Json, JsonError, JSON_CONTENT_TYPE};
pub use self::static_files::{StaticFiles, CACHE_MAX_AGE, MAX_VERSION_CONTENT_SIZE};
#[cfg(feature = "templates")]
pub use self::templates::{TemplateError, Templates};
/// The template engine behind [`Templates`] (feature `templates`), for its `context!`
/// macro and `Value` without a dependency of one's own.
#[cfg(feature = "templates")]
pub use minijinja;
