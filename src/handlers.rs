//! The fd handler registry: which sources the loop owns, what each is interested in, and
//! the closure to call when it is ready.
//!
//! Registrations live in a [`Slab`]; the key given to the poller packs the slab index with
//! a generation number, so an event collected for a registration that was removed (and
//! whose slot was perhaps reused) earlier in the same batch is recognised and dropped.
//! While a handler runs, its registration is taken out of its slot, so the handler can
//! freely add, update and remove handlers, itself included, without any borrow held.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::ops::BitOr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::panic::Location;

use polling::Poller;
use slab::Slab;

use crate::failure::CallbackKind;
use crate::IoLoop;

/// Which readiness a handler wants to hear about. Errors and hang-ups are always reported.
///
/// # Examples
///
/// ```
/// use ioloop::Interest;
/// let both = Interest::READ | Interest::WRITE;
/// assert_eq!(both, Interest::BOTH);
/// assert!(both.is_readable() && both.is_writable());
/// assert!(!Interest::NONE.is_readable());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Interest {
    readable: bool,
    writable: bool,
}

impl Interest {
    /// Only errors and hang-ups.
    pub const NONE: Interest = Interest {
        readable: false,
        writable: false,
    };
    /// Readable (and errors, hang-ups).
    pub const READ: Interest = Interest {
        readable: true,
        writable: false,
    };
    /// Writable (and errors, hang-ups).
    pub const WRITE: Interest = Interest {
        readable: false,
        writable: true,
    };
    /// Readable and writable.
    pub const BOTH: Interest = Interest {
        readable: true,
        writable: true,
    };

    /// Whether readability is wanted.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(ioloop::Interest::READ.is_readable());
    /// ```
    pub fn is_readable(self) -> bool {
        self.readable
    }

    /// Whether writability is wanted.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(ioloop::Interest::WRITE.is_writable());
    /// ```
    pub fn is_writable(self) -> bool {
        self.writable
    }

    pub(crate) fn to_event(self, key: usize) -> polling::Event {
        polling::Event::new(key, self.readable, self.writable)
    }
}

impl BitOr for Interest {
    type Output = Interest;
    fn bitor(self, rhs: Interest) -> Interest {
        Interest {
            readable: self.readable || rhs.readable,
            writable: self.writable || rhs.writable,
        }
    }
}

/// Readiness as reported by the poller, before it is matched to a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Readiness {
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    pub(crate) error: bool,
    pub(crate) hangup: bool,
}

impl Readiness {
    pub(crate) fn from_event(ev: &polling::Event) -> Readiness {
        Readiness {
            readable: ev.readable,
            writable: ev.writable,
            error: ev.is_err() == Some(true),
            hangup: ev.is_interrupt(),
        }
    }
}

/// Identifies a registered source of type `S`; returned by
/// [`IoLoop::add_handler`] and passed to the handler in every [`IoEvent`].
///
/// A stale id (its registration was removed) is harmless: updating it is an error,
/// removing it returns `None`, and it never matches a newer registration that reused the
/// slot.
pub struct HandlerId<S> {
    key: usize,
    _source: PhantomData<fn() -> S>,
}

impl<S> HandlerId<S> {
    fn new(key: usize) -> Self {
        HandlerId {
            key,
            _source: PhantomData,
        }
    }

    pub(crate) fn key(self) -> usize {
        self.key
    }
}

impl<S> Clone for HandlerId<S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S> Copy for HandlerId<S> {}
impl<S> PartialEq for HandlerId<S> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl<S> Eq for HandlerId<S> {}
impl<S> std::hash::Hash for HandlerId<S> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}
impl<S> fmt::Debug for HandlerId<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (index, generation) = split_key(self.key);
        write!(f, "HandlerId({index}v{generation})")
    }
}

