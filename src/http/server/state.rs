//! [`State`]: where one HTTP/1.1 server connection stands, sans-IO. Three enums say it,
//! each a `match` rather than a set of flags: what the bytes that arrive are for
//! ([`Reading`]), what the write side waits for ([`Writing`]), and whether another
//! request is read after those in hand ([`KeepAlive`]). With them are the responses owed
//! ([`Pipeline`]) and the deadlines.
//!
//! The connection does the I/O (its stream, its timer, the handlers) and asks the state
//! what follows: which read step is next, whether reading pauses or resumes, when the
//! last response is queued, what a refusal or a close takes out. Every transition here
//! is a method, tested below without a socket.

use std::rc::Rc;
use std::time::{Duration, Instant};

use super::super::body::{BodyDecoder, Framing};
use super::super::head::Version;
use super::super::request::Request;
use super::super::responder::BodyChunk;
use super::super::response::ResponseParts;
use super::super::service::Handler;
use super::pipeline::{Abandoned, Pipeline, Pump};
use crate::reactor::timer_heap::Timeout;
use crate::stream::IoStream;

/// Unsent response bytes above which the connection stops reading requests.
pub(super) const HIGH_WATER: usize = 256 * 1024;
/// The unsent bytes at which a connection paused by [`HIGH_WATER`] looks again.
pub(super) const LOW_WATER: usize = 64 * 1024;

/// The longest a connection lingers in all, however often the client sends (nginx's
/// `lingering_time`).
const LINGER_AT_MOST: Duration = Duration::from_secs(30);

/// The state of one connection.
pub(super) struct State {
    pub(super) reading: Reading,
    pub(super) writing: Writing,
    pub(super) keep_alive: KeepAlive,
    /// The responses owed, in request order, and the output they release.
    pub(super) pipeline: Pipeline,
    /// Where the scan for the end of the current head resumes.
    pub(super) head_scanned: usize,
    /// Empty lines dropped before the current head (they count against its limit).
    pub(super) blank_lines: usize,
    /// The reading side's deadline and what it is for.
    pub(super) read_deadline: Option<(Instant, Deadline)>,
    /// The writing side's deadline, while response bytes wait for a client that may have
    /// stopped reading, and the bytes the socket had taken when it was set.
    pub(super) write_deadline: Option<(Instant, u64)>,
    /// The loop timer for the earlier of the two deadlines, and when it fires; re-armed
    /// lazily (a timer that fires early re-arms itself).
    pub(super) timer: Option<(Timeout, Instant)>,
}

/// What the bytes that arrive are for.
pub(super) enum Reading {
    /// The next request head: waiting for it, or parsing it (whether one is parsed now
    /// is [`KeepAlive`]'s say).
    Head,
    /// A body, read whole to hand the request to its handler.
    Body(Box<BodyRead>),
    /// A body the handler reads itself: bytes are decoded as it asks.
    StreamedBody(Box<StreamedBody>),
    /// A request switches protocols once the responses before it are out; nothing after
    /// its head is read as HTTP.
    Upgrade(Box<PendingUpgrade>),
    /// Every response is sent and the write side shut down: what the client still sends
    /// is read and dropped until it closes or the linger deadline passes (RFC 9112 §9.6).
    /// Since when.
    Lingering(Instant),
    /// Nothing: the connection is closed, or handed to another protocol.
    Closed,
}

/// What the write side waits for. Responses themselves go out as the pipeline releases
/// them, whatever the state; this is about the watches on the stream's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Writing {
    /// Nothing: responses go out as they are ready.
    Ready,
    /// The output is over [`HIGH_WATER`] with reading paused: a watch on the stream
    /// calls back once it drains to [`LOW_WATER`], to resume reading.
    Backlogged,
    /// The last response is queued: once the stream has sent it, the write side shuts
    /// down and the connection lingers, then closes.
    Done,
    /// The connection is closed, or handed to another protocol.
    Closed,
}

/// Whether the connection reads another request after those in hand (hyper's `KA`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeepAlive {
    /// It does, as soon as the bytes arrive.
    Open,
    /// Not yet: the pipeline is full, or the unsent output is over [`HIGH_WATER`]. (The
    /// body of a request already read is still read.)
    Paused,
    /// Never: the requests read are answered, the last answer says `Connection: close`,
    /// then the connection closes.
    Disabled,
}

