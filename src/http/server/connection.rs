//! One HTTP/1.1 connection on an [`IoStream`]: reading requests in place from the
//! stream's buffer, answering them in order, and closing when HTTP says so.
//!
//! This is the dispatcher, the I/O half: the stream, the timer, the service and the
//! handlers. What follows an event (the next read step, a pause, the end) is asked of
//! the connection's [`State`], and the bytes written are those its
//! [`Pipeline`](super::pipeline::Pipeline) releases; both are sans-IO.
//!
//! Reading. Every request head already buffered is parsed in one pass (pipelining); a
//! head is found by an incremental scan for its blank line, then parsed by `httparse`
//! and copied once into the [`Request`]. The service decides, before the body is read,
//! whether to answer at once or which handler gets it; a declared body over the limit
//! gets 413 before it is read (and before `100 Continue`). Bodies are decoded in place
//! (Content-Length or chunked) as they arrive.
//!
//! Answering. Each request takes the next slot of the pipeline. Responses may complete in
//! any order (a slow handler first, fast ones after); each is encoded into its slot, and
//! the slots at the front are moved, in order, into one output buffer, written to the
//! stream once per batch. Reading pauses while the pipeline is full or the stream holds
//! more than a high-water mark of unsent bytes, so a client that pipelines without
//! reading costs a bounded amount.
//!
//! Closing. An HTTP/1.0 request without `Connection: keep-alive`, a `Connection: close`,
//! a malformed request (400), an oversized head (431) or body (413), a timeout (408), or
//! the server shutting down ends the connection after the responses before it are
//! written. Then the connection lingers (RFC 9112 §9.6): it shuts down its write side
//! (a FIN after the last response) and reads and drops what the client still sends until
//! the client closes or `linger_timeout` passes, since closing with bytes unread would
//! make the kernel answer with a reset that can discard responses still in flight.
//!
//! Timers. One lazily re-armed loop timer enforces the connection's deadline: the header
//! timeout from accept (not from the first byte), the idle timeout between keep-alive
//! requests, and the body timeout.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::rc::{Rc, Weak};
use std::time::Instant;

use super::super::body::{request_framing, BodyDecoder, Framing};
use super::super::head::{
    find_head_end, leading_empty_lines, parse_head, HeadError, HeadLimits, ParsedHead, Version,
};
use super::super::request::Request;
use super::super::responder::{BodyChunk, RequestConnection, Responder, WrittenCallback};
use super::super::response::{Response, ResponseParts};
use super::super::service::{Dispatch, Handler};
use super::pipeline::{Abandoned, Output};
use super::shared::{LiveConnection, ServerShared};
use super::slot::BodyEnd;
use super::state::{
    keeps_alive, BodyRead, Closed, Deadline, PendingUpgrade, Progress, ReadStep, Reading, State,
    StreamedBody, HIGH_WATER, LOW_WATER,
};
use crate::reactor::ioloop::IoLoop;
use crate::reactor::panics::CallbackKind;
use crate::stream::{IoStream, StreamError};

/// A connection: shared by the stream's callbacks, the responders and the timer.
pub(crate) struct Connection {
    pub(super) stream: IoStream,
    server: Rc<ServerShared>,
    peer: SocketAddr,
    state: RefCell<State>,
    /// Nesting depth of request processing: completions inside it wait for its one write.
    batch_depth: Cell<u32>,
    /// The connection's key in the server's registry.
    registry_key: Cell<usize>,
}

impl Connection {
    /// Starts serving `stream`: the header timeout runs from now.
    pub(crate) fn start(stream: IoStream, peer: SocketAddr, server: Rc<ServerShared>) {
        let _ = stream.set_nodelay(true);
        stream.allow_half_close(true);
        let conn = Rc::new(Connection {
            stream,
            server,
            peer,
            state: RefCell::new(State::new()),
            batch_depth: Cell::new(0),
            registry_key: Cell::new(usize::MAX),
        });
        conn.registry_key.set(conn.server.register(&conn));
        // The stream's close callback owns the connection: it lives as long as the stream
        // is open (the loop keeps an open stream alive), and no longer.
        let owner = conn.clone();
        conn.stream
            .set_close_callback(move |_| owner.on_stream_closed());
        conn.set_deadline(Deadline::Head);
        conn.read_requests();
        if conn.server.is_shutting_down() {
            // Accepted in the same loop iteration as the shutdown began.
            conn.shut_down();
        }
    }

    /// The loop the connection's stream is on (not the thread's current one: a thread
    /// may hold more than one loop).
    fn ioloop(&self) -> Option<IoLoop> {
        self.stream.ioloop()
    }

