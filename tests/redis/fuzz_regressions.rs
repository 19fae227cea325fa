//! Inputs the fuzz targets in `fuzz/` once failed on, as plain tests: the Redis layer's
//! (feature `fuzzing`, which reaches the sans-IO internals through `ioloop::fuzzing`;
//! the other layers' are in `tests/http/fuzz_regressions.rs` and
//! `tests/websocket/fuzz_regressions.rs`). Each names its target and the finding;
//! `fuzz/regressions/TARGET/` holds the raw inputs, which `run-one.sh` and CI replay
//! before fuzzing.

#![cfg(feature = "fuzzing")]

use ioloop::fuzzing::redis::{decode_replies, ProtocolError, Value};

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
