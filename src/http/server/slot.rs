//! [`Slot`]: one request's place in a connection's pipeline, and the answer it owes,
//! sans-IO: a whole response encoded at once, or a streamed one whose head and body
//! pieces are encoded as its writer sends them (chunked, `Content-Length`, or until close
//! for HTTP/1.0). The pipeline releases the bytes of the slots at the front, in order,
//! for the connection to write.

use super::super::encode::{status_has_no_body, write_chunk, write_head, BodyFraming, LAST_CHUNK};
use super::super::head::Version;
use super::super::responder::WrittenCallback;
use super::super::response::{Response, ResponseParts};

/// One request's place in the pipeline.
pub(super) struct Slot {
    /// Keep the connection open after this response.
    pub(super) keep_alive: bool,
    /// A HEAD request: the body is not sent.
    pub(super) head_only: bool,
    pub(super) version: Version,
    /// `100 Continue` is owed once this slot is at the front.
    pub(super) continue_owed: bool,
    pub(super) state: SlotState,
}

pub(super) enum SlotState {
    /// The handler has not answered yet.
    Waiting,
    /// Answered: these bytes are the whole response, or (streaming) what was written so far.
    Bytes {
        bytes: Vec<u8>,
        /// The body is still being written (chunked, or until close).
        streaming: Option<BodyFraming>,
        /// Write completions waiting for these bytes to reach the kernel.
        waiters: Vec<WrittenCallback>,
    },
}

/// Room reserved for a response head kept in its slot (the server's own fields and a few
/// of the handler's), so encoding it seldom grows the buffer.
const HEAD_ESTIMATE: usize = 256;

/// How a streamed body ended (see [`Slot::finish_body`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyEnd {
    /// Complete: the connection may stay open.
    Complete,
    /// Fewer bytes than its `Content-Length`: the response is cut, the connection must close.
    Cut,
}

impl Slot {
    /// A slot waiting for its handler's answer.
    pub(super) fn new(keep_alive: bool, head_only: bool, version: Version) -> Slot {
        Slot {
            keep_alive,
            head_only,
            version,
            continue_owed: false,
            state: SlotState::Waiting,
        }
    }