    /// Reads and handles every request already buffered, then waits for more.
    fn read_requests(self: &Rc<Self>) {
        self.batch_depth.set(self.batch_depth.get() + 1);
        loop {
            // Answers given at once pile up in `out` within a batch: past the high-water
            // mark they go out now, and reading pauses if the socket does not take them.
            if self.state.borrow().pipeline.out_len() > HIGH_WATER {
                self.write_out();
                if self.stream.write_buffered() > HIGH_WATER {
                    self.state.borrow_mut().pause();
                }
            }
            let step = self.state.borrow().next_read();
            let more = match step {
                None => break,
                Some(ReadStep::Head) => self.read_head(),
                Some(ReadStep::Body) => self.read_body(),
                Some(ReadStep::Discard) => self.discard_input(),
            };
            if !more {
                break;
            }
        }
        self.batch_depth.set(self.batch_depth.get() - 1);
        self.flush();
    }

    /// Tries to take one request head from the buffer. Returns whether to go on reading.
    fn read_head(self: &Rc<Self>) -> bool {
        let limits = HeadLimits {
            max_bytes: self.server.options.max_head_bytes,
            max_headers: self.server.options.max_headers,
        };
        let found = {
            let mut state = self.state.borrow_mut();
            let state = &mut *state;
            let scanned = &mut state.head_scanned;
            // Empty lines already dropped before this head count against its limit, so
            // a peer cannot keep sending them for ever.
            let blank_before = state.blank_lines;
            self.stream.with_buffered(|buf| {
                let skip = leading_empty_lines(buf);
                let rest = &buf[skip..];
                let from = scanned.saturating_sub(skip).min(rest.len());
                let mut at = from;
                let end = find_head_end(rest, &mut at);
                *scanned = at + skip;
                match end {
                    Some(len) if blank_before + skip + len > limits.max_bytes => HeadScan::TooLarge,
                    Some(len) => HeadScan::Found {
                        skip,
                        head: parse_head(&rest[..len], limits).map(|h| (h, len)),
                    },
                    None if blank_before + buf.len() > limits.max_bytes => HeadScan::TooLarge,
                    None => HeadScan::Partial {
                        buffered: buf.len(),
                        skip,
                        empty: rest.is_empty(),
                    },
                }
            })
        };
        match found {
            HeadScan::Partial {
                buffered,
                skip,
                empty,
            } => {
                if skip > 0 {
                    // Empty lines before a request line are dropped (RFC 9112 §2.2).
                    self.stream.consume(skip);
                    let mut state = self.state.borrow_mut();
                    state.head_scanned = 0;
                    state.blank_lines += skip;
                }
                if !empty {
                    self.head_started();
                }
                self.wait_for_bytes(buffered - skip);
                false
            }
            HeadScan::TooLarge => {
                self.fail(431, "the request head is over the limit");
                false
            }
            HeadScan::Found { skip, head } => {
                let mut state = self.state.borrow_mut();
                state.head_scanned = 0;
                state.blank_lines = 0;
                drop(state);
                match head {
                    Err(e) => {
                        log::debug!(target: "ioloop::http", "{} from {}", e, self.peer);
                        self.fail(e.status(), "malformed request");
                        false
                    }
                    Ok((head, len)) => {
                        self.stream.consume(skip + len);
                        // The head came in time; what follows sets its own deadline.
                        self.clear_deadline();
                        #[allow(unused_mut)] // marked only with the tls feature
                        let mut request = Request::new(head, self.peer);
                        #[cfg(feature = "tls")]
                        if self.stream.is_tls() {
                            request.set_secure();
                        }
                        self.handle_head(request);
                        true
                    }
                }
            }
        }
    }

    /// A head whose first bytes arrived while the connection was idle: the header timeout
    /// runs from now.
    fn head_started(self: &Rc<Self>) {
        let idle = matches!(
            self.state.borrow().read_deadline,
            Some((_, Deadline::Idle)) | None
        );
        if idle {
            self.set_deadline(Deadline::Head);
        }
    }

