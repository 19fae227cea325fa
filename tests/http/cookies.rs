//! Cookies on the wire: `Response::cookie` and [`Cookie`] refuse what would change the
//! `Set-Cookie` field (an injected attribute, a split header, a name that is no token)
//! with a typed [`CookieError`], never a rewritten header; `Request::cookie` unquotes a
//! quoted value; and a real server's cookies read by Python's `http.client` and
//! `http.cookies`.

#![cfg(feature = "web")]

use crate::common;

use std::time::{Duration, SystemTime};

use common::{has_tool, require_tool};
use ioloop::http::{Cookie, CookieError, IntoResponse, Request, Response, SameSite};
use ioloop::web::{get, Application};
use ioloop::IoLoop;

fn set_cookie(response: &Response) -> Vec<&str> {
    response
        .headers()
        .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, value)| value)
        .collect()
}

// RFC 6265 §4.1.1: cookie-value is cookie-octets (no `;`), so "x; Domain=evil" cannot be a
// value; accepting it would give the peer's text the power to add attributes.
#[test]
fn a_value_cannot_inject_an_attribute() {
    let error = Response::new(204)
        .cookie("session", "x; Domain=evil")
        .unwrap_err();
    assert_eq!(error, CookieError::InvalidValue { byte: b';' });
    let mut response = Response::new(204);
    assert!(response
        .set_cookie(&Cookie::new("session", "x; Domain=evil"))
        .is_err());
    assert!(set_cookie(&response).is_empty(), "no header is sent");
}

// RFC 6265 §4.1.1: cookie-name is a token (RFC 9110 §5.6.2), which has no space.
#[test]
fn a_name_with_a_space_is_refused() {
    let error = Response::new(204).cookie("my session", "x").unwrap_err();
    assert_eq!(error, CookieError::InvalidName { byte: Some(b' ') });
    assert_eq!(
        Response::new(204).cookie("", "x").unwrap_err(),
        CookieError::InvalidName { byte: None }
    );
    assert!(error.to_string().contains("name"), "{error}");
}

// RFC 9110 §5.6.2: tchar is ALPHA / DIGIT / "!#$%&'*+-.^_`|~"; every other byte (controls,
// space, separators, DEL, non-ASCII) is refused in a name.
#[test]
fn every_byte_that_is_no_token_character_is_refused_in_a_name() {
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    for byte in 0..=255u8 {
        let name = format!("a{}b", char::from(byte));
        let result = Cookie::new(name.clone(), "v").to_header_value();
        if tchar(byte) {
            assert_eq!(result, Ok(format!("{name}=v; Path=/")), "byte {byte:#04x}");
        } else {
            let wanted = if byte < 0x80 {
                byte
            } else {
                name.as_bytes()[1]
            };
            assert_eq!(
                result,
                Err(CookieError::InvalidName { byte: Some(wanted) }),
                "byte {byte:#04x}"
            );
        }
    }
}

// RFC 6265 §4.1.1: cookie-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E; refused:
// controls (CR, LF, NUL, TAB, ...), space, DQUOTE, comma, semicolon, backslash, DEL and
// every non-ASCII byte.
#[test]
fn every_byte_that_is_no_cookie_octet_is_refused_in_a_value() {
    let octet = |b: u8| matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E);
    for byte in 0..=255u8 {
        let value = format!("a{}b", char::from(byte));
        let result = Response::new(204).cookie("n", &value);
        if octet(byte) {
            let response = result.unwrap();
            assert_eq!(set_cookie(&response), [format!("n={value}; Path=/")]);
        } else {
            let wanted = if byte < 0x80 {
                byte
            } else {
                value.as_bytes()[1]
            };
            assert_eq!(
                result.unwrap_err(),
                CookieError::InvalidValue { byte: wanted },
                "byte {byte:#04x}"
            );
        }
    }
    for split in ["x\r\nSet-Cookie: admin=1", "x\nX-Evil: 1", "x\r"] {
        assert!(Response::new(204).cookie("n", split).is_err(), "{split:?}");
    }
}

