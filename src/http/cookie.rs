//! Cookies a response sets: a [`Cookie`] with typed attributes, written as one
//! `Set-Cookie` field value only when every part of it is valid (RFC 6265 §4.1.1), so no
//! value or attribute can add an attribute or split the header field; and the unquoting
//! of a value a request sent.

use std::fmt;
use std::time::{Duration, SystemTime};

use super::head::is_token;

/// A cookie to set: a name, a value and its attributes, for
/// [`Response::with_cookie`](crate::http::Response::with_cookie) and
/// [`Response::set_cookie`](crate::http::Response::set_cookie).
///
/// Nothing is checked until the cookie is written
/// ([`to_header_value`](Cookie::to_header_value)); then the name must be a token (RFC
/// 9110 §5.6.2), the value cookie-octets, optionally in double quotes (RFC 6265 §4.1.1),
/// the `Path` free of controls, spaces and `;`, the `Domain` letters, digits, hyphens and
/// dots. Anything else is a [`CookieError`], never a changed header: unlike Tornado's
/// `set_cookie`, the value is never quoted or escaped on the caller's behalf.
///
/// The path is `/` unless set (Tornado's default). Attributes are written in a fixed
/// order: `Path`, `Domain`, `Expires`, `Max-Age`, `Secure`, `HttpOnly`, `SameSite`.
///
/// # Examples
///
/// ```
/// use ioloop::http::{Cookie, SameSite};
/// use std::time::Duration;
///
/// let cookie = Cookie::new("session", "abc")
///     .max_age(Duration::from_secs(3600))
///     .secure()
///     .http_only()
///     .same_site(SameSite::Lax);
/// assert_eq!(
///     cookie.to_header_value().unwrap(),
///     "session=abc; Path=/; Max-Age=3600; Secure; HttpOnly; SameSite=Lax"
/// );
/// assert!(Cookie::new("session", "x; Domain=evil").to_header_value().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    name: String,
    value: String,
    path: String,
    domain: Option<String>,
    expires: Option<SystemTime>,
    max_age: Option<Duration>,
    secure: bool,
    http_only: bool,
    same_site: Option<SameSite>,
}

/// The `SameSite` attribute of a [`Cookie`]: whether browsers send it with requests
/// from other sites.
///
/// # Examples
///
/// ```
/// use ioloop::http::{Cookie, SameSite};
/// let cookie = Cookie::new("n", "v").same_site(SameSite::Strict);
/// assert!(cookie.to_header_value().unwrap().ends_with("; SameSite=Strict"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SameSite {
    /// Only with requests from the same site.
    Strict,
    /// Also with top-level navigations from other sites (browsers' default).
    Lax,
    /// With every request; browsers require [`Cookie::secure`] with it.
    None,
}

/// Why a cookie was refused: the name, value or attribute that is not valid, and the
/// first byte at fault.
///
/// As a handler's answer (a handler may return `Result<Response, CookieError>`) it is a
/// `500 Internal Server Error` without the cookie, logged at `error` level, as Tornado's
/// `set_cookie` raises `ValueError`.
///
/// # Examples
///
/// ```
/// use ioloop::http::{CookieError, Response};
/// let refused = Response::new(204).cookie("session", "x; Domain=evil").unwrap_err();
/// assert_eq!(refused, CookieError::InvalidValue { byte: b';' });
/// assert!(refused.to_string().contains("value"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CookieError {
    /// The name is empty (`byte: None`) or has a byte that is no token character
    /// (RFC 9110 §5.6.2): a control, a space, a separator such as `=` or `;`, or a
    /// non-ASCII byte.
    InvalidName {
        /// The first byte at fault; `None` for an empty name.
        byte: Option<u8>,
    },
    /// The value has a byte that is no cookie-octet (RFC 6265 §4.1.1): a control (CR, LF,
    /// NUL, ...), a space, `"` (except a pair around the whole value), `,`, `;`, `\`, or a
    /// non-ASCII byte.
    InvalidValue {
        /// The first byte at fault.
        byte: u8,
    },
    /// An attribute's value (`"Path"` or `"Domain"`) is empty (`byte: None`) or has a
    /// byte it may not have.
    InvalidAttribute {
        /// The attribute's name.
        attribute: &'static str,
        /// The first byte at fault; `None` for an empty value.
        byte: Option<u8>,
    },
    /// `SameSite=None` without `Secure`, which browsers drop.
    SameSiteNoneWithoutSecure,
}

