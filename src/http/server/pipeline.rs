//! [`Pipeline`]: the responses a connection owes, sans-IO. Requests are numbered as they
//! are read; their handlers may answer in any order, but the client reads the answers in
//! request order. So each answer is kept in its request's [`Slot`] until every answer
//! before it has gone out, and only the slots at the front release their bytes (and the
//! write completions waiting for those bytes) to the output the connection writes to its
//! stream. A response that ends the connection ends the pipeline: nothing after it is
//! sent.
//!
//! No socket here: the connection tells the pipeline "response N answered / wrote these
//! bytes / finished / was abandoned", calls [`pump`](Pipeline::pump), and hands what
//! [`take_output`](Pipeline::take_output) gives to its stream.

use std::collections::VecDeque;

use super::super::head::Version;
use super::super::responder::WrittenCallback;
use super::super::response::ResponseParts;
use super::slot::{BodyEnd, Slot, SlotState};

/// The interim response to `Expect: 100-continue`.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A callback waiting for the connection to close, with the request it is for.
pub(super) type CloseCallback = (u64, Box<dyn FnOnce()>);

/// The ordered responses of one connection's pipelined requests.
pub(super) struct Pipeline {
    /// The requests not yet answered in full, in order, from the front.
    slots: VecDeque<Slot>,
    /// The sequence number of the front slot: every request before it is answered and
    /// its response is in the output (or sent).
    front_seq: u64,
    /// The sequence number the next request gets.
    next_seq: u64,
    /// Bytes the front responses released, in response order, for the stream.
    out: Vec<u8>,
    /// Write completions of streamed body pieces now in `out`: they wait for those bytes
    /// to reach the kernel, so the connection hands them to the stream with the bytes.
    out_waiters: Vec<WrittenCallback>,
    /// Callbacks waiting for the connection to close, by the request whose responder
    /// registered them (let go once that request is answered).
    on_close: Vec<CloseCallback>,
}

/// What [`Pipeline::pump`] did.
#[must_use = "the released values are dropped by the caller, after its borrow ends"]
pub(super) struct Pump {
    /// A response that ends the connection went to the output: nothing after it will be
    /// (the slots after it are in `released`).
    pub(super) ended: bool,
    /// User values let go, for the caller to drop outside any borrow.
    pub(super) released: Released,
}

/// User values taken out of the pipeline while the connection's state is borrowed,
/// dropped when this is, after the borrow has ended: a slot's write completions may own a
/// [`BodyWriter`](crate::http::BodyWriter), whose `Drop` reaches the state again, and a
/// close callback may own anything.
#[derive(Default)]
pub(super) struct Released {
    slots: Vec<Slot>,
    /// The write completions of pieces in those slots, never to be sent: the caller tells
    /// them so (see [`take_unsent_waiters`](Released::take_unsent_waiters)).
    unsent_waiters: Vec<WrittenCallback>,
    close_callbacks: Vec<CloseCallback>,
}

/// What the output holds for the stream (see [`Pipeline::take_output`]).
pub(super) struct Output {
    /// The bytes to write, in response order.
    pub(super) bytes: Vec<u8>,
    /// Completions to run once those bytes have reached the kernel.
    pub(super) waiters: Vec<WrittenCallback>,
}

/// Everything a closing connection takes out of its pipeline: the slots never to be sent,
/// the completions of bytes never to be written (the output's and the slots'), and the
/// callbacks waiting for the close.
pub(super) struct Abandoned {
    pub(super) slots: VecDeque<Slot>,
    pub(super) waiters: Vec<WrittenCallback>,
    pub(super) close_callbacks: Vec<CloseCallback>,
}

impl Pipeline {
    /// An empty pipeline: no request read yet.
    pub(super) fn new() -> Pipeline {
        Pipeline {
            slots: VecDeque::new(),
            front_seq: 0,
            next_seq: 0,
            out: Vec::new(),
            out_waiters: Vec::new(),
            on_close: Vec::new(),
        }
    }

    /// Requests read and not yet answered in full.
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether every request read is answered and its response in the output.
    pub(super) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Whether a response has gone to the output (the connection has served a request).
    pub(super) fn answered_any(&self) -> bool {
        self.front_seq > 0
    }

    /// Bytes in the output, not yet taken for the stream.
    pub(super) fn out_len(&self) -> usize {
        self.out.len()
    }

