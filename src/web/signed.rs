//! Signed values in Tornado's format version 2 (`create_signed_value`,
//! `decode_signed_value`), so an application moving from Tornado reads the cookies
//! Tornado set and the other way round:
//!
//! `2|<len>:<key version>|<len>:<timestamp>|<len>:<name>|<len>:<base64 value>|<signature>`
//!
//! where the signature is the lowercase hex HMAC-SHA256 of everything before it, the
//! last `|` included, keyed with the secret of that key version.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::crypto::{constant_time_eq, hex, random_bytes};

/// The secret signed values are made with (Tornado's `cookie_secret`): one key, or keys
/// by version with the one to sign with (Tornado's `cookie_secret` dict and `key_version`),
/// so that keys can be rotated: values signed with an older key still read while it is
/// in the map.
///
/// Its `Debug` form never shows a key.
///
/// # Examples
///
/// ```
/// use ioloop::web::CookieSecret;
/// let one = CookieSecret::new("a long random secret");
/// let rotated = CookieSecret::versioned([(1, "old secret"), (2, "new secret")], 2);
/// # let _ = (one, rotated);
/// ```
#[derive(Clone)]
pub struct CookieSecret {
    keys: Vec<(u32, Vec<u8>)>,
    key_version: u32,
    versioned: bool,
}

impl CookieSecret {
    /// One secret, for every value (key version 0, which readers ignore).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use ioloop::web::{create_signed_value, decode_signed_value, CookieSecret};
    /// let secret = CookieSecret::new("a long random secret");
    /// let now = SystemTime::now();
    /// let signed = create_signed_value(&secret, "user", b"ann", now);
    /// assert_eq!(decode_signed_value(&secret, "user", &signed, 31, now), Some(b"ann".to_vec()));
    /// // Another secret cannot read it (nor could it have made it).
    /// let other = CookieSecret::new("another secret");
    /// assert_eq!(decode_signed_value(&other, "user", &signed, 31, now), None);
    /// ```
    pub fn new(secret: impl AsRef<[u8]>) -> CookieSecret {
        CookieSecret {
            keys: vec![(0, secret.as_ref().to_vec())],
            key_version: 0,
            versioned: false,
        }
    }

    /// Secrets by key version; values are signed with `key_version`'s and read with the
    /// one their key-version field names (a version not in the map reads as no value).
    ///
    /// # Panics
    ///
    /// If `key_version` is not one of the keys (Tornado asserts the same).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use ioloop::web::{create_signed_value, decode_signed_value, CookieSecret};
    /// let now = SystemTime::now();
    /// let before = CookieSecret::versioned([(1, "old secret")], 1);
    /// let old = create_signed_value(&before, "user", b"ann", now);
    /// // Rotated: new values are signed with key 2, and values signed with key 1 still read.
    /// let rotated = CookieSecret::versioned([(1, "old secret"), (2, "new secret")], 2);
    /// assert!(create_signed_value(&rotated, "user", b"bob", now).starts_with("2|1:2|"));
    /// assert_eq!(decode_signed_value(&rotated, "user", &old, 31, now), Some(b"ann".to_vec()));
    /// // Once key 1 is retired, they do not.
    /// let retired = CookieSecret::versioned([(2, "new secret")], 2);
    /// assert_eq!(decode_signed_value(&retired, "user", &old, 31, now), None);
    /// ```
    pub fn versioned<K: AsRef<[u8]>>(
        keys: impl IntoIterator<Item = (u32, K)>,
        key_version: u32,
    ) -> CookieSecret {
        let keys: Vec<(u32, Vec<u8>)> = keys
            .into_iter()
            .map(|(v, k)| (v, k.as_ref().to_vec()))
            .collect();
        assert!(
            keys.iter().any(|(v, _)| *v == key_version),
            "the key version to sign with must be one of the keys"
        );
        CookieSecret {
            keys,
            key_version,
            versioned: true,
        }
    }

    /// A secret of 32 random bytes from the OS (`/dev/urandom`), for a server that has no
    /// configured secret: its signed cookies and sessions hold until it restarts, and no
    /// one can forge them from a secret written in the source (Tornado's demos ship
    /// `"__TODO:_GENERATE_YOUR_OWN_RANDOM_VALUE_HERE__"`). Give every process of one
    /// site the same configured secret instead when they share cookies or must survive a
    /// restart.
    ///
    /// # Errors
    ///
    /// The OS's random source could not be read.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::web::CookieSecret;
    /// let secret = match std::env::var("COOKIE_SECRET") {
    ///     Ok(key) => CookieSecret::new(key),
    ///     Err(_) => CookieSecret::random()?,
    /// };
    /// let app = ioloop::web::Application::new().cookie_secret(secret);
    /// # let _ = app;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn random() -> std::io::Result<CookieSecret> {
        let mut key = [0u8; 32];
        random_bytes(&mut key)?;
        Ok(CookieSecret::new(key))
    }

    fn key(&self, version: u32) -> Option<&[u8]> {
        if !self.versioned {
            return Some(&self.keys[0].1);
        }
        self.keys
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, k)| k.as_slice())
    }
}

