//! RESP2/RESP3 on byte slices: [`Value`], the command encoder, and the reply decoder.
//!
//! Decoding is the `redis-protocol` crate's (sans-IO: it reads a byte slice and says how
//! many bytes a frame took). In front of it runs [`frame_len`], a scan of the frame's
//! headers only, which finds where a reply ends and enforces this crate's limits before a
//! byte of it is decoded: a bulk string longer than the configured maximum, nesting deeper
//! than [`MAX_DEPTH`], or a type byte that is not RESP is a [`ProtocolError`] at once,
//! without buffering the rest. The decoder is only called on a complete frame, so it never
//! re-parses a partial one and never recurses deeper than the scan allowed.

use std::fmt;

use redis_protocol::resp2::types::OwnedFrame as Resp2;
use redis_protocol::resp3::types::OwnedFrame as Resp3;

/// The deepest nesting of aggregates a reply may have (Redis itself sends at most a few
/// levels; a hostile server could otherwise make the decoder recurse without bound).
pub const MAX_DEPTH: usize = 64;

/// A reply from Redis, typed (RESP3's types; a RESP2 server's replies map onto the
/// first five).
///
/// # Examples
///
/// ```
/// use ioloop::redis::Value;
/// let v = Value::Bulk(b"v".to_vec());
/// assert_eq!(v.as_bytes(), Some(&b"v"[..]));
/// assert_eq!(v.as_str(), Some("v"));
/// assert_eq!(Value::Int(3).as_int(), Some(3));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A null reply (RESP2 `$-1`/`*-1`, RESP3 `_`), e.g. `GET` of a missing key.
    Nil,
    /// An integer (`:`).
    Int(i64),
    /// A simple string (`+`), e.g. `OK`.
    Status(String),
    /// A bulk string (`$`), or RESP3's verbatim string (`=`, its format dropped).
    Bulk(Vec<u8>),
    /// An array (`*`).
    Array(Vec<Value>),
    /// A RESP3 map (`%`), in the order received (a key sent twice is kept once).
    Map(Vec<(Value, Value)>),
    /// A RESP3 set (`~`), in the order received (an element sent twice is kept once).
    Set(Vec<Value>),
    /// A RESP3 double (`,`).
    Double(f64),
    /// A RESP3 boolean (`#`).
    Bool(bool),
    /// A RESP3 big number (`(`), as its decimal digits.
    BigNumber(String),
    /// A RESP3 push (`>`): pub/sub messages and other out-of-band data.
    Push(Vec<Value>),
    /// An error inside an aggregate (e.g. one command of an `EXEC`); an error as a whole
    /// reply is a [`RedisError::Server`](super::RedisError::Server) instead.
    Error(String),
}

impl Value {
    /// The bytes of a bulk or simple string.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::redis::Value;
    /// assert_eq!(Value::Status("OK".into()).as_bytes(), Some(&b"OK"[..]));
    /// assert_eq!(Value::Bulk(vec![0xff, 0]).as_bytes(), Some(&[0xff, 0][..]));
    /// assert_eq!(Value::Int(1).as_bytes(), None);
    /// ```
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(b) => Some(b),
            Value::Status(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// A bulk or simple string that is valid UTF-8.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::redis::Value;
    /// assert_eq!(Value::Status("PONG".into()).as_str(), Some("PONG"));
    /// assert_eq!(Value::Bulk(vec![0xff]).as_str(), None); // not UTF-8
    /// assert_eq!(Value::Nil.as_str(), None);
    /// ```
    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// An integer reply.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::redis::Value;
    /// assert_eq!(Value::Int(-2).as_int(), Some(-2));
    /// assert_eq!(Value::Bulk(b"42".to_vec()).as_int(), None); // digits, not an integer reply
    /// ```
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The elements of an array, set or push.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::redis::Value;
    /// let v = Value::Array(vec![Value::Int(1)]);
    /// assert_eq!(v.as_array(), Some(&[Value::Int(1)][..]));
    /// ```
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) | Value::Set(a) | Value::Push(a) => Some(a),
            _ => None,
        }
    }
}

