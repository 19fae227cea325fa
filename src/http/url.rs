//! The URLs the clients speak to: `scheme://host[:port]/path?query` for HTTP (`http`,
//! `https`) and WebSocket (`ws`, `wss`), parsed into what a connection and a request line
//! need, and a `Location` resolved against the URL it came from (RFC 3986 §5.2).
//!
//! Deliberately small: no userinfo (`user@host` is refused, as credentials in URLs leak
//! into logs), no percent-decoding (the target is sent as written), and nothing that
//! could end a request line or a header field (spaces and controls are refused).

// Without the HTTP client only `parse` is used (by the WebSocket client).
#![cfg_attr(not(feature = "http-client"), allow(dead_code))]

use std::fmt;

/// A parsed absolute URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpUrl {
    /// The secure scheme (`https`, `wss`).
    pub(crate) secure: bool,
    /// The host name or IP address, without an IPv6 literal's brackets.
    pub(crate) host: String,
    pub(crate) port: u16,
    /// `host[:port]` as the URL wrote it, which is what the `Host` field carries.
    pub(crate) authority: String,
    /// The path and query (`/` when the URL has no path), without the fragment.
    pub(crate) target: String,
}

/// The schemes a client accepts: the plain one, then the secure one.
pub(crate) type Schemes = [&'static str; 2];

/// `http` and `https`.
pub(crate) const HTTP: Schemes = ["http", "https"];

impl HttpUrl {
    /// Parses `url` with one of `schemes` (case-insensitive); a fragment is dropped.
    /// `None` if it is not such a URL.
    pub(crate) fn parse(url: &str, schemes: Schemes) -> Option<HttpUrl> {
        let (scheme, rest) = url.split_once("://")?;
        let secure = if scheme.eq_ignore_ascii_case(schemes[0]) {
            false
        } else if scheme.eq_ignore_ascii_case(schemes[1]) {
            true
        } else {
            return None;
        };
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let (authority, path) = match rest.find(['/', '?']) {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        let (host, port) = split_authority(authority)?;
        // Nothing that could end the request line or a field (spaces, CR, LF, controls).
        let unsafe_byte = |b: u8| b <= b' ' || b == 0x7F;
        if host.is_empty() || authority.contains('@') || rest.bytes().any(unsafe_byte) {
            return None;
        }
        let port = match port {
            Some(port) => port.parse().ok()?,
            None if secure => 443,
            None => 80,
        };
        Some(HttpUrl {
            secure,
            host: host.to_owned(),
            port,
            authority: authority.to_owned(),
            target: absolute_target(path),
        })
    }

    /// The URL a `Location` field names, relative to this one (RFC 3986 §5.2): an
    /// absolute URL (with one of `schemes`), a network path (`//host/path`), an absolute
    /// path, a query, or a path relative to this one's directory; dot segments are
    /// removed. `None` if it is none of those.
    pub(crate) fn join(&self, location: &str, schemes: Schemes) -> Option<HttpUrl> {
        let location = location.trim();
        if has_scheme(location) {
            return HttpUrl::parse(location, schemes);
        }
        if let Some(rest) = location.strip_prefix("//") {
            let scheme = schemes[usize::from(self.secure)];
            return HttpUrl::parse(&format!("{scheme}://{rest}"), schemes);
        }
        let location = location
            .split_once('#')
            .map_or(location, |(before, _)| before);
        let path = self
            .target
            .split_once('?')
            .map_or(&*self.target, |(p, _)| p);
        let target = if location.is_empty() {
            self.target.clone()
        } else if location.starts_with('/') {
            location.to_owned()
        } else if location.starts_with('?') {
            format!("{path}{location}")
        } else {
            let directory = &path[..=path.rfind('/').unwrap_or(0)];
            format!("{directory}{location}")
        };
        let (path, query) = match target.find('?') {
            Some(at) => target.split_at(at),
            None => (&*target, ""),
        };
        let resolved = format!("{}{query}", remove_dot_segments(path));
        if resolved.bytes().any(|b| b <= b' ' || b == 0x7F) {
            return None;
        }
        Some(HttpUrl {
            target: absolute_target(&resolved),
            ..self.clone()
        })
    }

    /// Whether `other` has the same scheme, host and port (the same origin).
    pub(crate) fn same_origin(&self, other: &HttpUrl) -> bool {
        self.secure == other.secure
            && self.port == other.port
            && self.host.eq_ignore_ascii_case(&other.host)
    }

    /// The URL written out with `schemes`' names.
    pub(crate) fn display(&self, schemes: Schemes) -> impl fmt::Display + '_ {
        struct Shown<'a>(&'a HttpUrl, Schemes);
        impl fmt::Display for Shown<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let url = self.0;
                let scheme = self.1[usize::from(url.secure)];
                write!(f, "{scheme}://{}{}", url.authority, url.target)
            }
        }
        Shown(self, schemes)
    }
}

