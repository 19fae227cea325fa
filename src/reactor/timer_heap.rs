//! The timer heap: pending timeouts ordered by `(deadline, insertion order)`, with
//! cancellation that frees the closure at once and compaction that bounds memory.
//!
//! A timeout lives in two places: its closure in a [`Slab`] slot (so
//! [`IoLoop::remove_timeout`](crate::IoLoop::remove_timeout) is O(1) and drops the closure
//! immediately) and a small `(deadline, seq, slot)` entry in a binary heap. Cancelling
//! leaves the heap entry behind; it is recognised as stale because its `seq` no longer
//! matches the slot. Stale entries are popped when they reach the top, and the heap is
//! rebuilt from live entries once more than [`COMPACT_MIN`] of them make up over half of
//! it (Tornado's rule), so a program that adds and cancels far-future timers forever uses
//! bounded memory: outside a batch the heap never holds more than
//! `max(2 × live, live + COMPACT_MIN)` entries.
//!
//! Firing touches each slot once: collecting due entries only pops the heap (stale ones
//! included), and taking the closure checks the `seq`. The number of stale entries is
//! derived, not stored per slot: every live timeout has exactly one entry either in the
//! heap or in the due batch being run, so `heap + in_flight - live` counts the stale ones
//! exactly once the batch is done. While a batch runs that count also includes cancelled
//! entries of the batch itself, which compaction cannot remove, so compaction waits for
//! the end of the batch (the last [`TimerHeap::take_due`]); a batch whose callbacks
//! remove many timeouts therefore costs one compaction at most, not one per removal, and
//! a mass firing that leaves the heap mostly stale is compacted right after it.
//!
//! Deadlines are signed nanoseconds from the heap's epoch, so deadlines before the loop
//! was created keep their order. Each heap has its own id, carried by its [`Timeout`]
//! handles, so a handle from another loop never matches.
//!
//! A large due batch is not popped one entry at a time: each pop walks the heap from top
//! to bottom, a cache miss per level once the heap outgrows the cache. After
//! [`bulk_threshold`] pops the rest of the batch is taken in one pass over the heap's
//! storage: the due entries are moved out and sorted, and the heap is rebuilt from the
//! others in linear time. The order is the same either way.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};
use std::time::{Duration, Instant};

use slab::Slab;

/// Stale heap entries tolerated before compaction is considered (Tornado uses 512).
pub(crate) const COMPACT_MIN: usize = 512;

/// How many due entries [`TimerHeap::collect_due`] pops one by one before it takes the
/// rest in bulk: a sixty-fourth of the heap, at least 64. Popping that many already cost
/// more memory traffic than the linear pass over the heap that the bulk path makes, so
/// the bulk path at most doubles the cost of a batch that turns out barely larger.
fn bulk_threshold(heap_len: usize) -> usize {
    (heap_len / 64).max(64)
}

/// A handle to a pending timeout, returned by
/// [`IoLoop::add_timeout`](crate::IoLoop::add_timeout) and friends.
///
/// It is a plain `Copy` token: passing it to
/// [`IoLoop::remove_timeout`](crate::IoLoop::remove_timeout) after the timeout fired,
/// twice, or on another loop than the one that made it, does nothing.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let ioloop = ioloop::IoLoop::new()?;
/// let timeout = ioloop.call_later(Duration::from_secs(3600), |_| unreachable!());
/// assert!(ioloop.remove_timeout(timeout));
/// assert!(!ioloop.remove_timeout(timeout));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timeout {
    /// The heap (so the loop) that made it; 0 for a timeout never added.
    heap: u32,
    slot: u32,
    seq: u64,
}

/// A point in time accepted by [`IoLoop::add_timeout`](crate::IoLoop::add_timeout): an
/// absolute [`Instant`] or a [`Duration`] from the loop's current time (Tornado accepted a
/// float deadline or a `timedelta`).
///
/// # Examples
///
/// ```
/// use ioloop::Deadline;
/// use std::time::{Duration, Instant};
///
/// let now = Instant::now();
/// assert_eq!(Duration::from_secs(1).resolve(now), now + Duration::from_secs(1));
/// assert_eq!(now.resolve(now + Duration::from_secs(9)), now);
/// ```
pub trait Deadline {
    /// The absolute deadline, given the loop's current time `now`.
    fn resolve(self, now: Instant) -> Instant;
}

impl Timeout {
    /// The handle of a timeout that was never added (its loop was closed): removing it
    /// does nothing.
    pub(crate) fn never_added() -> Timeout {
        Timeout {
            heap: 0,
            slot: u32::MAX,
            seq: u64::MAX,
        }
    }
}

