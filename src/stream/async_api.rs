//! The async half of [`IoStream`]: each read and write as a future.
//!
//! A read is registered when the method is called (so a second one fails with
//! [`StreamError::AlreadyReading`] exactly as in callback style) and takes its bytes out
//! of the buffer only when the awaiting task polls it. Dropping a read future before it
//! completed withdraws the read and leaves every byte in the buffer, so a read under a
//! [`timeout`](crate::timeout) loses nothing.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::buffer::ReadBuffer;
use super::error::StreamError;
use super::iostream::{Delivery, IoStream, Progress, ReadKind};

impl StreamRead {
    /// A read future for `kind`, registered on `stream` now.
    pub(crate) fn start(stream: &IoStream, kind: ReadKind) -> StreamRead {
        StreamRead {
            state: stream.start_task_read(kind, false),
            stream: stream.clone(),
        }
    }
}

/// The state of a read future.
enum ReadState {
    /// Registered as the stream's pending read with this ticket.
    Waiting(u32),
    /// Could not start (another read was pending).
    Refused,
    Done,
}

impl IoStream {
    fn start_task_read(&self, kind: ReadKind, into_caller_buffer: bool) -> ReadState {
        let delivery = Delivery::Task {
            waker: None,
            into_caller_buffer,
        };
        match self.start_read(kind, delivery) {
            Some(ticket) => ReadState::Waiting(ticket),
            None => ReadState::Refused,
        }
    }

