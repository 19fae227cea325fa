//! A line-based chat room: every line a client sends goes to every other client. Ctrl-C
//! (SIGINT) or SIGTERM shuts it down cleanly: the listener closes, every client is told and
//! disconnected, and the loop stops.
//!
//! A member that stops reading is disconnected once [`MAX_BACKLOG`] bytes wait for it
//! (each stream's `max_write_buffer_size`), so it cannot make the server hold everything
//! the room says, and the others go on.
//!
//! ```text
//! cargo run --example chat_server -- 8888
//! nc localhost 8888     # in two or more terminals
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::rc::Rc;

use ioloop::signal::{SIGINT, SIGTERM};
use ioloop::{IoLoop, IoStream, StreamError, StreamOptions, TcpServer};

/// The most bytes the server holds for one member that does not read.
const MAX_BACKLOG: usize = 1024 * 1024;

/// The connected clients, by connection number.
type Room = Rc<RefCell<BTreeMap<u64, IoStream>>>;

/// Relays each line from `stream` to the rest of the room, until it leaves.
fn relay_lines(room: Room, id: u64, peer: SocketAddr) {
    let stream = room.borrow()[&id].clone();
    stream.read_until_then(b"\n", 4096, move |stream, line| match line {
        Ok(line) => {
            let mut message = format!("[{peer}] ").into_bytes();
            message.extend_from_slice(&line);
            for (other, client) in room.borrow().iter() {
                if *other != id {
                    if let Err(StreamError::BufferFull) = client.write(&message) {
                        // Its close callback leaves the room on a later iteration.
                        println!("disconnecting a member that stopped reading");
                        client.close();
                    }
                }
            }
            relay_lines(room, id, peer);
        }
        Err(_) => stream.close(),
    });
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let port = match std::env::args().nth(1) {
        Some(port) => port.parse()?,
        None => 8888,
    };
    let ioloop = IoLoop::new()?;
    let room: Room = Rc::default();
    let next_id = RefCell::new(0u64);

    let members = room.clone();
    let options = StreamOptions {
        max_write_buffer_size: Some(MAX_BACKLOG),
        ..StreamOptions::default()
    };
    let server = TcpServer::with_options(&ioloop, options, move |_, stream, peer| {
        let id = {
            let mut next = next_id.borrow_mut();
            *next += 1;
            *next
        };
        let _ = stream.write(b"welcome to the chat\n");
        let leaving = members.clone();
        stream.set_close_callback(move |_| {
            leaving.borrow_mut().remove(&id);
            println!("{peer} left");
        });
        members.borrow_mut().insert(id, stream);
        println!("{peer} joined");
        relay_lines(members.clone(), id, peer);
    });
    let addrs = server.listen(port)?;

    let mut handlers = Vec::new();
    for signal in [SIGINT, SIGTERM] {
        let room = room.clone();
        let server = server.clone();
        let handler = ioloop.add_signal_handler(signal, move |ioloop| {
            println!("shutting down");
            server.stop();
            let clients: Vec<IoStream> = room.borrow().values().cloned().collect();
            for client in clients {
                let _ = client.write_then(b"the server is shutting down\n", |c, _| c.close());
            }
            // Give the goodbyes one iteration to be written, then stop.
            ioloop.add_callback(|ioloop| ioloop.stop());
        })?;
        handlers.push(handler);
    }
    // Said once the signals are handled: a script that signals on this line is safe.
    for addr in addrs {
        println!("chat server listening on {addr}");
    }
    std::io::stdout().flush()?;
    ioloop.start()?;
    for handler in handlers {
        ioloop.remove_signal_handler(handler);
    }
    println!("bye");
    Ok(())
}