impl Deadline for Instant {
    fn resolve(self, _now: Instant) -> Instant {
        self
    }
}

impl Deadline for Duration {
    fn resolve(self, now: Instant) -> Instant {
        now.checked_add(self).unwrap_or_else(|| far_future(now))
    }
}

/// A deadline so far away that it never fires in practice (about 30 years).
fn far_future(now: Instant) -> Instant {
    now + Duration::from_secs(86_400 * 365 * 30)
}

/// One heap entry: 24 bytes. Deadlines are signed nanoseconds from the heap's epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HeapEntry {
    deadline_ns: i64,
    seq: u64,
    slot: u32,
}

impl Ord for HeapEntry {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest deadline first and,
    /// among equal deadlines, the one added first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.deadline_ns, other.seq).cmp(&(self.deadline_ns, self.seq))
    }
}

impl PartialOrd for HeapEntry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug)]
struct TimerSlot<T> {
    seq: u64,
    callback: T,
}

/// The ids of heaps made so far in this process (0 is never used).
static HEAPS_MADE: AtomicU32 = AtomicU32::new(0);

/// The loop's pending timeouts, each holding a `T` (the loop's callback). Not
/// thread-safe; owned by the loop.
#[derive(Debug)]
pub(crate) struct TimerHeap<T> {
    /// This heap's id, in each of its [`Timeout`]s.
    id: u32,
    epoch: Instant,
    heap: BinaryHeap<HeapEntry>,
    slots: Slab<TimerSlot<T>>,
    /// Entries popped by [`TimerHeap::collect_due`] and not yet passed to
    /// [`TimerHeap::take_due`].
    in_flight: usize,
    next_seq: u64,
    /// Compactions so far (for tests of the compaction policy).
    compactions: u64,
}

impl<T> TimerHeap<T> {
    pub(crate) fn new(epoch: Instant) -> TimerHeap<T> {
        // Wrapping after 2^32 heaps could only make a handle kept across four billion
        // loops match again; 0 is skipped either way.
        let id = HEAPS_MADE
            .fetch_add(1, AtomicOrdering::Relaxed)
            .wrapping_add(1)
            .max(1);
        TimerHeap {
            id,
            epoch,
            heap: BinaryHeap::new(),
            slots: Slab::new(),
            in_flight: 0,
            next_seq: 0,
            compactions: 0,
        }
    }

