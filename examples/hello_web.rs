//! The seed program: `GET /` answers "Hello, 异步世界!" after an async 2-second sleep.
//!
//! ```text
//! cargo run --example hello_web -- 8888
//! curl http://localhost:8888/
//! ```

use std::time::Duration;

use ioloop::web::{get, Application};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::args().nth(1).map_or(Ok(8888), |p| p.parse())?;
    let ioloop = ioloop::IoLoop::new()?;
    let server = Application::new()
        .route(
            "/",
            get(|_req| async {
                ioloop::sleep(Duration::from_secs(2)).await;
                "Hello, 异步世界!"
            }),
        )
        .listen(&ioloop, port)?;
    println!(
        "服务运行在 http://localhost:{}",
        server.local_addrs()[0].port()
    );
    ioloop.start()?;
    Ok(())
}
