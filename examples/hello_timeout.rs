//! The smallest `ioloop` program: one timeout that prints a line and stops the loop.
//!
//! Run it with:
//!
//! ```text
//! cargo run --example hello_timeout
//! ```
//!
//! (Set `RUST_LOG=debug` to see the loop's own log messages.)

use std::time::Duration;

use ioloop::IoLoop;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();

    let ioloop = IoLoop::new()?;

    // Runs once, one second from now. The callback receives the loop, so it can stop it
    // without capturing a handle.
    ioloop.add_timeout(Duration::from_secs(1), |ioloop| {
        println!("Hello from a timeout, one second later!");
        ioloop.stop();
    });

    // Runs callbacks, timers and I/O until `stop` is called.
    ioloop.start()?;
    Ok(())
}