impl fmt::Display for CookieError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let byte = |b: &u8| format!("byte {b:#04x} ({:?})", char::from(*b));
        match self {
            CookieError::InvalidName { byte: None } => f.write_str("empty cookie name"),
            CookieError::InvalidName { byte: Some(b) } => write!(
                f,
                "cookie name has {}, which is no token character (RFC 6265 §4.1.1)",
                byte(b)
            ),
            CookieError::InvalidValue { byte: b } => write!(
                f,
                "cookie value has {}, which is no cookie-octet (RFC 6265 §4.1.1)",
                byte(b)
            ),
            CookieError::InvalidAttribute {
                attribute,
                byte: None,
            } => write!(f, "empty cookie {attribute} attribute"),
            CookieError::InvalidAttribute {
                attribute,
                byte: Some(b),
            } => write!(f, "cookie {attribute} attribute has {}", byte(b)),
            CookieError::SameSiteNoneWithoutSecure => {
                f.write_str("a cookie with SameSite=None must be Secure")
            }
        }
    }
}

impl std::error::Error for CookieError {}

impl Cookie {
    /// A cookie `name=value` with `Path=/` and no other attribute.
    ///
    /// # Examples
    ///
    /// ```
    /// let cookie = ioloop::http::Cookie::new("theme", "dark");
    /// assert_eq!(cookie.to_header_value().unwrap(), "theme=dark; Path=/");
    /// ```
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Cookie {
        Cookie {
            name: name.into(),
            value: value.into(),
            path: "/".to_owned(),
            domain: None,
            expires: None,
            max_age: None,
            secure: false,
            http_only: false,
            same_site: None,
        }
    }

    /// The `Path` attribute (default `/`): any visible ASCII but `;`.
    ///
    /// # Examples
    ///
    /// ```
    /// let cookie = ioloop::http::Cookie::new("n", "v").path("/app");
    /// assert_eq!(cookie.to_header_value().unwrap(), "n=v; Path=/app");
    /// ```
    pub fn path(mut self, path: impl Into<String>) -> Cookie {
        self.path = path.into();
        self
    }

    /// The `Domain` attribute: letters, digits, hyphens and dots (an internationalized
    /// name in its `xn--` form).
    ///
    /// # Examples
    ///
    /// ```
    /// let cookie = ioloop::http::Cookie::new("n", "v").domain("example.com");
    /// assert_eq!(cookie.to_header_value().unwrap(), "n=v; Path=/; Domain=example.com");
    /// ```
    pub fn domain(mut self, domain: impl Into<String>) -> Cookie {
        self.domain = Some(domain.into());
        self
    }

    /// The `Expires` attribute, written as an HTTP date (whole seconds; a time before
    /// 1970 is written as the epoch, one after 9999 as the last second of 9999).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::SystemTime;
    /// let cookie = ioloop::http::Cookie::new("n", "").expires(SystemTime::UNIX_EPOCH);
    /// assert_eq!(
    ///     cookie.to_header_value().unwrap(),
    ///     "n=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
    /// );
    /// ```
    pub fn expires(mut self, at: SystemTime) -> Cookie {
        self.expires = Some(at);
        self
    }