/// A reply that breaks the protocol or this client's limits.
///
/// # Examples
///
/// ```
/// use ioloop::redis::ProtocolError;
/// let e = ProtocolError::BulkTooLong { len: 10, max: 4 };
/// assert!(e.to_string().contains("10"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A byte that starts no RESP type.
    BadType(u8),
    /// A length or count that is not a number.
    BadLength,
    /// A bulk string (or aggregate count) over the configured maximum.
    BulkTooLong {
        /// The announced length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// Aggregates nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A bulk string not followed by CRLF.
    MissingCrlf,
    /// A RESP3 streamed string or aggregate (Redis never sends them).
    Streamed,
    /// The decoder refused the frame.
    Decode(String),
    /// A reply arrived with no command waiting for it.
    Unexpected,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::BadType(b) => write!(f, "unknown RESP type byte 0x{b:02x}"),
            ProtocolError::BadLength => f.write_str("malformed RESP length"),
            ProtocolError::BulkTooLong { len, max } => {
                write!(f, "bulk length {len} over the limit of {max} bytes")
            }
            ProtocolError::TooDeep => write!(f, "RESP nested deeper than {MAX_DEPTH}"),
            ProtocolError::MissingCrlf => f.write_str("bulk string not ended by CRLF"),
            ProtocolError::Streamed => f.write_str("streamed RESP3 frames are not supported"),
            ProtocolError::Decode(e) => write!(f, "malformed RESP: {e}"),
            ProtocolError::Unexpected => f.write_str("a reply with no command waiting"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Appends `args` as one command (a RESP array of bulk strings) to `out`.
pub(crate) fn encode_command<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: impl IntoIterator<Item = A>) {
    let start = out.len();
    out.extend_from_slice(b"*0000000000\r\n"); // patched below
    let mut count = 0u64;
    for arg in args {
        let arg = arg.as_ref();
        count += 1;
        out.push(b'$');
        push_decimal(out, arg.len() as u64);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    let mut header = Vec::with_capacity(13);
    header.push(b'*');
    push_decimal(&mut header, count);
    header.extend_from_slice(b"\r\n");
    out.splice(start..start + 13, header);
}

fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Where the first complete frame of `buf` ends, `None` while it is incomplete, or the
/// violation found in its headers. Looks at headers only (bulk payloads are skipped).
pub(crate) fn frame_len(buf: &[u8], max_bulk: usize) -> Result<Option<usize>, ProtocolError> {
    // Elements still wanted by each open aggregate, innermost last.
    let mut wanted: Vec<u64> = Vec::new();
    let mut pos = 0;
    loop {
        let Some(&kind) = buf.get(pos) else {
            return Ok(None);
        };
        let Some(cr) = find_crlf(&buf[pos + 1..]) else {
            if kind == b'$' || kind == b'*' || kind == b'%' {
                // A length line is at most 20 digits and a sign.
                if buf.len() - pos > 24 {
                    return Err(ProtocolError::BadLength);
                }
            }
            return Ok(None);
        };
        let line = &buf[pos + 1..pos + 1 + cr];
        pos += cr + 3;
        let mut children = 0u64;
        match kind {
            b'+' | b'-' | b':' | b',' | b'#' | b'(' | b'_' => {}
            b'$' | b'!' | b'=' => {
                if line == b"?" {
                    return Err(ProtocolError::Streamed);
                }
                let len = signed(line)?;
                if len >= 0 {
                    let len = len as u64;
                    if len > max_bulk as u64 {
                        return Err(ProtocolError::BulkTooLong { len, max: max_bulk });
                    }
                    let end = pos + len as usize;
                    if buf.len() < end + 2 {
                        return Ok(None);
                    }
                    if &buf[end..end + 2] != b"\r\n" {
                        return Err(ProtocolError::MissingCrlf);
                    }
                    pos = end + 2;
                } else if len != -1 || kind != b'$' {
                    return Err(ProtocolError::BadLength);
                }
            }
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                if line == b"?" {
                    return Err(ProtocolError::Streamed);
                }
                let n = signed(line)?;
                if n >= 0 {
                    let n = n as u64;
                    if n > max_bulk as u64 {
                        return Err(ProtocolError::BulkTooLong {
                            len: n,
                            max: max_bulk,
                        });
                    }
                    children = match kind {
                        b'%' => n * 2,
                        // Attributes come before the frame they describe.
                        b'|' => n * 2 + 1,
                        _ => n,
                    };
                } else if n != -1 || kind != b'*' {
                    return Err(ProtocolError::BadLength);
                }
            }
            other => return Err(ProtocolError::BadType(other)),
        }
        if children > 0 {
            if wanted.len() >= MAX_DEPTH {
                return Err(ProtocolError::TooDeep);
            }
            wanted.push(children);
            continue;
        }
        // One element done: close every aggregate it completes.
        loop {
            match wanted.last_mut() {
                None => return Ok(Some(pos)),
                Some(left) => {
                    *left -= 1;
                    if *left > 0 {
                        break;
                    }
                    wanted.pop();
                }
            }
        }
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = buf[from..].iter().position(|&b| b == b'\r') {
        let at = from + at;
        match buf.get(at + 1) {
            Some(b'\n') => return Some(at),
            Some(_) => from = at + 1,
            None => return None,
        }
    }
    None
}

fn signed(line: &[u8]) -> Result<i64, ProtocolError> {
    let (negative, digits) = match line.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, line),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ProtocolError::BadLength);
    }
    // 19 digits can be over `i64::MAX`: such a length is malformed, not an overflow.
    let mut n: i64 = 0;
    for d in digits {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(i64::from(d - b'0')))
            .ok_or(ProtocolError::BadLength)?;
    }
    Ok(if negative { -n } else { n })
}

