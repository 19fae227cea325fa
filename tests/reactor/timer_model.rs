//! A randomized model test of timeouts and callbacks: random interleavings of adds and
//! removes (duplicate deadlines, past, far-future and pre-creation deadlines, handles of
//! another loop), callbacks and timeouts that add and remove timeouts themselves, clock
//! advances and zero-wait steps, checked against a simple model after every step:
//!
//! - a timeout never fires before its deadline, and fires at most once;
//! - a removed timeout never fires, and `remove_timeout` says whether it was pending;
//! - a step fires exactly the timeouts that were due when it began and not removed before
//!   their turn, in `(deadline, insertion order)`;
//! - a step runs exactly the callbacks queued before it began, first-in first-out, and
//!   before any timeout;
//! - the heap never holds more than `max(2 × live, live + 512)` entries between steps.
//!
//! Seeded and reproducible. `IOLOOP_MODEL_SEEDS` (default 6) and `IOLOOP_MODEL_STEPS`
//! (default 2000 per seed) make the run longer; `IOLOOP_MODEL_SEED=N` runs one seed.

use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

use ioloop::{IoLoop, ManualClock, PanicPolicy, Timeout};

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Removed,
    Fired,
}

struct ModelTimeout {
    deadline: Instant,
    /// Insertion order, across the whole run.
    seq: u64,
    handle: Timeout,
    state: State,
}

#[derive(Debug, Clone, Copy)]
enum Event {
    Fired { id: usize, at: Instant },
    Removed(usize),
    CallbackRan(usize),
}

struct Model {
    rng: Rng,
    created: Instant,
    timeouts: Vec<ModelTimeout>,
    next_seq: u64,
    log: Vec<Event>,
    /// Callbacks added and not yet run, in the order they were added.
    callbacks: VecDeque<usize>,
    next_callback: usize,
    /// A pending timeout of another loop, whose handle must never touch this one.
    foreign: Timeout,
    /// Set for the final drain: callbacks and timeouts stop adding work.
    quiet: bool,
}

type Shared = Rc<RefCell<Model>>;

/// A deadline of one of the interesting kinds.
fn random_deadline(model: &mut Model, now: Instant) -> Instant {
    let rng = &mut model.rng;
    match rng.below(8) {
        0 => now,
        1 => now - Duration::from_micros(rng.below(5_000)),
        2 => model.created - Duration::from_micros(1 + rng.below(100_000)),
        3 => now + Duration::from_secs(3600 + rng.below(3600)),
        4 if !model.timeouts.is_empty() => {
            let i = rng.below(model.timeouts.len() as u64) as usize;
            model.timeouts[i].deadline // a duplicate deadline
        }
        _ => now + Duration::from_micros(rng.below(40_000)),
    }
}

fn add_timeout(ioloop: &IoLoop, shared: &Shared) {
    let now = ioloop.time();
    let (id, deadline) = {
        let mut model = shared.borrow_mut();
        let deadline = random_deadline(&mut model, now);
        (model.timeouts.len(), deadline)
    };
    let on_fire = shared.clone();
    let handle = ioloop.add_timeout(deadline, move |ioloop| {
        on_fire.borrow_mut().log.push(Event::Fired {
            id,
            at: ioloop.time(),
        });
        {
            let mut model = on_fire.borrow_mut();
            assert_eq!(
                model.timeouts[id].state,
                State::Pending,
                "timeout {id} fired twice or after removal"
            );
            model.timeouts[id].state = State::Fired;
        }
        act(ioloop, &on_fire);
    });
    let mut model = shared.borrow_mut();
    let seq = model.next_seq;
    model.next_seq += 1;
    model.timeouts.push(ModelTimeout {
        deadline,
        seq,
        handle,
        state: State::Pending,
    });
}

fn remove_timeout(ioloop: &IoLoop, shared: &Shared) {
    let (id, handle, was_pending) = {
        let mut model = shared.borrow_mut();
        if model.timeouts.is_empty() {
            return;
        }
        let count = model.timeouts.len() as u64;
        let id = model.rng.below(count) as usize;
        let t = &model.timeouts[id];
        (id, t.handle, t.state == State::Pending)
    };
    let removed = ioloop.remove_timeout(handle);
    assert_eq!(removed, was_pending, "remove_timeout({id}) said {removed}");
    if removed {
        let mut model = shared.borrow_mut();
        model.timeouts[id].state = State::Removed;
        model.log.push(Event::Removed(id));
    }
}

fn add_callback(ioloop: &IoLoop, shared: &Shared) {
    let id = {
        let mut model = shared.borrow_mut();
        let id = model.next_callback;
        model.next_callback += 1;
        model.callbacks.push_back(id);
        id
    };
    let on_run = shared.clone();
    ioloop.add_callback(move |ioloop| {
        {
            let mut model = on_run.borrow_mut();
            assert_eq!(
                model.callbacks.pop_front(),
                Some(id),
                "callbacks out of order"
            );
            model.log.push(Event::CallbackRan(id));
        }
        act(ioloop, &on_run);
    });
}

/// What a callback or a timeout does when it runs: sometimes add or remove timeouts.
fn act(ioloop: &IoLoop, shared: &Shared) {
    if shared.borrow().quiet {
        return;
    }
    let roll = shared.borrow_mut().rng.below(10);
    match roll {
        0..=2 => add_timeout(ioloop, shared),
        3..=4 => remove_timeout(ioloop, shared),
        5 => add_callback(ioloop, shared),
        _ => {}
    }
}

