//! The callback half of [`IoStream`]: each read and write with a callback that runs on a
//! later iteration (Tornado 4's callback API), and the close callback.

use super::error::StreamError;
use super::iostream::{Delivery, IoStream, ReadKind};

impl IoStream {
    /// Reads until `delimiter` and calls `callback` with the bytes up to and including
    /// it. Fails with [`StreamError::Unsatisfiable`] (closing the stream) if the delimiter
    /// is not within the first `max_bytes` bytes.
    ///
    /// The callback runs on a later iteration, also when the buffer already holds the
    /// line. A second read while this one is pending gets
    /// [`StreamError::AlreadyReading`]; on a closed stream the read is satisfied from the
    /// buffer if it can be, and fails with [`StreamError::Closed`] otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::{cell::RefCell, rc::Rc};
    /// use ioloop::{IoLoop, IoStream};
    ///
    /// let ioloop = IoLoop::new()?;
    /// let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// let (a, b) = (IoStream::new(&ioloop, a)?, IoStream::new(&ioloop, b)?);
    /// a.write(b"key: value\r\nrest")?;
    /// let line = Rc::new(RefCell::new(None));
    /// let got = line.clone();
    /// b.read_until_then(b"\r\n", 1024, move |_, read| *got.borrow_mut() = Some(read));
    /// ioloop::testing::run_until(&ioloop, || line.borrow().is_some());
    /// assert_eq!(line.take().unwrap()?, b"key: value\r\n");
    /// assert_eq!(b.with_buffered(|rest| rest.to_vec()), b"rest");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_until_then<F>(&self, delimiter: &[u8], max_bytes: usize, callback: F)
    where
        F: FnOnce(&IoStream, Result<Vec<u8>, StreamError>) + 'static,
    {
        let kind = ReadKind::until(delimiter, max_bytes);
        self.start_read(kind, Delivery::Bytes(Box::new(callback)));
    }

    /// Reads exactly `n` bytes, or with `partial` as soon as at least one byte is there
    /// (at most `n`), and calls `callback` with them. `n == 0` completes with nothing.
    /// Same rules as [`read_until_then`](IoStream::read_until_then).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::{IoLoop, IoStream};
    /// let ioloop = IoLoop::new()?;
    /// let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// let (a, b) = (IoStream::new(&ioloop, a)?, IoStream::new(&ioloop, b)?);
    /// a.write(b"abcdef")?;
    /// b.read_bytes_then(4, false, |_, bytes| {
    ///     assert_eq!(bytes.unwrap(), b"abcd");
    ///     IoLoop::current().unwrap().stop();
    /// });
    /// ioloop.start()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_bytes_then<F>(&self, n: usize, partial: bool, callback: F)
    where
        F: FnOnce(&IoStream, Result<Vec<u8>, StreamError>) + 'static,
    {
        let kind = ReadKind::Bytes { n, partial };
        self.start_read(kind, Delivery::Bytes(Box::new(callback)));
    }

    /// Fills `buffer` (or, with `partial`, at least one byte of it) and hands it back to
    /// `callback` with the byte count; the buffer comes back on failure too.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::{IoLoop, IoStream};
    /// let ioloop = IoLoop::new()?;
    /// let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// let (a, b) = (IoStream::new(&ioloop, a)?, IoStream::new(&ioloop, b)?);
    /// a.write(b"xyz")?;
    /// b.read_into_then(vec![0; 8], true, |_, buf, n| {
    ///     assert_eq!(&buf[..n.unwrap()], b"xyz");
    ///     IoLoop::current().unwrap().stop();
    /// });
    /// ioloop.start()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_into_then<F>(&self, buffer: Vec<u8>, partial: bool, callback: F)
    where
        F: FnOnce(&IoStream, Vec<u8>, Result<usize, StreamError>) + 'static,
    {
        let kind = ReadKind::Bytes {
            n: buffer.len(),
            partial,
        };
        self.start_read(kind, Delivery::Into(buffer, Box::new(callback)));
    }

    /// Reads everything until the peer closes and calls `callback` with it. Fails with
    /// [`StreamError::BufferFull`] (closing the stream) if that is more than
    /// `max_buffer_size`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::{IoLoop, IoStream};
    /// let ioloop = IoLoop::new()?;
    /// let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// let (a, b) = (IoStream::new(&ioloop, a)?, IoStream::new(&ioloop, b)?);
    /// a.write(b"all of it")?;
    /// a.close();
    /// b.read_until_close_then(|_, all| {
    ///     assert_eq!(all.unwrap(), b"all of it");
    ///     IoLoop::current().unwrap().stop();
    /// });
    /// ioloop.start()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_until_close_then<F>(&self, callback: F)
    where
        F: FnOnce(&IoStream, Result<Vec<u8>, StreamError>) + 'static,
    {
        self.start_read(ReadKind::UntilClose, Delivery::Bytes(Box::new(callback)));
    }

