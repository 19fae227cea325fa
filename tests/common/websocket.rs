//! A raw-frame WebSocket client for tests, over a [`SteppedClient`]: it writes any frame,
//! valid or not (unmasked, reserved bits, bad lengths), and reads the server's frames
//! while stepping the server's loop.

use super::http::{Reply, SteppedClient, SteppedServer};
use ioloop::http::Request;
use ioloop::websocket::WebSocket;

/// The handshake request for `path`, with extra header lines.
pub fn handshake(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// A frame to write: every bit settable.
pub struct Frame<'a> {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    pub payload: &'a [u8],
    pub masked: bool,
}

impl<'a> Frame<'a> {
    /// A final, masked frame (what a valid client sends).
    pub fn new(opcode: u8, payload: &'a [u8]) -> Frame<'a> {
        Frame {
            fin: true,
            rsv: 0,
            opcode,
            payload,
            masked: true,
        }
    }

    pub fn text(payload: &'a [u8]) -> Frame<'a> {
        Frame::new(0x1, payload)
    }

    pub fn fin(mut self, fin: bool) -> Self {
        self.fin = fin;
        self
    }

    /// Encoded with RSV1 set (a compressed message's first frame).
    pub fn encode_with_rsv1(self) -> Vec<u8> {
        Frame { rsv: 0b100, ..self }.encode()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![(u8::from(self.fin) << 7) | (self.rsv << 4) | self.opcode];
        let mask_bit = if self.masked { 0x80 } else { 0 };
        let len = self.payload.len();
        if len < 126 {
            out.push(mask_bit | len as u8);
        } else if len <= 0xFFFF {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let key = [0x12, 0x34, 0x56, 0x78];
        if self.masked {
            out.extend_from_slice(&key);
            out.extend(self.payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        } else {
            out.extend_from_slice(self.payload);
        }
        out
    }
}

/// A close payload: the code and reason.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    payload
}

/// A frame the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub fin: bool,
    /// RSV1: a compressed message (permessage-deflate).
    pub rsv1: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Received {
    /// The close code of a close frame (`None` for an empty one).
    pub fn close_code(&self) -> Option<u16> {
        assert_eq!(self.opcode, 0x8, "not a close frame: {self:?}");
        (self.payload.len() >= 2).then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// A WebSocket client connection to a [`SteppedServer`].
pub struct WsClient {
    pub conn: SteppedClient,
    /// Bytes of `conn`'s unparsed buffer already read as frames.
    consumed: usize,
}

/// Loop iterations to wait for a frame.
const STEPS: usize = 10_000;

impl WsClient {
    /// Connects and sends `request` (a handshake); returns the client and the reply.
    pub fn open_with(server: &SteppedServer, request: &[u8]) -> (WsClient, Reply) {
        let mut conn = server.connect();
        conn.send(server, request);
        let reply = conn.reply(server);
        (WsClient { conn, consumed: 0 }, reply)
    }

    /// Connects to `path` with a valid handshake and checks the 101.
    pub fn open(server: &SteppedServer, path: &str) -> WsClient {
        let (client, reply) = WsClient::open_with(server, handshake(path, "").as_bytes());
        assert_eq!(reply.status, 101, "handshake refused: {}", reply.text());
        client
    }

    pub fn send_raw(&mut self, server: &SteppedServer, bytes: &[u8]) {
        self.conn.send(server, bytes);
    }

    /// Writes what the socket takes of `bytes` now; false once the server has closed
    /// (a reset or a broken pipe).
    pub fn try_send_raw(&mut self, bytes: &[u8]) -> bool {
        use std::io::Write;
        let mut at = 0;
        while at < bytes.len() {
            match self.conn.stream.write(&bytes[at..]) {
                Ok(n) => at += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
        true
    }

    /// Writes `pattern` over and over (each write resuming where the last stopped, so
    /// frames stay whole), stepping the server whenever the socket is full, until it has
    /// been full 50 times in a row: the server stopped reading. Fails if more than
    /// `limit` bytes went in first; `check` runs after every write. Returns the bytes
    /// written.
    pub fn flood(
        &mut self,
        server: &SteppedServer,
        pattern: &[u8],
        limit: usize,
        mut check: impl FnMut(),
    ) -> usize {
        use std::io::Write;
        let mut sent = 0usize;
        let mut refused_in_a_row = 0;
        while refused_in_a_row < 50 {
            match self.conn.stream.write(&pattern[sent % pattern.len()..]) {
                Ok(n) => {
                    sent += n;
                    refused_in_a_row = 0;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    refused_in_a_row += 1;
                    server.step();
                }
                Err(e) => panic!("{e}"),
            }
            assert!(sent < limit, "the server kept reading");
            check();
        }
        sent
    }

    pub fn send(&mut self, server: &SteppedServer, frame: Frame<'_>) {
        self.conn.send(server, &frame.encode());
    }

    /// The next frame the server sends, or `None` if it closes TCP first.
    pub fn read(&mut self, server: &SteppedServer) -> Option<Received> {
        for _ in 0..STEPS {
            if let Some(frame) = self.parse() {
                return Some(frame);
            }
            if self.conn.is_closed(server) {
                return self.parse();
            }
        }
        panic!("no frame from the server");
    }

    /// The next frame, if a whole one has already arrived.
    pub fn read_now(&mut self) -> Option<Received> {
        self.parse()
    }

    fn parse(&mut self) -> Option<Received> {
        let bytes = &self.conn.unparsed()[self.consumed..];
        let [first, second, ..] = *bytes else {
            return None;
        };
        assert_eq!(second & 0x80, 0, "the server masked a frame");
        let (len, at) = match second & 0x7F {
            126 => (
                u16::from_be_bytes(bytes.get(2..4)?.try_into().unwrap()) as usize,
                4,
            ),
            127 => (
                u64::from_be_bytes(bytes.get(2..10)?.try_into().unwrap()) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        let payload = bytes.get(at..at + len)?.to_vec();
        self.consumed += at + len;
        Some(Received {
            fin: first & 0x80 != 0,
            rsv1: first & 0x40 != 0,
            opcode: first & 0x0F,
            payload,
        })
    }

    /// The server's close frame and then the end of TCP; returns the close code. The
    /// server's loop runs on until idle, so its close callbacks (run on the iteration
    /// after the close) have run.
    pub fn expect_close(&mut self, server: &SteppedServer) -> Option<u16> {
        let frame = self.read(server).expect("a close frame");
        let code = frame.close_code();
        assert!(self.conn.is_closed(server), "the server did not close TCP");
        server.settle();
        code
    }
}

/// An async WebSocket session echoing every message until the peer closes (for
/// `websocket(echo)` routes).
pub async fn echo(ws: WebSocket, _req: Request) {
    while let Some(message) = ws.recv().await {
        if ws.send(message).await.is_err() {
            break;
        }
    }
}
