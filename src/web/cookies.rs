//! Signed cookies (Tornado's `set_signed_cookie` and `get_signed_cookie`), with the
//! application's [`CookieSecret`] and Tornado's signed-value format version 2.

use std::time::{Duration, SystemTime};

use super::signed::{create_signed_value, decode_signed_value, CookieSecret};
use crate::http::{Cookie, HttpError, Request};

impl Request {
    fn cookie_secret(&self) -> Option<&CookieSecret> {
        self.settings()?.cookie_secret.as_ref()
    }

    /// The value of signed cookie `name` if its signature is good (with the application's
    /// [`cookie_secret`](crate::web::Application::cookie_secret)), it was signed for that
    /// name, and it is at most `max_age_days` days old (Tornado's `get_signed_cookie`;
    /// Tornado's default is 31). Anything else — no cookie, no secret, tampered, expired,
    /// another cookie's value, not UTF-8 — is `None`, never an error for the client.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use ioloop::http::{Request, Service};
    /// use ioloop::web::{create_signed_value, Application, CookieSecret};
    ///
    /// let secret = CookieSecret::new("a long random secret");
    /// let app = Application::new().cookie_secret(secret.clone());
    /// let signed = create_signed_value(&secret, "user", b"ann", SystemTime::now());
    /// let head = format!("GET / HTTP/1.1\r\nHost: x\r\nCookie: user={signed}; name=ann\r\n\r\n");
    /// let mut req = Request::parse(head.as_bytes()).unwrap();
    /// let _ = app.dispatch(&mut req); // as the server does: the request gets the app's secret
    /// assert_eq!(req.get_signed_cookie("user", 31).as_deref(), Some("ann"));
    /// assert_eq!(req.get_signed_cookie("name", 31), None); // not signed
    /// ```
    pub fn get_signed_cookie(&self, name: &str, max_age_days: u32) -> Option<String> {
        let secret = self.cookie_secret()?;
        let value = self.cookie(name)?;
        let bytes = decode_signed_value(secret, name, &value, max_age_days, SystemTime::now())?;
        String::from_utf8(bytes).ok()
    }

    /// A cookie `name` whose value is `value` signed with the application's
    /// [`cookie_secret`](crate::web::Application::cookie_secret), expiring in 30 days
    /// (Tornado's `set_signed_cookie`); add attributes (`http_only()`, `secure()`, ...)
    /// and set it with [`Response::with_cookie`](crate::http::Response::with_cookie).
    ///
    /// # Errors
    ///
    /// `500` (with a log message) if the application has no cookie secret.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ioloop::http::{HttpError, Request, Response};
    /// use ioloop::web::{get, post, Application};
    ///
    /// let app = Application::new()
    ///     .cookie_secret("a long random secret")
    ///     .route("/login", post(|req: Request| async move {
    ///         let name = req.get_argument("name")?;
    ///         let cookie = req.signed_cookie("user", &name)?.http_only();
    ///         Ok::<_, HttpError>(Response::redirect("/", false).with_cookie(&cookie)?)
    ///     }))
    ///     .route("/", get(|req: Request| async move {
    ///         match req.get_signed_cookie("user", 31) {
    ///             Some(name) => format!("hello, {name}"),
    ///             None => "hello, stranger".to_owned(),
    ///         }
    ///     }));
    /// # let _ = app;
    /// ```
    pub fn signed_cookie(&self, name: &str, value: &str) -> Result<Cookie, HttpError> {
        let secret = self.cookie_secret().ok_or_else(|| {
            HttpError::new(500).log("a signed cookie needs Application::cookie_secret")
        })?;
        let now = SystemTime::now();
        let signed = create_signed_value(secret, name, value.as_bytes(), now);
        Ok(Cookie::new(name, signed).expires(now + Duration::from_secs(30 * 86_400)))
    }
}
