//! The HTTP client's response decoding: the head (`ResponseHead::parse`), then the body
//! as it comes off a stream in pieces (length, chunked, until close; gunzipped when
//! `Content-Encoding: gzip`), held to the request's `max_body_size`.
//!
//! Properties:
//! - nothing panics;
//! - the body delivered is never larger than the limit;
//! - the result (body, end, verdict) is the same whatever pieces the bytes come in;
//! - an uncompressed length-delimited body is the bytes after the head, cut at its
//!   length.

#![no_main]

use arbitrary::Arbitrary;
use ioloop::fuzzing::http::client_body;
use ioloop::http::ResponseHead;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    head_request: bool,
    decompress: bool,
    limit: u16,
    splits: Vec<u16>,
    /// Wrap the body in gzip (so the decompressor sees valid streams, not only noise).
    gzip_body: bool,
    head: &'a [u8],
    body: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    let Ok(head) = ResponseHead::parse(input.head) else {
        return;
    };
    let _ = (
        head.status(),
        head.reason(),
        head.version(),
        head.header("content-length"),
    );
    let _ = head.has_token("connection", "close");
    let body: Vec<u8> = if input.gzip_body {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(input.body).unwrap();
        gz.finish().unwrap()
    } else {
        input.body.to_vec()
    };
    let method = if input.head_request { "HEAD" } else { "GET" };
    let limit = u64::from(input.limit);
    let mut cuts: Vec<usize> = input
        .splits
        .iter()
        .map(|&s| s as usize % (body.len() + 1))
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut pieces = Vec::new();
    let mut at = 0;
    for cut in cuts.into_iter().chain(std::iter::once(body.len())) {
        pieces.push(&body[at..cut]);
        at = cut;
    }
    let whole = client_body(input.head, method, input.decompress, limit, &[&body]);
    let split = client_body(input.head, method, input.decompress, limit, &pieces);
    if let Ok(got) = &whole {
        assert!(got.body.len() as u64 <= limit, "over the limit");
    }
    match (&whole, &split) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "pieces change the body"),
        (Err(_), Err(_)) => {}
        _ => panic!("pieces change the verdict: {whole:?} vs {split:?}"),
    }
    // An uncompressed Content-Length body.
    let gzipped = head.header("content-encoding").is_some_and(|c| {
        c.trim().eq_ignore_ascii_case("gzip") || c.trim().eq_ignore_ascii_case("x-gzip")
    });
    if let (Ok(got), Some(Ok(n)), false, false) = (
        &whole,
        head.header("content-length")
            .map(|v| v.trim().parse::<usize>()),
        input.head_request,
        input.decompress && gzipped,
    ) {
        let no_body = (100..200).contains(&head.status()) || matches!(head.status(), 204 | 304);
        let chunked = head.header("transfer-encoding").is_some();
        if !no_body && !chunked {
            assert_eq!(got.body, body[..n.min(body.len())]);
            assert_eq!(got.done, body.len() >= n);
        }
    }
});