    /// The async [`read_until_then`](IoStream::read_until_then): the bytes up to and
    /// including `delimiter`.
    ///
    /// # Errors
    ///
    /// [`StreamError::Unsatisfiable`] (the stream is closed) if the delimiter is not within
    /// `max_bytes`; [`StreamError::AlreadyReading`]; [`StreamError::Closed`] if the
    /// stream closes before the delimiter arrives; [`StreamError::BufferFull`].
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::{IoLoop, IoStream};
    /// let ioloop = IoLoop::new()?;
    /// let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// let (a, b) = (IoStream::new(&ioloop, a)?, IoStream::new(&ioloop, b)?);
    /// let line = ioloop.run_sync(async move {
    ///     a.write_all(b"GET / HTTP/1.1\r\n").await?;
    ///     b.read_until(b"\r\n", 8192).await
    /// })??;
    /// assert_eq!(line, b"GET / HTTP/1.1\r\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_until(&self, delimiter: &[u8], max_bytes: usize) -> StreamRead {
        let kind = ReadKind::until(delimiter, max_bytes);
        StreamRead::start(self, kind)
    }

    /// The async [`read_bytes_then`](IoStream::read_bytes_then): exactly `n` bytes, or
    /// with `partial` between 1 and `n` as soon as some are there.
    ///
    /// # Errors
    ///
    /// As [`read_until`](IoStream::read_until), without `Unsatisfiable`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::{IoLoop, IoStream};
    /// let ioloop = IoLoop::new()?;
    /// let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// let (a, b) = (IoStream::new(&ioloop, a)?, IoStream::new(&ioloop, b)?);
    /// a.write(b"12345")?;
    /// let head = ioloop.run_sync(async move { b.read_bytes(2, false).await })??;
    /// assert_eq!(head, b"12");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_bytes(&self, n: usize, partial: bool) -> StreamRead {
        StreamRead::start(self, ReadKind::Bytes { n, partial })
    }

    /// The async [`read_until_close_then`](IoStream::read_until_close_then): everything
    /// until the peer closes.
    ///
    /// # Errors
    ///
    /// [`StreamError::BufferFull`] (the stream is closed) past `max_buffer_size`;
    /// [`StreamError::AlreadyReading`].
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::{IoLoop, IoStream};
    /// let ioloop = IoLoop::new()?;
    /// let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// let (a, b) = (IoStream::new(&ioloop, a)?, IoStream::new(&ioloop, b)?);
    /// a.write(b"bye")?;
    /// a.close();
    /// assert_eq!(ioloop.run_sync(b.read_until_close())??, b"bye");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_until_close(&self) -> StreamRead {
        StreamRead::start(self, ReadKind::UntilClose)
    }

    /// The async [`read_into_then`](IoStream::read_into_then): fills `buffer` (with
    /// `partial`, at least one byte of it) and returns the count.
    ///
    /// # Errors
    ///
    /// As [`read_bytes`](IoStream::read_bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::{IoLoop, IoStream};
    /// let ioloop = IoLoop::new()?;
    /// let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// let (a, b) = (IoStream::new(&ioloop, a)?, IoStream::new(&ioloop, b)?);
    /// a.write(b"abc")?;
    /// let got = ioloop.run_sync(async move {
    ///     let mut buf = [0u8; 3];
    ///     b.read_into(&mut buf, false).await.map(|n| buf[..n].to_vec())
    /// })??;
    /// assert_eq!(got, b"abc");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_into<'a>(&self, buffer: &'a mut [u8], partial: bool) -> StreamReadInto<'a> {
        let kind = ReadKind::Bytes {
            n: buffer.len(),
            partial,
        };
        StreamReadInto {
            read: StreamRead {
                state: self.start_task_read(kind, partial),
                stream: self.clone(),
            },
            buffer,
        }
    }

    /// Writes `data` (queued at once, like [`write`](IoStream::write)) and resolves when
    /// it and every earlier write have been handed to the kernel.
    ///
    /// # Errors
    ///
    /// [`StreamError::Closed`] if the stream is closed (at once) or closes first (for
    /// example, the peer vanished mid-write); [`StreamError::BufferFull`] past
    /// `max_write_buffer_size`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let (a, mut b) = std::os::unix::net::UnixStream::pair()?;
    /// let a = ioloop::IoStream::new(&ioloop, a)?;
    /// ioloop.run_sync(a.write_all(b"sent"))??; // with the kernel now
    /// let mut got = [0; 4];
    /// b.read_exact(&mut got)?;
    /// assert_eq!(&got, b"sent");
    /// a.close();
    /// assert!(ioloop.run_sync(a.write_all(b"late"))?.is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_all(&self, data: &[u8]) -> StreamWrite {
        StreamWrite {
            target: self.queue_write(data),
            stream: self.clone(),
        }
    }

    /// [`write_all`](IoStream::write_all) of the concatenation of `parts`, handed to the
    /// socket in one vectored write when nothing waits before them.
    #[cfg_attr(
        not(any(feature = "websocket", feature = "http-client")),
        allow(dead_code)
    )]
    pub(crate) fn write_all_parts(&self, parts: &[&[u8]]) -> StreamWrite {
        StreamWrite {
            target: self.queue_write_parts(parts),
            stream: self.clone(),
        }
    }

    /// Resolves once at most `low_water` of the bytes written so far still wait for the
    /// socket (at once if that is already so). Writes made after this call do not delay
    /// it. The async form of [`drained_then`](IoStream::drained_then): write
    /// backpressure for a task that writes without awaiting each write.
    ///
    /// # Errors
    ///
    /// [`StreamError::Closed`] if the stream is or becomes closed before the bytes drain.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let a = ioloop::IoStream::new(&ioloop, a)?;
    /// a.write(b"small enough for the socket")?;
    /// ioloop.run_sync(a.drained(0))?.unwrap();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn drained(&self, low_water: usize) -> StreamWrite {
        StreamWrite {
            target: self.drain_target(low_water),
            stream: self.clone(),
        }
    }

    /// Polls a partial read into the task's own buffer registered under `ticket` the
    /// direct way: with nothing buffered, the socket is read straight into `buf`. `None`
    /// when that does not apply (bytes are buffered, or the read is not ours).
    fn poll_read_direct(
        &self,
        ticket: u32,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Option<Poll<Result<usize, StreamError>>> {
        {
            let state = self.core.state.borrow();
            let pending = state.pending.as_ref()?;
            let applies = state.next_ticket == ticket
                && state.read_buffer.is_empty()
                && !state.closed
                && pending.delivery.reads_direct(&pending.kind);
            if !applies {
                return None;
            }
        }
        // Only after the poller said so: a read that finds nothing is a wasted syscall.
        let readable = self.core.state.borrow().readable;
        let read = if readable {
            self.read_socket_into(buf)
        } else {
            Ok(None)
        };
        let mut state = self.core.state.borrow_mut();
        let Some(pending) = state.pending_read(ticket) else {
            return Some(Poll::Ready(Err(state.closed_error())));
        };
        // A waker is a user value: what the read held is dropped after the borrow.
        match read {
            Ok(None) => {
                let replaced = match &mut pending.delivery {
                    Delivery::Task { waker, .. } => waker.replace(cx.waker().clone()),
                    _ => None,
                };
                drop(state);
                drop(replaced);
                Some(Poll::Pending)
            }
            done => {
                let ended = state.pending.take();
                drop(state);
                drop(ended);
                self.update_interest();
                Some(Poll::Ready(done.map(|got| got.unwrap_or(0))))
            }
        }
    }

    /// Polls the read registered under `ticket`, taking its bytes with `take`.
    fn poll_read<T>(
        &self,
        ticket: u32,
        cx: &mut Context<'_>,
        take: impl FnOnce(&mut ReadBuffer, usize) -> T,
    ) -> Poll<Result<T, StreamError>> {
        let mut state = self.core.state.borrow_mut();
        let mut pending = match state.pending.take() {
            Some(pending) if state.next_ticket == ticket => pending,
            other => {
                // Only this future removes its own read; closing keeps it pending.
                state.pending = other;
                return Poll::Ready(Err(state.closed_error()));
            }
        };
        match state.progress(&pending.kind) {
            Progress::NeedsData => {
                let replaced = match &mut pending.delivery {
                    Delivery::Task { waker, .. } => waker.replace(cx.waker().clone()),
                    _ => None,
                };
                state.pending = Some(pending);
                // A waker is a user value: dropped after the borrow.
                drop(state);
                drop(replaced);
                Poll::Pending
            }
            Progress::Ready(n) => {
                let taken = take(&mut state.read_buffer, n);
                drop(state);
                // A fill takes nothing: its task is about to look at the buffer and then
                // consume or read again, either of which settles the interest. Leaving it
                // as it is spares turning READ off and on again around every message.
                if !matches!(pending.kind, ReadKind::More { .. }) {
                    self.update_interest();
                }
                Poll::Ready(Ok(taken))
            }
            Progress::Failed(error) => {
                drop(state);
                self.close_if_fatal(&error);
                self.update_interest();
                Poll::Ready(Err(error))
            }
        }
    }
}

