//! Parsing a head, a request's (request line and header fields) or a response's (status
//! line and header fields), from the bytes a connection has buffered: sans-IO, over a
//! byte slice, with `httparse` (hyper's parser), and with the limits and the answers RFC
//! 9112 asks for. Both keep the head as received, its parts as ranges into it, and read
//! their fields through one type, [`HeaderFields`].
//!
//! [`find_head_end`] scans for the blank line that ends a head, resuming where the last
//! scan stopped, so a head that trickles in byte by byte is scanned once in all, not once
//! per byte; only a complete head is given to `httparse`. A bare LF line ending is
//! accepted, as are empty lines before the request line.

use std::fmt;
use std::mem::MaybeUninit;
use std::ops::Range;

/// The version of HTTP a request spoke.
///
/// # Examples
///
/// ```
/// use ioloop::http::Version;
/// assert_eq!(Version::Http11.as_str(), "HTTP/1.1");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1.
    Http11,
}

impl Version {
    /// `"HTTP/1.0"` or `"HTTP/1.1"`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Version;
    /// assert_eq!(Version::Http10.as_str(), "HTTP/1.0");
    /// let req = ioloop::http::Request::parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    /// assert_eq!(req.version().as_str(), "HTTP/1.1");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// The limits a request head must keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeadLimits {
    /// The most bytes of a head, its final blank line included.
    pub(crate) max_bytes: usize,
    /// The most header lines (`Host` included).
    pub(crate) max_headers: usize,
}

/// Why a head could not be parsed, with the status the server answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeadError {
    /// Over [`HeadLimits::max_bytes`] or [`HeadLimits::max_headers`]: 431.
    TooLarge(&'static str),
    /// Not a valid request line or header field: 400.
    Malformed(String),
}

impl HeadError {
    /// The status the server answers with before it closes.
    pub(crate) fn status(&self) -> u16 {
        match self {
            HeadError::TooLarge(_) => 431,
            HeadError::Malformed(_) => 400,
        }
    }
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadError::TooLarge(what) => write!(f, "request header fields too large: {what}"),
            HeadError::Malformed(what) => write!(f, "malformed request: {what}"),
        }
    }
}

/// Where a head ends in `buf`, scanning from `*scanned` (and leaving there, for the next
/// call, where the scan must resume): `Some(len)` with `len` the head's length, its
/// blank line included, or `None` if it is not complete yet.
pub(crate) fn find_head_end(buf: &[u8], scanned: &mut usize) -> Option<usize> {
    let mut at = *scanned;
    while let Some(offset) = memchr(b'\n', &buf[at..]) {
        let lf = at + offset;
        match (buf.get(lf + 1), buf.get(lf + 2)) {
            (Some(b'\n'), _) => return Some(lf + 2),
            (Some(b'\r'), Some(b'\n')) => return Some(lf + 3),
            // Not enough bytes yet to tell: rescan from this LF next time.
            (None, _) | (Some(b'\r'), None) => {
                *scanned = lf;
                return None;
            }
            // The next line has started: it cannot end the head here.
            _ => at = lf + 1,
        }
    }
    *scanned = buf.len();
    None
}