// RFC 6265 §4.1.1: cookie-value = *cookie-octet / ( DQUOTE *cookie-octet DQUOTE ).
#[test]
fn a_quoted_value_is_valid_and_sent_as_is() {
    let response = Response::new(204).cookie("n", "\"abc=1\"").unwrap();
    assert_eq!(set_cookie(&response), ["n=\"abc=1\"; Path=/"]);
    let empty = Response::new(204).cookie("n", "\"\"").unwrap();
    assert_eq!(set_cookie(&empty), ["n=\"\"; Path=/"]);
    assert_eq!(
        Response::new(204)
            .cookie("n", "")
            .map(|r| set_cookie(&r).len()),
        Ok(1)
    );
    for bad in ["\"", "\"abc", "abc\"", "\"a\"b\"", "\"a b\""] {
        assert!(Response::new(204).cookie("n", bad).is_err(), "{bad:?}");
    }
}

// RFC 6265 §4.1.1: path-value is any CHAR except CTLs or ";" (Tornado also refuses the
// space); domain-value is a subdomain (RFC 1034 §3.5): letters, digits, hyphens, dots. An
// attribute value can neither add an attribute nor split the field.
#[test]
fn attribute_values_cannot_add_attributes_or_split_the_field() {
    for path in [
        "/a; Domain=evil",
        "/a\r\nX-Evil: 1",
        "/a\n",
        "/a b",
        "/a\x7f",
        "/é",
    ] {
        let error = Cookie::new("n", "v")
            .path(path)
            .to_header_value()
            .unwrap_err();
        assert!(
            matches!(
                error,
                CookieError::InvalidAttribute {
                    attribute: "Path",
                    byte: Some(_)
                }
            ),
            "{path:?}: {error:?}"
        );
    }
    for domain in ["a.com; Secure", "a.com\r\n", "a com", "a_b.com", ""] {
        let error = Cookie::new("n", "v")
            .domain(domain)
            .to_header_value()
            .unwrap_err();
        assert!(
            matches!(
                error,
                CookieError::InvalidAttribute {
                    attribute: "Domain",
                    ..
                }
            ),
            "{domain:?}: {error:?}"
        );
    }
    let mut response = Response::new(204);
    let bad = Cookie::new("n", "v").path("/; Max-Age=0");
    assert!(response.set_cookie(&bad).is_err());
    assert!(set_cookie(&response).is_empty());
}

#[test]
fn typed_attributes_are_written_in_a_fixed_order() {
    let cookie = Cookie::new("id", "a3fWa")
        .path("/docs")
        .domain("example.com")
        .expires(SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480))
        .max_age(Duration::from_secs(3600))
        .secure()
        .http_only()
        .same_site(SameSite::Strict);
    assert_eq!(
        cookie.to_header_value().unwrap(),
        "id=a3fWa; Path=/docs; Domain=example.com; Expires=Wed, 21 Oct 2015 07:28:00 GMT; \
         Max-Age=3600; Secure; HttpOnly; SameSite=Strict"
    );
    let response = Response::new(204)
        .cookie("a", "1")
        .and_then(|r| r.with_cookie(&Cookie::new("b", "2").http_only()))
        .unwrap();
    assert_eq!(
        set_cookie(&response),
        ["a=1; Path=/", "b=2; Path=/; HttpOnly"]
    );
}

// RFC 6265 §5.1.1: the cookie-date's year has four digits (the HTTP date of RFC 9110
// §5.6.7): an `Expires` outside 1970–9999 is clamped to it, never a panic (a date before
// 1970 deletes the cookie as the epoch does).
#[test]
fn an_expiry_outside_the_http_date_range_is_clamped_not_a_panic() {
    let long_ago = SystemTime::UNIX_EPOCH - Duration::from_secs(86_400);
    let cookie = Cookie::new("n", "").expires(long_ago);
    assert_eq!(
        cookie.to_header_value().unwrap(),
        "n=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
    );
    let far = SystemTime::UNIX_EPOCH + Duration::from_secs(300_000_000_000);
    let cookie = Cookie::new("n", "v").expires(far);
    assert_eq!(
        cookie.to_header_value().unwrap(),
        "n=v; Path=/; Expires=Fri, 31 Dec 9999 23:59:59 GMT"
    );
}