    /// Takes the next request's slot; returns its sequence number.
    pub(super) fn push(&mut self, keep_alive: bool, head_only: bool, version: Version) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.slots
            .push_back(Slot::new(keep_alive, head_only, version));
        seq
    }

    /// The slot of request `seq`, if it is still in the pipeline. Its index is its
    /// distance from the front.
    fn index(&self, seq: u64) -> Option<usize> {
        let index = usize::try_from(seq.checked_sub(self.front_seq)?).ok()?;
        (index < self.slots.len()).then_some(index)
    }

    fn slot_mut(&mut self, seq: u64) -> Option<&mut Slot> {
        let index = self.index(seq)?;
        self.slots.get_mut(index)
    }

    /// The connection ends after the response to `seq` (its answer says so).
    pub(super) fn end_after(&mut self, seq: u64) {
        if let Some(slot) = self.slot_mut(seq) {
            slot.keep_alive = false;
        }
    }

    /// The connection ends after the responses owed now: the last one says so (a slot
    /// that does not keep the connection alive ends the pipeline, so only the last one
    /// may).
    pub(super) fn end_after_last(&mut self) {
        if let Some(last) = self.slots.back_mut() {
            last.keep_alive = false;
        }
    }

    /// Request `seq` is owed `100 Continue` once its body is wanted (see
    /// [`send_continue`](Self::send_continue)).
    pub(super) fn owe_continue(&mut self, seq: u64) {
        if let Some(slot) = self.slot_mut(seq) {
            slot.continue_owed = true;
        }
    }

    /// Whether request `seq` is answered (`None`: it is not in the pipeline).
    pub(super) fn is_answered(&self, seq: u64) -> Option<bool> {
        let slot = &self.slots[self.index(seq)?];
        Some(matches!(slot.state, SlotState::Bytes { .. }))
    }

    /// Answers request `seq` with a whole response: the front slot's goes straight to the
    /// output, a later one's waits in its slot. Returns false if `seq` is not in the
    /// pipeline or was already answered.
    pub(super) fn answer(&mut self, seq: u64, response: ResponseParts) -> bool {
        let Some(index) = self.index(seq) else {
            return false;
        };
        let out = (index == 0).then_some(&mut self.out);
        self.slots[index].answer_whole(response, out)
    }

    /// Starts a streamed response to `seq` (see [`Slot::start_body`]). Returns whether
    /// the connection stays open after it, or `None` if nothing was started.
    pub(super) fn start_body(
        &mut self,
        seq: u64,
        response: ResponseParts,
        length: Option<u64>,
    ) -> Option<bool> {
        let slot = self.slot_mut(seq)?;
        slot.start_body(response, length).then_some(slot.keep_alive)
    }

    /// Adds a piece of the streamed body of `seq`; `written` waits for it to reach the
    /// kernel.
    ///
    /// # Errors
    ///
    /// `seq` is not in the pipeline, streams no body, or the piece is over its declared
    /// length: `written` is handed back, for the caller to drop outside its borrow.
    pub(super) fn write_body(
        &mut self,
        seq: u64,
        data: &[u8],
        written: Option<WrittenCallback>,
    ) -> Result<(), Option<WrittenCallback>> {
        match self.slot_mut(seq) {
            Some(slot) => slot.write_body(data, written),
            None => Err(written),
        }
    }

    /// Ends the streamed body of `seq`. `None` if none was being streamed.
    pub(super) fn finish_body(&mut self, seq: u64) -> Option<BodyEnd> {
        self.slot_mut(seq)?.finish_body()
    }

    /// The streamed body of `seq` will never be finished: the connection ends after what
    /// was written of it. Returns whether a body was being streamed.
    pub(super) fn abandon_body(&mut self, seq: u64) -> bool {
        self.slot_mut(seq).is_some_and(Slot::abandon_body)
    }

    /// Moves the answered slots at the front into the output, in order: each whole, or a
    /// streamed one as far as it was written (it stays at the front until finished). A
    /// slot that ends the connection ends the pipeline: the slots after it are released,
    /// never to be sent. Close callbacks of the requests now answered are released too.
    pub(super) fn pump(&mut self) -> Pump {
        let mut pump = Pump {
            ended: false,
            released: Released::default(),
        };
        while let Some(slot) = self.slots.front_mut() {
            let SlotState::Bytes {
                bytes,
                streaming,
                waiters,
            } = &mut slot.state
            else {
                break;
            };
            self.out.append(bytes);
            self.out_waiters.append(waiters);
            if streaming.is_some() {
                break; // more body to come from its writer
            }
            // Answered in full: nothing in it is a user value any more.
            let slot = self.slots.pop_front().expect("front exists");
            self.front_seq += 1;
            pump.released
                .close_callbacks_answered_below(&mut self.on_close, self.front_seq);
            if !slot.keep_alive {
                pump.ended = true;
                for mut unsent in self.slots.drain(..) {
                    pump.released.unsent_waiters.extend(unsent.take_waiters());
                    pump.released.slots.push(unsent);
                }
                break;
            }
        }
        pump
    }

    /// Writes `100 Continue` to the output if request `seq` is owed one and may have it
    /// now: at the front (an interim response must not split an earlier one) and still
    /// unanswered. Once only. Returns whether it was written.
    pub(super) fn send_continue(&mut self, seq: u64) -> bool {
        if seq != self.front_seq {
            return false;
        }
        let owed = self
            .slots
            .front_mut()
            .filter(|slot| matches!(slot.state, SlotState::Waiting))
            .is_some_and(|slot| std::mem::take(&mut slot.continue_owed));
        if owed {
            self.out.extend_from_slice(CONTINUE);
        }
        owed
    }

    /// Switches protocols for request `seq` if it is at the front (every response before
    /// it is in the output) and unanswered: its `101` head goes to the output and its slot
    /// leaves the pipeline. Returns whether it did.
    pub(super) fn switch_protocols(&mut self, seq: u64, response: &ResponseParts) -> bool {
        let unanswered_front = seq == self.front_seq
            && self
                .slots
                .front()
                .is_some_and(|slot| matches!(slot.state, SlotState::Waiting));
        if !unanswered_front {
            return false;
        }
        let Some(slot) = self.slots.pop_front() else {
            return false;
        };
        slot.encode_switch(&mut self.out, response);
        self.front_seq += 1;
        true
    }

    /// Takes the output for the stream: its bytes, and the completions waiting for them.
    pub(super) fn take_output(&mut self) -> Output {
        Output {
            bytes: std::mem::take(&mut self.out),
            waiters: std::mem::take(&mut self.out_waiters),
        }
    }

    /// Gives back the buffer of a written output, to keep its allocation for the next
    /// batch (unless the output was written to meanwhile).
    pub(super) fn recycle(&mut self, mut bytes: Vec<u8>) {
        bytes.clear();
        if self.out.is_empty() {
            self.out = bytes;
        }
    }

    /// Adds a callback for the connection's close, let go once request `seq` is
    /// answered.
    pub(super) fn on_close(&mut self, seq: u64, callback: Box<dyn FnOnce()>) {
        self.on_close.push((seq, callback));
    }

    /// Whether a request in flight waits for the connection to close.
    pub(super) fn has_close_callbacks(&self) -> bool {
        !self.on_close.is_empty()
    }

    /// The connection closes (or is handed to another protocol): takes everything still
    /// owed or waiting, for the caller to drop or call outside its borrow. The waiters are
    /// those of the output's bytes, then those of the pieces still in slots, in order.
    pub(super) fn abandon(&mut self) -> Abandoned {
        let mut slots = std::mem::take(&mut self.slots);
        let mut waiters = std::mem::take(&mut self.out_waiters);
        for slot in &mut slots {
            waiters.extend(slot.take_waiters());
        }
        Abandoned {
            slots,
            waiters,
            close_callbacks: std::mem::take(&mut self.on_close),
        }
    }
}