/// The number of empty lines (`\r\n` or `\n`) at the start of `buf`, which come before a
/// request line and are ignored (RFC 9112 §2.2).
pub(crate) fn leading_empty_lines(buf: &[u8]) -> usize {
    let mut at = 0;
    loop {
        match buf.get(at..at + 2) {
            Some(b"\r\n") => at += 2,
            _ if buf.get(at) == Some(&b'\n') => at += 1,
            _ => return at,
        }
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

/// Whether `s` is a token (RFC 9110 §5.6.2), as a method or a field name must be.
pub(crate) fn is_token(s: &str) -> bool {
    let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// Whether a field value can be written as is: free of line breaks and NUL.
pub(crate) fn is_safe_value(value: &str) -> bool {
    !value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

/// Splits a `Host` field value (or the authority of an absolute-form target) into its host
/// and its port, if it is `uri-host [ ":" port ]` (RFC 9110 §7.2, RFC 3986 §3.2.2-3.2.3):
/// a registered name (unreserved characters, percent-encodings and sub-delimiters, so no
/// space, `@`, `/`, `?` or `#`), an IPv4 address, or an IPv6 or IPvFuture literal in
/// brackets; then, after a colon, a port of at most 65535 (empty is allowed, as the
/// grammar allows it). `None` if it is not; the host may be empty.
pub(crate) fn split_host(value: &[u8]) -> Option<(&[u8], Option<u16>)> {
    let (host, port) = if value.first() == Some(&b'[') {
        let close = value.iter().position(|&b| b == b']')?;
        if !is_ip_literal(&value[1..close]) {
            return None;
        }
        match &value[close + 1..] {
            [] => (&value[..=close], None),
            [b':', port @ ..] => (&value[..=close], Some(port)),
            _ => return None,
        }
    } else {
        let (host, port) = match value.iter().position(|&b| b == b':') {
            Some(colon) => (&value[..colon], Some(&value[colon + 1..])),
            None => (value, None),
        };
        if !is_reg_name(host) {
            return None;
        }
        (host, port)
    };
    let port = match port {
        None | Some([]) => None,
        Some(digits) if digits.len() <= 5 && digits.iter().all(u8::is_ascii_digit) => {
            let n = digits
                .iter()
                .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
            Some(u16::try_from(n).ok()?)
        }
        Some(_) => return None,
    };
    Some((host, port))
}

/// `reg-name = *( unreserved / pct-encoded / sub-delims )` (RFC 3986 §3.2.2), which an
/// IPv4 address also is.
fn is_reg_name(name: &[u8]) -> bool {
    let mut at = 0;
    while at < name.len() {
        match name[at] {
            b'%' => {
                let hex = name.get(at + 1..at + 3);
                if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    return false;
                }
                at += 3;
            }
            b if is_unreserved(b) || is_sub_delim(b) => at += 1,
            _ => return false,
        }
    }
    true
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

fn is_sub_delim(b: u8) -> bool {
    b"!$&'()*+,;=".contains(&b)
}

/// `IPv6address / IPvFuture`, the inside of an IP-literal's brackets (RFC 3986 §3.2.2).
fn is_ip_literal(literal: &[u8]) -> bool {
    if let [b'v' | b'V', rest @ ..] = literal {
        // IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
        let digits = rest.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        return match rest.get(digits..) {
            Some([b'.', tail @ ..]) if digits > 0 && !tail.is_empty() => tail
                .iter()
                .all(|&b| is_unreserved(b) || is_sub_delim(b) || b == b':'),
            _ => false,
        };
    }
    std::str::from_utf8(literal).is_ok_and(|s| s.parse::<std::net::Ipv6Addr>().is_ok())
}

/// A head's header fields: (name, value) ranges into its bytes.
pub(crate) type FieldRanges = Vec<(Range<u16>, Range<u16>)>;

/// A head as received and its header fields as ranges into it: how a request and a
/// response read their fields (by name, case-insensitive, the first of a repeated one;
/// or all, in order).
#[derive(Debug, Clone, Default)]
pub(crate) struct HeaderFields {
    bytes: Vec<u8>,
    fields: FieldRanges,
}

impl HeaderFields {
    /// The bytes of `range`, a part of the head.
    pub(crate) fn span(&self, range: &Range<u16>) -> &[u8] {
        &self.bytes[range.start as usize..range.end as usize]
    }

    /// Every field as (name, value) bytes, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.fields
            .iter()
            .map(|(n, v)| (self.span(n), self.span(v)))
    }

    /// The ranges of every field, in order.
    #[cfg_attr(not(feature = "fuzzing"), allow(dead_code))]
    pub(crate) fn ranges(&self) -> &FieldRanges {
        &self.fields
    }

    /// The value of the first field named `name` (case-insensitive).
    pub(crate) fn first(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// Whether some field named `name` lists `token` (comma-separated, case-insensitive).
    pub(crate) fn lists_token(&self, name: &str, token: &str) -> bool {
        self.iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .any(|(_, v)| {
                v.split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
            })
    }

    /// Drops every field named one of `names` (case-insensitive).
    #[cfg(feature = "http-client")]
    pub(crate) fn remove(&mut self, names: &[&str]) {
        let bytes = &self.bytes;
        self.fields.retain(|(name, _)| {
            let name = &bytes[name.start as usize..name.end as usize];
            !names
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
        });
    }

    /// Adds a field after the head's bytes, unless the head would grow past `max_bytes`
    /// (at most 64 KiB: ranges are 16-bit); says whether it did.
    #[cfg(feature = "http-client")]
    pub(crate) fn push(&mut self, name: &[u8], value: &[u8], max_bytes: usize) -> bool {
        let max_bytes = max_bytes.min(u16::MAX as usize);
        if self.bytes.len() + name.len() + value.len() > max_bytes {
            return false;
        }
        let at = self.bytes.len() as u16;
        self.bytes.extend_from_slice(name);
        self.bytes.extend_from_slice(value);
        let value_at = at + name.len() as u16;
        self.fields
            .push((at..value_at, value_at..value_at + value.len() as u16));
        true
    }
}

/// A parsed request head: the method, target and fields are ranges into the head's
/// bytes. The method and the target are ASCII (checked by [`parse_head`]).
#[derive(Debug, Clone)]
pub(crate) struct ParsedHead {
    pub(crate) method: Range<u16>,
    pub(crate) target: Range<u16>,
    pub(crate) version: Version,
    pub(crate) fields: HeaderFields,
}

/// A parsed response head: the reason and fields are ranges into the head's bytes.
#[derive(Debug, Clone)]
#[cfg_attr(
    not(any(feature = "http-client", feature = "websocket")),
    allow(dead_code)
)]
pub(crate) struct ParsedResponseHead {
    pub(crate) status: u16,
    /// Empty when the server sent none.
    pub(crate) reason: Range<u16>,
    #[cfg_attr(not(feature = "http-client"), allow(dead_code))]
    pub(crate) version: Version,
    pub(crate) fields: HeaderFields,
}

/// Header lines parsed without a heap allocation (a larger `max_headers` allocates).
const STACK_HEADERS: usize = 128;

/// Parses the complete request head `buf` (as [`find_head_end`] delimited it).
///
/// # Errors
///
/// [`HeadError`] with the status to answer.
pub(crate) fn parse_head(buf: &[u8], limits: HeadLimits) -> Result<ParsedHead, HeadError> {
    parse_with(buf, limits, |room| {
        let mut request = httparse::Request::new(&mut []);
        let parsed = httparse::ParserConfig::default()
            .allow_multiple_spaces_in_request_line_delimiters(false)
            .parse_request_with_uninit_headers(&mut request, buf, room);
        complete(parsed)?;
        let at = Ranges(buf);
        let method = at.of(request.method.unwrap_or_default().as_bytes());
        let target = at.of(request.path.unwrap_or_default().as_bytes());
        // `Request` reads both as `str`.
        if !buf[method.start as usize..method.end as usize].is_ascii()
            || !buf[target.start as usize..target.end as usize].is_ascii()
        {
            return Err(HeadError::Malformed("a non-ASCII request line".into()));
        }
        Ok(ParsedHead {
            method,
            target,
            version: version(request.version)?,
            fields: at.fields(request.headers),
        })
    })
}

/// Parses the complete response head `buf`.
///
/// # Errors
///
/// [`HeadError`]: too large, or malformed.
#[cfg_attr(
    not(any(feature = "http-client", feature = "websocket")),
    allow(dead_code)
)]
pub(crate) fn parse_response_head(
    buf: &[u8],
    limits: HeadLimits,
) -> Result<ParsedResponseHead, HeadError> {
    parse_with(buf, limits, |room| {
        let mut response = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut response,
            buf,
            room,
        );
        complete(parsed)?;
        let at = Ranges(buf);
        let reason = match response.reason.unwrap_or_default() {
            "" => 0..0,
            reason => at.of(reason.as_bytes()),
        };
        Ok(ParsedResponseHead {
            status: response.code.unwrap_or_default(),
            reason,
            version: version(response.version)?,
            fields: at.fields(response.headers),
        })
    })
}