/// A read started by [`IoStream::read_until`], [`read_bytes`](IoStream::read_bytes) or
/// [`read_until_close`](IoStream::read_until_close). Dropping it before it completes
/// withdraws the read; the buffered bytes stay.
///
/// # Examples
///
/// A read given up under a [`timeout`](crate::timeout) loses nothing:
///
/// ```
/// use ioloop::{IoLoop, IoStream};
/// use std::time::Duration;
///
/// let ioloop = IoLoop::new()?;
/// let (a, b) = std::os::unix::net::UnixStream::pair()?;
/// let (a, b) = (IoStream::new(&ioloop, a)?, IoStream::new(&ioloop, b)?);
/// a.write(b"partial")?;
/// let read: ioloop::stream::StreamRead = b.read_until(b"\n", 64);
/// let timed = ioloop.run_sync(ioloop::timeout(Duration::from_millis(1), read))?;
/// assert!(timed.is_err()); // no newline yet: the read was dropped
/// a.write(b" line\n")?;
/// assert_eq!(ioloop.run_sync(b.read_until(b"\n", 64))??, b"partial line\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "futures do nothing unless awaited (the read stays pending until dropped)"]
pub struct StreamRead {
    stream: IoStream,
    state: ReadState,
}

impl StreamRead {
    fn poll_with<T>(
        &mut self,
        cx: &mut Context<'_>,
        take: impl FnOnce(&mut ReadBuffer, usize) -> T,
    ) -> Poll<Result<T, StreamError>> {
        let ticket = match self.state {
            ReadState::Waiting(ticket) => ticket,
            ReadState::Refused => {
                self.state = ReadState::Done;
                return Poll::Ready(Err(StreamError::AlreadyReading));
            }
            ReadState::Done => {
                return Poll::Ready(Err(self.stream.core.state.borrow().closed_error()))
            }
        };
        let polled = self.stream.poll_read(ticket, cx, take);
        if polled.is_ready() {
            self.state = ReadState::Done;
        }
        polled
    }
}

impl Future for StreamRead {
    type Output = Result<Vec<u8>, StreamError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().poll_with(cx, |buffer, n| buffer.take(n))
    }
}

impl Drop for StreamRead {
    fn drop(&mut self) {
        if let ReadState::Waiting(ticket) = self.state {
            // Never a panic in a destructor: a read dropped while the stream's state is
            // borrowed is withdrawn on the next iteration instead.
            if self.stream.core.state.try_borrow_mut().is_err() {
                let stream = self.stream.clone();
                if let Some(ioloop) = stream.ioloop() {
                    ioloop.add_callback(move |_| withdraw_read(&stream, ticket));
                }
                return;
            }
            withdraw_read(&self.stream, ticket);
        }
    }
}

