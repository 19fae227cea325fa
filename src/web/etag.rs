//! The automatic ETag (Tornado's `compute_etag` and `check_etag_header`): the SHA-1 of
//! a whole body, and whether an `If-None-Match` matches it.

/// `"<hex SHA-1 of body>"` (Tornado's `compute_etag`; a strong validator).
pub(crate) fn compute_etag(body: &[u8]) -> String {
    format!("\"{}\"", sha1_smol::Sha1::from(body).digest())
}

/// Whether `If-None-Match` matches `etag` by weak comparison (RFC 9110 §13.1.2): `*`, or
/// any listed tag equal to it once `W/` is set aside.
pub(crate) fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    let bare = etag.trim_start_matches("W/");
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == bare)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_etag_is_the_quoted_sha1_hex_of_the_body() {
        // sha1("hello") as Python's hashlib gives it.
        assert_eq!(
            compute_etag(b"hello"),
            "\"aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d\""
        );
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let tag = "\"abc\"";
        assert!(etag_matches("\"abc\"", tag));
        assert!(etag_matches("W/\"abc\"", tag));
        assert!(etag_matches("\"x\", W/\"abc\"", tag));
        assert!(etag_matches("*", tag));
        assert!(!etag_matches("\"abd\"", tag));
        assert!(!etag_matches("abc", tag));
    }
}