/// Checks `buf` against `limits.max_bytes` and runs `parse` with room for
/// `limits.max_headers` header lines, uninitialized (the parser writes the ones it
/// finds): on the stack up to a usual limit, on the heap for a larger one.
fn parse_with<'b, T>(
    buf: &'b [u8],
    limits: HeadLimits,
    parse: impl FnOnce(&mut [MaybeUninit<httparse::Header<'b>>]) -> Result<T, HeadError>,
) -> Result<T, HeadError> {
    if buf.len() > limits.max_bytes {
        return Err(HeadError::TooLarge("the head is over the size limit"));
    }
    let mut on_stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
    let mut on_heap = Vec::new();
    let room: &mut [MaybeUninit<httparse::Header<'_>>] = if limits.max_headers <= STACK_HEADERS {
        &mut on_stack[..limits.max_headers]
    } else {
        on_heap.resize_with(limits.max_headers, MaybeUninit::uninit);
        &mut on_heap
    };
    parse(room)
}

/// `httparse`'s verdict on a head that should be complete.
fn complete(parsed: Result<httparse::Status<usize>, httparse::Error>) -> Result<(), HeadError> {
    match parsed {
        Ok(httparse::Status::Complete(_)) => Ok(()),
        Ok(httparse::Status::Partial) => Err(HeadError::Malformed("incomplete head".into())),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooLarge("too many header lines")),
        Err(e) => Err(HeadError::Malformed(e.to_string())),
    }
}

