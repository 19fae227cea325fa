//! Inputs the fuzz targets in `fuzz/` once failed on, as plain tests (feature `fuzzing`,
//! which reaches the sans-IO internals through `ioloop::fuzzing`). Each names its target
//! and the finding; `fuzz/regressions/TARGET/` holds the raw inputs, which `run-one.sh`
//! and CI replay before fuzzing.

#![cfg(feature = "fuzzing")]

use ioloop::fuzzing::redis::{decode_replies, ProtocolError, Value};
use ioloop::fuzzing::websocket::Deflate;
use ioloop::http::Request;

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

/// `resp`, fixed in `src/redis/resp.rs` and `Cargo.toml`: redis-protocol collects a RESP3
/// map or set into a std `HashMap` unless its `index-map` feature is on, so the order of
/// `Value::Map` and `Value::Set` changed from one decode of the same bytes to the next
/// (the target saw the reply read in pieces differ from the reply read at once); with
/// `index-map` the crate fills a map from its last pair, which the client now reverses.
/// Input: `fuzz/regressions/resp/map-and-set-order`.
#[test]
fn a_resp3_map_and_set_keep_the_order_received_on_every_read() {
    let reply = b"%2\r\n+server\r\n$5\r\nredis\r\n+proto\r\n:3\r\n~2\r\n:1\r\n:2\r\n";
    let expected = vec![
        Value::Map(vec![
            (
                Value::Status("server".into()),
                Value::Bulk(b"redis".to_vec()),
            ),
            (Value::Status("proto".into()), Value::Int(3)),
        ]),
        Value::Set(vec![Value::Int(1), Value::Int(2)]),
    ];
    for _ in 0..20 {
        let (values, used, error) = decode_replies(reply, 1 << 20, true);
        assert_eq!((values, used, error), (expected.clone(), reply.len(), None));
    }
}

/// `url_args_cookies`, fixed in the target: its model of `Request::cookie` predated the
/// unquoting of issue 26 (a value in double quotes reads without them, as Tornado's
/// `get_cookie`), so a value of four double quotes, read back as two, failed the
/// round trip. Only the outer pair goes; the quotes inside stay. Input:
/// `fuzz/regressions/url_args_cookies/quoted-cookie-value`.
#[test]
fn a_quoted_cookie_value_loses_its_outer_quotes_only() {
    let head = b"GET / HTTP/1.1\r\nHost: x\r\nCookie: a=1; m=\"\"\"\"; q=\"\"; o=\"; z=2\r\n\r\n";
    let request = Request::parse(head).unwrap();
    assert_eq!(request.cookie("m").as_deref(), Some("\"\""));
    assert_eq!(request.cookie("q").as_deref(), Some(""));
    assert_eq!(request.cookie("o").as_deref(), Some("\""));
}

/// `resp`, fixed in `src/redis/resp.rs`: a bulk length of 19 digits over `i64::MAX`
/// (`$9223372036854775808`) overflowed the length parser, a panic in a debug build (in a
/// release build it wrapped to a negative length and was refused). It is now a malformed
/// length. Input: `fuzz/regressions/resp/length-over-i64-max`.
#[test]
fn a_resp_length_over_i64_max_is_malformed() {
    for reply in [
        &b"$9223372036854775808\r\n"[..],
        b"*99999999999999999999\r\n",
    ] {
        for resp3 in [false, true] {
            let (values, used, error) = decode_replies(reply, 512 << 20, resp3);
            assert_eq!(
                (values, used, error),
                (vec![], 0, Some(ProtocolError::BadLength))
            );
        }
    }
}
