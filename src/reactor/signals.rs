//! Unix signals as ordinary loop callbacks ([`IoLoop::add_signal_handler`]), so a server can
//! shut down cleanly on `SIGINT` or `SIGTERM`.
//!
//! The signal handler itself (installed by the `signal-hook` crate, which gets the
//! async-signal-safety right) only writes a byte to a socket pair; the loop watches the
//! other end like any source and runs the callback on its own thread, with no restriction
//! on what it may do. Signals that arrive before the loop handles them are coalesced into
//! one call.

use std::fmt;
use std::io::{self, Read};
use std::os::unix::net::UnixStream;
use std::panic::Location;

use super::interest::Interest;
use super::ioloop::IoLoop;
use super::registration::HandlerId;

/// A signal handler added with [`IoLoop::add_signal_handler`]; pass it to
/// [`IoLoop::remove_signal_handler`].
///
/// # Examples
///
/// Each handler of a signal has its own `SignalHandler`, which removes only it:
///
/// ```
/// use ioloop::signal::SIGUSR2;
/// use std::{cell::Cell, rc::Rc, time::Duration};
///
/// let ioloop = ioloop::IoLoop::new()?;
/// let (first_calls, second_calls) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
/// let (f, s) = (first_calls.clone(), second_calls.clone());
/// let first = ioloop.add_signal_handler(SIGUSR2, move |_| f.set(f.get() + 1))?;
/// let second = ioloop.add_signal_handler(SIGUSR2, move |_| s.set(s.get() + 1))?;
/// ioloop.remove_signal_handler(first);
/// signal_hook::low_level::raise(SIGUSR2)?;
/// ioloop.run_once(Duration::ZERO)?;
/// assert_eq!((first_calls.get(), second_calls.get()), (0, 1));
/// # ioloop.remove_signal_handler(second);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "keep it to remove the handler"]
pub struct SignalHandler {
    signal: i32,
    hook: signal_hook::SigId,
    registration: HandlerId<UnixStream>,
}

impl fmt::Debug for SignalHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalHandler")
            .field("signal", &self.signal)
            .finish_non_exhaustive()
    }
}

impl IoLoop {
    /// Calls `callback` on the loop thread after the process receives `signal` (for
    /// example `signal_hook::consts::SIGTERM`, or `15`). Several deliveries before the
    /// loop gets to it give one call. Other handlers of the same signal, in this loop or
    /// elsewhere in the process, keep working. Loop thread only.
    ///
    /// # Errors
    ///
    /// The signal cannot be handled (`SIGKILL`, `SIGSTOP`, the fault signals) or the
    /// socket pair could not be made.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::IoLoop;
    /// let ioloop = IoLoop::new()?;
    /// use signal_hook::consts::SIGUSR1;
    ///
    /// let handler = ioloop.add_signal_handler(SIGUSR1, |ioloop| {
    ///     println!("got SIGUSR1; stopping");
    ///     ioloop.stop();
    /// })?;
    /// signal_hook::low_level::raise(SIGUSR1)?;
    /// ioloop.start()?;
    /// ioloop.remove_signal_handler(handler);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn add_signal_handler<F>(&self, signal: i32, mut callback: F) -> io::Result<SignalHandler>
    where
        F: FnMut(&IoLoop) + 'static,
    {
        let site = Location::caller();
        if signal_hook::consts::FORBIDDEN.contains(&signal) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("signal {signal} cannot be handled"),
            ));
        }
        let (reader, writer) = UnixStream::pair()?;
        reader.set_nonblocking(true)?;
        let hook = signal_hook::low_level::pipe::register(signal, writer)?;
        let drain_then_call = move |ioloop: &IoLoop, reader: &mut UnixStream, _| {
            let mut bytes = [0u8; 64];
            while matches!(reader.read(&mut bytes), Ok(n) if n > 0) {}
            callback(ioloop);
        };
        match self.add_handler_at(reader, Interest::READ, drain_then_call, site) {
            Ok(registration) => Ok(SignalHandler {
                signal,
                hook,
                registration,
            }),
            Err(e) => {
                signal_hook::low_level::unregister(hook);
                Err(e.into())
            }
        }
    }

    /// Removes a signal handler added with
    /// [`add_signal_handler`](IoLoop::add_signal_handler). The signal's disposition is not
    /// restored: with no handler left, the signal is ignored rather than, for example,
    /// terminating the process.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::signal::SIGUSR1;
    /// use std::{cell::Cell, rc::Rc, time::Duration};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let calls = Rc::new(Cell::new(0));
    /// let c = calls.clone();
    /// let handler = ioloop.add_signal_handler(SIGUSR1, move |_| c.set(c.get() + 1))?;
    /// signal_hook::low_level::raise(SIGUSR1)?;
    /// ioloop.run_once(Duration::ZERO)?;
    /// assert_eq!(calls.get(), 1);
    ///
    /// ioloop.remove_signal_handler(handler);
    /// signal_hook::low_level::raise(SIGUSR1)?; // ignored now, not fatal
    /// ioloop.run_once(Duration::ZERO)?;
    /// assert_eq!(calls.get(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove_signal_handler(&self, handler: SignalHandler) {
        signal_hook::low_level::unregister(handler.hook);
        drop(self.remove_handler(handler.registration));
    }
}
