//! A [`PeriodicCallback`] that runs every 100 ms, prints a counter, and stops itself (and
//! the loop) after 10 calls.
//!
//! Calls stay on the grid `start + k × 100 ms`: each deadline is computed from the
//! previous one, not from when the previous call ended, so the schedule does not drift.
//!
//! Run it with:
//!
//! ```text
//! cargo run --example periodic
//! ```

use std::time::Duration;

use ioloop::{IoLoop, PeriodicCallback};

const CALLS: u32 = 10;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();

    let ioloop = IoLoop::new()?;
    let started = ioloop.time();

    // The closure owns its counter (it is `FnMut`). It also receives the
    // `PeriodicCallback` itself, so it can stop it without capturing a handle.
    let mut count = 0;
    let ticker = PeriodicCallback::new(&ioloop, Duration::from_millis(100), move |ioloop, me| {
        count += 1;
        let elapsed = ioloop.time() - started;
        println!("tick {count:2} at {:4} ms", elapsed.as_millis());
        if count == CALLS {
            me.stop();
            ioloop.stop();
        }
    });

    // The first call is one period from now.
    ticker.start();
    ioloop.start()?;

    assert!(!ticker.is_running());
    println!("stopped after {CALLS} calls");
    Ok(())
}
