//! [`Notifier`]: how another thread ends the loop's wait.
//!
//! On Linux the notifier is an eventfd of the loop's own, registered edge-triggered in
//! the loop's epoll set under [`WAKE_KEY`]. A wakeup is one `write` by the waking
//! thread, and the loop pays nothing to consume it: epoll reports the edge once, to the
//! wait it ends (or to the next wait, if the loop was busy), and nothing has to be read
//! or re-armed afterwards. mio's and tokio's wakers work the same way. `polling`'s own
//! notifier, used before, cost the woken loop a `Poller::wait` on top of its
//! `epoll_wait` (re-arming the timerfd, reading the eventfd, re-arming it): five
//! syscalls between the wakeup and the first posted callback.
//!
//! Elsewhere the notifier is `polling`'s ([`Poller::notify`]), whose wakeups the loop
//! consumes with [`Poller::wait`] (see `poll.rs`).
//!
//! Thread-safety: [`Notifier::notify`] may be called from any thread, any number of
//! times; each call ends the current or next wait of the loop at least once.

use std::io;

use polling::Poller;

/// The key of the loop's own eventfd in its epoll set (next to `polling`'s notifier
/// key, `usize::MAX`; the loop's sources get small keys).
pub(crate) const WAKE_KEY: usize = usize::MAX - 1;

/// Wakes the loop waiting on a [`Poller`] (see the module documentation).
pub(crate) struct Notifier {
    #[cfg(target_os = "linux")]
    eventfd: std::os::fd::OwnedFd,
}

impl Notifier {
    /// A notifier for the loop waiting on `poller`.
    ///
    /// # Errors
    ///
    /// Creating or registering the eventfd failed (out of descriptors).
    pub(crate) fn new(poller: &Poller) -> io::Result<Notifier> {
        #[cfg(target_os = "linux")]
        {
            use rustix::event::{eventfd, EventfdFlags};
            let eventfd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
            // SAFETY: the eventfd is deleted from the poller before it is closed
            // (`Notifier::unregister`, called when the loop's shared half is dropped).
            unsafe {
                poller.add_with_mode(
                    &eventfd,
                    polling::Event::readable(WAKE_KEY),
                    polling::PollMode::Edge,
                )?;
            }
            Ok(Notifier { eventfd })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = poller;
            Ok(Notifier {})
        }
    }

    /// Ends the current or next wait on `poller`.
    ///
    /// # Errors
    ///
    /// The write to the eventfd (or `polling`'s notify) failed.
    pub(crate) fn notify(&self, poller: &Poller) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            let _ = poller;
            let one = 1u64.to_ne_bytes();
            match rustix::io::write(&self.eventfd, &one) {
                Ok(_) => Ok(()),
                // The counter is full (2^64 - 2 wakeups nobody read): empty it, write again.
                Err(rustix::io::Errno::AGAIN) => {
                    let mut count = [0u8; 8];
                    let _ = rustix::io::read(&self.eventfd, &mut count);
                    rustix::io::write(&self.eventfd, &one)?;
                    Ok(())
                }
                Err(e) => Err(e.into()),
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            poller.notify()
        }
    }

    /// Removes the eventfd from `poller` before it is closed.
    pub(crate) fn unregister(&self, poller: &Poller) {
        #[cfg(target_os = "linux")]
        if let Err(e) = poller.delete(&self.eventfd) {
            log::debug!(target: "ioloop", "failed to remove the wakeup eventfd: {e}");
        }
        #[cfg(not(target_os = "linux"))]
        let _ = poller;
    }
}

#[cfg(target_os = "linux")]
#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn wait(poller: &Poller, timeout: Duration) -> Vec<usize> {
        use rustix::event::epoll;
        let mut events = Vec::with_capacity(8);
        let millis = timeout.as_millis() as i64;
        let timeout = rustix::event::Timespec {
            tv_sec: millis / 1000,
            tv_nsec: (millis % 1000 * 1_000_000) as _,
        };
        epoll::wait(
            poller,
            rustix::buffer::spare_capacity(&mut events),
            Some(&timeout),
        )
        .unwrap();
        events
            .iter()
            .map(|event: &epoll::Event| event.data.u64() as usize)
            .collect()
    }

    #[test]
    fn a_wakeup_is_reported_once_and_none_is_lost() {
        let poller = Poller::new().unwrap();
        let notifier = Notifier::new(&poller).unwrap();
        // Sent while nobody waits: the next wait sees it at once.
        notifier.notify(&poller).unwrap();
        assert_eq!(wait(&poller, Duration::from_secs(5)), [WAKE_KEY]);
        // Reported once, though nothing read the eventfd: no spinning.
        assert!(wait(&poller, Duration::ZERO).is_empty());
        for _ in 0..3 {
            notifier.notify(&poller).unwrap();
            assert_eq!(wait(&poller, Duration::from_secs(5)), [WAKE_KEY]);
        }
        // From another thread, during the wait.
        std::thread::scope(|s| {
            s.spawn(|| notifier.notify(&poller).unwrap());
            assert_eq!(wait(&poller, Duration::from_secs(5)), [WAKE_KEY]);
        });
        notifier.unregister(&poller);
    }

    #[test]
    fn a_full_counter_is_emptied_and_the_wakeup_still_sent() {
        let poller = Poller::new().unwrap();
        let notifier = Notifier::new(&poller).unwrap();
        let almost_full = (u64::MAX - 1).to_ne_bytes();
        rustix::io::write(&notifier.eventfd, &almost_full).unwrap();
        assert_eq!(wait(&poller, Duration::from_secs(5)), [WAKE_KEY]);
        notifier.notify(&poller).unwrap();
        assert_eq!(wait(&poller, Duration::from_secs(5)), [WAKE_KEY]);
        notifier.unregister(&poller);
    }
}