/// What a read deadline is for; each belongs to one [`Reading`] state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Deadline {
    /// [`Reading::Head`]: waiting for a request head (from accept, or since the first
    /// byte of a later one).
    Head,
    /// [`Reading::Head`], idle between keep-alive requests: nothing buffered.
    Idle,
    /// [`Reading::Body`] or [`Reading::StreamedBody`]: the body's next bytes.
    Body,
    /// [`Reading::Lingering`]: no byte from the client for this long.
    Linger,
}

/// The step of reading that the buffered bytes go to (see [`State::next_read`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReadStep {
    /// Parse a request head.
    Head,
    /// Decode the body being read whole.
    Body,
    /// Lingering: drop what arrives.
    Discard,
}

/// What the connection does after responses went out (see [`State::after_progress`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Progress {
    /// Nothing: the connection is closed, or already waits to linger.
    Nothing,
    /// The last response is queued ([`Writing::Done`]): once the stream has sent it,
    /// linger, then close.
    End,
    /// Reading resumes ([`KeepAlive::Open`] again): read the requests buffered.
    Resume,
    /// Go on reading as before.
    Wait {
        /// Watch the stream's output: once it drains to [`LOW_WATER`], call
        /// [`State::drain_watch_fired`] and look again.
        watch_drain: bool,
        /// Every request is answered: the idle deadline runs from now, unless bytes of
        /// the next request are buffered.
        idle: bool,
    },
}

/// A request that switches protocols, waiting for the responses before it.
pub(super) struct PendingUpgrade {
    pub(super) seq: u64,
    pub(super) request: Request,
    /// The `101` response.
    pub(super) response: ResponseParts,
    /// Takes the stream once the `101` is written.
    pub(super) upgrade: Box<dyn FnOnce(Request, IoStream)>,
}

/// A body read whole for its handler.
pub(super) struct BodyRead {
    pub(super) request: Request,
    pub(super) handler: Rc<dyn Handler>,
    pub(super) seq: u64,
    pub(super) decoder: BodyDecoder,
    pub(super) limit: u64,
    pub(super) body: Vec<u8>,
}

/// A body its handler reads piece by piece.
pub(super) struct StreamedBody {
    pub(super) seq: u64,
    pub(super) decoder: BodyDecoder,
    pub(super) limit: u64,
    pub(super) received: u64,
    /// The handler waiting for the next chunk.
    pub(super) waiting: Option<Box<dyn FnOnce(BodyChunk)>>,
}

/// What a closing connection takes out of its state, for its caller to drop or call
/// after the borrow ends (see [`State::close`]).
pub(super) struct Closed {
    /// What was being read: a handler, a waiting body reader, an upgrade callback.
    pub(super) reading: Reading,
    pub(super) pipeline: Abandoned,
    pub(super) timer: Option<(Timeout, Instant)>,
}

/// Whether the connection stays open after answering `request` (RFC 9112 §9.3), whose
/// body is framed so. HTTP/1.0 has no transfer codings: a chunked 1.0 request is framed,
/// but the connection closes after it (RFC 9112 §6.1).
pub(super) fn keeps_alive(request: &Request, framing: Framing) -> bool {
    match request.version() {
        Version::Http11 => !request.has_token("connection", "close"),
        Version::Http10 => {
            framing != Framing::Chunked && request.has_token("connection", "keep-alive")
        }
    }
}

impl State {
    /// A connection just accepted: waiting for its first request head.
    pub(super) fn new() -> State {
        State {
            reading: Reading::Head,
            writing: Writing::Ready,
            keep_alive: KeepAlive::Open,
            pipeline: Pipeline::new(),
            head_scanned: 0,
            blank_lines: 0,
            read_deadline: None,
            write_deadline: None,
            timer: None,
        }
    }

    /// Whether the connection is closed (or handed to another protocol).
    pub(super) fn is_closed(&self) -> bool {
        self.writing == Writing::Closed
    }

    /// What the buffered bytes go to now, if anything.
    pub(super) fn next_read(&self) -> Option<ReadStep> {
        match self.reading {
            // After a request that closes the connection nothing more is parsed, nor
            // while paused; an accepted request's body still is.
            Reading::Head if self.keep_alive == KeepAlive::Open => Some(ReadStep::Head),
            Reading::Head => None,
            Reading::Body(_) => Some(ReadStep::Body),
            // The handler pulls the body; requests after it wait.
            Reading::StreamedBody(_) => None,
            // What follows belongs to the new protocol.
            Reading::Upgrade(_) => None,
            Reading::Lingering(_) => Some(ReadStep::Discard),
            Reading::Closed => None,
        }
    }

