//! The WebSocket protocol (RFC 6455) of one connection, without I/O: what the bytes
//! received mean and what must be sent back. Frames are read in place from an [`Input`]
//! (a stream's read buffer, or a test's bytes); data frames are assembled into
//! [`Message`]s within the size limit, text is checked as UTF-8 as it arrives (across
//! fragments), compressed messages are inflated (permessage-deflate), and pings and close
//! frames are answered with frames encoded for the caller to write. Every rule a peer can
//! break ends in [`Step::Fail`] with the close code the RFC names (1002, 1007, 1009).
//!
//! The closing handshake is one [`CloseState`], which decides what is read and sent:
//! messages flow while it is open; once our close frame is out, nothing more is sent and
//! messages are dropped while the peer's answer is awaited; once both close frames have
//! gone, a server reads no more (it closes TCP) and a client drops what arrives until
//! the server closes TCP; after a failure everything received is dropped.
//!
//! The caller keeps the sockets, the timers and the user's code: it lends the bytes it
//! received, writes the frames it is handed, and reports that TCP closed
//! ([`Protocol::terminate`]).

use super::frame::{
    apply_mask, check_utf8, close_payload, is_valid_close_code, parse_close, protocol_error,
    read_header, write_header, FrameHeader, Opcode, Role, Violation, INVALID_PAYLOAD,
    MESSAGE_TOO_BIG,
};
use super::mask::MaskSource;

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

/// Where the closing handshake stands (RFC 6455 §7), from the first close frame to the
/// end of TCP. It only moves forward, and every variant but `Open` refuses sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseState {
    /// Neither side has sent a close frame: messages flow both ways.
    Open,
    /// Our close frame went first; the peer's answer is awaited. Frames are still read
    /// (for that answer), and the messages among them dropped.
    ClosedByUs,
    /// The peer's close frame came first and ours answered it: the handshake is complete.
    ClosedByPeer,
    /// The peer answered our close frame: the handshake is complete.
    CloseAcknowledged,
    /// The peer broke the protocol: our close frame (with the violation's code, unless
    /// ours went before) is out, and whatever arrives is dropped until TCP ends.
    Failed(Violation),
    /// TCP is closed.
    Terminated,
}

/// The received bytes the protocol reads from, in place: taken from the front.
pub(crate) trait Input {
    /// Runs `f` with the bytes received and not yet consumed.
    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R;
    /// Drops the first `n` bytes.
    fn consume(&self, n: usize);
    /// Takes every byte after the first `skip` (handing over the memory that holds them,
    /// where it can), leaving none.
    fn take_after(&self, skip: usize) -> Vec<u8>;
}

/// What the reader can take now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accept {
    /// Nothing (the code a message goes to is running): [`Step::Stop`].
    Nothing,
    /// Control frames only (a message waits to be taken): a data frame stays unread,
    /// which is read backpressure, while pings are answered and a close is seen.
    Control,
    /// Any frame.
    Everything,
}

/// What [`Protocol::read`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// More bytes are needed.
    Wait,
    /// Nothing is read now: the reader cannot take what comes next (see [`Accept`]), the
    /// handshake is complete on a server (which closes TCP), or TCP is closed.
    Stop,
    /// Part of a message was read (or a message dropped while closing): read on.
    More,
    /// A whole message.
    Message(Message),
    /// A ping; `pong` is the frame that answers it, to write first (none once our close
    /// frame is out: nothing is sent after it).
    Ping {
        payload: Vec<u8>,
        pong: Option<Vec<u8>>,
    },
    /// A pong.
    Pong(Vec<u8>),
    /// The peer's close frame (its code and reason are in [`Protocol::peer_close`]);
    /// `answer` is our close frame that answers it, to write (none if ours went first).
    Close { answer: Option<Vec<u8>> },
    /// The peer broke the protocol; `close` is our close frame, to write (none if ours
    /// went first). What arrives from now on is dropped.
    Fail {
        violation: Violation,
        close: Option<Vec<u8>>,
    },
}

/// How [`Protocol::encode`] laid out a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Encoded {
    /// The payload was compressed, into `deflated`: the compressor's context now counts
    /// on the peer receiving it.
    pub(crate) compressed: bool,
    /// `frame` holds the whole frame (a client's, whose payload is masked into it);
    /// otherwise it holds the header, and the payload (or `deflated`) follows as it is.
    pub(crate) whole: bool,
}

/// The data frame whose payload is being read.
struct FrameRead {
    fin: bool,
    mask: Option<[u8; 4]>,
    remaining: u64,
    /// Payload bytes read so far (the masking offset).
    offset: u64,
}

