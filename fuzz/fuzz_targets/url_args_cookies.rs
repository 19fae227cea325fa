//! URLs, query and form arguments, cookies.
//!
//! Properties:
//! - nothing panics;
//! - a URL the client accepts prints as a URL that parses to the same parts, and prints
//!   the same again (parse → print → parse is stable); its target starts with `/` and
//!   holds no space or control byte; a `Location` resolved against it is such a URL too;
//! - a query or form argument written with percent-encoding (and `+` for spaces) reads
//!   back as the value written, whatever else the query holds before it;
//! - a cookie `name=value` written in a `Cookie` field reads back (without the double
//!   quotes around it, if it has them).

#![no_main]

use arbitrary::Arbitrary;
use ioloop::fuzzing::http::{join_url, parse_url};
use ioloop::http::Request;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    websocket: bool,
    url: &'a str,
    location: &'a str,
    before: &'a str,
    name: String,
    value: String,
    cookie_value: &'a str,
    target: &'a str,
}

/// Percent-encodes everything but unreserved characters; spaces as `+`.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b' ' => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn check_url(u: &ioloop::fuzzing::http::Url, websocket: bool) {
    assert!(u.target.starts_with('/'), "target {:?}", u.target);
    assert!(!u.target.bytes().any(|b| b <= b' ' || b == 0x7F));
    let again = parse_url(&u.shown, websocket).expect("a printed URL parses");
    assert_eq!(&again, u, "parse → print → parse changed it");
}

fuzz_target!(|input: Input<'_>| {
    if let Some(u) = parse_url(input.url, input.websocket) {
        check_url(&u, input.websocket);
        if !input.websocket {
            if let Some(joined) = join_url(input.url, input.location) {
                check_url(&joined, false);
            }
        }
    }

    // Query and form arguments: `before&name=value`, the first `name` wins, so `before`
    // must not hold one.
    if !input.name.is_empty()
        && !input.before.contains(['?', '#', ' ', '\r', '\n'])
        && input.before.is_ascii()
    {
        let name = encode(&input.name);
        let value = encode(&input.value);
        let target = format!("/p?{}&{name}={value}", input.before);
        let head = format!("GET {target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n");
        if let Ok(mut request) = Request::parse(head.as_bytes()) {
            let before_names_it = input.before.split('&').any(|pair| {
                let key = pair.split('=').next().unwrap_or("");
                request_decodes_to(key, &input.name)
            });
            if !before_names_it {
                assert_eq!(
                    request.query_arg(&input.name).as_deref(),
                    Some(&*input.value)
                );
                request.set_body(format!("{name}={value}").into_bytes());
                assert_eq!(
                    request.form_arg(&input.name).as_deref(),
                    Some(&*input.value)
                );
            }
        }
    }

    // Cookies: a token name and a value without `;`, controls or spaces round-trip.
    let name_ok = !input.name.is_empty()
        && input
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    let value_ok = input
        .cookie_value
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b';' && b != b',');
    if name_ok && value_ok {
        let head = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nCookie: a=1; {}={}; z=2\r\n\r\n",
            input.name, input.cookie_value
        );
        let request = Request::parse(head.as_bytes()).expect("a valid head");
        // Without the double quotes around it, if it has them (RFC 6265 §4.1.1; as
        // Tornado's `get_cookie`).
        let unquoted = match input.cookie_value.as_bytes() {
            [b'"', .., b'"'] if input.cookie_value.len() >= 2 => {
                &input.cookie_value[1..input.cookie_value.len() - 1]
            }
            _ => input.cookie_value,
        };
        let expected = if input.name == "a" { "1" } else { unquoted };
        assert_eq!(request.cookie(&input.name).as_deref(), Some(expected));
    }

    // Any target: the accessors do not panic and stay inside the target.
    let head = format!(
        "GET {} HTTP/1.1\r\nHost: x\r\nCookie: {}\r\n\r\n",
        input.target, input.cookie_value
    );
    if let Ok(request) = Request::parse(head.as_bytes()) {
        let _ = request.query_arg(&input.name);
        let _ = request.cookie(&input.name);
        assert!(request.target().contains(request.query()));
    }
});

/// Whether a raw query key decodes to `name` (as the server decodes it).
fn request_decodes_to(raw: &str, name: &str) -> bool {
    let head = format!("GET /?{raw}=x HTTP/1.1\r\nHost: x\r\n\r\n");
    Request::parse(head.as_bytes()).is_ok_and(|r| r.query_arg(name).is_some())
}
