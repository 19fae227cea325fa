//! [`IoStream`]: a buffered non-blocking stream with Tornado's read/write API.
//!
//! The stream owns its socket (registered with the loop as an fd handler), a read buffer
//! the socket reads into, and a write buffer holding what the socket did not take yet.
//! One read may be pending at a time; it is satisfied from the buffer as soon as possible.
//! Results go to callbacks through [`IoLoop::add_callback`] (never inline, even when the
//! buffer already holds the answer; see `callbacks.rs`) or to the task awaiting the read
//! (see `async_api.rs`); the write path is in `write.rs`. The poller's interest follows
//! what the stream needs: READ while a read waits for data or the stream is idle with an
//! empty buffer (so a read that follows a read costs no `epoll_ctl`, and a peer leaving
//! is noticed), WRITE while bytes wait to be sent, and `update_handler` is called only
//! when that changes.

use std::any::Any;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::os::fd::AsFd;
use std::panic::Location;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;

use super::buffer::{ReadBuffer, WriteBuffer};
use super::error::StreamError;
use super::options::{Limits, StreamOptions};
use super::socket::StreamSocket;
use crate::reactor::event::IoEvent;
use crate::reactor::interest::{Interest, Readiness};
use crate::reactor::ioloop::{IoLoop, WeakIoLoop};
use crate::reactor::registration::{HandlerId, RegisterError, Registration};

type ReadCallback = Box<dyn FnOnce(&IoStream, Result<Vec<u8>, StreamError>)>;
type ReadIntoCallback = Box<dyn FnOnce(&IoStream, Vec<u8>, Result<usize, StreamError>)>;
type FillCallback = Box<dyn FnOnce(&IoStream, Result<(), StreamError>)>;
pub(crate) type WriteCallback = Box<dyn FnOnce(&IoStream, Result<(), StreamError>)>;
pub(crate) type CloseCallback = Box<dyn FnOnce(&IoStream)>;

/// A buffered non-blocking stream over a TCP stream, Unix stream or pipe, in the style of
/// Tornado's `IOStream`, with each operation as a callback method (`*_then`) and as an
/// async method.
///
/// `IoStream` is a cheap clonable handle (an `Rc` inside), used on the loop thread. As in
/// Tornado, the loop keeps a stream alive until it is closed (by [`close`](IoStream::close),
/// by the peer, or by an error) or the loop is closed, so a callback need not hold a
/// handle for its read to complete. Close the streams you are done with: an abandoned
/// stream with unread bytes buffered is not watched and stays open.
///
/// Rules (Tornado's):
/// - one read at a time: a second read gets [`StreamError::AlreadyReading`];
/// - a read the buffer already satisfies still completes through the loop, never inline;
/// - data buffered before the peer closed stays readable after the close, and the close
///   callback runs after the reads it satisfies;
/// - `read_until` beyond `max_bytes` closes the stream with
///   [`StreamError::Unsatisfiable`], even when the data is already buffered;
/// - the read buffer never grows past [`StreamOptions::max_buffer_size`];
/// - a connection reset closes the stream quietly, keeping the OS error
///   ([`IoStream::error`]); a write to a closed stream fails at once.
///
/// # Examples
///
/// ```
/// use ioloop::{IoLoop, IoStream};
/// use std::os::unix::net::UnixStream;
///
/// let ioloop = IoLoop::new()?;
/// let (a, b) = UnixStream::pair()?;
/// let a = IoStream::new(&ioloop, a)?;
/// let b = IoStream::new(&ioloop, b)?;
/// a.write(b"hello\nworld\n")?;
/// b.read_until_then(b"\n", 1024, |stream, line| {
///     assert_eq!(line.unwrap(), b"hello\n");
///     stream.read_until_then(b"\n", 1024, |_, line| {
///         assert_eq!(line.unwrap(), b"world\n");
///         ioloop::IoLoop::current().unwrap().stop();
///     });
/// });
/// ioloop.start()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct IoStream {
    pub(super) core: Rc<StreamCore>,
}

pub(crate) struct StreamCore {
    ioloop: WeakIoLoop,
    pub(super) state: RefCell<StreamState>,
}

/// What a pending read waits for. Three words: every idle connection holds one.
#[derive(Debug)]
pub(crate) enum ReadKind {
    /// Made by [`ReadKind::until`].
    Until {
        delimiter: Box<[u8]>,
        /// Saturated to 32 bits, more than a read buffer ever holds (see `Limits`).
        max_bytes: u32,
    },
    /// Made by [`ReadKind::until_regex`].
    #[cfg(feature = "regex")]
    UntilRegex {
        regex: Box<regex::bytes::Regex>,
        max_bytes: u32,
    },
    Bytes {
        n: usize,
        partial: bool,
    },
    UntilClose,
    /// More than `seen` bytes buffered: a parser reading in place
    /// ([`wait_for_more_then`](IoStream::wait_for_more_then)); takes no bytes.
    More {
        seen: usize,
    },
}

/// Where a pending read's result goes.
pub(crate) enum Delivery {
    Bytes(ReadCallback),
    /// A notification that the buffer has grown (for [`ReadKind::More`]).
    Notify(FillCallback),
    /// Into the caller's buffer; with nothing buffered, a partial read reads from the
    /// socket straight into it.
    Into(Vec<u8>, ReadIntoCallback),
    /// A task awaiting the read: it is woken and takes the result itself when polled.
    /// With `into_caller_buffer` (a partial read into the task's own buffer), the task
    /// also reads from the socket itself when nothing is buffered: the stream only wakes
    /// it.
    Task {
        waker: Option<Waker>,
        into_caller_buffer: bool,
    },
}