/// What a handler is told when its source is ready.
///
/// Level-triggered: a source that is still readable (or writable) is reported again on
/// the next iteration. Errors and hang-ups are reported whatever the interest; on Linux a
/// hang-up also shows as readable (and an error as readable and writable), so a handler
/// that reads until end-of-file handles both without looking at the flags.
///
/// # Examples
///
/// See [`IoLoop::add_handler`].
pub struct IoEvent<S> {
    id: HandlerId<S>,
    readiness: Readiness,
}

impl<S> IoEvent<S> {
    /// The registration this event is for (pass it to
    /// [`IoLoop::update_handler`] or [`IoLoop::remove_handler`]).
    pub fn id(&self) -> HandlerId<S> {
        self.id
    }
    /// The source is readable (or at end of stream, or in error).
    pub fn is_readable(&self) -> bool {
        self.readiness.readable
    }
    /// The source is writable (or in error).
    pub fn is_writable(&self) -> bool {
        self.readiness.writable
    }
    /// The source reported an error condition (`EPOLLERR`).
    pub fn is_error(&self) -> bool {
        self.readiness.error
    }
    /// The peer hung up (`EPOLLHUP`).
    pub fn is_hangup(&self) -> bool {
        self.readiness.hangup
    }
}

impl<S> fmt::Debug for IoEvent<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoEvent")
            .field("id", &self.id)
            .field("readable", &self.readiness.readable)
            .field("writable", &self.readiness.writable)
            .field("error", &self.readiness.error)
            .field("hangup", &self.readiness.hangup)
            .finish()
    }
}

/// A source together with its handler, type-erased.
pub(crate) trait Registration {
    fn dispatch(&mut self, ioloop: &IoLoop, key: usize, readiness: Readiness);
    /// Drops the handler and returns the source, as `Box<S>`.
    fn into_source(self: Box<Self>) -> Box<dyn Any>;
}

struct Registered<S, F> {
    source: S,
    handler: F,
}

impl<S, F> Registration for Registered<S, F>
where
    S: 'static,
    F: FnMut(&IoLoop, &mut S, IoEvent<S>) + 'static,
{
    fn dispatch(&mut self, ioloop: &IoLoop, key: usize, readiness: Readiness) {
        let event = IoEvent {
            id: HandlerId::new(key),
            readiness,
        };
        (self.handler)(ioloop, &mut self.source, event);
    }

    fn into_source(self: Box<Self>) -> Box<dyn Any> {
        Box::new(self.source)
    }
}

pub(crate) fn registration<S, F>(source: S, handler: F) -> Box<dyn Registration>
where
    S: 'static,
    F: FnMut(&IoLoop, &mut S, IoEvent<S>) + 'static,
{
    Box::new(Registered { source, handler })
}

/// The error from [`IoLoop::add_handler`]: the OS refused the registration (for example
/// `EPERM` for a regular file, `EEXIST` for an fd already registered). The source is
/// handed back, not dropped.
///
/// Converts into [`std::io::Error`] (dropping the source) so `?` works in functions
/// returning `io::Result`.
///
/// # Examples
///
/// ```
/// use ioloop::{Interest, IoLoop};
///
/// let ioloop = IoLoop::new()?;
/// let file = std::fs::File::open("Cargo.toml")?;
/// let err = ioloop.add_handler(file, Interest::READ, |_, _, _| {}).unwrap_err();
/// assert_eq!(err.error().raw_os_error(), Some(1)); // EPERM: epoll cannot watch files
/// let file = err.into_source(); // nothing was lost
/// # drop(file);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct RegisterError<S> {
    error: std::io::Error,
    source: S,
}

impl<S> RegisterError<S> {
    pub(crate) fn new(error: std::io::Error, source: S) -> Self {
        RegisterError { error, source }
    }

    /// The OS error.
    pub fn error(&self) -> &std::io::Error {
        &self.error
    }

    /// Gives the source back.
    pub fn into_source(self) -> S {
        self.source
    }

    /// The error and the source.
    pub(crate) fn into_parts(self) -> (std::io::Error, S) {
        (self.error, self.source)
    }
}