fn version(minor: Option<u8>) -> Result<Version, HeadError> {
    match minor {
        Some(0) => Ok(Version::Http10),
        Some(1) => Ok(Version::Http11),
        _ => Err(HeadError::Malformed("unsupported HTTP version".into())),
    }
}

/// Where the parts `httparse` returns lie in the head it parsed.
struct Ranges<'b>(&'b [u8]);

impl Ranges<'_> {
    /// The range of `part`, a subslice of the head (at most 64 KiB: the callers' limits
    /// keep it so).
    fn of(&self, part: &[u8]) -> Range<u16> {
        let start = part.as_ptr() as usize - self.0.as_ptr() as usize;
        start as u16..(start + part.len()) as u16
    }

    /// The head, owned, with `headers` as its fields.
    fn fields(&self, headers: &[httparse::Header<'_>]) -> HeaderFields {
        HeaderFields {
            bytes: self.0.to_vec(),
            fields: headers
                .iter()
                .map(|h| (self.of(h.name.as_bytes()), self.of(h.value)))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HeadLimits = HeadLimits {
        max_bytes: 65536,
        max_headers: 100,
    };

    #[test]
    fn a_head_is_found_with_crlf_or_bare_lf_and_the_scan_resumes() {
        let mut scanned = 0;
        assert_eq!(
            find_head_end(b"GET / HTTP/1.1\r\nHost: a\r", &mut scanned),
            None
        );
        let full = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET";
        assert_eq!(find_head_end(full, &mut scanned), Some(27));
        let mut scanned = 0;
        assert_eq!(
            find_head_end(b"GET / HTTP/1.1\nHost: a\n\n", &mut scanned),
            Some(24)
        );
    }

    #[test]
    fn a_trickled_head_is_scanned_once() {
        let head = b"GET / HTTP/1.1\r\nHost: example\r\nAccept: */*\r\n\r\n";
        let mut scanned = 0;
        let mut found = None;
        for end in 1..=head.len() {
            let before = scanned;
            found = find_head_end(&head[..end], &mut scanned);
            assert!(scanned >= before, "never goes back");
            if found.is_some() {
                break;
            }
        }
        assert_eq!(found, Some(head.len()));
    }

    #[test]
    fn leading_empty_lines_are_skipped() {
        assert_eq!(leading_empty_lines(b"\r\n\nGET"), 3);
        assert_eq!(leading_empty_lines(b"GET"), 0);
    }

    #[test]
    fn a_head_parses_into_ranges() {
        let buf = b"POST /echo?x=1 HTTP/1.0\r\nContent-Length: 3\r\nX-A:  b \r\n\r\n";
        let head = parse_head(buf, LIMITS).unwrap();
        assert_eq!(head.fields.span(&head.method), b"POST");
        assert_eq!(head.fields.span(&head.target), b"/echo?x=1");
        assert_eq!(head.version, Version::Http10);
        let fields: Vec<_> = head.fields.iter().collect();
        assert_eq!(
            fields,
            [(&b"Content-Length"[..], &b"3"[..]), (b"X-A", b"b")]
        );
    }

    /// One parser for both kinds of head: the same limits, the same verdicts.
    #[test]
    fn a_response_head_parses_with_the_same_rules() {
        let buf = b"HTTP/1.1 404 Not Found\r\nConnection: keep-alive, Upgrade\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\n\r\n";
        let head = parse_response_head(buf, LIMITS).unwrap();
        assert_eq!((head.status, head.version), (404, Version::Http11));
        assert_eq!(head.fields.span(&head.reason), b"Not Found");
        assert_eq!(head.fields.first("SET-COOKIE"), Some(&b"a=1"[..]));
        assert!(head.fields.lists_token("connection", "upgrade"));
        assert!(!head.fields.lists_token("connection", "close"));
        let no_reason = parse_response_head(b"HTTP/1.0 200 \r\n\r\n", LIMITS).unwrap();
        assert_eq!(
            (no_reason.reason, no_reason.version),
            (0..0, Version::Http10)
        );
        let limits = HeadLimits {
            max_bytes: 64,
            max_headers: 1,
        };
        for (buf, status) in [
            (&b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n"[..], 431),
            (
                b"HTTP/1.1 200 OK\r\nX: 01234567890123456789012345678901234567890123456789\r\n\r\n",
                431,
            ),
            (b"HTTP/1.1 200 OK\r\n", 400),
            (b"HTTP/2.0 200 OK\r\n\r\n", 400),
            (b"HTTP/1.1 2000 OK\r\n\r\n", 400),
        ] {
            let verdict = parse_response_head(buf, limits)
                .map(|_| ())
                .map_err(|e| e.status());
            assert_eq!(verdict, Err(status), "{:?}", String::from_utf8_lossy(buf));
        }
    }

    #[cfg(feature = "http-client")]
    #[test]
    fn fields_can_be_removed_and_added_within_the_head_limit() {
        let buf = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 9\r\nA: 1\r\n\r\n";
        let mut fields = parse_response_head(buf, LIMITS).unwrap().fields;
        fields.remove(&["content-encoding", "CONTENT-LENGTH"]);
        assert_eq!(fields.iter().collect::<Vec<_>>(), [(&b"A"[..], &b"1"[..])]);
        assert!(fields.push(b"B", b"2", 1024));
        assert_eq!(fields.first("b"), Some(&b"2"[..]));
        assert!(!fields.push(b"C", &[b'x'; 1024], 1024), "over the limit");
        assert_eq!(fields.iter().count(), 2);
    }

    #[test]
    fn host_values_are_a_uri_host_and_an_optional_port() {
        // RFC 9110 §7.2 (Host = uri-host [ ":" port ]), RFC 3986 §3.2.2-3.2.3.
        let split = |v: &str| split_host(v.as_bytes()).map(|(h, p)| (h.to_vec(), p));
        assert_eq!(split("example.com"), Some((b"example.com".to_vec(), None)));
        assert_eq!(
            split("example.com:8080"),
            Some((b"example.com".to_vec(), Some(8080)))
        );
        assert_eq!(split("[::1]:80"), Some((b"[::1]".to_vec(), Some(80))));
        assert_eq!(split("127.0.0.1:65535").unwrap().1, Some(65535));
        assert_eq!(
            split(""),
            Some((Vec::new(), None)),
            "empty: the grammar allows it"
        );
        assert_eq!(split("a:"), Some((b"a".to_vec(), None)), "an empty port");
        for good in [
            "[v1.fe80::a+en1]",
            "[V7.x:y]",
            "a%2Fb",
            "a_b~c-d!$&'()*+,;=",
            "[::ffff:1.2.3.4]",
        ] {
            assert!(split(good).is_some(), "{good}");
        }
        for bad in [
            "a b",
            "a@b",
            "a/b",
            "a?b",
            "a#b",
            "a\"b",
            "a\\b",
            "a<b",
            "a:b",
            "a:-1",
            "a:65536",
            "a:123456",
            "a:1:2",
            "::1",
            "%",
            "%4",
            "%zz",
            "[::1",
            "[::1]x",
            "[::1]:x",
            "[::1]]",
            "[not-ip]",
            "[v.x]",
            "[v1.]",
            "[fe80::1%25eth0]",
            "é",
        ] {
            assert_eq!(split(bad), None, "{bad}");
        }
    }

    #[test]
    fn limits_give_431_and_bad_syntax_400() {
        let mut buf = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..100 {
            buf.extend_from_slice(format!("H{i}: v\r\n").as_bytes());
        }
        buf.extend_from_slice(b"\r\n");
        assert!(
            parse_head(&buf, LIMITS).is_ok(),
            "exactly 100 header lines pass"
        );
        let mut over = buf[..buf.len() - 2].to_vec();
        over.extend_from_slice(b"H100: v\r\n\r\n");
        assert_eq!(parse_head(&over, LIMITS).unwrap_err().status(), 431);
        assert_eq!(
            parse_head(b"GET /\x00 HTTP/1.1\r\n\r\n", LIMITS)
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            parse_head(b"GET / HTTP/2.0\r\n\r\n", LIMITS)
                .unwrap_err()
                .status(),
            400
        );
        let big = HeadLimits {
            max_bytes: 20,
            max_headers: 100,
        };
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", big)
                .unwrap_err()
                .status(),
            431
        );
    }
}