    /// `t` as signed nanoseconds from the epoch (saturating at about ±292 years).
    fn to_ns(&self, t: Instant) -> i64 {
        match t.checked_duration_since(self.epoch) {
            Some(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
            None => {
                let before = self.epoch.duration_since(t).as_nanos();
                i64::try_from(before).map_or(i64::MIN, |ns| -ns)
            }
        }
    }

    fn to_instant(&self, ns: i64) -> Instant {
        let offset = Duration::from_nanos(ns.unsigned_abs());
        if ns >= 0 {
            self.epoch + offset
        } else {
            self.epoch - offset
        }
    }

    fn timeout(&self, e: &HeapEntry) -> Timeout {
        Timeout {
            heap: self.id,
            slot: e.slot,
            seq: e.seq,
        }
    }

    /// Adds a timeout firing at `deadline`.
    pub(crate) fn insert(&mut self, deadline: Instant, callback: T) -> Timeout {
        let seq = self.next_seq;
        self.next_seq += 1;
        let slot = self.slots.insert(TimerSlot { seq, callback });
        let slot = u32::try_from(slot).expect("more than 2^32 pending timeouts");
        let entry = HeapEntry {
            deadline_ns: self.to_ns(deadline),
            seq,
            slot,
        };
        self.heap.push(entry);
        self.timeout(&entry)
    }

    fn take_slot(&mut self, timeout: Timeout) -> Option<T> {
        if !self.contains(timeout) {
            return None;
        }
        Some(self.slots.remove(timeout.slot as usize).callback)
    }

    /// Whether `timeout` is one of this heap's and pending: neither fired nor removed.
    pub(crate) fn contains(&self, timeout: Timeout) -> bool {
        timeout.heap == self.id
            && self
                .slots
                .get(timeout.slot as usize)
                .is_some_and(|s| s.seq == timeout.seq)
    }

    /// Cancels a pending timeout and returns its closure, or `None` if it already fired or
    /// was removed. The caller drops the closure after releasing its borrow of the heap.
    pub(crate) fn remove(&mut self, timeout: Timeout) -> Option<T> {
        let callback = self.take_slot(timeout)?;
        self.maybe_compact();
        Some(callback)
    }

    /// Takes the closure of an entry from the due batch, `None` if it was cancelled (or
    /// was already stale when collected). The last entry of a batch ends it: the heap
    /// is compacted then if the batch left it mostly stale.
    pub(crate) fn take_due(&mut self, timeout: Timeout) -> Option<T> {
        self.in_flight -= 1;
        let callback = self.take_slot(timeout);
        if self.in_flight == 0 {
            self.maybe_compact();
        }
        callback
    }

    /// Heap entries whose timeout was cancelled (while a batch runs, the batch's own
    /// cancelled entries too).
    fn stale(&self) -> usize {
        self.heap.len() + self.in_flight - self.slots.len()
    }

    /// Rebuilds the heap from its live entries once stale ones are more than
    /// [`COMPACT_MIN`] and more than half of it; never while a batch is out (see the
    /// module documentation).
    fn maybe_compact(&mut self) {
        if self.in_flight > 0 {
            return;
        }
        let stale = self.stale();
        if stale > COMPACT_MIN && stale * 2 > self.heap.len() {
            let slots = &self.slots;
            self.heap
                .retain(|e| slots.get(e.slot as usize).is_some_and(|s| s.seq == e.seq));
            self.compactions += 1;
        }
    }

    fn is_live(&self, e: &HeapEntry) -> bool {
        self.slots
            .get(e.slot as usize)
            .is_some_and(|s| s.seq == e.seq)
    }

    /// Pops stale entries off the top of the heap.
    fn drop_stale_head(&mut self) {
        while let Some(top) = self.heap.peek() {
            if self.is_live(top) {
                break;
            }
            self.heap.pop();
        }
    }

    /// Moves every entry with `deadline <= now` out of the heap into `due`, in firing
    /// order, without looking at the slots: stale entries come along and are skipped by
    /// [`TimerHeap::take_due`], as is a timeout cancelled after collection (by a callback
    /// or an earlier timer of the same iteration). Each collected entry must be passed to
    /// `take_due` exactly once.
    pub(crate) fn collect_due(&mut self, now: Instant, due: &mut Vec<Timeout>) {
        let now_ns = self.to_ns(now);
        let before = due.len();
        let mut pops_left = bulk_threshold(self.heap.len());
        while let Some(top) = self.heap.peek() {
            if top.deadline_ns > now_ns {
                break;
            }
            if pops_left == 0 {
                self.collect_due_in_bulk(now_ns, due);
                break;
            }
            pops_left -= 1;
            let e = self.heap.pop().expect("peeked");
            due.push(self.timeout(&e));
        }
        self.in_flight += due.len() - before;
    }

    /// Moves every entry due at `now_ns` into `due`, in firing order: one pass over the
    /// heap's storage moves the due entries to its end, they are sorted there, and the
    /// heap is rebuilt from the others in linear time. Allocates nothing but the growth of
    /// `due`.
    fn collect_due_in_bulk(&mut self, now_ns: i64, due: &mut Vec<Timeout>) {
        let mut entries = std::mem::take(&mut self.heap).into_vec();
        let mut pending = 0;
        for i in 0..entries.len() {
            if entries[i].deadline_ns > now_ns {
                entries.swap(pending, i);
                pending += 1;
            }
        }
        // `Ord` is reversed for the max-heap: descending by it is firing order.
        entries[pending..].sort_unstable_by(|a, b| b.cmp(a));
        due.extend(entries[pending..].iter().map(|e| self.timeout(e)));
        entries.truncate(pending);
        self.heap = BinaryHeap::from(entries);
    }

    /// The earliest pending deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        self.drop_stale_head();
        self.heap.peek().map(|e| self.to_instant(e.deadline_ns))
    }

    /// Whether any timeout is pending (collected-but-not-run ones included).
    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Number of pending timeouts.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Number of heap entries, stale ones included (for memory accounting).
    pub(crate) fn heap_entries(&self) -> usize {
        self.heap.len()
    }

