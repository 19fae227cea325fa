//! The server's request head and body decoding (sans-IO).
//!
//! Properties, for any bytes and any split of them:
//! - nothing panics, and every range the parser hands out lies inside its input;
//! - the head's end is found at the same place whether the bytes come at once or in
//!   pieces (the scan resumes where it left off);
//! - `Request::parse` agrees with the parser, and its accessors return parts of the
//!   target;
//! - a body decodes to the same bytes, the same end and the same verdict whether it
//!   comes in one piece or split at any points; no call consumes more than its input.

#![no_main]

use arbitrary::Arbitrary;
use ioloop::fuzzing::http::{self, BodyDecoder, Framing};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// Where the bytes are split on their way in (offsets, taken modulo the length).
    splits: Vec<u16>,
    max_headers: u8,
    bytes: &'a [u8],
}

/// The head's end found over `pieces` arriving one after another.
fn head_end_in_pieces(bytes: &[u8], cuts: &[usize]) -> Option<usize> {
    let mut scanned = 0;
    for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
        let seen = &bytes[..cut];
        let before = scanned;
        if let Some(end) = http::find_head_end(seen, &mut scanned) {
            assert!(end <= seen.len(), "the head ends past the input");
            return Some(end);
        }
        assert!(scanned <= seen.len() && scanned >= before.min(seen.len()));
    }
    None
}

/// Decodes a body from `bytes`, delivered up to each cut in turn as a stream's buffer
/// would hold it (unconsumed bytes stay at the front). Returns the data, the bytes used,
/// whether it ended, and whether it was refused.
fn decode(framing: Framing, bytes: &[u8], cuts: &[usize]) -> (Vec<u8>, usize, bool, Option<()>) {
    let Some(mut decoder) = BodyDecoder::new(framing) else {
        return (Vec::new(), 0, true, None);
    };
    let mut data = Vec::new();
    let mut used = 0;
    for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
        loop {
            let input = &bytes[used..cut.max(used)];
            match decoder.decode(input, |d| data.extend_from_slice(d)) {
                Ok((consumed, done)) => {
                    assert!(consumed <= input.len(), "consumed past its input");
                    used += consumed;
                    if done {
                        return (data, used, true, None);
                    }
                    if consumed == 0 {
                        break;
                    }
                }
                // Refused: the connection ends, so what came before does not matter.
                Err(_) => return (Vec::new(), 0, false, Some(())),
            }
        }
    }
    (data, used, false, None)
}

fn cuts(splits: &[u16], len: usize) -> Vec<usize> {
    let mut cuts: Vec<usize> = splits
        .iter()
        .map(|&s| if len == 0 { 0 } else { s as usize % (len + 1) })
        .collect();
    cuts.sort_unstable();
    cuts
}

fuzz_target!(|input: Input<'_>| {
    let bytes = input.bytes;
    let cuts = cuts(&input.splits, bytes.len());

    let skip = http::leading_empty_lines(bytes);
    assert!(skip <= bytes.len());
    let bytes = &bytes[skip..];
    let cuts: Vec<usize> = cuts.iter().map(|c| c.saturating_sub(skip)).collect();

    let mut scanned = 0;
    let whole = http::find_head_end(bytes, &mut scanned);
    assert_eq!(
        whole,
        head_end_in_pieces(bytes, &cuts),
        "split scan differs"
    );
    // Every byte split, for short inputs.
    if bytes.len() <= 64 {
        for at in 0..=bytes.len() {
            assert_eq!(whole, head_end_in_pieces(bytes, &[at]), "split at {at}");
        }
    }
    let Some(head_len) = whole else { return };
    let (head, rest) = bytes.split_at(head_len);

    let max_headers = usize::from(input.max_headers).max(1);
    let parsed = http::parse_head(head, 65536, max_headers);
    let request = ioloop::http::Request::parse(head);
    let parts = match parsed {
        Ok(parts) => parts,
        Err((status, _)) => {
            assert!(status == 400 || status == 431, "status {status}");
            if max_headers >= 100 {
                assert!(
                    request.is_err(),
                    "Request::parse accepts what the parser refuses"
                );
            }
            return;
        }
    };
    for range in [&parts.method, &parts.target]
        .into_iter()
        .chain(parts.headers.iter().flat_map(|(n, v)| [n, v]))
    {
        assert!(range.start <= range.end && range.end <= head.len());
    }
    if max_headers <= 100 {
        let request = request.expect("Request::parse refuses what the parser accepts");
        assert_eq!(request.method().as_bytes(), &head[parts.method.clone()]);
        assert_eq!(request.target().as_bytes(), &head[parts.target.clone()]);
        let target = request.target();
        let path = request.path();
        assert!(path == "/" || target.contains(path));
        assert!(target.contains(request.query()));
        let _ = request.host();
        let _ = request.header("content-length");
        let _ = request.has_token("connection", "close");
    }

    let fields: Vec<(&[u8], &[u8])> = parts
        .headers
        .iter()
        .map(|(n, v)| (&head[n.clone()], &head[v.clone()]))
        .collect();
    let Ok(framing) = http::request_framing(&fields) else {
        return;
    };
    let body_cuts: Vec<usize> = cuts
        .iter()
        .map(|c| c.saturating_sub(head_len).min(rest.len()))
        .collect();
    let one = decode(framing, rest, &[]);
    let split = decode(framing, rest, &body_cuts);
    assert_eq!(one, split, "a split body decodes differently");
    if rest.len() <= 64 {
        for at in 0..=rest.len() {
            assert_eq!(one, decode(framing, rest, &[at]), "split at {at}");
        }
    }
    if let (Framing::Length(n), None) = (framing, &one.3) {
        assert_eq!(one.0.len() as u64, n.min(rest.len() as u64));
    }
    assert!(one.0.len() <= one.1);
});
