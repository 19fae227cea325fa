//! The HTTP server connection's core driven sans-IO: its pipeline of owed responses
//! under any sequence of the connection's events (requests read, handlers answering in
//! any order, whole or streamed, bodies written, finished, cut or abandoned, `100
//! Continue`, close callbacks, a protocol switch, pumps and writes to the socket), then
//! the close.
//!
//! Properties, checked on everything the pipeline hands the socket:
//! - it is a sequence of well-formed HTTP/1.1 responses, each answering the next request
//!   in request order (the `X-Seq` field each handler sets), whatever order the handlers
//!   answered in; its status, framing (`Content-Length`, chunked, until close, none) and
//!   body are those the handler gave, HEAD and no-body statuses carry no body bytes;
//! - `100 Continue` only for a request that asked, once, right before its answer;
//! - a response that says `Connection: close` (or whose body runs until the close) is the
//!   last thing written, and the pipeline said it ended;
//! - the bytes released (written or waiting in the output) are bounded by the answers
//!   given; once the pipeline has ended nothing more is written, whatever handlers do;
//! - every write completion accepted is called exactly once: with success only after its
//!   piece was handed to the socket, else with failure once it never will be (released
//!   behind an ending response, or at the close); a refused one is never called;
//! - a close callback is let go (never called) only once its request's answer is out,
//!   and called at the close otherwise; nothing the pipeline held outlives it.

#![no_main]

use std::cell::RefCell;
use std::rc::Rc;

use arbitrary::Arbitrary;
use ioloop::fuzzing::http::{Completion, Pipeline};
use ioloop::http::Response;
use libfuzzer_sys::fuzz_target;

/// The statuses handlers answer with: final ones with and without a body, and interim
/// or malformed ones the server must replace with a 500.
const STATUSES: [u16; 9] = [200, 201, 204, 304, 404, 500, 999, 101, 150];

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Op {
    /// A request is read.
    Request {
        keep_alive: bool,
        head_only: bool,
        http11: bool,
        expect_continue: bool,
    },
    /// A handler answers whole: status index, body length.
    Answer(u8, u8, u16),
    /// A handler starts a streamed answer: status index, length if declared.
    Start(u8, u8, Option<u8>),
    /// A body piece of this length, with a completion or not.
    Write(u8, u8, bool),
    Finish(u8),
    /// The writer is dropped mid-body.
    Abandon(u8),
    /// The request's body is wanted (`100 Continue` if owed).
    Continue(u8),
    /// The connection ends after this request's answer (a refusal).
    EndAfter(u8),
    /// No more requests are read.
    ReadNoMore,
    OnClose(u8),
    /// A `101` for this request.
    Switch(u8),
    Pump,
    /// The socket takes the output; its completions run.
    Take,
}

struct Request {
    head_only: bool,
    http11: bool,
    expect_continue: bool,
    /// The status given, and how: `None` not answered.
    answer: Option<Answer>,
}

struct Answer {
    status: u16,
    /// The body a whole answer gave.
    whole: Option<Vec<u8>>,
    /// A streamed answer's declared length.
    length: Option<u64>,
    /// A streamed answer's accepted pieces, with their completion's number.
    pieces: Vec<(Vec<u8>, Option<usize>)>,
    /// A streamed answer was finished or abandoned: nothing more comes of it.
    stream_ended: bool,
    switch: bool,
}

/// What happened to a completion or close callback.
#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
struct Fate {
    called: u32,
    ok: bool,
    dropped: bool,
}

type Fates = Rc<RefCell<Vec<Fate>>>;

/// Marks its entry dropped.
struct Mark(usize, Fates);

impl Drop for Mark {
    fn drop(&mut self) {
        self.1.borrow_mut()[self.0].dropped = true;
    }
}

