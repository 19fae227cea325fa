//! The application's settings for its handlers (Tornado's `Application.settings`): the
//! shared state, the current-user hook, the login URL, the cookie secret, XSRF,
//! cross-origin protection and the templates. Each request of an application that has any carries them in
//! its extensions, so that handlers reach them through the request:
//! [`Request::state`], [`Request::current_user`].

use std::any::Any;
use std::rc::Rc;

#[cfg(feature = "signed-cookies")]
use super::signed::CookieSecret;
use crate::http::{Cookie, Request};

/// Finds the current user of a request and, if there is one, adds it to the request's
/// extensions; says whether there was one.
pub(crate) type CurrentUserHook = Rc<dyn Fn(&mut Request) -> bool>;

/// What an application's handlers share (one per application, in an `Rc`).
#[derive(Clone, Default)]
pub(crate) struct Settings {
    pub(super) state: Option<Rc<dyn Any>>,
    pub(super) current_user: Option<CurrentUserHook>,
    pub(super) login_url: Option<String>,
    #[cfg(feature = "signed-cookies")]
    pub(super) cookie_secret: Option<CookieSecret>,
    pub(super) xsrf_cookies: bool,
    /// The XSRF cookie's name and attributes (Tornado's `xsrf_cookie_name` and
    /// `xsrf_cookie_kwargs`); `_xsrf` with `Path=/` when `None`.
    pub(super) xsrf_cookie: Option<Cookie>,
    /// `Some` (the trusted origins) when cross-origin protection is on.
    pub(super) cross_origin: Option<Vec<String>>,
    /// What `Request::render` renders with: a `Templates` (feature `templates`), held as
    /// `Any` so that the settings do not depend on the templates module, which depends
    /// on them through XSRF.
    #[cfg(feature = "templates")]
    pub(super) templates: Option<Rc<dyn Any>>,
}

/// The current user, as the application's hook found it.
struct CurrentUser<U>(U);

/// Marks a request whose current user was found (of whatever type).
struct Authenticated;

impl Settings {
    /// Runs the current-user hook, if any.
    pub(crate) fn find_current_user(&self, request: &mut Request) {
        if let Some(hook) = &self.current_user {
            if hook(request) {
                request.extensions_mut().insert(Authenticated);
            }
        }
    }
}

/// The hook of [`Application::current_user`](crate::web::Application::current_user).
pub(crate) fn current_user_hook<U: 'static>(
    find: impl Fn(&Request) -> Option<U> + 'static,
) -> CurrentUserHook {
    Rc::new(move |request: &mut Request| match find(request) {
        Some(user) => {
            request.extensions_mut().insert(CurrentUser(user));
            true
        }
        None => false,
    })
}

impl Request {
    /// The settings of the application serving this request, if it has any.
    pub(crate) fn settings(&self) -> Option<&Settings> {
        self.extensions().get::<Settings>()
    }

    /// The application's state (see
    /// [`Application::with_state`](crate::web::Application::with_state)), borrowed from
    /// the request: an `async move` handler owns its request, so it needs no clone of the
    /// state, and the route no `Rc` of it (Tornado's `self.application.settings`).
    ///
    /// # Panics
    ///
    /// If the application has no state of type `T` (a mistake in the program, not in the
    /// request; see [`try_state`](Request::try_state)).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::Cell;
    /// use ioloop::http::Request;
    /// use ioloop::web::{get, Application};
    ///
    /// struct Counter(Cell<u64>);
    /// let app = Application::new()
    ///     .with_state(Counter(Cell::new(0)))
    ///     .route("/", get(|req: Request| async move {
    ///         let hits = &req.state::<Counter>().0;
    ///         hits.set(hits.get() + 1);
    ///         format!("{} hits", hits.get())
    ///     }));
    /// # let _ = app;
    /// ```
    #[track_caller]
    pub fn state<T: 'static>(&self) -> &T {
        match self.try_state::<T>() {
            Some(state) => state,
            None => panic!(
                "no application state of type {} (Application::with_state)",
                std::any::type_name::<T>()
            ),
        }
    }

    /// The application's state, or `None` if it has none of type `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// let req = ioloop::http::Request::parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    /// assert!(req.try_state::<String>().is_none());
    /// ```
    pub fn try_state<T: 'static>(&self) -> Option<&T> {
        self.settings()?.state.as_ref()?.downcast_ref::<T>()
    }

    /// The current user, as the application's
    /// [`current_user`](crate::web::Application::current_user) hook found it (Tornado's
    /// `self.current_user`); `None` for an anonymous request, or if `U` is not the
    /// hook's type.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::{Request, Service};
    /// use ioloop::web::{get, Application};
    ///
    /// let app = Application::new()
    ///     .current_user(|req| req.cookie("user"))
    ///     .route("/", get(|_req| async { "home" }));
    /// let head = b"GET / HTTP/1.1\r\nHost: x\r\nCookie: user=ann\r\n\r\n";
    /// let mut req = Request::parse(head).unwrap();
    /// // The server dispatches each request: the hook runs once a route matches its head.
    /// let _ = app.dispatch(&mut req);
    /// assert_eq!(req.current_user::<String>().map(String::as_str), Some("ann"));
    /// assert_eq!(req.current_user::<u64>(), None); // not the hook's type
    /// let mut anonymous = Request::parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    /// let _ = app.dispatch(&mut anonymous);
    /// assert_eq!(anonymous.current_user::<String>(), None);
    /// ```
    pub fn current_user<U: 'static>(&self) -> Option<&U> {
        self.extensions()
            .get::<CurrentUser<U>>()
            .map(|user| &user.0)
    }

    /// Whether the application's current-user hook found a user (of any type).
    ///
    /// # Examples
    ///
    /// ```
    /// let req = ioloop::http::Request::parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    /// assert!(!req.is_authenticated());
    /// ```
    pub fn is_authenticated(&self) -> bool {
        self.extensions().get::<Authenticated>().is_some()
    }
}
