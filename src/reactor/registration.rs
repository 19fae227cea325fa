//! The fd handler registry: which sources the loop owns, what each is interested in, and
//! the closure to call when it is ready.
//!
//! Registrations live in a [`Slab`]; the key given to the poller packs the slab index with
//! a generation number, so an event collected for a registration that was removed (and
//! whose slot was perhaps reused) earlier in the same batch is recognised and dropped.
//! While a handler runs, the loop holds its own reference to the registration and no
//! borrow of the registry, so the handler can freely add, update and remove handlers,
//! itself included.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::panic::Location;
use std::rc::Rc;

use super::sys::Poller;
use slab::Slab;

use super::interest::{Interest, Readiness};
use super::ioloop::IoLoop;

/// Identifies a registered source of type `S`; returned by
/// [`IoLoop::add_handler`](crate::IoLoop::add_handler) and passed to the handler in every
/// [`IoEvent`](crate::IoEvent).
///
/// A stale id (its registration was removed) is harmless: updating it is an error,
/// removing it returns `None`, and it never matches a newer registration that reused the
/// slot.
pub struct HandlerId<S> {
    /// Never zero (generations start at 1), so `Option<HandlerId>` is one word.
    key: NonZeroUsize,
    _source: PhantomData<fn() -> S>,
}

impl<S> HandlerId<S> {
    pub(crate) fn new(key: usize) -> Self {
        HandlerId {
            key: NonZeroUsize::new(key).expect("keys have a generation of at least 1"),
            _source: PhantomData,
        }
    }

    pub(crate) fn key(self) -> usize {
        self.key.get()
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
        let (index, generation) = split_key(self.key());
        write!(f, "HandlerId({index}v{generation})")
    }
}

/// A source together with its handler, type-erased: what a registry slot holds.
///
/// Shared (`Rc`), so that a registration whose owner already lives in an `Rc` (a
/// stream's state) costs the loop no allocation of its own, and so that the loop can
/// keep one alive while it runs without holding a borrow of the registry.
pub(crate) trait Registration {
    /// The source is ready; `key` is its registration's.
    fn dispatch(self: Rc<Self>, ioloop: &IoLoop, key: usize, readiness: Readiness);
    /// Where it was registered, for the reports of a panicking handler.
    fn site(&self) -> &'static Location<'static>;
    /// The loop lets go of the registration (it was removed, or the loop closed): gives
    /// back the source, as `Box<S>`, when there is one to give and nothing else holds
    /// the registration (its handler is not running).
    fn release(self: Rc<Self>) -> Option<Box<dyn Any>>;
}

/// The error from [`IoLoop::add_handler`](crate::IoLoop::add_handler): the OS refused the registration (for example
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

/// How a registration's slot index and generation pack into the poller key.
const INDEX_BITS: u32 = usize::BITS / 2;
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;
/// Generations count in `1..GENERATION_LIMIT`; the all-ones key is the
/// poller's own (its wakeup's on Linux, `polling`'s notifier elsewhere).
const GENERATION_LIMIT: usize = (1 << (usize::BITS - INDEX_BITS)) - 1;

fn make_key(index: usize, generation: usize) -> usize {
    generation << INDEX_BITS | index
}

fn split_key(key: usize) -> (usize, usize) {
    (key & INDEX_MASK, key >> INDEX_BITS)
}

/// One registration: 32 bytes, as every open connection holds one.
struct HandlerSlot {
    /// Below `GENERATION_LIMIT`, which fits 32 bits.
    generation: u32,
    fd: RawFd,
    interest: Interest,
    registration: Rc<dyn Registration>,
}

/// A registration removed from the registry.
pub(crate) struct Removed {
    pub(super) fd: RawFd,
    /// Still held by the loop while its handler runs: then the source is dropped when
    /// the handler returns.
    pub(super) registration: Rc<dyn Registration>,
}

/// All fd registrations of one loop.
pub(crate) struct HandlerRegistry {
    slots: Slab<HandlerSlot>,
    last_generation: usize,
}

impl Default for HandlerRegistry {
    fn default() -> Self {
        HandlerRegistry {
            slots: Slab::new(),
            last_generation: 0,
        }
    }
}

impl HandlerRegistry {
    /// Reserves a key for a new registration of `fd` (the poller is told by the caller).
    pub(crate) fn insert(
        &mut self,
        fd: RawFd,
        interest: Interest,
        registration: Rc<dyn Registration>,
    ) -> usize {
        self.last_generation = self.last_generation % (GENERATION_LIMIT - 1) + 1;
        let generation = self.last_generation;
        let index = self.slots.insert(HandlerSlot {
            generation: u32::try_from(generation).expect("generations fit 32 bits"),
            fd,
            interest,
            registration,
        });
        assert!(index <= INDEX_MASK, "too many registered handlers");
        make_key(index, generation)
    }

    fn slot_mut(&mut self, key: usize) -> Option<&mut HandlerSlot> {
        let (index, generation) = split_key(key);
        self.slots
            .get_mut(index)
            .filter(|s| s.generation as usize == generation)
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

    /// The registration to dispatch an event of `key` to, held for the call; `None` if it
    /// was removed (a stale event).
    pub(crate) fn for_dispatch(&mut self, key: usize) -> Option<Rc<dyn Registration>> {
        self.slot_mut(key).map(|slot| slot.registration.clone())
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
    pub(crate) fn unregister_all(&mut self, poller: &Poller) -> Vec<Rc<dyn Registration>> {
        self.slots
            .drain()
            .map(|slot| {
                // SAFETY: the source is alive in `slot.registration`, and dropped only
                // after this.
                unsafe { unregister(poller, slot.fd) };
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
/// `fd` must belong to a source owned by a live registration (in its slot, or held by the
/// loop while its handler runs), which is not dropped before the borrow ends.
pub(crate) unsafe fn registered_fd<'a>(fd: RawFd) -> BorrowedFd<'a> {
    // SAFETY: the caller guarantees the source owning `fd` outlives the borrow.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Removes `fd` from the poller; a failure is logged, never raised (Tornado's
/// `remove_handler` never fails).
///
/// # Safety
///
/// As for [`registered_fd`]: the source owning `fd` is alive during the call.
pub(crate) unsafe fn unregister(poller: &Poller, fd: RawFd) {
    // SAFETY: the caller promises the source owning `fd` is alive.
    let fd = unsafe { registered_fd(fd) };
    if let Err(e) = poller.delete(fd) {
        log::debug!(target: "ioloop", "error removing fd {} from the poller: {e}", fd.as_raw_fd());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every open connection holds one slot: 32 bytes, or the idle-memory budget slips
    /// (`tests/idle_memory.rs` counts bytes asked for, which a slab's growth hides).
    #[test]
    fn a_handler_slot_is_32_bytes() {
        assert!(std::mem::size_of::<HandlerSlot>() <= 32);
    }

    #[test]
    fn keys_round_trip_and_never_collide_with_the_notify_key() {
        let key = make_key(INDEX_MASK, GENERATION_LIMIT - 1);
        assert_ne!(key, usize::MAX);
        assert_eq!(split_key(key), (INDEX_MASK, GENERATION_LIMIT - 1));
        assert_eq!(split_key(make_key(7, 3)), (7, 3));
    }

    #[test]
    fn a_registered_fd_borrows_the_live_source() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        // SAFETY: `a` outlives the borrow.
        let borrowed = unsafe { registered_fd(a.as_raw_fd()) };
        assert_eq!(borrowed.as_raw_fd(), a.as_raw_fd());
    }
}