impl Released {
    /// The write completions of the pieces that will never be sent (they were in slots
    /// after a response that ended the connection), for the caller to fail: a writer's
    /// `write_then` hears of every piece.
    pub(super) fn take_unsent_waiters(&mut self) -> Vec<WrittenCallback> {
        std::mem::take(&mut self.unsent_waiters)
    }

    /// Moves the close callbacks of requests numbered below `answered_below` out of
    /// `on_close` (they were for requests now answered).
    fn close_callbacks_answered_below(
        &mut self,
        on_close: &mut Vec<CloseCallback>,
        answered_below: u64,
    ) {
        if on_close.iter().all(|(seq, _)| *seq >= answered_below) {
            return;
        }
        let (answered, pending) = std::mem::take(on_close)
            .into_iter()
            .partition(|(seq, _)| *seq < answered_below);
        *on_close = pending;
        self.close_callbacks.extend::<Vec<_>>(answered);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::super::connection::closed_error;
    use super::*;
    use crate::http::Response;

    /// What happens to the pipeline, in the words of the connection that drives it.
    #[derive(Debug, Clone, Copy)]
    enum Event {
        /// A request is read (HTTP/1.1), keeping the connection alive or not.
        Request { keep_alive: bool },
        /// A request with `Expect: 100-continue` and a body.
        Expecting,
        /// Request N is answered whole: 200 with this body.
        Answer(u64, &'static str),
        /// Request N is refused: a whole 400 after which the connection ends, as the
        /// connection's refusals (400, 408, 413, 431) are.
        Refuse(u64),
        /// Request N starts a streamed response of exactly this many bytes.
        Start(u64, u64),
        /// Request N writes a piece of its body, with the write completion numbered so.
        Write(u64, &'static str, u32),
        /// Request N's streamed body is complete.
        Finish(u64),
        /// Request N's writer is dropped mid-body.
        Abandon(u64),
        /// Request N's body is wanted now: its `100 Continue` goes out if it may.
        Continue(u64),
        /// No more requests are read (a shutdown, or the client half-closed).
        ReadNoMore,
        /// A close callback, numbered so, for request N.
        OnClose(u64, u32),
    }

    use Event::*;

    const KA: Event = Request { keep_alive: true };
    const CLOSE: Event = Request { keep_alive: false };

    /// A row's outcome.
    #[derive(Debug, PartialEq, Eq)]
    struct Outcome {
        /// What left the pipeline, in order. `|` ends each event; a response head is
        /// `[status]` (`[status close]` with `Connection: close`), followed by its body
        /// bytes; `<n>` is write completion n handed out with the output it waits for,
        /// `<n!>` completion n told its piece will never be sent (after the last event:
        /// the close); `{n}` is close callback n let go (its request answered).
        trace: String,
        /// A response ended the connection.
        ended: bool,
        /// Requests still owed an answer in full.
        left: usize,
    }

    /// Appends to the trace when dropped: marks a close callback let go.
    struct DropMark(u32, Rc<RefCell<Vec<u8>>>);

    impl Drop for DropMark {
        fn drop(&mut self) {
            self.1
                .borrow_mut()
                .extend(format!("{{{}}}", self.0).bytes());
        }
    }

    /// Drives a pipeline as the connection does: after each event, pump, take the output
    /// for the stream (which takes it all at once: the completions run), then drop what
    /// was released.
    fn run(events: &[Event]) -> Outcome {
        let trace = Rc::new(RefCell::new(Vec::new()));
        let mut pipeline = Pipeline::new();
        let mut ended = false;
        for &event in events {
            match event {
                Request { keep_alive } => {
                    pipeline.push(keep_alive, false, Version::Http11);
                }
                Expecting => {
                    let seq = pipeline.push(true, false, Version::Http11);
                    pipeline.owe_continue(seq);
                }
                Answer(seq, body) => {
                    pipeline.answer(seq, Response::new(200).body(body).into_parts());
                }
                Refuse(seq) => {
                    pipeline.end_after(seq);
                    pipeline.answer(seq, Response::new(400).into_parts());
                }
                Start(seq, length) => {
                    pipeline.start_body(seq, Response::new(200).into_parts(), Some(length));
                }
                Write(seq, data, n) => {
                    let trace = trace.clone();
                    let written: WrittenCallback = Box::new(move |result| {
                        let failed = if result.is_ok() { "" } else { "!" };
                        trace.borrow_mut().extend(format!("<{n}{failed}>").bytes());
                    });
                    // A refused piece's completion is handed back: never run.
                    let _ = pipeline.write_body(seq, data.as_bytes(), Some(written));
                }
                Finish(seq) => {
                    pipeline.finish_body(seq);
                }
                Abandon(seq) => {
                    pipeline.abandon_body(seq);
                }
                Continue(seq) => {
                    pipeline.send_continue(seq);
                }
                ReadNoMore => pipeline.end_after_last(),
                OnClose(seq, n) => {
                    let mark = DropMark(n, trace.clone());
                    pipeline.on_close(seq, Box::new(move || drop(mark)));
                }
            }
            let mut pump = pipeline.pump();
            ended |= pump.ended;
            let output = pipeline.take_output();
            trace.borrow_mut().extend_from_slice(&output.bytes);
            output.waiters.into_iter().for_each(|waiter| waiter(Ok(())));
            for waiter in pump.released.take_unsent_waiters() {
                waiter(Err(closed_error()));
            }
            drop(pump.released);
            pipeline.recycle(output.bytes);
            trace.borrow_mut().push(b'|');
        }
        let left = pipeline.len();
        // The connection closes: what is still owed is never sent.
        pipeline
            .abandon()
            .waiters
            .into_iter()
            .for_each(|waiter| waiter(Err(closed_error())));
        let trace = summarize(&trace.borrow());
        Outcome { trace, ended, left }
    }

    /// The trace with each response head shortened to `[status]` or `[status close]`.
    fn summarize(out: &[u8]) -> String {
        let text = String::from_utf8_lossy(out);
        let mut summary = String::new();
        let mut rest = &*text;
        while let Some(at) = rest.find("HTTP/1.1 ") {
            summary.push_str(&rest[..at]);
            let head_len = rest[at..].find("\r\n\r\n").expect("a whole head") + 4;
            let head = &rest[at..at + head_len];
            summary.push('[');
            summary.push_str(&head[9..12]);
            if head.contains("\r\nConnection: close\r\n") {
                summary.push_str(" close");
            }
            summary.push(']');
            rest = &rest[at + head_len..];
        }
        summary.push_str(rest);
        summary
    }

    #[test]
    fn events_release_bytes_and_waiters_in_request_order() {
        #[rustfmt::skip]
        let rows: &[(&str, &[Event], &str, bool, usize)] = &[
            // (what, events, trace, ended, requests left)
            ("one request answered at once goes straight out",
             &[KA, Answer(0, "a")],
             "|[200]a|", false, 0),
            ("answers in reverse order are released in request order, all at the first's",
             &[KA, KA, KA, Answer(2, "c"), Answer(1, "b"), Answer(0, "a")],
             "|||||[200]a[200]b[200]c|", false, 0),
            ("a middle answer waits for the front, then the front releases both",
             &[KA, KA, KA, Answer(1, "b"), Answer(0, "a"), Answer(2, "c")],
             "||||[200]a[200]b|[200]c|", false, 0),
            ("the front streams through; a later whole answer waits for its end",
             &[KA, KA, Start(0, 2), Write(0, "a", 1), Answer(1, "c"), Write(0, "b", 2), Finish(0)],
             "||[200]|a<1>||b<2>|[200]c|", false, 0),
            ("a later streamed piece and its completion wait for the front's answer",
             &[KA, KA, Start(1, 1), Write(1, "b", 2), Answer(0, "a"), Finish(1)],
             "||||[200]a[200]b<2>||", false, 0),
            ("a piece over the declared length is refused: not sent, its completion not run",
             &[KA, Start(0, 1), Write(0, "ab", 1), Write(0, "a", 2)],
             "|[200]||a<2>|", false, 1),
            ("a response abandoned mid-way ends the connection after what is before it",
             &[KA, KA, KA, Start(1, 3), Write(1, "b", 2), Answer(2, "c"), Abandon(1), Answer(0, "a")],
             "|||||||[200]a[200]b<2>|", true, 0),
            ("an abandoned front response ends the connection at once",
             &[KA, KA, Start(0, 3), Write(0, "a", 1), Answer(1, "b"), Abandon(0)],
             "||[200]|a<1>|||", true, 0),
            ("Connection: close ends the connection after its response",
             &[CLOSE, Answer(0, "a")],
             "|[200 close]a|", true, 0),
            ("a request that closes lets none after it through, nor a late answer",
             &[CLOSE, KA, Answer(0, "a"), Answer(1, "b")],
             "||[200 close]a||", true, 0),
            ("reading no more: the last response says close",
             &[KA, KA, ReadNoMore, Answer(1, "b"), Answer(0, "a")],
             "||||[200]a[200 close]b|", true, 0),
            ("a refusal goes out after the answers before it, and nothing after it",
             &[KA, KA, KA, Refuse(1), Answer(2, "c"), Answer(0, "a")],
             "|||||[200]a[400 close]|", true, 0),
            ("100 Continue waits for the front, goes once, and never after the answer",
             &[KA, Expecting, Continue(1), Answer(0, "a"), Continue(1), Continue(1), Answer(1, "b")],
             "|||[200]a|[100]||[200]b|", false, 0),
            ("no 100 Continue for a request answered before its body was wanted",
             &[Expecting, Answer(0, "a"), Continue(0)],
             "|[200]a||", false, 0),
            ("close callbacks are let go once their own request is answered",
             &[KA, KA, OnClose(0, 1), OnClose(1, 2), Answer(0, "a"), Answer(1, "b")],
             "||||[200]a{1}|[200]b{2}|", false, 0),
            ("pieces after a response that ends the connection are never sent: their writers hear so",
             &[CLOSE, KA, Start(1, 2), Write(1, "b", 3), Answer(0, "a")],
             "||||[200 close]a<3!>|", true, 0),
            ("at the close, pieces still owed are failed, those written were not",
             &[KA, KA, Start(0, 4), Write(0, "a", 1), Start(1, 1), Write(1, "b", 2)],
             "||[200]|a<1>|||<2!>", false, 2),
            ("a close callback waits while its request streams",
             &[KA, OnClose(0, 1), Start(0, 1), Write(0, "a", 2), Finish(0)],
             "||[200]|a<2>|{1}|", false, 0),
        ];
        for &(what, events, trace, ended, left) in rows {
            let want = Outcome {
                trace: trace.to_owned(),
                ended,
                left,
            };
            assert_eq!(run(events), want, "{what}");
        }
    }

    #[test]
    fn slots_released_by_an_ending_response_are_dropped_by_the_caller() {
        // A slot after the end holds a write completion (a user value): `pump` hands it
        // back in `released` rather than dropping it inside the caller's borrow.
        let dropped = Rc::new(RefCell::new(Vec::new()));
        let mut pipeline = Pipeline::new();
        pipeline.push(false, false, Version::Http11);
        pipeline.push(true, false, Version::Http11);
        pipeline.start_body(1, Response::new(200).into_parts(), None);
        let mark = DropMark(7, dropped.clone());
        let written: WrittenCallback = Box::new(move |_| drop(mark));
        assert!(pipeline.write_body(1, b"b", Some(written)).is_ok());
        pipeline.answer(0, Response::new(200).into_parts());
        let pump = pipeline.pump();
        assert!(pump.ended);
        assert!(dropped.borrow().is_empty(), "still held by `released`");
        drop(pump.released);
        assert_eq!(&*dropped.borrow(), b"{7}");
    }

    #[test]
    fn a_write_to_a_request_not_in_the_pipeline_hands_its_completion_back() {
        let mut pipeline = Pipeline::new();
        let refused = pipeline.write_body(3, b"x", Some(Box::new(|_| {})));
        assert!(matches!(refused, Err(Some(_))));
    }

    #[test]
    fn switching_protocols_waits_for_the_front() {
        let mut pipeline = Pipeline::new();
        pipeline.push(true, false, Version::Http11);
        pipeline.push(true, false, Version::Http11);
        let switch = Response::new(101)
            .header("Upgrade", "websocket")
            .into_parts();
        assert!(
            !pipeline.switch_protocols(1, &switch),
            "a response is owed before it"
        );
        pipeline.answer(0, Response::new(200).into_parts());
        let _ = pipeline.pump();
        assert!(pipeline.switch_protocols(1, &switch));
        assert!(pipeline.is_empty() && pipeline.answered_any());
        let out = summarize(&pipeline.take_output().bytes);
        assert_eq!(out, "[200][101]");
    }

    #[test]
    fn an_answered_request_does_not_switch_protocols() {
        // Its answer is in the output already: a 101 after it would answer it twice.
        let mut pipeline = Pipeline::new();
        pipeline.push(true, false, Version::Http11);
        pipeline.answer(0, Response::new(200).into_parts());
        let switch = Response::new(101)
            .header("Upgrade", "websocket")
            .into_parts();
        assert!(!pipeline.switch_protocols(0, &switch));
        assert_eq!(summarize(&pipeline.take_output().bytes), "[200]");
    }

    #[test]
    fn the_output_buffer_is_kept_for_the_next_batch() {
        let mut pipeline = Pipeline::new();
        pipeline.push(true, false, Version::Http11);
        pipeline.answer(0, Response::new(200).body("abc").into_parts());
        let output = pipeline.take_output();
        let capacity = output.bytes.capacity();
        assert!(capacity > 0 && pipeline.out_len() == 0);
        pipeline.recycle(output.bytes);
        pipeline.push(true, false, Version::Http11);
        pipeline.answer(1, Response::new(200).into_parts());
        let again = pipeline.take_output();
        assert!(
            again.bytes.capacity() >= capacity,
            "the allocation came back"
        );
    }
}
