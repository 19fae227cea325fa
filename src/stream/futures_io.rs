//! [`FuturesIo`]: an [`IoStream`] seen through `futures-io`'s `AsyncRead`,
//! `AsyncBufRead` and `AsyncWrite` (feature `futures-io`), so the crates built on those
//! traits (codecs, `futures-rustls`, `async-tungstenite`, `async-compression`,
//! `futures::io::copy`) run over the loop's streams.
//!
//! The traits poll through `&mut self`, and a read may leave bytes behind for the next
//! call: the adapter keeps what it took from the stream's buffer and the futures it is
//! waiting on. Reads take whatever the stream has buffered, else wait for more; writes
//! queue on the stream at once and wait (backpressure) only while more than
//! [`FuturesIo::WRITE_HIGH_WATER`] bytes wait for the socket; `poll_flush` waits until
//! everything is handed to the kernel; `poll_close` flushes and closes the stream.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncBufRead, AsyncRead, AsyncWrite};

use super::async_api::{StreamRead, StreamWrite};
use super::error::StreamError;
use super::iostream::IoStream;

/// An [`IoStream`] as `futures-io`'s `AsyncRead + AsyncBufRead + AsyncWrite` (feature
/// `futures-io`). Loop thread only, like the stream.
///
/// The stream keeps Tornado's rules: the peer's end of stream closes it, so there is no
/// half-close (a write after the peer shut down its side fails), and `poll_close` closes
/// both ways. The stream stays usable through [`get_ref`](FuturesIo::get_ref) (its close
/// callback, its options), but reading from it directly while the adapter waits for bytes
/// fails with `AlreadyReading` on one side or the other.
///
/// # Examples
///
/// ```
/// use futures_lite::io::AsyncBufReadExt;
/// use ioloop::{IoLoop, IoStream};
///
/// let ioloop = IoLoop::new()?;
/// let (a, b) = std::os::unix::net::UnixStream::pair()?;
/// let (a, b) = (IoStream::new(&ioloop, a)?, IoStream::new(&ioloop, b)?);
/// a.write(b"first line\nsecond\n")?;
/// let line = ioloop.run_sync(async move {
///     let mut reader = b.into_futures_io();
///     let mut line = String::new();
///     reader.read_line(&mut line).await.map(|_| line)
/// })??;
/// assert_eq!(line, "first line\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct FuturesIo {
    stream: IoStream,
    /// Bytes taken from the stream and not yet read, from `taken_at`.
    taken: Vec<u8>,
    taken_at: usize,
    /// The wait for more bytes, while one is running.
    filling: Option<StreamRead>,
    /// The wait for the write buffer to drain, while one is running.
    draining: Option<StreamWrite>,
}

impl FuturesIo {
    /// Unsent bytes above which a write waits for the socket to take some (1 MiB).
    pub const WRITE_HIGH_WATER: usize = 1 << 20;

