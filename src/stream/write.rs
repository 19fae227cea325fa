//! The write path of [`IoStream`]: a write tries the socket at once and buffers only what
//! it did not take; the rest goes out as the socket becomes writable; write callbacks and
//! write futures complete, in order, once their last byte is handed to the kernel.

use std::io;
use std::task::Waker;

use super::error::StreamError;
use super::iostream::{is_reset, IoStream};

impl IoStream {
    /// The write total at which at most `low_water` of the bytes written so far still wait
    /// for the socket: what a drain waits for.
    pub(crate) fn drain_target(&self, low_water: usize) -> Result<u64, StreamError> {
        let state = self.core.state.borrow();
        if state.closed {
            return Err(state.closed_error());
        }
        Ok(state
            .write_buffer
            .total_queued
            .saturating_sub(low_water as u64))
    }

    /// Sends as much of the write buffer as the socket takes, then completes the writes
    /// that are done.
    pub(crate) fn flush(&self) {
        let Some(socket) = self.socket() else { return };
        let mut failure = None;
        {
            let mut state = self.core.state.borrow_mut();
            while !state.write_buffer.is_empty() {
                match socket.write(state.write_buffer.pending()) {
                    Ok(0) => break,
                    Ok(n) => {
                        state.write_buffer.advance(n);
                        state.write_buffer.total_written += n as u64;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
        }
        if let Some(e) = failure {
            if !is_reset(&e) {
                log::warn!(target: "ioloop", "write error on stream: {e}");
            }
            self.close_with(Some(e));
            return;
        }
        self.complete_writes();
    }

    /// Completes the write callbacks and wakes the write futures whose bytes are all
    /// handed to the kernel (or that can never be, the stream being closed).
    pub(crate) fn complete_writes(&self) {
        let (done, wakers) = {
            let mut state = self.core.state.borrow_mut();
            let written = state.write_buffer.total_written;
            let mut done = Vec::new();
            while let Some((target, _)) = state.write_callbacks.front() {
                if *target > written && !state.closed {
                    break;
                }
                let (target, callback) = state.write_callbacks.pop_front().expect("peeked");
                let result = if target <= written {
                    Ok(())
                } else {
                    Err(state.closed_error())
                };
                done.push((callback, result));
            }
            (done, std::mem::take(&mut state.write_wakers))
        };
        for (callback, result) in done {
            self.deliver(move |stream| callback(stream, result));
        }
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Queues `data` (trying the socket at once) and returns the total byte count this
    /// write completes at; used by both write flavours.
    pub(crate) fn queue_write(&self, data: &[u8]) -> Result<u64, StreamError> {
        let socket = {
            let mut state = self.core.state.borrow_mut();
            if state.closed {
                return Err(state.closed_error());
            }
            if let Some(max) = state.options.max_write_buffer_size {
                if state.write_buffer.len() + data.len() > max {
                    return Err(StreamError::BufferFull);
                }
            }
            state.write_buffer.total_queued += data.len() as u64;
            if !state.write_buffer.is_empty() {
                state.write_buffer.push(data);
                return Ok(state.write_buffer.total_queued);
            }
            state.socket.clone()
        };
        // Nothing queued before: hand the bytes to the socket directly, buffer the rest.
        let mut sent = 0;
        let mut failure = None;
        if let Some(socket) = socket {
            while sent < data.len() {
                match socket.write(&data[sent..]) {
                    Ok(0) => break,
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
        }
        let target = {
            let mut state = self.core.state.borrow_mut();
            state.write_buffer.total_written += sent as u64;
            state.write_buffer.push(&data[sent..]);
            state.write_buffer.total_queued
        };
        if let Some(e) = failure {
            if !is_reset(&e) {
                log::warn!(target: "ioloop", "write error on stream: {e}");
            }
            self.close_with(Some(e));
        } else if sent < data.len() {
            // Bytes were left over: the stream now waits for writability. (When the socket
            // took everything, the buffer is as empty as before and the interest holds.)
            self.update_interest();
        }
        Ok(target)
    }
}
