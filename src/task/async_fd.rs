//! [`AsyncFd`]: readiness futures for a source registered with the loop, so async code can
//! do non-blocking I/O without [`IoStream`]-style buffering.
//!
//! The source is registered as an ordinary fd handler whose closure wakes the tasks waiting
//! for that direction. The poller's interest follows the waiters lazily: a direction is
//! added when a task first waits for it and dropped only when an event for it finds nobody
//! waiting, so a task that reads, waits, reads again costs no `epoll_ctl` in steady state.
//! A source with nobody waiting at all is taken off the poller (a hung-up socket would
//! otherwise be reported on every iteration) and put back by the next wait.
//!
//! [`IoStream`]: https://www.tornadoweb.org/en/stable/iostream.html

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::error::LoopError;
use crate::reactor::event::IoEvent;
use crate::reactor::interest::Interest;
use crate::reactor::ioloop::{IoLoop, WeakIoLoop};
use crate::reactor::registration::{HandlerId, RegisterError};

/// A source (socket, pipe, any pollable fd) registered with a loop, with futures that
/// resolve when it is readable or writable.
///
/// The source must be in non-blocking mode. Use it through [`get_ref`](AsyncFd::get_ref)
/// (`Read` and `Write` are implemented for `&TcpStream` and `&UnixStream`) or, simpler,
/// [`read_with`](AsyncFd::read_with) and [`write_with`](AsyncFd::write_with), which retry
/// an operation after each readiness event until it stops failing with `WouldBlock`.
/// Dropping the `AsyncFd` removes the source from the loop (and then closes it).
/// Loop thread only.
///
/// # Examples
///
/// ```
/// use ioloop::{AsyncFd, IoLoop};
/// use std::io::{Read, Write};
/// use std::os::unix::net::UnixStream;
///
/// let ioloop = IoLoop::new()?;
/// let (a, b) = UnixStream::pair()?;
/// a.set_nonblocking(true)?;
/// b.set_nonblocking(true)?;
/// let a = AsyncFd::new(&ioloop, a)?;
/// let b = AsyncFd::new(&ioloop, b)?;
/// let echoed = ioloop.run_sync(async move {
///     a.write_with(|mut s| s.write(b"ping")).await?;
///     let mut buf = [0; 4];
///     let n = b.read_with(|mut s| s.read(&mut buf)).await?;
///     std::io::Result::Ok(buf[..n].to_vec())
/// })??;
/// assert_eq!(echoed, b"ping");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AsyncFd<S: AsFd + 'static> {
    source: Rc<S>,
    ioloop: WeakIoLoop,
    state: Rc<RefCell<Watch<S>>>,
}

/// Which way a [`ReadyFuture`] waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Read,
    Write,
}

impl Direction {
    fn interest(self) -> Interest {
        match self {
            Direction::Read => Interest::READ,
            Direction::Write => Interest::WRITE,
        }
    }

    fn is_in(self, interest: Interest) -> bool {
        match self {
            Direction::Read => interest.is_readable(),
            Direction::Write => interest.is_writable(),
        }
    }
}

/// The tasks waiting for one direction, and how many events for it were seen.
#[derive(Default)]
struct Waiters {
    wakers: Vec<Waker>,
    events: u64,
}

/// The registration and its waiters, shared with the handler closure.
struct Watch<S> {
    registration: Option<HandlerId<Rc<S>>>,
    interest: Interest,
    read: Waiters,
    write: Waiters,
}

impl<S> Watch<S> {
    fn waiters(&mut self, direction: Direction) -> &mut Waiters {
        match direction {
            Direction::Read => &mut self.read,
            Direction::Write => &mut self.write,
        }
    }
}

impl<S: AsFd + 'static> AsyncFd<S> {
    /// The loop the source is registered with, while it exists.
    pub(crate) fn ioloop(&self) -> Option<IoLoop> {
        self.ioloop.upgrade()
    }
}

fn loop_gone() -> io::Error {
    io::Error::other(LoopError::Closed)
}

