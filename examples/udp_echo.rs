//! A UDP echo server: every datagram goes back to its sender.
//!
//! ```text
//! cargo run --example udp_echo -- 9999
//! echo hello | nc -u -w1 localhost 9999
//! ```

use std::net::SocketAddr;

use ioloop::{IoLoop, UdpSocket};

/// The largest UDP payload over IPv4.
const MAX_DATAGRAM: usize = 65_507;

/// Receives one datagram, sends it back, and starts over.
fn echo(socket: &UdpSocket) {
    socket.recv_from_then(MAX_DATAGRAM, |socket, received| {
        match received {
            Ok((datagram, from)) => reply(socket, &datagram, from),
            // A receive error on an unconnected socket is about one earlier datagram
            // (an ICMP error); the socket itself is fine.
            Err(e) => log::debug!("receive failed: {e}"),
        }
        echo(socket);
    });
}

/// Sends `datagram` back to `to`; if the send buffer is full, drops it, as UDP may.
fn reply(socket: &UdpSocket, datagram: &[u8], to: SocketAddr) {
    if let Err(e) = socket.try_send_to(datagram, to) {
        log::debug!("reply to {to} dropped: {e}");
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::args().nth(1) {
        Some(port) => port.parse()?,
        None => 9999,
    };
    let ioloop = IoLoop::new()?;
    let socket = UdpSocket::bind(&ioloop, ("127.0.0.1", port))?;
    println!("udp echo listening on {}", socket.local_addr()?);
    echo(&socket);
    ioloop.start()?;
    Ok(())
}
