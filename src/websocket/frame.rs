//! The WebSocket frame format (RFC 6455 §5), sans-IO: a frame header read from a byte
//! slice and checked against the rules a frame must keep before its payload is looked
//! at, a header written for a payload, masking, and close codes (§7.4).

use std::fmt;

/// A frame's opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    fn from_bits(bits: u8) -> Option<Opcode> {
        Some(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// Close, ping and pong: at most 125 bytes, never fragmented (§5.5).
    pub(crate) fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// A frame header, as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    pub(crate) fin: bool,
    /// RSV1: the message is compressed (permessage-deflate, first frame only).
    pub(crate) rsv1: bool,
    pub(crate) opcode: Opcode,
    pub(crate) mask: Option<[u8; 4]>,
    pub(crate) payload_len: u64,
    /// Bytes the header took.
    pub(crate) header_len: usize,
}

/// Why a frame header breaks the protocol: the close code to answer with, and a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Violation {
    pub(crate) code: u16,
    pub(crate) reason: &'static str,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason, self.code)
    }
}

/// An endpoint going away: a server shutting down, a loop closing (RFC 6455 §7.4.1).
pub(crate) const GOING_AWAY: u16 = 1001;
pub(crate) const PROTOCOL_ERROR: u16 = 1002;
pub(crate) const INVALID_PAYLOAD: u16 = 1007;
pub(crate) const MESSAGE_TOO_BIG: u16 = 1009;

pub(crate) fn protocol_error(reason: &'static str) -> Violation {
    Violation {
        code: PROTOCOL_ERROR,
        reason,
    }
}

/// Which side reads: a server requires masked frames, a client unmasked ones (§5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Server,
    Client,
}

/// Reads the header at the start of `buf`: `Ok(None)` if it is not all there yet.
/// `compression`: permessage-deflate was agreed, so RSV1 may mark a message's first
/// frame.
///
/// # Errors
///
/// A header that breaks the protocol whatever the state: reserved bits no extension
/// allows (RSV2, RSV3; RSV1 without compression, or on a control frame or a
/// continuation), a reserved opcode, a control frame that is fragmented or longer than 125
/// bytes, a mask where `role` forbids one or none where it requires one, or a 64-bit
/// length with its top bit set. (A length not in its shortest form is accepted: the RFC
/// asks senders for the shortest, and no peer is harmed by a longer one.)
pub(crate) fn read_header(
    buf: &[u8],
    role: Role,
    compression: bool,
) -> Result<Option<FrameHeader>, Violation> {
    let [first, second, ..] = *buf else {
        return Ok(None);
    };
    let rsv1 = first & 0x40 != 0;
    if first & 0x30 != 0 || (rsv1 && !compression) {
        return Err(protocol_error("reserved bits set without an extension"));
    }
    let fin = first & 0x80 != 0;
    let opcode =
        Opcode::from_bits(first & 0x0F).ok_or_else(|| protocol_error("reserved opcode"))?;
    if rsv1 && (opcode.is_control() || opcode == Opcode::Continuation) {
        return Err(protocol_error("RSV1 on a control frame or a continuation"));
    }
    let masked = second & 0x80 != 0;
    match (role, masked) {
        (Role::Server, false) => return Err(protocol_error("unmasked client frame")),
        (Role::Client, true) => return Err(protocol_error("masked server frame")),
        _ => {}
    }
    let (payload_len, mut at) = match second & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => {
                let len = u64::from_be_bytes(b.try_into().expect("8 bytes"));
                if len >> 63 != 0 {
                    return Err(protocol_error("payload length with its top bit set"));
                }
                (len, 10)
            }
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    if opcode.is_control() {
        if !fin {
            return Err(protocol_error("fragmented control frame"));
        }
        if payload_len > 125 {
            return Err(protocol_error("control frame over 125 bytes"));
        }
    }
    let mask = if masked {
        let Some(key) = buf.get(at..at + 4) else {
            return Ok(None);
        };
        at += 4;
        Some(key.try_into().expect("4 bytes"))
    } else {
        None
    };
    Ok(Some(FrameHeader {
        fin,
        rsv1,
        opcode,
        mask,
        payload_len,
        header_len: at,
    }))
}

