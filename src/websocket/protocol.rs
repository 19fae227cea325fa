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
    /// ```
    /// use ioloop::websocket::Message;
    /// assert_eq!(Message::Text("hé".into()).as_bytes(), "hé".as_bytes());
    /// assert_eq!(Message::Binary(vec![0, 255]).as_bytes(), [0, 255]);
    /// ```
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
    pub(super) compressed: bool,
    /// `frame` holds the whole frame (a client's, whose payload is masked into it);
    /// otherwise it holds the header, and the payload (or `deflated`) follows as it is.
    pub(super) whole: bool,
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

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// The message size limit of these tests.
    const MAX: usize = 16;

    // A frame's first byte: FIN, the reserved bits, the opcode.
    const FIN: u8 = 0x80;
    const RSV1: u8 = 0x40;
    const RSV2: u8 = 0x20;
    const CONT: u8 = 0x0;
    const TEXT: u8 = 0x1;
    const BINARY: u8 = 0x2;
    const CLOSE: u8 = 0x8;
    const PING: u8 = 0x9;
    const PONG: u8 = 0xA;

    /// Received bytes, as a stream's buffer holds them.
    #[derive(Default)]
    struct Received(RefCell<Vec<u8>>);

    impl Input for Received {
        fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
            f(&self.0.borrow())
        }

        fn consume(&self, n: usize) {
            self.0.borrow_mut().drain(..n);
        }

        fn take_after(&self, skip: usize) -> Vec<u8> {
            let mut all = std::mem::take(&mut *self.0.borrow_mut());
            all.drain(..skip);
            all
        }
    }

    fn protocol(role: Role) -> Protocol {
        Protocol::new(
            role,
            MAX,
            #[cfg(feature = "deflate")]
            None,
        )
    }

    /// A frame as a client sends it (masked), written out by hand.
    fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
        const KEY: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];
        assert!(payload.len() < 126);
        let mut frame = vec![first, 0x80 | payload.len() as u8];
        frame.extend_from_slice(&KEY);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
        frame
    }

    /// A frame as a server sends it (unmasked).
    fn plain(first: u8, payload: &[u8]) -> Vec<u8> {
        assert!(payload.len() < 126);
        let mut frame = vec![first, payload.len() as u8];
        frame.extend_from_slice(payload);
        frame
    }

    /// A close frame's payload: the code, then the reason.
    fn close_body(code: u16, reason: &str) -> Vec<u8> {
        let mut body = code.to_be_bytes().to_vec();
        body.extend_from_slice(reason.as_bytes());
        body
    }

    /// What the protocol did, in order.
    #[derive(Debug, PartialEq)]
    enum Seen {
        Message(Message),
        Ping(Vec<u8>),
        Pong(Vec<u8>),
        /// The peer's close frame.
        Close,
        /// A violation: the close code and the reason.
        Fail(u16, &'static str),
        /// A frame handed back to write: its first byte and its payload, unmasked.
        Sent(u8, Vec<u8>),
    }

    fn text(text: &str) -> Seen {
        Seen::Message(Message::Text(text.into()))
    }

    fn binary(bytes: &[u8]) -> Seen {
        Seen::Message(Message::Binary(bytes.to_vec()))
    }

    fn sent(first: u8, payload: &[u8]) -> Seen {
        Seen::Sent(first, payload.to_vec())
    }

    fn fail(code: u16, reason: &'static str) -> Seen {
        Seen::Fail(code, reason)
    }

    fn failed(code: u16, reason: &'static str) -> CloseState {
        CloseState::Failed(Violation { code, reason })
    }

    /// A frame `role` handed back, read as its peer reads it (so a client's must be
    /// masked and a server's not): one whole frame.
    fn decoded(frame: &[u8], role: Role) -> Seen {
        let reader = match role {
            Role::Server => Role::Client,
            Role::Client => Role::Server,
        };
        let header = read_header(frame, reader, false)
            .expect("a well-formed frame")
            .expect("a whole header");
        assert_eq!(
            header.header_len as u64 + header.payload_len,
            frame.len() as u64,
            "one whole frame"
        );
        let mut payload = frame[header.header_len..].to_vec();
        if let Some(mask) = header.mask {
            apply_mask(&mut payload, mask, 0);
        }
        Seen::Sent(frame[0], payload)
    }

    /// Reads everything `received` holds, taking any frame, until the protocol waits or
    /// stops.
    fn read_all(protocol: &mut Protocol, received: &Received, seen: &mut Vec<Seen>) {
        let role = protocol.role;
        loop {
            match protocol.read(received, Accept::Everything) {
                Step::Wait | Step::Stop => return,
                Step::More => {}
                Step::Message(message) => seen.push(Seen::Message(message)),
                Step::Ping { payload, pong } => {
                    seen.extend(pong.map(|pong| decoded(&pong, role)));
                    seen.push(Seen::Ping(payload));
                }
                Step::Pong(payload) => seen.push(Seen::Pong(payload)),
                Step::Close { answer } => {
                    seen.extend(answer.map(|answer| decoded(&answer, role)));
                    seen.push(Seen::Close);
                }
                Step::Fail { violation, close } => {
                    seen.extend(close.map(|close| decoded(&close, role)));
                    seen.push(Seen::Fail(violation.code, violation.reason));
                }
            }
        }
    }

    /// One case: what arrives, and what the protocol must make of it.
    struct Row {
        name: &'static str,
        role: Role,
        /// Our close frame (the code and reason asked for) goes before anything arrives.
        we_close: Option<(u16, &'static str)>,
        input: Vec<u8>,
        seen: Vec<Seen>,
        state: CloseState,
        /// The peer's close code and reason.
        peer: Option<(u16, &'static str)>,
        /// Bytes left unread.
        left: usize,
    }

    impl Row {
        fn server(name: &'static str, input: Vec<u8>, seen: Vec<Seen>, state: CloseState) -> Row {
            Row {
                name,
                role: Role::Server,
                we_close: None,
                input,
                seen,
                state,
                peer: None,
                left: 0,
            }
        }

        /// A server row whose input breaks the protocol: it answers with a close frame of
        /// `code` and `reason`, reports that violation, and ends failed.
        fn violation(name: &'static str, input: Vec<u8>, code: u16, reason: &'static str) -> Row {
            let seen = vec![
                sent(FIN | CLOSE, &close_body(code, reason)),
                fail(code, reason),
            ];
            Row::server(name, input, seen, failed(code, reason))
        }

        fn client(self) -> Row {
            Row {
                role: Role::Client,
                ..self
            }
        }

        fn we_close(self, code: u16, reason: &'static str) -> Row {
            Row {
                we_close: Some((code, reason)),
                ..self
            }
        }

        fn peer(self, code: u16, reason: &'static str) -> Row {
            Row {
                peer: Some((code, reason)),
                ..self
            }
        }

        fn left(self, left: usize) -> Row {
            Row { left, ..self }
        }

        /// Runs the case with the input arriving in pieces of `piece` bytes.
        fn check(&self, piece: usize) {
            let mut protocol = protocol(self.role);
            let mut seen = Vec::new();
            if let Some((code, reason)) = self.we_close {
                let close = protocol.close(code, reason).expect("open");
                seen.push(decoded(&close, self.role));
            }
            let received = Received::default();
            read_all(&mut protocol, &received, &mut seen);
            for piece in self.input.chunks(piece) {
                received.0.borrow_mut().extend_from_slice(piece);
                read_all(&mut protocol, &received, &mut seen);
            }
            let case = format!("{} (in pieces of {piece})", self.name);
            assert_eq!(seen, self.seen, "{case}");
            assert_eq!(protocol.close_state(), self.state, "{case}");
            let peer = protocol.peer_close().map(|(c, r)| (*c, r.as_str()));
            assert_eq!(peer, self.peer, "{case}");
            assert_eq!(received.0.borrow().len(), self.left, "{case}");
        }
    }

    fn rows() -> Vec<Row> {
        use CloseState::*;
        let continuation = "continuation frame with nothing to continue";
        let not_utf8 = "text message is not UTF-8";
        let too_big = "message over max_message_size";
        let reserved = "reserved bits set without an extension";
        let mut rows = vec![
            Row::server(
                "a fragmented text message is assembled across continuations",
                [
                    masked(TEXT, b"Hel"),
                    masked(CONT, b"lo, "),
                    masked(FIN | CONT, b"world"),
                ]
                .concat(),
                vec![text("Hello, world")],
                Open,
            ),
            Row::server(
                "control frames between fragments are answered and reported in order",
                [
                    masked(BINARY, &[1, 2]),
                    masked(FIN | PING, b"p"),
                    masked(FIN | PONG, b"q"),
                    masked(FIN | CONT, &[3]),
                ]
                .concat(),
                vec![
                    sent(FIN | PONG, b"p"),
                    Seen::Ping(b"p".to_vec()),
                    Seen::Pong(b"q".to_vec()),
                    binary(&[1, 2, 3]),
                ],
                Open,
            ),
            Row::violation(
                "a continuation with nothing to continue fails with 1002",
                masked(FIN | CONT, b"x"),
                1002,
                continuation,
            ),
            Row::server(
                "a new data frame inside a fragmented message fails with 1002",
                [masked(TEXT, b"a"), masked(FIN | TEXT, b"b")].concat(),
                vec![
                    sent(
                        FIN | CLOSE,
                        &close_body(1002, "new data frame inside a fragmented message"),
                    ),
                    fail(1002, "new data frame inside a fragmented message"),
                ],
                failed(1002, "new data frame inside a fragmented message"),
            ),
            Row::violation(
                "invalid UTF-8 in a single frame fails with 1007",
                masked(FIN | TEXT, &[b'a', 0xFF]),
                1007,
                not_utf8,
            ),
            Row::violation(
                "invalid UTF-8 split across fragments fails with 1007",
                [masked(TEXT, &[0xCE]), masked(FIN | CONT, b"A")].concat(),
                1007,
                not_utf8,
            ),
            Row::violation(
                "invalid UTF-8 fails before its message is complete",
                masked(TEXT, &[b'a', 0xFF]),
                1007,
                not_utf8,
            ),
            Row::violation(
                "a text message that ends inside a character fails with 1007",
                [masked(TEXT, b"a"), masked(FIN | CONT, &[0xCE])].concat(),
                1007,
                not_utf8,
            ),
            Row::server(
                "a character split across fragments is valid",
                [masked(TEXT, &[0xCE]), masked(FIN | CONT, &[0xBA])].concat(),
                vec![text("κ")],
                Open,
            ),
            Row::server(
                "a message of exactly the limit is taken",
                masked(FIN | BINARY, &[7; MAX]),
                vec![binary(&[7; MAX])],
                Open,
            ),
            Row::violation(
                "a frame over the limit fails with 1009",
                masked(FIN | BINARY, &[0; MAX + 1]),
                1009,
                too_big,
            ),
            Row::violation(
                "fragments adding up to over the limit fail with 1009",
                [masked(BINARY, &[0; 10]), masked(FIN | CONT, &[0; MAX - 9])].concat(),
                1009,
                too_big,
            ),
            Row::server(
                "a ping is answered with a pong of its payload",
                masked(FIN | PING, b"hi"),
                vec![sent(FIN | PONG, b"hi"), Seen::Ping(b"hi".to_vec())],
                Open,
            ),
            Row::server(
                "a client's pong is masked",
                plain(FIN | PING, b"hi"),
                vec![sent(FIN | PONG, b"hi"), Seen::Ping(b"hi".to_vec())],
                Open,
            )
            .client(),
            Row::server(
                "the peer's close is answered with its code",
                masked(FIN | CLOSE, &close_body(1000, "bye")),
                vec![sent(FIN | CLOSE, &close_body(1000, "")), Seen::Close],
                ClosedByPeer,
            )
            .peer(1000, "bye"),
            Row::server(
                "an empty close is answered with an empty close",
                masked(FIN | CLOSE, b""),
                vec![sent(FIN | CLOSE, b""), Seen::Close],
                ClosedByPeer,
            ),
            Row::server(
                "the peer's close answering ours acknowledges it, unanswered",
                masked(FIN | CLOSE, &close_body(1000, "")),
                vec![sent(FIN | CLOSE, &close_body(1000, "done")), Seen::Close],
                CloseAcknowledged,
            )
            .we_close(1000, "done")
            .peer(1000, ""),
            Row::server(
                "our close with a code not allowed on the wire says 1000",
                Vec::new(),
                vec![sent(FIN | CLOSE, &close_body(1000, "x"))],
                ClosedByUs,
            )
            .we_close(1005, "x"),
            Row::server(
                "after our close, messages are dropped and pings not answered",
                [
                    masked(FIN | TEXT, b"late"),
                    masked(FIN | PING, b"p"),
                    masked(FIN | CLOSE, &close_body(1000, "")),
                ]
                .concat(),
                vec![
                    sent(FIN | CLOSE, &close_body(1000, "")),
                    Seen::Ping(b"p".to_vec()),
                    Seen::Close,
                ],
                CloseAcknowledged,
            )
            .we_close(1000, "")
            .peer(1000, ""),
            Row::violation(
                "a one-byte close payload fails with 1002",
                masked(FIN | CLOSE, &[0x03]),
                1002,
                "one-byte close payload",
            ),
            Row::violation(
                "a close reason that is not UTF-8 fails with 1007",
                masked(FIN | CLOSE, &[0x03, 0xE8, 0xFF]),
                1007,
                "close reason is not UTF-8",
            ),
            Row::server(
                "a server reads nothing after the peer's close",
                [masked(FIN | CLOSE, b""), masked(FIN | TEXT, b"late")].concat(),
                vec![sent(FIN | CLOSE, b""), Seen::Close],
                ClosedByPeer,
            )
            .left(masked(FIN | TEXT, b"late").len()),
            Row::server(
                "a client drops what follows the server's close",
                [
                    plain(FIN | CLOSE, &close_body(1001, "")),
                    plain(FIN | TEXT, b"late"),
                ]
                .concat(),
                vec![sent(FIN | CLOSE, &close_body(1001, "")), Seen::Close],
                ClosedByPeer,
            )
            .client()
            .peer(1001, ""),
            Row::violation(
                "after a violation, what arrives is dropped",
                [
                    masked(FIN | CONT, b"x"),
                    masked(FIN | TEXT, b"y"),
                    masked(FIN | PING, b"z"),
                    masked(FIN | CLOSE, b""),
                ]
                .concat(),
                1002,
                continuation,
            ),
            Row::server(
                "a violation after our close sends no second close",
                masked(FIN | CONT, b"x"),
                vec![
                    sent(FIN | CLOSE, &close_body(1000, "")),
                    fail(1002, continuation),
                ],
                failed(1002, continuation),
            )
            .we_close(1000, ""),
            Row::violation(
                "RSV1 without an extension fails with 1002",
                masked(FIN | RSV1 | TEXT, b"x"),
                1002,
                reserved,
            ),
            Row::violation(
                "RSV2 fails with 1002",
                masked(FIN | RSV2 | BINARY, b"x"),
                1002,
                reserved,
            ),
            Row::violation(
                "an unmasked client frame fails with 1002",
                plain(FIN | TEXT, b"x"),
                1002,
                "unmasked client frame",
            ),
        ];
        for code in [0u16, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
            rows.push(Row::violation(
                "an invalid close code fails with 1002",
                masked(FIN | CLOSE, &close_body(code, "")),
                1002,
                "invalid close code",
            ));
        }
        rows
    }

    #[test]
    fn each_row_whole_and_byte_by_byte() {
        for row in rows() {
            row.check(row.input.len().max(1));
            row.check(1);
        }
    }

    #[test]
    fn data_waits_while_only_control_frames_are_taken() {
        let mut protocol = protocol(Role::Server);
        let received = Received::default();
        let text = masked(FIN | TEXT, b"a");
        *received.0.borrow_mut() = [masked(FIN | PING, b"p"), text.clone()].concat();
        // Nothing at all while the code a message goes to runs.
        assert_eq!(protocol.read(&received, Accept::Nothing), Step::Stop);
        // Control frames only: the ping is answered, the message stays unread.
        let Step::Ping { payload, pong } = protocol.read(&received, Accept::Control) else {
            panic!("a ping");
        };
        assert_eq!(
            (payload, pong),
            (b"p".to_vec(), Some(plain(FIN | PONG, b"p")))
        );
        assert_eq!(protocol.read(&received, Accept::Control), Step::Stop);
        assert_eq!(*received.0.borrow(), text);
        assert_eq!(
            protocol.read(&received, Accept::Everything),
            Step::Message(Message::Text("a".into()))
        );
        // A data frame under way waits too.
        *received.0.borrow_mut() = masked(FIN | BINARY, &[1, 2, 3]);
        received.0.borrow_mut().pop();
        assert_eq!(protocol.read(&received, Accept::Everything), Step::More);
        assert_eq!(protocol.read(&received, Accept::Everything), Step::Wait);
        received.0.borrow_mut().push(3 ^ 0x21);
        assert_eq!(protocol.read(&received, Accept::Control), Step::Stop);
        assert_eq!(
            protocol.read(&received, Accept::Everything),
            Step::Message(Message::Binary(vec![1, 2, 3]))
        );
    }

    #[test]
    fn once_terminated_nothing_is_read_or_sent() {
        let mut protocol = protocol(Role::Server);
        assert!(protocol.terminate());
        assert!(!protocol.terminate(), "once only");
        let received = Received(RefCell::new(masked(FIN | TEXT, b"a")));
        assert_eq!(protocol.read(&received, Accept::Everything), Step::Stop);
        assert_eq!(protocol.close(1000, ""), None);
        assert!(!protocol.is_open());
        assert_eq!(protocol.close_state(), CloseState::Terminated);
    }

    #[test]
    fn our_close_goes_once() {
        let mut protocol = protocol(Role::Server);
        assert!(protocol.close(1000, "").is_some());
        assert_eq!(protocol.close(1001, ""), None);
        assert!(!protocol.is_open());
    }

    #[test]
    fn a_server_writes_the_payload_after_the_header_a_client_masks_it_in() {
        let payload = b"hello";
        let mut server = protocol(Role::Server);
        let (mut frame, mut deflated) = (Vec::new(), Vec::new());
        let encoded = server.encode(Opcode::Text, payload, &mut frame, &mut deflated);
        assert_eq!(
            encoded,
            Encoded {
                compressed: false,
                whole: false
            }
        );
        assert_eq!(frame, [FIN | TEXT, 5]);
        let mut client = protocol(Role::Client);
        let encoded = client.encode(Opcode::Text, payload, &mut frame, &mut deflated);
        assert!(encoded.whole && !encoded.compressed);
        assert_eq!(decoded(&frame, Role::Client), sent(FIN | TEXT, payload));
    }

    #[cfg(feature = "deflate")]
    mod deflate {
        use super::*;
        use crate::websocket::deflate::{accept_answer, accept_offer, offer, Deflate};
        use crate::websocket::DeflateOptions;

        /// A client and a server that agreed on permessage-deflate, compressing any
        /// message.
        fn pair() -> (Protocol, Protocol) {
            let options = DeflateOptions {
                min_size: 0,
                ..DeflateOptions::default()
            };
            let offered = offer(&options);
            let (agreed, answer) =
                accept_offer(std::iter::once(offered.as_str()), &options).expect("accepted");
            let client_agreed = accept_answer(&answer, &options).expect("answer taken");
            let client = Deflate::new(client_agreed, Role::Client, &options);
            let server = Deflate::new(agreed, Role::Server, &options);
            (
                Protocol::new(Role::Client, MAX, Some(Box::new(client))),
                Protocol::new(Role::Server, MAX, Some(Box::new(server))),
            )
        }

        /// What `server` makes of `frame`.
        fn read(server: &mut Protocol, frame: &[u8]) -> Vec<Seen> {
            let received = Received(RefCell::new(frame.to_vec()));
            let mut seen = Vec::new();
            read_all(server, &received, &mut seen);
            seen
        }

        /// `payload` compressed by `client`, as the frame it sends.
        fn compressed(client: &mut Protocol, payload: &[u8]) -> Vec<u8> {
            let (mut frame, mut deflated) = (Vec::new(), Vec::new());
            let encoded = client.encode(Opcode::Binary, payload, &mut frame, &mut deflated);
            assert!(encoded.compressed && encoded.whole);
            frame
        }

        #[test]
        fn compressed_messages_are_inflated_within_the_limit() {
            let (mut client, mut server) = pair();
            let frame = compressed(&mut client, b"abcabcabc");
            assert_eq!(read(&mut server, &frame), vec![binary(b"abcabcabc")]);
            // Small on the wire, over the limit once inflated.
            let frame = compressed(&mut client, &[0; 100]);
            assert!(frame.len() < MAX);
            let too_big = "message over max_message_size once inflated";
            assert_eq!(
                read(&mut server, &frame),
                vec![
                    sent(FIN | CLOSE, &close_body(1009, too_big)),
                    fail(1009, too_big)
                ]
            );
        }

        #[test]
        fn corrupt_compressed_data_fails_with_1007() {
            let (_, mut server) = pair();
            let corrupt = "invalid compressed data";
            assert_eq!(
                read(&mut server, &masked(FIN | RSV1 | BINARY, &[0xFF, 0xFF])),
                vec![
                    sent(FIN | CLOSE, &close_body(1007, corrupt)),
                    fail(1007, corrupt)
                ]
            );
        }
    }
}