impl<S: AsFd + 'static> AsyncFd<S> {
    /// Registers `source` (which must be non-blocking) with `ioloop`.
    ///
    /// # Errors
    ///
    /// The poller refused the source (not pollable, loop closed); the error hands it back.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let (a, _b) = UnixStream::pair()?;
    /// a.set_nonblocking(true)?;
    /// let a = ioloop::AsyncFd::new(&ioloop, a)?;
    /// assert_eq!(ioloop.stats().handlers, 1);
    /// drop(a); // off the loop, then closed
    /// assert_eq!(ioloop.stats().handlers, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn new(ioloop: &IoLoop, source: S) -> Result<AsyncFd<S>, RegisterError<S>> {
        let fd = AsyncFd {
            source: Rc::new(source),
            ioloop: ioloop.downgrade(),
            state: Rc::new(RefCell::new(Watch {
                registration: None,
                interest: Interest::NONE,
                read: Waiters::default(),
                write: Waiters::default(),
            })),
        };
        match fd.register(ioloop, Interest::NONE) {
            Ok(()) => Ok(fd),
            Err(error) => {
                let source = fd
                    .into_inner()
                    .expect("the only owner of an unregistered source");
                Err(RegisterError::new(error, source))
            }
        }
    }

    #[track_caller]
    fn register(&self, ioloop: &IoLoop, interest: Interest) -> io::Result<()> {
        let state = Rc::downgrade(&self.state);
        let handler = move |ioloop: &IoLoop, _: &mut Rc<S>, event: IoEvent<Rc<S>>| {
            if let Some(state) = state.upgrade() {
                on_event(ioloop, &state, event);
            }
        };
        let id = ioloop
            .add_handler(self.source.clone(), interest, handler)
            .map_err(|e| e.into_parts().0)?;
        let mut state = self.state.borrow_mut();
        state.registration = Some(id);
        state.interest = interest;
        Ok(())
    }

    /// Makes sure the poller watches `direction`.
    fn watch(&self, direction: Direction) -> io::Result<()> {
        let ioloop = self.ioloop.upgrade().ok_or_else(loop_gone)?;
        let (registration, interest) = {
            let state = self.state.borrow();
            (state.registration, state.interest)
        };
        let wanted = interest | direction.interest();
        match registration {
            None => self.register(&ioloop, wanted),
            Some(_) if wanted == interest => Ok(()),
            Some(id) => {
                ioloop.update_handler(id, wanted)?;
                self.state.borrow_mut().interest = wanted;
                Ok(())
            }
        }
    }

    /// Resolves once a poll reports the source readable (or errored, or hung up) after
    /// this future was first polled. Readiness is a hint: the read that follows may still
    /// fail with `WouldBlock`, then wait again.
    ///
    /// # Errors
    ///
    /// The loop was closed or dropped, or the poller refused the change.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::{AsyncFd, IoLoop};
    /// use std::io::Write;
    /// use std::os::unix::net::UnixStream;
    ///
    /// let ioloop = IoLoop::new()?;
    /// let (a, mut b) = UnixStream::pair()?;
    /// a.set_nonblocking(true)?;
    /// let a = AsyncFd::new(&ioloop, a)?;
    /// b.write_all(b"x")?;
    /// ioloop.run_sync(async move { a.readable().await })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn readable(&self) -> ReadyFuture<'_, S> {
        ReadyFuture::new(self, Direction::Read)
    }

    /// Resolves once a poll reports the source writable (or errored, or hung up) after
    /// this future was first polled.
    ///
    /// # Errors
    ///
    /// The loop was closed or dropped, or the poller refused the change.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::{AsyncFd, IoLoop};
    /// use std::os::unix::net::UnixStream;
    ///
    /// let ioloop = IoLoop::new()?;
    /// let (a, _b) = UnixStream::pair()?;
    /// let a = AsyncFd::new(&ioloop, a)?;
    /// ioloop.run_sync(async move { a.writable().await })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn writable(&self) -> ReadyFuture<'_, S> {
        ReadyFuture::new(self, Direction::Write)
    }

    /// Runs `op` until it returns anything but a `WouldBlock` error, waiting for
    /// readability between tries.
    ///
    /// # Errors
    ///
    /// `op`'s error, or [`readable`](AsyncFd::readable)'s.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::os::unix::net::UnixStream;
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let (a, mut b) = UnixStream::pair()?;
    /// a.set_nonblocking(true)?;
    /// let a = ioloop::AsyncFd::new(&ioloop, a)?;
    /// let task = ioloop.spawn(async move {
    ///     let mut buf = [0; 16];
    ///     let n = a.read_with(|mut s| s.read(&mut buf)).await?;
    ///     std::io::Result::Ok(buf[..n].to_vec())
    /// });
    /// ioloop::testing::step(&ioloop);
    /// assert!(!task.is_finished()); // the read would block: waiting for readability
    /// b.write_all(b"late")?;
    /// assert_eq!(ioloop.run_sync(task)???, b"late");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn read_with<R>(&self, mut op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        loop {
            match op(&self.source) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.readable().await?,
                result => return result,
            }
        }
    }

    /// Runs `op` until it returns anything but a `WouldBlock` error, waiting for
    /// writability between tries.
    ///
    /// # Errors
    ///
    /// `op`'s error, or [`writable`](AsyncFd::writable)'s.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::os::unix::net::UnixStream;
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let (a, mut b) = UnixStream::pair()?;
    /// a.set_nonblocking(true)?;
    /// b.set_nonblocking(true)?;
    /// while (&a).write(&[0; 4096]).is_ok() {} // fill the socket's buffer
    /// let a = ioloop::AsyncFd::new(&ioloop, a)?;
    /// let task = ioloop.spawn(async move { a.write_with(|mut s| s.write(b"more")).await });
    /// ioloop::testing::step(&ioloop);
    /// assert!(!task.is_finished()); // the write would block: waiting for writability
    /// while b.read(&mut [0; 4096]).is_ok() {} // the peer reads: room again
    /// assert_eq!(ioloop.run_sync(task)???, 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn write_with<R>(&self, mut op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        loop {
            match op(&self.source) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable().await?,
                result => return result,
            }
        }
    }

    /// The source.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let (a, _b) = UnixStream::pair()?;
    /// let a = ioloop::AsyncFd::new(&ioloop, a)?;
    /// assert!(a.get_ref().peer_addr().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.source
    }

    /// Removes the source from the loop and gives it back. `None` only if the loop was
    /// closed with `close(false)`, which already handed the source out (as an `Rc<S>`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let (a, _b) = UnixStream::pair()?;
    /// let a = ioloop::AsyncFd::new(&ioloop, a)?;
    /// let a: UnixStream = a.into_inner().unwrap();
    /// assert_eq!(ioloop.stats().handlers, 0);
    /// # drop(a);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_inner(self) -> Option<S> {
        let source = self.source.clone();
        drop(self);
        Rc::try_unwrap(source).ok()
    }
}