impl<T: AsRef<[u8]>> From<T> for CookieSecret {
    fn from(secret: T) -> CookieSecret {
        CookieSecret::new(secret)
    }
}

impl fmt::Debug for CookieSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let versions: Vec<u32> = self.keys.iter().map(|(v, _)| *v).collect();
        f.debug_struct("CookieSecret")
            .field("key_versions", &versions)
            .field("key_version", &self.key_version)
            .finish_non_exhaustive()
    }
}

fn signature(key: &[u8], signed: &[u8]) -> String {
    // HMAC takes keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(signed);
    hex(&mac.finalize().into_bytes())
}

fn seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// `value` signed under `name` at time `at` (Tornado's `create_signed_value`, version 2).
///
/// # Examples
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use ioloop::web::{create_signed_value, decode_signed_value, CookieSecret};
/// let secret = CookieSecret::new("secret");
/// let at = UNIX_EPOCH + Duration::from_secs(1_733_560_000);
/// let signed = create_signed_value(&secret, "user", b"alice", at);
/// assert!(signed.starts_with("2|1:0|10:1733560000|4:user|8:YWxpY2U=|"));
/// assert_eq!(decode_signed_value(&secret, "user", &signed, 31, at).as_deref(), Some(&b"alice"[..]));
/// ```
pub fn create_signed_value(
    secret: &CookieSecret,
    name: &str,
    value: &[u8],
    at: SystemTime,
) -> String {
    let field = |s: &str| format!("{}:{s}|", s.len());
    let mut out = String::from("2|");
    out.push_str(&field(&secret.key_version.to_string()));
    out.push_str(&field(&seconds(at).to_string()));
    out.push_str(&field(name));
    out.push_str(&field(&STANDARD.encode(value)));
    let key = secret.key(secret.key_version).unwrap_or_default();
    let sig = signature(key, out.as_bytes());
    out.push_str(&sig);
    out
}

/// The value of a signed value made under `name` (Tornado's `decode_signed_value`), or
/// `None` if it is malformed, signed with another key (or a key version the secret does
/// not have), made for another name, older than `max_age_days` days at `now`, or not
/// base64 inside. The signature is compared in constant time.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use ioloop::web::{create_signed_value, decode_signed_value, CookieSecret};
/// let secret = CookieSecret::new("secret");
/// let day = Duration::from_secs(86_400);
/// let made = SystemTime::now() - 2 * day;
/// let signed = create_signed_value(&secret, "user", b"ann", made);
/// let now = SystemTime::now();
/// assert_eq!(decode_signed_value(&secret, "user", &signed, 31, now), Some(b"ann".to_vec()));
/// assert_eq!(decode_signed_value(&secret, "user", &signed, 1, now), None); // too old
/// assert_eq!(decode_signed_value(&secret, "admin", &signed, 31, now), None); // another name
/// let tampered = signed.replace("YW5u", "Ym9i"); // "ann" made "bob"
/// assert_eq!(decode_signed_value(&secret, "user", &tampered, 31, now), None);
/// ```
pub fn decode_signed_value(
    secret: &CookieSecret,
    name: &str,
    signed: &str,
    max_age_days: u32,
    now: SystemTime,
) -> Option<Vec<u8>> {
    let rest = signed.strip_prefix("2|")?;
    let (key_version, rest) = field(rest)?;
    let (timestamp, rest) = field(rest)?;
    let (name_field, rest) = field(rest)?;
    let (value_field, passed_sig) = field(rest)?;
    let signed_part = &signed[..signed.len() - passed_sig.len()];
    let key = secret.key(number(key_version)?.try_into().ok()?)?;
    let expected = signature(key, signed_part.as_bytes());
    if !constant_time_eq(passed_sig.as_bytes(), expected.as_bytes()) {
        return None;
    }
    if name_field != name {
        return None;
    }
    let oldest = seconds(now).saturating_sub(u64::from(max_age_days) * 86_400);
    if number(timestamp)? < oldest {
        return None;
    }
    STANDARD.decode(value_field).ok()
}

/// One `LEN:VALUE|` field and what follows it.
fn field(text: &str) -> Option<(&str, &str)> {
    let (len, rest) = text.split_once(':')?;
    let len = usize::try_from(number(len)?).ok()?;
    let value = rest.get(..len)?;
    let after = rest.get(len..)?.strip_prefix('|')?;
    Some((value, after))
}