    /// Whether the header timeout concerns the connection: it waits for a request head
    /// of the client's, not for room to read one.
    pub(super) fn waits_for_head(&self) -> bool {
        matches!(self.reading, Reading::Head) && self.keep_alive != KeepAlive::Paused
    }

    /// A request head was read: it takes the next slot of the pipeline. Reading pauses
    /// once the pipeline holds `max_pipeline` requests; after a request that does not
    /// keep the connection alive, none is read.
    pub(super) fn push_request(
        &mut self,
        keep_alive: bool,
        head_only: bool,
        version: Version,
        max_pipeline: usize,
    ) -> u64 {
        let seq = self.pipeline.push(keep_alive, head_only, version);
        if self.pipeline.len() >= max_pipeline {
            self.pause();
        }
        if !keep_alive {
            self.keep_alive = KeepAlive::Disabled;
        }
        seq
    }

    /// Reading the next request waits (see [`KeepAlive::Paused`]).
    pub(super) fn pause(&mut self) {
        if self.keep_alive == KeepAlive::Open {
            self.keep_alive = KeepAlive::Paused;
        }
    }

    /// No request after those in hand is read (their answers decide what the last one
    /// says).
    pub(super) fn disable_keep_alive(&mut self) {
        self.keep_alive = KeepAlive::Disabled;
    }

    /// The connection ends after the answer to `seq`, which says so; nothing after it is
    /// read.
    pub(super) fn end_after(&mut self, seq: u64) {
        self.disable_keep_alive();
        self.pipeline.end_after(seq);
    }

    /// No more requests are read: every request already read is answered, the last
    /// answer with `Connection: close`, then the connection closes.
    pub(super) fn read_no_more(&mut self) {
        self.disable_keep_alive();
        self.pipeline.end_after_last();
    }

    /// Moves the answered responses at the front of the pipeline into the output (see
    /// [`Pipeline::pump`]); one that ends the connection ends keep-alive.
    pub(super) fn pump(&mut self) -> Pump {
        let pump = self.pipeline.pump();
        if pump.ended {
            self.disable_keep_alive();
        }
        pump
    }

    /// After responses went out, with `unsent` bytes waiting in the stream (`in_batch`:
    /// while requests are being read, which writes once at its end): ends the
    /// connection once nothing more is owed, resumes reading if it was paused and need
    /// not be any more, pauses it if the output is over the high-water mark, and says
    /// what the connection does next.
    pub(super) fn after_progress(
        &mut self,
        unsent: usize,
        in_batch: bool,
        max_pipeline: usize,
    ) -> Progress {
        if self.is_closed() {
            return Progress::Nothing;
        }
        let empty = self.pipeline.is_empty();
        let mut watch_drain = false;
        match self.keep_alive {
            KeepAlive::Disabled if empty => {
                if self.writing == Writing::Done {
                    return Progress::Nothing;
                }
                self.writing = Writing::Done;
                return Progress::End;
            }
            KeepAlive::Paused if !in_batch => {
                if self.pipeline.len() < max_pipeline && unsent <= HIGH_WATER {
                    self.keep_alive = KeepAlive::Open;
                    return Progress::Resume;
                }
                if unsent > HIGH_WATER && self.writing == Writing::Ready {
                    self.writing = Writing::Backlogged;
                    watch_drain = true;
                }
            }
            _ => {}
        }
        // Idle between requests once one was answered; before the first, the header
        // timeout from accept stands.
        let idle = empty && matches!(self.reading, Reading::Head) && self.pipeline.answered_any();
        if unsent > HIGH_WATER {
            self.pause();
        }
        Progress::Wait { watch_drain, idle }
    }

    /// The watch set by [`Progress::Wait`]'s `watch_drain` called back.
    pub(super) fn drain_watch_fired(&mut self) {
        if self.writing == Writing::Backlogged {
            self.writing = Writing::Ready;
        }
    }

    /// Writes `100 Continue` for the request whose body is being read, if it is owed one
    /// and its body is wanted now (read whole, or asked for by a handler that streams it):
    /// see [`Pipeline::send_continue`].
    pub(super) fn send_continue_if_owed(&mut self) {
        let seq = match &self.reading {
            Reading::Body(read) => read.seq,
            Reading::StreamedBody(body) if body.waiting.is_some() => body.seq,
            _ => return,
        };
        self.pipeline.send_continue(seq);
    }

