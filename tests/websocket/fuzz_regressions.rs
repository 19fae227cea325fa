//! Inputs the fuzz targets in `fuzz/` once failed on, as plain tests: the WebSocket
//! layer's (feature `fuzzing`, which reaches the sans-IO internals through
//! `ioloop::fuzzing`; the other layers' are in `tests/http/fuzz_regressions.rs` and
//! `tests/redis/fuzz_regressions.rs`). Each names its target and the finding;
//! `fuzz/regressions/TARGET/` holds the raw inputs, which `run-one.sh` and CI replay
//! before fuzzing.

#![cfg(feature = "fuzzing")]

use ioloop::fuzzing::websocket::Deflate;

/// `websocket_deflate`, fixed in `src/websocket/deflate.rs`: an empty message compressed with a kept context comes out
/// as an empty payload (zlib writes nothing for a second sync flush with no input), but
/// a receiver appends `00 00 ff ff` to every compressed payload (RFC 7692 §7.2.2), which
/// after an empty payload starts a stored block that the next message's bytes complete
/// with a wrong length: the next message fails to inflate ("invalid stored block
/// lengths", close code 1007). RFC 7692 §7.2.3.6 gives the single octet `0x00` as the
/// payload of an empty compressed message, which `compress` now sends.
#[test]
fn the_message_after_an_empty_compressed_message_inflates() {
    let mut pair = Deflate::new("permessage-deflate; client_max_window_bits", false).unwrap();
    for message in [&[0xF3u8][..], &[], &[0xF3]] {
        let compressed = pair.compress(message);
        assert_eq!(
            pair.decompress(&compressed, 1024).as_deref(),
            Ok(message),
            "{message:02x?} compressed to {compressed:02x?}"
        );
    }
}