impl ReadKind {
    /// A read up to and including `delimiter`, failing past `max_bytes`.
    pub(crate) fn until(delimiter: &[u8], max_bytes: usize) -> ReadKind {
        ReadKind::Until {
            delimiter: delimiter.into(),
            max_bytes: saturate(max_bytes),
        }
    }

    /// A read up to the end of `regex`'s first match, failing past `max_bytes`.
    #[cfg(feature = "regex")]
    pub(crate) fn until_regex(regex: &regex::bytes::Regex, max_bytes: usize) -> ReadKind {
        ReadKind::UntilRegex {
            regex: Box::new(regex.clone()),
            max_bytes: saturate(max_bytes),
        }
    }
}

/// `max_bytes` as a read keeps it.
fn saturate(max_bytes: usize) -> u32 {
    u32::try_from(max_bytes).unwrap_or(u32::MAX)
}

impl Delivery {
    /// Whether the socket is read straight into the caller's buffer when nothing is
    /// buffered, for a read of `kind`.
    pub(crate) fn reads_direct(&self, kind: &ReadKind) -> bool {
        let partial = matches!(kind, ReadKind::Bytes { n, partial: true } if *n > 0);
        partial
            && matches!(
                self,
                Delivery::Into(..)
                    | Delivery::Task {
                        into_caller_buffer: true,
                        ..
                    }
            )
    }
}

/// The read in progress. Its ticket, which tells a task's read apart from a later one,
/// is the stream's `next_ticket`.
pub(crate) struct PendingRead {
    pub(super) kind: ReadKind,
    pub(super) delivery: Delivery,
}

pub(crate) struct StreamState {
    /// The socket, owned here; `None` once closed.
    pub(super) socket: Option<StreamSocket>,
    registration: Option<HandlerId<StreamCore>>,
    pub(super) interest: Interest,
    pub(super) read_buffer: ReadBuffer,
    pub(super) pending: Option<PendingRead>,
    /// The ticket of the latest read started: the pending read's, when there is one.
    pub(super) next_ticket: u32,
    pub(super) write_buffer: WriteBuffer,
    pub(super) closed: bool,
    /// The poller said the socket is readable since the last read that found it empty:
    /// a task's direct read tries the socket only then (see `Delivery::Task`).
    pub(super) readable: bool,
    rare: Option<Box<RareState>>,
    /// Read results queued for callbacks but not delivered yet: the close callback waits
    /// for them.
    deliveries_in_flight: u32,
}

/// What a stream does when its peer ends its side (TCP's FIN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum HalfClose {
    /// It closes (Tornado's behaviour; the default).
    #[default]
    Closes,
    /// It stays open for writing (see [`IoStream::allow_half_close`]).
    Allowed,
    /// The peer has ended its side; the stream still writes, and reads fail.
    InputEnded,
}

/// What a stream holds only some of the time: the error that closed it, the callback its
/// closing runs, what the peer ending its side does, the completions waiting on its
/// writes, and limits other than the defaults. Allocated when one of them is set, so an
/// open stream with the default options, without a close callback, whose writes complete
/// at once holds none.
pub(super) struct RareState {
    error: Option<Arc<io::Error>>,
    callback: Option<CloseCallback>,
    half_close: HalfClose,
    pub(super) write_waiters: Option<Box<WriteWaiters>>,
    limits: Limits,
}

impl Default for RareState {
    fn default() -> Self {
        RareState {
            error: None,
            callback: None,
            half_close: HalfClose::default(),
            write_waiters: None,
            limits: Limits::DEFAULT,
        }
    }
}

/// The completions waiting on a stream's writes: write callbacks (and drain callbacks)
/// by the write total they complete at, in order, and the wakers of write futures.
/// Allocated on first use, so a stream that only writes what the socket takes at once
/// holds none.
#[derive(Default)]
pub(crate) struct WriteWaiters {
    callbacks: VecDeque<(u64, WriteCallback)>,
    wakers: Vec<Waker>,
}

impl WriteWaiters {
    /// Adds a callback completing at write total `target`, after the callbacks with the
    /// same or a lower target (a drain may target less than earlier writes).
    pub(crate) fn push_callback(&mut self, target: u64, callback: WriteCallback) {
        let at = self
            .callbacks
            .partition_point(|(queued, _)| *queued <= target);
        self.callbacks.insert(at, (target, callback));
    }

    /// Adds the waker of a write future.
    pub(crate) fn push_waker(&mut self, waker: &Waker) {
        if !self.wakers.iter().any(|w| w.will_wake(waker)) {
            self.wakers.push(waker.clone());
        }
    }

    /// Takes the callbacks whose target `written` reached, with their result (all of the
    /// callbacks, the rest failing with `closed`, once the stream is closed), and every
    /// waker (write futures check their own target when polled).
    #[allow(clippy::type_complexity)]
    pub(crate) fn take_completed(
        &mut self,
        written: u64,
        closed: Option<&StreamError>,
    ) -> (Vec<(WriteCallback, Result<(), StreamError>)>, Vec<Waker>) {
        let mut done = Vec::new();
        while let Some((target, _)) = self.callbacks.front() {
            let result = match closed {
                _ if *target <= written => Ok(()),
                Some(error) => Err(error.clone()),
                None => break,
            };
            let (_, callback) = self.callbacks.pop_front().expect("peeked");
            done.push((callback, result));
        }
        (done, std::mem::take(&mut self.wakers))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.callbacks.is_empty() && self.wakers.is_empty()
    }
}

/// How far the pending read is from done.
pub(crate) enum Progress {
    /// Take this many bytes (all of them for `UntilClose`).
    Ready(usize),
    NeedsData,
    Failed(StreamError),
}

impl StreamState {
    /// Closed, or the peer ended its side: no byte will arrive any more.
    fn no_more_input(&self) -> bool {
        self.closed || self.half_close() == HalfClose::InputEnded
    }

