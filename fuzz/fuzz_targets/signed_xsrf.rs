//! Tornado-format signed values (`create_signed_value`, `decode_signed_value`) and XSRF
//! tokens (the `_xsrf` cookie's and argument's format, versions 2 and 1).
//!
//! Properties:
//! - nothing panics, for any text, secret, name, age or time;
//! - a value signed then decoded (same secret and name, within its age) is the value
//!   signed; a token masked then decoded is the token and its timestamp;
//! - a mutated signed value never verifies: a byte flipped, truncated, extended, read
//!   under another name, with another key (or key version), or past its age;
//! - a token with a byte flipped, truncated or extended never decodes to the same token,
//!   except for changes that mean the same token (the case of a hex digit, the
//!   timestamp, which the check ignores as Tornado's does).

#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arbitrary::Arbitrary;
use ioloop::fuzzing::xsrf::{decode_token, mask_token};
use ioloop::web::{create_signed_value, decode_signed_value, CookieSecret};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Mutation {
    /// XOR one byte (at an offset modulo the length) with a non-zero value.
    Flip(u16, u8),
    /// Keep this many bytes (modulo the length).
    Truncate(u16),
    /// Append text.
    Extend(String),
    /// Insert text at an offset.
    Insert(u16, String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    key: Vec<u8>,
    other_key: Vec<u8>,
    /// Sign with key version `version` of a versioned secret holding both keys.
    versioned: Option<(u8, u8)>,
    name: String,
    other_name: String,
    value: Vec<u8>,
    at: u32,
    max_age_days: u8,
    mutation: Mutation,
    token: [u8; 16],
    mask: [u8; 4],
    timestamp: u64,
    token_mutation: Mutation,
    garbage: String,
}

fn mutate(text: &str, m: &Mutation) -> Option<String> {
    let mut bytes = text.as_bytes().to_vec();
    match m {
        Mutation::Flip(at, xor) => {
            if *xor == 0 || bytes.is_empty() {
                return None;
            }
            let at = usize::from(*at) % bytes.len();
            bytes[at] ^= xor;
        }
        Mutation::Truncate(keep) => bytes.truncate(usize::from(*keep) % bytes.len().max(1)),
        Mutation::Extend(more) => {
            if more.is_empty() {
                return None;
            }
            bytes.extend_from_slice(more.as_bytes());
        }
        Mutation::Insert(at, more) => {
            if more.is_empty() {
                return None;
            }
            let at = usize::from(*at) % (bytes.len() + 1);
            bytes.splice(at..at, more.bytes());
        }
    }
    String::from_utf8(bytes).ok()
}

/// Whether two HMAC keys are the same key: HMAC pads a key of up to a block (64 bytes
/// for SHA-256) with zeros, so keys differing only in trailing zeros sign alike (longer
/// keys are hashed first; this target keeps keys within a block).
fn same_hmac_key(a: &[u8], b: &[u8]) -> bool {
    let trim = |k: &[u8]| -> Vec<u8> {
        let mut k = k.to_vec();
        while k.last() == Some(&0) {
            k.pop();
        }
        k
    };
    trim(a) == trim(b)
}

/// A token's text without its timestamp, hex digits in lowercase: equal for texts that
/// decode to the same token as far as the check cares.
fn token_meaning(text: &str) -> String {
    let head = match text.strip_prefix("2|") {
        Some(rest) => rest.rsplit_once('|').map_or(rest, |(head, _)| head),
        None => text,
    };
    head.to_ascii_lowercase()
}

fn signed_values(input: &Input) {
    let key = &input.key[..input.key.len().min(64)];
    let other_key = &input.other_key[..input.other_key.len().min(64)];
    let secret = match input.versioned {
        Some((version, other_version)) if version != other_version => CookieSecret::versioned(
            [
                (u32::from(version), key),
                (u32::from(other_version), other_key),
            ],
            u32::from(version),
        ),
        _ => CookieSecret::new(key),
    };
    let at = UNIX_EPOCH + Duration::from_secs(u64::from(input.at));
    let max_age = u32::from(input.max_age_days);
    let name = &input.name;
    let signed = create_signed_value(&secret, name, &input.value, at);
    let read = |text: &str, name: &str, now: SystemTime| {
        decode_signed_value(&secret, name, text, max_age, now)
    };

    // Round trip, at once and at the end of its age.
    assert_eq!(read(&signed, name, at).as_deref(), Some(&input.value[..]));
    let last = at + Duration::from_secs(u64::from(max_age) * 86_400);
    assert_eq!(read(&signed, name, last).as_deref(), Some(&input.value[..]));
    // Past its age.
    assert_eq!(read(&signed, name, last + Duration::from_secs(1)), None);
    // Another name.
    if input.other_name != *name {
        assert_eq!(
            read(&signed, &input.other_name, at),
            None,
            "read under another name"
        );
    }
    // Another key: alone, or under the version the value names.
    if !same_hmac_key(key, other_key) {
        let other = CookieSecret::new(other_key);
        assert_eq!(
            decode_signed_value(&other, name, &signed, max_age, at),
            None,
            "verified with another key"
        );
        if let Some((version, _)) = input.versioned {
            let swapped =
                CookieSecret::versioned([(u32::from(version), other_key)], u32::from(version));
            assert_eq!(
                decode_signed_value(&swapped, name, &signed, max_age, at),
                None,
                "verified with another key of the same version"
            );
        }
    }
    // A mutated value.
    if let Some(mutated) = mutate(&signed, &input.mutation) {
        if mutated != signed {
            assert_eq!(
                read(&mutated, name, at),
                None,
                "a mutated value verified: {mutated:?} (from {signed:?})"
            );
        }
    }
    // Any text.
    let _ = read(&input.garbage, name, at);
    let _ = read(&input.garbage, &input.garbage, UNIX_EPOCH);
    let _ = decode_signed_value(&secret, name, &input.garbage, u32::MAX, SystemTime::now());
}

fn xsrf_tokens(input: &Input) {
    let masked = mask_token(&input.token, input.mask, input.timestamp);
    assert_eq!(decode_token(&masked), Some((input.token, input.timestamp)));
    // Version 1: the hex token.
    let v1: String = input.token.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(decode_token(&v1).map(|(t, _)| t), Some(input.token));

    // (An insertion can lengthen the mask with bytes that unmask to the same token: the
    // masking allows it and it needs the token to do, so insertions are left out here.)
    if matches!(input.token_mutation, Mutation::Insert(..)) {
        return;
    }
    for original in [&masked, &v1] {
        if let Some(mutated) = mutate(original, &input.token_mutation) {
            if let Some((token, _)) = decode_token(&mutated) {
                if token == input.token {
                    assert_eq!(
                        token_meaning(&mutated),
                        token_meaning(original),
                        "{mutated:?} (from {original:?}) reads as the same token"
                    );
                }
            }
        }
    }
    // Any text: what decodes re-masks to text that decodes to the same token.
    if let Some((token, timestamp)) = decode_token(&input.garbage) {
        let again = mask_token(&token, input.mask, timestamp);
        assert_eq!(decode_token(&again), Some((token, timestamp)));
    }
}

fuzz_target!(|input: Input| {
    signed_values(&input);
    xsrf_tokens(&input);
});