    /// Writes `data` without waiting: the bytes the socket does not take at once are
    /// buffered and sent as it drains. Use [`write_then`](IoStream::write_then) or the
    /// async [`write_all`](IoStream::write_all) to learn when they are sent.
    ///
    /// # Errors
    ///
    /// [`StreamError::Closed`] on a closed stream, [`StreamError::BufferFull`] past
    /// `max_write_buffer_size`; nothing is queued then.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let (a, mut b) = std::os::unix::net::UnixStream::pair()?;
    /// let a = ioloop::IoStream::new(&ioloop, a)?;
    /// a.write(b"no ")?;
    /// a.write(b"waiting")?; // both queued, in order
    /// ioloop.run_sync(a.drained(0))??;
    /// let mut got = [0; 10];
    /// b.read_exact(&mut got)?;
    /// assert_eq!(&got, b"no waiting");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write(&self, data: &[u8]) -> Result<(), StreamError> {
        self.queue_write(data).map(drop)
    }

    /// Calls `callback` once at most `low_water` of the bytes written so far still wait
    /// for the socket (at once, on the next iteration, if that is already so), or with
    /// the error if the stream closes first. Writes made after this call do not delay it.
    ///
    /// This is write backpressure in callback style: a program that writes what it reads
    /// stops reading while [`write_buffered`](IoStream::write_buffered) is above a
    /// high-water mark and resumes from this callback, so a peer that stops reading
    /// costs it at most the mark.
    ///
    /// # Errors
    ///
    /// The callback gets [`StreamError::Closed`] if the stream is or becomes closed
    /// before the bytes drain.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::{IoLoop, IoStream};
    ///
    /// const HIGH_WATER: usize = 1 << 20;
    /// const LOW_WATER: usize = 64 * 1024;
    ///
    /// /// Echoes lines, reading no more while a megabyte waits for the peer.
    /// fn echo(stream: &IoStream) {
    ///     stream.read_until_then(b"\n", 64 * 1024, |stream, line| {
    ///         let Ok(line) = line else { return stream.close() };
    ///         if stream.write(&line).is_err() {
    ///             return stream.close();
    ///         }
    ///         if stream.write_buffered() > HIGH_WATER {
    ///             stream.drained_then(LOW_WATER, |stream, drained| {
    ///                 if drained.is_ok() {
    ///                     echo(stream);
    ///                 }
    ///             });
    ///         } else {
    ///             echo(stream);
    ///         }
    ///     });
    /// }
    ///
    /// let ioloop = IoLoop::new()?;
    /// let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// let (a, b) = (IoStream::new(&ioloop, a)?, IoStream::new(&ioloop, b)?);
    /// echo(&a);
    /// b.write(b"ping\n")?;
    /// b.read_until_then(b"\n", 64, |_, line| {
    ///     assert_eq!(line.unwrap(), b"ping\n");
    ///     IoLoop::current().unwrap().stop();
    /// });
    /// ioloop.start()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn drained_then<F>(&self, low_water: usize, callback: F)
    where
        F: FnOnce(&IoStream, Result<(), StreamError>) + 'static,
    {
        let target = match self.drain_target(low_water) {
            Ok(target) => target,
            Err(error) => return self.deliver(move |stream| callback(stream, Err(error))),
        };
        self.wait_for_write_total(target, Box::new(callback));
    }

    /// Writes `data` and calls `callback` once it (and every earlier write) has been
    /// handed to the kernel, or with the error if the stream closes first. Callbacks run
    /// in write order, on a later iteration; an empty write completes after the earlier
    /// ones.
    ///
    /// # Errors
    ///
    /// As [`write`](IoStream::write); the callback is not called then.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::{IoLoop, IoStream};
    /// let ioloop = IoLoop::new()?;
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let a = IoStream::new(&ioloop, a)?;
    /// a.write_then(b"sent", |_, result| {
    ///     result.unwrap();
    ///     IoLoop::current().unwrap().stop();
    /// })?;
    /// ioloop.start()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_then<F>(&self, data: &[u8], callback: F) -> Result<(), StreamError>
    where
        F: FnOnce(&IoStream, Result<(), StreamError>) + 'static,
    {
        let target = self.queue_write(data)?;
        self.wait_for_write_total(target, Box::new(callback));
        Ok(())
    }

    /// Calls `callback` once, on a later iteration, when the stream closes (after the
    /// read callbacks the close satisfied). An idle stream with an empty buffer watches
    /// for the peer closing. Replaces an earlier close callback.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::{IoLoop, IoStream};
    /// let ioloop = IoLoop::new()?;
    /// let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// let a = IoStream::new(&ioloop, a)?;
    /// a.set_close_callback(|stream| {
    ///     assert!(stream.closed());
    ///     IoLoop::current().unwrap().stop();
    /// });
    /// drop(b); // the peer leaves
    /// ioloop.start()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_close_callback<F>(&self, callback: F)
    where
        F: FnOnce(&IoStream) + 'static,
    {
        let replaced = self
            .core
            .state
            .borrow_mut()
            .set_close_callback(Box::new(callback));
        // A user value (it may own this stream, or a connection on it): dropped after the
        // borrow.
        drop(replaced);
        self.maybe_run_close_callback();
        self.update_interest();
    }
}