    fn half_close(&self) -> HalfClose {
        self.rare
            .as_ref()
            .map_or(HalfClose::Closes, |rare| rare.half_close)
    }

    pub(crate) fn closed_error(&self) -> StreamError {
        StreamError::Closed {
            real_error: self.error(),
        }
    }

    /// The error that closed the stream, if one did.
    fn error(&self) -> Option<Arc<io::Error>> {
        self.rare.as_ref()?.error.clone()
    }

    /// The buffers' bounds and the most bytes taken per socket read.
    pub(super) fn limits(&self) -> Limits {
        self.rare
            .as_ref()
            .map_or(Limits::DEFAULT, |rare| rare.limits)
    }

    pub(super) fn rare(&mut self) -> &mut RareState {
        self.rare.get_or_insert_with(Box::default)
    }

    /// The completions waiting on writes, if any.
    pub(super) fn write_waiters(&mut self) -> Option<&mut WriteWaiters> {
        self.rare.as_deref_mut()?.write_waiters.as_deref_mut()
    }

    /// Adds a place for completions waiting on writes, if there is none yet.
    pub(super) fn add_write_waiters(&mut self) -> &mut WriteWaiters {
        self.rare().write_waiters.get_or_insert_with(Box::default)
    }

    /// Sets the close callback; returns the one it replaces, for the caller to drop
    /// after its borrow (a user value).
    #[must_use]
    pub(crate) fn set_close_callback(&mut self, callback: CloseCallback) -> Option<CloseCallback> {
        self.rare().callback.replace(callback)
    }

    /// The pending read, if it is the one started under `ticket`.
    pub(crate) fn pending_read(&mut self, ticket: u32) -> Option<&mut PendingRead> {
        self.pending.as_mut().filter(|_| self.next_ticket == ticket)
    }

    /// Whether the pending read (`kind`) can complete from the buffer now.
    pub(crate) fn progress(&mut self, kind: &ReadKind) -> Progress {
        let buffered = self.read_buffer.len();
        let full = buffered >= self.limits().max_buffer_size();
        match kind {
            ReadKind::Until {
                delimiter,
                max_bytes,
            } => {
                let end = self.read_buffer.find(delimiter);
                self.until_progress(end, *max_bytes as usize, full)
            }
            #[cfg(feature = "regex")]
            ReadKind::UntilRegex { regex, max_bytes } => {
                let end = regex.find(self.read_buffer.unread()).map(|m| m.end());
                self.until_progress(end, *max_bytes as usize, full)
            }
            ReadKind::Bytes { n, partial } => {
                if buffered >= *n {
                    Progress::Ready(*n)
                } else if *partial && buffered > 0 {
                    Progress::Ready(buffered)
                } else if full {
                    Progress::Failed(StreamError::BufferFull)
                } else if self.no_more_input() {
                    Progress::Failed(self.closed_error())
                } else {
                    Progress::NeedsData
                }
            }
            ReadKind::UntilClose if self.no_more_input() => Progress::Ready(buffered),
            ReadKind::UntilClose if full => Progress::Failed(StreamError::BufferFull),
            ReadKind::UntilClose => Progress::NeedsData,
            ReadKind::More { seen } if buffered > *seen => Progress::Ready(0),
            ReadKind::More { .. } if full => Progress::Failed(StreamError::BufferFull),
            ReadKind::More { .. } if self.no_more_input() => Progress::Failed(self.closed_error()),
            ReadKind::More { .. } => Progress::NeedsData,
        }
    }

    /// A read until a delimiter or a match whose end in the buffer is `end` (if found):
    /// Tornado's `max_bytes` rule.
    fn until_progress(&self, end: Option<usize>, max_bytes: usize, full: bool) -> Progress {
        match end {
            Some(end) if end > max_bytes => Progress::Failed(StreamError::Unsatisfiable),
            Some(end) => Progress::Ready(end),
            None if self.read_buffer.len() >= max_bytes => {
                Progress::Failed(StreamError::Unsatisfiable)
            }
            None if full => Progress::Failed(StreamError::BufferFull),
            None if self.closed => Progress::Failed(self.closed_error()),
            None => Progress::NeedsData,
        }
    }

    /// Whether written bytes still wait to reach the kernel: in the write buffer, or as
    /// ciphertext in a TLS session.
    fn output_pending(&self) -> bool {
        !self.write_buffer.is_empty() || self.socket.as_ref().is_some_and(StreamSocket::wants_write)
    }

    /// Whether a read waits for bytes not buffered yet, or the stream is idle with
    /// nothing buffered.
    fn needs_bytes(&mut self) -> bool {
        match self.pending.take() {
            Some(pending) => {
                let needs = matches!(self.progress(&pending.kind), Progress::NeedsData);
                self.pending = Some(pending);
                needs
            }
            None => self.read_buffer.is_empty(),
        }
    }

    /// The interest the stream needs now.
    fn wanted_interest(&mut self) -> Interest {
        if self.closed {
            return Interest::NONE;
        }
        let room = self.read_buffer.len() < self.limits().max_buffer_size()
            && self.half_close() != HalfClose::InputEnded;
        let read = match self.pending.take() {
            Some(pending) => {
                let keep = match self.progress(&pending.kind) {
                    Progress::NeedsData => true,
                    // A task was woken to take its bytes this coming iteration, before the
                    // next poll: keep READ for the read it will most likely start next.
                    Progress::Ready(_) => matches!(pending.delivery, Delivery::Task { .. }),
                    Progress::Failed(_) => false,
                };
                self.pending = Some(pending);
                keep && room
            }
            // Idle with nothing buffered, or with a read result on its way to its reader
            // (who will most likely read again before the next poll): keep watching, so
            // the next read costs no `epoll_ctl` and a peer closing is noticed. An event
            // while idle reads one chunk, which turns this off until a read takes it.
            None => room && (self.read_buffer.is_empty() || self.deliveries_in_flight > 0),
        };
        let write = self.output_pending();
        match (read, write) {
            (true, true) => Interest::BOTH,
            (true, false) => Interest::READ,
            (false, true) => Interest::WRITE,
            (false, false) => Interest::NONE,
        }
    }
}