/// Whether `reference` starts with a scheme (RFC 3986 §3.1: a letter, then letters,
/// digits, `+`, `-` or `.`, then `:`), so is absolute; `/a?next=http://b` is not.
fn has_scheme(reference: &str) -> bool {
    let Some((scheme, _)) = reference.split_once(':') else {
        return false;
    };
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
}

/// Splits `host[:port]` or `[v6]`/`[v6]:port` into the host and the port's digits.
fn split_authority(authority: &str) -> Option<(&str, Option<&str>)> {
    if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(port) => Some((host, Some(port))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    Some(match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

/// A path and query made absolute: `""` is `/`, `?q` is `/?q`.
fn absolute_target(path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

/// RFC 3986 §5.2.4: `.` and `..` segments resolved (never above the root).
fn remove_dot_segments(path: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len() - 1;
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." | ".." => {
                if *segment == ".." && kept.len() > 1 {
                    kept.pop();
                }
                // A trailing dot segment leaves a directory: keep the slash.
                if i == last {
                    kept.push("");
                }
            }
            _ => kept.push(segment),
        }
    }
    let joined = kept.join("/");
    if joined.starts_with('/') {
        joined
    } else {
        format!("/{joined}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> HttpUrl {
        HttpUrl::parse(s, HTTP).unwrap()
    }

    #[test]
    fn urls_parse_into_host_port_and_target() {
        let u = url("http://example.com:8080/a/b?x=1#frag");
        assert_eq!(
            (&*u.host, u.port, &*u.authority, &*u.target, u.secure),
            ("example.com", 8080, "example.com:8080", "/a/b?x=1", false)
        );
        let u = url("HTTPS://example.com");
        assert_eq!((u.port, &*u.target, u.secure), (443, "/", true));
        let u = url("http://[::1]:9000?q");
        assert_eq!((&*u.host, u.port, &*u.target), ("::1", 9000, "/?q"));
        assert_eq!(u.display(HTTP).to_string(), "http://[::1]:9000/?q");
        for bad in [
            "ftp://h/",
            "http://",
            "http://h:notaport/",
            "http://h:70000/",
            "http://[::1/",
            "http://[::1]x/",
            "http://u@h/",
            "http://h/a b",
            "http://h/a\r\nX-Injected: 1",
            "h/no-scheme",
        ] {
            assert!(HttpUrl::parse(bad, HTTP).is_none(), "{bad}");
        }
    }

    #[test]
    fn locations_resolve_against_the_base() {
        let base = url("http://h:81/a/b/c?q=1");
        let join = |l: &str| base.join(l, HTTP).map(|u| u.display(HTTP).to_string());
        assert_eq!(join("https://o/x").unwrap(), "https://o/x");
        assert_eq!(join("//o:82/x").unwrap(), "http://o:82/x");
        assert_eq!(join("/x?y").unwrap(), "http://h:81/x?y");
        assert_eq!(join("?z").unwrap(), "http://h:81/a/b/c?z");
        assert_eq!(join("d").unwrap(), "http://h:81/a/b/d");
        assert_eq!(
            join("/login?next=https://x/").unwrap(),
            "http://h:81/login?next=https://x/"
        );
        assert_eq!(join("d?u=a://b").unwrap(), "http://h:81/a/b/d?u=a://b");
        assert!(join("mailto:someone@example.com").is_none());
        assert_eq!(join("../d").unwrap(), "http://h:81/a/d");
        assert_eq!(join("./").unwrap(), "http://h:81/a/b/");
        assert_eq!(join("../../../../d").unwrap(), "http://h:81/d");
        assert_eq!(join("/a/./b/../c").unwrap(), "http://h:81/a/c");
        assert_eq!(join("").unwrap(), "http://h:81/a/b/c?q=1");
        assert!(join("/a b").is_none());
        assert!(join("ftp://x/").is_none());
        assert!(base.same_origin(&url("http://H:81/other")));
        assert!(!base.same_origin(&url("https://h:81/")));
    }
}