    /// A request head was read: dispatch it.
    fn handle_head(self: &Rc<Self>, mut request: Request) {
        let framing = match request_framing(request.header_fields()) {
            Ok(framing) => framing,
            Err(e) => {
                log::debug!(target: "ioloop::http", "{e} from {}", self.peer);
                return self.fail(400, e.0);
            }
        };
        // One valid Host, which HTTP/1.1 requires: else 400 (RFC 9112 §3.2).
        if let Err(why) = request.check_host() {
            return self.fail(400, why);
        }
        let keep_alive = keeps_alive(&request, framing);
        // Exactly `HEAD`: methods are case-sensitive (RFC 9110 §9.1).
        let head_only = request.method() == "HEAD";
        let expects_continue = request.version() == Version::Http11
            && request
                .header("expect")
                .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"));
        let seq = self.push_request(keep_alive, head_only, request.version());
        match self.server.service.dispatch(&mut request) {
            Dispatch::Respond(response) => {
                if framing != Framing::Empty {
                    // The body is never read: nothing after it can be parsed.
                    self.end_after(seq);
                }
                self.answer(seq, response.into_parts());
            }
            Dispatch::Upgrade { response, upgrade } => {
                if framing != Framing::Empty || !keep_alive {
                    self.end_after(seq);
                    let refused = Response::error(400).body("an upgrade request has no body");
                    return self.answer(seq, refused.into_parts());
                }
                self.state.borrow_mut().reading = Reading::Upgrade(Box::new(PendingUpgrade {
                    seq,
                    request,
                    response: response.into_parts(),
                    upgrade,
                }));
                self.upgrade_if_due();
            }
            Dispatch::Handle {
                handler,
                body_limit,
                stream_body,
            } => {
                let limit = body_limit.unwrap_or(self.server.options.max_body_size);
                if matches!(framing, Framing::Length(n) if n > limit) {
                    self.end_after(seq);
                    return self.answer(seq, Response::error(413).into_parts());
                }
                let decoder = BodyDecoder::for_framing(framing);
                if decoder.is_some() && expects_continue {
                    self.state.borrow_mut().pipeline.owe_continue(seq);
                }
                match (decoder, stream_body) {
                    (None, _) => self.call_handler(&handler, request, seq),
                    (Some(decoder), false) => {
                        self.state.borrow_mut().reading = Reading::Body(Box::new(BodyRead {
                            request,
                            handler,
                            seq,
                            decoder,
                            limit,
                            body: Vec::new(),
                        }));
                        self.set_deadline(Deadline::Body);
                    }
                    (Some(decoder), true) => {
                        self.state.borrow_mut().reading =
                            Reading::StreamedBody(Box::new(StreamedBody {
                                seq,
                                decoder,
                                limit,
                                received: 0,
                                waiting: None,
                            }));
                        self.call_handler(&handler, request, seq);
                    }
                }
            }
        }
    }

    /// Reads what is buffered of the current body. Returns whether to go on reading.
    fn read_body(self: &Rc<Self>) -> bool {
        self.send_continue_if_owed();
        let outcome = {
            let mut state = self.state.borrow_mut();
            let Reading::Body(read) = &mut state.reading else {
                return false;
            };
            let read = &mut **read;
            self.stream.with_buffered(|buf| {
                read.decoder.decode(buf, |data| {
                    read.body.extend_from_slice(data);
                })
            })
        };
        match outcome {
            Err(e) => {
                log::debug!(target: "ioloop::http", "{e} from {}", self.peer);
                self.fail(400, "malformed body");
                false
            }
            Ok(decoded) => {
                self.stream.consume(decoded.consumed);
                let over = {
                    let state = self.state.borrow();
                    matches!(&state.reading, Reading::Body(read) if read.body.len() as u64 > read.limit)
                };
                if over {
                    self.fail(413, "the body is over the limit");
                    return false;
                }
                if !decoded.done {
                    let buffered = self.stream.buffered();
                    self.wait_for_bytes(buffered);
                    return false;
                }
                let Some(read) = self.state.borrow_mut().take_body() else {
                    return false;
                };
                let BodyRead {
                    mut request,
                    handler,
                    seq,
                    body,
                    ..
                } = *read;
                request.set_body(body);
                self.clear_deadline();
                self.call_handler(&handler, request, seq);
                true
            }
        }
    }

    /// Writes `100 Continue` for the request whose body is being read, once it is owed
    /// (see [`State::send_continue_if_owed`]).
    fn send_continue_if_owed(&self) {
        self.state.borrow_mut().send_continue_if_owed();
    }

    /// Switches protocols once the upgrade request is at the front of the pipeline (every
    /// response before it is in the output): writes the `101` head and everything before
    /// it, lets go of the stream (no timer, no registry, no close callback of this
    /// connection's) and hands it over.
    fn upgrade_if_due(self: &Rc<Self>) {
        let Some(pending) = self.state.borrow_mut().take_due_upgrade() else {
            return;
        };
        self.write_out();
        let closed = self.state.borrow_mut().close();
        if let Some(Closed {
            reading,
            pipeline,
            timer,
        }) = closed
        {
            // What the state held (close callbacks among it) is dropped, not called: the
            // connection lives on as the new protocol.
            drop((reading, pipeline));
            if let (Some((timer, _)), Some(ioloop)) = (timer, self.ioloop()) {
                ioloop.remove_timeout(timer);
            }
        }
        self.server.unregister(self.registry_key.get());
        // The close callback owned this connection; the new protocol sets its own, and
        // decides for itself what the peer ending its side means.
        self.stream.set_close_callback(|_| {});
        self.stream.allow_half_close(false);
        let PendingUpgrade {
            request, upgrade, ..
        } = *pending;
        let stream = self.stream.clone();
        let completed = Cell::new(false);
        let call = AssertUnwindSafe(|| {
            upgrade(request, stream);
            completed.set(true);
        });
        match self.ioloop() {
            Some(ioloop) => ioloop.run_guarded(CallbackKind::Callback, self.server.site, call),
            None => {
                let _ = std::panic::catch_unwind(call);
            }
        }
        if !completed.get() {
            // It panicked (reported to the panic policy): nobody owns the stream.
            self.stream.close();
        }
    }