    /// The `Max-Age` attribute, in whole seconds (zero deletes the cookie).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let cookie = ioloop::http::Cookie::new("n", "v").max_age(Duration::from_secs(60));
    /// assert_eq!(cookie.to_header_value().unwrap(), "n=v; Path=/; Max-Age=60");
    /// ```
    pub fn max_age(mut self, max_age: Duration) -> Cookie {
        self.max_age = Some(max_age);
        self
    }

    /// The `Secure` attribute: sent over HTTPS only.
    ///
    /// # Examples
    ///
    /// ```
    /// let cookie = ioloop::http::Cookie::new("n", "v").secure();
    /// assert_eq!(cookie.to_header_value().unwrap(), "n=v; Path=/; Secure");
    /// ```
    pub fn secure(mut self) -> Cookie {
        self.secure = true;
        self
    }

    /// The `HttpOnly` attribute: hidden from scripts in the page.
    ///
    /// # Examples
    ///
    /// ```
    /// let cookie = ioloop::http::Cookie::new("n", "v").http_only();
    /// assert_eq!(cookie.to_header_value().unwrap(), "n=v; Path=/; HttpOnly");
    /// ```
    pub fn http_only(mut self) -> Cookie {
        self.http_only = true;
        self
    }

    /// The `SameSite` attribute.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::{Cookie, SameSite};
    /// let cookie = Cookie::new("n", "v").secure().same_site(SameSite::None);
    /// assert_eq!(cookie.to_header_value().unwrap(), "n=v; Path=/; Secure; SameSite=None");
    /// // Browsers drop `SameSite=None` without `Secure`, so it is refused.
    /// assert!(Cookie::new("n", "v").same_site(SameSite::None).to_header_value().is_err());
    /// ```
    pub fn same_site(mut self, same_site: SameSite) -> Cookie {
        self.same_site = Some(same_site);
        self
    }

    /// This cookie as a deletion (what Tornado's `clear_cookie` sends): an empty value,
    /// `Expires` at the epoch and `Max-Age=0`, with the same `Path` and `Domain` (a
    /// browser deletes only the cookie of that path and domain).
    ///
    /// # Examples
    ///
    /// ```
    /// let cookie = ioloop::http::Cookie::new("user", "x").path("/app").removal();
    /// assert_eq!(
    ///     cookie.to_header_value().unwrap(),
    ///     "user=; Path=/app; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0"
    /// );
    /// ```
    pub fn removal(mut self) -> Cookie {
        self.value.clear();
        self.expires = Some(SystemTime::UNIX_EPOCH);
        self.max_age = Some(Duration::ZERO);
        self
    }

    /// The same cookie with another value (the XSRF cookie from its template).
    #[cfg_attr(not(feature = "web"), allow(dead_code))]
    pub(crate) fn with_value(mut self, value: impl Into<String>) -> Cookie {
        self.value = value.into();
        self
    }

    /// The cookie's name.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ioloop::http::Cookie::new("n", "v").name(), "n");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cookie's value, as given (quotes included).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ioloop::http::Cookie::new("n", "\"v\"").value(), "\"v\"");
    /// ```
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The `Set-Cookie` field value, after checking every part.
    ///
    /// # Errors
    ///
    /// A [`CookieError`] naming the first part that is not valid (name, value, `Path`,
    /// `Domain`, or `SameSite=None` without `Secure`).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::{Cookie, CookieError};
    /// assert_eq!(Cookie::new("n", "\"a b\"").to_header_value(),
    ///            Err(CookieError::InvalidValue { byte: b' ' }));
    /// ```
    pub fn to_header_value(&self) -> Result<String, CookieError> {
        check_name(&self.name)?;
        check_value(&self.value)?;
        check_path(&self.path)?;
        if let Some(domain) = &self.domain {
            check_domain(domain)?;
        }
        if self.same_site == Some(SameSite::None) && !self.secure {
            return Err(CookieError::SameSiteNoneWithoutSecure);
        }
        let mut out = format!("{}={}; Path={}", self.name, self.value, self.path);
        if let Some(domain) = &self.domain {
            out.push_str("; Domain=");
            out.push_str(domain);
        }
        if let Some(at) = self.expires {
            out.push_str("; Expires=");
            out.push_str(&httpdate::fmt_http_date(http_date_range(at)));
        }
        if let Some(max_age) = self.max_age {
            out.push_str(&format!("; Max-Age={}", max_age.as_secs()));
        }
        if self.secure {
            out.push_str("; Secure");
        }
        if self.http_only {
            out.push_str("; HttpOnly");
        }
        if let Some(same_site) = self.same_site {
            out.push_str(match same_site {
                SameSite::Strict => "; SameSite=Strict",
                SameSite::Lax => "; SameSite=Lax",
                SameSite::None => "; SameSite=None",
            });
        }
        Ok(out)
    }
}

