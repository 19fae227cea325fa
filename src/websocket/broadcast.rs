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
    /// One welcome, encoded once, sent to every connection:
    ///
    /// ```
    /// use ioloop::web::Application;
    /// use ioloop::websocket::{websocket, websocket_connect, Broadcast, Message};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let welcome = Broadcast::new(vec![1u8, 2, 3]);
    /// let route = websocket(move |ws, _req| {
    ///     welcome.send_to([&ws]);
    ///     async move { while ws.recv().await.is_some() {} }
    /// });
    /// let (_server, addr) = Application::new().route("/", route).bind(&ioloop, "127.0.0.1:0")?;
    /// let got = ioloop.run_sync(async move {
    ///     let ws = websocket_connect(&format!("ws://{addr}/")).await?;
    ///     Ok::<_, Box<dyn std::error::Error>>(ws.recv().await)
    /// })??;
    /// assert_eq!(got, Some(Message::Binary(vec![1, 2, 3])));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    /// A route that tells its members once the second one has come:
    ///
    /// ```
    /// use std::{cell::{Cell, RefCell}, rc::Rc};
    /// use ioloop::web::Application;
    /// use ioloop::websocket::{websocket, websocket_connect, Broadcast, Message};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let (members, delivered) = (Rc::new(RefCell::new(Vec::new())), Rc::new(Cell::new(0)));
    /// let (m, d) = (members.clone(), delivered.clone());
    /// let route = websocket(move |ws, _req| {
    ///     m.borrow_mut().push(ws.clone());
    ///     if m.borrow().len() == 2 {
    ///         d.set(Broadcast::new("both here").send_to(m.borrow().iter()));
    ///     }
    ///     async move { while ws.recv().await.is_some() {} }
    /// });
    /// let (_server, addr) = Application::new().route("/", route).bind(&ioloop, "127.0.0.1:0")?;
    /// let got = ioloop.run_sync(async move {
    ///     let url = format!("ws://{addr}/");
    ///     let (a, b) = (websocket_connect(&url).await?, websocket_connect(&url).await?);
    ///     Ok::<_, Box<dyn std::error::Error>>((a.recv().await, b.recv().await))
    /// })??;
    /// assert_eq!(delivered.get(), 2);
    /// let both = Some(Message::from("both here"));
    /// assert_eq!(got, (both.clone(), both));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