    /// Calls `handler` for `request`, whose answer goes to slot `seq`. A panic is reported
    /// to the loop's panic policy; the responder it dropped answers 500.
    fn call_handler(self: &Rc<Self>, handler: &Rc<dyn Handler>, request: Request, seq: u64) {
        let responder = Responder::new(self.clone(), seq);
        let handler = handler.clone();
        let call = AssertUnwindSafe(move || handler.call(request, responder));
        match self.ioloop() {
            Some(ioloop) => ioloop.run_guarded(CallbackKind::Callback, self.server.site, call),
            None => {
                let _ = std::panic::catch_unwind(call);
            }
        }
    }

    /// A request head was read: it takes the next slot (see [`State::push_request`]).
    fn push_request(&self, keep_alive: bool, head_only: bool, version: Version) -> u64 {
        let max_pipeline = self.server.options.max_pipeline;
        self.state
            .borrow_mut()
            .push_request(keep_alive, head_only, version, max_pipeline)
    }

    /// The connection ends after the answer to `seq` (which says so): nothing after it is
    /// read.
    fn end_after(&self, seq: u64) {
        self.state.borrow_mut().end_after(seq);
    }

    /// Answers the request in slot `seq` with a whole response.
    fn answer(self: &Rc<Self>, seq: u64, response: ResponseParts) {
        self.drop_unread_body(seq);
        let answered = self.state.borrow_mut().pipeline.answer(seq, response);
        if answered {
            self.pump();
        }
    }

    /// Starts a streamed response in slot `seq`.
    fn start_body(self: &Rc<Self>, seq: u64, response: ResponseParts, length: Option<u64>) {
        self.drop_unread_body(seq);
        let started = self
            .state
            .borrow_mut()
            .pipeline
            .start_body(seq, response, length);
        if let Some(keep_alive) = started {
            if !keep_alive {
                self.state.borrow_mut().disable_keep_alive();
            }
            self.pump();
        }
    }

    /// A handler that streams its request body answers before reading all of it: the rest
    /// is never read, so nothing after it can be parsed, and the connection closes after
    /// this answer (which says so).
    fn drop_unread_body(self: &Rc<Self>, seq: u64) {
        let Some(body) = self.state.borrow_mut().take_unread_body(seq) else {
            return;
        };
        let waiting = body.waiting;
        self.clear_deadline();
        if let Some(waiting) = waiting {
            waiting(BodyChunk::Failed(500));
        }
    }

    /// Adds a piece of a streamed body to slot `seq`; `written` runs once it is sent.
    fn write_body(
        self: &Rc<Self>,
        seq: u64,
        data: &[u8],
        written: Option<WrittenCallback>,
    ) -> Result<(), StreamError> {
        if self.state.borrow().is_closed() {
            return Err(closed_error());
        }
        if self.stream.write_buffered() > self.server.options.max_response_buffer {
            return Err(StreamError::BufferFull);
        }
        let written = self
            .state
            .borrow_mut()
            .pipeline
            .write_body(seq, data, written);
        match written {
            Ok(()) => {
                self.pump();
                Ok(())
            }
            // The refused callback (a user value) is dropped here, outside the borrow.
            Err(refused) => {
                drop(refused);
                Err(closed_error())
            }
        }
    }

    /// Ends the streamed body of slot `seq`.
    fn finish_body(self: &Rc<Self>, seq: u64) {
        let end = self.state.borrow_mut().pipeline.finish_body(seq);
        match end {
            Some(BodyEnd::Complete) => self.pump(),
            Some(BodyEnd::Cut) => {
                self.state.borrow_mut().disable_keep_alive();
                self.pump();
            }
            None => {}
        }
    }

    /// A streamed body that will never be finished (its writer was dropped): the response
    /// is cut, so the connection closes after what was written.
    fn abandon_body(self: &Rc<Self>, seq: u64) {
        let abandoned = self.state.borrow_mut().pipeline.abandon_body(seq);
        if abandoned {
            self.state.borrow_mut().disable_keep_alive();
            self.pump();
        }
    }

    /// Moves the answered slots at the front of the pipeline into the output, in order,
    /// and writes it unless a batch is being processed (which writes once at its end).
    fn pump(self: &Rc<Self>) {
        let mut pump = self.state.borrow_mut().pump();
        // Close callbacks of answered requests and slots never to be sent: user values,
        // dropped once the borrow has ended; the writers of pieces never to be sent hear so.
        let unsent = pump.released.take_unsent_waiters();
        drop(pump.released);
        unsent
            .into_iter()
            .for_each(|waiter| self.fail_write_later(waiter));
        // The request now at the front may owe its client a `100 Continue`, or switch
        // protocols.
        self.send_continue_if_owed();
        self.upgrade_if_due();
        if self.batch_depth.get() == 0 {
            self.flush();
        } else {
            self.after_progress();
        }
    }

