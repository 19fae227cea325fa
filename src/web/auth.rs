//! [`authenticated`] (Tornado's `@authenticated`), [`redirect`] with any redirect status,
//! and [`local_target`], the check a login page makes of its `next` argument.

use std::rc::Rc;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::handler::IntoHandler;
use crate::http::{Handler, HttpError, Request, Responder, Response};

/// What Python's `urlencode` leaves as is (`quote_plus`): letters, digits and `_.-~`.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

/// Wraps a handler so that only a signed-in request reaches it (Tornado's
/// `@authenticated`): when the application's
/// [`current_user`](crate::web::Application::current_user) hook found nobody, a GET or
/// HEAD is redirected (302) to the [`login_url`](crate::web::Application::login_url) with
/// `?next=<path and query>` (unless the login URL has a query already; the full URL when
/// the login URL is absolute), and any other method gets 403 — through the application's
/// error page. Without a login URL, every anonymous request gets 403.
/// [`MethodRouter::authenticated`](crate::web::MethodRouter::authenticated) does the same
/// for every method of a route.
///
/// # Examples
///
/// ```
/// use ioloop::http::Request;
/// use ioloop::web::{authenticated, get, Application};
///
/// struct User(String);
/// let app = Application::new()
///     .current_user(|req| req.cookie("user").map(User))
///     .login_url("/login")
///     .route("/me", get(authenticated(|req: Request| async move {
///         format!("you are {}", req.current_user::<User>().unwrap().0)
///     })));
/// # let _ = app;
/// ```
#[track_caller]
pub fn authenticated<S>(handler: impl IntoHandler<S>) -> Authenticated {
    Authenticated {
        handler: handler.into_handler(),
    }
}

/// A handler that only signed-in requests reach: see [`authenticated`].
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
/// use ioloop::web::{authenticated, get, Application, Authenticated};
///
/// let me: Authenticated = authenticated(|req: Request| async move {
///     format!("you are {}", req.current_user::<String>().unwrap())
/// });
/// let app = Application::new()
///     .current_user(|req| req.cookie("user"))
///     .login_url("/login")
///     .route("/me", get(me));
/// // `ask` serves the application and returns its answer to one request.
/// let signed_in = ask(app.clone(), "GET /me HTTP/1.0\r\nCookie: user=ann\r\n\r\n");
/// assert!(signed_in.ends_with("\r\n\r\nyou are ann"));
/// let anonymous = ask(app, "GET /me HTTP/1.0\r\n\r\n");
/// assert!(anonymous.starts_with("HTTP/1.1 302 ") && anonymous.contains("Location: /login?next="));
/// ```
pub struct Authenticated {
    handler: Rc<dyn Handler>,
}

impl Authenticated {
    /// `handler`, behind the check (for [`MethodRouter::authenticated`](crate::web::MethodRouter::authenticated)).
    pub(crate) fn wrap(handler: Rc<dyn Handler>) -> Authenticated {
        Authenticated { handler }
    }
}

impl Handler for Authenticated {
    fn call(&self, request: Request, responder: Responder) {
        if request.is_authenticated() {
            return self.handler.call(request, responder);
        }
        let login = request.settings().and_then(|s| s.login_url.as_deref());
        match login {
            Some(login) if matches!(request.method(), "GET" | "HEAD") => {
                let url = login_redirect(login, &request);
                responder.send(Response::redirect(url, false));
            }
            _ => responder.send(HttpError::new(403)),
        }
    }
}

impl std::fmt::Debug for Authenticated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticated").finish_non_exhaustive()
    }
}

/// Tornado's rule: `login?next=<uri>` unless the login URL has a query; the request's
/// full URL (its own scheme, `https` over TLS) when the login URL is absolute.
fn login_redirect(login: &str, request: &Request) -> String {
    if login.contains('?') {
        return login.to_owned();
    }
    let path_and_query = match request.query() {
        "" => request.path().to_owned(),
        query => format!("{}?{query}", request.path()),
    };
    let absolute = login.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    });
    let next = match (absolute, request.host()) {
        (true, Some(host)) => format!("{}://{host}{path_and_query}", request.protocol()),
        _ => path_and_query,
    };
    format!("{login}?next={}", utf8_percent_encode(&next, QUERY_VALUE))
}