impl<S> fmt::Debug for RegisterError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisterError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<S> fmt::Display for RegisterError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot register the source with the poller: {}",
            self.error
        )
    }
}

impl<S> std::error::Error for RegisterError<S> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<S> From<RegisterError<S>> for std::io::Error {
    fn from(e: RegisterError<S>) -> Self {
        e.error
    }
}

const INDEX_BITS: u32 = usize::BITS / 2;
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;
/// Generations count in `1..GENERATION_LIMIT`; the all-ones key is polling's notify key.
const GENERATION_LIMIT: usize = (1 << (usize::BITS - INDEX_BITS)) - 1;

fn make_key(index: usize, generation: usize) -> usize {
    generation << INDEX_BITS | index
}

fn split_key(key: usize) -> (usize, usize) {
    (key & INDEX_MASK, key >> INDEX_BITS)
}

struct HandlerSlot {
    generation: usize,
    fd: RawFd,
    interest: Interest,
    site: &'static Location<'static>,
    /// `None` while the handler runs.
    registration: Option<Box<dyn Registration>>,
}

/// A registration taken out of the registry: the closure to run and its site.
pub(crate) struct Dispatch {
    pub(crate) registration: Box<dyn Registration>,
    pub(crate) site: &'static Location<'static>,
}

/// A registration removed from the registry.
pub(crate) struct Removed {
    pub(crate) fd: RawFd,
    /// `None` when the handler was running: its source is dropped when it returns.
    pub(crate) registration: Option<Box<dyn Registration>>,
}

/// All fd registrations of one loop.
#[derive(Default)]
pub(crate) struct HandlerRegistry {
    slots: Slab<HandlerSlot>,
    last_generation: usize,
}

impl HandlerRegistry {
    /// Reserves a key for a new registration of `fd` (the poller is told by the caller).
    pub(crate) fn insert(
        &mut self,
        fd: RawFd,
        interest: Interest,
        site: &'static Location<'static>,
        registration: Box<dyn Registration>,
    ) -> usize {
        self.last_generation = self.last_generation % (GENERATION_LIMIT - 1) + 1;
        let generation = self.last_generation;
        let index = self.slots.insert(HandlerSlot {
            generation,
            fd,
            interest,
            site,
            registration: Some(registration),
        });
        assert!(index <= INDEX_MASK, "too many registered handlers");
        make_key(index, generation)
    }

    fn slot_mut(&mut self, key: usize) -> Option<&mut HandlerSlot> {
        let (index, generation) = split_key(key);
        self.slots
            .get_mut(index)
            .filter(|s| s.generation == generation)
    }

    /// The fd and interest of a live registration.
    pub(crate) fn get(&mut self, key: usize) -> Option<(RawFd, Interest)> {
        self.slot_mut(key).map(|s| (s.fd, s.interest))
    }

    /// Records a new interest; returns the fd and whether the interest changed.
    pub(crate) fn set_interest(&mut self, key: usize, interest: Interest) -> Option<(RawFd, bool)> {
        let slot = self.slot_mut(key)?;
        let changed = slot.interest != interest;
        slot.interest = interest;
        Some((slot.fd, changed))
    }

    /// Takes a registration out for dispatch; `None` if it was removed (stale event) or
    /// is already running.
    pub(crate) fn take_for_dispatch(&mut self, key: usize) -> Option<Dispatch> {
        let slot = self.slot_mut(key)?;
        let site = slot.site;
        slot.registration
            .take()
            .map(|registration| Dispatch { registration, site })
    }

    /// Puts a dispatched registration back. If it was removed while it ran, gives it back
    /// to be dropped.
    pub(crate) fn restore(
        &mut self,
        key: usize,
        registration: Box<dyn Registration>,
    ) -> Result<(), Box<dyn Registration>> {
        match self.slot_mut(key) {
            Some(slot) => {
                slot.registration = Some(registration);
                Ok(())
            }
            None => Err(registration),
        }
    }

