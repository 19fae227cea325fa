//! Reading in place: a parser looks at the stream's read buffer itself
//! ([`with_buffered`](IoStream::with_buffered)), drops what it has used
//! ([`consume`](IoStream::consume)), and asks to be called back once more bytes arrive
//! ([`wait_for_more_then`](IoStream::wait_for_more_then), or [`wait_for_more`](IoStream::wait_for_more) in async code). A
//! protocol such as HTTP/1.1 parses every request already buffered in one pass this way,
//! with no copy out of the buffer for bytes it only looks at.

use super::async_api::StreamRead;
use super::error::StreamError;
use super::iostream::{Delivery, IoStream, ReadKind};

impl IoStream {
    /// Runs `f` with the bytes read from the socket and not yet taken (empty if none).
    ///
    /// # Panics
    ///
    /// `f` runs with the stream's state borrowed (it lends `f` the bytes inside it): `f`
    /// may call the stream's read-only methods (`closed`, `buffered`, `error`, ...), but a
    /// method that changes the stream (`consume`, `close`, a write, a read) panics. Look
    /// at the bytes in `f`; act on the stream after it returns.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::{IoLoop, IoStream};
    /// let ioloop = IoLoop::new()?;
    /// let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// let (a, b) = (IoStream::new(&ioloop, a)?, IoStream::new(&ioloop, b)?);
    /// a.write(b"PING\r\n")?;
    /// ioloop.run_sync(b.wait_for_more(0))??;
    /// assert_eq!(b.with_buffered(|bytes| bytes.to_vec()), b"PING\r\n");
    /// b.consume(4);
    /// assert_eq!(b.with_buffered(|bytes| bytes.len()), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_buffered<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(self.core.state.borrow().read_buffer.unread())
    }

    /// Drops the first `n` buffered bytes (at most all of them), as a parser does with a
    /// message it has handled.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::{IoLoop, IoStream};
    /// let ioloop = IoLoop::new()?;
    /// let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// let (a, b) = (IoStream::new(&ioloop, a)?, IoStream::new(&ioloop, b)?);
    /// a.write(b"one\r\ntwo\r\n")?;
    /// ioloop.run_sync(b.wait_for_more(0))??;
    /// let end = b.with_buffered(|bytes| bytes.windows(2).position(|w| w == b"\r\n"));
    /// b.consume(end.unwrap() + 2); // the first line is handled
    /// assert_eq!(b.with_buffered(|bytes| bytes.to_vec()), b"two\r\n");
    /// b.consume(usize::MAX); // at most all of them
    /// assert_eq!(b.buffered(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn consume(&self, n: usize) {
        let leave_as_is = {
            let mut state = self.core.state.borrow_mut();
            let n = n.min(state.read_buffer.len());
            state.read_buffer.consume(n);
            // A parser consuming a message with more bytes left after it is about to
            // consume or read again: turning READ off for the bytes left would be undone
            // at once. If an event comes first, it reads nothing and turns READ off.
            state.pending.is_none() && !state.read_buffer.is_empty() && state.interest.is_readable()
        };
        // Otherwise, room in a full buffer means the socket may be read again.
        if !leave_as_is {
            self.update_interest();
        }
    }

    /// Takes every buffered byte after the first `skip` as a vector, handing over the
    /// buffer's own memory instead of copying (a protocol's whole last message).
    #[cfg_attr(not(feature = "websocket"), allow(dead_code))]
    pub(crate) fn take_buffered(&self, skip: usize) -> Vec<u8> {
        let taken = self.core.state.borrow_mut().read_buffer.take_all(skip);
        // Room in a full buffer means the socket may be read again.
        self.update_interest();
        taken
    }

    /// Calls `callback` once more than `seen` bytes are buffered (on a later iteration,
    /// also when that is already so), taking none of them; or with the error if the
    /// stream closes first, or its buffer is full ([`StreamError::BufferFull`], which
    /// closes it) before that. It is the stream's one pending read.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::{IoLoop, IoStream};
    /// let ioloop = IoLoop::new()?;
    /// let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// let (a, b) = (IoStream::new(&ioloop, a)?, IoStream::new(&ioloop, b)?);
    /// a.write(b"x")?;
    /// b.wait_for_more_then(0, |stream, more| {
    ///     more.unwrap();
    ///     assert_eq!(stream.buffered(), 1);
    ///     IoLoop::current().unwrap().stop();
    /// });
    /// ioloop.start()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_for_more_then<F>(&self, seen: usize, callback: F)
    where
        F: FnOnce(&IoStream, Result<(), StreamError>) + 'static,
    {
        self.start_read(
            ReadKind::More { seen },
            Delivery::Notify(Box::new(callback)),
        );
    }

    /// The async [`wait_for_more_then`](IoStream::wait_for_more_then): resolves once more than `seen` bytes
    /// are buffered; its output is an empty vector (no bytes are taken).
    ///
    /// # Errors
    ///
    /// As [`wait_for_more_then`](IoStream::wait_for_more_then), and [`StreamError::AlreadyReading`].
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::{IoLoop, IoStream};
    /// let ioloop = IoLoop::new()?;
    /// let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// let (a, b) = (IoStream::new(&ioloop, a)?, IoStream::new(&ioloop, b)?);
    /// a.write(b"PI")?;
    /// assert!(ioloop.run_sync(b.wait_for_more(0))??.is_empty()); // takes no bytes
    /// assert_eq!(b.buffered(), 2);
    /// a.write(b"NG")?;
    /// ioloop.run_sync(b.wait_for_more(2))??; // more than the 2 already seen
    /// assert_eq!(b.with_buffered(|bytes| bytes.to_vec()), b"PING");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_for_more(&self, seen: usize) -> StreamRead {
        StreamRead::start(self, ReadKind::More { seen })
    }
}
