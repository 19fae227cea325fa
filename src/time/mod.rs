//! Time: the loop's clocks, timeout handles, [`PeriodicCallback`], and the futures that
//! wait on the loop's timer heap ([`sleep`], [`sleep_until`], [`timeout`],
//! [`yield_now`]).
//!
//! Everything here runs on the clock the loop was built with, so a loop on a
//! [`ManualClock`] drives all of it deterministically. The clock and the timer heap
//! themselves belong to the reactor, whose iteration runs them; this layer re-exports the
//! public names ([`Clock`], [`ManualClock`], [`SystemClock`], [`Timeout`], [`Deadline`])
//! and builds on the reactor only.

mod periodic;
mod sleep;
mod timeout;
mod yield_now;

pub use self::sleep::Sleep;
pub use self::yield_now::YieldNow;
// Documented at the crate root, their one path.
#[doc(hidden)]
pub use self::{
    periodic::PeriodicCallback,
    sleep::{sleep, sleep_until},
    timeout::{timeout, TimedOut},
    yield_now::yield_now,
};
#[doc(hidden)]
pub use crate::reactor::clock::{Clock, ManualClock, SystemClock};
#[doc(hidden)]
pub use crate::reactor::timer_heap::{Deadline, Timeout};