    pub(crate) fn remove(&mut self, key: usize) -> Option<Removed> {
        self.slot_mut(key)?;
        let slot = self.slots.remove(split_key(key).0);
        Some(Removed {
            fd: slot.fd,
            registration: slot.registration,
        })
    }

    /// Removes every registration from the poller and the registry.
    pub(crate) fn unregister_all(&mut self, poller: &Poller) -> Vec<Box<dyn Registration>> {
        self.slots
            .drain()
            .filter_map(|slot| {
                unregister(poller, slot.fd);
                slot.registration
            })
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

impl fmt::Debug for HandlerRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerRegistry")
            .field("registered", &self.slots.len())
            .finish()
    }
}

/// Borrows the fd of a registration that is known to be alive.
///
/// # Safety
///
/// `fd` must belong to a source owned by a live registration (in its slot, or on the
/// dispatch stack while its handler runs), which is not dropped before the borrow ends.
unsafe fn registered_fd<'a>(fd: RawFd) -> BorrowedFd<'a> {
    // SAFETY: the caller guarantees the source owning `fd` outlives the borrow.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Removes `fd` from the poller; a failure is logged, never raised (Tornado's
/// `remove_handler` never fails).
fn unregister(poller: &Poller, fd: RawFd) {
    // SAFETY: called with the fd of a registration that is still alive: the source is
    // dropped only after it has been unregistered.
    let fd = unsafe { registered_fd(fd) };
    if let Err(e) = poller.delete(fd) {
        log::debug!(target: "ioloop", "error removing fd {} from the poller: {e}", fd.as_raw_fd());
    }
}

impl IoLoop {
    /// Registers `source` with the loop and calls `handler` whenever it is ready for
    /// `interest` (errors and hang-ups are always reported).
    ///
    /// The loop takes ownership of the source, so it cannot be closed while registered;
    /// [`remove_handler`](IoLoop::remove_handler) gives it back. The handler receives the
    /// loop, the source and an [`IoEvent`]. Readiness is level-triggered, as in Tornado: a
    /// source that is still readable is reported again next iteration, so a handler may
    /// read as little as it likes.
    ///
    /// A handler can add, update and remove handlers, itself included, from inside its
    /// call. A handler removed by another handler of the same batch is not called, and a
    /// registration that reuses its slot never receives the old event. Loop thread only.
    ///
    /// # Errors
    ///
    /// The OS refused the registration (already registered, not pollable, loop closed);
    /// the [`RegisterError`] hands the source back.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::{Interest, IoLoop};
    /// use std::io::{Read, Write};
    /// use std::os::unix::net::UnixStream;
    ///
    /// let ioloop = IoLoop::new()?;
    /// let (reader, mut writer) = UnixStream::pair()?;
    /// reader.set_nonblocking(true)?;
    /// ioloop.add_handler(reader, Interest::READ, |ioloop, reader, event| {
    ///     assert!(event.is_readable());
    ///     let mut buf = [0; 16];
    ///     let n = reader.read(&mut buf).unwrap();
    ///     assert_eq!(&buf[..n], b"ping");
    ///     let reader = ioloop.remove_handler(event.id());
    ///     assert!(reader.is_none()); // removed from inside its own call: dropped on return
    ///     ioloop.stop();
    /// })?;
    /// writer.write_all(b"ping")?;
    /// ioloop.start()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn add_handler<S, F>(
        &self,
        source: S,
        interest: Interest,
        handler: F,
    ) -> Result<HandlerId<S>, RegisterError<S>>
    where
        S: AsFd + 'static,
        F: FnMut(&IoLoop, &mut S, IoEvent<S>) + 'static,
    {
        self.add_handler_at(source, interest, handler, Location::caller())
    }

    /// [`add_handler`](IoLoop::add_handler) with the registration site given.
    pub(crate) fn add_handler_at<S, F>(
        &self,
        source: S,
        interest: Interest,
        handler: F,
        site: &'static Location<'static>,
    ) -> Result<HandlerId<S>, RegisterError<S>>
    where
        S: AsFd + 'static,
        F: FnMut(&IoLoop, &mut S, IoEvent<S>) + 'static,
    {
        let inner = &*self.inner;
        if inner.closed.get() {
            let closed = std::io::Error::other(crate::LoopError::Closed);
            return Err(RegisterError::new(closed, source));
        }
        let fd = source.as_fd().as_raw_fd();
        let key =
            inner
                .handlers
                .borrow_mut()
                .insert(fd, interest, site, registration(source, handler));
        // SAFETY: the registry now owns the source; every path that drops it (remove,
        // close, drop of the loop) calls `Poller::delete` first.
        let added = unsafe {
            inner
                .shared
                .poller
                .add_with_mode(fd, interest.to_event(key), inner.poll_mode)
        };
        match added {
            Ok(()) => Ok(HandlerId::new(key)),
            Err(error) => {
                let removed = inner.handlers.borrow_mut().remove(key);
                let registration = removed.and_then(|r| r.registration).expect("just added");
                let source = registration
                    .into_source()
                    .downcast::<S>()
                    .expect("registered with this type");
                Err(RegisterError::new(error, *source))
            }
        }
    }

    /// Changes what a registered source is watched for. Makes no syscall when the
    /// interest is unchanged. Works from inside any handler, the source's own included.
    /// Loop thread only.
    ///
    /// # Errors
    ///
    /// `NotFound` if `id` is stale (its registration was removed); the OS error if the
    /// poller refuses.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::{Interest, IoLoop};
    /// use std::os::unix::net::UnixStream;
    ///
    /// let ioloop = IoLoop::new()?;
    /// let (a, _b) = UnixStream::pair()?;
    /// let id = ioloop.add_handler(a, Interest::READ, |_, _, _| {})?;
    /// ioloop.update_handler(id, Interest::READ | Interest::WRITE)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn update_handler<S>(&self, id: HandlerId<S>, interest: Interest) -> std::io::Result<()> {
        let inner = &*self.inner;
        let changed = inner.handlers.borrow_mut().set_interest(id.key(), interest);
        match changed {
            None => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such handler (it was removed)",
            )),
            Some((_, false)) => Ok(()),
            Some((fd, true)) => self.arm(fd, id.key(), interest),
        }
    }

    fn arm(&self, fd: RawFd, key: usize, interest: Interest) -> std::io::Result<()> {
        let inner = &*self.inner;
        inner
            .poller_modifications
            .set(inner.poller_modifications.get() + 1);
        // SAFETY: `fd` comes from a live registration (checked by the caller).
        let source = unsafe { registered_fd(fd) };
        inner
            .shared
            .poller
            .modify_with_mode(source, interest.to_event(key), inner.poll_mode)
    }

    /// Stops watching a source and hands it back.
    ///
    /// Any readiness already collected for it in the current batch is discarded. Returns
    /// `None` if `id` is stale, or if the handler removes itself from inside its own call:
    /// then the registration ends at once and the source is dropped when the handler
    /// returns (to keep the source, remove it from a callback instead:
    /// `ioloop.add_callback(move |l| { let s = l.remove_handler(id); ... })`). Never fails;
    /// a poller error is logged at `debug`. Loop thread only.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::{Interest, IoLoop};
    /// use std::os::unix::net::UnixStream;
    ///
    /// let ioloop = IoLoop::new()?;
    /// let (a, _b) = UnixStream::pair()?;
    /// let id = ioloop.add_handler(a, Interest::READ, |_, _, _| {})?;
    /// let a: UnixStream = ioloop.remove_handler(id).expect("registered");
    /// assert!(ioloop.remove_handler(id).is_none());
    /// # drop(a);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove_handler<S: 'static>(&self, id: HandlerId<S>) -> Option<S> {
        let inner = &*self.inner;
        let removed = inner.handlers.borrow_mut().remove(id.key())?;
        unregister(&inner.shared.poller, removed.fd);
        let source = removed
            .registration?
            .into_source()
            .downcast::<S>()
            .expect("registered with this type");
        Some(*source)
    }

    /// Step 6 of an iteration: calls the handler of each ready source, one at a time.
    pub(crate) fn dispatch_ready(&self) {
        let inner = &*self.inner;
        let ready = std::mem::take(&mut inner.readiness.borrow_mut().ready);
        for &(key, readiness) in &ready {
            let taken = inner.handlers.borrow_mut().take_for_dispatch(key);
            let Some(Dispatch {
                mut registration,
                site,
            }) = taken
            else {
                continue; // removed earlier in this batch
            };
            self.run_guarded(CallbackKind::Handler, site, || {
                registration.dispatch(self, key, readiness)
            });
            let restored = inner.handlers.borrow_mut().restore(key, registration);
            match restored {
                Err(removed_while_running) => drop(removed_while_running),
                Ok(()) if inner.poll_mode == polling::PollMode::Oneshot => {
                    let armed = inner.handlers.borrow_mut().get(key);
                    if let Some((fd, interest)) = armed {
                        if let Err(e) = self.arm(fd, key, interest) {
                            log::error!(target: "ioloop", "failed to re-arm fd {fd}: {e}");
                        }
                    }
                }
                Ok(()) => {}
            }
        }
        // Hand the buffer back for the next wait (iterations never nest, so nothing
        // refilled it meanwhile).
        inner.readiness.borrow_mut().ready = ready;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::rc::Rc;
    use std::time::Duration;

    /// A loop that registers sources oneshot, as on platforms without level-triggered
    /// polling (illumos event ports).
    fn oneshot_loop() -> IoLoop {
        let poller = Poller::new().unwrap();
        IoLoop::builder()
            .build_with(poller, polling::PollMode::Oneshot)
            .unwrap()
    }

    #[test]
    fn oneshot_registrations_are_re_armed_so_readiness_stays_level_triggered() {
        let ioloop = oneshot_loop();
        let (reader, mut writer) = UnixStream::pair().unwrap();
        reader.set_nonblocking(true).unwrap();
        let reads = Rc::new(Cell::new(0));
        let r = reads.clone();
        ioloop
            .add_handler(reader, Interest::READ, move |_, reader, _| {
                let mut byte = [0u8; 1];
                assert_eq!(reader.read(&mut byte).unwrap(), 1);
                r.set(r.get() + 1);
            })
            .unwrap();
        writer.write_all(b"abc").unwrap();
        for _ in 0..3 {
            ioloop.run_once(Duration::ZERO).unwrap();
        }
        assert_eq!(reads.get(), 3, "each event re-armed the registration");
        assert_eq!(ioloop.stats().poller_modifications, 3);
        ioloop.run_once(Duration::ZERO).unwrap();
        assert_eq!(reads.get(), 3, "drained: no more events");
    }

    #[test]
    fn a_oneshot_handler_that_removes_itself_is_not_re_armed() {
        let ioloop = oneshot_loop();
        let (reader, mut writer) = UnixStream::pair().unwrap();
        let calls = Rc::new(Cell::new(0));
        let c = calls.clone();
        ioloop
            .add_handler(reader, Interest::READ, move |ioloop, _, ev| {
                c.set(c.get() + 1);
                ioloop.remove_handler(ev.id());
            })
            .unwrap();
        writer.write_all(b"x").unwrap();
        ioloop.run_once(Duration::ZERO).unwrap();
        ioloop.run_once(Duration::ZERO).unwrap();
        assert_eq!(calls.get(), 1);
        assert_eq!(ioloop.stats().poller_modifications, 0);
    }

    #[test]
    fn keys_round_trip_and_never_collide_with_the_notify_key() {
        let key = make_key(INDEX_MASK, GENERATION_LIMIT - 1);
        assert_ne!(key, usize::MAX);
        assert_eq!(split_key(key), (INDEX_MASK, GENERATION_LIMIT - 1));
        assert_eq!(split_key(make_key(7, 3)), (7, 3));
    }
}
