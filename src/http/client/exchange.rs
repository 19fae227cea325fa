//! One request and its response on one connection: the request written (the body held
//! back for `100 Continue` when asked), the response head read in place from the
//! stream's buffer (interim 1xx answers skipped), and the body's decoding, after which
//! the connection goes back to the pool if both sides let it carry another request.

use std::rc::Rc;
use std::time::Duration;

use super::body::BodyDecoding;
use super::error::FetchError;
use super::pool::{Origin, Permit, Pool};
use super::request::ClientRequest;
use super::response::{ResponseHead, MAX_HEAD_BYTES};
use crate::http::head::find_head_end;
use crate::http::url::HttpUrl;
use crate::stream::IoStream;
use crate::time::timeout;

/// How long a request with `Expect: 100-continue` holds its body back when the server
/// says nothing (curl's wait).
const CONTINUE_WAIT: Duration = Duration::from_secs(1);

/// A connection in use: closed when dropped, unless it went back to the pool.
pub(crate) struct Connection {
    pub(super) stream: IoStream,
    origin: Origin,
    pool: Rc<Pool>,
    /// Taken by the pool: not to be closed.
    kept: bool,
    /// Both sides let it carry another request.
    reusable: bool,
}

impl Connection {
    pub(crate) fn new(stream: IoStream, origin: Origin, pool: &Rc<Pool>) -> Connection {
        Connection {
            stream,
            origin,
            pool: pool.clone(),
            kept: false,
            reusable: true,
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if !self.kept {
            self.stream.close_from_drop();
        }
    }
}

/// Why an attempt gave no response head.
pub(crate) enum AttemptError {
    /// The connection closed before a byte of the response: a reused connection the
    /// server had already closed, where an idempotent request may be sent again.
    Stale,
    Failed(FetchError),
}

impl From<AttemptError> for FetchError {
    fn from(e: AttemptError) -> FetchError {
        match e {
            AttemptError::Stale => FetchError::Closed,
            AttemptError::Failed(e) => e,
        }
    }
}

/// Sends `request` for `url` on `connection` and reads the final response's head.
pub(crate) async fn send_request(
    connection: &mut Connection,
    url: &HttpUrl,
    request: &ClientRequest,
) -> Result<ResponseHead, AttemptError> {
    let stream = &connection.stream;
    let mut head = Vec::with_capacity(128 + request.headers.len() * 32);
    request.write_head(url, &mut head);
    if request.asks_close() {
        connection.reusable = false;
    }
    // Writes are queued at once; their outcome shows in the reads that follow (a write
    // failing closes the stream).
    if !request.waits_for_continue() {
        drop(stream.write_all_parts(&[&head, &request.body]));
        return read_final_head(stream, false).await;
    }
    drop(stream.write_all(&head));
    match timeout(CONTINUE_WAIT, read_final_head(stream, true)).await {
        Ok(Ok(head)) if head.status() != 100 => {
            // Refused before the body: the server may or may not read a body that will
            // never come, so the connection is not used again.
            connection.reusable = false;
            return Ok(head);
        }
        Ok(Err(e)) => return Err(e),
        // `100 Continue`, or silence.
        Ok(Ok(_)) | Err(_) => {}
    }
    drop(stream.write_all(&request.body));
    read_final_head(stream, false).await
}

/// Reads response heads until a final one (or, with `until_continue`, a `100`),
/// skipping interim ones.
async fn read_final_head(
    stream: &IoStream,
    until_continue: bool,
) -> Result<ResponseHead, AttemptError> {
    let mut scanned = 0;
    let mut answered = false;
    loop {
        if let Some(len) = stream.with_buffered(|buffered| find_head_end(buffered, &mut scanned)) {
            let head = stream
                .with_buffered(|buffered| ResponseHead::parse(&buffered[..len]))
                .map_err(AttemptError::Failed)?;
            stream.consume(len);
            scanned = 0;
            answered = true;
            match head.status() {
                101 => {
                    return Err(AttemptError::Failed(FetchError::Protocol(
                        "an unasked-for 101 Switching Protocols".into(),
                    )))
                }
                100 if until_continue => return Ok(head),
                100..=199 => continue,
                _ => return Ok(head),
            }
        }
        let buffered = stream.buffered();
        if buffered > MAX_HEAD_BYTES {
            return Err(AttemptError::Failed(FetchError::HeadTooLarge));
        }
        if stream.wait_for_more(buffered).await.is_err() {
            return Err(if answered || buffered > 0 {
                AttemptError::Failed(FetchError::Closed)
            } else {
                AttemptError::Stale
            });
        }
    }
}

/// A response whose body is being read: the connection, the body's decoding, and the
/// request's place among `max_clients`, given back once the response is over.
pub(crate) struct Exchange {
    pub(super) connection: Connection,
    pub(super) body: BodyDecoding,
    /// Dropped after the connection went back to the pool, so a queued request finds it.
    _permit: Permit,
}

impl Exchange {
    pub(crate) fn new(
        mut connection: Connection,
        head: &ResponseHead,
        request: &ClientRequest,
        permit: Permit,
    ) -> Result<Exchange, FetchError> {
        let body = BodyDecoding::new(
            head,
            &request.method,
            request.decompress,
            request.max_body_size,
        )?;
        if !head.keeps_alive() || body.ends_at_close() {
            connection.reusable = false;
        }
        Ok(Exchange {
            connection,
            body,
            _permit: permit,
        })
    }

    /// Reads the rest of the body into `out`, then finishes.
    pub(crate) async fn read_to_end(mut self, out: &mut Vec<u8>) -> Result<(), FetchError> {
        self.body.read_to_end(&self.connection.stream, out).await?;
        self.finish();
        Ok(())
    }

    /// The response is over: the connection goes back to the pool if it can carry
    /// another request (the body read whole, nothing after it), else it closes.
    pub(crate) fn finish(mut self) {
        let connection = &mut self.connection;
        let stream = &connection.stream;
        if self.body.is_done() && connection.reusable && !stream.closed() && stream.buffered() == 0
        {
            connection.kept = true;
            Pool::checkin(&connection.pool, connection.origin.clone(), stream.clone());
        }
    }

    /// Drops a response nobody reads (a redirect's): the connection is kept if its body
    /// has already arrived whole, else closed.
    pub(crate) fn discard(mut self) {
        let mut ignored = Vec::new();
        let stream = &self.connection.stream;
        if self
            .body
            .take_buffered(stream, &mut ignored, 64 * 1024)
            .is_ok()
        {
            self.finish();
        }
    }
}