/// Whether `e` means the peer went away (logged quietly, unlike other I/O errors):
/// including a TLS peer that closed the connection without close_notify, which the
/// stream's [`error`](IoStream::error) then reports as `UnexpectedEof`.
pub(crate) fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::NotConnected
            | io::ErrorKind::UnexpectedEof
    )
}

impl IoStream {
    /// Wraps `socket` (made non-blocking) with default [`StreamOptions`] and registers it
    /// with `ioloop`.
    ///
    /// # Errors
    ///
    /// The socket could not be made non-blocking or registered; the error hands it back.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use std::os::unix::net::UnixStream;
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let (a, mut b) = UnixStream::pair()?;
    /// let a = ioloop::IoStream::new(&ioloop, a)?; // `b` stays a plain blocking socket
    /// a.write(b"hi")?;
    /// ioloop.run_sync(a.drained(0))??;
    /// let mut got = [0; 2];
    /// b.read_exact(&mut got)?;
    /// assert_eq!(&got, b"hi");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(
        ioloop: &IoLoop,
        socket: impl Into<StreamSocket>,
    ) -> Result<IoStream, RegisterError<StreamSocket>> {
        IoStream::with_options(ioloop, socket, StreamOptions::default())
    }

    /// [`new`](IoStream::new) with chosen limits.
    ///
    /// # Errors
    ///
    /// As [`new`](IoStream::new).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::{IoLoop, IoStream, StreamOptions};
    /// let ioloop = IoLoop::new()?;
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let options = StreamOptions { max_buffer_size: 1 << 20, ..Default::default() };
    /// let stream = IoStream::with_options(&ioloop, a, options)?;
    /// # drop(stream);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_options(
        ioloop: &IoLoop,
        socket: impl Into<StreamSocket>,
        options: StreamOptions,
    ) -> Result<IoStream, RegisterError<StreamSocket>> {
        let socket = socket.into();
        if let Err(e) = socket.set_nonblocking() {
            return Err(RegisterError::new(e, socket));
        }
        IoStream::register(ioloop, socket, options)
    }

    /// Registers a socket that is already non-blocking.
    pub(crate) fn register(
        ioloop: &IoLoop,
        socket: StreamSocket,
        options: StreamOptions,
    ) -> Result<IoStream, RegisterError<StreamSocket>> {
        let limits = Limits::from(options);
        let core = Rc::new(StreamCore {
            ioloop: ioloop.downgrade(),
            state: RefCell::new(StreamState {
                socket: Some(socket),
                registration: None,
                interest: Interest::NONE,
                read_buffer: ReadBuffer::default(),
                pending: None,
                next_ticket: 0,
                write_buffer: WriteBuffer::default(),
                closed: false,
                readable: false,
                rare: (limits != Limits::DEFAULT).then(|| {
                    Box::new(RareState {
                        limits,
                        ..RareState::default()
                    })
                }),
                deliveries_in_flight: 0,
            }),
        });
        // The registration holds the stream: it stays open until closed (by `close`, the
        // peer or an error), whether or not the user keeps a handle, as in Tornado.
        let added = {
            let state = core.state.borrow();
            let socket = state.socket.as_ref().expect("just set");
            // SAFETY: the stream removes its registration before it closes the socket
            // (`close_with`, `take_socket_for_tls`); a released registration closes the
            // stream after it left the poller; and a loop being dropped, which the
            // stream cannot reach, has removed every fd from its poller first.
            unsafe { ioloop.add_registration(socket.as_fd(), Interest::NONE, core.clone()) }
        };
        match added {
            Ok(id) => {
                core.state.borrow_mut().registration = Some(id);
                Ok(IoStream { core })
            }
            Err(e) => {
                let socket = core.state.borrow_mut().socket.take().expect("just set");
                Err(RegisterError::new(e, socket))
            }
        }
    }

    pub(crate) fn ioloop(&self) -> Option<IoLoop> {
        self.core.ioloop.upgrade()
    }

    /// Readiness from the loop: read, then write, then handle an error, then narrow the
    /// interest.
    fn on_event(&self, event: &IoEvent<StreamCore>) {
        if self.closed() {
            return;
        }
        let failed = event.is_error() || event.is_hangup();
        if event.is_readable() || failed {
            self.read_from_socket();
        }
        if event.is_writable() && !self.closed() {
            self.flush();
        }
        if event.is_error() && !self.closed() {
            let error = self.with_socket(StreamSocket::take_error).flatten();
            self.close_with(error);
        }
        self.update_interest();
    }

    /// Reads chunks into the buffer until the socket would block, the pending read is
    /// satisfied or the buffer is full; then settles the pending read.
    fn read_from_socket(&self) {
        if self.read_into_caller_buffer() {
            return;
        }
        loop {
            let read = {
                let mut state = self.core.state.borrow_mut();
                let satisfied = match state.pending.take() {
                    Some(pending) => {
                        let needs = matches!(state.progress(&pending.kind), Progress::NeedsData);
                        state.pending = Some(pending);
                        !needs
                    }
                    // Idle: read one chunk at most, to notice the peer closing.
                    None => !state.read_buffer.is_empty(),
                };
                let max = state.limits().max_buffer_size();
                let room = max - state.read_buffer.len().min(max);
                if satisfied || room == 0 {
                    break;
                }
                let chunk = state.limits().read_chunk_size().min(room);
                let StreamState {
                    socket,
                    read_buffer,
                    ..
                } = &mut *state;
                let Some(socket) = socket else { return };
                read_buffer.fill_from(chunk, |buf| socket.read(buf))
            };
            match read {
                Ok(0) => return self.end_of_input(),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return self.fail_read_from_socket(e),
            }
        }
        self.settle_read();
    }

    /// With nothing buffered, a partial read into the caller's buffer reads the socket
    /// straight into it (no copy, and no read buffer for the stream to keep): a callback
    /// read here, a task's read when it is polled (it is woken for that). Says whether it
    /// handled the event.
    fn read_into_caller_buffer(&self) -> bool {
        loop {
            let read = {
                let mut state = self.core.state.borrow_mut();
                let StreamState {
                    socket,
                    pending,
                    read_buffer,
                    ..
                } = &mut *state;
                let Some(pending) = pending else { return false };
                if !read_buffer.is_empty() || !pending.delivery.reads_direct(&pending.kind) {
                    return false;
                }
                let (Some(socket), ReadKind::Bytes { n, .. }) = (socket, &pending.kind) else {
                    return false;
                };
                match &mut pending.delivery {
                    Delivery::Into(buf, _) => {
                        let n = (*n).min(buf.len());
                        socket.read(&mut buf[..n])
                    }
                    Delivery::Task { waker, .. } => {
                        let waker = waker.take();
                        state.readable = true;
                        drop(state);
                        waker.into_iter().for_each(Waker::wake);
                        return true;
                    }
                    Delivery::Bytes(_) | Delivery::Notify(_) => return false,
                }
            };
            match read {
                // The close (or the end of input) settles the read with the error.
                Ok(0) => self.end_of_input(),
                Ok(got) => {
                    let pending = self.core.state.borrow_mut().pending.take();
                    if let Some(PendingRead {
                        delivery: Delivery::Into(buf, callback),
                        ..
                    }) = pending
                    {
                        self.deliver(move |stream| callback(stream, buf, Ok(got)));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => self.fail_read_from_socket(e),
            }
            return true;
        }
    }

    /// Reads from the socket straight into a task's own buffer, with nothing buffered:
    /// the number of bytes, `None` if the socket has none yet, or the error that closed
    /// the stream (at end of stream or on a read error).
    pub(crate) fn read_socket_into(&self, buf: &mut [u8]) -> Result<Option<usize>, StreamError> {
        loop {
            let read = match &self.core.state.borrow().socket {
                Some(socket) => socket.read(buf),
                None => return Err(self.core.state.borrow().closed_error()),
            };
            match read {
                Ok(0) => self.end_of_input(),
                Ok(got) => {
                    // A short read drained the socket: wait for the poller again. (A full
                    // one likely left more, which the next read takes at once.)
                    if got < buf.len() {
                        self.core.state.borrow_mut().readable = false;
                    }
                    return Ok(Some(got));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.core.state.borrow_mut().readable = false;
                    return Ok(None);
                }
                Err(e) => self.fail_read_from_socket(e),
            }
            return Err(self.core.state.borrow().closed_error());
        }
    }

    /// The peer ended its side. A stream that allows half-closed connections goes on
    /// writing (reads that need more bytes fail as on a closed stream); any other closes.
    fn end_of_input(&self) {
        let keep_writing = {
            let mut state = self.core.state.borrow_mut();
            if state.half_close() == HalfClose::Allowed && !state.closed {
                state.rare().half_close = HalfClose::InputEnded;
            }
            state.half_close() == HalfClose::InputEnded
        };
        if !keep_writing {
            return self.close_with(None);
        }
        self.settle_read();
        self.update_interest();
    }

    /// Keeps the stream open for writing when the peer ends its side (a TCP half-close:
    /// its FIN), as Node's `allowHalfOpen` does; reads then fail as on a closed stream.
    /// The HTTP server sets it, so a client that sends its requests and then shuts down
    /// its writing side still gets its answers. Off by default (Tornado's behaviour:
    /// the end of input closes the stream). Loop thread only; for a stream of this loop.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn allow_half_close(&self, allow: bool) {
        let mut state = self.core.state.borrow_mut();
        state.rare().half_close = match (allow, state.half_close()) {
            (true, HalfClose::Closes) => HalfClose::Allowed,
            (false, HalfClose::Allowed) => HalfClose::Closes,
            // Once the input ended, it stays ended; reads fail either way.
            (_, unchanged) => unchanged,
        };
    }

    /// Closes the stream after a read error, logging errors other than a peer leaving.
    fn fail_read_from_socket(&self, e: io::Error) {
        if !is_reset(&e) {
            log::warn!(target: "ioloop", "read error on stream: {e}");
        }
        self.close_with(Some(e));
    }

    /// Completes or fails the pending read if the buffer (or the close) decides it.
    pub(crate) fn settle_read(&self) {
        let mut state = self.core.state.borrow_mut();
        let Some(pending) = state.pending.take() else {
            return;
        };
        let progress = state.progress(&pending.kind);
        let PendingRead { kind, delivery } = pending;
        match (progress, delivery) {
            (Progress::NeedsData, delivery) => {
                state.pending = Some(PendingRead { kind, delivery });
            }
            (
                _,
                Delivery::Task {
                    waker,
                    into_caller_buffer,
                },
            ) => {
                // The task takes the result (or the error) when it is polled.
                state.pending = Some(PendingRead {
                    kind,
                    delivery: Delivery::Task {
                        waker: None,
                        into_caller_buffer,
                    },
                });
                drop(state);
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
            (Progress::Ready(_), Delivery::Notify(callback)) => {
                drop(state);
                self.deliver(move |stream| callback(stream, Ok(())));
            }
            (Progress::Ready(n), Delivery::Bytes(callback)) => {
                let data = state.read_buffer.take(n);
                drop(state);
                self.deliver(move |stream| callback(stream, Ok(data)));
            }
            (Progress::Ready(n), Delivery::Into(mut buf, callback)) => {
                let n = n.min(buf.len());
                state.read_buffer.take_into(&mut buf[..n]);
                drop(state);
                self.deliver(move |stream| callback(stream, buf, Ok(n)));
            }
            (Progress::Failed(error), delivery) => {
                drop(state);
                self.fail_read(error, delivery);
            }
        }
    }

    /// An unsatisfiable or over-full read closes the stream (Tornado's rule).
    pub(crate) fn close_if_fatal(&self, error: &StreamError) {
        if matches!(error, StreamError::Unsatisfiable | StreamError::BufferFull) {
            log::info!(target: "ioloop", "{error}; closing the stream");
            self.close_with(None);
        }
    }

    /// Fails a callback read, closing the stream first if the failure is fatal.
    fn fail_read(&self, error: StreamError, delivery: Delivery) {
        self.close_if_fatal(&error);
        match delivery {
            Delivery::Bytes(callback) => self.deliver(move |stream| callback(stream, Err(error))),
            Delivery::Notify(callback) => self.deliver(move |stream| callback(stream, Err(error))),
            Delivery::Into(buf, callback) => {
                self.deliver(move |stream| callback(stream, buf, Err(error)))
            }
            Delivery::Task { .. } => unreachable!("task reads settle when polled"),
        }
    }

    /// Runs `f` on a later iteration; the close callback waits until it has run or been
    /// dropped unrun (by a loop closed or dropped before its turn). On a closed loop
    /// nothing runs later: `f` is dropped at once.
    pub(super) fn deliver(&self, f: impl FnOnce(&IoStream) + 'static) {
        let Some(ioloop) = self.ioloop().filter(|ioloop| !ioloop.is_closed()) else {
            return;
        };
        self.core.state.borrow_mut().deliveries_in_flight += 1;
        let in_flight = DeliveryInFlight(self.clone());
        ioloop.add_callback(move |_| {
            f(&in_flight.0);
            // No interest update here: every operation `f` may start updates it itself.
            drop(in_flight);
        });
    }

    /// Schedules the close callback once the stream is closed and every read result
    /// queued before has been delivered. When the loop is closed or gone (the stream is
    /// being closed by the loop's own end), nothing runs later: the callback runs now, so
    /// what it owns (a connection, the writers of its responses) is let go.
    pub(crate) fn maybe_run_close_callback(&self) {
        let callback = {
            let mut state = self.core.state.borrow_mut();
            if !state.closed || state.deliveries_in_flight > 0 {
                return;
            }
            state.rare.as_mut().and_then(|rare| rare.callback.take())
        };
        let Some(callback) = callback else { return };
        let stream = self.clone();
        match self.ioloop().filter(|ioloop| !ioloop.is_closed()) {
            Some(ioloop) => ioloop.add_callback(move |_| callback(&stream)),
            None => callback(&stream),
        }
    }

    /// Changes the poller's interest if the stream now needs something else. When a read
    /// needs bytes the transport holds already (TLS plaintext, which no readiness event
    /// will announce), reads them on the next iteration instead of waiting.
    pub(crate) fn update_interest(&self) {
        let (registration, wanted) = {
            let mut state = self.core.state.borrow_mut();
            let wanted = state.wanted_interest();
            // Cheapest first: false at once for anything but TLS.
            if state
                .socket
                .as_ref()
                .is_some_and(StreamSocket::has_unannounced_bytes)
                && wanted.is_readable()
                && state.needs_bytes()
            {
                if let Some(ioloop) = self.ioloop() {
                    let stream = self.clone();
                    ioloop.add_callback(move |_| {
                        stream.read_from_socket();
                        stream.update_interest();
                    });
                }
            }
            if wanted == state.interest {
                return;
            }
            state.interest = wanted;
            (state.registration, wanted)
        };
        if let (Some(id), Some(ioloop)) = (registration, self.ioloop()) {
            if let Err(e) = ioloop.update_handler(id, wanted) {
                log::debug!(target: "ioloop", "cannot change a stream's interest: {e}");
            }
        }
    }

    /// Closes the stream, keeping `error` as the reason.
    pub(crate) fn close_with(&self, error: Option<io::Error>) {
        let (registration, socket) = {
            let mut state = self.core.state.borrow_mut();
            if state.closed {
                return;
            }
            state.closed = true;
            if let Some(error) = error {
                state.rare().error = Some(Arc::new(error));
            }
            state.write_buffer.clear();
            (state.registration.take(), state.socket.take())
        };
        // Reads the buffer can still satisfy complete; the others fail.
        self.settle_read();
        if let (Some(id), Some(ioloop)) = (registration, self.ioloop()) {
            ioloop.remove_registration(id);
        }
        if let Some(socket) = socket {
            socket.end_session();
            // A TLS socket whose close_notify is still in rustls stays open until it is
            // sent; any other closes here, now that the poller no longer watches it.
            #[cfg(feature = "tls")]
            if let Some(ioloop) = self.ioloop() {
                super::tls::close_when_sent(&ioloop, socket);
            }
        }
        self.complete_writes();
        self.maybe_run_close_callback();
    }

    /// Starts a read, or reports why it cannot start.
    pub(crate) fn start_read(&self, kind: ReadKind, delivery: Delivery) -> Option<u32> {
        let ticket = {
            let mut state = self.core.state.borrow_mut();
            if state.pending.is_some() {
                drop(state);
                match delivery {
                    Delivery::Notify(callback) => {
                        self.deliver(move |s| callback(s, Err(StreamError::AlreadyReading)))
                    }
                    Delivery::Bytes(callback) => {
                        self.deliver(move |s| callback(s, Err(StreamError::AlreadyReading)))
                    }
                    Delivery::Into(buf, callback) => {
                        self.deliver(move |s| callback(s, buf, Err(StreamError::AlreadyReading)))
                    }
                    Delivery::Task { .. } => {}
                }
                return None;
            }
            state.next_ticket = state.next_ticket.wrapping_add(1);
            state.pending = Some(PendingRead { kind, delivery });
            state.next_ticket
        };
        self.settle_read();
        self.update_interest();
        Some(ticket)
    }

    /// Closes the stream: pending writes fail, a pending read completes if the buffer
    /// satisfies it and fails otherwise, the socket is closed, and the close callback is
    /// scheduled. Idempotent.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let a = ioloop::IoStream::new(&ioloop, a)?;
    /// a.close();
    /// assert!(a.closed());
    /// assert!(a.write(b"late").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(&self) {
        self.close_with(None);
    }

    /// [`close`](IoStream::close) for a destructor, which must never panic: were the
    /// stream's state busy (a value holding the stream dropped inside one of its borrows,
    /// which no path does), the stream would close on the next iteration instead.
    #[cfg_attr(not(feature = "http-client"), allow(dead_code))]
    pub(crate) fn close_from_drop(&self) {
        if self.core.state.try_borrow_mut().is_ok() {
            return self.close();
        }
        if let Some(ioloop) = self.ioloop() {
            let stream = self.clone();
            ioloop.add_callback(move |_| stream.close());
        }
    }

    /// Whether the stream is closed.
    ///
    /// # Examples
    ///
    /// The loop notices a peer that hangs up, even with no read pending:
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// let a = ioloop::IoStream::new(&ioloop, a)?;
    /// assert!(!a.closed());
    /// drop(b);
    /// ioloop::testing::run_until(&ioloop, || a.closed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn closed(&self) -> bool {
        self.core.state.borrow().closed
    }

    /// The OS error that closed the stream, if any (a reset, a refused connection).
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let a = ioloop::IoStream::new(&ioloop, a)?;
    /// a.close();
    /// assert!(a.error().is_none()); // a local close has no OS error
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn error(&self) -> Option<Arc<io::Error>> {
        self.core.state.borrow().error()
    }

    /// Whether a read is pending.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let a = ioloop::IoStream::new(&ioloop, a)?;
    /// a.read_bytes_then(1, false, |_, _| {});
    /// assert!(a.reading());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reading(&self) -> bool {
        self.core.state.borrow().pending.is_some()
    }

    /// Bytes read from the socket and not yet taken by a read (never more than
    /// [`StreamOptions::max_buffer_size`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let a = ioloop::IoStream::new(&ioloop, a)?;
    /// assert_eq!(a.buffered(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn buffered(&self) -> usize {
        self.core.state.borrow().read_buffer.len()
    }

    /// Whether written bytes are still waiting for the socket.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let a = ioloop::IoStream::new(&ioloop, a)?;
    /// a.write(b"fits in the socket buffer")?;
    /// assert!(!a.writing());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn writing(&self) -> bool {
        !self.core.state.borrow().write_buffer.is_empty()
    }

    /// Bytes written and still waiting for the socket: what the stream buffers because the
    /// peer reads slower than it is written to (never more than
    /// [`StreamOptions::max_write_buffer_size`]).
    ///
    /// A program that writes what it reads (an echo, a proxy) keeps its memory bounded by
    /// reading less while this is high: see [`drained_then`](IoStream::drained_then).
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let a = ioloop::IoStream::new(&ioloop, a)?;
    /// let chunk = vec![0u8; 64 * 1024];
    /// while a.write_buffered() == 0 {
    ///     a.write(&chunk)?; // nobody reads `_b`: the socket fills up
    /// }
    /// assert!(a.write_buffered() <= chunk.len());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_buffered(&self) -> usize {
        self.core.state.borrow().write_buffer.len()
    }

    /// Whether written bytes still wait to reach the kernel: in the write buffer, or
    /// (on a TLS stream) as ciphertext in the session, where a client that stopped
    /// reading can leave them with the write buffer empty. What a write timeout watches.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn output_pending(&self) -> bool {
        self.core.state.borrow().output_pending()
    }

    /// Sets `TCP_NODELAY` on a TCP stream (a no-op on other streams and once closed).
    ///
    /// # Errors
    ///
    /// The OS refused the option.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let client = std::net::TcpStream::connect(listener.local_addr()?)?;
    /// let stream = ioloop::IoStream::new(&ioloop, client)?;
    /// stream.set_nodelay(true)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        match self
            .core
            .state
            .borrow()
            .socket
            .as_ref()
            .and_then(StreamSocket::tcp)
        {
            Some(tcp) => tcp.set_nodelay(nodelay),
            None => Ok(()),
        }
    }

    /// The options the stream was made with (as it keeps them).
    #[cfg(feature = "tls")]
    pub(crate) fn options(&self) -> StreamOptions {
        self.core.state.borrow().limits().into()
    }

    /// Takes the socket out of an idle stream for a TLS handshake (`start_tls`). Nothing
    /// may be pending or buffered either way: bytes read before the handshake are
    /// refused rather than trusted as if they had come through it. The stream is left
    /// closed, without running its close callback (the connection goes on as a new
    /// stream).
    #[cfg(feature = "tls")]
    pub(crate) fn take_socket_for_tls(&self) -> Result<StreamSocket, &'static str> {
        let detached = {
            let mut state = self.core.state.borrow_mut();
            let refusal = if state.closed {
                Some("the stream is closed")
            } else if state.pending.is_some() {
                Some("a read is pending")
            } else if !state.read_buffer.is_empty() {
                Some("bytes arrived before the TLS handshake")
            } else if !state.write_buffer.is_empty() || state.write_waiters().is_some() {
                Some("writes are pending")
            } else if matches!(state.socket, Some(StreamSocket::Tls(_))) {
                Some("the stream speaks TLS already")
            } else {
                None
            };
            if let Some(refusal) = refusal {
                return Err(refusal);
            }
            state.closed = true;
            (
                state.rare.take(),
                state.registration.take(),
                state.socket.take(),
            )
        };
        // The close callback is a user value: dropped here, after the borrow.
        let (rare, registration, socket) = detached;
        drop(rare);
        if let (Some(id), Some(ioloop)) = (registration, self.ioloop()) {
            ioloop.remove_registration(id);
        }
        socket.ok_or("the stream is closed")
    }

    /// Runs `f` with the socket (for its addresses or options); `None` once closed.
    ///
    /// # Panics
    ///
    /// `f` runs with the stream's state borrowed (it lends `f` the socket inside it): `f`
    /// may call the stream's read-only methods (`closed`, `buffered`, `error`, ...), but a
    /// method that changes the stream (`close`, a write, a read) panics.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::StreamSocket;
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let a = ioloop::IoStream::new(&ioloop, a)?;
    /// let unix = a.with_socket(|s| matches!(s, StreamSocket::Unix(_)));
    /// assert_eq!(unix, Some(true));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_socket<R>(&self, f: impl FnOnce(&StreamSocket) -> R) -> Option<R> {
        self.core.state.borrow().socket.as_ref().map(f)
    }
}