    /// The `Connection` field its response carries: `close` when the connection ends after
    /// it, `keep-alive` for an HTTP/1.0 client that keeps it, none otherwise.
    fn connection_field(&self) -> Option<&'static str> {
        match (self.keep_alive, self.version) {
            (false, _) => Some("close"),
            (true, Version::Http10) => Some("keep-alive"),
            (true, Version::Http11) => None,
        }
    }

    fn encode_head(&self, out: &mut Vec<u8>, response: &ResponseParts, framing: BodyFraming) {
        write_head(
            out,
            response.status,
            response.reason.as_deref(),
            response.headers.iter().map(|(n, v)| (&**n, &**v)),
            framing,
            self.connection_field(),
        );
    }

    /// Encodes the `101 Switching Protocols` head of an upgrade (no body, and
    /// `Connection: Upgrade`).
    pub(super) fn encode_switch(&self, out: &mut Vec<u8>, response: &ResponseParts) {
        write_head(
            out,
            response.status,
            response.reason.as_deref(),
            response.headers.iter().map(|(n, v)| (&**n, &**v)),
            BodyFraming::None,
            Some("Upgrade"),
        );
    }

    /// Answers with a whole response, encoded into `out` when given (the slot is at the
    /// front of the pipeline: its bytes go straight to the connection's output), else
    /// kept in the slot until the slots before it are answered. Returns false if it was
    /// already answered.
    pub(super) fn answer_whole(
        &mut self,
        response: ResponseParts,
        out: Option<&mut Vec<u8>>,
    ) -> bool {
        if !matches!(self.state, SlotState::Waiting) {
            return false;
        }
        let response = final_response(response);
        let framing = if status_has_no_body(response.status) {
            BodyFraming::None
        } else {
            BodyFraming::Length(response.body.len() as u64)
        };
        let mut kept = Vec::new();
        let bytes = match out {
            Some(out) => out,
            None => {
                kept.reserve(HEAD_ESTIMATE + response.body.len());
                &mut kept
            }
        };
        self.encode_head(bytes, &response, framing);
        if !self.head_only && framing != BodyFraming::None {
            bytes.extend_from_slice(&response.body);
        }
        self.state = SlotState::Bytes {
            bytes: kept,
            streaming: None,
            waiters: Vec::new(),
        };
        true
    }

    /// Starts a streamed response: its head now, its body piece by piece, exactly `length`
    /// bytes of it if given (else chunked, or until close for HTTP/1.0, which then stops
    /// keeping the connection alive). Returns false if it was already answered.
    pub(super) fn start_body(&mut self, response: ResponseParts, length: Option<u64>) -> bool {
        if !matches!(self.state, SlotState::Waiting) {
            return false;
        }
        let response = final_response(response);
        let framing = if status_has_no_body(response.status) {
            BodyFraming::None
        } else if let Some(length) = length {
            BodyFraming::Length(length)
        } else if self.version == Version::Http11 {
            BodyFraming::Chunked
        } else {
            // HTTP/1.0 has no chunked coding: the body ends with the connection.
            self.keep_alive = false;
            BodyFraming::UntilClose
        };
        let mut bytes = Vec::with_capacity(HEAD_ESTIMATE);
        self.encode_head(&mut bytes, &response, framing);
        self.state = SlotState::Bytes {
            bytes,
            streaming: Some(framing),
            waiters: Vec::new(),
        };
        true
    }

    /// Adds a piece of the streamed body; `written` waits for it to reach the kernel.
    ///
    /// # Errors
    ///
    /// No body is being streamed, or the piece is over the declared length: `written` is
    /// handed back, so the caller drops it (a user value) outside any borrow.
    pub(super) fn write_body(
        &mut self,
        data: &[u8],
        written: Option<WrittenCallback>,
    ) -> Result<(), Option<WrittenCallback>> {
        let head_only = self.head_only;
        let SlotState::Bytes {
            bytes,
            streaming: Some(framing),
            waiters,
        } = &mut self.state
        else {
            return Err(written);
        };
        if let BodyFraming::Length(left) = framing {
            if data.len() as u64 > *left {
                return Err(written);
            }
            *left -= data.len() as u64;
        }
        if !head_only {
            match framing {
                BodyFraming::Chunked => write_chunk(bytes, data),
                BodyFraming::UntilClose | BodyFraming::Length(_) => bytes.extend_from_slice(data),
                BodyFraming::None => {}
            }
        }
        waiters.extend(written);
        Ok(())
    }

    /// Ends the streamed body. `None` if none was being streamed.
    pub(super) fn finish_body(&mut self) -> Option<BodyEnd> {
        let head_only = self.head_only;
        let SlotState::Bytes {
            bytes, streaming, ..
        } = &mut self.state
        else {
            return None;
        };
        match streaming.take()? {
            BodyFraming::Chunked if !head_only => {
                bytes.extend_from_slice(LAST_CHUNK);
                Some(BodyEnd::Complete)
            }
            // A HEAD response sends the length, never the bytes.
            BodyFraming::Length(left) if left > 0 && !head_only => {
                self.keep_alive = false;
                Some(BodyEnd::Cut)
            }
            _ => Some(BodyEnd::Complete),
        }
    }

    /// Takes the write completions of the pieces held here (the slot will never be sent).
    pub(super) fn take_waiters(&mut self) -> Vec<WrittenCallback> {
        match &mut self.state {
            SlotState::Bytes { waiters, .. } => std::mem::take(waiters),
            SlotState::Waiting => Vec::new(),
        }
    }

    /// The streamed body will never be finished (its writer was dropped): the connection
    /// must close after what was written. Returns whether a body was being streamed.
    pub(super) fn abandon_body(&mut self) -> bool {
        self.keep_alive = false;
        match &mut self.state {
            SlotState::Bytes { streaming, .. } => streaming.take().is_some(),
            SlotState::Waiting => false,
        }
    }
}

