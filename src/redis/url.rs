//! [`RedisUrl`]: `redis://[user:password@]host:port/db` and `rediss://`.

use std::fmt;
use std::str::FromStr;

use super::error::RedisError;

/// Where a Redis server is and how to log in: parsed from
/// `redis://[[user]:password@]host[:port][/db]` (port 6379, db 0 by default) or
/// `rediss://` for TLS (feature `tls`). User and password may be percent-encoded.
///
/// # Examples
///
/// ```
/// use ioloop::redis::RedisUrl;
/// let url: RedisUrl = "redis://app:s%40cret@cache.local:6380/2".parse()?;
/// assert_eq!((url.host.as_str(), url.port, url.db), ("cache.local", 6380, 2));
/// assert_eq!(url.username.as_deref(), Some("app"));
/// assert_eq!(url.password.as_deref(), Some("s@cret"));
/// assert!(!url.tls);
/// # Ok::<(), ioloop::redis::RedisError>(())
/// ```
///
/// # Errors
///
/// Parsing fails with [`RedisError::Url`] for another scheme, a bad port or db, or
/// `rediss://` without feature `tls`.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    /// Host name or IP address (an IPv6 address without its brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The ACL user (`AUTH user password`), if any.
    pub username: Option<String>,
    /// The password, if any.
    pub password: Option<String>,
    /// The database `SELECT`ed after connecting.
    pub db: u32,
    /// `rediss://`: speak TLS.
    pub tls: bool,
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("db", &self.db)
            .field("tls", &self.tls)
            .finish()
    }
}

fn decode(s: &str) -> Result<String, RedisError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| RedisError::Url(format!("bad percent-escape in {s:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| RedisError::Url("user or password is not UTF-8".into()))
}

impl FromStr for RedisUrl {
    type Err = RedisError;

    fn from_str(url: &str) -> Result<RedisUrl, RedisError> {
        let bad = |why: &str| RedisError::Url(format!("{why}: {url:?}"));
        let (tls, rest) = if let Some(rest) = url.strip_prefix("redis://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("rediss://") {
            if !cfg!(feature = "tls") {
                return Err(bad("rediss:// needs feature tls"));
            }
            (true, rest)
        } else {
            return Err(bad("the scheme must be redis:// or rediss://"));
        };
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at + 1..]),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(info) => match info.split_once(':') {
                Some((user, pass)) => {
                    let user = (!user.is_empty()).then(|| decode(user)).transpose()?;
                    (user, Some(decode(pass)?))
                }
                None => (None, Some(decode(info)?)),
            },
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let end = v6.find(']').ok_or_else(|| bad("unclosed ["))?;
            let port = v6[end + 1..].strip_prefix(':');
            (&v6[..end], port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            None | Some("") => 6379,
            Some(p) => p.parse().map_err(|_| bad("bad port"))?,
        };
        let path = path.split(['?', '#']).next().unwrap_or("");
        let db = match path {
            "" => 0,
            db => db.parse().map_err(|_| bad("bad database number"))?,
        };
        Ok(RedisUrl {
            host: host.to_owned(),
            port,
            username,
            password,
            db,
            tls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms() {
        let u: RedisUrl = "redis://127.0.0.1:6379".parse().unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.db, u.password),
            ("127.0.0.1", 6379, 0, None)
        );
        let u: RedisUrl = "redis://:pw@h/3".parse().unwrap();
        assert_eq!(
            (u.username, u.password.as_deref(), u.db, u.port),
            (None, Some("pw"), 3, 6379)
        );
        let u: RedisUrl = "redis://[::1]:7000/1".parse().unwrap();
        assert_eq!((u.host.as_str(), u.port, u.db), ("::1", 7000, 1));
        assert!("http://h".parse::<RedisUrl>().is_err());
        assert!("redis://h:99999".parse::<RedisUrl>().is_err());
        assert!("redis://h/x".parse::<RedisUrl>().is_err());
        assert!("redis://:%zz@h".parse::<RedisUrl>().is_err());
        assert!(
            !format!("{:?}", "redis://:secret@h".parse::<RedisUrl>().unwrap()).contains("secret")
        );
    }
}
