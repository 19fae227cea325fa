//! A response body as it comes off the connection: how it is delimited (RFC 9112 §6.3),
//! decoded in place from the stream's buffer with the server's own decoders, gunzipped
//! in small steps, and held to the request's size limit.
//!
//! Stricter than RFC 9112 asks of a client, for the same reason the server is: a
//! response with both `Transfer-Encoding` and `Content-Length`, or with differing
//! lengths, is refused rather than guessed at.

use std::io::Write;

use flate2::write::GzDecoder;

use super::error::FetchError;
use super::response::ResponseHead;
use crate::http::body::{request_framing, BodyDecoder, Framing};
use crate::stream::{IoStream, StreamError};

/// How much compressed input is gunzipped between two checks of the output's size: a
/// gzip bomb (about 1000:1 at most) overshoots a limit by at most about 1 MiB.
const GZIP_STEP: usize = 1024;

/// Decodes one response body from a connection's read buffer.
pub(crate) struct BodyDecoding {
    /// The framing's decoder; `None` for no body, or one that lasts until the close.
    decoder: Option<BodyDecoder>,
    until_close: bool,
    sink: BodySink,
    done: bool,
}

/// Where decoded body bytes go: through the gunzipper if any, counted against the limit.
struct BodySink {
    gzip: Option<GzDecoder<Vec<u8>>>,
    /// The most body bytes delivered (after decompression).
    limit: u64,
    delivered: u64,
}

impl BodyDecoding {
    /// The decoding for the body of `head`, answering a request with `method`; gzip is
    /// undone when `decompress` is set and the body says it is gzipped.
    ///
    /// # Errors
    ///
    /// [`FetchError::Protocol`] for conflicting or malformed framing fields;
    /// [`FetchError::BodyTooLarge`] for a declared length over `limit`.
    pub(crate) fn new(
        head: &ResponseHead,
        method: &str,
        decompress: bool,
        limit: u64,
    ) -> Result<BodyDecoding, FetchError> {
        let status = head.status();
        let no_body =
            method == "HEAD" || (100..200).contains(&status) || status == 204 || status == 304;
        let framed = head.header_fields().any(|(name, _)| {
            name.eq_ignore_ascii_case(b"content-length")
                || name.eq_ignore_ascii_case(b"transfer-encoding")
        });
        // Neither field: the body lasts until the server closes (RFC 9112 §6.3 ¶8).
        let until_close = !no_body && !framed;
        let framing = if no_body || until_close {
            Framing::Empty
        } else {
            request_framing(head.header_fields())
                .map_err(|e| FetchError::Protocol(e.to_string()))?
        };
        let decoder = BodyDecoder::for_framing(framing);
        let has_body = decoder.is_some() || until_close;
        let gzip = gzip_decoder(head, decompress && has_body);
        if let Framing::Length(n) = framing {
            if n > limit && gzip.is_none() {
                return Err(FetchError::BodyTooLarge { limit });
            }
        }
        Ok(BodyDecoding {
            done: !has_body,
            decoder,
            until_close,
            sink: BodySink {
                gzip,
                limit,
                delivered: 0,
            },
        })
    }

    /// Whether the whole body has been read.
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// Whether the body is being decompressed.
    pub(crate) fn decompresses(&self) -> bool {
        self.sink.gzip.is_some()
    }

    /// Whether the body is delimited by the connection closing (so the connection
    /// cannot carry another request).
    pub(crate) fn ends_at_close(&self) -> bool {
        self.until_close
    }