/// `at` within what an HTTP date can say (RFC 9110 §5.6.7, a four-digit year; `httpdate`
/// panics outside it): 1970 to the last second of 9999. A date before 1970 is in the
/// past as the epoch is, so the cookie is deleted either way.
pub(crate) fn http_date_range(at: SystemTime) -> SystemTime {
    let last = SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_799);
    at.clamp(SystemTime::UNIX_EPOCH, last)
}

/// RFC 6265 §4.1.1: cookie-name is a token (RFC 9110 §5.6.2).
fn check_name(name: &str) -> Result<(), CookieError> {
    if is_token(name) {
        return Ok(());
    }
    let byte = name
        .bytes()
        .find(|&b| !b.is_ascii() || !is_token(char::from(b).encode_utf8(&mut [0; 4])));
    Err(CookieError::InvalidName { byte })
}

/// RFC 6265 §4.1.1: cookie-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E.
fn is_cookie_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

/// RFC 6265 §4.1.1: cookie-value = *cookie-octet / ( DQUOTE *cookie-octet DQUOTE ).
fn check_value(value: &str) -> Result<(), CookieError> {
    let bytes = value.as_bytes();
    let inner = match bytes {
        [b'"', inner @ .., b'"'] => inner,
        _ => bytes,
    };
    match inner.iter().find(|&&b| !is_cookie_octet(b)) {
        Some(&byte) => Err(CookieError::InvalidValue { byte }),
        None => Ok(()),
    }
}

/// RFC 6265 §4.1.1: path-value is any CHAR except CTLs or `;`; the space is refused too
/// (as Tornado does), and so is every non-ASCII byte (CHAR is US-ASCII).
fn check_path(path: &str) -> Result<(), CookieError> {
    let bad = |b: &u8| *b <= 0x20 || *b >= 0x7f || *b == b';';
    match path.bytes().find(bad) {
        Some(byte) => Err(CookieError::InvalidAttribute {
            attribute: "Path",
            byte: Some(byte),
        }),
        None if path.is_empty() => Err(CookieError::InvalidAttribute {
            attribute: "Path",
            byte: None,
        }),
        None => Ok(()),
    }
}

/// RFC 6265 §4.1.1: domain-value is a subdomain (RFC 1034 §3.5, RFC 1123 §2.1): letters,
/// digits, hyphens and dots (a leading dot is ignored by browsers, §5.2.3).
fn check_domain(domain: &str) -> Result<(), CookieError> {
    let ok = |b: &u8| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'.';
    let byte = match domain.bytes().find(|b| !ok(b)) {
        None if !domain.is_empty() => return Ok(()),
        found => found,
    };
    Err(CookieError::InvalidAttribute {
        attribute: "Domain",
        byte,
    })
}

/// A request cookie's value without the double quotes around it, if it has them
/// (RFC 6265 §4.1.1 allows them; Tornado's `get_cookie` removes them). Backslashes
/// inside are kept: RFC 6265 has no escapes.
pub(crate) fn unquote(value: &[u8]) -> &[u8] {
    match value {
        [b'"', inner @ .., b'"'] => inner,
        _ => value,
    }
}