    /// The pending upgrade, once it is due: at the front of the pipeline (its `101` head
    /// is now in the output, after every response before it), and the connection not
    /// ending. Reading goes back to [`Reading::Head`] until the caller hands the
    /// connection over ([`close`](Self::close)).
    pub(super) fn take_due_upgrade(&mut self) -> Option<Box<PendingUpgrade>> {
        if !matches!(self.reading, Reading::Upgrade(_)) || self.keep_alive == KeepAlive::Disabled {
            return None;
        }
        match std::mem::replace(&mut self.reading, Reading::Head) {
            Reading::Upgrade(up) if self.pipeline.switch_protocols(up.seq, &up.response) => {
                Some(up)
            }
            other => {
                self.reading = other;
                None
            }
        }
    }

    /// The body read whole is complete: reading goes back to [`Reading::Head`]; returns
    /// it (`None` if no body was being read).
    pub(super) fn take_body(&mut self) -> Option<Box<BodyRead>> {
        if !matches!(self.reading, Reading::Body(_)) {
            return None;
        }
        match std::mem::replace(&mut self.reading, Reading::Head) {
            Reading::Body(read) => Some(read),
            other => {
                self.reading = other;
                None
            }
        }
    }

    /// Request `seq`, whose handler streams its body, is answered before the body was
    /// read in full: the rest is never read, so nothing after it can be parsed, and the
    /// connection ends after this answer (which says so). Returns the body's state (its
    /// waiting reader is a user value: the caller tells it and drops it outside the
    /// borrow); `None` if `seq` streams no body now.
    pub(super) fn take_unread_body(&mut self, seq: u64) -> Option<Box<StreamedBody>> {
        if !matches!(&self.reading, Reading::StreamedBody(body) if body.seq == seq) {
            return None;
        }
        match std::mem::replace(&mut self.reading, Reading::Head) {
            Reading::StreamedBody(body) => {
                self.end_after(seq);
                Some(body)
            }
            other => {
                self.reading = other;
                None
            }
        }
    }

    /// The request being read is refused (a malformed or oversized one, a timeout): no
    /// more requests are read. Returns what was being read (a handler, a waiting body
    /// reader, an upgrade: for the caller to use and drop outside its borrow) and the
    /// request's number, `None` between requests (the refusal then takes a slot of its
    /// own). `None` when nothing can be refused any more: every response was sent
    /// (lingering), or the connection is closed.
    pub(super) fn refuse(&mut self) -> Option<(Reading, Option<u64>)> {
        let seq = match &self.reading {
            Reading::Lingering(_) | Reading::Closed => return None,
            Reading::Head => None,
            Reading::Body(read) => Some(read.seq),
            Reading::StreamedBody(body) => Some(body.seq),
            Reading::Upgrade(pending) => Some(pending.seq),
        };
        self.disable_keep_alive();
        Some((std::mem::replace(&mut self.reading, Reading::Head), seq))
    }

    /// The handler waiting for its streamed body's next piece, taken (the client is
    /// gone: the caller tells it).
    pub(super) fn take_body_reader(&mut self) -> Option<Box<dyn FnOnce(BodyChunk)>> {
        match &mut self.reading {
            Reading::StreamedBody(body) => body.waiting.take(),
            _ => None,
        }
    }

    /// The client ended its side between requests: if answers are owed (and no handler
    /// waits to be told the client left), no more requests are read and they are sent.
    /// Returns whether so; else the connection closes now.
    pub(super) fn peer_gone(&mut self) -> bool {
        let owed = matches!(self.reading, Reading::Head)
            && !self.pipeline.is_empty()
            && !self.pipeline.has_close_callbacks();
        if owed {
            self.read_no_more();
        }
        owed
    }

    /// Every response is sent: from `now` the connection lingers (reads and drops what
    /// arrives). The write deadline has nothing left to guard. Returns the reading state
    /// replaced, for the caller to drop after its borrow; `None` if closed.
    pub(super) fn linger(&mut self, now: Instant) -> Option<Reading> {
        if self.is_closed() {
            return None;
        }
        self.write_deadline = None;
        Some(std::mem::replace(
            &mut self.reading,
            Reading::Lingering(now),
        ))
    }

