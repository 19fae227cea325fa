//! Writing responses, sans-IO: the status line and header fields into a byte buffer, the
//! chunked coding's framing, and the `Date` field, formatted once per second per thread.

use std::cell::RefCell;
use std::io::Write;
#[cfg(not(target_os = "linux"))]
use std::time::SystemTime;
use std::time::{Duration, UNIX_EPOCH};

use super::status::reason_phrase;

/// The value of the `Server` field the server adds unless the response sets one.
pub(crate) const SERVER: &str = "ioloop";

/// How the body of a response is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFraming {
    /// `Content-Length: n` (sent also for a HEAD response, whose body is not).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither: the body ends when the connection closes (HTTP/1.0 streaming).
    UntilClose,
    /// No body and no length field (1xx, 204, 304).
    None,
}

/// Whether a response with `status` has no body by definition (RFC 9110 §6.4.1).
pub(crate) fn status_has_no_body(status: u16) -> bool {
    (100..200).contains(&status) || status == 204 || status == 304
}

/// Writes a status line and header fields, the server's own (`Date`, `Server` unless set,
/// the body framing, `Connection`) after the response's.
pub(crate) fn write_head<'a>(
    out: &mut Vec<u8>,
    status: u16,
    reason: Option<&str>,
    headers: impl Iterator<Item = (&'a str, &'a str)>,
    framing: BodyFraming,
    connection: Option<&'static str>,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_status(out, status);
    out.push(b' ');
    out.extend_from_slice(reason.unwrap_or_else(|| reason_phrase(status)).as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut has_server = false;
    for (name, value) in headers {
        // The server frames the body itself.
        if name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("connection")
            || name.eq_ignore_ascii_case("date")
        {
            continue;
        }
        has_server |= name.eq_ignore_ascii_case("server");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !has_server {
        out.extend_from_slice(b"Server: ");
        out.extend_from_slice(SERVER.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Date: ");
    push_date(out);
    out.extend_from_slice(b"\r\n");
    match framing {
        BodyFraming::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            push_decimal(out, n);
            out.extend_from_slice(b"\r\n");
        }
        BodyFraming::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        BodyFraming::UntilClose | BodyFraming::None => {}
    }
    if let Some(connection) = connection {
        out.extend_from_slice(b"Connection: ");
        out.extend_from_slice(connection.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends one chunk of the chunked coding (nothing for an empty one: that would end the
/// body).
pub(crate) fn write_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let _ = write!(out, "{:X}\r\n", data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The last chunk of the chunked coding, with no trailer fields.
pub(crate) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

fn push_status(out: &mut Vec<u8>, status: u16) {
    let status = status.clamp(100, 999);
    out.extend_from_slice(&[
        b'0' + (status / 100) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
    ]);
}

fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Seconds since the Unix epoch from the coarse wall clock on Linux (read from memory the
/// kernel updates every few milliseconds, without the cycle counter): a response head
/// needs the second, not the nanosecond.
#[cfg(target_os = "linux")]
fn unix_seconds() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
    u64::try_from(now.tv_sec).unwrap_or(0)
}

#[cfg(not(target_os = "linux"))]
fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

thread_local! {
    /// The `Date` value of the current second: `(unix seconds, IMF-fixdate)`.
    static DATE: RefCell<(u64, [u8; 29])> = const { RefCell::new((u64::MAX, [0; 29])) };
}

/// Appends the current time as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`),
/// formatted at most once per second on each thread.
pub(crate) fn push_date(out: &mut Vec<u8>) {
    let secs = unix_seconds();
    DATE.with(|date| {
        let mut date = date.borrow_mut();
        if date.0 != secs {
            let text = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs));
            if text.len() == 29 {
                date.1.copy_from_slice(text.as_bytes());
                date.0 = secs;
            }
        }
        out.extend_from_slice(&date.1);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_has_the_status_the_fields_and_the_servers_own() {
        let mut out = Vec::new();
        let fields = [
            ("Content-Type", "text/plain"),
            ("Content-Length", "999"),
            ("X-A", "1"),
        ];
        write_head(
            &mut out,
            200,
            None,
            fields.into_iter(),
            BodyFraming::Length(13),
            Some("keep-alive"),
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-A: 1\r\n"));
        assert!(text.contains("\r\nServer: ioloop\r\nDate: "));
        assert!(text.ends_with("GMT\r\nContent-Length: 13\r\nConnection: keep-alive\r\n\r\n"));
        assert!(!text.contains("999"), "the server frames the body itself");
    }

    #[test]
    fn chunks_and_numbers_are_framed_exactly() {
        let mut out = Vec::new();
        write_chunk(&mut out, b"");
        write_chunk(&mut out, &[b'x'; 26]);
        assert_eq!(out, [b"1A\r\n".as_slice(), &[b'x'; 26], b"\r\n"].concat());
        let mut n = Vec::new();
        push_decimal(&mut n, 0);
        push_decimal(&mut n, 1048576);
        assert_eq!(n, b"01048576");
        let mut s = Vec::new();
        push_status(&mut s, 431);
        assert_eq!(s, b"431");
    }

    #[test]
    fn the_date_is_an_imf_fixdate() {
        let mut out = Vec::new();
        push_date(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.len(), 29);
        assert!(text.ends_with(" GMT"));
        assert!(httpdate::parse_http_date(&text).is_ok());
    }
}
