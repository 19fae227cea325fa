//! permessage-deflate (RFC 7692), feature `deflate`: the extension's negotiation in the
//! handshake, and each message compressed with a raw deflate stream ended by a sync
//! flush (whose `00 00 FF FF` tail is not sent), over `flate2` on the pure-Rust
//! `zlib-rs` backend.
//!
//! Window sizes: a peer may limit this side's compressor to 2^9–2^15 bytes
//! (`server_max_window_bits` asked of a server, `client_max_window_bits` answered to a
//! client), and it is honoured; 2^8, which zlib cannot produce for raw deflate, is
//! declined. This side inflates with the full 32 KiB window, which reads any. With
//! context takeover (the default) a connection keeps its compressor and decompressor
//! between messages: better ratios, at most [`MEMORY_PER_CONNECTION`] bytes;
//! `no_context_takeover` resets them after every message (the ratio of one message
//! alone, the same memory).

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::frame::Role;

/// The most bytes a connection with permessage-deflate holds for its compressor and
/// decompressor, with 15-bit windows: measured at 424 305 bytes with zlib-rs 0.6
/// (`tests/websocket_deflate_memory.rs` counts them with a counting allocator and holds
/// this bound), against under 10 KB for a whole connection without it. A room of 10 000
/// compressed members holds about 4 GiB for compression alone, which is why it is off
/// by default (as in Tornado).
pub const MEMORY_PER_CONNECTION: usize = 440 * 1024;

/// permessage-deflate settings (RFC 7692): off unless set in
/// [`WebSocketOptions::compression`](super::WebSocketOptions::compression).
///
/// # Examples
///
/// ```
/// use ioloop::websocket::{DeflateOptions, WebSocketOptions};
/// let options = WebSocketOptions {
///     compression: Some(DeflateOptions { no_context_takeover: true, ..Default::default() }),
///     ..WebSocketOptions::default()
/// };
/// # let _ = options;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeflateOptions {
    /// The compression level, 0–9 (default 6, Tornado's).
    pub level: u32,
    /// Reset this side's compressor after every message and ask the peer to do the same
    /// (less ratio, no dependence between messages); default off (contexts are kept).
    pub no_context_takeover: bool,
    /// Messages shorter than this are sent uncompressed (default 64 bytes).
    pub min_size: usize,
}

impl Default for DeflateOptions {
    fn default() -> DeflateOptions {
        DeflateOptions {
            level: 6,
            no_context_takeover: false,
            min_size: 64,
        }
    }
}

/// What the handshake agreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Agreed {
    /// The server resets its compressor after each message.
    pub(super) server_no_context_takeover: bool,
    /// The client resets its compressor after each message.
    pub(super) client_no_context_takeover: bool,
    /// The server's compressor window, in bits (9–15).
    pub(super) server_max_window_bits: u8,
    /// The client's compressor window, in bits (9–15).
    pub(super) client_max_window_bits: u8,
}

/// A window size parameter's value: 9–15 when `ours` (a window this side must keep; zlib
/// has no 8-bit raw window), 8–15 for the peer's.
fn window_bits(value: Option<&str>, ours: bool) -> Option<u8> {
    let bits: u8 = value?.parse().ok()?;
    let lowest = if ours { 9 } else { 8 };
    (lowest..=15).contains(&bits).then_some(bits)
}

const NAME: &str = "permessage-deflate";

/// The parameters of one extension offer or answer: `(name, value)` pairs.
fn params(element: &str) -> Option<Vec<(String, Option<String>)>> {
    let mut parts = element.split(';').map(str::trim);
    if !parts.next()?.eq_ignore_ascii_case(NAME) {
        return None;
    }
    Some(
        parts
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((name, value)) => (
                    name.trim().to_ascii_lowercase(),
                    Some(value.trim().trim_matches('"').to_owned()),
                ),
                None => (p.to_ascii_lowercase(), None),
            })
            .collect(),
    )
}

