//! XSRF protection as Tornado does it (`xsrf_cookies=True`): an `_xsrf` cookie holding a
//! random 16-byte token, shown in pages masked anew on every call (BREACH), and checked
//! against the `_xsrf` argument or the `X-XSRFToken`/`X-CSRFToken` header on every
//! request but GET, HEAD and OPTIONS; and Tornado 6.6's `cross_origin_protection`, which
//! needs no token: `Sec-Fetch-Site` and `Origin` decide.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::crypto::{constant_time_eq, hex, random_bytes, unhex};
use super::settings::Settings;
use crate::http::{BeforeAnswerHook, Cookie, HttpError, Request, Response};

/// The name of the XSRF cookie and argument.
const XSRF: &str = "_xsrf";

/// One request's XSRF token: the raw token (from the cookie, or new), and the cookie to
/// set if the token is new and a page asked for it.
pub(crate) struct XsrfState {
    token: [u8; 16],
    timestamp: u64,
    from_cookie: bool,
    /// The masked token to set as the cookie, once [`Request::xsrf_token`] was called on a
    /// request without a valid cookie.
    cookie: RefCell<Option<String>>,
    /// Whether the request has a current user (the cookie then lasts 30 days).
    signed_in: Cell<bool>,
}

/// The raw token of an XSRF cookie or argument: version 2 (`2|mask|masked|timestamp`) or
/// version 1 (the hex token).
pub(crate) fn decode_token(text: &str) -> Option<([u8; 16], u64)> {
    if let Some(rest) = text.strip_prefix("2|") {
        let mut parts = rest.split('|');
        let (mask, masked, timestamp) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let mask = unhex(mask)?;
        let masked = unhex(masked)?;
        if mask.is_empty() {
            return None;
        }
        let token: Vec<u8> = masked
            .iter()
            .zip(mask.iter().cycle())
            .map(|(b, m)| b ^ m)
            .collect();
        let timestamp = timestamp.parse().ok()?;
        Some((token.try_into().ok()?, timestamp))
    } else if text.starts_with(|c: char| c.is_ascii_digit() && c != '0') && text.contains('|') {
        None // another version
    } else {
        let token = unhex(text)?;
        Some((token.try_into().ok()?, now_seconds()))
    }
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// `2|<hex mask>|<hex token XOR mask>|<timestamp>` with a fresh 4-byte mask.
fn masked_token(token: &[u8; 16], timestamp: u64) -> Result<String, HttpError> {
    let mut mask = [0u8; 4];
    random_bytes(&mut mask)
        .map_err(|e| HttpError::new(500).log(format!("no random bytes for a mask: {e}")))?;
    Ok(mask_token(token, mask, timestamp))
}

/// `2|<hex mask>|<hex token XOR mask>|<timestamp>` with this mask.
pub(crate) fn mask_token(token: &[u8; 16], mask: [u8; 4], timestamp: u64) -> String {
    let masked: Vec<u8> = token
        .iter()
        .zip(mask.iter().cycle())
        .map(|(b, m)| b ^ m)
        .collect();
    format!("2|{}|{}|{timestamp}", hex(&mask), hex(&masked))
}

/// Reads the request's XSRF cookie (or makes a new token) and adds the state to its
/// extensions; returns the change to make to its answer: the cookie, if a page used a new
/// token.
pub(crate) fn start(
    request: &mut Request,
    template: Option<&Cookie>,
) -> Result<BeforeAnswerHook, HttpError> {
    let name = template.map_or(XSRF, Cookie::name);
    let from_cookie = request.cookie(name).as_deref().and_then(decode_token);
    let template = template.cloned();
    let (token, timestamp, found) = match from_cookie {
        Some((token, timestamp)) => (token, timestamp, true),
        None => {
            let mut token = [0u8; 16];
            random_bytes(&mut token)
                .map_err(|e| HttpError::new(500).log(format!("no random bytes for XSRF: {e}")))?;
            (token, now_seconds(), false)
        }
    };
    let state = Rc::new(XsrfState {
        token,
        timestamp,
        from_cookie: found,
        cookie: RefCell::new(None),
        signed_in: Cell::new(request.is_authenticated()),
    });
    request.extensions_mut().insert_rc(state.clone());
    Ok(Box::new(move |response: &mut Response| {
        let value = state.cookie.borrow_mut().take();
        if let Some(value) = value {
            let custom = template
                .as_ref()
                .map(|t| t.clone().with_value(value.clone()));
            let mut cookie = custom.unwrap_or_else(|| Cookie::new(XSRF, value));
            if template.is_none() && state.signed_in.get() {
                cookie = cookie.expires(SystemTime::now() + Duration::from_secs(30 * 86_400));
            }
            if let Err(e) = response.set_cookie(&cookie) {
                log::error!(target: "ioloop::web", "the XSRF cookie was refused: {e}");
            }
        }
    }))
}

/// Tornado's `check_xsrf_cookie`, for a request that is not GET, HEAD or OPTIONS: the
/// token of the `_xsrf` argument, else of `X-XSRFToken`, else of `X-CSRFToken`, must be
/// the cookie's.
pub(crate) fn check(request: &Request) -> Result<(), HttpError> {
    if matches!(request.method(), "GET" | "HEAD" | "OPTIONS") {
        return Ok(());
    }
    let Some(state) = request.extensions().get::<XsrfState>() else {
        return Ok(());
    };
    let argument = request.get_argument_or(XSRF, "").unwrap_or_default();
    let sent = Some(argument)
        .filter(|a| !a.is_empty())
        .or_else(|| request.header("x-xsrftoken").map(str::to_owned))
        .or_else(|| request.header("x-csrftoken").map(str::to_owned))
        .filter(|t| !t.is_empty());
    let Some(sent) = sent else {
        return Err(HttpError::new(403).log("'_xsrf' argument missing from POST"));
    };
    let Some((token, _)) = decode_token(&sent) else {
        return Err(HttpError::new(403).log("'_xsrf' argument has invalid format"));
    };
    if !state.from_cookie || !constant_time_eq(&token, &state.token) {
        return Err(HttpError::new(403).log("XSRF cookie does not match POST argument"));
    }
    Ok(())
}

/// Tornado 6.6's `cross_origin_protection`, for a request that is not GET, HEAD or
/// OPTIONS: `Sec-Fetch-Site: same-origin` or `none` passes; without `Sec-Fetch-Site`, no
/// `Origin` passes (not a browser) and an `Origin` passes if its host and port are the
/// `Host`, or it is trusted; `cross-site` and `same-site` pass for a trusted origin only.
pub(crate) fn check_cross_origin(settings: &Settings, request: &Request) -> Result<(), HttpError> {
    let Some(trusted) = &settings.cross_origin else {
        return Ok(());
    };
    if matches!(request.method(), "GET" | "HEAD" | "OPTIONS") {
        return Ok(());
    }
    let origin = request.header("origin");
    let is_trusted = |origin: &str| trusted.iter().any(|t| t == origin);
    let refused = match request.header("sec-fetch-site") {
        Some("same-origin" | "none") => None,
        None => match origin {
            None => None,
            Some(origin) if origin_matches_host(origin, request.host()) || is_trusted(origin) => {
                None
            }
            Some(origin) => Some(format!("Origin {origin:?} not allowed")),
        },
        Some(site) => match origin {
            Some(origin) if is_trusted(origin) => None,
            _ => Some(format!(
                "Sec-Fetch-Site {site:?} & origin {origin:?} not allowed"
            )),
        },
    };
    match refused {
        None => Ok(()),
        Some(why) => Err(HttpError::new(403).log(why)),
    }
}

/// Whether the authority of `origin` (`scheme://host[:port]`) is `host`, ignoring case.
fn origin_matches_host(origin: &str, host: Option<&str>) -> bool {
    let authority = origin.split_once("://").map_or("", |(_, rest)| rest);
    let authority = authority.split(['/', '?', '#']).next().unwrap_or("");
    host.is_some_and(|host| !host.is_empty() && authority.eq_ignore_ascii_case(host))
}

/// Whether the application checks XSRF on `request` (it has a token to hand out).
#[cfg_attr(not(feature = "templates"), allow(dead_code))]
pub(crate) fn is_on(request: &Request) -> bool {
    request.extensions().get::<XsrfState>().is_some()
}

impl Request {
    /// The XSRF token for a page to send back (Tornado's `xsrf_token`): the request's
    /// token, masked with fresh random bytes at each call, so that it differs in every
    /// page (compressed pages then leak nothing of it). If the request had no valid
    /// `_xsrf` cookie, the answer sets one. Empty when the application does not have
    /// [`xsrf_cookies`](crate::web::Application::xsrf_cookies) on.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ioloop::http::Request;
    /// use ioloop::web::{get, Application};
    /// let app = Application::new().xsrf_cookies(true).route("/token", get(|req: Request| async move {
    ///     req.xsrf_token() // for a script to send back in X-XSRFToken
    /// }));
    /// # let _ = app;
    /// ```
    pub fn xsrf_token(&self) -> String {
        let Some(state) = self.extensions().get::<XsrfState>() else {
            return String::new();
        };
        let Ok(token) = masked_token(&state.token, state.timestamp) else {
            return String::new();
        };
        if !state.from_cookie {
            let mut cookie = state.cookie.borrow_mut();
            if cookie.is_none() {
                *cookie = Some(token.clone());
            }
        }
        token
    }

    /// `<input type="hidden" name="_xsrf" value="TOKEN"/>` for a form (Tornado's
    /// `xsrf_form_html`), with a fresh [`xsrf_token`](Request::xsrf_token), escaped.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ioloop::http::{Request, Response};
    /// use ioloop::web::{get, Application};
    /// let app = Application::new().xsrf_cookies(true).route("/form", get(|req: Request| async move {
    ///     let form = format!(
    ///         "<form method=post>{}<input name=name><button>Go</button></form>",
    ///         req.xsrf_form_html()
    ///     );
    ///     Response::text(form).header("Content-Type", "text/html; charset=utf-8")
    /// }));
    /// # let _ = app;
    /// ```
    pub fn xsrf_form_html(&self) -> String {
        let token = self.xsrf_token();
        let mut escaped = String::with_capacity(token.len());
        for c in token.chars() {
            match c {
                '&' => escaped.push_str("&amp;"),
                '<' => escaped.push_str("&lt;"),
                '>' => escaped.push_str("&gt;"),
                '"' => escaped.push_str("&quot;"),
                '\'' => escaped.push_str("&#39;"),
                c => escaped.push(c),
            }
        }
        format!("<input type=\"hidden\" name=\"_xsrf\" value=\"{escaped}\"/>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_unmask_to_the_same_raw_token_with_a_new_mask_each_time() {
        let token = [7u8; 16];
        let a = masked_token(&token, 1_700_000_000).unwrap();
        let b = masked_token(&token, 1_700_000_000).unwrap();
        assert_ne!(a, b);
        let parts: Vec<&str> = a.split('|').collect();
        assert_eq!(
            (parts[0], parts[1].len(), parts[2].len(), parts[3]),
            ("2", 8, 32, "1700000000")
        );
        assert_eq!(decode_token(&a), Some((token, 1_700_000_000)));
        assert_eq!(decode_token(&b), Some((token, 1_700_000_000)));
        // Version 1: the hex token.
        assert_eq!(decode_token(&hex(&token)).map(|t| t.0), Some(token));
        for bad in ["", "2|zz|00|1", "2|00|00", "2|0000|00|1", "3|a|b|c", "xyz"] {
            assert_eq!(decode_token(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_tornado_token_decodes() {
        // From Tornado 6.6.1: mask 0x01020304 over the token 00..0f, timestamp 1700000000.
        let text = "2|01020304|0103010705070503090b090f0d0f0d0b|1700000000";
        let token: [u8; 16] = core::array::from_fn(|i| i as u8);
        assert_eq!(decode_token(text), Some((token, 1_700_000_000)));
    }

    #[test]
    fn the_origin_is_compared_with_host_and_port() {
        assert!(origin_matches_host(
            "http://a.example:8080",
            Some("A.example:8080")
        ));
        assert!(!origin_matches_host(
            "http://a.example",
            Some("a.example:8080")
        ));
        assert!(!origin_matches_host("null", Some("a.example")));
        assert!(!origin_matches_host("http://a.example", None));
    }
}