/// Decodes the complete frame `frame` (as delimited by [`frame_len`]).
pub(crate) fn decode(frame: &[u8], resp3: bool) -> Result<Value, ProtocolError> {
    let bad = |e: redis_protocol::error::RedisProtocolError| ProtocolError::Decode(e.to_string());
    if resp3 && !frame.starts_with(b"$-1\r\n") && !frame.starts_with(b"*-1\r\n") {
        match redis_protocol::resp3::decode::complete::decode(frame).map_err(bad)? {
            Some((f, n)) if n == frame.len() => Ok(from_resp3(f)),
            _ => Err(ProtocolError::Decode("frame length mismatch".into())),
        }
    } else {
        match redis_protocol::resp2::decode::decode(frame).map_err(bad)? {
            Some((f, n)) if n == frame.len() => Ok(from_resp2(f)),
            _ => Err(ProtocolError::Decode("frame length mismatch".into())),
        }
    }
}

/// Every whole reply at the start of `buf`, as the client reads its buffer: the values,
/// the bytes they took, and the violation that stopped the reading, if one did (the
/// values before it are still good).
pub(crate) fn decode_replies(
    buf: &[u8],
    max_bulk: usize,
    resp3: bool,
) -> (Vec<Value>, usize, Option<ProtocolError>) {
    let mut values = Vec::new();
    let mut at = 0;
    loop {
        match frame_len(&buf[at..], max_bulk) {
            Ok(Some(n)) => match decode(&buf[at..at + n], resp3) {
                Ok(v) => {
                    values.push(v);
                    at += n;
                }
                Err(e) => return (values, at, Some(e)),
            },
            Ok(None) => return (values, at, None),
            Err(e) => return (values, at, Some(e)),
        }
    }
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn from_resp2(frame: Resp2) -> Value {
    match frame {
        Resp2::SimpleString(s) => Value::Status(text(s)),
        Resp2::Error(e) => Value::Error(e),
        Resp2::Integer(i) => Value::Int(i),
        Resp2::BulkString(b) => Value::Bulk(b),
        Resp2::Array(a) => Value::Array(a.into_iter().map(from_resp2).collect()),
        Resp2::Null => Value::Nil,
    }
}

fn from_resp3(frame: Resp3) -> Value {
    match frame {
        Resp3::BlobString { data, .. } | Resp3::VerbatimString { data, .. } => Value::Bulk(data),
        Resp3::BlobError { data, .. } => Value::Error(text(data)),
        Resp3::SimpleString { data, .. } => Value::Status(text(data)),
        Resp3::SimpleError { data, .. } => Value::Error(data),
        Resp3::Boolean { data, .. } => Value::Bool(data),
        Resp3::Null => Value::Nil,
        Resp3::Number { data, .. } => Value::Int(data),
        Resp3::Double { data, .. } => Value::Double(data),
        Resp3::BigNumber { data, .. } => Value::BigNumber(text(data)),
        Resp3::Array { data, .. } => Value::Array(data.into_iter().map(from_resp3).collect()),
        // The crate fills its map from the last pair to the first.
        Resp3::Map { data, .. } => Value::Map(
            data.into_iter()
                .rev()
                .map(|(k, v)| (from_resp3(k), from_resp3(v)))
                .collect(),
        ),
        Resp3::Set { data, .. } => Value::Set(data.into_iter().map(from_resp3).collect()),
        Resp3::Push { data, .. } => Value::Push(data.into_iter().map(from_resp3).collect()),
        // HELLO, chunked strings: never sent by a server as a whole reply.
        _ => Value::Error("unsupported RESP3 frame".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(buf: &[u8]) -> Result<Option<Value>, ProtocolError> {
        Ok(match frame_len(buf, 1 << 20)? {
            Some(n) => Some(decode(&buf[..n], true)?),
            None => None,
        })
    }

    #[test]
    fn encodes_a_command_as_an_array_of_bulk_strings() {
        let mut out = Vec::new();
        encode_command(&mut out, ["SET", "k", "vv"]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nvv\r\n");
        let mut out = b"x".to_vec();
        encode_command(&mut out, Vec::<&[u8]>::new());
        assert_eq!(out, b"x*0\r\n");
    }

    #[test]
    fn decodes_every_reply_type() {
        assert_eq!(one(b"+OK\r\n").unwrap(), Some(Value::Status("OK".into())));
        assert_eq!(one(b":-7\r\n").unwrap(), Some(Value::Int(-7)));
        assert_eq!(one(b"$-1\r\n").unwrap(), Some(Value::Nil));
        assert_eq!(one(b"*-1\r\n").unwrap(), Some(Value::Nil));
        assert_eq!(one(b"_\r\n").unwrap(), Some(Value::Nil));
        assert_eq!(
            one(b"$3\r\na\r\n\r\n").unwrap(),
            Some(Value::Bulk(b"a\r\n".to_vec()))
        );
        assert_eq!(one(b"#t\r\n").unwrap(), Some(Value::Bool(true)));
        assert_eq!(one(b",1.5\r\n").unwrap(), Some(Value::Double(1.5)));
        assert_eq!(
            one(b"*2\r\n:1\r\n*1\r\n+x\r\n").unwrap(),
            Some(Value::Array(vec![
                Value::Int(1),
                Value::Array(vec![Value::Status("x".into())])
            ]))
        );
        assert_eq!(
            one(b">2\r\n$1\r\na\r\n-ERR no\r\n").unwrap(),
            Some(Value::Push(vec![
                Value::Bulk(b"a".to_vec()),
                Value::Error("ERR no".into())
            ]))
        );
        assert_eq!(
            one(b"%1\r\n+k\r\n:1\r\n").unwrap(),
            Some(Value::Map(vec![(Value::Status("k".into()), Value::Int(1))]))
        );
    }

    #[test]
    fn every_prefix_of_a_frame_is_incomplete() {
        let frame = b"*3\r\n$3\r\nabc\r\n%1\r\n+k\r\n:1\r\n>1\r\n_\r\n";
        for cut in 0..frame.len() {
            assert_eq!(frame_len(&frame[..cut], 1 << 20), Ok(None), "cut at {cut}");
        }
        assert_eq!(frame_len(frame, 1 << 20), Ok(Some(frame.len())));
        let mut two = frame.to_vec();
        two.extend_from_slice(b"+OK\r\n");
        assert_eq!(frame_len(&two, 1 << 20), Ok(Some(frame.len())));
    }

    #[test]
    fn violations_are_typed_errors() {
        assert_eq!(frame_len(b"?x\r\n", 10), Err(ProtocolError::BadType(b'?')));
        assert_eq!(frame_len(b"$x\r\n", 10), Err(ProtocolError::BadLength));
        assert_eq!(
            frame_len(b"$11\r\n", 10),
            Err(ProtocolError::BulkTooLong { len: 11, max: 10 })
        );
        assert_eq!(
            frame_len(b"$1\r\nab\r\n", 10),
            Err(ProtocolError::MissingCrlf)
        );
        assert_eq!(
            frame_len(b"$999999999999999999999999", 10),
            Err(ProtocolError::BadLength)
        );
        assert_eq!(
            frame_len(&b"*1\r\n".repeat(MAX_DEPTH + 1), 10),
            Err(ProtocolError::TooDeep)
        );
        assert_eq!(frame_len(b"$?\r\n", 10), Err(ProtocolError::Streamed));
        // 19 digits over i64::MAX (the `resp` fuzz target: an overflow panic in debug).
        for line in ["$9223372036854775808\r\n", "*-9223372036854775808\r\n"] {
            assert_eq!(
                frame_len(line.as_bytes(), 10),
                Err(ProtocolError::BadLength),
                "{line:?}"
            );
        }
        assert_eq!(
            frame_len(b"*9223372036854775807\r\n", 10),
            Err(ProtocolError::BulkTooLong {
                len: 9_223_372_036_854_775_807,
                max: 10
            })
        );
        assert!(matches!(one(b":abc\r\n"), Err(ProtocolError::Decode(_))));
    }

    #[test]
    fn a_map_and_a_set_keep_the_order_received() {
        // The crate collects maps and sets into hash maps unless its `index-map` feature
        // is on, and fills a map from its last pair: the order changed from one decode
        // to the next (found writing the `resp` fuzz target, whose "the same in pieces
        // as at once" property it breaks).
        let map = b"%4\r\n+a\r\n:1\r\n+b\r\n:2\r\n+c\r\n:3\r\n+d\r\n:4\r\n";
        let set = b"~4\r\n+a\r\n+b\r\n+c\r\n+d\r\n";
        let s = |k: &str| Value::Status(k.into());
        for _ in 0..20 {
            assert_eq!(
                one(map).unwrap(),
                Some(Value::Map(vec![
                    (s("a"), Value::Int(1)),
                    (s("b"), Value::Int(2)),
                    (s("c"), Value::Int(3)),
                    (s("d"), Value::Int(4)),
                ]))
            );
            assert_eq!(
                one(set).unwrap(),
                Some(Value::Set(vec![s("a"), s("b"), s("c"), s("d")]))
            );
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let alphabet = b"+-:$*%>_#,\r\n0123456789-?abc";
        for _ in 0..20_000 {
            let mut buf = Vec::new();
            for _ in 0..(seed % 40) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                buf.push(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            if let Ok(Some(n)) = frame_len(&buf, 64) {
                let _ = decode(&buf[..n], true);
                let _ = decode(&buf[..n], false);
            }
        }
    }
}
