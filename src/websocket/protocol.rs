//! The WebSocket protocol of one connection, without I/O: for now, the [`Message`] it
//! carries.

use super::frame::Opcode;

/// A whole WebSocket message.
///
/// # Examples
///
/// ```
/// use ioloop::websocket::Message;
/// assert_eq!(Message::from("hi"), Message::Text("hi".into()));
/// assert_eq!(Message::from(vec![1u8, 2]).as_bytes(), &[1, 2]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (valid UTF-8, checked).
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

impl Message {
    /// The payload's bytes.
    ///
    /// # Examples
    ///
    /// See [`Message`].
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(bytes) => bytes,
        }
    }

    /// The payload, taken out of the message.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::websocket::Message;
    /// assert_eq!(Message::from("hi").into_bytes(), b"hi");
    /// ```
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Message::Text(text) => text.into_bytes(),
            Message::Binary(bytes) => bytes,
        }
    }

    pub(crate) fn opcode(&self) -> Opcode {
        match self {
            Message::Text(_) => Opcode::Text,
            Message::Binary(_) => Opcode::Binary,
        }
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Message {
        Message::Text(text.to_owned())
    }
}

impl From<String> for Message {
    fn from(text: String) -> Message {
        Message::Text(text)
    }
}

impl From<Vec<u8>> for Message {
    fn from(bytes: Vec<u8>) -> Message {
        Message::Binary(bytes)
    }
}

impl From<&[u8]> for Message {
    fn from(bytes: &[u8]) -> Message {
        Message::Binary(bytes.to_vec())
    }
}
