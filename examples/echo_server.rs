//! A line echo server in callback style (Tornado's `TCPServer` + `IOStream` idiom).
//!
//! ```text
//! cargo run --example echo_server -- 8888
//! printf 'hello\nworld\n' | nc localhost 8888
//! ```

use ioloop::{IoLoop, IoStream, TcpServer};

/// Reads one line, writes it back, and starts over until the peer leaves.
fn echo_lines(stream: &IoStream) {
    stream.read_until_then(b"\n", 64 * 1024, |stream, line| match line {
        Ok(line) => {
            if stream.write(&line).is_ok() {
                echo_lines(stream);
            }
        }
        Err(e) => {
            log::debug!("connection done: {e}");
            stream.close();
        }
    });
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let port = match std::env::args().nth(1) {
        Some(port) => port.parse()?,
        None => 8888,
    };
    let ioloop = IoLoop::new()?;
    let server = TcpServer::new(&ioloop, |_, stream, peer| {
        println!("connection from {peer}");
        let _ = stream.set_nodelay(true);
        echo_lines(&stream);
    });
    for addr in server.listen(port)? {
        println!("echo server listening on {addr}");
    }
    ioloop.start()?;
    Ok(())
}
