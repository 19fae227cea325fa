//! gzip for responses (Tornado's `compress_response=True`, `GZipContentEncoding`): which
//! requests accept it, which types are worth compressing, and the encoder of a whole body
//! or of a streamed one, piece by piece.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;

/// A whole body shorter than this is sent as is (Tornado's `MIN_LENGTH`): gzip's header
/// and trailer would eat the gain.
pub(crate) const MIN_LENGTH: usize = 1024;

/// zlib's level 6, as Tornado and the `gzip` tool: most of the gain for a fraction of
/// level 9's time.
const LEVEL: u32 = 6;

/// Whether an `Accept-Encoding` value accepts gzip (RFC 9110 §12.5.3): `gzip` or `*` with
/// a q-value above zero; an explicit `gzip` wins over `*`, so `gzip;q=0, *` refuses it.
pub(crate) fn accepts_gzip(accept_encoding: &str) -> bool {
    let mut star = None;
    for item in accept_encoding.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let mut q = 1.0f32;
        for param in parts {
            if let Some((name, value)) = param.split_once('=') {
                if name.trim().eq_ignore_ascii_case("q") {
                    q = value.trim().parse().unwrap_or(0.0);
                }
            }
        }
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            return q > 0.0;
        }
        if coding == "*" {
            star = Some(q > 0.0);
        }
    }
    star.unwrap_or(false)
}

/// Whether a `Content-Type` is worth compressing: `text/*`, and JavaScript, JSON, XML,
/// Atom, XHTML and SVG (Tornado's list).
pub(crate) fn is_compressible(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || matches!(
            essence.as_str(),
            "application/javascript"
                | "application/x-javascript"
                | "application/xml"
                | "application/atom+xml"
                | "application/json"
                | "application/xhtml+xml"
                | "image/svg+xml"
        )
}

/// The gzip member of a whole body.
pub(crate) fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(body.len() / 3 + 32),
        Compression::new(LEVEL),
    );
    // Writing into a `Vec` cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}

/// A streamed body's encoder: each piece comes out at once (a sync flush), so a client
/// reading a long-lived stream sees every piece when it is written.
pub(crate) struct StreamEncoder(GzEncoder<Vec<u8>>);

impl StreamEncoder {
    pub(crate) fn new() -> StreamEncoder {
        StreamEncoder(GzEncoder::new(Vec::new(), Compression::new(LEVEL)))
    }

    /// The compressed bytes of `piece`, flushed.
    pub(crate) fn piece(&mut self, piece: &[u8]) -> Vec<u8> {
        let _ = self.0.write_all(piece);
        let _ = self.0.flush();
        std::mem::take(self.0.get_mut())
    }

    /// The end of the gzip member (the last block and the trailer).
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        let _ = self.0.try_finish();
        std::mem::take(self.0.get_mut())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn accept_encoding_honours_q_values() {
        assert!(accepts_gzip("gzip"));
        assert!(accepts_gzip("deflate, gzip;q=0.5"));
        assert!(accepts_gzip("GZIP ; Q=1"));
        assert!(accepts_gzip("*"));
        assert!(accepts_gzip("x-gzip"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(
            !accepts_gzip("gzip;q=0.0, *"),
            "an explicit refusal wins over *"
        );
        assert!(!accepts_gzip("*;q=0"));
        assert!(!accepts_gzip("identity"));
        assert!(!accepts_gzip("br, deflate"));
        assert!(!accepts_gzip(""));
    }

    #[test]
    fn compressible_types_are_tornados() {
        for t in [
            "text/html; charset=UTF-8",
            "text/css",
            "application/json",
            "Application/JSON; charset=UTF-8",
            "application/javascript",
            "image/svg+xml",
            "application/xhtml+xml",
            "application/atom+xml",
        ] {
            assert!(is_compressible(t), "{t}");
        }
        for t in [
            "image/png",
            "application/octet-stream",
            "application/zip",
            "",
        ] {
            assert!(!is_compressible(t), "{t}");
        }
    }

    // zlib-rs 0.6 frees a stream's state under a reference that is still protected
    // when the stream is dropped, which Miri reports as undefined behaviour
    // (trifectatechfoundation/zlib-rs#491, fix pending): not this crate's code, which has
    // no unsafe here.
    #[test]
    #[cfg_attr(
        miri,
        ignore = "zlib-rs#491: a dropped zlib-rs stream is UB under Miri"
    )]
    fn a_streamed_body_decodes_to_its_pieces() {
        let mut encoder = StreamEncoder::new();
        let mut out = encoder.piece(b"first piece ");
        assert!(!out.is_empty(), "a piece comes out at once");
        out.extend(encoder.piece(b"second piece"));
        out.extend(encoder.finish());
        let mut text = String::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "first piece second piece");
        let mut whole = String::new();
        flate2::read::GzDecoder::new(&gzip(b"abc")[..])
            .read_to_string(&mut whole)
            .unwrap();
        assert_eq!(whole, "abc");
    }
}