/// A decimal number: digits only.
fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn the_format_is_tornados_version_2() {
        // Made by Tornado 6.6.1: create_signed_value("secret", "user", "alice",
        // clock=lambda: 1733560000).
        let secret = CookieSecret::new("secret");
        let signed = create_signed_value(&secret, "user", b"alice", at(1_733_560_000));
        assert_eq!(
            signed,
            "2|1:0|10:1733560000|4:user|8:YWxpY2U=|\
             20d39f423fcf2ea3a080d5805b003fabd1ef3c1d40cf919a8af9d18c7d617566"
        );
        // create_signed_value({1: "k1", 2: "k2"}, "user", "bob", key_version=2, clock=..)
        let rotated = CookieSecret::versioned([(1, "k1"), (2, "k2")], 2);
        assert_eq!(
            create_signed_value(&rotated, "user", b"bob", at(2_000_000_000)),
            "2|1:2|10:2000000000|4:user|4:Ym9i|\
             cea12bfc91cbf865651f02a066fc98d46adc9a8f25ccda8ab57a17db92be1708"
        );
    }

    #[test]
    fn tampered_expired_and_wrong_name_values_read_as_none() {
        let secret = CookieSecret::new("secret");
        let now = at(2_000_000_000);
        let signed = create_signed_value(&secret, "user", b"alice", now);
        let read = |s: &str, name: &str, now| decode_signed_value(&secret, name, s, 31, now);
        assert_eq!(read(&signed, "user", now).as_deref(), Some(&b"alice"[..]));
        // Another value under the same signature.
        let forged = signed.replace("8:YWxpY2U=", "8:bWFsbG9y");
        assert_eq!(read(&forged, "user", now), None);
        // The signature changed.
        let mut flipped = signed.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == '0' { '1' } else { '0' });
        assert_eq!(read(&flipped, "user", now), None);
        // Another cookie's name.
        assert_eq!(read(&signed, "admin", now), None);
        // Older than 31 days; exactly 31 days is still good.
        assert!(read(&signed, "user", at(2_000_000_000 + 31 * 86_400)).is_some());
        assert_eq!(
            read(&signed, "user", at(2_000_000_000 + 31 * 86_400 + 1)),
            None
        );
        // Another secret.
        let other = CookieSecret::new("other");
        assert_eq!(decode_signed_value(&other, "user", &signed, 31, now), None);
        // Malformed.
        for bad in [
            "",
            "2|",
            "1|1:0|",
            "2|1:0|10:2000000000|4:user|8:YWxpY2U=",
            "2|x:0|",
        ] {
            assert_eq!(read(bad, "user", now), None, "{bad:?}");
        }
    }

    #[test]
    fn rotated_keys_read_older_values_and_sign_with_the_current_one() {
        let now = at(2_000_000_000);
        let old = CookieSecret::versioned([(1, "k1")], 1);
        let signed_old = create_signed_value(&old, "user", b"bob", now);
        assert!(signed_old.starts_with("2|1:1|"));
        let rotated = CookieSecret::versioned([(1, "k1"), (2, "k2")], 2);
        let read = |s: &CookieSecret, v: &str| decode_signed_value(s, "user", v, 31, now);
        assert_eq!(read(&rotated, &signed_old).as_deref(), Some(&b"bob"[..]));
        let signed_new = create_signed_value(&rotated, "user", b"bob", now);
        assert!(signed_new.starts_with("2|1:2|"));
        // Once key 1 is gone, its values are refused; an unknown version too.
        let retired = CookieSecret::versioned([(2, "k2")], 2);
        assert_eq!(read(&retired, &signed_old), None);
        assert_eq!(read(&retired, &signed_new).as_deref(), Some(&b"bob"[..]));
        // Key 2's value claiming key 1 fails the signature.
        let relabelled = signed_new.replacen("2|1:2|", "2|1:1|", 1);
        assert_eq!(read(&rotated, &relabelled), None);
    }

    #[test]
    fn random_secrets_sign_and_read_their_own_values_only() {
        let now = at(2_000_000_000);
        let (one, two) = (
            CookieSecret::random().unwrap(),
            CookieSecret::random().unwrap(),
        );
        assert_eq!(one.keys[0].1.len(), 32);
        assert_ne!(one.keys[0].1, two.keys[0].1);
        let signed = create_signed_value(&one, "user", b"ada", now);
        assert_eq!(
            decode_signed_value(&one, "user", &signed, 31, now).as_deref(),
            Some(&b"ada"[..])
        );
        assert_eq!(decode_signed_value(&two, "user", &signed, 31, now), None);
        assert!(!format!("{one:?}").contains(&hex(&one.keys[0].1)));
    }
}
