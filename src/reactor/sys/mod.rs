//! The OS poller the loop waits on: readiness of its sources, and a wakeup other threads
//! can send, in one wait.
//!
//! On Linux the loop owns its epoll set and an eventfd (`epoll.rs`): a wait is one
//! `epoll_pwait2` (or `epoll_wait`), a wakeup one `write`, and nothing has to be consumed
//! or re-armed after either. Elsewhere the `polling` crate is the poller (`portable.rs`).
//! Both offer the same small interface, so the rest of the reactor never names a
//! platform: [`Poller`] (register, modify, delete, notify, wait) and [`WaitBuffer`] (the
//! events of one wait).
//!
//! Thread-safety: [`Poller::notify`] may be called from any thread; registration and
//! waiting happen on the loop's thread.

#[cfg(target_os = "linux")]
mod epoll;
#[cfg(target_os = "linux")]
pub(crate) use epoll::{Poller, WaitBuffer};

#[cfg(not(target_os = "linux"))]
mod portable;
#[cfg(not(target_os = "linux"))]
pub(crate) use portable::{Poller, WaitBuffer};

/// How a source stays registered after it reported readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PollMode {
    /// Reported by every wait while it is ready.
    Level,
    /// Reported once, then disabled until [`Poller::modify`] re-arms it (for platforms
    /// without level-triggered polling; the tests force it on Linux too).
    Oneshot,
}
