//! Worker threads posting results back to the loop thread through a [`Remote`].
//!
//! Four workers each sum a slice of a range. Each posts its result to the loop with
//! [`Remote::add_callback`]; the callback runs on the loop thread, which collects the
//! results and stops the loop once all four have arrived.
//!
//! Run it with:
//!
//! ```text
//! cargo run --example threads
//! ```

use std::cell::RefCell;
use std::ops::Range;
use std::thread;

use ioloop::{IoLoop, Remote};

const WORKERS: u64 = 4;
const PER_WORKER: u64 = 1_000_000;

thread_local! {
    /// The results collected so far. It belongs to the loop thread: callbacks posted
    /// through a `Remote` must be `Send`, so they cannot capture the loop thread's `Rc`s,
    /// but they run on the loop thread, so they can reach its thread-local state (no
    /// lock needed).
    static RESULTS: RefCell<Vec<(u64, u64)>> = const { RefCell::new(Vec::new()) };
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();

    let ioloop = IoLoop::new()?;

    let workers: Vec<_> = (0..WORKERS)
        .map(|id| {
            let remote = ioloop.remote(); // `Send + Sync + Clone`: one per worker
            thread::Builder::new()
                .name(format!("worker-{id}"))
                .spawn(move || work(id, remote))
        })
        .collect::<Result<_, _>>()?;

    // Runs until the last result arrives (see `collect`).
    ioloop.start()?;

    for worker in workers {
        worker.join().expect("a worker panicked");
    }

    // Check the total against Gauss: 0 + 1 + ... + (n - 1) = n (n - 1) / 2.
    let n = WORKERS * PER_WORKER;
    let total: u64 = RESULTS.with_borrow(|results| results.iter().map(|&(_, sum)| sum).sum());
    assert_eq!(total, n * (n - 1) / 2);
    println!("total: {total} (= sum of 0..{n})");
    Ok(())
}

/// A worker: computes off the loop thread, then hands the result to the loop.
fn work(id: u64, remote: Remote) {
    let range: Range<u64> = id * PER_WORKER..(id + 1) * PER_WORKER;
    let sum: u64 = range.clone().sum();
    println!("[worker-{id}] computed the sum of {range:?}");
    // Only the result (plain `Send` data) crosses threads; the closure runs on the loop
    // thread on its next iteration. Posting fails only once the loop is closed or
    // dropped, which cannot happen before every result has arrived.
    remote
        .add_callback(move |ioloop| collect(ioloop, id, sum))
        .expect("the loop waits for every worker");
    // (A worker could also stop the loop itself with `remote.stop()`; stopping on the
    // loop thread once every result is in is simpler to reason about.)
}

/// Runs on the loop thread: records one result, and stops the loop after the last one.
fn collect(ioloop: &IoLoop, id: u64, sum: u64) {
    let received = RESULTS.with_borrow_mut(|results| {
        results.push((id, sum));
        results.len()
    });
    let on = thread::current();
    println!(
        "[{}] result {received}/{WORKERS}: worker-{id} says {sum}",
        on.name().unwrap_or("loop")
    );
    if received as u64 == WORKERS {
        ioloop.stop();
    }
}
