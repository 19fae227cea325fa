//! [`PostSpin`]: a running loop that other threads keep posting to spins briefly
//! before it sleeps, so a quick reply finds it awake.
//!
//! Putting a thread to sleep in `epoll_wait` and waking it again costs microseconds (a
//! context switch, and an inter-processor interrupt when the poster runs on another
//! core), much more than the post itself. In a ping-pong with another thread (a worker
//! answering each request, `run_in_executor`, a `Remote` feeding the loop request by
//! request) the next post often arrives a few hundred nanoseconds after the loop ran the
//! last one, just after it fell asleep. So, like an adaptive mutex (glibc's, or the spin
//! in std's channels before they park), a loop that ran posted callbacks since it last
//! slept spins for up to [`SPIN`] watching the posted flag before it sleeps again. A
//! post found in the spin skips the sleep; a spin that finds nothing costs at most
//! [`SPIN`], a fraction of what the wakeup that brought the posts cost. A loop that no
//! thread posts to never spins.
//!
//! Only [`IoLoop::start`](crate::IoLoop::start) spins: a step of
//! [`run_once`](crate::IoLoop::run_once) hands control back to its host as before. The
//! spin watches the real time, not the loop's clock (a `ManualClock` never moves by
//! itself).

use std::cell::Cell;
use std::time::{Duration, Instant};

use super::cross_thread::CrossThread;

/// How long a loop spins for a post before it sleeps.
const SPIN: Duration = Duration::from_micros(2);

/// Whether the loop spins before its next sleep (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct PostSpin {
    /// Callbacks were posted since the loop last slept.
    armed: Cell<bool>,
}

impl PostSpin {
    /// Records that an iteration found callbacks posted.
    pub(crate) fn found_posts(&self) {
        self.armed.set(true);
    }

    /// The timeout for a wait of `timeout`: zero if a post arrived during the spin, else
    /// `timeout`, the loop then going to sleep (for a non-zero timeout).
    pub(crate) fn before_wait(
        &self,
        shared: &CrossThread,
        timeout: Option<Duration>,
    ) -> Option<Duration> {
        if timeout == Some(Duration::ZERO) || !self.armed.get() {
            return timeout;
        }
        if spin_for_post(shared, SPIN) {
            return Some(Duration::ZERO);
        }
        self.armed.set(false);
        timeout
    }
}

/// Whether a callback was posted to `shared` within `budget`, spinning until then.
fn spin_for_post(shared: &CrossThread, budget: Duration) -> bool {
    let started = Instant::now();
    loop {
        for _ in 0..32 {
            if shared.has_posted() {
                return true;
            }
            std::hint::spin_loop();
        }
        if started.elapsed() >= budget {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reactor::queue::Posted;

    fn shared() -> CrossThread {
        CrossThread::new(crate::reactor::sys::Poller::new().unwrap()).unwrap()
    }

    fn post(shared: &CrossThread) {
        let site = std::panic::Location::caller();
        shared
            .post(Posted::Callback(Box::new(|_| {}), site))
            .unwrap();
    }

    #[test]
    fn a_loop_never_posted_to_never_spins() {
        let shared = shared();
        let spin = PostSpin::default();
        post(&shared);
        // Not armed: the post is left to the wait, which ends at once.
        let wait = Some(Duration::from_secs(1));
        assert_eq!(spin.before_wait(&shared, wait), wait);
        assert_eq!(spin.before_wait(&shared, None), None);
    }

    #[test]
    fn after_posts_a_post_in_the_spin_skips_the_sleep_and_an_empty_spin_disarms() {
        let shared = shared();
        let spin = PostSpin::default();
        spin.found_posts();
        post(&shared);
        assert_eq!(spin.before_wait(&shared, None), Some(Duration::ZERO));
        assert!(spin.armed.get());
        let mut drained = std::collections::VecDeque::new();
        assert!(shared.drain_into(&mut drained));
        spin.found_posts();
        // Nothing posted during the spin: the loop sleeps, and will not spin again
        // until posts come.
        let started = Instant::now();
        assert_eq!(spin.before_wait(&shared, None), None);
        assert!(started.elapsed() >= SPIN);
        assert!(!spin.armed.get());
    }

    #[test]
    fn a_post_from_another_thread_during_the_spin_is_seen() {
        let shared = shared();
        let spin = PostSpin::default();
        spin.found_posts();
        std::thread::scope(|s| {
            s.spawn(|| post(&shared));
            // The spin is short; the poster may be later. Either the spin saw the post,
            // or the post is there for the wait.
            let timeout = spin.before_wait(&shared, None);
            assert!(timeout == Some(Duration::ZERO) || timeout.is_none());
        });
        assert!(shared.has_posted());
    }

    #[test]
    fn a_zero_timeout_does_not_spin() {
        let shared = shared();
        let spin = PostSpin::default();
        spin.found_posts();
        assert_eq!(
            spin.before_wait(&shared, Some(Duration::ZERO)),
            Some(Duration::ZERO)
        );
        assert!(spin.armed.get());
    }
}
