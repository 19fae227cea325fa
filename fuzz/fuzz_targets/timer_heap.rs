//! The loop's timer heap against a model (a `BTreeMap` keyed by deadline and insertion
//! order) under arbitrary adds, removes, clock advances, and adds and removes from inside
//! a firing batch (as callbacks and earlier timeouts of the same iteration do).
//!
//! Properties, after every operation:
//! - a batch fires exactly the model's timeouts that were due when it was collected and
//!   not removed before their turn, in (deadline, insertion) order, each once;
//! - `remove` and `contains` answer as the model; the pending count and the next
//!   deadline are the model's;
//! - outside a batch the heap holds at most `max(2 × live, live + 512)` entries (stale
//!   entries are compacted away).

#![no_main]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use ioloop::fuzzing::timers::Timers;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Op {
    /// Add a timeout this many ms from now (negative: already due).
    Add(i16),
    /// Add this many timeouts at once, spread over a few deadlines.
    AddMany(u8, u8),
    /// Remove the handle at this index (of every handle ever made).
    Remove(u16),
    /// Remove this many handles (times 4) from this index on (stale entries pile up
    /// past the compaction threshold).
    RemoveMany(u16, u8),
    /// Advance the clock by this many ms and fire the due batch; the ops inside run
    /// between the batch's entries.
    Advance(u16, u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    ops: Vec<Op>,
    inside: Vec<Op>,
}

struct World {
    heap: Timers,
    model: BTreeMap<(Instant, u64), ()>,
    handles: Vec<(ioloop::Timeout, Instant, u64)>,
    epoch: Instant,
    now: Instant,
    next: u64,
}

impl World {
    fn add(&mut self, offset_ms: i64) {
        let deadline = if offset_ms >= 0 {
            self.now + Duration::from_millis(offset_ms as u64)
        } else {
            self.now
                .checked_sub(Duration::from_millis(offset_ms.unsigned_abs()))
                .unwrap_or(self.epoch)
        };
        let id = self.next;
        self.next += 1;
        let handle = self.heap.insert(deadline, id);
        assert!(self.heap.contains(handle));
        self.model.insert((deadline, id), ());
        self.handles.push((handle, deadline, id));
    }

    fn remove(&mut self, index: u16) {
        if self.handles.is_empty() {
            return;
        }
        let (handle, deadline, id) = self.handles[usize::from(index) % self.handles.len()];
        let pending = self.model.remove(&(deadline, id)).is_some();
        assert_eq!(self.heap.contains(handle), pending);
        assert_eq!(self.heap.remove(handle), pending.then_some(id));
        assert!(!self.heap.contains(handle));
    }

    fn apply(&mut self, op: Op, inside: &mut impl Iterator<Item = Op>) {
        match op {
            Op::Add(ms) => self.add(i64::from(ms)),
            // Enough to pass the compaction threshold (512 stale entries), bounded so a run
            // stays fast.
            Op::AddMany(n, spread) if self.handles.len() < 2048 => {
                for i in 0..u64::from(n) * 4 {
                    self.add((i % (u64::from(spread) + 1)) as i64);
                }
            }
            Op::AddMany(..) => {}
            Op::Remove(i) => self.remove(i),
            Op::RemoveMany(from, n) => {
                for i in 0..u16::from(n) * 4 {
                    self.remove(from.wrapping_add(i));
                }
            }
            Op::Advance(ms, ops_between) => {
                self.now += Duration::from_millis(u64::from(ms));
                let mut due = Vec::new();
                self.heap.collect_due(self.now, &mut due);
                // The model's due batch, in firing order; fixed at collection.
                let expected: Vec<(Instant, u64)> = self
                    .model
                    .range(..=(self.now, u64::MAX))
                    .map(|(k, ())| *k)
                    .collect();
                let mut fired = Vec::new();
                for (i, timeout) in due.iter().enumerate() {
                    if let Some(id) = self.heap.take_due(*timeout) {
                        fired.push(id);
                        let key = self.handles[id as usize].1;
                        assert!(key <= self.now, "fired before its deadline");
                        assert!(
                            self.model.remove(&(key, id)).is_some(),
                            "fired twice or after removal"
                        );
                    }
                    if i % 4 == 0 {
                        for _ in 0..ops_between % 4 {
                            match inside.next() {
                                Some(Op::Add(ms)) => self.add(i64::from(ms)),
                                Some(Op::Remove(r)) => self.remove(r),
                                _ => {}
                            }
                        }
                    }
                }
                // Whatever was due at collection and is still in the model was skipped.
                for key in &expected {
                    assert!(
                        !self.model.contains_key(key) || key.0 > self.now,
                        "a due timeout did not fire: {key:?}"
                    );
                }
                let mut in_order = fired.clone();
                in_order.sort_by_key(|id| (self.handles[*id as usize].1, *id));
                assert_eq!(fired, in_order, "fired out of (deadline, insertion) order");
            }
        }
        self.check();
    }

    fn check(&mut self) {
        let live = self.model.len();
        assert_eq!(self.heap.len(), live);
        assert_eq!(self.heap.is_empty(), live == 0);
        assert_eq!(
            self.heap.next_deadline(),
            self.model.keys().next().map(|k| k.0)
        );
        let entries = self.heap.heap_entries();
        assert!(
            entries <= (2 * live).max(live + 512) + 1,
            "{entries} entries for {live} live"
        );
    }
}

fuzz_target!(|input: Input| {
    let epoch = Instant::now();
    let mut world = World {
        heap: Timers::new(epoch),
        model: BTreeMap::new(),
        handles: Vec::new(),
        epoch,
        now: epoch,
        next: 0,
    };
    let mut inside = input.inside.into_iter().cycle().take(4096);
    for op in input.ops.into_iter().take(512) {
        world.apply(op, &mut inside);
    }
});