struct World {
    pipeline: Pipeline,
    requests: Vec<Request>,
    /// Everything the socket took, in order.
    written: Vec<u8>,
    completions: Fates,
    /// For each completion: the length of `written` when it was handed over with bytes.
    handed_at: Vec<Option<usize>>,
    /// For each completion: whether its piece was accepted.
    accepted: Vec<bool>,
    close_callbacks: Fates,
    /// For each close callback: its request, and the length of `written` once it was let
    /// go uncalled (after the take that follows its release).
    close_seq: Vec<u64>,
    released_at: Vec<Option<usize>>,
    ended: bool,
    switched: bool,
    /// Upper bound on the bytes the pipeline may write.
    budget: usize,
}

/// A request's sequence number from a fuzzed byte: mostly ones read, a few past them.
fn seq_of(world: &World, byte: u8) -> u64 {
    byte as u64 % (world.requests.len() as u64 + 2)
}

fn status_of(byte: u8) -> u16 {
    STATUSES[byte as usize % STATUSES.len()]
}

/// The bytes of a body or piece: distinct per request and place, so a misplaced one shows.
fn bytes_for(seq: u64, salt: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| b'a' + ((seq as usize * 7 + salt * 3 + i) % 26) as u8)
        .collect()
}

/// Room for one head the pipeline writes (status line, `Server`, `Date`, framing,
/// `Connection`, `X-Seq`).
const HEAD_BOUND: usize = 200;