    /// Writes the output to the stream, and hands the stream the write completions of the
    /// body pieces in it (so they complete once those bytes reach the kernel). A client
    /// that leaves bytes unsent gets the write deadline.
    fn write_out(self: &Rc<Self>) {
        let Output { bytes, waiters } = {
            let mut state = self.state.borrow_mut();
            if state.is_closed() {
                return;
            }
            state.pipeline.take_output()
        };
        if !bytes.is_empty() {
            if self.stream.write(&bytes).is_err() {
                self.close();
            }
            // The allocation is kept for the next batch.
            self.state.borrow_mut().pipeline.recycle(bytes);
        }
        if !waiters.is_empty() {
            let target = self.stream.drain_target(0).ok();
            for waiter in waiters {
                match target {
                    Some(target) => self
                        .stream
                        .wait_for_write_total(target, Box::new(move |_, result| waiter(result))),
                    None => self.fail_write_later(waiter),
                }
            }
        }
        if self.stream.output_pending() && self.state.borrow().write_deadline.is_none() {
            self.set_write_deadline();
        }
    }

    /// Writes the output, then moves on (see [`after_progress`](Self::after_progress)).
    fn flush(self: &Rc<Self>) {
        self.write_out();
        self.after_progress();
    }

    /// After responses went out: close if the connection is done, resume reading if it
    /// was paused and is not any more, and set the deadline for what comes next (see
    /// [`State::after_progress`]).
    fn after_progress(self: &Rc<Self>) {
        let unsent = self.stream.write_buffered();
        let in_batch = self.batch_depth.get() > 0;
        let max_pipeline = self.server.options.max_pipeline;
        let progress = self
            .state
            .borrow_mut()
            .after_progress(unsent, in_batch, max_pipeline);
        match progress {
            Progress::Nothing => {}
            Progress::End => {
                // Everything owed is written (or queued): once it is sent, linger, then
                // close.
                let weak = Rc::downgrade(self);
                self.stream
                    .drained_then(0, move |stream, sent| match weak.upgrade() {
                        Some(conn) if sent.is_ok() => conn.linger(),
                        Some(conn) => conn.close(),
                        None => stream.close(),
                    });
            }
            Progress::Resume => self.read_requests(),
            Progress::Wait { watch_drain, idle } => {
                if watch_drain {
                    let weak = Rc::downgrade(self);
                    self.stream.drained_then(LOW_WATER, move |_, _| {
                        if let Some(conn) = weak.upgrade() {
                            conn.state.borrow_mut().drain_watch_fired();
                            conn.after_progress();
                        }
                    });
                }
                if idle && self.stream.buffered() == 0 {
                    self.set_deadline(Deadline::Idle);
                }
            }
        }
    }

    /// Waits for more than `seen` buffered bytes, then reads on.
    fn wait_for_bytes(self: &Rc<Self>, seen: usize) {
        if self.stream.reading() {
            return;
        }
        let weak = Rc::downgrade(self);
        self.stream.wait_for_more_then(seen, move |_, more| {
            let Some(conn) = weak.upgrade() else { return };
            match more {
                Ok(()) => {
                    if matches!(conn.state.borrow().reading, Reading::StreamedBody(_)) {
                        conn.feed_streamed_body();
                    } else {
                        conn.read_requests();
                    }
                }
                Err(_) => conn.peer_gone(),
            }
        });
    }

    /// Answers the request being read with `status` and closes after the responses before
    /// it (a malformed request, an oversized head or body, a timeout).
    fn fail(self: &Rc<Self>, status: u16, why: &'static str) {
        // Nothing to refuse once every response is sent (lingering), or closed.
        let Some((reading, seq)) = self.state.borrow_mut().refuse() else {
            return;
        };
        log::debug!(target: "ioloop::http", "{status} for {}: {why}", self.peer);
        // The request being read (its handler, a waiting body reader, an upgrade
        // callback) is used and dropped here, outside the borrow.
        let mut page = None;
        match reading {
            // The route's page (the application's).
            Reading::Body(read) => page = read.handler.error_page(status, &read.request),
            Reading::StreamedBody(body) => {
                if let Some(waiting) = body.waiting {
                    waiting(BodyChunk::Failed(status));
                }
            }
            _ => {}
        }
        let seq = match seq {
            Some(seq) => {
                self.end_after(seq);
                seq
            }
            None => self.push_request(false, false, Version::Http11),
        };
        let answered = self.state.borrow().pipeline.is_answered(seq);
        if answered == Some(true) {
            self.pump();
        } else {
            let response = page.map_or_else(|| Response::error(status), |p| p.status_code(status));
            self.answer(seq, response.into_parts());
        }
        self.clear_deadline();
    }

    /// The peer closed or reset the connection, or ended its side, while more bytes were
    /// awaited. A client that half-closed after whole requests still gets their answers
    /// (as nginx and Tornado give them): nothing more is read, and the connection closes
    /// once they are written. Otherwise (nothing owed, a request cut short, a reset) it
    /// closes now; so does a connection whose handlers asked to be told when the client
    /// leaves (`Responder::on_connection_close`, a long poll): TCP cannot tell a half-close
    /// from a client that is gone, and such a handler is waiting for exactly that.
    fn peer_gone(self: &Rc<Self>) {
        let waiting = self.state.borrow_mut().take_body_reader();
        if let Some(waiting) = waiting {
            waiting(BodyChunk::Failed(400));
        }
        let answers_owed = self.state.borrow_mut().peer_gone();
        if answers_owed && !self.stream.closed() {
            return self.after_progress();
        }
        self.close();
    }

