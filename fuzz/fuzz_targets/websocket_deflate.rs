//! permessage-deflate: negotiation from an arbitrary offer, inflation of arbitrary bytes
//! under a limit, and round trips over a kept context.
//!
//! Properties:
//! - nothing panics; inflation never returns more than the limit, and answers `TooBig`
//!   rather than growing past it;
//! - what the client's compressor makes, the server's decompressor inflates back, message
//!   after message (context takeover or not), also after a corrupt or oversized message
//!   was refused on a fresh pair.

#![no_main]

use arbitrary::Arbitrary;
use ioloop::fuzzing::websocket::{Deflate, InflateError};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    offer: &'a str,
    no_context_takeover: bool,
    limit: u16,
    noise: &'a [u8],
    messages: Vec<&'a [u8]>,
}

fuzz_target!(|input: Input<'_>| {
    let offer = if input.offer.starts_with("permessage-deflate") {
        input.offer
    } else {
        "permessage-deflate; client_max_window_bits"
    };
    let Some(mut pair) = Deflate::new(offer, input.no_context_takeover) else {
        return;
    };
    let limit = usize::from(input.limit);
    match pair.decompress(input.noise, limit) {
        Ok(out) => assert!(out.len() <= limit, "inflated past the limit"),
        Err(InflateError::Corrupt | InflateError::TooBig) => {}
    }
    // A fresh pair for the round trips: the noise may have left the other's context
    // anywhere.
    let Some(mut pair) = Deflate::new(offer, input.no_context_takeover) else {
        panic!("the same offer declined the second time");
    };
    // Empty messages included: each is the single octet 0x00 (RFC 7692 §7.2.3.6) and
    // leaves the next one intact (the first finding, fuzz/README.md).
    for message in input.messages.iter().take(16) {
        let compressed = pair.compress(message);
        let back = pair
            .decompress(&compressed, message.len())
            .expect("a message the compressor made");
        assert_eq!(&back, message);
    }
    // Last (a refusal leaves the kept context behind): one byte under its length is too
    // big.
    if let Some(message) = input.messages.first().filter(|m| !m.is_empty()) {
        let compressed = pair.compress(message);
        assert_eq!(
            pair.decompress(&compressed, message.len() - 1),
            Err(InflateError::TooBig),
            "one byte under its length is not refused"
        );
    }
});