/// The server's choice among the client's offers (`Sec-WebSocket-Extensions` values):
/// the first permessage-deflate offer it can honour, and the answer to send.
pub(crate) fn accept_offer<'a>(
    offers: impl Iterator<Item = &'a str>,
    options: &DeflateOptions,
) -> Option<(Agreed, String)> {
    'offers: for element in offers.flat_map(|value| value.split(',')) {
        let Some(params) = params(element) else {
            continue;
        };
        let mut agreed = Agreed {
            server_no_context_takeover: options.no_context_takeover,
            client_no_context_takeover: options.no_context_takeover,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        };
        let mut seen = Vec::new();
        for (name, value) in &params {
            if seen.contains(name) {
                continue 'offers; // a parameter twice: an invalid offer
            }
            seen.push(name.clone());
            match (name.as_str(), value.as_deref()) {
                ("server_no_context_takeover", None) => agreed.server_no_context_takeover = true,
                ("client_no_context_takeover", None) => agreed.client_no_context_takeover = true,
                // A limit on our window: kept, or the offer declined.
                ("server_max_window_bits", value) => match window_bits(value, true) {
                    Some(bits) => agreed.server_max_window_bits = bits,
                    None => continue 'offers,
                },
                // The client can take a limit on its window, or names its own; we
                // inflate with the full window, so neither matters.
                ("client_max_window_bits", None) => {}
                ("client_max_window_bits", value) if window_bits(value, false).is_some() => {}
                _ => continue 'offers,
            }
        }
        let mut answer = NAME.to_owned();
        if agreed.server_no_context_takeover {
            answer.push_str("; server_no_context_takeover");
        }
        if agreed.client_no_context_takeover {
            answer.push_str("; client_no_context_takeover");
        }
        // An offer that names the server's window is accepted only by naming it back
        // (RFC 7692 §7.1.2.1).
        if seen.iter().any(|name| name == "server_max_window_bits") {
            answer.push_str(&format!(
                "; server_max_window_bits={}",
                agreed.server_max_window_bits
            ));
        }
        return Some((agreed, answer));
    }
    None
}

/// The client's offer.
pub(crate) fn offer(options: &DeflateOptions) -> String {
    let mut offer = format!("{NAME}; client_max_window_bits");
    if options.no_context_takeover {
        offer.push_str("; client_no_context_takeover; server_no_context_takeover");
    }
    offer
}

/// The client's check of the server's answer to its offer.
///
/// # Errors
///
/// An answer the offer did not allow: another extension, an unknown or repeated
/// parameter, a window limit on the server other than 15 bits.
pub(crate) fn accept_answer(answer: &str, options: &DeflateOptions) -> Result<Agreed, String> {
    let params = params(answer).ok_or_else(|| format!("unexpected extension {answer:?}"))?;
    let mut agreed = Agreed {
        server_no_context_takeover: false,
        client_no_context_takeover: options.no_context_takeover,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    let mut seen = Vec::new();
    for (name, value) in &params {
        if seen.contains(name) {
            return Err(format!("parameter {name} twice"));
        }
        seen.push(name.clone());
        let value = value.as_deref();
        match name.as_str() {
            "server_no_context_takeover" if value.is_none() => {
                agreed.server_no_context_takeover = true;
            }
            "client_no_context_takeover" if value.is_none() => {
                agreed.client_no_context_takeover = true;
            }
            // The server's window: we inflate with the full one.
            "server_max_window_bits" if window_bits(value, false).is_some() => {}
            // A limit on our window (we offered to take one).
            "client_max_window_bits" => match window_bits(value, true) {
                Some(bits) => agreed.client_max_window_bits = bits,
                None => return Err(format!("client_max_window_bits {value:?} not acceptable")),
            },
            _ => return Err(format!("parameter {name} not acceptable")),
        }
    }
    Ok(agreed)
}

/// Why a compressed message could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InflateError {
    /// Not a valid deflate stream (1007).
    Corrupt,
    /// It inflates to more than the limit (1009).
    TooBig,
}

/// One connection's compressor and decompressor.
pub(crate) struct Deflate {
    compress: Compress,
    decompress: Decompress,
    /// Reset the compressor after each message.
    reset_compress: bool,
    /// Reset the decompressor after each message.
    reset_decompress: bool,
    pub(super) min_size: usize,
}