/// A redirect to `url` with `status`: 301, 302, 303, 307 or 308 (Tornado's
/// `redirect(url, status=..)`). `Location` is `url` as given (a relative URL stays
/// relative).
///
/// # Errors
///
/// `500` (with a log message) for another status, or a `url` with a control character
/// (which could split the header or, as a tab or newline that browsers drop, hide a
/// `//host` target).
///
/// # Examples
///
/// ```
/// use ioloop::web::redirect;
/// let r = redirect("/items/7", 303)?;
/// assert_eq!((r.status(), r.get_header("Location")), (303, Some("/items/7")));
/// assert!(redirect("/x", 200).is_err());
/// # Ok::<(), ioloop::http::HttpError>(())
/// ```
pub fn redirect(url: &str, status: u16) -> Result<Response, HttpError> {
    if !matches!(status, 301 | 302 | 303 | 307 | 308) {
        return Err(HttpError::new(500).log(format!("{status} is not a redirect status")));
    }
    if url.is_empty() || url.chars().any(char::is_control) {
        return Err(HttpError::new(500).log("a redirect URL with a control character"));
    }
    Ok(Response::new(status).header("Location", url.to_owned()))
}

/// `next` if it is a local URL, safe to redirect to after a login: it starts with `/`
/// but not `//` or `/\` (which browsers read as another host), and has no control
/// character or whitespace (browsers drop tabs and newlines, so `/\t/evil.example` would
/// be `//evil.example`). `None` otherwise: redirect to a fixed page instead.
///
/// # Examples
///
/// ```
/// use ioloop::web::local_target;
/// assert_eq!(local_target("/items?limit=5"), Some("/items?limit=5"));
/// assert_eq!(local_target("//evil.example"), None);
/// assert_eq!(local_target("/\\evil.example"), None);
/// assert_eq!(local_target("https://evil.example"), None);
/// assert_eq!(local_target("/\t/evil.example"), None);
/// let next = local_target("//evil.example").unwrap_or("/");
/// assert_eq!(next, "/");
/// ```
pub fn local_target(next: &str) -> Option<&str> {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c.is_whitespace());
    local.then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_redirect_carries_next_as_tornado_encodes_it() {
        // Python: urlencode(dict(next="/api/items?limit=5&x=~_.-"))
        let req =
            Request::parse(b"GET /api/items?limit=5&x=~_.- HTTP/1.1\r\nHost: h:1\r\n\r\n").unwrap();
        let url = login_redirect("/login", &req);
        assert_eq!(url, "/login?next=%2Fapi%2Fitems%3Flimit%3D5%26x%3D~_.-");
        assert_eq!(login_redirect("/login?from=x", &req), "/login?from=x");
        let absolute = login_redirect("https://auth.example/login", &req);
        assert!(
            absolute
                .starts_with("https://auth.example/login?next=http%3A%2F%2Fh%3A1%2Fapi%2Fitems"),
            "{absolute}"
        );
        // Over TLS the page to come back to is https (Tornado's `request.full_url()`).
        let mut secure = req;
        secure.set_secure();
        let absolute = login_redirect("https://auth.example/login", &secure);
        assert!(
            absolute.starts_with("https://auth.example/login?next=https%3A%2F%2Fh%3A1%2F"),
            "{absolute}"
        );
    }

    #[test]
    fn redirects_take_the_five_redirect_statuses_only() {
        for status in [301, 302, 303, 307, 308] {
            assert_eq!(redirect("/x", status).unwrap().status(), status);
        }
        for status in [200, 300, 304, 305, 400, 500] {
            assert!(redirect("/x", status).is_err(), "{status}");
        }
        assert!(redirect("/x\r\nSet-Cookie: a=1", 302).is_err());
        assert_eq!(
            redirect("elsewhere", 302).unwrap().get_header("location"),
            Some("elsewhere")
        );
    }
}