/// The longest header: 2 bytes, an 8-byte length and a 4-byte mask.
pub(crate) const MAX_HEADER: usize = 14;

/// Writes a frame header for a payload of `len` bytes into `out`, masked with `mask` when
/// given (a client's frames), with RSV1 when `compressed`.
pub(crate) fn write_header(
    out: &mut Vec<u8>,
    fin: bool,
    compressed: bool,
    opcode: Opcode,
    len: usize,
    mask: Option<[u8; 4]>,
) {
    out.push(if fin { 0x80 } else { 0 } | if compressed { 0x40 } else { 0 } | opcode.bits());
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if let Some(mask) = mask {
        out.extend_from_slice(&mask);
    }
}

/// XORs `data` with the masking key, as if `data` started `offset` bytes into the payload
/// (masking is its own inverse).
pub(crate) fn apply_mask(data: &mut [u8], key: [u8; 4], offset: u64) {
    let mut key = key;
    key.rotate_left((offset % 4) as usize);
    let word = u32::from_ne_bytes(key);
    let mut chunks = data.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let masked = u32::from_ne_bytes((&*chunk).try_into().expect("4 bytes")) ^ word;
        chunk.copy_from_slice(&masked.to_ne_bytes());
    }
    for (byte, k) in chunks.into_remainder().iter_mut().zip(key) {
        *byte ^= k;
    }
}

/// Whether a peer may send `code` in a close frame (RFC 6455 §7.4.1 and the IANA
/// registry): 1000–1003, 1007–1011, 1012–1014 (registered since), and 3000–4999 for
/// libraries and applications. 1004–1006 and 1015 are reserved for local use and never
/// sent.
pub(crate) fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Reads a close frame's payload: the code and reason, or neither.
///
/// # Errors
///
/// A one-byte payload or an invalid code (1002); a reason that is not UTF-8 (1007).
pub(crate) fn parse_close(payload: &[u8]) -> Result<Option<(u16, String)>, Violation> {
    match payload {
        [] => Ok(None),
        [_] => Err(protocol_error("one-byte close payload")),
        [high, low, reason @ ..] => {
            let code = u16::from_be_bytes([*high, *low]);
            if !is_valid_close_code(code) {
                return Err(protocol_error("invalid close code"));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| Violation {
                code: INVALID_PAYLOAD,
                reason: "close reason is not UTF-8",
            })?;
            Ok(Some((code, reason.to_owned())))
        }
    }
}

/// A close frame's payload: the code, then as much of `reason` as fits in 123 bytes (cut
/// at a character boundary).
pub(crate) fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    payload
}