    /// Every response is sent: shuts down the write side and reads what the client still
    /// sends until it closes or the linger deadline passes (RFC 9112 §9.6), then closes.
    fn linger(self: &Rc<Self>) {
        // A server shutting down does not wait for its clients to close.
        let linger_timeout = self.server.options.linger_timeout;
        let lingers = !linger_timeout.is_zero() && !self.server.is_shutting_down();
        let Some(ioloop) = self.ioloop().filter(|_| lingers) else {
            return self.close();
        };
        let replaced = self.state.borrow_mut().linger(ioloop.time());
        let Some(replaced) = replaced else {
            return; // closed meanwhile
        };
        // Whatever the reading state held (nothing, after the last response) goes after
        // the borrow.
        drop(replaced);
        self.stream
            .with_socket(crate::stream::StreamSocket::shutdown_write);
        self.read_requests();
    }

    /// Lingering: drops what the client sent, renews the linger deadline and waits for
    /// more (the client's close ends the wait, and `peer_gone` closes). Returns false:
    /// nothing more to parse.
    fn discard_input(self: &Rc<Self>) -> bool {
        let buffered = self.stream.buffered();
        self.stream.consume(buffered);
        self.set_deadline(Deadline::Linger);
        self.wait_for_bytes(0);
        false
    }

    /// Closes the connection now (whatever is unsent is lost). A connection handed over
    /// to another protocol is not this one's to close.
    fn close(self: &Rc<Self>) {
        if self.state.borrow().is_closed() {
            return;
        }
        self.stream.close();
        self.on_stream_closed();
    }

    fn on_stream_closed(self: &Rc<Self>) {
        // The slots (with the write completions of their streamed bodies) and the reading
        // state (a waiting body reader, an upgrade) hold user values: they are dropped
        // after the borrow ends, as the callbacks are called.
        let closed = self.state.borrow_mut().close();
        let Some(Closed {
            reading,
            pipeline,
            timer,
        }) = closed
        else {
            return;
        };
        let Abandoned {
            slots,
            waiters,
            close_callbacks,
        } = pipeline;
        drop(slots);
        drop(reading);
        if let (Some((timer, _)), Some(ioloop)) = (timer, self.ioloop()) {
            ioloop.remove_timeout(timer);
        }
        self.server.unregister(self.registry_key.get());
        waiters
            .into_iter()
            .for_each(|waiter| self.fail_write_later(waiter));
        close_callbacks.into_iter().for_each(|(_, f)| f());
    }

    /// Tells a write completion that its piece will never be sent, on a later iteration:
    /// never from inside the writer's own call (`write_then`), which may hold its own
    /// state. A closed or gone loop runs nothing later: it is told now.
    fn fail_write_later(&self, waiter: WrittenCallback) {
        match self.ioloop().filter(|ioloop| !ioloop.is_closed()) {
            Some(ioloop) => ioloop.add_callback(move |_| waiter(Err(closed_error()))),
            None => waiter(Err(closed_error())),
        }
    }

    fn is_closed(&self) -> bool {
        // Asked by user code (a writer, a responder): a busy state is an open one.
        self.state.try_borrow().is_ok_and(|state| state.is_closed())
    }

    /// Runs `work` on the next loop iteration, for a `Drop` that finds the state busy.
    /// Without a running loop the connection is gone with it, and there is nothing to do.
    fn defer(self: Rc<Self>, work: impl FnOnce(Rc<Connection>) + 'static) {
        if let Some(ioloop) = self.ioloop() {
            ioloop.add_callback(move |_| work(self));
        }
    }

    /// Runs `f` once the connection closes (at once if it is closed), unless request
    /// `seq` is answered first.
    fn on_close(&self, seq: u64, f: Box<dyn FnOnce()>) {
        let mut state = self.state.borrow_mut();
        if state.is_closed() {
            drop(state);
            f();
        } else {
            state.pipeline.on_close(seq, f);
        }
    }

    /// The server is shutting down: an idle connection closes now; one with requests in
    /// flight reads no more and closes once they are answered (with `Connection: close`).
    fn shut_down(self: &Rc<Self>) {
        if self.state.borrow().is_closed() {
            return; // closed, or handed over to another protocol
        }
        if matches!(self.state.borrow().reading, Reading::Upgrade(_)) {
            // Not switched yet (responses before it are still owed): refused.
            self.fail(503, "the server is shutting down");
        }
        if matches!(self.state.borrow().reading, Reading::Lingering(_)) {
            return self.close(); // everything was sent
        }
        let idle = {
            let mut state = self.state.borrow_mut();
            state.read_no_more();
            state.pipeline.is_empty() && matches!(state.reading, Reading::Head)
        };
        // Bytes still unsent are a response in flight: it closes once they are sent (or
        // at the write deadline).
        if idle && !self.stream.output_pending() {
            self.close();
        } else {
            self.after_progress();
        }
    }

