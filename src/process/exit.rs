//! How the loop learns that a child exited, and what it does then: [`ExitState`], shared
//! by a [`Subprocess`](super::Subprocess) and the watcher the loop runs for it.
//!
//! On Linux the watcher is a pidfd (`pidfd_open`, Linux 5.3) registered for READ: it
//! becomes readable when the child exits. Elsewhere, or where `pidfd_open` is refused
//! (an old kernel, a seccomp filter), it is a `SIGCHLD` handler. Either way the child is
//! reaped with `waitpid` on its own pid, never `waitpid(-1)`, so other code's children
//! are left to their owners, and no thread waits per child.

use std::cell::{Cell, RefCell};
use std::io;
use std::process::{Child, ExitStatus};
use std::rc::Rc;
use std::task::Waker;

use crate::reactor::ioloop::IoLoop;
#[cfg(target_os = "linux")]
use crate::reactor::Interest;
use crate::reactor::SignalHandler;

type ExitCallback = Box<dyn FnOnce(ExitStatus)>;

/// What is known about a child's end.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outcome {
    Running,
    Exited(ExitStatus),
    /// The loop closed first: the exit will not be observed, but the child was not
    /// reaped, so its pid is still its own.
    Abandoned,
    /// Other code reaped the child: its status is gone and its pid may be reused.
    ReapedElsewhere,
}

impl Outcome {
    /// Why the exit cannot be observed, for the error of a wait; `None` if it can.
    pub(crate) fn lost_because(self) -> Option<&'static str> {
        match self {
            Outcome::Running | Outcome::Exited(_) => None,
            Outcome::Abandoned => Some("the loop closed before the child exited"),
            Outcome::ReapedElsewhere => Some("the child was reaped by other code"),
        }
    }
}

/// How a watcher learns of the exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WatchMethod {
    /// A pidfd where the platform has one, else `SIGCHLD`.
    Best,
    /// `SIGCHLD` (what platforms without pidfds use; tested on Linux through this).
    #[cfg_attr(not(test), allow(dead_code))]
    Sigchld,
}

/// A child being watched: the process handle (only ever reaped by its own pid), its
/// outcome, and who to tell.
pub(crate) struct ExitState {
    child: RefCell<Child>,
    outcome: Cell<Outcome>,
    callbacks: RefCell<Vec<ExitCallback>>,
    wakers: RefCell<Vec<Waker>>,
    /// The pidfd the watcher polls, kept to send signals without a pid-reuse race.
    #[cfg(target_os = "linux")]
    pidfd: RefCell<Option<Rc<std::os::fd::OwnedFd>>>,
    /// The `SIGCHLD` handler, when that is the watcher.
    signal_handler: RefCell<Option<SignalHandler>>,
}