/// `response` if its status is a final one (200 to 999); else, since an interim or
/// malformed status would leave the client waiting for the real answer, a 500.
fn final_response(response: ResponseParts) -> ResponseParts {
    if (200..=999).contains(&response.status) {
        return response;
    }
    log::error!(
        target: "ioloop::http",
        "a handler answered with status {}, which is not a final status: sent 500",
        response.status
    );
    Response::error(500).into_parts()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(status: u16, body: &[u8]) -> ResponseParts {
        Response::new(status)
            .header("X-A", "1")
            .body(body.to_vec())
            .into_parts()
    }

    fn bytes(slot: &Slot) -> String {
        match &slot.state {
            SlotState::Bytes { bytes, .. } => String::from_utf8_lossy(bytes).into_owned(),
            SlotState::Waiting => panic!("not answered"),
        }
    }

    #[test]
    fn a_whole_answer_has_its_length_and_is_given_once() {
        let mut slot = Slot::new(true, false, Version::Http11);
        assert!(slot.answer_whole(parts(200, b"hello"), None));
        let text = bytes(&slot);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\nX-A: 1\r\n"), "{text}");
        assert!(text.contains("Content-Length: 5\r\n") && text.ends_with("\r\n\r\nhello"));
        assert!(!text.contains("Connection:"));
        assert!(!slot.answer_whole(parts(500, b""), None), "answered twice");
    }

    #[test]
    fn a_front_slot_answers_straight_into_the_output() {
        let mut slot = Slot::new(true, false, Version::Http11);
        let mut out = b"earlier".to_vec();
        assert!(slot.answer_whole(parts(200, b"hello"), Some(&mut out)));
        assert!(bytes(&slot).is_empty(), "nothing is kept in the slot");
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("earlierHTTP/1.1 200 OK\r\n") && text.ends_with("hello"));
    }

    #[test]
    fn head_answers_and_bodiless_statuses_send_no_body() {
        let mut slot = Slot::new(true, true, Version::Http11);
        slot.answer_whole(parts(200, b"hello"), None);
        assert!(bytes(&slot).ends_with("Content-Length: 5\r\n\r\n"));
        let mut slot = Slot::new(true, false, Version::Http11);
        slot.answer_whole(parts(304, b"ignored"), None);
        let text = bytes(&slot);
        assert!(
            text.ends_with("\r\n\r\n") && !text.contains("Content-Length"),
            "{text}"
        );
    }

    #[test]
    fn the_connection_field_says_close_or_keep_alive_for_http_1_0() {
        let mut slot = Slot::new(false, false, Version::Http11);
        slot.answer_whole(parts(200, b""), None);
        assert!(bytes(&slot).contains("Connection: close\r\n"));
        let mut slot = Slot::new(true, false, Version::Http10);
        slot.answer_whole(parts(200, b""), None);
        assert!(bytes(&slot).contains("Connection: keep-alive\r\n"));
    }

    #[test]
    fn a_streamed_body_is_chunked_for_http_1_1() {
        let mut slot = Slot::new(true, false, Version::Http11);
        assert!(slot.start_body(parts(200, b""), None));
        assert!(slot.write_body(b"abc", None).is_ok());
        assert_eq!(slot.finish_body(), Some(BodyEnd::Complete));
        let text = bytes(&slot);
        assert!(text.contains("Transfer-Encoding: chunked\r\n"));
        assert!(text.ends_with("\r\n\r\n3\r\nabc\r\n0\r\n\r\n"), "{text}");
        assert!(
            slot.write_body(b"late", None).is_err(),
            "written after the end"
        );
        assert_eq!(slot.finish_body(), None);
    }

    #[test]
    fn a_streamed_body_to_http_1_0_ends_with_the_connection() {
        let mut slot = Slot::new(true, false, Version::Http10);
        slot.start_body(parts(200, b""), None);
        assert!(!slot.keep_alive);
        assert!(slot.write_body(b"abc", None).is_ok());
        let text = bytes(&slot);
        assert!(text.contains("Connection: close\r\n") && text.ends_with("\r\n\r\nabc"));
    }

    #[test]
    fn a_sized_body_refuses_more_and_is_cut_with_less() {
        let mut slot = Slot::new(true, false, Version::Http11);
        slot.start_body(parts(200, b""), Some(4));
        assert!(slot.write_body(b"abc", None).is_ok());
        assert!(
            slot.write_body(b"de", None).is_err(),
            "over the declared length"
        );
        assert_eq!(slot.finish_body(), Some(BodyEnd::Cut));
        assert!(!slot.keep_alive);
        assert!(bytes(&slot).contains("Content-Length: 4\r\n"));
    }

    #[test]
    fn a_head_answer_started_with_a_length_is_complete_without_its_bytes() {
        let mut slot = Slot::new(true, true, Version::Http11);
        slot.start_body(parts(200, b""), Some(100_000));
        assert_eq!(slot.finish_body(), Some(BodyEnd::Complete));
        assert!(slot.keep_alive);
        assert!(bytes(&slot).ends_with("Content-Length: 100000\r\n\r\n"));
    }

    #[test]
    fn an_interim_or_malformed_status_becomes_a_500() {
        for status in [100, 101, 199, 0, 1000] {
            let mut slot = Slot::new(true, false, Version::Http11);
            slot.answer_whole(parts(status, b"x"), None);
            assert!(bytes(&slot).starts_with("HTTP/1.1 500 "), "{status}");
        }
    }

    #[test]
    fn a_refused_write_hands_its_callback_back() {
        // The caller drops it outside any borrow (issue 24: a callback may own a writer).
        let mut slot = Slot::new(true, false, Version::Http11);
        let refused = slot.write_body(b"early", Some(Box::new(|_| {})));
        assert!(
            matches!(refused, Err(Some(_))),
            "not streaming: handed back"
        );
        slot.start_body(parts(200, b""), Some(2));
        let refused = slot.write_body(b"long", Some(Box::new(|_| {})));
        assert!(
            matches!(refused, Err(Some(_))),
            "over the length: handed back"
        );
    }

    #[test]
    fn an_abandoned_body_closes_the_connection() {
        let mut slot = Slot::new(true, false, Version::Http11);
        assert!(!slot.abandon_body(), "nothing was streamed");
        let mut slot = Slot::new(true, false, Version::Http11);
        slot.start_body(parts(200, b""), None);
        assert!(slot.abandon_body());
        assert!(!slot.keep_alive);
    }
}
