//! [`IoStream::read_until_regex_then`] and [`IoStream::read_until_regex`] (feature
//! `regex`): reads that end where a regular expression first matches (Tornado's
//! `read_until_regex`), with the same `max_bytes` rule as a delimiter.

use super::async_api::StreamRead;
use super::error::StreamError;
use super::iostream::{Delivery, IoStream, ReadKind};

impl IoStream {
    /// Reads until `regex` matches the buffered bytes and calls `callback` with the bytes
    /// up to the end of the first match. The match is looked for in everything buffered
    /// each time data arrives, and the read completes at the first match found, so a
    /// pattern whose match could grow with more data (`\d+`) ends where the data ended
    /// then; anchor it on what follows (`\d+\n`). Fails with
    /// [`StreamError::Unsatisfiable`] (closing the stream) if the match does not end
    /// within the first `max_bytes` bytes, as
    /// [`read_until_then`](IoStream::read_until_then) does, whose other rules apply too.
    /// Each arrival searches everything buffered again (a match can start anywhere, as
    /// in Tornado), so the work grows with the square of what a match needs: keep
    /// `max_bytes` near that.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::{IoLoop, IoStream};
    /// use regex::bytes::Regex;
    ///
    /// let ioloop = IoLoop::new()?;
    /// let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// let (a, b) = (IoStream::new(&ioloop, a)?, IoStream::new(&ioloop, b)?);
    /// a.write(b"HTTP/1.1 200 OK\n\rrest")?;
    /// b.read_until_regex_then(&Regex::new(r"\r?\n\r?")?, 1024, |_, head| {
    ///     assert_eq!(head.unwrap(), b"HTTP/1.1 200 OK\n\r");
    ///     IoLoop::current().unwrap().stop();
    /// });
    /// ioloop.start()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_until_regex_then<F>(
        &self,
        regex: &regex::bytes::Regex,
        max_bytes: usize,
        callback: F,
    ) where
        F: FnOnce(&IoStream, Result<Vec<u8>, StreamError>) + 'static,
    {
        let kind = ReadKind::until_regex(regex, max_bytes);
        self.start_read(kind, Delivery::Bytes(Box::new(callback)));
    }

    /// The async [`read_until_regex_then`](IoStream::read_until_regex_then).
    ///
    /// # Errors
    ///
    /// As [`read_until`](IoStream::read_until).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::{IoLoop, IoStream};
    /// use regex::bytes::Regex;
    ///
    /// let ioloop = IoLoop::new()?;
    /// let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// let (a, b) = (IoStream::new(&ioloop, a)?, IoStream::new(&ioloop, b)?);
    /// let number = Regex::new(r"[0-9]+;")?;
    /// let got = ioloop.run_sync(async move {
    ///     a.write_all(b"id=42;name=x").await?;
    ///     b.read_until_regex(&number, 64).await
    /// })??;
    /// assert_eq!(got, b"id=42;");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_until_regex(&self, regex: &regex::bytes::Regex, max_bytes: usize) -> StreamRead {
        StreamRead::start(self, ReadKind::until_regex(regex, max_bytes))
    }
}