    /// Removes every timeout; the caller drops the returned closures.
    pub(crate) fn take_all(&mut self) -> Vec<T> {
        self.heap.clear();
        self.in_flight = 0;
        self.slots.drain().map(|s| s.callback).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Callback = crate::reactor::queue::Callback;

    fn cb() -> Callback {
        Callback::new(Box::new(|_| {}))
    }

    #[test]
    fn heap_entry_is_24_bytes() {
        assert_eq!(std::mem::size_of::<HeapEntry>(), 24);
    }

    #[test]
    fn slots_are_32_bytes() {
        assert_eq!(std::mem::size_of::<TimerSlot<Callback>>(), 32);
    }

    #[test]
    fn equal_deadlines_collect_in_insertion_order() {
        let t0 = Instant::now();
        let mut heap = TimerHeap::<Callback>::new(t0);
        let d = t0 + Duration::from_secs(1);
        let ids: Vec<_> = (0..100).map(|_| heap.insert(d, cb())).collect();
        let mut due = Vec::new();
        heap.collect_due(d, &mut due);
        assert_eq!(due, ids);
    }

    /// Deadlines in pseudo-random order with many ties, some cancelled.
    fn scrambled_heap(n: u64) -> (TimerHeap<Callback>, Vec<(u64, Timeout)>, Instant) {
        let t0 = Instant::now();
        let mut heap = TimerHeap::<Callback>::new(t0);
        let mut live = Vec::new();
        for i in 0..n {
            let ms = (i * 7919) % 1000;
            let t = heap.insert(t0 + Duration::from_millis(ms), cb());
            if i % 3 == 0 {
                heap.remove(t);
            } else {
                live.push((ms, t));
            }
        }
        // Firing order: by deadline, then by insertion (`seq` grows with `i`).
        live.sort_by_key(|&(ms, t)| (ms, t.seq));
        (heap, live, t0)
    }

    /// Collects what is due at `t0 + ms` and returns the live timeouts, in order.
    fn fire_until(heap: &mut TimerHeap<Callback>, t0: Instant, ms: u64) -> Vec<Timeout> {
        let mut due = Vec::new();
        heap.collect_due(t0 + Duration::from_millis(ms), &mut due);
        due.into_iter()
            .filter(|&t| heap.take_due(t).is_some())
            .collect()
    }

    #[test]
    fn a_bulk_collection_keeps_firing_order_and_the_rest_of_the_heap() {
        let (mut heap, live, t0) = scrambled_heap(30_000);
        // More than `bulk_threshold` entries are due at 499 ms: the bulk path runs.
        let first = fire_until(&mut heap, t0, 499);
        assert!(first.len() > bulk_threshold(30_000) * 2);
        let expected: Vec<_> = live.iter().map(|&(_, t)| t).collect();
        assert_eq!(first, expected[..first.len()]);
        assert!(live[first.len()].0 >= 500);
        // The rebuilt heap still pops the rest in order, one at a time.
        let next = heap.next_deadline().expect("timeouts are left");
        assert_eq!(next, t0 + Duration::from_millis(live[first.len()].0));
        let second = fire_until(&mut heap, t0, 500);
        let third = fire_until(&mut heap, t0, 999);
        let rest: Vec<_> = second.into_iter().chain(third).collect();
        assert_eq!(rest, expected[first.len()..]);
        assert!(heap.is_empty());
        assert_eq!(heap.stale(), 0);
    }

    #[test]
    fn a_batch_below_the_bulk_threshold_pops_in_firing_order() {
        let (mut heap, live, t0) = scrambled_heap(30_000);
        let entries = heap.heap_entries();
        let due = fire_until(&mut heap, t0, 0);
        assert!(!due.is_empty() && due.len() < bulk_threshold(entries));
        assert_eq!(
            due,
            live[..due.len()]
                .iter()
                .map(|&(_, t)| t)
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn cancelling_after_collection_keeps_the_stale_count_exact() {
        let t0 = Instant::now();
        let mut heap = TimerHeap::<Callback>::new(t0);
        let a = heap.insert(t0, cb());
        let mut due = Vec::new();
        heap.collect_due(t0, &mut due);
        assert!(heap.remove(a).is_some());
        // The rest of the batch: the cancelled entry is skipped.
        assert!(heap.take_due(a).is_none());
        assert_eq!(heap.stale(), 0);
        assert!(heap.remove(a).is_none());
    }

    #[test]
    fn stale_entries_collected_with_a_batch_are_skipped_and_counted_out() {
        let t0 = Instant::now();
        let mut heap = TimerHeap::<Callback>::new(t0);
        let cancelled = heap.insert(t0, cb());
        let live = heap.insert(t0, cb());
        heap.remove(cancelled);
        assert_eq!(heap.stale(), 1);
        let mut due = Vec::new();
        heap.collect_due(t0, &mut due);
        assert_eq!(due, [cancelled, live]);
        assert!(heap.take_due(cancelled).is_none());
        assert!(heap.take_due(live).is_some());
        assert_eq!(heap.stale(), 0);
        assert!(heap.is_empty());
    }

    /// Runs a whole due batch at `now` as the loop does, calling `during` after each
    /// entry; returns the live timeouts that fired.
    fn run_batch(
        heap: &mut TimerHeap<Callback>,
        now: Instant,
        mut during: impl FnMut(&mut TimerHeap<Callback>, Timeout),
    ) -> usize {
        let mut due = Vec::new();
        heap.collect_due(now, &mut due);
        let mut fired = 0;
        for t in due {
            if heap.take_due(t).is_some() {
                fired += 1;
                during(heap, t);
            }
        }
        fired
    }

    #[test]
    fn removals_inside_a_batch_with_many_cancelled_entries_do_not_compact_each_time() {
        let t0 = Instant::now();
        let far = t0 + Duration::from_secs(3600);
        let mut heap = TimerHeap::<Callback>::new(t0);
        let pending: Vec<_> = (0..100_000).map(|_| heap.insert(far, cb())).collect();
        let cancelled: Vec<_> = (0..60_000).map(|_| heap.insert(t0, cb())).collect();
        for _ in 0..20_000 {
            heap.insert(t0, cb());
        }
        for t in cancelled {
            heap.remove(t);
        }
        let compactions_before = heap.compactions;
        // Each of the 20 000 due callbacks removes one far-future timeout.
        let mut to_remove = pending.into_iter();
        let fired = run_batch(&mut heap, t0, |heap, _| {
            heap.remove(to_remove.next().unwrap());
        });
        assert_eq!(fired, 20_000);
        assert!(
            heap.compactions - compactions_before <= 1,
            "{} compactions for one batch",
            heap.compactions - compactions_before
        );
        assert_eq!(heap.len(), 80_000);
        assert_eq!(heap.stale(), 20_000);
    }

    #[test]
    fn a_mass_firing_that_leaves_the_heap_mostly_stale_is_compacted_after_the_batch() {
        let t0 = Instant::now();
        let far = t0 + Duration::from_secs(3600);
        let mut heap = TimerHeap::<Callback>::new(t0);
        for _ in 0..200_000 {
            heap.insert(t0, cb());
        }
        let doomed: Vec<_> = (0..100_000).map(|_| heap.insert(far, cb())).collect();
        let kept = heap.insert(far, cb());
        for t in doomed {
            heap.remove(t); // a third of the heap: below the compaction threshold
        }
        assert_eq!(run_batch(&mut heap, t0, |_, _| {}), 200_000);
        let live = heap.len();
        assert_eq!(live, 1);
        assert!(
            heap.heap_entries() <= (2 * live).max(live + COMPACT_MIN),
            "{} heap entries for {live} live timeout",
            heap.heap_entries()
        );
        assert!(heap.remove(kept).is_some());
    }

    #[test]
    fn deadlines_before_the_epoch_keep_their_order() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut heap = TimerHeap::<Callback>::new(t0);
        let one_ms_before = heap.insert(t0 - Duration::from_millis(1), cb());
        let five_ms_before = heap.insert(t0 - Duration::from_millis(5), cb());
        let at_epoch = heap.insert(t0, cb());
        assert_eq!(
            heap.next_deadline(),
            Some(t0 - Duration::from_millis(5)),
            "a deadline before the epoch comes back exactly"
        );
        let mut due = Vec::new();
        heap.collect_due(t0, &mut due);
        assert_eq!(due, [five_ms_before, one_ms_before, at_epoch]);
    }

    #[test]
    fn a_handle_from_another_heap_never_matches() {
        let t0 = Instant::now();
        let mut a = TimerHeap::<Callback>::new(t0);
        let mut b = TimerHeap::<Callback>::new(t0);
        let in_a = a.insert(t0, cb());
        let in_b = b.insert(t0, cb());
        assert_ne!(in_a, in_b, "same slot and sequence, different heaps");
        assert!(!a.contains(in_b));
        assert!(a.remove(in_b).is_none());
        assert!(a.contains(in_a));
        assert!(!a.contains(Timeout::never_added()));
    }

    #[test]
    fn compaction_bounds_the_heap() {
        let t0 = Instant::now();
        let mut heap = TimerHeap::<Callback>::new(t0);
        let far = t0 + Duration::from_secs(1_000_000);
        let keep = heap.insert(far, cb());
        for _ in 0..100_000 {
            let t = heap.insert(far, cb());
            heap.remove(t);
            assert!(heap.heap_entries() <= 2 * COMPACT_MIN + 2);
        }
        assert_eq!(heap.len(), 1);
        assert_eq!(heap.next_deadline(), Some(heap.to_instant(heap.to_ns(far))));
        assert!(heap.remove(keep).is_some());
    }
}