/// Checks UTF-8 incrementally as a text message grows: `checked` is how far `text` is
/// known to be valid (an incomplete character at the end is left for later). Fails as
/// soon as a byte cannot start or continue a character, before the message is complete
/// (Autobahn's "fail fast" cases); `complete` also fails an incomplete last character.
pub(crate) fn check_utf8(text: &[u8], checked: &mut usize, complete: bool) -> bool {
    match std::str::from_utf8(&text[*checked..]) {
        Ok(_) => {
            *checked = text.len();
            true
        }
        Err(e) => {
            *checked += e.valid_up_to();
            e.error_len().is_none() && !complete
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(buf: &[u8], role: Role) -> Result<Option<FrameHeader>, Violation> {
        read_header(buf, role, false)
    }

    #[test]
    fn written_headers_read_back_at_each_length_form() {
        for len in [0usize, 125, 126, 65535, 65536, 10 << 20] {
            let mut out = Vec::new();
            write_header(
                &mut out,
                true,
                false,
                Opcode::Binary,
                len,
                Some([1, 2, 3, 4]),
            );
            let read = header(&out, Role::Server).unwrap().unwrap();
            assert_eq!(read.payload_len, len as u64);
            assert_eq!(read.header_len, out.len());
            assert_eq!(read.mask, Some([1, 2, 3, 4]));
            // Every prefix is incomplete, not an error.
            for cut in 0..out.len() {
                assert_eq!(
                    header(&out[..cut], Role::Server),
                    Ok(None),
                    "len {len} cut {cut}"
                );
            }
        }
    }

    #[test]
    fn rule_breaking_headers_are_protocol_errors() {
        let cases: [(&[u8], Role, &str); 7] = [
            (&[0x81, 0x00], Role::Server, "unmasked client frame"),
            (&[0x81, 0x80], Role::Client, "masked server frame"),
            (
                &[0xC1, 0x80],
                Role::Server,
                "reserved bits set without an extension",
            ),
            (&[0x83, 0x80], Role::Server, "reserved opcode"),
            (&[0x09, 0x80], Role::Server, "fragmented control frame"),
            (
                &[0x89, 0xFE, 0x00, 0x7E],
                Role::Server,
                "control frame over 125 bytes",
            ),
            (
                &[0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0],
                Role::Server,
                "payload length with its top bit set",
            ),
        ];
        for (bytes, role, reason) in cases {
            let violation = header(bytes, role).unwrap_err();
            assert_eq!((violation.code, violation.reason), (PROTOCOL_ERROR, reason));
        }
    }

    #[test]
    fn rsv1_marks_only_a_compressed_messages_first_frame() {
        let compressed = read_header(&[0xC1, 0x80, 0, 0, 0, 0], Role::Server, true);
        assert!(compressed.unwrap().unwrap().rsv1);
        for bytes in [[0xC0, 0x80], [0xC9, 0x80]] {
            let refused = read_header(&bytes, Role::Server, true).unwrap_err();
            assert_eq!(refused.reason, "RSV1 on a control frame or a continuation");
        }
        let rsv2 = read_header(&[0xA1, 0x80], Role::Server, true).unwrap_err();
        assert_eq!(rsv2.code, PROTOCOL_ERROR);
    }

    #[test]
    fn masking_at_any_offset_matches_bytewise_masking() {
        let key = [0x37, 0xFA, 0x21, 0x3D];
        let data: Vec<u8> = (0..37).collect();
        for offset in 0..8u64 {
            let mut fast = data.clone();
            apply_mask(&mut fast, key, offset);
            let slow: Vec<u8> = data
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ key[((i as u64 + offset) % 4) as usize])
                .collect();
            assert_eq!(fast, slow, "offset {offset}");
        }
    }

    #[test]
    fn close_payloads_are_checked() {
        assert_eq!(parse_close(&[]), Ok(None));
        assert_eq!(parse_close(&[0x03]).unwrap_err().code, PROTOCOL_ERROR);
        for bad in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
            let payload = bad.to_be_bytes();
            assert_eq!(
                parse_close(&payload).unwrap_err().code,
                PROTOCOL_ERROR,
                "{bad}"
            );
        }
        for good in [1000u16, 1001, 1003, 1007, 1011, 1014, 3000, 4999] {
            assert_eq!(
                parse_close(&close_payload(good, "bye")),
                Ok(Some((good, "bye".into())))
            );
        }
        let mut bad_reason = 1000u16.to_be_bytes().to_vec();
        bad_reason.extend_from_slice(&[0xCE, 0xBA, 0xE1, 0xBD]);
        bad_reason.push(0xFF);
        assert_eq!(parse_close(&bad_reason).unwrap_err().code, INVALID_PAYLOAD);
        // A long reason is cut at a character boundary within 125 bytes.
        let long = "é".repeat(100);
        let payload = close_payload(1000, &long);
        assert!(payload.len() <= 125);
        assert!(parse_close(&payload).is_ok());
    }

    #[test]
    fn utf8_is_checked_across_pieces_and_fails_fast() {
        let text = "κόσμε".as_bytes();
        for split in 0..text.len() {
            let mut checked = 0;
            assert!(check_utf8(&text[..split], &mut checked, false));
            assert!(check_utf8(text, &mut checked, true));
        }
        // A byte that can never be valid fails before the message ends.
        let mut checked = 0;
        assert!(!check_utf8(&[b'a', 0xFF], &mut checked, false));
        // An incomplete last character fails only when the message is complete.
        let mut checked = 0;
        assert!(check_utf8(&[0xCE], &mut checked, false));
        assert!(!check_utf8(&[0xCE], &mut checked, true));
    }
}