/// One delivery scheduled by [`IoStream::deliver`]: ends when it has run or when the loop
/// drops it unrun (the loop closed or went away), and then lets the close callback run if
/// it was waiting for this delivery. Without the second case a stream whose close callback
/// owns its holder (an HTTP connection) would outlive a loop dropped with a delivery
/// queued, and keep that loop's allocation with it.
struct DeliveryInFlight(IoStream);

impl Drop for DeliveryInFlight {
    fn drop(&mut self) {
        // Never a panic in a destructor: the state is never busy here (a delivery runs,
        // or is dropped, from the loop's queue), and if it were the count would stay.
        let Ok(mut state) = self.0.core.state.try_borrow_mut() else {
            return;
        };
        state.deliveries_in_flight -= 1;
        drop(state);
        self.0.maybe_run_close_callback();
    }
}

/// The loop's registration of an open stream is the stream's own state: the loop holds
/// it (so the stream stays open without a handle, as in Tornado) at no allocation of its
/// own. The stream removes it once closed; if the loop lets go of it first (the loop is
/// closed or dropped with the stream open), the stream closes then, and its close
/// callback runs.
impl Registration for StreamCore {
    fn dispatch(self: Rc<Self>, _: &IoLoop, key: usize, readiness: Readiness) {
        IoStream { core: self }.on_event(&IoEvent::new(key, readiness));
    }

