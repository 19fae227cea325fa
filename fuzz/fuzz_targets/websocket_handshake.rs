//! The WebSocket opening handshake, both sides, and the permessage-deflate parameters.
//!
//! Properties:
//! - nothing panics;
//! - a request the server accepts is a GET-able HTTP/1.1 upgrade with exactly one valid
//!   key, and its 101 carries `Sec-WebSocket-Accept` for that key; a chosen subprotocol is
//!   one the route speaks; the extension answer is one the client side accepts;
//! - a server answer the client accepts is a 101 whose accept value matches the key.

#![no_main]

use arbitrary::Arbitrary;
use ioloop::fuzzing::websocket::{
    accept_answer, accept_key, accept_offer, check_request, check_response,
};
use ioloop::http::Request;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    same_origin: bool,
    compression: bool,
    no_context_takeover: bool,
    subprotocols: Vec<String>,
    offers: Vec<&'a str>,
    key: &'a str,
    request: &'a [u8],
    response: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    if let Ok(request) = Request::parse(input.request) {
        match check_request(
            &request,
            input.same_origin,
            &input.subprotocols,
            input.compression,
        ) {
            Ok(fields) => {
                assert_eq!(request.version(), ioloop::http::Version::Http11);
                let key = request.header("sec-websocket-key").unwrap().trim();
                let field = |name: &str| {
                    fields
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.as_str())
                };
                assert_eq!(
                    field("sec-websocket-accept"),
                    Some(accept_key(key).as_str())
                );
                if let Some(chosen) = field("sec-websocket-protocol") {
                    assert!(input.subprotocols.iter().any(|p| p == chosen));
                }
                if let Some(answer) = field("sec-websocket-extensions") {
                    assert!(input.compression);
                    accept_answer(answer).expect("the client refuses the server's own answer");
                }
            }
            Err(status) => assert!(matches!(status, 400 | 403 | 426), "status {status}"),
        }
    }
    if let Ok(subprotocol) = check_response(
        input.response,
        input.key,
        &input.subprotocols,
        input.compression,
    ) {
        let text = String::from_utf8_lossy(input.response);
        assert!(text.starts_with("HTTP/1.1 101"), "accepted {text:?}");
        assert!(text.contains(&accept_key(input.key)));
        if let Some(p) = subprotocol {
            assert!(input.subprotocols.contains(&p));
        }
    }
    if let Some(answer) = accept_offer(&input.offers, input.no_context_takeover) {
        assert!(answer.starts_with("permessage-deflate"));
        accept_answer(&answer).expect("the client refuses the server's own answer");
    }
    let _ = accept_answer(input.key);
});
