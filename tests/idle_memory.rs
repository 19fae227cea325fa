//! What an idle connection costs a server, measured with a counting allocator (this file
//! holds one test, so nothing else allocates meanwhile): a thousand connections that did
//! one round trip each and wait, on the echo servers of `bench/` (a 64-byte buffer per
//! connection, both server styles). The figures are the heap bytes requested; the
//! process's resident growth, which `bench/run.sh`'s `idle` workload reports, adds the
//! allocator's rounding to them.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;

use common::counting_alloc::{held, Counting};
use ioloop::{IoLoop, IoStream, TcpServer};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const CONNECTIONS: usize = 1000;
const BUFFER: usize = 64;

/// Heap bytes per connection of the callback-style server (the stream's state, a 64-byte
/// buffer, the loop's registration slot): 256 now, 357 when written. The stream's state
/// has to stay within a 176-byte allocator chunk (the unit test
/// `stream_state_fits_its_size_class`) for `bench/`'s resident figure to stay under 300.
const CALLBACK_BUDGET: f64 = 272.0;

/// The same for the async server, which adds its task: 457 now, 541 when written.
const ASYNC_BUDGET: f64 = 472.0;

/// Reads what is there (up to the buffer), writes it back, repeats.
fn echo_then(stream: &IoStream, buffer: Vec<u8>) {
    stream.read_into_then(buffer, true, |stream, buffer, n| match n {
        Ok(n) => {
            if stream.write(&buffer[..n]).is_ok() {
                echo_then(stream, buffer);
            }
        }
        Err(_) => stream.close(),
    });
}

fn echo_server(ioloop: &IoLoop, tasks: bool) -> TcpServer {
    if tasks {
        TcpServer::new_async(ioloop, |stream, _peer| async move {
            let mut buffer = vec![0u8; BUFFER];
            while let Ok(n) = stream.read_into(&mut buffer, true).await {
                if stream.write_all(&buffer[..n]).await.is_err() {
                    break;
                }
            }
            stream.close();
        })
    } else {
        TcpServer::new(ioloop, |_, stream, _peer| {
            echo_then(&stream, vec![0u8; BUFFER])
        })
    }
}

/// Opens `n` connections and does one round trip on each.
fn connect_and_echo(addr: SocketAddr, n: usize, into: &mut Vec<TcpStream>) {
    for _ in 0..n {
        let mut socket = TcpStream::connect(addr).unwrap();
        socket.write_all(&[7; BUFFER]).unwrap();
        let mut echoed = [0; BUFFER];
        socket.read_exact(&mut echoed).unwrap();
        assert_eq!(echoed, [7; BUFFER]);
        into.push(socket);
    }
}

/// Heap bytes per idle connection of one server style. One connection is made and
/// closed before the baseline, so that one-time allocations do not count.
fn bytes_per_idle_connection(tasks: bool) -> f64 {
    let ioloop = IoLoop::new().unwrap();
    let server = echo_server(&ioloop, tasks);
    let addr = server.bind("127.0.0.1:0").unwrap();
    let (batches, batch) = mpsc::channel::<usize>();
    let (release, released) = mpsc::channel::<()>();
    let remote = ioloop.remote();
    let client = std::thread::spawn(move || {
        let mut held = Vec::with_capacity(CONNECTIONS);
        for n in batch {
            connect_and_echo(addr, n, &mut held);
            if n == 1 {
                held.clear();
            }
            remote.stop();
        }
        let _ = released.recv();
    });
    batches.send(1).unwrap();
    ioloop.start().unwrap();
    // Let the warm-up connection's close be seen (it arrived before `stop` was asked).
    ioloop.run_once(std::time::Duration::ZERO).unwrap();
    let before = held();
    batches.send(CONNECTIONS).unwrap();
    ioloop.start().unwrap();
    let held = held() - before;
    drop(batches);
    release.send(()).unwrap();
    client.join().unwrap();
    held as f64 / CONNECTIONS as f64
}

#[test]
fn an_idle_connection_costs_the_stream_buffer_and_registration() {
    let callbacks = bytes_per_idle_connection(false);
    let tasks = bytes_per_idle_connection(true);
    println!("heap bytes per idle connection: callbacks {callbacks:.1}, async {tasks:.1}");
    assert!(
        callbacks <= CALLBACK_BUDGET,
        "callback server: {callbacks:.1} bytes per idle connection, budget {CALLBACK_BUDGET}"
    );
    assert!(
        tasks <= ASYNC_BUDGET,
        "async server: {tasks:.1} bytes per idle connection, budget {ASYNC_BUDGET}"
    );
}