/// The tail a sync flush ends with, left off the wire.
const TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

impl Deflate {
    pub(crate) fn new(agreed: Agreed, role: Role, options: &DeflateOptions) -> Deflate {
        let (ours, theirs, window) = match role {
            Role::Server => (
                agreed.server_no_context_takeover,
                agreed.client_no_context_takeover,
                agreed.server_max_window_bits,
            ),
            Role::Client => (
                agreed.client_no_context_takeover,
                agreed.server_no_context_takeover,
                agreed.client_max_window_bits,
            ),
        };
        let level = Compression::new(options.level.min(9));
        Deflate {
            compress: Compress::new_with_window_bits(level, false, window),
            decompress: Decompress::new_with_window_bits(false, 15),
            reset_compress: ours,
            reset_decompress: theirs,
            min_size: options.min_size,
        }
    }

    /// Appends the compressed form of `data` (without the sync flush's tail) to `out`.
    pub(crate) fn compress(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        let mut at = 0;
        loop {
            out.reserve(data.len() / 2 + 64);
            let before = self.compress.total_in();
            self.compress
                .compress_vec(&data[at..], out, FlushCompress::Sync)
                .expect("deflate of in-memory bytes cannot fail");
            at += (self.compress.total_in() - before) as usize;
            // Done once everything is in and the flush fitted in the room given.
            if at == data.len() && out.len() < out.capacity() {
                break;
            }
        }
        if out[start..].ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if out.len() == start {
            // A sync flush with no new input writes nothing, and an empty payload would
            // make the receiver's appended tail start a stored block that swallows the
            // next message. RFC 7692 §7.2.3.6: an empty message is the single octet 0x00.
            out.push(0x00);
        }
        if self.reset_compress {
            self.compress.reset();
        }
    }