    /// Here, for every stream: a stream's readiness handler runs no user callback itself
    /// (results go through `add_callback`, each with its own site); it wakes the wakers
    /// of tasks awaiting the stream.
    fn site(&self) -> &'static Location<'static> {
        Location::caller()
    }

    fn release(self: Rc<Self>) -> Option<Box<dyn Any>> {
        // A stream whose state is busy (released from inside one of its own borrows,
        // which no path does) is left as it is rather than panicking.
        let open = self.state.try_borrow().is_ok_and(|state| !state.closed);
        if open {
            IoStream { core: self }.close();
        }
        None
    }
}

impl Drop for StreamCore {
    fn drop(&mut self) {
        let state = self.state.get_mut();
        if let (Some(id), Some(ioloop)) = (state.registration.take(), self.ioloop.upgrade()) {
            ioloop.remove_registration(id);
        }
    }
}

/// The stream's descriptor while it is open, `-1` once it is closed (after which the
/// number may name another file). `IoStream` is not `AsFd`: [`close`](IoStream::close)
/// takes `&self` and closes the descriptor, as Tornado's does, so no borrow of it could
/// be kept valid; [`with_socket`](IoStream::with_socket) lends the socket for a scope.
///
/// # Examples
///
/// ```
/// use std::os::fd::AsRawFd;
/// let ioloop = ioloop::IoLoop::new()?;
/// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
/// let stream = ioloop::IoStream::new(&ioloop, a)?;
/// assert!(stream.as_raw_fd() >= 0);
/// stream.close();
/// assert_eq!(stream.as_raw_fd(), -1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl std::os::fd::AsRawFd for IoStream {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.with_socket(|socket| std::os::fd::AsFd::as_fd(socket).as_raw_fd())
            .unwrap_or(-1)
    }
}

impl fmt::Debug for IoStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.core.state.borrow();
        f.debug_struct("IoStream")
            .field("closed", &state.closed)
            .field("buffered", &state.read_buffer.len())
            .field("reading", &state.pending.is_some())
            .field("write_buffered", &state.write_buffer.len())
            .field("error", &state.error())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle connection's memory is mostly this allocation (the `Rc` adds two counts).
    /// Allocators round to 16-byte classes with a word of overhead: at 152 bytes (with
    /// TLS built in, 144 without) it is a 176-byte chunk, and a few bytes more make it
    /// 192. `tests/idle_memory.rs` counts bytes asked for, not chunks, so only this test
    /// sees such a step.
    #[test]
    fn stream_state_fits_its_size_class() {
        assert!(
            std::mem::size_of::<StreamCore>() <= 152,
            "StreamCore is {} bytes",
            std::mem::size_of::<StreamCore>()
        );
    }
}