    // ---- streamed request bodies ----

    /// The handler of slot `seq` asks for the next piece of its body.
    fn next_body_chunk(self: &Rc<Self>, seq: u64, f: Box<dyn FnOnce(BodyChunk)>) {
        let mut state = self.state.borrow_mut();
        match &mut state.reading {
            Reading::StreamedBody(body) if body.seq == seq => {
                body.waiting = Some(f);
                drop(state);
                self.send_continue_if_owed();
                self.set_deadline(Deadline::Body);
                self.flush();
                self.feed_streamed_body();
            }
            _ => {
                drop(state);
                f(BodyChunk::End);
            }
        }
    }

    /// Hands the waiting handler the next piece of its streamed body, if one is buffered.
    fn feed_streamed_body(self: &Rc<Self>) {
        let decoded = {
            let mut state = self.state.borrow_mut();
            let Reading::StreamedBody(body) = &mut state.reading else {
                return;
            };
            if body.waiting.is_none() {
                return;
            }
            let mut chunk = Vec::new();
            let outcome = self.stream.with_buffered(|buf| {
                body.decoder
                    .decode(buf, |data| chunk.extend_from_slice(data))
            });
            outcome.map(|decoded| (decoded, chunk))
        };
        let (decoded, chunk) = match decoded {
            Ok(found) => found,
            Err(_) => return self.fail(400, "malformed body"),
        };
        self.stream.consume(decoded.consumed);
        let (over, waiting) = {
            let mut state = self.state.borrow_mut();
            let Reading::StreamedBody(body) = &mut state.reading else {
                return;
            };
            body.received += chunk.len() as u64;
            let over = body.received > body.limit;
            // Over the limit, the reader stays for `fail` to tell it why (413).
            let waiting = if !over && (!chunk.is_empty() || decoded.done) {
                body.waiting.take()
            } else {
                None
            };
            (over, waiting)
        };
        if over {
            return self.fail(413, "the body is over the limit");
        }
        match waiting {
            Some(waiting) => {
                if decoded.done {
                    let done =
                        std::mem::replace(&mut self.state.borrow_mut().reading, Reading::Head);
                    drop(done);
                    self.clear_deadline();
                }
                // After the last data, the next ask gets the end.
                if chunk.is_empty() {
                    waiting(BodyChunk::End);
                } else {
                    waiting(BodyChunk::Data(chunk));
                }
                if decoded.done {
                    self.read_requests();
                }
            }
            None => {
                let buffered = self.stream.buffered();
                self.wait_for_bytes(buffered);
            }
        }
    }

    // ---- deadlines ----

    /// Sets the reading side's deadline (replacing the one before).
    fn set_deadline(self: &Rc<Self>, kind: Deadline) {
        let options = &self.server.options;
        let limit = match kind {
            Deadline::Head => options.header_timeout,
            Deadline::Idle => options.idle_timeout,
            Deadline::Body => options.body_timeout,
            Deadline::Linger => options.linger_timeout,
        };
        let Some(ioloop) = self.ioloop() else { return };
        let at = self
            .state
            .borrow_mut()
            .set_read_deadline(kind, ioloop.time() + limit);
        self.arm_timer_by(&ioloop, at);
    }

    fn clear_deadline(&self) {
        self.state.borrow_mut().read_deadline = None;
    }

    /// Sets the writing side's deadline: the client must take some of the unsent bytes
    /// within the write timeout.
    fn set_write_deadline(self: &Rc<Self>) {
        let Some(ioloop) = self.ioloop() else { return };
        let at = ioloop.time() + self.server.options.write_timeout;
        let sent = self.stream.sent_total();
        self.state.borrow_mut().write_deadline = Some((at, sent));
        self.arm_timer_by(&ioloop, at);
    }

    /// Makes the timer fire no later than `at`; one that fires earlier re-arms itself.
    fn arm_timer_by(self: &Rc<Self>, ioloop: &IoLoop, at: Instant) {
        let armed = matches!(self.state.borrow().timer, Some((_, fires)) if fires <= at);
        if !armed {
            self.arm_timer(ioloop, at);
        }
    }

    fn arm_timer(self: &Rc<Self>, ioloop: &IoLoop, at: Instant) {
        let old = self.state.borrow_mut().timer.take();
        if let Some((old, _)) = old {
            ioloop.remove_timeout(old);
        }
        let weak: Weak<Connection> = Rc::downgrade(self);
        let timer = ioloop.add_timeout(at, move |ioloop| {
            if let Some(conn) = weak.upgrade() {
                conn.state.borrow_mut().timer = None;
                conn.on_deadline(ioloop);
            }
        });
        self.state.borrow_mut().timer = Some((timer, at));
    }

