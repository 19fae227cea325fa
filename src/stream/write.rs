//! The write path of [`IoStream`]: a write tries the socket at once and buffers only what
//! it did not take; the rest goes out as the socket becomes writable; write callbacks and
//! write futures complete, in order, once their last byte is handed to the kernel.

use std::io;
use std::task::Waker;

use super::buffer::WriteBuffer;
use super::error::StreamError;
use super::iostream::{is_reset, IoStream, StreamState, WriteCallback};
use super::socket::StreamSocket;

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
            .total_queued()
            .saturating_sub(low_water as u64))
    }

    /// The bytes handed to the kernel since the stream was made (what a peer that stops
    /// reading stops moving).
    #[cfg(feature = "http")]
    pub(crate) fn sent_total(&self) -> u64 {
        let state = self.core.state.borrow();
        state.write_buffer.total_queued() - state.write_buffer.len() as u64
    }

    /// Calls `callback` once `target` bytes have been handed to the kernel (on a later
    /// iteration, also when that is already so), or with the error if the stream closes
    /// first.
    pub(crate) fn wait_for_write_total(&self, target: u64, callback: WriteCallback) {
        self.core
            .state
            .borrow_mut()
            .add_write_waiters()
            .push_callback(target, callback);
        self.complete_writes();
    }

    /// Sends as much of the write buffer as the socket takes, then completes the writes
    /// that are done.
    pub(crate) fn flush(&self) {
        let failure = {
            let mut state = self.core.state.borrow_mut();
            let StreamState {
                socket,
                write_buffer,
                ..
            } = &mut *state;
            let Some(socket) = socket else { return };
            write_all_now(socket, write_buffer)
        };
        match failure {
            Some(e) => self.fail_write(e),
            None => self.complete_writes(),
        }
    }

    /// Closes the stream after a write error, logging errors other than a peer leaving.
    fn fail_write(&self, e: io::Error) {
        if !is_reset(&e) {
            log::warn!(target: "ioloop", "write error on stream: {e}");
        }
        self.close_with(Some(e));
    }

    /// Completes the write callbacks and wakes the write futures whose bytes are all
    /// handed to the kernel (or that can never be, the stream being closed). Bytes a TLS
    /// session took may still wait in it as ciphertext (see
    /// [`StreamSocket::held_back`]): they complete once it has sent them, so a close
    /// after a drain loses nothing.
    pub(crate) fn complete_writes(&self) {
        let (done, wakers) = {
            let mut state = self.core.state.borrow_mut();
            let state = &mut *state;
            let held_back = state.socket.as_ref().map_or(0, StreamSocket::held_back);
            let closed_error = state.closed.then(|| state.closed_error());
            let written = state
                .write_buffer
                .total_written
                .saturating_sub(held_back as u64);
            let Some(waiters) = state.write_waiters() else {
                return;
            };
            let (done, wakers) = waiters.take_completed(written, closed_error.as_ref());
            if waiters.is_empty() {
                state.rare().write_waiters = None;
            }
            (done, wakers)
        };
        for (callback, result) in done {
            self.deliver(move |stream| callback(stream, result));
        }
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Queues `data`, handing it to the socket at once if nothing was waiting before, and
    /// returns the write total this write completes at; used by both write flavours. Only
    /// what the socket does not take is copied into the write buffer.
    pub(crate) fn queue_write(&self, data: &[u8]) -> Result<u64, StreamError> {
        self.queue_write_parts(&[data])
    }

    /// [`queue_write`](Self::queue_write) of the concatenation of `parts`, handed to the
    /// socket in one vectored write when nothing waits before them (a header and a body
    /// need not be copied together first).
    pub(crate) fn queue_write_parts(&self, parts: &[&[u8]]) -> Result<u64, StreamError> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let (target, failure, left_over) = {
            let mut state = self.core.state.borrow_mut();
            if state.closed {
                return Err(state.closed_error());
            }
            let max = state.limits().max_write_buffer_size();
            if total > max.saturating_sub(state.write_buffer.len()) {
                return Err(StreamError::BufferFull);
            }
            let StreamState {
                socket,
                write_buffer,
                ..
            } = &mut *state;
            let mut failure = None;
            let mut sent = 0;
            if write_buffer.is_empty() {
                // Nothing waits before it: straight from `parts` to the socket.
                if let Some(socket) = socket {
                    (sent, failure) = match parts {
                        [data] => write_now(socket, data),
                        _ => write_parts_now(socket, parts, total),
                    };
                }
                write_buffer.total_written += sent as u64;
            }
            // What the socket did not take, part by part.
            if sent < total {
                write_buffer.reserve(total - sent);
            }
            let mut skip = sent;
            for part in parts {
                let taken = skip.min(part.len());
                skip -= taken;
                write_buffer.push(&part[taken..]);
            }
            // Waiting: bytes the socket did not take, or ciphertext a TLS session could
            // not send yet.
            let left_over = sent < total || socket.as_ref().is_some_and(StreamSocket::wants_write);
            (write_buffer.total_queued(), failure, left_over)
        };
        if let Some(e) = failure {
            self.fail_write(e);
        } else if left_over {
            // The stream now waits for writability. (When the socket took everything, the
            // buffer is as empty as before and the interest holds.)
            self.update_interest();
        }
        Ok(target)
    }
}

/// Writes `data` until it is all written or the socket would block; returns the bytes
/// written and the error that ends the stream, if one happened.
fn write_now(socket: &StreamSocket, data: &[u8]) -> (usize, Option<io::Error>) {
    let mut sent = 0;
    while sent < data.len() {
        match socket.write(&data[sent..]) {
            Ok(0) => break,
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return (sent, Some(e)),
        }
    }
    (sent, None)
}

/// [`write_now`] of the concatenation of `parts` (`total` bytes), with vectored writes.
fn write_parts_now(
    socket: &StreamSocket,
    parts: &[&[u8]],
    total: usize,
) -> (usize, Option<io::Error>) {
    let mut sent = 0;
    while sent < total {
        // The parts from where the last write stopped.
        let mut skip = sent;
        let slices: Vec<io::IoSlice<'_>> = parts
            .iter()
            .filter_map(|part| {
                let taken = skip.min(part.len());
                skip -= taken;
                (taken < part.len()).then(|| io::IoSlice::new(&part[taken..]))
            })
            .collect();
        match socket.write_vectored(&slices) {
            Ok(0) => break,
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return (sent, Some(e)),
        }
    }
    (sent, None)
}

/// Writes what the transport holds, then the buffer, until both are empty or the socket
/// would block; returns the error that ends the stream, if one happened.
fn write_all_now(socket: &StreamSocket, buffer: &mut WriteBuffer) -> Option<io::Error> {
    // What the transport holds goes first (TLS ciphertext of earlier writes).
    match socket.send_pending() {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
        Err(e) => return Some(e),
        Ok(()) => {}
    }
    let (sent, failure) = write_now(socket, buffer.pending());
    buffer.advance(sent);
    failure
}