/// Steps the loop once and checks the step against the model.
fn step_and_check(ioloop: &IoLoop, shared: &Shared) {
    let now = ioloop.time();
    let (due, queued, log_start) = {
        let model = shared.borrow();
        let mut due: Vec<(Instant, u64, usize)> = model
            .timeouts
            .iter()
            .enumerate()
            .filter(|(_, t)| t.state == State::Pending && t.deadline <= now)
            .map(|(id, t)| (t.deadline, t.seq, id))
            .collect();
        due.sort();
        let queued: Vec<usize> = model.callbacks.iter().copied().collect();
        (due, queued, model.log.len())
    };
    ioloop.run_once(Duration::ZERO).unwrap();
    let model = shared.borrow();
    let events = &model.log[log_start..];

    let ran: Vec<usize> = events
        .iter()
        .filter_map(|e| match e {
            Event::CallbackRan(id) => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(
        ran, queued,
        "a step runs exactly the callbacks queued before it"
    );
    if let Some(first_fired) = events.iter().position(|e| matches!(e, Event::Fired { .. })) {
        assert!(
            !events[first_fired..]
                .iter()
                .any(|e| matches!(e, Event::CallbackRan(_))),
            "callbacks run before timeouts"
        );
    }

    let due_ids: HashSet<usize> = due.iter().map(|&(_, _, id)| id).collect();
    let mut removed = HashSet::new();
    let mut fired = Vec::new();
    for event in events {
        match *event {
            Event::Removed(id) => {
                removed.insert(id);
            }
            Event::Fired { id, at } => {
                assert!(
                    due_ids.contains(&id),
                    "timeout {id} fired but was not due when the step began"
                );
                assert!(
                    !removed.contains(&id),
                    "timeout {id} fired after its removal"
                );
                let t = &model.timeouts[id];
                assert!(at >= t.deadline, "timeout {id} fired early");
                fired.push((t.deadline, t.seq, id));
            }
            Event::CallbackRan(_) => {}
        }
    }
    let mut in_order = fired.clone();
    in_order.sort();
    assert_eq!(
        fired, in_order,
        "timeouts fire in (deadline, insertion) order"
    );
    let fired_ids: HashSet<usize> = fired.iter().map(|&(_, _, id)| id).collect();
    for &(_, _, id) in &due {
        assert!(
            fired_ids.contains(&id) || removed.contains(&id),
            "timeout {id} was due and neither fired nor removed"
        );
    }
    check_pending_and_heap(ioloop, &model);
}

fn check_pending_and_heap(ioloop: &IoLoop, model: &Model) {
    let live = model
        .timeouts
        .iter()
        .filter(|t| t.state == State::Pending)
        .count();
    let stats = ioloop.stats();
    assert_eq!(stats.timeouts_pending, live);
    assert!(
        stats.timer_heap_entries <= (2 * live).max(live + 512),
        "{} heap entries for {live} live timeouts",
        stats.timer_heap_entries
    );
}

fn run_seed(seed: u64, steps: usize) {
    let clock = ManualClock::new();
    let ioloop = IoLoop::builder()
        .clock(clock.clone())
        .panic_policy(PanicPolicy::Propagate)
        .build()
        .unwrap();
    let other = IoLoop::new().unwrap();
    let foreign = other.call_later(Duration::from_secs(3600), |_| {});
    let shared: Shared = Rc::new(RefCell::new(Model {
        rng: Rng::new(seed),
        created: clock.now(),
        timeouts: Vec::new(),
        next_seq: 0,
        log: Vec::new(),
        callbacks: VecDeque::new(),
        next_callback: 0,
        foreign,
        quiet: false,
    }));
    for _ in 0..steps {
        let roll = shared.borrow_mut().rng.below(100);
        match roll {
            0..=34 => add_timeout(&ioloop, &shared),
            35..=49 => remove_timeout(&ioloop, &shared),
            50..=57 => add_callback(&ioloop, &shared),
            58..=59 => {
                let foreign = shared.borrow().foreign;
                assert!(
                    !ioloop.remove_timeout(foreign),
                    "another loop's handle matched"
                );
            }
            60..=74 => {
                let by = {
                    let rng = &mut shared.borrow_mut().rng;
                    if rng.chance(5) {
                        Duration::from_secs(1 + rng.below(7200))
                    } else {
                        Duration::from_micros(rng.below(15_000))
                    }
                };
                clock.advance(by);
            }
            75..=79 => {
                // A burst of same-deadline timeouts, a third of them removed at once.
                let burst = 1 + shared.borrow_mut().rng.below(600);
                for i in 0..burst {
                    add_timeout(&ioloop, &shared);
                    if i % 3 == 0 {
                        remove_timeout(&ioloop, &shared);
                    }
                }
            }
            _ => step_and_check(&ioloop, &shared),
        }
        check_pending_and_heap(&ioloop, &shared.borrow());
    }
    // Drain: with no more work added, everything still pending fires once the clock
    // passes every deadline.
    shared.borrow_mut().quiet = true;
    clock.advance(Duration::from_secs(86_400 * 365 * 31));
    for _ in 0..2 {
        step_and_check(&ioloop, &shared);
    }
    let model = shared.borrow();
    assert!(model.timeouts.iter().all(|t| t.state != State::Pending));
    assert!(
        other.remove_timeout(model.foreign),
        "the other loop's timeout is still its own"
    );
}

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn timeouts_and_callbacks_match_the_model_under_random_interleavings() {
    let steps = env("IOLOOP_MODEL_STEPS").unwrap_or(2000) as usize;
    let seeds: Vec<u64> = match env("IOLOOP_MODEL_SEED") {
        Some(seed) => vec![seed],
        None => (0..env("IOLOOP_MODEL_SEEDS").unwrap_or(6)).collect(),
    };
    for seed in seeds {
        println!("seed {seed}, {steps} steps");
        run_seed(seed, steps);
    }
}