/// A message being assembled, over one or more frames.
struct Assembly {
    text: bool,
    /// RSV1 on its first frame: `data` is deflated (checked as UTF-8 once inflated).
    compressed: bool,
    data: Vec<u8>,
    /// How much of `data` is known to be valid UTF-8.
    checked: usize,
}

/// The protocol state of one connection: the frame and message being read, the
/// closing handshake, and the means to encode frames (masking keys, the compressor).
pub(crate) struct Protocol {
    role: Role,
    max_message_size: usize,
    close_state: CloseState,
    /// The code and reason of the peer's close frame, once one came with them.
    peer_close: Option<(u16, String)>,
    frame: Option<FrameRead>,
    message: Option<Assembly>,
    /// Masking keys (client side).
    masks: Option<MaskSource>,
    /// permessage-deflate's compressor and decompressor, when agreed.
    #[cfg(feature = "deflate")]
    deflate: Option<Box<super::deflate::Deflate>>,
}

impl Protocol {
    /// A connection whose opening handshake is done, reading as `role` (a server reads
    /// masked frames and sends unmasked ones), with messages up to `max_message_size`
    /// bytes (inflated), compressed with `deflate` when the handshake agreed it.
    pub(crate) fn new(
        role: Role,
        max_message_size: usize,
        #[cfg(feature = "deflate")] deflate: Option<Box<super::deflate::Deflate>>,
    ) -> Protocol {
        Protocol {
            role,
            max_message_size,
            close_state: CloseState::Open,
            peer_close: None,
            frame: None,
            message: None,
            masks: (role == Role::Client).then(MaskSource::new),
            #[cfg(feature = "deflate")]
            deflate,
        }
    }

    /// Where the closing handshake stands.
    pub(crate) fn close_state(&self) -> CloseState {
        self.close_state
    }

    /// Whether frames may be sent: no close frame went either way, and TCP is open.
    pub(crate) fn is_open(&self) -> bool {
        self.close_state == CloseState::Open
    }

    /// Whether TCP is closed.
    pub(crate) fn is_terminated(&self) -> bool {
        self.close_state == CloseState::Terminated
    }

    /// The code and reason of the peer's close frame, once one came with them (an empty
    /// close frame has neither).
    pub(crate) fn peer_close(&self) -> Option<&(u16, String)> {
        self.peer_close.as_ref()
    }

    /// TCP closed, for whatever reason. Returns whether it was open until now.
    pub(crate) fn terminate(&mut self) -> bool {
        let was_open = !self.is_terminated();
        self.close_state = CloseState::Terminated;
        was_open
    }

    /// Starts the closing handshake: our close frame with `code` (a code RFC 6455 forbids
    /// on the wire, such as 1005 or 1006, is sent as 1000) and `reason` (cut to 123
    /// bytes), to write; `None` if a close frame went already, either way, or TCP is
    /// closed.
    pub(crate) fn close(&mut self, code: u16, reason: &str) -> Option<Vec<u8>> {
        if !self.is_open() {
            return None;
        }
        let code = if is_valid_close_code(code) {
            code
        } else {
            1000
        };
        self.close_state = CloseState::ClosedByUs;
        Some(self.encode_control(Opcode::Close, &close_payload(code, reason)))
    }

    /// Reads the next step out of `input`, taking no more than `accept` allows.
    pub(crate) fn read(&mut self, input: &impl Input, accept: Accept) -> Step {
        match self.close_state {
            CloseState::Open | CloseState::ClosedByUs => {}
            CloseState::Terminated => return Step::Stop,
            CloseState::Failed(_) => return discard(input),
            // The handshake is complete: the server ends TCP; the client reads on
            // (dropping anything) to see it do so.
            CloseState::ClosedByPeer | CloseState::CloseAcknowledged => {
                return match self.role {
                    Role::Server => Step::Stop,
                    Role::Client => discard(input),
                }
            }
        }
        match accept {
            Accept::Nothing => Step::Stop,
            Accept::Control if self.frame.is_some() => Step::Stop,
            _ if self.frame.is_some() => self.read_payload(input),
            _ => self.read_frame(input, accept == Accept::Everything),
        }
    }

