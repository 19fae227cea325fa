//! The server's sans-IO [`Pipeline`](super::pipeline::Pipeline) with the connection's
//! calls spelled in public types, for the `http_pipeline` fuzz target (feature `fuzzing`,
//! through `crate::fuzzing::http::Pipeline`). Each method is the one the connection calls
//! for the same event; what the real methods hand back to be dropped outside a borrow is
//! dropped here, where nothing is borrowed.

use super::super::head::Version;
use super::super::responder::WrittenCallback;
use super::super::response::Response;
use super::connection::closed_error;
use super::pipeline;
use super::slot::BodyEnd;
use crate::stream::StreamError;

/// A write completion as the target sees it: called with whether the bytes were written.
pub type Completion = Box<dyn FnOnce(bool)>;

/// One connection's pipeline of owed responses (see the module doc).
#[allow(missing_debug_implementations)]
pub struct Pipeline(pipeline::Pipeline);

/// What [`Pipeline::take_output`] hands to the stream.
#[allow(missing_debug_implementations)]
pub struct Output {
    /// The bytes to write, in response order.
    pub bytes: Vec<u8>,
    /// The completions of the body pieces in `bytes`, for once they are written.
    pub completions: Vec<Completion>,
}

impl Default for Pipeline {
    fn default() -> Pipeline {
        Pipeline(pipeline::Pipeline::new())
    }
}

impl Pipeline {
    /// A request is read; returns its sequence number.
    pub fn push(&mut self, keep_alive: bool, head_only: bool, http11: bool) -> u64 {
        let version = if http11 {
            Version::Http11
        } else {
            Version::Http10
        };
        self.0.push(keep_alive, head_only, version)
    }

    /// Bytes released and not yet taken.
    pub fn out_len(&self) -> usize {
        self.0.out_len()
    }

    /// The connection ends after the response to `seq`.
    pub fn end_after(&mut self, seq: u64) {
        self.0.end_after(seq);
    }

    /// The connection ends after the responses owed now (no more requests are read).
    pub fn end_after_last(&mut self) {
        self.0.end_after_last();
    }

    /// Request `seq` sent `Expect: 100-continue`.
    pub fn owe_continue(&mut self, seq: u64) {
        self.0.owe_continue(seq);
    }

    /// Request `seq`'s body is wanted: writes `100 Continue` if owed and allowed now.
    pub fn send_continue(&mut self, seq: u64) -> bool {
        self.0.send_continue(seq)
    }

    /// Whether `seq` is answered (`None`: not in the pipeline).
    pub fn is_answered(&self, seq: u64) -> Option<bool> {
        self.0.is_answered(seq)
    }

    /// Answers `seq` whole.
    pub fn answer(&mut self, seq: u64, response: Response) -> bool {
        self.0.answer(seq, response.into_parts())
    }

    /// Starts a streamed answer to `seq`: whether the connection stays open after it,
    /// `None` if nothing started.
    pub fn start_body(
        &mut self,
        seq: u64,
        response: Response,
        length: Option<u64>,
    ) -> Option<bool> {
        self.0.start_body(seq, response.into_parts(), length)
    }

    /// Adds a body piece to `seq`'s streamed answer; false if refused (the completion is
    /// dropped uncalled).
    pub fn write_body(&mut self, seq: u64, data: &[u8], completion: Option<Completion>) -> bool {
        let written = completion.map(|completion| -> WrittenCallback {
            Box::new(move |result| completion(result.is_ok()))
        });
        self.0.write_body(seq, data, written).is_ok()
    }

    /// Ends `seq`'s streamed body: `Some(true)` complete, `Some(false)` cut short of its
    /// length (the connection must close), `None` if none was streaming.
    pub fn finish_body(&mut self, seq: u64) -> Option<bool> {
        self.0.finish_body(seq).map(|end| end == BodyEnd::Complete)
    }

    /// `seq`'s writer is dropped mid-body.
    pub fn abandon_body(&mut self, seq: u64) -> bool {
        self.0.abandon_body(seq)
    }

    /// Switches protocols for `seq` if it is at the front and unanswered.
    pub fn switch_protocols(&mut self, seq: u64, response: Response) -> bool {
        self.0.switch_protocols(seq, &response.into_parts())
    }

    /// Adds a close callback for `seq`, let go once `seq` is answered.
    pub fn on_close(&mut self, seq: u64, callback: Box<dyn FnOnce()>) {
        self.0.on_close(seq, callback);
    }

    /// Moves what may go out into the output; true if a response ended the connection.
    /// What it releases is dropped here, and the completions of pieces it releases
    /// unsent are called with `false`.
    pub fn pump(&mut self) -> bool {
        let mut pump = self.0.pump();
        let unsent = pump.released.take_unsent_waiters();
        drop(pump.released);
        for waiter in unsent {
            waiter(written(false));
        }
        pump.ended
    }

    /// Takes the output for the stream.
    pub fn take_output(&mut self) -> Output {
        let output = self.0.take_output();
        Output {
            bytes: output.bytes,
            completions: output
                .waiters
                .into_iter()
                .map(|waiter| -> Completion { Box::new(move |ok| waiter(written(ok))) })
                .collect(),
        }
    }

    /// The connection closes, as the connection does it: the responses still owed are
    /// dropped, the completions of pieces never written (the output's and the slots')
    /// are called with `false`, and the close callbacks are called.
    pub fn abandon(&mut self) {
        let abandoned = self.0.abandon();
        drop(abandoned.slots);
        for waiter in abandoned.waiters {
            waiter(written(false));
        }
        for (_, callback) in abandoned.close_callbacks {
            callback();
        }
    }
}

/// A write completion's result: written, or not because the connection closed.
fn written(ok: bool) -> Result<(), StreamError> {
    if ok {
        Ok(())
    } else {
        Err(closed_error())
    }
}