    /// Moves what `stream` has buffered of the body into `out`, stopping once `out`
    /// holds `soft_max` bytes or more.
    ///
    /// # Errors
    ///
    /// [`FetchError::Protocol`] for a bad chunk or gzip stream,
    /// [`FetchError::BodyTooLarge`] past the limit.
    pub(crate) fn take_buffered(
        &mut self,
        stream: &IoStream,
        out: &mut Vec<u8>,
        soft_max: usize,
    ) -> Result<(), FetchError> {
        // Gzipped, the body's bytes are taken a step at a time, so that `soft_max` stops
        // the output near it; a step that holds no whole chunk-size or trailer line
        // grows until one fits.
        let mut step = if self.sink.gzip.is_some() {
            GZIP_STEP
        } else {
            usize::MAX
        };
        while !self.done && out.len() < soft_max {
            let (decoder, sink) = (&mut self.decoder, &mut self.sink);
            let (consumed, done, cut_short) = stream.with_buffered(|buffered| {
                let input = &buffered[..buffered.len().min(step)];
                let cut_short = input.len() < buffered.len();
                let mut failed = None;
                let mut deliver = |data: &[u8]| {
                    if failed.is_none() {
                        failed = sink.deliver(data, out).err();
                    }
                };
                let (consumed, done) = match decoder {
                    Some(decoder) => {
                        let progress = decoder
                            .decode(input, &mut deliver)
                            .map_err(|e| FetchError::Protocol(e.to_string()))?;
                        (progress.consumed, progress.done)
                    }
                    None => {
                        deliver(input);
                        (input.len(), false)
                    }
                };
                failed.map_or(Ok((consumed, done, cut_short)), Err)
            })?;
            stream.consume(consumed);
            if done {
                self.finish(out)?;
            } else if consumed == 0 && cut_short {
                step = step.saturating_mul(8);
            } else if consumed == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Reads until `out` has grown or the body has ended, taking what is buffered
    /// first; as [`take_buffered`](BodyDecoding::take_buffered), it stops taking once
    /// `out` holds `soft_max` bytes.
    ///
    /// # Errors
    ///
    /// As [`take_buffered`](BodyDecoding::take_buffered), and [`FetchError::Closed`]
    /// when the connection ends before the body does.
    pub(crate) async fn read_some(
        &mut self,
        stream: &IoStream,
        out: &mut Vec<u8>,
        soft_max: usize,
    ) -> Result<(), FetchError> {
        let start = out.len();
        loop {
            self.take_buffered(stream, out, soft_max)?;
            if self.done || out.len() > start {
                return Ok(());
            }
            match stream.wait_for_more(stream.buffered()).await {
                Ok(_) => {}
                // A clean end is the end of a body delimited by the close; a TLS peer
                // that left without close_notify may have been cut off (an attacker can
                // truncate), so that is not.
                Err(StreamError::Closed { real_error: None }) if self.until_close => {
                    self.finish(out)?;
                }
                Err(StreamError::BufferFull) => {
                    return Err(FetchError::Protocol("a chunk-size line is too long".into()))
                }
                Err(_) => return Err(FetchError::Closed),
            }
        }
    }

    /// Reads the rest of the body into `out`.
    ///
    /// # Errors
    ///
    /// As [`read_some`](BodyDecoding::read_some).
    pub(crate) async fn read_to_end(
        &mut self,
        stream: &IoStream,
        out: &mut Vec<u8>,
    ) -> Result<(), FetchError> {
        while !self.done {
            self.read_some(stream, out, usize::MAX).await?;
        }
        Ok(())
    }

    /// The body ended: the rest of a gzip stream is flushed.
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), FetchError> {
        self.done = true;
        self.sink.finish(out)
    }
}

impl BodySink {
    /// Hands body bytes (still compressed, if gzipped) to `out`.
    fn deliver(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), FetchError> {
        let Some(gzip) = &mut self.gzip else {
            out.extend_from_slice(data);
            return count(&mut self.delivered, self.limit, data.len());
        };
        // A slice at a time, checking the limit after each: a bomb overshoots it by
        // what one slice expands to (about 1 MiB at most).
        for slice in data.chunks(GZIP_STEP) {
            let at = out.len();
            gzip.write_all(slice).map_err(|_| bad_gzip())?;
            out.append(gzip.get_mut());
            count(&mut self.delivered, self.limit, out.len() - at)?;
        }
        Ok(())
    }

    /// Flushes the rest of a gzip stream, refusing one cut short.
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), FetchError> {
        if let Some(mut gzip) = self.gzip.take() {
            let before = out.len();
            gzip.try_finish().map_err(|_| bad_gzip())?;
            out.append(gzip.get_mut());
            count(&mut self.delivered, self.limit, out.len() - before)?;
        }
        Ok(())
    }
}

/// Adds `n` bytes to those `delivered`, refusing to pass `limit`.
fn count(delivered: &mut u64, limit: u64, n: usize) -> Result<(), FetchError> {
    *delivered += n as u64;
    if *delivered > limit {
        return Err(FetchError::BodyTooLarge { limit });
    }
    Ok(())
}

/// A gunzipper when `decompress` is on and the body's `Content-Encoding` is gzip.
fn gzip_decoder(head: &ResponseHead, decompress: bool) -> Option<GzDecoder<Vec<u8>>> {
    let gzipped = head
        .header_bytes("content-encoding")
        .map(<[u8]>::trim_ascii)
        .is_some_and(|coding| {
            coding.eq_ignore_ascii_case(b"gzip") || coding.eq_ignore_ascii_case(b"x-gzip")
        });
    (decompress && gzipped).then(|| GzDecoder::new(Vec::new()))
}

fn bad_gzip() -> FetchError {
    FetchError::Protocol("a malformed gzip body".into())
}
