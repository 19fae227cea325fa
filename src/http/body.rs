//! Request bodies, sans-IO: how a body is delimited ([`request_framing`], RFC 9112 §6.3),
//! the decoder of the chunked transfer coding ([`ChunkedDecoder`], §7.1), and
//! [`BodyDecoder`] for either framing.
//!
//! Stricter than Tornado where RFC 9112 allows it and request smuggling depends on it:
//! `Transfer-Encoding` together with `Content-Length`, any transfer coding but `chunked`,
//! differing `Content-Length` values and anything but digits in one are all refused.
//! Chunk extensions and trailer fields are accepted and ignored (§7.1.1, §7.1.2), but a
//! bare CR in either is refused, as is a malformed or overlong chunk-size line.

use std::fmt;

/// How a request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// The chunked transfer coding.
    Chunked,
}

/// Why a body could not be read: the request is malformed (400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BodyError(pub(crate) &'static str);

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// The framing of a request with these header fields (name, value).
///
/// # Errors
///
/// A conflicting, repeated-and-different or malformed `Content-Length`, a
/// `Transfer-Encoding` together with a `Content-Length`, or a transfer coding other than
/// `chunked`.
pub(crate) fn request_framing<'a>(
    headers: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) -> Result<Framing, BodyError> {
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut transfer_encoding = false;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case(b"content-length") {
            // A list of equal values (a proxy may have joined repeated fields) is one.
            for item in value.split(|&b| b == b',') {
                let n = parse_length(item.trim_ascii())?;
                match length {
                    Some(seen) if seen != n => {
                        return Err(BodyError("conflicting Content-Length values"))
                    }
                    _ => length = Some(n),
                }
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            transfer_encoding = true;
            for coding in value.split(|&b| b == b',') {
                let coding = coding.trim_ascii();
                if coding.is_empty() {
                    continue;
                }
                if chunked || !coding.eq_ignore_ascii_case(b"chunked") {
                    return Err(BodyError("unsupported Transfer-Encoding"));
                }
                chunked = true;
            }
        }
    }
    match (transfer_encoding, length) {
        (true, Some(_)) => Err(BodyError("Transfer-Encoding with Content-Length")),
        (true, None) if chunked => Ok(Framing::Chunked),
        (true, None) => Err(BodyError("unsupported Transfer-Encoding")),
        (false, Some(0)) | (false, None) => Ok(Framing::Empty),
        (false, Some(n)) => Ok(Framing::Length(n)),
    }
}

fn parse_length(digits: &[u8]) -> Result<u64, BodyError> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(BodyError("malformed Content-Length"));
    }
    Ok(digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// The longest chunk-size line (extensions included) and the most trailer bytes accepted.
const MAX_CHUNK_LINE: usize = 4096;
const MAX_TRAILERS: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading a chunk-size line.
    Size,
    /// Inside a chunk's data, with this much left.
    Data(u64),
    /// After a chunk's data: its line ending.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one, this many bytes so far.
    Trailers(usize),
    Done,
}

/// Decodes the chunked transfer coding from successive slices of buffered bytes.
#[derive(Debug)]
pub(crate) struct ChunkedDecoder {
    state: ChunkState,
}

/// What one call to [`ChunkedDecoder::decode`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Decoded {
    /// Bytes of the input used up (framing and data).
    pub(crate) consumed: usize,
    /// Where the body data found is, in the input.
    pub(crate) data: Vec<std::ops::Range<usize>>,
    /// The body ended (last chunk and trailers read).
    pub(crate) done: bool,
}

impl ChunkedDecoder {
    pub(crate) fn new() -> ChunkedDecoder {
        ChunkedDecoder {
            state: ChunkState::Size,
        }
    }