    fn on_deadline(self: &Rc<Self>, ioloop: &IoLoop) {
        let now = ioloop.time();
        let write_deadline = self.state.borrow().write_deadline;
        if let Some((at, sent_then)) = write_deadline {
            if at <= now {
                self.state.borrow_mut().write_deadline = None;
                if self.stream.output_pending() {
                    if self.stream.sent_total() == sent_then {
                        log::debug!(
                            target: "ioloop::http",
                            "{} took no response bytes in time: closed",
                            self.peer
                        );
                        return self.close();
                    }
                    self.set_write_deadline(); // it reads, slowly: another period
                }
            }
        }
        let due = self
            .state
            .borrow()
            .read_deadline
            .filter(|&(at, _)| at <= now);
        if let Some((_, kind)) = due {
            self.clear_deadline();
            match kind {
                // Still sending the last response: not idle yet (the write deadline
                // guards a client that stopped reading).
                Deadline::Idle if self.stream.output_pending() => {
                    self.set_deadline(Deadline::Idle);
                }
                Deadline::Idle => {
                    log::debug!(target: "ioloop::http", "idle connection from {} closed", self.peer);
                    self.shut_down();
                }
                Deadline::Head => {
                    // Timers run before the iteration's I/O: bytes already in the socket
                    // are read after this. Decide once they are.
                    let conn = self.clone();
                    ioloop.add_callback(move |_| conn.head_timed_out());
                }
                Deadline::Body => self.fail(408, "the request took too long"),
                Deadline::Linger => {
                    log::debug!(target: "ioloop::http", "{} lingered long enough: closed", self.peer);
                    return self.close();
                }
            }
        }
        // Whichever deadline is still ahead keeps the timer.
        let next = {
            let state = self.state.borrow();
            if state.is_closed() {
                return;
            }
            let read = state.read_deadline.map(|(at, _)| at);
            let send = state.write_deadline.map(|(at, _)| at);
            read.into_iter().chain(send).min()
        };
        if let Some(next) = next {
            self.arm_timer_by(ioloop, next);
        }
    }

    /// The header timeout passed: a connection that sent nothing and is owed nothing
    /// closes silently; one in the middle of a head gets 408. One whose request arrived
    /// meanwhile, or that waits for its answers (paused, or nothing sent since), goes on.
    fn head_timed_out(self: &Rc<Self>) {
        let (waiting_for_head, owed) = {
            let state = self.state.borrow();
            (state.waits_for_head(), !state.pipeline.is_empty())
        };
        if !waiting_for_head {
            return;
        }
        match (self.stream.buffered(), owed) {
            (0, false) => {
                log::debug!(target: "ioloop::http", "no request from {} in time", self.peer);
                self.close();
            }
            (0, true) => {} // the answers still owed set the next deadline
            _ => self.fail(408, "the request head took too long"),
        }
    }
}

// The inherent methods of the same names do the work; these are the views the responders
// and the server's shutdown have of a connection.
impl RequestConnection for Connection {
    fn answer(self: Rc<Self>, seq: u64, response: ResponseParts) {
        // A responder dropped while the state is borrowed (by user code that runs inside
        // a borrow it should not) answers on the next iteration instead of panicking.
        if self.state.try_borrow_mut().is_err() {
            return self.defer(move |conn| Connection::answer(&conn, seq, response));
        }
        Connection::answer(&self, seq, response);
    }

    fn start_body(self: Rc<Self>, seq: u64, head: ResponseParts, length: Option<u64>) {
        Connection::start_body(&self, seq, head, length);
    }

    fn write_body(
        self: Rc<Self>,
        seq: u64,
        data: &[u8],
        written: Option<WrittenCallback>,
    ) -> Result<(), StreamError> {
        Connection::write_body(&self, seq, data, written)
    }

    fn finish_body(self: Rc<Self>, seq: u64) {
        Connection::finish_body(&self, seq);
    }

    fn abandon_body(self: Rc<Self>, seq: u64) {
        // Called from a writer's `Drop`: never a panic, whatever holds the state.
        if self.state.try_borrow_mut().is_err() {
            return self.defer(move |conn| Connection::abandon_body(&conn, seq));
        }
        Connection::abandon_body(&self, seq);
    }

    fn next_body_chunk(self: Rc<Self>, seq: u64, callback: Box<dyn FnOnce(BodyChunk)>) {
        Connection::next_body_chunk(&self, seq, callback);
    }

    fn is_closed(&self) -> bool {
        Connection::is_closed(self)
    }

    fn on_close(&self, seq: u64, callback: Box<dyn FnOnce()>) {
        Connection::on_close(self, seq, callback);
    }
}

impl LiveConnection for Connection {
    fn shut_down(self: Rc<Self>) {
        Connection::shut_down(&self);
    }

    fn close(self: Rc<Self>) {
        Connection::close(&self);
    }
}

enum HeadScan {
    Partial {
        buffered: usize,
        skip: usize,
        empty: bool,
    },
    TooLarge,
    Found {
        skip: usize,
        head: Result<(ParsedHead, usize), HeadError>,
    },
}

/// The error of a write to a closed connection.
pub(super) fn closed_error() -> StreamError {
    StreamError::Closed { real_error: None }
}
