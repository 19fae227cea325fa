//! The web layer: an [`Application`] routing requests to handlers written as `async`
//! functions or as callbacks, with Tornado's `RequestHandler` hooks where they serve
//! users (`prepare`, error pages, `redirect`, `on_connection_close`, a `flush` that
//! completes when written), and [`StaticFiles`].
//!
//! Tornado's `RequestHandler` toolbox, secure by default: application state
//! ([`Application::with_state`], [`Request::state`](crate::http::Request::state)),
//! [`Application::current_user`] and [`authenticated`], [`HttpError`] rendered through
//! one [`Application::error_page`], the `get_argument` family
//! ([`Request::get_argument`](crate::http::Request::get_argument),
//! [`argument_as`](crate::http::Request::argument_as)), signed cookies in Tornado's own
//! format (feature `signed-cookies`, default on: `Application::cookie_secret`), XSRF
//! ([`Application::xsrf_cookies`]) and cross-origin protection, [`redirect`] and
//! [`local_target`].
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
mod arguments;
mod auth;
mod compress;
#[cfg(feature = "signed-cookies")]
mod cookies;
mod crypto;
mod etag;
mod finished;
mod handler;
#[cfg(feature = "json")]
mod json;
mod output;
mod pattern;
mod settings;
#[cfg(feature = "signed-cookies")]
mod signed;
mod static_files;
#[cfg(feature = "templates")]
mod templates;
mod xsrf;

pub use self::app::{delete, get, options, patch, post, put, Application, MethodRouter};
pub use self::auth::{authenticated, local_target, redirect, Authenticated};
pub use self::finished::FinishedRequest;
pub use self::handler::{
    AsyncResponderStyle, AsyncStyle, CallbackStyle, HandlerStyle, IntoHandler,
};
#[cfg(feature = "json")]
pub use self::json::{Json, JsonError, JSON_CONTENT_TYPE};
#[cfg(feature = "signed-cookies")]
pub use self::signed::{create_signed_value, decode_signed_value, CookieSecret};
pub use self::static_files::{StaticFiles, CACHE_MAX_AGE, MAX_VERSION_CONTENT_SIZE};
#[cfg(feature = "templates")]
pub use self::templates::{TemplateError, Templates};
pub use crate::http::HttpError;
/// The template engine behind [`Templates`] (feature `templates`), for its `context!`
/// macro and `Value` without a dependency of one's own.
#[cfg(feature = "templates")]
pub use minijinja;

// The XSRF token's format, for `crate::fuzzing` only.
#[cfg(feature = "fuzzing")]
pub(crate) use self::xsrf::{decode_token as decode_xsrf_token, mask_token as mask_xsrf_token};
// The static files' path and validator logic, for `crate::fuzzing` only.
#[cfg(feature = "fuzzing")]
pub(crate) use self::static_files::{byte_range, if_range_holds, not_modified, RangeAnswer};
