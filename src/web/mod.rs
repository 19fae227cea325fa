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
mod handler;
mod pattern;
mod static_files;

pub use self::app::{
    delete, get, options, patch, post, put, Application, FinishedRequest, MethodRouter,
};
pub use self::handler::{
    AsyncResponderStyle, AsyncStyle, CallbackStyle, HandlerStyle, IntoHandler,
};
pub use self::static_files::StaticFiles;

// The static files' path and validator logic, for `crate::fuzzing` only.
#[cfg(feature = "fuzzing")]
pub(crate) use self::static_files::{byte_range, if_range_holds, not_modified, RangeAnswer};
