//! Fetches every URL given, all at once, and prints each one's status, size and time
//! (Tornado's `AsyncHTTPClient` from the command line). A status outside 2xx, or an
//! error, makes the exit status 1.
//!
//! ```text
//! cargo run --example fetch -- http://localhost:8888/ http://localhost:8888/plaintext
//! ```

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use ioloop::http::{HttpClient, HttpClientOptions};
use ioloop::IoLoop;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let urls: Vec<String> = std::env::args().skip(1).collect();
    if urls.is_empty() {
        eprintln!("usage: fetch URL...");
        std::process::exit(2);
    }
    let ioloop = IoLoop::new()?;
    let options = HttpClientOptions {
        max_clients: urls.len(),
        ..Default::default()
    };
    let client = HttpClient::with_options(&ioloop, options);
    let pending = Rc::new(Cell::new(urls.len()));
    let failed = Rc::new(Cell::new(false));
    for url in urls {
        let (pending, failed) = (pending.clone(), failed.clone());
        let started = Instant::now();
        client.fetch_then(url.clone(), move |ioloop, outcome| {
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            match outcome {
                Ok(response) => {
                    let status = response.status();
                    let bytes = response.body().len();
                    println!("{url}: {status} {bytes} bytes in {ms:.1} ms");
                    if !(200..300).contains(&status) {
                        failed.set(true);
                    }
                }
                Err(e) => {
                    eprintln!("{url}: {e} after {ms:.1} ms");
                    failed.set(true);
                }
            }
            pending.set(pending.get() - 1);
            if pending.get() == 0 {
                ioloop.stop();
            }
        });
    }
    ioloop.start()?;
    if failed.get() {
        std::process::exit(1);
    }
    Ok(())
}