    /// Reads the payload of the data frame under way, as far as it is here.
    fn read_payload(&mut self, input: &impl Input) -> Step {
        let frame = self.frame.as_mut().expect("a frame is under way");
        let assembly = self.message.as_mut().expect("a frame belongs to a message");
        let took = input.with_bytes(|buf| {
            let n = buf.len().min(frame.remaining as usize);
            let start = assembly.data.len();
            assembly.data.extend_from_slice(&buf[..n]);
            if let Some(mask) = frame.mask {
                apply_mask(&mut assembly.data[start..], mask, frame.offset);
            }
            n
        });
        if took == 0 && frame.remaining > 0 {
            return Step::Wait;
        }
        input.consume(took);
        frame.offset += took as u64;
        frame.remaining -= took as u64;
        let done = frame.remaining == 0;
        let complete = done && frame.fin;
        let plain_text = assembly.text && !assembly.compressed;
        if plain_text && !check_utf8(&assembly.data, &mut assembly.checked, complete) {
            return self.fail(Violation {
                code: INVALID_PAYLOAD,
                reason: "text message is not UTF-8",
            });
        }
        if !done {
            return Step::Wait;
        }
        self.frame = None;
        if !complete {
            return Step::More;
        }
        let assembly = self.message.take().expect("checked above");
        self.finish_message(assembly)
    }

    /// Reads the next frame's header, and a control frame's payload with it.
    /// `data`: the reader can take a data frame now.
    fn read_frame(&mut self, input: &impl Input, data: bool) -> Step {
        #[cfg(feature = "deflate")]
        let compression = self.deflate.is_some();
        #[cfg(not(feature = "deflate"))]
        let compression = false;
        let header = match input.with_bytes(|buf| read_header(buf, self.role, compression)) {
            Ok(Some(header)) => header,
            Ok(None) => return Step::Wait,
            Err(violation) => return self.fail(violation),
        };
        if header.opcode.is_control() {
            return self.read_control(input, &header);
        }
        if !data {
            return Step::Stop;
        }
        let so_far = match (&self.message, header.opcode) {
            (None, Opcode::Continuation) => {
                return self.fail(protocol_error(
                    "continuation frame with nothing to continue",
                ))
            }
            (Some(_), Opcode::Text | Opcode::Binary) => {
                return self.fail(protocol_error("new data frame inside a fragmented message"))
            }
            (Some(assembly), _) => assembly.data.len() as u64,
            (None, _) => 0,
        };
        if so_far + header.payload_len > self.max_message_size as u64 {
            return self.fail(Violation {
                code: MESSAGE_TOO_BIG,
                reason: "message over max_message_size",
            });
        }
        let whole =
            header.header_len as u64 + header.payload_len == input.with_bytes(<[u8]>::len) as u64;
        if whole && header.fin && self.message.is_none() {
            // A whole message and nothing after it (ping-pong's usual case): its bytes
            // become the message, without a copy into a new buffer.
            let mut data = input.take_after(header.header_len);
            if let Some(mask) = header.mask {
                apply_mask(&mut data, mask, 0);
            }
            let assembly = Assembly {
                text: header.opcode == Opcode::Text,
                compressed: header.rsv1,
                data,
                checked: 0,
            };
            return self.finish_message(assembly);
        }
        input.consume(header.header_len);
        if self.message.is_none() {
            self.message = Some(Assembly {
                text: header.opcode == Opcode::Text,
                compressed: header.rsv1,
                // What the header claims is reserved only up to a point: a peer may
                // announce much and send little.
                data: Vec::with_capacity(header.payload_len.min(64 * 1024) as usize),
                checked: 0,
            });
        }
        self.frame = Some(FrameRead {
            fin: header.fin,
            mask: header.mask,
            remaining: header.payload_len,
            offset: 0,
        });
        Step::More
    }

    /// A control frame, once its payload is all here.
    fn read_control(&mut self, input: &impl Input, header: &FrameHeader) -> Step {
        let total = header.header_len + header.payload_len as usize;
        let payload = input.with_bytes(|buf| {
            buf.get(header.header_len..total).map(|p| {
                let mut payload = p.to_vec();
                if let Some(mask) = header.mask {
                    apply_mask(&mut payload, mask, 0);
                }
                payload
            })
        });
        let Some(payload) = payload else {
            return Step::Wait;
        };
        input.consume(total);
        match header.opcode {
            Opcode::Ping => {
                let pong = self
                    .is_open()
                    .then(|| self.encode_control(Opcode::Pong, &payload));
                Step::Ping { payload, pong }
            }
            Opcode::Pong => Step::Pong(payload),
            _ => match parse_close(&payload) {
                Ok(close) => self.close_received(close),
                Err(violation) => self.fail(violation),
            },
        }
    }

