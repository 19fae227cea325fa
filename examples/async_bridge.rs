//! Bridging callbacks and async/await on one loop:
//!
//! 1. a callback API (a "sensor" that reports through a callback after a delay) turned
//!    into an awaitable with `ioloop::completion`;
//! 2. an async task whose result is consumed by a plain callback through `add_future`;
//! 3. a worker thread feeding the loop through a runtime-agnostic `async-channel`, read
//!    by a task, and through `Remote::add_callback`.
//!
//! Run it with:
//!
//! ```text
//! cargo run --example async_bridge
//! ```

use std::time::{Duration, Instant};

use ioloop::IoLoop;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A callback API, as found in older code: reads a sensor and calls back later.
fn read_sensor(ioloop: &IoLoop, on_reading: impl FnOnce(f64) + 'static) {
    ioloop.call_later(Duration::from_millis(15), move |_| on_reading(21.5));
}

/// The same API as an `async fn`: one completion, no extra thread, no lock held.
async fn read_sensor_async(ioloop: &IoLoop) -> f64 {
    let (done, reading) = ioloop::completion();
    read_sensor(ioloop, move |value| done.complete(value));
    reading.await.expect("read_sensor always calls back")
}

fn main() -> Result {
    env_logger::init();
    let ioloop = IoLoop::new()?;
    let start = Instant::now();
    let ms = move || start.elapsed().as_millis();

    // 1 + 2: an async task awaits the callback API; a callback consumes its result.
    let handle = ioloop.clone();
    let average = ioloop.spawn(async move {
        let mut total = 0.0;
        for _ in 0..3 {
            total += read_sensor_async(&handle).await;
        }
        total / 3.0
    });
    ioloop.add_future(average, move |_, average| match average {
        Ok(average) => println!("[{:>3} ms] callback: average reading {average}", ms()),
        Err(e) => println!("[{:>3} ms] callback: the task failed: {e}", ms()),
    });

    // 3: a worker thread sends lines over an async-channel; a task reads them. When the
    // worker is done it posts a plain callback through the Remote.
    let (lines_tx, lines_rx) = async_channel::unbounded::<String>();
    let remote = ioloop.remote();
    let worker = std::thread::spawn(move || {
        for i in 1..=3 {
            std::thread::sleep(Duration::from_millis(5));
            lines_tx
                .send_blocking(format!("line {i}"))
                .expect("the reader is alive");
        }
        drop(lines_tx); // closes the channel: the reader's loop ends
        remote
            .add_callback(move |_| println!("[{:>3} ms] callback: the worker is done", ms()))
            .expect("the loop is alive");
    });
    let reader = ioloop.spawn(async move {
        let mut count = 0;
        while let Ok(line) = lines_rx.recv().await {
            println!("[{:>3} ms] task: got {line:?} from the worker", ms());
            count += 1;
        }
        count
    });

    // run_sync drives the loop until the reader is done; then a last short run lets the
    // sensor average arrive.
    let lines = ioloop.run_sync(reader)??;
    println!("[{:>3} ms] main: the reader saw {lines} lines", ms());
    ioloop.run_sync(ioloop::sleep(Duration::from_millis(60)))?;
    worker.join().expect("the worker panicked");
    Ok(())
}