/// The handler: wakes the waiters of each reported direction and narrows the interest to
/// the directions still awaited.
fn on_event<S: AsFd + 'static>(ioloop: &IoLoop, state: &RefCell<Watch<S>>, event: IoEvent<Rc<S>>) {
    let failed = event.is_error() || event.is_hangup();
    // The wakers of each reported direction, moved out to be woken with no borrow held.
    let mut to_wake = [Vec::new(), Vec::new()];
    let (interest, keep) = {
        let mut state = state.borrow_mut();
        let interest = state.interest;
        let mut keep = Interest::NONE;
        for (i, (direction, reported)) in [
            (Direction::Read, event.is_readable() || failed),
            (Direction::Write, event.is_writable() || failed),
        ]
        .into_iter()
        .enumerate()
        {
            let waiters = state.waiters(direction);
            if reported {
                waiters.events += 1;
                if waiters.wakers.is_empty() {
                    continue; // nobody waits: stop watching this direction
                }
                to_wake[i] = std::mem::take(&mut waiters.wakers);
            }
            if reported || direction.is_in(interest) {
                keep = keep | direction.interest();
            }
        }
        (interest, keep)
    };
    for (wakers, direction) in to_wake.iter_mut().zip([Direction::Read, Direction::Write]) {
        wakers.drain(..).for_each(Waker::wake);
        // Hand the (empty) vector back, so steady state allocates nothing.
        let mut state = state.borrow_mut();
        let waiters = state.waiters(direction);
        if waiters.wakers.is_empty() && wakers.capacity() > 0 {
            std::mem::swap(&mut waiters.wakers, wakers);
        }
    }
    if keep == interest {
        return;
    }
    let id = event.id();
    if keep == Interest::NONE {
        // Nobody waits at all: off the poller, so a hung-up source cannot spin the loop.
        ioloop.remove_handler(id);
        state.borrow_mut().registration = None;
    } else if ioloop.update_handler(id, keep).is_ok() {
        state.borrow_mut().interest = keep;
    }
}

/// The source's descriptor: the `AsyncFd` owns the source until it is dropped, so the
/// descriptor stays open as long as it is borrowed.
impl<S: AsFd + 'static> AsFd for AsyncFd<S> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.source.as_fd()
    }
}

impl<S: AsFd + 'static> AsRawFd for AsyncFd<S> {
    fn as_raw_fd(&self) -> RawFd {
        self.source.as_fd().as_raw_fd()
    }
}

