//! The WebSocket frame decoder and the text checks, as a server reads a client's frames.
//!
//! Frames are read with `read_header` from the front of a buffer, unmasked in random
//! pieces (`apply_mask` with the piece's offset), and assembled into messages as the
//! protocol says (a data frame, then continuations; control frames in between).
//!
//! Properties:
//! - nothing panics; a header never claims more bytes than it has (`header_len` is at
//!   most 14 and within the buffer) and a header read from a prefix is `None` or the same
//!   header;
//! - unmasking in pieces equals unmasking at once, and twice is the identity;
//! - the incremental UTF-8 check, run as each frame of a text message arrives, accepts
//!   exactly the messages `std::str::from_utf8` accepts once assembled, and never fails
//!   a message that is a valid prefix so far;
//! - a close payload is accepted only with a valid code and a UTF-8 reason.

#![no_main]

use arbitrary::Arbitrary;
use ioloop::fuzzing::websocket::{apply_mask, check_utf8, parse_close, read_header};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    server: bool,
    compression: bool,
    pieces: Vec<u8>,
    bytes: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    let mut buf = input.bytes;
    let mut message: Option<(u8, Vec<u8>, usize)> = None;
    let mut pieces = input.pieces.iter().copied().cycle();
    while !buf.is_empty() {
        let header = match read_header(buf, input.server, input.compression) {
            Ok(Some(h)) => h,
            Ok(None) => break,
            Err(code) => {
                assert!(code == 1002 || code == 1009, "close code {code}");
                break;
            }
        };
        assert!(header.header_len <= 14 && header.header_len <= buf.len());
        for cut in 2..header.header_len {
            match read_header(&buf[..cut], input.server, input.compression) {
                Ok(None) => {}
                other => panic!("a prefix of {cut} bytes read as {other:?}"),
            }
        }
        assert_eq!(
            header.mask.is_some(),
            input.server,
            "the role's masking rule"
        );
        let opcode = header.opcode;
        assert!(
            matches!(opcode, 0 | 1 | 2 | 8 | 9 | 10),
            "reserved opcode {opcode}"
        );
        if opcode >= 8 {
            assert!(
                header.fin && header.payload_len <= 125,
                "a control frame's limits"
            );
        }
        let rest = &buf[header.header_len..];
        let Ok(len) = usize::try_from(header.payload_len) else {
            break;
        };
        if len > rest.len() {
            break;
        }
        let mut payload = rest[..len].to_vec();
        if let Some(key) = header.mask {
            // In pieces, then at once: the same bytes; twice: back to the wire's.
            let mut at_once = payload.clone();
            apply_mask(&mut at_once, key, 0);
            let mut offset = 0;
            while offset < payload.len() {
                let n = (usize::from(pieces.next().unwrap_or(7)) + 1).min(payload.len() - offset);
                apply_mask(&mut payload[offset..offset + n], key, offset as u64);
                offset += n;
            }
            assert_eq!(payload, at_once, "masking in pieces differs");
            let mut back = at_once.clone();
            apply_mask(&mut back, key, 0);
            assert_eq!(back, rest[..len]);
        }
        buf = &rest[len..];
        match opcode {
            8 => match parse_close(&payload) {
                Ok(Some((code, reason))) => {
                    assert!(matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999));
                    assert_eq!(reason.as_bytes(), &payload[2..]);
                }
                Ok(None) => assert!(payload.is_empty()),
                Err(code) => {
                    let bad_reason =
                        payload.len() >= 2 && std::str::from_utf8(&payload[2..]).is_err();
                    assert!(code == 1002 || (code == 1007 && bad_reason));
                }
            },
            9 | 10 => {}
            0 | 1 | 2 => {
                let (kind, mut data, mut checked) = match (opcode, message.take()) {
                    (0, Some(m)) => m,
                    (0, None) => break, // a continuation with nothing to continue
                    (_, Some(_)) => break, // a new message inside one
                    (kind, None) => (kind, Vec::new(), 0),
                };
                data.extend_from_slice(&payload);
                if kind == 1 && !header.rsv1 {
                    let ok = check_utf8(&data, &mut checked, header.fin);
                    assert!(checked <= data.len());
                    let std_ok = std::str::from_utf8(&data);
                    if header.fin {
                        assert_eq!(ok, std_ok.is_ok(), "the assembled message's verdict");
                    } else if !ok {
                        // Failing early is right only if no continuation could fix it.
                        let e = std_ok.unwrap_err();
                        assert!(e.error_len().is_some(), "failed a valid prefix");
                    } else if let Err(e) = std_ok {
                        // Accepting so far: only an incomplete last character may be wrong.
                        assert!(e.error_len().is_none(), "accepted invalid UTF-8");
                        assert_eq!(checked, e.valid_up_to());
                    }
                    if !ok {
                        break;
                    }
                }
                if !header.fin {
                    message = Some((kind, data, checked));
                }
            }
            _ => unreachable!(),
        }
    }
});