    /// Inflates a whole message's payload, refusing to produce more than `limit` bytes
    /// (it stops there, so a small bomb costs at most the limit).
    pub(crate) fn decompress(
        &mut self,
        data: &[u8],
        limit: usize,
    ) -> Result<Vec<u8>, InflateError> {
        if data.is_empty() {
            // An empty payload (a peer that did not send RFC 7692 §7.2.3.6's 0x00) is an
            // empty message; feeding the inflater the tail alone would leave it inside a
            // stored block that swallows the next message.
            return Ok(Vec::new());
        }
        // At most one byte past the limit is ever produced (that byte proves it crossed).
        let cap = limit.saturating_add(1);
        let mut out = Vec::with_capacity(data.len().saturating_mul(3).max(64).min(cap));
        for (part, ours) in [(data, false), (&TAIL[..], true)] {
            let mut at = 0;
            loop {
                if out.len() == out.capacity() {
                    if out.len() > limit {
                        return Err(InflateError::TooBig);
                    }
                    let room = out.len().clamp(4096, 1 << 20).min(cap - out.len());
                    out.reserve_exact(room);
                }
                let (in_before, out_before) = (self.decompress.total_in(), out.len());
                let status = self
                    .decompress
                    .decompress_vec(&part[at..], &mut out, FlushDecompress::Sync)
                    .map_err(|_| InflateError::Corrupt)?;
                at += (self.decompress.total_in() - in_before) as usize;
                if out.len() > limit {
                    return Err(InflateError::TooBig);
                }
                if status == Status::StreamEnd {
                    // A block with BFINAL set ends the stream (RFC 7692 §7.2.3.4): the
                    // next message starts a new one. Only the tail appended here may
                    // follow it; the peer's bytes after it belong to no deflate stream.
                    self.decompress.reset(false);
                    if !ours && at < part.len() {
                        return Err(InflateError::Corrupt);
                    }
                    return Ok(out);
                }
                if at == part.len() && out.len() < out.capacity() {
                    break;
                }
                let stuck = self.decompress.total_in() == in_before && out.len() == out_before;
                if stuck && out.len() < out.capacity() {
                    return Err(InflateError::Corrupt);
                }
            }
        }
        if self.reset_decompress {
            self.decompress.reset(false);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(no_context_takeover: bool) -> (Deflate, Deflate) {
        let options = DeflateOptions {
            no_context_takeover,
            ..DeflateOptions::default()
        };
        let agreed = Agreed {
            server_no_context_takeover: no_context_takeover,
            client_no_context_takeover: no_context_takeover,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        };
        (
            Deflate::new(agreed, Role::Server, &options),
            Deflate::new(agreed, Role::Client, &options),
        )
    }

    #[test]
    fn messages_round_trip_with_and_without_context_takeover() {
        for takeover_off in [false, true] {
            let (mut server, mut client) = pair(takeover_off);
            let mut sizes = Vec::new();
            for round in 0..3 {
                // 1 000 varied words: little to gain within one message, much from the
                // previous one.
                let words: String = (0u32..1000)
                    .map(|i| format!("w{} ", i.wrapping_mul(2_654_435_761) % 9973))
                    .collect();
                let message = format!("{round}: {words}");
                let mut wire = Vec::new();
                server.compress(message.as_bytes(), &mut wire);
                assert!(!wire.ends_with(&TAIL));
                sizes.push(wire.len());
                let back = client.decompress(&wire, 1 << 20).unwrap();
                assert_eq!(back, message.as_bytes());
            }
            // Reset contexts compress each message alone (the same size for the same
            // length); kept ones make the repeats cheaper.
            if takeover_off {
                assert!(sizes[1].abs_diff(sizes[0]) < 8, "{sizes:?}");
            } else {
                assert!(sizes[1] < sizes[0] / 4, "{sizes:?}");
            }
        }
    }

    #[test]
    fn a_smaller_window_is_kept_and_still_read() {
        let options = DeflateOptions::default();
        let agreed = Agreed {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 9,
            client_max_window_bits: 15,
        };
        let mut server = Deflate::new(agreed, Role::Server, &options);
        let mut client = Deflate::new(agreed, Role::Client, &options);
        let text: Vec<u8> = (0u32..20_000)
            .map(|i| b"abcdefghij"[(i * 7 % 10) as usize])
            .collect();
        let mut wire = Vec::new();
        server.compress(&text, &mut wire);
        assert_eq!(client.decompress(&wire, 1 << 20).unwrap(), text);
    }

    #[test]
    fn the_rfc_example_inflates() {
        // RFC 7692 §7.2.3.1: "Hello" compressed.
        let (_, mut client) = pair(false);
        let wire = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(client.decompress(&wire, 100).unwrap(), b"Hello");
    }

    #[test]
    fn tiny_and_unlimited_limits_do_not_panic() {
        let (mut server, mut client) = pair(false);
        let mut wire = Vec::new();
        server.compress(&[b'x'; 100], &mut wire);
        assert_eq!(client.decompress(&wire, 10), Err(InflateError::TooBig));
        let (mut server, mut client) = pair(false);
        let mut wire = Vec::new();
        server.compress(b"hello", &mut wire);
        assert_eq!(client.decompress(&wire, usize::MAX).unwrap(), b"hello");
    }

    #[test]
    fn a_bomb_stops_at_the_limit_and_garbage_is_corrupt() {
        let (mut server, mut client) = pair(false);
        let mut wire = Vec::new();
        server.compress(&vec![0u8; 4 << 20], &mut wire);
        assert!(wire.len() < 16 * 1024);
        assert_eq!(client.decompress(&wire, 1 << 20), Err(InflateError::TooBig));
        let (_, mut client) = pair(false);
        assert_eq!(
            client.decompress(&[0xFF; 32], 1 << 20),
            Err(InflateError::Corrupt)
        );
    }

    /// `data` deflated as one stream ended by a block with BFINAL set (RFC 7692 §7.2.3.4
    /// lets a sender end a message so).
    fn deflate_final(data: &[u8]) -> Vec<u8> {
        let mut compress = Compress::new(Compression::default(), false);
        let mut out = Vec::with_capacity(data.len() + 64);
        let status = compress
            .compress_vec(data, &mut out, FlushCompress::Finish)
            .unwrap();
        assert_eq!(status, Status::StreamEnd);
        out
    }

    #[test]
    fn the_message_after_an_empty_compressed_message_inflates() {
        // Found by the websocket_deflate fuzz target: an empty message compressed with a
        // kept context was an empty payload, and the receiver's appended tail then began
        // a stored block that swallowed the next message (close 1007).
        for takeover_off in [false, true] {
            let (mut server, mut client) = pair(takeover_off);
            let mut wire = Vec::new();
            for message in [&b"before"[..], b"", b"", b"after the empty ones"] {
                wire.clear();
                server.compress(message, &mut wire);
                assert!(!wire.is_empty(), "RFC 7692 §7.2.3.6: at least 0x00");
                assert_eq!(client.decompress(&wire, 1 << 20).unwrap(), message);
            }
        }
        // A peer's empty payload is an empty message, and the next one still inflates.
        let (mut server, mut client) = pair(false);
        assert_eq!(client.decompress(&[], 1 << 20).unwrap(), b"");
        let mut wire = Vec::new();
        server.compress(b"next", &mut wire);
        assert_eq!(client.decompress(&wire, 1 << 20).unwrap(), b"next");
    }

    #[test]
    fn bytes_after_the_final_block_are_corrupt() {
        let (_, mut client) = pair(false);
        let ended = deflate_final(b"Hello, final block");
        // A message ended by a final block inflates (and the next starts a new stream).
        assert_eq!(
            client.decompress(&ended, 1 << 20).unwrap(),
            b"Hello, final block"
        );
        assert_eq!(
            client.decompress(&ended, 1 << 20).unwrap(),
            b"Hello, final block"
        );
        // Junk after it, or a second stream after it, is not one deflate stream.
        for junk in [&[0xde, 0xad, 0xbe, 0xef][..], &[0x00], &ended[..]] {
            let (_, mut client) = pair(false);
            let wire = [&ended[..], junk].concat();
            assert_eq!(
                client.decompress(&wire, 1 << 20),
                Err(InflateError::Corrupt),
                "junk {junk:?}"
            );
        }
    }

    #[test]
    fn offers_are_accepted_only_when_they_can_be_honoured() {
        let options = DeflateOptions::default();
        let (agreed, answer) = accept_offer(
            ["permessage-deflate; client_max_window_bits"].into_iter(),
            &options,
        )
        .unwrap();
        assert_eq!(answer, "permessage-deflate");
        assert!(!agreed.server_no_context_takeover);
        let (agreed, answer) = accept_offer(
            ["permessage-deflate; server_max_window_bits=8, permessage-deflate; server_no_context_takeover"]
                .into_iter(),
            &options,
        )
        .unwrap();
        assert_eq!(answer, "permessage-deflate; server_no_context_takeover");
        assert!(agreed.server_no_context_takeover);
        let (agreed, answer) = accept_offer(
            ["permessage-deflate; server_max_window_bits=10; client_max_window_bits"].into_iter(),
            &options,
        )
        .unwrap();
        assert_eq!(answer, "permessage-deflate; server_max_window_bits=10");
        assert_eq!(agreed.server_max_window_bits, 10);
        let (_, answer) = accept_offer(
            ["permessage-deflate; server_max_window_bits=15"].into_iter(),
            &options,
        )
        .unwrap();
        assert_eq!(answer, "permessage-deflate; server_max_window_bits=15");
        assert!(accept_offer(["x-webkit-deflate-frame"].into_iter(), &options).is_none());
        assert!(accept_offer(["permessage-deflate; unknown"].into_iter(), &options).is_none());
        assert!(accept_offer(
            ["permessage-deflate; server_no_context_takeover; server_no_context_takeover"]
                .into_iter(),
            &options
        )
        .is_none());
        // The client's side.
        assert!(
            accept_answer("permessage-deflate; server_no_context_takeover", &options)
                .unwrap()
                .server_no_context_takeover
        );
        let limited = accept_answer("permessage-deflate; client_max_window_bits=9", &options);
        assert_eq!(limited.unwrap().client_max_window_bits, 9);
        assert!(accept_answer("permessage-deflate; client_max_window_bits=8", &options).is_err());
        assert!(accept_answer("other", &options).is_err());
    }
}
