//! Inputs the fuzz targets in `fuzz/` once failed on, as plain tests: the HTTP layer's
//! (feature `fuzzing`, which reaches the sans-IO internals through `ioloop::fuzzing`;
//! the other layers' are in `tests/websocket/fuzz_regressions.rs` and
//! `tests/redis/fuzz_regressions.rs`). Each names its target and the finding;
//! `fuzz/regressions/TARGET/` holds the raw inputs, which `run-one.sh` and CI replay
//! before fuzzing.

#![cfg(feature = "fuzzing")]

use ioloop::http::Request;

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