    /// Sets the read deadline, due at `at`, for `kind`: a lingering connection's never
    /// later than [`LINGER_AT_MOST`] after it began. Returns when it is due.
    pub(super) fn set_read_deadline(&mut self, kind: Deadline, at: Instant) -> Instant {
        let at = match self.reading {
            Reading::Lingering(since) => at.min(since + LINGER_AT_MOST),
            _ => at,
        };
        self.read_deadline = Some((at, kind));
        at
    }

    /// The connection closes, or is handed to another protocol: nothing more is read or
    /// written. Returns what it held; `None` if it was closed already.
    pub(super) fn close(&mut self) -> Option<Closed> {
        if self.is_closed() {
            return None;
        }
        self.writing = Writing::Closed;
        self.keep_alive = KeepAlive::Disabled;
        Some(Closed {
            reading: std::mem::replace(&mut self.reading, Reading::Closed),
            pipeline: self.pipeline.abandon(),
            timer: self.timer.take(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Response;

    /// The pipeline limit in these rows.
    const MAX_PIPELINE: usize = 2;

    /// What happens to a connection, in the words of the connection that drives the state.
    #[derive(Debug, Clone, Copy)]
    enum Event {
        /// A request head is read (HTTP/1.1), keeping the connection alive or not.
        Read { keep_alive: bool },
        /// The last request read streams its body: its handler reads it.
        StreamsBody,
        /// A keep-alive request that switches protocols once the responses before it are
        /// out.
        Upgrade,
        /// Request N is answered whole, and the pipeline pumped.
        Answer(u64),
        /// Responses went out: `unsent` bytes wait in the stream. Traces what follows.
        Sent { unsent: usize, in_batch: bool },
        /// The watch on the output called back.
        DrainFired,
        /// The request being read is refused, as the connection refuses: a new slot
        /// between requests, else the request's own, answered and pumped. Traces it.
        Refuse,
        /// The client ends its side. Traces whether answers are still sent.
        PeerGone,
        /// A handler of request N waits for the close.
        OnClose(u64),
        /// The server shuts down: no more requests.
        ReadNoMore,
        /// Asks for a due upgrade. Traces it.
        TakeUpgrade,
        /// The last response is sent: the connection lingers.
        Linger,
        /// The connection closes. Traces it.
        Close,
    }

    use Event::*;

    const KA: Event = Read { keep_alive: true };
    const CLOSE: Event = Read { keep_alive: false };
    const SENT: Event = Sent {
        unsent: 0,
        in_batch: false,
    };

    /// Responses went out, and more than the high-water mark is still unsent.
    const OVER: Event = Sent {
        unsent: HIGH_WATER + 1,
        in_batch: false,
    };
    /// Responses went out, and the output drained to the low-water mark.
    const DRAINED: Event = Sent {
        unsent: LOW_WATER,
        in_batch: false,
    };

    fn progress_word(progress: Progress) -> String {
        match progress {
            Progress::Nothing => "nothing".into(),
            Progress::End => "end".into(),
            Progress::Resume => "resume".into(),
            Progress::Wait { watch_drain, idle } => format!(
                "wait{}{}",
                if watch_drain { "+watch" } else { "" },
                if idle { "+idle" } else { "" }
            ),
        }
    }

    /// A row's outcome: what the traced events said, and where the state ends.
    #[derive(Debug, PartialEq, Eq)]
    struct Outcome {
        trace: Vec<String>,
        keep_alive: KeepAlive,
        writing: Writing,
        next_read: Option<ReadStep>,
        /// Requests still owed an answer in full.
        owed: usize,
    }

    fn run(events: &[Event]) -> Outcome {
        let mut state = State::new();
        let mut trace = Vec::new();
        let mut last = None;
        let answer = |state: &mut State, seq| {
            state.pipeline.answer(seq, Response::new(200).into_parts());
            drop(state.pump());
        };
        for &event in events {
            match event {
                Read { keep_alive } => {
                    last =
                        Some(state.push_request(keep_alive, false, Version::Http11, MAX_PIPELINE));
                }
                StreamsBody => {
                    state.reading = Reading::StreamedBody(Box::new(StreamedBody {
                        seq: last.unwrap(),
                        decoder: BodyDecoder::for_framing(Framing::Length(3)).unwrap(),
                        limit: 3,
                        received: 0,
                        waiting: None,
                    }));
                }
                Upgrade => {
                    let seq = state.push_request(true, false, Version::Http11, MAX_PIPELINE);
                    let request = Request::parse(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
                    state.reading = Reading::Upgrade(Box::new(PendingUpgrade {
                        seq,
                        request,
                        response: Response::new(101).into_parts(),
                        upgrade: Box::new(|_, _| {}),
                    }));
                }
                Answer(seq) => answer(&mut state, seq),
                Sent { unsent, in_batch } => {
                    let progress = state.after_progress(unsent, in_batch, MAX_PIPELINE);
                    trace.push(progress_word(progress));
                }
                DrainFired => state.drain_watch_fired(),
                Refuse => match state.refuse() {
                    None => trace.push("nothing to refuse".into()),
                    Some((_, Some(seq))) => {
                        trace.push(format!("refused #{seq}"));
                        state.pipeline.end_after(seq);
                        answer(&mut state, seq);
                    }
                    Some((_, None)) => {
                        let seq = state.push_request(false, false, Version::Http11, MAX_PIPELINE);
                        trace.push(format!("refused in #{seq}"));
                        answer(&mut state, seq);
                    }
                },
                PeerGone => {
                    let owed = state.peer_gone();
                    trace.push(if owed { "answers go out" } else { "close now" }.into());
                }
                OnClose(seq) => state.pipeline.on_close(seq, Box::new(|| {})),
                ReadNoMore => state.read_no_more(),
                TakeUpgrade => trace.push(match state.take_due_upgrade() {
                    Some(up) => format!("upgrade #{}", up.seq),
                    None => "not due".into(),
                }),
                Linger => {
                    let replaced = state.linger(Instant::now());
                    assert!(replaced.is_some(), "lingering a closed connection");
                }
                Close => trace.push(match state.close() {
                    Some(_) => "closed".into(),
                    None => "closed already".into(),
                }),
            }
        }
        Outcome {
            trace,
            keep_alive: state.keep_alive,
            writing: state.writing,
            next_read: state.next_read(),
            owed: state.pipeline.len(),
        }
    }

    /// (what, events, trace, keep-alive, writing, next read, requests owed)
    type Row = (
        &'static str,
        &'static [Event],
        &'static [&'static str],
        KeepAlive,
        Writing,
        Option<ReadStep>,
        usize,
    );

    #[test]
    fn events_move_the_reading_writing_and_keep_alive_states() {
        use KeepAlive::{Disabled, Open, Paused};
        use ReadStep::{Discard, Head};
        use Writing::{Backlogged, Done, Ready};
        #[rustfmt::skip]
        let rows: &[Row] = &[
            ("a keep-alive request answered: idle, reading the next head",
             &[KA, Answer(0), SENT],
             &["wait+idle"], Open, Ready, Some(Head), 0),
            ("before any answer the connection is not idle (the header timeout stands)",
             &[SENT],
             &["wait"], Open, Ready, Some(Head), 0),
            ("Connection: close reads nothing more; answered, it ends, once",
             &[CLOSE, SENT, Answer(0), SENT, SENT],
             &["wait", "end", "nothing"], Disabled, Done, None, 0),
            ("the pipelining limit pauses reading; an answer resumes it",
             &[KA, KA, SENT, Answer(0), SENT],
             &["wait", "resume"], Open, Ready, Some(Head), 1),
            ("inside a batch a paused connection stays paused; the batch's end resumes",
             &[KA, KA, Answer(0), Sent { unsent: 0, in_batch: true }, SENT],
             &["wait", "resume"], Open, Ready, Some(Head), 1),
            ("output over the high-water mark pauses reading; one watch; its drain resumes",
             &[KA, Answer(0), OVER, OVER, OVER, DrainFired, DRAINED],
             &["wait+idle", "wait+watch+idle", "wait+idle", "resume"], Open, Ready, Some(Head), 0),
            ("still over the high-water mark when the pipeline has room: paused, one watch",
             &[KA, KA, OVER, Answer(0), OVER],
             &["wait+watch", "wait"], Paused, Backlogged, None, 1),
            ("a Connection: close while paused: the end wins",
             &[KA, CLOSE, Answer(1), Answer(0), SENT],
             &["end"], Disabled, Done, None, 0),
            ("a refusal between requests takes a slot, after which nothing is read",
             &[KA, KA, Refuse, Answer(0), Answer(1), SENT],
             &["refused in #2", "end"], Disabled, Done, None, 0),
            ("a refusal of a streamed body answers that request and ends",
             &[KA, KA, StreamsBody, Refuse, Answer(0), SENT],
             &["refused #1", "end"], Disabled, Done, None, 0),
            ("lingering after the end: nothing to refuse, what arrives is dropped",
             &[CLOSE, Answer(0), SENT, Linger, Refuse],
             &["end", "nothing to refuse"], Disabled, Done, Some(Discard), 0),
            ("the client leaving with answers owed: they go out, then the end",
             &[KA, KA, PeerGone, Answer(1), Answer(0), SENT],
             &["answers go out", "end"], Disabled, Done, None, 0),
            ("the client leaving with nothing owed: close now",
             &[KA, Answer(0), PeerGone],
             &["close now"], Open, Ready, Some(Head), 0),
            ("the client leaving while a handler waits for the close: close now",
             &[KA, OnClose(0), PeerGone],
             &["close now"], Open, Ready, Some(Head), 1),
            ("the client leaving mid-body: close now",
             &[KA, StreamsBody, PeerGone],
             &["close now"], Open, Ready, None, 1),
            ("a shutdown between requests ends at once",
             &[KA, Answer(0), ReadNoMore, SENT],
             &["end"], Disabled, Done, None, 0),
            ("an upgrade is due once the responses before it are out",
             &[KA, Upgrade, TakeUpgrade, Answer(0), TakeUpgrade],
             &["not due", "upgrade #1"], Paused, Ready, None, 0),
            ("an upgrade is not due on a connection that ends",
             &[Upgrade, ReadNoMore, TakeUpgrade],
             &["not due"], Disabled, Ready, None, 1),
            ("closed: nothing is read or written, and closing again takes nothing",
             &[KA, Close, Close, SENT, Refuse],
             &["closed", "closed already", "nothing", "nothing to refuse"],
             Disabled, Writing::Closed, None, 0),
        ];
        for &(what, events, trace, keep_alive, writing, next_read, owed) in rows {
            let want = Outcome {
                trace: trace.iter().map(|s| (*s).to_owned()).collect(),
                keep_alive,
                writing,
                next_read,
                owed,
            };
            assert_eq!(run(events), want, "{what}");
        }
    }

    #[test]
    fn keep_alive_follows_the_version_and_the_connection_field() {
        #[rustfmt::skip]
        let rows: &[(&str, Framing, bool)] = &[
            ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", Framing::Empty, true),
            ("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", Framing::Empty, false),
            ("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n", Framing::Empty, false),
            ("POST / HTTP/1.1\r\nHost: a\r\n\r\n", Framing::Chunked, true),
            ("GET / HTTP/1.0\r\n\r\n", Framing::Empty, false),
            ("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", Framing::Empty, true),
            ("POST / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", Framing::Chunked, false),
            ("POST / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", Framing::Length(3), true),
        ];
        for &(head, framing, want) in rows {
            let request = Request::parse(head.as_bytes()).unwrap();
            assert_eq!(keeps_alive(&request, framing), want, "{head:?} {framing:?}");
        }
    }

    #[test]
    fn a_lingering_deadline_is_capped_from_when_lingering_began() {
        let mut state = State::new();
        let now = Instant::now();
        let far = now + LINGER_AT_MOST * 2;
        assert_eq!(state.set_read_deadline(Deadline::Head, far), far);
        state.linger(now);
        let capped = state.set_read_deadline(Deadline::Linger, far);
        assert_eq!(capped, now + LINGER_AT_MOST);
        assert_eq!(state.read_deadline, Some((capped, Deadline::Linger)));
    }

    #[test]
    fn a_request_answered_before_its_streamed_body_ends_the_connection() {
        let mut state = State::new();
        let seq = state.push_request(true, false, Version::Http11, MAX_PIPELINE);
        state.reading = Reading::StreamedBody(Box::new(StreamedBody {
            seq,
            decoder: BodyDecoder::for_framing(Framing::Length(3)).unwrap(),
            limit: 3,
            received: 0,
            waiting: Some(Box::new(|_| {})),
        }));
        assert!(
            state.take_unread_body(seq + 1).is_none(),
            "another request's"
        );
        let body = state.take_unread_body(seq).expect("its body");
        assert!(
            body.waiting.is_some(),
            "handed back, to be told outside the borrow"
        );
        assert_eq!(state.keep_alive, KeepAlive::Disabled);
        assert!(matches!(state.reading, Reading::Head));
        assert!(state.take_unread_body(seq).is_none(), "once");
    }
}