    /// Decodes what it can of `input`; the caller drops `consumed` bytes and calls again
    /// with more once they arrive.
    ///
    /// # Errors
    ///
    /// A malformed or overlong chunk-size line, a missing line ending after a chunk's
    /// data, or trailers over 64 KiB.
    pub(crate) fn decode(&mut self, input: &[u8]) -> Result<Decoded, BodyError> {
        let mut at = 0;
        let mut data = Vec::new();
        loop {
            match self.state {
                ChunkState::Done => break,
                ChunkState::Size => {
                    let Some(line_end) = line(&input[at..])? else {
                        if input.len() - at > MAX_CHUNK_LINE {
                            return Err(BodyError("chunk-size line too long"));
                        }
                        break;
                    };
                    if line_end.content > MAX_CHUNK_LINE {
                        return Err(BodyError("chunk-size line too long"));
                    }
                    let size = parse_chunk_size(&input[at..at + line_end.content])?;
                    at += line_end.total;
                    self.state = if size == 0 {
                        ChunkState::Trailers(0)
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    let available = (input.len() - at) as u64;
                    if available == 0 {
                        break;
                    }
                    let take = left.min(available) as usize;
                    data.push(at..at + take);
                    at += take;
                    self.state = match left - take as u64 {
                        0 => ChunkState::DataEnd,
                        rest => ChunkState::Data(rest),
                    };
                }
                ChunkState::DataEnd => match &input[at..] {
                    [b'\r', b'\n', ..] => {
                        at += 2;
                        self.state = ChunkState::Size;
                    }
                    [] | [b'\r'] => break,
                    _ => return Err(BodyError("chunk data not followed by CRLF")),
                },
                ChunkState::Trailers(seen) => {
                    let Some(line_end) = line(&input[at..])? else {
                        if seen + input.len() - at > MAX_TRAILERS {
                            return Err(BodyError("trailer fields too large"));
                        }
                        break;
                    };
                    at += line_end.total;
                    let seen = seen + line_end.total;
                    if seen > MAX_TRAILERS {
                        return Err(BodyError("trailer fields too large"));
                    }
                    self.state = if line_end.content == 0 {
                        ChunkState::Done
                    } else {
                        ChunkState::Trailers(seen)
                    };
                }
            }
        }
        Ok(Decoded {
            consumed: at,
            data,
            done: self.state == ChunkState::Done,
        })
    }
}

/// Decodes one request body from successive slices of buffered bytes, whatever its
/// framing.
#[derive(Debug)]
pub(crate) enum BodyDecoder {
    /// This many bytes are still to come.
    Length(u64),
    /// Chunked.
    Chunked(ChunkedDecoder),
}

/// What one call to [`BodyDecoder::decode`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyProgress {
    /// Bytes of the input used up.
    pub(crate) consumed: usize,
    /// The body ended.
    pub(crate) done: bool,
}

impl BodyDecoder {
    /// The decoder for a body with `framing`; `None` if there is no body.
    pub(crate) fn for_framing(framing: Framing) -> Option<BodyDecoder> {
        match framing {
            Framing::Empty => None,
            Framing::Length(n) => Some(BodyDecoder::Length(n)),
            Framing::Chunked => Some(BodyDecoder::Chunked(ChunkedDecoder::new())),
        }
    }

    /// Decodes what `input` holds of the body, giving its data to `sink`; the caller
    /// drops `consumed` bytes and calls again with more once they arrive.
    ///
    /// # Errors
    ///
    /// As [`ChunkedDecoder::decode`].
    pub(crate) fn decode(
        &mut self,
        input: &[u8],
        mut sink: impl FnMut(&[u8]),
    ) -> Result<BodyProgress, BodyError> {
        match self {
            BodyDecoder::Length(left) => {
                let take = (*left).min(input.len() as u64) as usize;
                sink(&input[..take]);
                *left -= take as u64;
                Ok(BodyProgress {
                    consumed: take,
                    done: *left == 0,
                })
            }
            BodyDecoder::Chunked(decoder) => {
                let decoded = decoder.decode(input)?;
                for range in decoded.data {
                    sink(&input[range]);
                }
                Ok(BodyProgress {
                    consumed: decoded.consumed,
                    done: decoded.done,
                })
            }
        }
    }
}

/// A line found at the start of some input: its content length and its length with the
/// line ending (`\r\n` or `\n`).
struct LineEnd {
    content: usize,
    total: usize,
}