impl World {
    fn response(&self, status: u16, seq: u64) -> Response {
        Response::new(status).header("X-Seq", seq.to_string())
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Request {
                keep_alive,
                head_only,
                http11,
                expect_continue,
            } => {
                let seq = self.pipeline.push(keep_alive, head_only, http11);
                assert_eq!(seq, self.requests.len() as u64, "sequence numbers count up");
                if expect_continue {
                    self.pipeline.owe_continue(seq);
                }
                self.requests.push(Request {
                    head_only,
                    http11,
                    expect_continue,
                    answer: None,
                });
            }
            Op::Answer(seq, status, len) => {
                let seq = seq_of(self, seq);
                let status = status_of(status);
                let body = bytes_for(seq, 0, len as usize % 300);
                let response = self.response(status, seq).body(body.clone());
                let open = self.is_unanswered(seq);
                let answered = self.pipeline.answer(seq, response);
                assert_eq!(
                    answered, open,
                    "answer {seq}: only an open request takes one"
                );
                if answered {
                    self.budget += HEAD_BOUND + 200 + body.len();
                    self.requests[seq as usize].answer = Some(Answer {
                        status,
                        whole: Some(body),
                        length: None,
                        pieces: Vec::new(),
                        stream_ended: false,
                        switch: false,
                    });
                }
            }
            Op::Start(seq, status, length) => {
                let seq = seq_of(self, seq);
                let status = status_of(status);
                let length = length.map(u64::from);
                let open = self.is_unanswered(seq);
                let started = self
                    .pipeline
                    .start_body(seq, self.response(status, seq), length);
                assert_eq!(started.is_some(), open, "start {seq}");
                if started.is_some() {
                    self.budget += HEAD_BOUND + 200 + 5;
                    self.requests[seq as usize].answer = Some(Answer {
                        status,
                        whole: None,
                        length,
                        pieces: Vec::new(),
                        stream_ended: false,
                        switch: false,
                    });
                }
            }
            Op::Write(seq, len, with_completion) => {
                let seq = seq_of(self, seq);
                let salt = self.answer(seq).map_or(0, |answer| answer.pieces.len() + 1);
                let data = bytes_for(seq, salt, len as usize % 100);
                let number = with_completion.then(|| {
                    self.completions.borrow_mut().push(Fate::default());
                    self.handed_at.push(None);
                    self.completions.borrow().len() - 1
                });
                let completion = number.map(|n| -> Completion {
                    let fates = self.completions.clone();
                    let mark = Mark(n, fates.clone());
                    Box::new(move |ok| {
                        let _mark = mark;
                        let mut fates = fates.borrow_mut();
                        fates[n].called += 1;
                        fates[n].ok = ok;
                    })
                });
                let accepted = self.pipeline.write_body(seq, &data, completion);
                if let Some(n) = number {
                    self.accepted.push(accepted);
                    debug_assert_eq!(self.accepted.len(), n + 1);
                }
                if let Some(n) = number.filter(|_| !accepted) {
                    let fate = self.completions.borrow()[n];
                    assert!(
                        fate.dropped && fate.called == 0,
                        "a refused completion: {fate:?}"
                    );
                }
                if accepted {
                    let answer = self
                        .answer_mut(seq)
                        .expect("accepted for a streamed answer");
                    answer.pieces.push((data.clone(), number));
                    self.budget += data.len() + 20;
                }
            }
            Op::Finish(seq) => {
                let seq = seq_of(self, seq);
                if self.pipeline.finish_body(seq).is_some() {
                    self.stream_ended(seq);
                }
            }
            Op::Abandon(seq) => {
                let seq = seq_of(self, seq);
                if self.pipeline.abandon_body(seq) {
                    self.stream_ended(seq);
                }
            }
            Op::Continue(seq) => {
                let seq = seq_of(self, seq);
                if self.pipeline.send_continue(seq) {
                    let request = &self.requests[seq as usize];
                    assert!(
                        request.expect_continue,
                        "100 Continue for {seq}, which did not ask"
                    );
                    self.budget += 30;
                }
            }
            Op::EndAfter(seq) => {
                let seq = seq_of(self, seq);
                self.pipeline.end_after(seq);
            }
            Op::ReadNoMore => self.pipeline.end_after_last(),
            Op::OnClose(seq) => {
                let seq = seq_of(self, seq);
                let n = self.close_callbacks.borrow().len();
                self.close_callbacks.borrow_mut().push(Fate::default());
                self.close_seq.push(seq);
                self.released_at.push(None);
                let fates = self.close_callbacks.clone();
                let mark = Mark(n, fates.clone());
                self.pipeline.on_close(
                    seq,
                    Box::new(move || {
                        let _mark = mark;
                        fates.borrow_mut()[n].called += 1;
                    }),
                );
            }
            Op::Switch(seq) => {
                let seq = seq_of(self, seq);
                let response = Response::new(101).header("Upgrade", "x");
                let open = self.is_unanswered(seq);
                if self.pipeline.switch_protocols(seq, response) {
                    assert!(open, "switched an answered request");
                    self.budget += HEAD_BOUND;
                    self.requests[seq as usize].answer = Some(Answer {
                        status: 101,
                        whole: None,
                        length: None,
                        pieces: Vec::new(),
                        stream_ended: false,
                        switch: true,
                    });
                    self.switched = true;
                }
            }
            Op::Pump => self.pump(),
            Op::Take => self.take(),
        }
    }

    /// Whether the model says `seq` may be answered: read, not answered, and the
    /// connection not ended. The pipeline must agree.
    fn is_unanswered(&self, seq: u64) -> bool {
        let open = !self.ended
            && self
                .requests
                .get(seq as usize)
                .is_some_and(|request| request.answer.is_none());
        if open {
            assert_eq!(
                self.pipeline.is_answered(seq),
                Some(false),
                "request {seq} lost"
            );
        }
        open
    }

    fn answer(&self, seq: u64) -> Option<&Answer> {
        self.requests.get(seq as usize)?.answer.as_ref()
    }

    fn answer_mut(&mut self, seq: u64) -> Option<&mut Answer> {
        self.requests.get_mut(seq as usize)?.answer.as_mut()
    }

    fn stream_ended(&mut self, seq: u64) {
        let answer = self
            .answer_mut(seq)
            .expect("a stream ends that was started");
        assert!(
            answer.whole.is_none() && !answer.stream_ended,
            "request {seq} ended twice"
        );
        answer.stream_ended = true;
    }

    fn pump(&mut self) {
        self.ended |= self.pipeline.pump();
    }

    /// The socket takes the output, as the connection's flush does after a pump.
    fn take(&mut self) {
        let output = self.pipeline.take_output();
        self.written.extend_from_slice(&output.bytes);
        assert!(
            self.written.len() <= self.budget,
            "{} bytes written for answers worth {}",
            self.written.len(),
            self.budget
        );
        // Completions handed now: their pieces are in what was taken.
        let before: Vec<Fate> = self.completions.borrow().clone();
        for completion in output.completions {
            completion(true);
        }
        let after = self.completions.borrow().clone();
        for (n, (old, new)) in before.iter().zip(&after).enumerate() {
            if new.called > old.called {
                assert!(self.handed_at[n].is_none(), "completion {n} handed twice");
                self.handed_at[n] = Some(self.written.len());
            }
        }
        // Close callbacks let go by the pump before this take.
        for (n, fate) in self.close_callbacks.borrow().iter().enumerate() {
            if fate.dropped && fate.called == 0 && self.released_at[n].is_none() {
                self.released_at[n] = Some(self.written.len());
            }
        }
    }
}

