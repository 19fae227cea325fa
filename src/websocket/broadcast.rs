//! [`Broadcast`]: one message to many connections (a chat room, a push feed), its frame
//! encoded once; a member too slow to keep up is closed rather than buffered without
//! bound.

use super::frame::{write_header, Role};
use super::protocol::Message;
use super::socket::{SendError, WebSocket};

/// A message encoded once as a server frame, to send to many connections.
///
/// # Examples
///
/// ```no_run
/// use ioloop::websocket::{Broadcast, WebSocket};
///
/// fn announce(room: &[WebSocket], text: &str) -> usize {
///     Broadcast::new(text).send_to(room)
/// }
/// # let _ = announce;
/// ```
#[derive(Debug, Clone)]
pub struct Broadcast {
    message: Message,
    frame: Vec<u8>,
}

/// The close code and reason a member too slow for a broadcast gets.
pub(crate) const TOO_SLOW: (u16, &str) = (1008, "too slow: write buffer full");

impl Broadcast {
    /// Encodes `message` once.
    ///
    /// # Examples
    ///
    /// See [`Broadcast`].
    pub fn new(message: impl Into<Message>) -> Broadcast {
        let message = message.into();
        let payload = message.as_bytes();
        let mut frame = Vec::with_capacity(super::frame::MAX_HEADER + payload.len());
        // Sent uncompressed to every member (a compressed connection takes uncompressed
        // messages too), so the frame is the same for all.
        write_header(
            &mut frame,
            true,
            false,
            message.opcode(),
            payload.len(),
            None,
        );
        frame.extend_from_slice(payload);
        Broadcast { message, frame }
    }

    /// Sends the message to each of `members` and returns how many took it. A member
    /// whose unsent bytes are over its
    /// [`max_write_buffer`](super::WebSocketOptions::max_write_buffer) is closed with
    /// 1008 ("too slow: write buffer full"), so one reader that stalls costs at most its
    /// bound and the others are served; members closing or closed are skipped.
    ///
    /// # Examples
    ///
    /// See [`Broadcast`].
    pub fn send_to<'a>(&self, members: impl IntoIterator<Item = &'a WebSocket>) -> usize {
        let mut delivered = 0;
        for ws in members {
            let sent = match ws.role() {
                Role::Server => ws.send_encoded(&self.frame),
                // A client masks each frame itself.
                Role::Client => ws.send_message_now(&self.message),
            };
            match sent {
                Ok(()) => delivered += 1,
                Err(SendError::BufferFull) => ws.close(TOO_SLOW.0, TOO_SLOW.1),
                Err(SendError::Closed) => {}
            }
        }
        delivered
    }
}
