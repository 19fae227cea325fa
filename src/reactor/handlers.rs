//! The fd handler API of [`IoLoop`]: [`add_handler`](IoLoop::add_handler),
//! [`update_handler`](IoLoop::update_handler) and [`remove_handler`](IoLoop::remove_handler).
//! The registry they fill is in `registration.rs`; the loop dispatches readiness to it in
//! step 6 of each iteration (`ioloop.rs`).

use std::any::Any;
use std::cell::RefCell;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::panic::Location;
use std::rc::Rc;

use super::event::IoEvent;
use super::interest::{Interest, Readiness};
use super::ioloop::IoLoop;
use super::registration::{unregister, HandlerId, RegisterError, Registration};
use crate::error::LoopError;

/// A source of type `S` and its handler: what [`IoLoop::add_handler`] stores.
struct Registered<S, F> {
    site: &'static Location<'static>,
    source_and_handler: RefCell<(S, F)>,
}

impl<S, F> Registration for Registered<S, F>
where
    S: 'static,
    F: FnMut(&IoLoop, &mut S, IoEvent<S>) + 'static,
{
    fn dispatch(self: Rc<Self>, ioloop: &IoLoop, key: usize, readiness: Readiness) {
        // Never busy: the loop does not nest iterations, so a handler is never dispatched
        // from inside its own call.
        if let Ok(mut source_and_handler) = self.source_and_handler.try_borrow_mut() {
            let (source, handler) = &mut *source_and_handler;
            handler(ioloop, source, IoEvent::new(key, readiness));
        }
    }

    fn site(&self) -> &'static Location<'static> {
        self.site
    }

    fn release(self: Rc<Self>) -> Option<Box<dyn Any>> {
        let registered = Rc::into_inner(self)?;
        let (source, handler) = registered.source_and_handler.into_inner();
        drop(handler);
        Some(Box::new(source))
    }
}

impl IoLoop {
    /// Registers `source` with the loop and calls `handler` whenever it is ready for
    /// `interest` (errors and hang-ups are always reported).
    ///
    /// The loop takes ownership of the source, so it cannot be closed while registered;
    /// [`remove_handler`](IoLoop::remove_handler) gives it back. The handler receives the
    /// loop, the source and an [`IoEvent`]. Readiness is level-triggered, as in Tornado: a
    /// source that is still readable is reported again by the next wait, so a handler may
    /// read as little as it likes. An event is reported as the wait saw it: a handler may
    /// be called with readiness it has since lost, or for an interest it has just dropped
    /// (another handler of the same wait read its socket, or changed its interest);
    /// a read that would block just returns `WouldBlock`.
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
        let fd = source.as_fd().as_raw_fd();
        let registered = Rc::new(Registered {
            site,
            source_and_handler: RefCell::new((source, handler)),
        });
        // SAFETY: the registry now owns the source; every path that drops it (remove,
        // close, drop of the loop) calls `Poller::delete` first.
        let added = unsafe { self.register(fd, interest, registered) };
        added.map(HandlerId::new).map_err(|(error, registered)| {
            let source = registered
                .release()
                .and_then(|source| source.downcast::<S>().ok())
                .expect("registered just now, with this type");
            RegisterError::new(error, *source)
        })
    }

    /// Registers the source behind `fd` with a registration that shares its owner's
    /// allocation (a stream's state): the loop holds the `Rc` until
    /// [`remove_registration`](IoLoop::remove_registration) or the loop's close, and
    /// calls [`Registration::release`] then unless it was removed.
    ///
    /// # Errors
    ///
    /// The loop is closed, or the poller refused the fd.
    ///
    /// # Safety
    ///
    /// `fd` stays open until the registration is removed or released.
    pub(crate) unsafe fn add_registration<R: Registration + 'static>(
        &self,
        fd: BorrowedFd<'_>,
        interest: Interest,
        registration: Rc<R>,
    ) -> std::io::Result<HandlerId<R>> {
        // SAFETY: the caller keeps `fd` open while it is registered.
        let added = unsafe { self.register(fd.as_raw_fd(), interest, registration) };
        added.map(HandlerId::new).map_err(|(error, _)| error)
    }

    /// Puts `registration` in the registry and `fd` in the poller; when the loop is closed
    /// or the poller refuses, gives it back with the error.
    ///
    /// # Safety
    ///
    /// `fd` stays open until the registration is removed from the registry.
    unsafe fn register(
        &self,
        fd: std::os::fd::RawFd,
        interest: Interest,
        registration: Rc<dyn Registration>,
    ) -> Result<usize, (std::io::Error, Rc<dyn Registration>)> {
        let inner = &*self.inner;
        if inner.closed.get() {
            return Err((std::io::Error::other(LoopError::Closed), registration));
        }
        let key = inner
            .handlers
            .borrow_mut()
            .insert(fd, interest, registration);
        // SAFETY: the caller keeps `fd` open while it is registered.
        let added = unsafe { inner.shared.poller.add(fd, key, interest, inner.poll_mode) };
        match added {
            Ok(()) => Ok(key),
            Err(error) => {
                let removed = inner.handlers.borrow_mut().remove(key);
                Err((error, removed.expect("just added").registration))
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
            // SAFETY: `set_interest` found the registration in its slot, alive.
            Some((fd, true)) => unsafe { self.arm(fd, id.key(), interest) },
        }
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
        // SAFETY: the source is alive until `removed` is dropped below (or on the dispatch
        // stack while its handler runs).
        unsafe { unregister(&inner.shared.poller, removed.fd) };
        let source = removed
            .registration
            .release()?
            .downcast::<S>()
            .expect("registered with this type");
        Some(*source)
    }

    /// Removes a registration made by [`add_registration`](IoLoop::add_registration),
    /// and drops the loop's reference to it (without calling
    /// [`Registration::release`]): the owner ended it. Stale ids are ignored.
    pub(crate) fn remove_registration<R>(&self, id: HandlerId<R>) {
        let inner = &*self.inner;
        let removed = inner.handlers.borrow_mut().remove(id.key());
        if let Some(removed) = removed {
            // SAFETY: the owner keeps the fd open until this returns.
            unsafe { unregister(&inner.shared.poller, removed.fd) };
            drop(removed.registration);
        }
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
        let poller = crate::reactor::sys::Poller::new().unwrap();
        IoLoop::builder()
            .build_with(poller, crate::reactor::sys::PollMode::Oneshot)
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
}