/// Withdraws the pending read `ticket` if it is still the stream's; what it held (a
/// waker) is dropped after the borrow.
fn withdraw_read(stream: &IoStream, ticket: u32) {
    let withdrawn = {
        let mut state = stream.core.state.borrow_mut();
        let mine = state.pending_read(ticket).is_some();
        mine.then(|| state.pending.take())
    };
    if let Some(read) = withdrawn {
        drop(read);
        stream.update_interest();
    }
}

impl fmt::Debug for StreamRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamRead")
            .field("waiting", &matches!(self.state, ReadState::Waiting(_)))
            .finish()
    }
}

/// A read started by [`IoStream::read_into`].
///
/// # Examples
///
/// ```
/// use ioloop::{IoLoop, IoStream};
/// let ioloop = IoLoop::new()?;
/// let (a, b) = std::os::unix::net::UnixStream::pair()?;
/// let (a, b) = (IoStream::new(&ioloop, a)?, IoStream::new(&ioloop, b)?);
/// a.write(b"abc")?;
/// let got = ioloop.run_sync(async move {
///     let mut buf = [0u8; 16];
///     let read: ioloop::stream::StreamReadInto<'_> = b.read_into(&mut buf, true);
///     let n = read.await?; // partial: what is there, at least one byte
///     Ok::<_, ioloop::StreamError>(buf[..n].to_vec())
/// })??;
/// assert_eq!(got, b"abc");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "futures do nothing unless awaited (the read stays pending until dropped)"]
pub struct StreamReadInto<'a> {
    read: StreamRead,
    buffer: &'a mut [u8],
}

impl Future for StreamReadInto<'_> {
    type Output = Result<usize, StreamError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let ReadState::Waiting(ticket) = this.read.state {
            if let Some(polled) = this.read.stream.poll_read_direct(ticket, cx, this.buffer) {
                if polled.is_ready() {
                    this.read.state = ReadState::Done;
                }
                return polled;
            }
        }
        let buffer = &mut *this.buffer;
        this.read.poll_with(cx, |read_buffer, n| {
            let n = n.min(buffer.len());
            read_buffer.take_into(&mut buffer[..n]);
            n
        })
    }
}

impl fmt::Debug for StreamReadInto<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamReadInto")
            .field("len", &self.buffer.len())
            .finish()
    }
}

/// A write from [`IoStream::write_all`]: resolves once its bytes are with the kernel.
/// Dropping it does not cancel the write.
///
/// # Examples
///
/// ```
/// use ioloop::{IoLoop, IoStream};
/// let ioloop = IoLoop::new()?;
/// let (a, b) = std::os::unix::net::UnixStream::pair()?;
/// let (a, b) = (IoStream::new(&ioloop, a)?, IoStream::new(&ioloop, b)?);
/// let write: ioloop::stream::StreamWrite = a.write_all(b"still sent");
/// drop(write); // queued all the same
/// assert_eq!(ioloop.run_sync(b.read_bytes(10, false))??, b"still sent");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "the write is queued either way; await it to learn when it is sent"]
pub struct StreamWrite {
    stream: IoStream,
    /// The total written count at which this write is done, or why it was refused.
    target: Result<u64, StreamError>,
}

impl StreamWrite {
    /// Why the write was refused at once (nothing was queued), if it was.
    #[cfg_attr(not(feature = "websocket"), allow(dead_code))]
    pub(crate) fn refused(&self) -> Option<&StreamError> {
        self.target.as_ref().err()
    }
}

impl Future for StreamWrite {
    type Output = Result<(), StreamError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let target = match &self.target {
            Ok(target) => *target,
            Err(error) => return Poll::Ready(Err(error.clone())),
        };
        let mut state = self.stream.core.state.borrow_mut();
        if state.write_buffer.total_written >= target {
            Poll::Ready(Ok(()))
        } else if state.closed {
            Poll::Ready(Err(state.closed_error()))
        } else {
            state.add_write_waiters().push_waker(cx.waker());
            Poll::Pending
        }
    }
}

impl fmt::Debug for StreamWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamWrite")
            .field("target", &self.target)
            .finish()
    }
}
