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

pub use self::periodic::PeriodicCallback;
pub use self::sleep::{sleep, sleep_until, Sleep};
pub use self::timeout::{timeout, TimedOut};
pub use self::yield_now::{yield_now, YieldNow};
pub use crate::reactor::clock::{Clock, ManualClock, SystemClock};
pub use crate::reactor::timer_heap::{Deadline, Timeout};