// RFC 6265bis (draft-ietf-httpbis-rfc6265bis) §4.1.2.7 and §5.7: browsers drop a
// `SameSite=None` cookie without `Secure`, so it is refused here instead of lost there.
#[test]
fn same_site_none_needs_secure() {
    let error = Cookie::new("n", "v")
        .same_site(SameSite::None)
        .to_header_value()
        .unwrap_err();
    assert_eq!(error, CookieError::SameSiteNoneWithoutSecure);
    let ok = Cookie::new("n", "v").same_site(SameSite::None).secure();
    assert_eq!(
        ok.to_header_value().unwrap(),
        "n=v; Path=/; Secure; SameSite=None"
    );
}

// RFC 6265 §4.1.1 lets a server quote a value; Tornado's `get_cookie` returns it unquoted.
#[test]
fn a_quoted_request_cookie_is_unquoted() {
    let req = Request::parse(
        b"GET / HTTP/1.1\r\nHost: x\r\nCookie: a=\"quoted=1\"; b=plain; c=\"\"; d=\"\r\n\r\n",
    )
    .unwrap();
    assert_eq!(req.cookie("a").as_deref(), Some("quoted=1"));
    assert_eq!(req.cookie("b").as_deref(), Some("plain"));
    assert_eq!(req.cookie("c").as_deref(), Some(""));
    assert_eq!(
        req.cookie("d").as_deref(),
        Some("\""),
        "a lone quote is kept"
    );
}

// A handler that returns the error answers 500 (Tornado raises ValueError): nothing of
// the refused cookie reaches the wire.
#[test]
fn a_refused_cookie_in_a_handler_answers_500_without_the_cookie() {
    let error = Response::new(204).cookie("n", "a;b").into_response();
    assert_eq!(error.status(), 500);
    assert!(set_cookie(&error).is_empty());
}

/// A real server sets cookies, Python's `http.client` reads the `Set-Cookie` fields and
/// `http.cookies` parses them, then sends a quoted value back, which the server unquotes.
#[test]
fn python_reads_the_cookies_of_a_real_server() {
    if !has_tool("python3", &["--version"]) {
        require_tool("python3");
        return;
    }
    let ioloop = IoLoop::new().unwrap();
    let app = Application::new()
        .route(
            "/login",
            get(|_req| async {
                Response::new(204)
                    .cookie("session", "\"abc=1\"")?
                    .with_cookie(
                        &Cookie::new("prefs", "dark")
                            .http_only()
                            .max_age(Duration::from_secs(60)),
                    )
            }),
        )
        .route(
            "/evil",
            get(|_req| async { Response::new(204).cookie("session", "x; Domain=evil") }),
        )
        .route(
            "/echo",
            get(|req: Request| async move { req.cookie("session").unwrap_or_default() }),
        );
    let (_server, addr) = app.bind(&ioloop, "127.0.0.1:0").unwrap();
    let script = r#"
import http.client, http.cookies, sys
conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
conn.request("GET", "/login")
r = conn.getresponse()
r.read()
fields = r.headers.get_all("Set-Cookie")
assert fields == ['session="abc=1"; Path=/', "prefs=dark; Path=/; Max-Age=60; HttpOnly"], fields
jar = http.cookies.SimpleCookie()
for field in fields:
    jar.load(field)
assert jar["session"].value == "abc=1", jar["session"].value
assert jar["session"]["path"] == "/"
assert jar["prefs"].value == "dark" and jar["prefs"]["httponly"] is True
assert jar["prefs"]["max-age"] == "60"
conn.request("GET", "/evil")
r = conn.getresponse()
r.read()
assert r.status == 500 and r.headers.get_all("Set-Cookie") is None, (r.status, r.headers)
conn.request("GET", "/echo", headers={"Cookie": 'other=1; session="abc=1"'})
r = conn.getresponse()
assert r.read() == b"abc=1"
print("ok")
"#;
    let out = common::with_client(&ioloop, addr, move |addr| {
        std::process::Command::new("python3")
            .args(["-c", script, &addr.port().to_string()])
            .output()
            .expect("python3 runs")
    });
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
