//! A line echo server in async style: one task per connection.
//!
//! ```text
//! cargo run --example echo_server_async -- 8888
//! printf 'hello\nworld\n' | nc localhost 8888
//! ```

use ioloop::{IoLoop, TcpServer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let port = match std::env::args().nth(1) {
        Some(port) => port.parse()?,
        None => 8888,
    };
    let ioloop = IoLoop::new()?;
    let server = TcpServer::new_async(&ioloop, |stream, peer| async move {
        println!("connection from {peer}");
        let _ = stream.set_nodelay(true);
        while let Ok(line) = stream.read_until(b"\n", 64 * 1024).await {
            if stream.write_all(&line).await.is_err() {
                break;
            }
        }
        stream.close();
    });
    for addr in server.listen(port)? {
        println!("echo server listening on {addr}");
    }
    ioloop.start()?;
    Ok(())
}