    /// The adapter over `stream`.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::io::AsyncWriteExt;
    /// use ioloop::{stream::FuturesIo, IoLoop, IoStream};
    ///
    /// let ioloop = IoLoop::new()?;
    /// let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// let (a, b) = (IoStream::new(&ioloop, a)?, IoStream::new(&ioloop, b)?);
    /// let mut writer = FuturesIo::new(a);
    /// ioloop.run_sync(async move {
    ///     writer.write_all(b"via AsyncWrite").await?;
    ///     writer.close().await // flushes, then closes the stream
    /// })??;
    /// assert_eq!(ioloop.run_sync(b.read_until_close())??, b"via AsyncWrite");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(stream: IoStream) -> FuturesIo {
        FuturesIo {
            stream,
            taken: Vec::new(),
            taken_at: 0,
            filling: None,
            draining: None,
        }
    }

    /// The stream.
    ///
    /// # Examples
    ///
    /// ```
    /// # let ioloop = ioloop::IoLoop::new()?;
    /// # let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let io = ioloop::IoStream::new(&ioloop, a)?.into_futures_io();
    /// assert!(!io.get_ref().closed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_ref(&self) -> &IoStream {
        &self.stream
    }

    /// The stream back; bytes the adapter took from it and nobody read are lost.
    ///
    /// # Examples
    ///
    /// ```
    /// # let ioloop = ioloop::IoLoop::new()?;
    /// # let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let stream = ioloop::IoStream::new(&ioloop, a)?.into_futures_io().into_inner();
    /// # drop(stream);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_inner(self) -> IoStream {
        self.stream
    }

    /// Waits until the adapter holds unread bytes; `Ok(false)` at the end of the stream.
    fn poll_taken(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        loop {
            if self.taken_at < self.taken.len() {
                return Poll::Ready(Ok(true));
            }
            let buffered = self.stream.buffered();
            if buffered > 0 {
                self.taken.clear();
                self.taken_at = 0;
                self.stream
                    .with_buffered(|bytes| self.taken.extend_from_slice(bytes));
                self.stream.consume(buffered);
                continue;
            }
            let filling = self
                .filling
                .get_or_insert_with(|| self.stream.wait_for_more(0));
            let filled = std::task::ready!(Pin::new(filling).poll(cx));
            self.filling = None;
            match filled {
                Ok(_) => {}
                // A clean end of stream, or a local close: the end of the data.
                Err(StreamError::Closed { real_error: None }) => return Poll::Ready(Ok(false)),
                Err(e) => return Poll::Ready(Err(e.into())),
            }
        }
    }

    fn poll_drained(&mut self, cx: &mut Context<'_>, low_water: usize) -> Poll<io::Result<()>> {
        let draining = self
            .draining
            .get_or_insert_with(|| self.stream.drained(low_water));
        let drained = std::task::ready!(Pin::new(draining).poll(cx));
        self.draining = None;
        Poll::Ready(drained.map_err(io::Error::from))
    }
}

impl IoStream {
    /// This stream as `futures-io`'s `AsyncRead`, `AsyncBufRead` and `AsyncWrite` (feature
    /// `futures-io`): see [`FuturesIo`].
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::io::AsyncReadExt;
    /// use ioloop::{IoLoop, IoStream};
    ///
    /// let ioloop = IoLoop::new()?;
    /// let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// let (a, b) = (IoStream::new(&ioloop, a)?, IoStream::new(&ioloop, b)?);
    /// a.write(b"to the end")?;
    /// a.close();
    /// let all = ioloop.run_sync(async move {
    ///     let mut all = Vec::new();
    ///     b.into_futures_io().read_to_end(&mut all).await.map(|_| all)
    /// })??;
    /// assert_eq!(all, b"to the end");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_futures_io(self) -> FuturesIo {
        FuturesIo::new(self)
    }
}

impl AsyncRead for FuturesIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if !std::task::ready!(this.poll_taken(cx))? {
            return Poll::Ready(Ok(0));
        }
        let available = &this.taken[this.taken_at..];
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        this.taken_at += n;
        Poll::Ready(Ok(n))
    }
}

impl AsyncBufRead for FuturesIo {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        if !std::task::ready!(this.poll_taken(cx))? {
            return Poll::Ready(Ok(&[]));
        }
        Poll::Ready(Ok(&this.taken[this.taken_at..]))
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        this.taken_at = (this.taken_at + amt).min(this.taken.len());
    }
}

impl AsyncWrite for FuturesIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.stream.write_buffered() > FuturesIo::WRITE_HIGH_WATER {
            std::task::ready!(this.poll_drained(cx, FuturesIo::WRITE_HIGH_WATER / 2))?;
        }
        Poll::Ready(
            this.stream
                .write(buf)
                .map(|()| buf.len())
                .map_err(Into::into),
        )
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_drained(cx, 0)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.stream.closed() {
            std::task::ready!(this.poll_drained(cx, 0))?;
            this.stream.close();
        }
        Poll::Ready(Ok(()))
    }
}

impl fmt::Debug for FuturesIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FuturesIo")
            .field("stream", &self.stream)
            .field("unread", &(self.taken.len() - self.taken_at))
            .finish()
    }
}