impl<S: AsFd + 'static> Drop for AsyncFd<S> {
    fn drop(&mut self) {
        let Some(ioloop) = self.ioloop() else {
            return; // the loop dropped its handlers itself
        };
        // Never a panic in a destructor: with the state busy (no path drops an `AsyncFd`
        // inside its borrow), the source is taken off the loop on the next iteration.
        let Ok(mut state) = self.state.try_borrow_mut() else {
            let state = self.state.clone();
            ioloop.add_callback(move |ioloop| {
                let registration = state.borrow_mut().registration.take();
                if let Some(id) = registration {
                    ioloop.remove_handler(id);
                }
            });
            return;
        };
        let registration = state.registration.take();
        drop(state);
        if let Some(id) = registration {
            ioloop.remove_handler(id);
        }
    }
}

impl<S: AsFd + fmt::Debug + 'static> fmt::Debug for AsyncFd<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.borrow();
        f.debug_struct("AsyncFd")
            .field("source", &self.source)
            .field("interest", &state.interest)
            .field("registered", &state.registration.is_some())
            .finish()
    }
}

/// The future of [`AsyncFd::readable`] and [`AsyncFd::writable`]. Dropping it withdraws
/// its waker.
///
/// # Examples
///
/// ```
/// use std::future::Future;
/// use std::io::Write;
/// use std::os::unix::net::UnixStream;
/// use std::task::{Context, Poll, Waker};
///
/// let ioloop = ioloop::IoLoop::new()?;
/// let (a, mut b) = UnixStream::pair()?;
/// let a = ioloop::AsyncFd::new(&ioloop, a)?;
/// let mut cx = Context::from_waker(Waker::noop());
/// let mut ready = std::pin::pin!(a.readable());
/// assert!(ready.as_mut().poll(&mut cx).is_pending()); // first poll: starts watching
/// b.write_all(b"x")?;
/// ioloop::testing::step(&ioloop); // the poller reports `a` readable
/// assert!(matches!(ready.as_mut().poll(&mut cx), Poll::Ready(Ok(()))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "futures do nothing unless awaited"]
#[doc(alias = "Readiness")]
pub struct ReadyFuture<'a, S: AsFd + 'static> {
    fd: &'a AsyncFd<S>,
    direction: Direction,
    /// The direction's event count at the first poll; `None` before it.
    events_at_start: Option<u64>,
    /// The waker this future left with the waiters.
    waker: Option<Waker>,
}

impl<'a, S: AsFd + 'static> ReadyFuture<'a, S> {
    fn new(fd: &'a AsyncFd<S>, direction: Direction) -> Self {
        ReadyFuture {
            fd,
            direction,
            events_at_start: None,
            waker: None,
        }
    }
}

impl<S: AsFd + 'static> Future for ReadyFuture<'_, S> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // The waker this future held, if it is replaced: a user value, dropped after the
        // borrow.
        let replaced = {
            let mut state = this.fd.state.borrow_mut();
            let waiters = state.waiters(this.direction);
            match this.events_at_start {
                Some(start) if waiters.events != start => {
                    drop(state);
                    this.waker = None;
                    return Poll::Ready(Ok(()));
                }
                Some(_) => {}
                None => this.events_at_start = Some(waiters.events),
            }
            if waiters.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                None
            } else {
                waiters.wakers.push(cx.waker().clone());
                this.waker.replace(cx.waker().clone())
            }
        };
        drop(replaced);
        match this.fd.watch(this.direction) {
            Ok(()) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl<S: AsFd + 'static> Drop for ReadyFuture<'_, S> {
    fn drop(&mut self) {
        let Some(waker) = self.waker.take() else {
            return;
        };
        // Never a panic in a destructor: with the state busy, the waker stays listed (it is
        // woken once, spuriously, and dropped with the others).
        let Ok(mut state) = self.fd.state.try_borrow_mut() else {
            return;
        };
        let wakers = &mut state.waiters(self.direction).wakers;
        let removed = wakers
            .iter()
            .position(|w| w.will_wake(&waker))
            .map(|i| wakers.swap_remove(i));
        // User values: dropped after the borrow.
        drop(state);
        drop((removed, waker));
    }
}

impl<S: AsFd + 'static> fmt::Debug for ReadyFuture<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadyFuture")
            .field("direction", &self.direction)
            .field("polled", &self.events_at_start.is_some())
            .finish()
    }
}