/// Where each response ends in the written bytes, as a client reads them.
#[derive(Default)]
struct Read {
    /// Per request answered on the wire: where its response ends (`None`: cut short).
    ends: Vec<Option<usize>>,
    /// Per completion: where its piece ends.
    piece_ends: Vec<Option<usize>>,
    /// The last response ends the connection.
    closing: bool,
}

fn header<'h>(headers: &'h [httparse::Header<'_>], name: &str) -> Option<&'h [u8]> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

/// Reads `world.written` as a client would and checks each response against its answer.
fn read_back(world: &World, completions: usize) -> Read {
    let out = &world.written;
    let mut read = Read {
        piece_ends: vec![None; completions],
        ..Read::default()
    };
    let mut pos = 0;
    let mut seq = 0u64;
    let mut continued = vec![false; world.requests.len()];
    while pos < out.len() {
        assert!(
            !read.closing,
            "bytes after a response that ended the connection"
        );
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut response = httparse::Response::new(&mut headers);
        let head_len = match response.parse(&out[pos..]).expect("a well-formed head") {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => panic!("a head cut short in the output"),
        };
        let status = response.code.expect("a status");
        assert_eq!(response.version, Some(1), "HTTP/1.1");
        let request = world
            .requests
            .get(seq as usize)
            .unwrap_or_else(|| panic!("a response for request {seq}, never read"));
        if status == 100 {
            assert!(
                request.expect_continue && !continued[seq as usize],
                "100 Continue for {seq}"
            );
            continued[seq as usize] = true;
            pos += head_len;
            continue;
        }
        let answer = request
            .answer
            .as_ref()
            .unwrap_or_else(|| panic!("a response for request {seq}, never answered"));
        let head_end = pos + head_len;
        if answer.switch {
            assert_eq!(status, 101);
            assert_eq!(
                header(response.headers, "connection"),
                Some(&b"Upgrade"[..])
            );
            assert_eq!(head_end, out.len(), "bytes after a protocol switch");
            read.ends.push(Some(head_end));
            read.closing = true;
            break;
        }
        let replaced = !(200..=999).contains(&answer.status);
        let want_status = if replaced { 500 } else { answer.status };
        assert_eq!(status, want_status, "request {seq}'s status");
        if !replaced {
            let x_seq = header(response.headers, "x-seq").expect("the handler's fields");
            assert_eq!(
                x_seq,
                seq.to_string().as_bytes(),
                "response out of request order"
            );
        }
        let no_body = status == 204 || status == 304;
        let length = header(response.headers, "content-length")
            .map(|v| std::str::from_utf8(v).unwrap().parse::<u64>().unwrap());
        let chunked = header(response.headers, "transfer-encoding") == Some(&b"chunked"[..]);
        let connection = header(response.headers, "connection");
        if !request.http11 && connection != Some(&b"close"[..]) {
            assert_eq!(
                connection,
                Some(&b"keep-alive"[..]),
                "HTTP/1.0 keep-alive says so"
            );
        }
        let mut closing = connection == Some(&b"close"[..]);
        // The framing the answer called for.
        let until_close = if no_body {
            assert!(length.is_none() && !chunked, "a {status} has no framing");
            false
        } else if let Some(body) = answer.whole.as_ref().filter(|_| !replaced) {
            assert_eq!(length, Some(body.len() as u64), "a whole answer's length");
            false
        } else if answer.whole.is_some() {
            assert!(length.is_some(), "the 500 has a length");
            false
        } else if let Some(declared) = answer.length {
            assert_eq!(length, Some(declared), "the declared length");
            false
        } else if request.http11 {
            assert!(
                chunked && length.is_none(),
                "an undeclared HTTP/1.1 body is chunked"
            );
            false
        } else {
            assert!(
                length.is_none() && !chunked,
                "an HTTP/1.0 stream runs until close"
            );
            assert!(closing, "an HTTP/1.0 stream closes the connection");
            true
        };
        let mut at = head_end;
        let sends_body = !request.head_only && !no_body;
        let mut body = Vec::new();
        let mut complete = true;
        if sends_body && chunked {
            let mut ended = false;
            while at < out.len() {
                let line_end = at
                    + out[at..]
                        .windows(2)
                        .position(|w| w == b"\r\n")
                        .expect("a whole chunk-size line");
                let size =
                    usize::from_str_radix(std::str::from_utf8(&out[at..line_end]).unwrap(), 16)
                        .expect("a hex chunk size");
                at = line_end + 2;
                if size == 0 {
                    assert_eq!(&out[at..at + 2], b"\r\n", "no trailers");
                    at += 2;
                    ended = true;
                    break;
                }
                body.extend_from_slice(&out[at..at + size]);
                assert_eq!(&out[at + size..at + size + 2], b"\r\n");
                at += size + 2;
            }
            complete = ended;
        } else if sends_body && until_close {
            body.extend_from_slice(&out[at..]);
            at = out.len();
        } else if sends_body {
            let n = length.expect("a length") as usize;
            let available = (out.len() - at).min(n);
            body.extend_from_slice(&out[at..at + available]);
            at += available;
            complete = available == n;
        }
        // The body is what the handler gave.
        if let Some(whole) = &answer.whole {
            if sends_body && !replaced {
                assert_eq!(&body, whole, "request {seq}'s body");
            }
        } else if sends_body {
            let given: Vec<u8> = answer.pieces.iter().flat_map(|(d, _)| d.clone()).collect();
            assert!(given.starts_with(&body), "request {seq}'s streamed body");
            // Where each piece ends: a completion is handed only with its piece's bytes.
            let mut offset = 0;
            let mut pieces_left = body.len();
            for (data, number) in &answer.pieces {
                if data.len() > pieces_left {
                    break;
                }
                pieces_left -= data.len();
                offset += data.len();
                let ends_at = if chunked && offset > 0 {
                    chunk_end(out, head_end, offset)
                } else {
                    head_end + offset
                };
                if let Some(n) = number {
                    read.piece_ends[*n] = Some(ends_at);
                }
            }
        } else {
            for (_, number) in &answer.pieces {
                if let Some(n) = number {
                    read.piece_ends[*n] = Some(head_end);
                }
            }
        }
        // A streamed response is over only once its writer finished or dropped it.
        complete &= answer.whole.is_some() || answer.stream_ended;
        if !complete {
            // Cut short: an abandoned or cut stream, or one still being written.
            assert_eq!(at, out.len(), "bytes after a body cut short");
            read.ends.push(None);
            read.closing = world.ended;
            break;
        }
        if until_close {
            closing = true;
        }
        read.ends.push(Some(at));
        read.closing = closing;
        pos = at;
        seq += 1;
    }
    read
}

/// Where the chunk holding body byte number `offset` (counted from 1) ends, in a chunked
/// body starting at `start`.
fn chunk_end(out: &[u8], start: usize, offset: usize) -> usize {
    let mut at = start;
    let mut seen = 0;
    loop {
        let line_end = at + out[at..].windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&out[at..line_end]).unwrap(), 16).unwrap();
        at = line_end + 2 + size + 2;
        seen += size;
        if seen >= offset {
            return at;
        }
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut world = World {
        pipeline: Pipeline::default(),
        requests: Vec::new(),
        written: Vec::new(),
        completions: Rc::default(),
        handed_at: Vec::new(),
        accepted: Vec::new(),
        close_callbacks: Rc::default(),
        close_seq: Vec::new(),
        released_at: Vec::new(),
        ended: false,
        switched: false,
        budget: 0,
    };
    // Once the pipeline has ended, the connection reads no more requests, but handlers
    // still answer and write and the connection still pumps: none of it may reach the
    // socket. After a switch the connection hands its socket over: it stops.
    let mut written_at_end = None;
    for op in ops.into_iter().take(500) {
        if written_at_end.is_some() && matches!(op, Op::Request { .. } | Op::Switch(_)) {
            continue;
        }
        world.apply(op);
        // Bounded: what is out and written never exceeds what the answers justify.
        assert!(
            world.written.len() + world.pipeline.out_len() <= world.budget,
            "{} bytes out for answers worth {}",
            world.written.len() + world.pipeline.out_len(),
            world.budget
        );
        if world.switched {
            break;
        }
        if world.ended && written_at_end.is_none() {
            world.take();
            written_at_end = Some(world.written.len());
        }
    }
    // The connection writes what is out, then closes (or hands over, after a switch).
    if !world.switched {
        world.pump();
    }
    world.take();
    if let Some(at_end) = written_at_end {
        assert_eq!(
            world.written.len(),
            at_end,
            "bytes written after the pipeline ended"
        );
    }
    let read = read_back(&world, world.completions.borrow().len());
    // (The converse need not hold: an answer encoded before the client stopped sending
    // may end the connection without saying so, which HTTP/1.1 allows.)
    if read.closing && !world.switched {
        assert!(
            world.ended,
            "a response ended the connection the pipeline kept open"
        );
    }
    // Completions called with success had their pieces written before.
    for (n, handed) in world.handed_at.iter().enumerate() {
        if let Some(handed) = handed {
            let end = read.piece_ends[n].expect("a completion handed for a piece not written");
            assert!(
                end <= *handed,
                "completion {n} handed before its piece was written"
            );
        }
    }
    // Close callbacks let go only once their answer was out in full.
    for (n, released) in world.released_at.iter().enumerate() {
        if let Some(released) = released {
            let seq = world.close_seq[n] as usize;
            let end = read.ends.get(seq).copied().flatten();
            if let Some(end) = end {
                assert!(
                    end <= *released,
                    "close callback {n} let go before its answer was out"
                );
            } else {
                // Only a request answered before the callback was added: let go with the
                // next answer out.
                assert!(
                    seq < read.ends.len(),
                    "close callback {n} let go, request {seq} never answered"
                );
            }
        }
    }
    // The close: everything else is called or dropped.
    world.pipeline.abandon();
    drop(world.pipeline);
    for (n, fate) in world.completions.borrow().iter().enumerate() {
        assert!(fate.dropped, "completion {n} outlived the pipeline");
        // An accepted piece's writer hears once (written, or never to be); a refused
        // one's never.
        let calls = u32::from(world.accepted[n]);
        assert_eq!(
            fate.called, calls,
            "completion {n} called {} times",
            fate.called
        );
    }
    for (n, fate) in world.close_callbacks.borrow().iter().enumerate() {
        assert!(fate.dropped, "close callback {n} outlived the pipeline");
        assert!(fate.called <= 1);
        assert!(
            fate.called == 1 || world.released_at[n].is_some(),
            "close callback {n} neither called at the close nor let go after its answer"
        );
    }
});
