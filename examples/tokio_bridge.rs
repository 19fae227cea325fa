//! A bridge between the loop and a tokio runtime on another thread, both ways:
//!
//! 1. tokio hands work to the loop with `Remote::spawn_with` and awaits the returned
//!    `Task` (any runtime can await it);
//! 2. a loop task awaits a tokio oneshot channel that a tokio task completes;
//! 3. tokio posts a `Send` future with `Remote::spawn`, and blocking work with
//!    `Remote::run_in_executor`, and awaits both.
//!
//! ```text
//! cargo run --example tokio_bridge
//! ```
//!
//! Each step prints one line; the loop stops when tokio is done.

use std::time::Duration;

use ioloop::IoLoop;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ioloop = IoLoop::new()?;
    let remote = ioloop.remote();

    // 2. The loop side awaits a value that tokio will send.
    let (to_loop, from_tokio) = tokio::sync::oneshot::channel::<String>();
    let waiting = ioloop.spawn(async move {
        let value = from_tokio.await.unwrap_or_else(|_| "tokio hung up".into());
        println!("2. the loop got from tokio: {value}");
    });

    let tokio_side = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a tokio runtime");
        runtime.block_on(async move {
            // 1. Work that must run on the loop (it uses the loop's timers).
            let on_loop = remote.spawn_with(|| async {
                ioloop::sleep(Duration::from_millis(10)).await;
                "slept 10 ms on the loop"
            });
            println!("1. tokio awaited a loop task: {}", on_loop.await.unwrap());

            tokio::spawn(async move {
                let _ = to_loop.send("hello from a tokio task".to_owned());
            })
            .await
            .unwrap();
            waiting.await.unwrap(); // the loop task that received it has finished

            // 3. A Send future, and blocking work on the loop's executor.
            let sum = remote.spawn(async { (1..=10).sum::<u32>() }).await.unwrap();
            let blocking = remote
                .run_in_executor(|| std::thread::current().name().map(str::to_owned))
                .await
                .unwrap();
            println!(
                "3. tokio awaited a posted future ({sum}) and blocking work (on {})",
                blocking.as_deref().unwrap_or("a pool thread")
            );
            remote.stop();
        });
    });

    ioloop.start()?;
    tokio_side.join().expect("the tokio thread");
    println!("done");
    Ok(())
}