/// `None` while the line is incomplete.
///
/// # Errors
///
/// A line ending in a bare LF: within the chunked coding only CRLF ends a line (RFC 9112
/// §7.1), and a parser lenient about it can disagree with a proxy about where a chunk
/// ends (request smuggling). A bare CR inside the line, for the same reason: a chunk
/// extension (§7.1.1) or a trailer field line (§7.1.2) cannot hold one, and a proxy that
/// ends lines at CR would see another line there. It is refused as soon as the byte
/// after it arrives.
fn line(input: &[u8]) -> Result<Option<LineEnd>, BodyError> {
    let Some(end) = input.iter().position(|&b| b == b'\r' || b == b'\n') else {
        return Ok(None);
    };
    if input[end] == b'\n' {
        return Err(BodyError("a chunked-coding line ends without CR"));
    }
    match input.get(end + 1) {
        None => Ok(None),
        Some(b'\n') => Ok(Some(LineEnd {
            content: end,
            total: end + 2,
        })),
        Some(_) => Err(BodyError("a bare CR in a chunked-coding line")),
    }
}

/// `1*HEXDIG` then optional whitespace and `;` extensions (ignored).
fn parse_chunk_size(line: &[u8]) -> Result<u64, BodyError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return Err(BodyError("malformed chunk size"));
    }
    let rest = &line[digits..];
    let rest_start = rest
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(rest.len());
    if rest_start < rest.len() && rest[rest_start] != b';' {
        return Err(BodyError("malformed chunk size"));
    }
    let size = line[..digits].iter().fold(0u64, |n, &d| {
        let v = (d as char).to_digit(16).expect("a hex digit") as u64;
        (n << 4) | v
    });
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(list: &[(&'static str, &'static str)]) -> Result<Framing, BodyError> {
        request_framing(list.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
    }

    #[test]
    fn framing_follows_rfc_9112_and_refuses_smuggling_shapes() {
        assert_eq!(fields(&[]), Ok(Framing::Empty));
        assert_eq!(fields(&[("Content-Length", "12")]), Ok(Framing::Length(12)));
        assert_eq!(fields(&[("content-length", "0")]), Ok(Framing::Empty));
        assert_eq!(
            fields(&[("Content-Length", "5"), ("Content-Length", "5")]),
            Ok(Framing::Length(5))
        );
        assert_eq!(
            fields(&[("Content-Length", "5, 5")]),
            Ok(Framing::Length(5))
        );
        assert_eq!(
            fields(&[("Transfer-Encoding", "chunked")]),
            Ok(Framing::Chunked)
        );
        for bad in [
            vec![("Content-Length", "5"), ("Content-Length", "6")],
            vec![("Content-Length", "+5")],
            vec![("Content-Length", "5 5")],
            vec![("Content-Length", "")],
            vec![("Content-Length", "99999999999999999999")],
            vec![("Transfer-Encoding", "chunked"), ("Content-Length", "5")],
            vec![("Transfer-Encoding", "gzip")],
            vec![("Transfer-Encoding", "gzip, chunked")],
            vec![("Transfer-Encoding", "chunked, chunked")],
            vec![("Transfer-Encoding", "")],
        ] {
            assert!(fields(&bad).is_err(), "{bad:?} is refused");
        }
    }

    /// Decodes `input` fed in pieces of `step` bytes; returns the body.
    fn decode_in_steps(input: &[u8], step: usize) -> Result<Vec<u8>, BodyError> {
        let mut decoder = ChunkedDecoder::new();
        let mut buffered = Vec::new();
        let mut body = Vec::new();
        for piece in input.chunks(step) {
            buffered.extend_from_slice(piece);
            let decoded = decoder.decode(&buffered)?;
            for range in decoded.data {
                body.extend_from_slice(&buffered[range]);
            }
            buffered.drain(..decoded.consumed);
            if decoded.done {
                return Ok(body);
            }
        }
        Err(BodyError("incomplete"))
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_packet_boundaries() {
        let input = b"5\r\nhello\r\n7;name=value\r\n, world\r\n0\r\nTrailer: x\r\n\r\n";
        for step in 1..input.len() {
            assert_eq!(decode_in_steps(input, step).unwrap(), b"hello, world");
        }
        assert_eq!(
            decode_in_steps(b"A \t; ext\r\n0123456789\r\n0\r\n\r\n", 4).unwrap(),
            b"0123456789"
        );
    }

    #[test]
    fn malformed_chunks_are_refused() {
        for bad in [
            &b"x\r\n"[..],
            b"5\r\nhelloXX\r\n",
            b"5 5\r\nhello\r\n0\r\n\r\n",
            b"-1\r\n",
            b"11111111111111111\r\n",
            // Bare LF in the chunked coding: refused (request smuggling).
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"5\r\nhello\r\n0\r\n\n",
            b"5\r\nhello\r\n0\r\nX-Trailer: 1\n\r\n",
        ] {
            assert!(
                decode_in_steps(bad, 3).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = [b"1;".to_vec(), vec![b'a'; MAX_CHUNK_LINE + 10]].concat();
        assert!(ChunkedDecoder::new().decode(&long).is_err());
    }

    #[test]
    fn a_bare_cr_in_a_chunk_extension_or_a_trailer_line_is_refused() {
        // RFC 9112 §7.1.1: a chunk extension is tokens and quoted strings, §7.1.2: a
        // trailer line is a field line; neither holds a CR that does not end the line. A
        // proxy that ends lines at CR would frame the body differently (nginx and hyper
        // refuse it too).
        for bad in [
            &b"3;ext=a\rb\r\nabc\r\n0\r\n\r\n"[..],
            b"3;ext=a\r\r\nabc\r\n0\r\n\r\n",
            b"3;\r\r\nabc\r\n0\r\n\r\n",
            b"3;e=\"a\rb\"\r\nabc\r\n0\r\n\r\n",
            b"3\r\nabc\r\n0;x\ry\r\n\r\n",
            b"3\r\nabc\r\n0\r\nTrailer: a\rb\r\n\r\n",
            b"3\r\nabc\r\n0\r\nTrailer: a\r\r\n\r\n",
            b"3\r\nabc\r\n0\r\n\rX: 1\r\n\r\n",
        ] {
            for step in 1..=bad.len() {
                assert!(
                    decode_in_steps(bad, step).is_err(),
                    "{:?} in steps of {step}",
                    String::from_utf8_lossy(bad)
                );
            }
        }
        // Refused as soon as the byte after the CR is there, before the line ends.
        assert!(ChunkedDecoder::new().decode(b"3;ext=a\rb").is_err());
        assert!(ChunkedDecoder::new().decode(b"0\r\nX: a\rb").is_err());
        // A CR that may still be followed by its LF waits.
        assert_eq!(
            ChunkedDecoder::new().decode(b"3;ext=a\r").unwrap().consumed,
            0
        );
    }

    #[test]
    fn the_body_decoder_takes_a_length_or_chunks_in_pieces() {
        assert!(BodyDecoder::for_framing(Framing::Empty).is_none());
        let mut decoder = BodyDecoder::for_framing(Framing::Length(5)).unwrap();
        let mut body = Vec::new();
        let step = decoder
            .decode(b"hel", |d| body.extend_from_slice(d))
            .unwrap();
        assert_eq!(
            step,
            BodyProgress {
                consumed: 3,
                done: false
            }
        );
        let step = decoder
            .decode(b"loGET /", |d| body.extend_from_slice(d))
            .unwrap();
        assert_eq!(
            step,
            BodyProgress {
                consumed: 2,
                done: true
            }
        );
        assert_eq!(body, b"hello");

        let mut decoder = BodyDecoder::for_framing(Framing::Chunked).unwrap();
        let mut body = Vec::new();
        let step = decoder
            .decode(b"3\r\nabc\r\n0\r\n\r\nnext", |d| body.extend_from_slice(d))
            .unwrap();
        assert_eq!(
            step,
            BodyProgress {
                consumed: 13,
                done: true
            }
        );
        assert_eq!(body, b"abc");
    }
}
