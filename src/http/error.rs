//! [`HttpError`]: an error answer a handler returns (Tornado's `HTTPError`): a status, a
//! message for the log, and an optional reason shown to the client. The web layer renders
//! every such answer through the application's error page.

use std::borrow::Cow;
use std::fmt;

use super::cookie::CookieError;
use super::status::reason_phrase;

/// An error answer: a status (4xx or 5xx), a message for the server's log (never sent),
/// and an optional public reason (sent).
///
/// A handler may return `Result<_, HttpError>` (async style) or send it through its
/// responder (callback style). Under an [`Application`](crate::web::Application) it is
/// rendered by the application's
/// [`error_page`](crate::web::Application::error_page) — as are the application's own
/// 404, 405 and 413 answers and its argument and XSRF refusals; without one it is a short
/// plain-text page, `"404 Not Found\n"` or `"400 Missing argument limit\n"`. Its log
/// message, when it has one, is logged at `warn` level when it becomes a response.
///
/// # Examples
///
/// ```
/// use ioloop::http::{HttpError, IntoResponse};
/// let err = HttpError::new(404).log("no item 7 in the store").reason("No such item");
/// assert_eq!((err.status(), err.public_reason()), (404, "No such item"));
/// let response = err.into_response();
/// assert_eq!(response.status(), 404);
/// assert_eq!(response.body_bytes(), b"404 No such item\n");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    status: u16,
    log_message: Option<Cow<'static, str>>,
    reason: Option<Cow<'static, str>>,
}

impl HttpError {
    /// An error with `status` (anything outside 400–599 is made 500), no log message and
    /// the standard reason.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ioloop::http::HttpError::new(403).public_reason(), "Forbidden");
    /// assert_eq!(ioloop::http::HttpError::new(200).status(), 500);
    /// ```
    pub fn new(status: u16) -> HttpError {
        HttpError {
            status: if (400..600).contains(&status) {
                status
            } else {
                500
            },
            log_message: None,
            reason: None,
        }
    }

    /// Sets the message for the log (never sent to the client).
    ///
    /// # Examples
    ///
    /// ```
    /// let err = ioloop::http::HttpError::new(500).log("the database is down");
    /// assert_eq!(err.log_message(), Some("the database is down"));
    /// ```
    pub fn log(mut self, message: impl Into<Cow<'static, str>>) -> HttpError {
        self.log_message = Some(message.into());
        self
    }

    /// Sets the public reason, shown to the client by the default page (and to the
    /// application's error page) instead of the standard phrase.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = ioloop::http::HttpError::new(400).reason("Missing argument name");
    /// assert_eq!(err.public_reason(), "Missing argument name");
    /// ```
    pub fn reason(mut self, reason: impl Into<Cow<'static, str>>) -> HttpError {
        self.reason = Some(reason.into());
        self
    }

    /// `400 Missing argument NAME` (Tornado's `MissingArgumentError`).
    ///
    /// # Examples
    ///
    /// ```
    /// let err = ioloop::http::HttpError::missing_argument("limit");
    /// assert_eq!((err.status(), err.public_reason()), (400, "Missing argument limit"));
    /// ```
    pub fn missing_argument(name: &str) -> HttpError {
        HttpError::new(400).reason(format!("Missing argument {name}"))
    }

    /// The status.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::HttpError;
    /// assert_eq!(HttpError::new(429).status(), 429);
    /// // Not an error status: it becomes 500.
    /// assert_eq!(HttpError::new(302).status(), 500);
    /// ```
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The message for the log, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::HttpError;
    /// assert_eq!(HttpError::new(404).log_message(), None);
    /// let err = HttpError::new(503).log("the queue is full").reason("Try again later");
    /// assert_eq!(err.log_message(), Some("the queue is full"));
    /// ```
    pub fn log_message(&self) -> Option<&str> {
        self.log_message.as_deref()
    }

    /// The reason for the client: the one set, else the standard phrase of the status.
    /// The reasons the library sets quote nothing of the request (no field names, no
    /// values, no content types); one an application sets from request data is its own
    /// to escape when an error page prints it into HTML.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::HttpError;
    /// assert_eq!(HttpError::new(404).public_reason(), "Not Found");
    /// // The log message is never the public reason.
    /// let err = HttpError::new(500).log("secret detail");
    /// assert_eq!(err.public_reason(), "Internal Server Error");
    /// assert_eq!(HttpError::new(409).reason("Name taken").public_reason(), "Name taken");
    /// ```
    pub fn public_reason(&self) -> &str {
        self.reason
            .as_deref()
            .unwrap_or_else(|| reason_phrase(self.status))
    }

    /// Whether a public reason was set.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!ioloop::http::HttpError::new(404).has_reason());
    /// ```
    pub fn has_reason(&self) -> bool {
        self.reason.is_some()
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}: {}", self.status, self.public_reason())?;
        if let Some(message) = &self.log_message {
            write!(f, " ({message})")?;
        }
        Ok(())
    }
}

impl std::error::Error for HttpError {}

/// A refused cookie is a `500` whose log message says why.
impl From<CookieError> for HttpError {
    fn from(error: CookieError) -> HttpError {
        HttpError::new(500).log(format!("refused to set a cookie: {error}"))
    }
}
