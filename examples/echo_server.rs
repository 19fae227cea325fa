//! A line echo server in callback style (Tornado's `TCPServer` + `IOStream` idiom), with
//! write backpressure: a client that sends without reading what comes back costs the
//! server at most [`HIGH_WATER`] bytes, because the server stops reading from it until
//! its backlog drains.
//!
//! ```text
//! cargo run --example echo_server -- 8888
//! printf 'hello\nworld\n' | nc localhost 8888
//! ```

use ioloop::{IoLoop, IoStream, TcpServer};

/// Above this many bytes waiting for a client, the server stops reading from it...
const HIGH_WATER: usize = 1024 * 1024;
/// ...until no more than this many are left.
const LOW_WATER: usize = 64 * 1024;

/// Reads one line, writes it back, and starts over until the peer leaves.
fn echo_lines(stream: &IoStream) {
    stream.read_until_then(b"\n", 64 * 1024, |stream, line| match line {
        Ok(line) => {
            if stream.write(&line).is_err() {
                return stream.close();
            }
            if stream.write_buffered() > HIGH_WATER {
                // The client is not reading: read nothing more until it catches up.
                stream.drained_then(LOW_WATER, |stream, drained| {
                    if drained.is_ok() {
                        echo_lines(stream);
                    }
                });
            } else {
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
