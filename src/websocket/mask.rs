//! Unpredictable bytes for a client's masking keys and handshake keys (RFC 6455 §5.3,
//! §10.3): SipHash, keyed with the standard library's random keys (read from the OS), of
//! a counter. SipHash is a keyed pseudo-random function: without the 128-bit key, the
//! next output cannot be told from what was seen. No extra dependency is needed.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

/// A source of masking keys, one per client connection.
pub(crate) struct MaskSource {
    /// The secret key (random from the OS per thread, then varied per `RandomState`).
    key: RandomState,
    counter: u64,
}

impl MaskSource {
    pub(crate) fn new() -> MaskSource {
        MaskSource {
            key: RandomState::new(),
            counter: 0,
        }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.counter = self.counter.wrapping_add(1);
        self.key.hash_one(self.counter)
    }

    pub(crate) fn next_mask(&mut self) -> [u8; 4] {
        (self.next_u64() as u32).to_ne_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::MaskSource;

    #[test]
    fn sources_differ_and_do_not_repeat_soon() {
        let (mut a, mut b) = (MaskSource::new(), MaskSource::new());
        let first: Vec<u64> = (0..100).map(|_| a.next_u64()).collect();
        assert_ne!(first[0], b.next_u64());
        let mut sorted = first.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), first.len());
    }
}