impl ExitState {
    pub(crate) fn new(child: Child) -> Rc<ExitState> {
        Rc::new(ExitState {
            child: RefCell::new(child),
            outcome: Cell::new(Outcome::Running),
            callbacks: RefCell::default(),
            wakers: RefCell::default(),
            #[cfg(target_os = "linux")]
            pidfd: RefCell::default(),
            signal_handler: RefCell::default(),
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.borrow().id()
    }

    pub(crate) fn outcome(&self) -> Outcome {
        self.outcome.get()
    }

    /// Runs `callback` with the exit status once the child has exited (through the loop
    /// if it already has).
    pub(crate) fn on_exit(&self, ioloop: Option<IoLoop>, callback: ExitCallback) {
        match self.outcome.get() {
            Outcome::Running => self.callbacks.borrow_mut().push(callback),
            Outcome::Exited(status) => {
                if let Some(ioloop) = ioloop {
                    ioloop.add_callback(move |_| callback(status));
                }
            }
            Outcome::Abandoned | Outcome::ReapedElsewhere => {}
        }
    }

    /// Registers the waker of a task waiting for the exit.
    pub(crate) fn push_waker(&self, waker: &Waker) {
        let mut wakers = self.wakers.borrow_mut();
        if !wakers.iter().any(|w| w.will_wake(waker)) {
            wakers.push(waker.clone());
        }
    }

    /// Sends `signal` to the child, unless it was reaped already (then nothing happens,
    /// as with [`Child::kill`]). Through the pidfd where there is one; else by pid, which
    /// cannot have been reused: the child is not reaped until this state sees its exit.
    pub(crate) fn signal(&self, signal: rustix::process::Signal) -> io::Result<()> {
        if !matches!(self.outcome.get(), Outcome::Running | Outcome::Abandoned) {
            return Ok(());
        }
        #[cfg(target_os = "linux")]
        if let Some(pidfd) = self.pidfd.borrow().as_ref() {
            return Ok(rustix::process::pidfd_send_signal(&**pidfd, signal)?);
        }
        Ok(rustix::process::kill_process(self.rustix_pid()?, signal)?)
    }

    fn rustix_pid(&self) -> io::Result<rustix::process::Pid> {
        i32::try_from(self.pid())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a process id"))
    }

    /// Kills the child and waits for it (blocking, briefly: it was just killed): for a
    /// spawn that failed after the process started.
    pub(crate) fn kill_and_reap(&self) {
        let mut child = self.child.borrow_mut();
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Reaps the child if it has exited, then runs the exit callbacks and wakes the
    /// waiting tasks. Returns whether the watch is over.
    fn try_reap(&self) -> bool {
        if !matches!(self.outcome.get(), Outcome::Running) {
            return true;
        }
        let reaped = self.child.borrow_mut().try_wait();
        let outcome = match reaped {
            Ok(None) => return false,
            Ok(Some(status)) => Outcome::Exited(status),
            Err(e) => {
                log::warn!(
                    target: "ioloop",
                    "cannot wait for child {}: {e} (reaped by other code?)",
                    self.pid()
                );
                Outcome::ReapedElsewhere
            }
        };
        self.finish(outcome);
        true
    }

    /// Records the outcome and tells everyone waiting for it: the tasks first (waking
    /// only schedules them), so that a panicking exit callback cannot leave them waiting.
    fn finish(&self, outcome: Outcome) {
        self.outcome.set(outcome);
        #[cfg(target_os = "linux")]
        if !matches!(outcome, Outcome::Abandoned) {
            self.pidfd.borrow_mut().take();
        }
        // Taken out first: a `for` keeps its head's temporaries (the borrow) to its end.
        let wakers = std::mem::take(&mut *self.wakers.borrow_mut());
        for waker in wakers {
            waker.wake();
        }
        let callbacks = std::mem::take(&mut *self.callbacks.borrow_mut());
        if let Outcome::Exited(status) = outcome {
            for callback in callbacks {
                callback(status);
            }
        }
    }
}

/// The watcher's hold on the state: if the loop drops the watcher before the child
/// exited (the loop closed), the waiting tasks learn that the exit is lost.
struct Watch(Rc<ExitState>);

impl Drop for Watch {
    fn drop(&mut self) {
        if matches!(self.0.outcome.get(), Outcome::Running) {
            self.0.finish(Outcome::Abandoned);
        }
    }
}

/// Starts watching `state`'s child on `ioloop`.
pub(crate) fn watch(ioloop: &IoLoop, state: &Rc<ExitState>, method: WatchMethod) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    if method == WatchMethod::Best {
        // Only opening the pidfd may fail for want of support; registering it then
        // fails as registering a signal handler would.
        match open_pidfd(state) {
            Ok(pidfd) => return watch_pidfd(ioloop, state, pidfd),
            Err(e) => {
                log::debug!(target: "ioloop", "no pidfd ({e}); watching SIGCHLD instead")
            }
        }
    }
    let _ = method;
    watch_sigchld(ioloop, state)
}

#[cfg(target_os = "linux")]
fn open_pidfd(state: &ExitState) -> io::Result<std::os::fd::OwnedFd> {
    use rustix::process::{pidfd_open, PidfdFlags};

    Ok(pidfd_open(state.rustix_pid()?, PidfdFlags::empty())?)
}

#[cfg(target_os = "linux")]
fn watch_pidfd(
    ioloop: &IoLoop,
    state: &Rc<ExitState>,
    pidfd: std::os::fd::OwnedFd,
) -> io::Result<()> {
    let pidfd = Rc::new(pidfd);
    let watch = Watch(state.clone());
    ioloop
        .add_handler(pidfd.clone(), Interest::READ, move |ioloop, _, event| {
            if watch.0.try_reap() {
                ioloop.remove_handler(event.id());
            }
        })
        .map_err(|e| e.into_parts().0)?;
    *state.pidfd.borrow_mut() = Some(pidfd);
    Ok(())
}

fn watch_sigchld(ioloop: &IoLoop, state: &Rc<ExitState>) -> io::Result<()> {
    let watch = Watch(state.clone());
    let handler = ioloop.add_signal_handler(signal_hook::consts::SIGCHLD, move |ioloop| {
        if watch.0.try_reap() {
            // Taken out first: an `if let` keeps its scrutinee's borrow to its end.
            let handler = watch.0.signal_handler.borrow_mut().take();
            if let Some(handler) = handler {
                ioloop.remove_signal_handler(handler);
            }
        }
    })?;
    // The child may have exited before the handler was there to hear it.
    if state.try_reap() {
        ioloop.remove_signal_handler(handler);
    } else {
        *state.signal_handler.borrow_mut() = Some(handler);
    }
    Ok(())
}