    /// The peer's close frame (its code and reason, if it had them): answered with its
    /// code, unless ours went first. (Frames are read only while open or closed by us.)
    fn close_received(&mut self, close: Option<(u16, String)>) -> Step {
        let answer = if self.is_open() {
            self.close_state = CloseState::ClosedByPeer;
            let payload = close
                .as_ref()
                .map_or_else(Vec::new, |(code, _)| close_payload(*code, ""));
            Some(self.encode_control(Opcode::Close, &payload))
        } else {
            self.close_state = CloseState::CloseAcknowledged;
            None
        };
        if close.is_some() {
            self.peer_close = close;
        }
        Step::Close { answer }
    }

    /// A message whose last frame arrived: inflated if compressed, checked as UTF-8 if
    /// text (what `check_utf8` has not seen yet); dropped once our close frame is out.
    fn finish_message(&mut self, mut assembly: Assembly) -> Step {
        #[cfg(feature = "deflate")]
        if assembly.compressed {
            use super::deflate::InflateError;
            let deflate = self.deflate.as_deref_mut().expect("RSV1 only with deflate");
            assembly.data = match deflate.decompress(&assembly.data, self.max_message_size) {
                Ok(data) => data,
                Err(InflateError::TooBig) => {
                    return self.fail(Violation {
                        code: MESSAGE_TOO_BIG,
                        reason: "message over max_message_size once inflated",
                    })
                }
                Err(InflateError::Corrupt) => {
                    return self.fail(Violation {
                        code: INVALID_PAYLOAD,
                        reason: "invalid compressed data",
                    })
                }
            };
        }
        if assembly.text && !check_utf8(&assembly.data, &mut assembly.checked, true) {
            return self.fail(Violation {
                code: INVALID_PAYLOAD,
                reason: "text message is not UTF-8",
            });
        }
        if !self.is_open() {
            return Step::More;
        }
        Step::Message(if assembly.text {
            // `check_utf8` accepted every byte of the complete message.
            Message::Text(String::from_utf8(assembly.data).expect("checked as UTF-8"))
        } else {
            Message::Binary(assembly.data)
        })
    }

    /// Fails the connection (RFC 6455 §7.1.7): what was being read is dropped, and so is
    /// everything that arrives from now on. (Frames are read only while open or closed
    /// by us.)
    fn fail(&mut self, violation: Violation) -> Step {
        self.frame = None;
        self.message = None;
        let close = self.is_open().then(|| {
            self.encode_control(
                Opcode::Close,
                &close_payload(violation.code, violation.reason),
            )
        });
        self.close_state = CloseState::Failed(violation);
        Step::Fail { violation, close }
    }

    /// Encodes a frame (the only one of its message) for `payload`: compressed if it is
    /// a data frame the agreed compression takes, masked on a client. See [`Encoded`].
    // `deflated` is a vector for the compressor, which only the `deflate` feature has.
    #[cfg_attr(not(feature = "deflate"), allow(clippy::ptr_arg))]
    pub(crate) fn encode(
        &mut self,
        opcode: Opcode,
        payload: &[u8],
        frame: &mut Vec<u8>,
        deflated: &mut Vec<u8>,
    ) -> Encoded {
        #[cfg(feature = "deflate")]
        let compressed = match self.deflate.as_deref_mut() {
            Some(deflate) if !opcode.is_control() && payload.len() >= deflate.min_size => {
                deflated.clear();
                deflate.compress(payload, deflated);
                true
            }
            _ => false,
        };
        #[cfg(not(feature = "deflate"))]
        let compressed = false;
        let payload = if compressed { &deflated[..] } else { payload };
        frame.clear();
        let mask = self.masks.as_mut().map(MaskSource::next_mask);
        write_header(frame, true, compressed, opcode, payload.len(), mask);
        if let Some(mask) = mask {
            let start = frame.len();
            frame.extend_from_slice(payload);
            apply_mask(&mut frame[start..], mask, 0);
        }
        Encoded {
            compressed,
            whole: mask.is_some(),
        }
    }

    /// A control frame, whole.
    fn encode_control(&mut self, opcode: Opcode, payload: &[u8]) -> Vec<u8> {
        let mut frame = Vec::new();
        let encoded = self.encode(opcode, payload, &mut frame, &mut Vec::new());
        if !encoded.whole {
            frame.extend_from_slice(payload);
        }
        frame
    }
}

/// Drops every byte received: nothing more is parsed.
fn discard(input: &impl Input) -> Step {
    input.consume(input.with_bytes(<[u8]>::len));
    Step::Wait
}
