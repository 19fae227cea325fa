//! The echo and chat examples under peers that behave as attackers do: connections that
//! send half a line and stop, slowloris trickles, clients that flood without reading.
//! Each server runs as its own process and is measured from outside (`/proc`): its
//! memory must stay proportional to what it holds, and it must keep serving others.

#![cfg(target_os = "linux")]

use crate::common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::enough_fds;
use common::example::Example;

/// A blocking client of `port` on loopback.
fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
}

/// One echo round trip: proves the server is serving, and (sent after everything a test
/// sent before) that it has run an iteration since those bytes arrived.
fn echo_round_trip(port: u16) {
    let mut probe = connect(port);
    probe.write_all(b"probe\n").unwrap();
    let mut line = String::new();
    BufReader::new(&probe).read_line(&mut line).unwrap();
    assert_eq!(line, "probe\n");
}

/// `count` connections to `port` that each send `bytes` and keep the connection open.
fn partial_lines(port: u16, count: usize, bytes: &[u8]) -> Vec<TcpStream> {
    (0..count)
        .map(|_| {
            let mut stream = connect(port);
            stream.write_all(bytes).unwrap();
            stream
        })
        .collect()
}

#[test]
fn a_thousand_connections_holding_a_one_byte_partial_line_cost_under_2_kib_each() {
    if !enough_fds(1000) {
        return;
    }
    let server = Example::start("echo_server", &["0"]);
    echo_round_trip(server.port); // warm: the first connection allocates the loop's scratch
    let before = server.rss();
    let held = partial_lines(server.port, 1000, b"x");
    // Two round trips: every partial line was read by the iteration that answered them.
    echo_round_trip(server.port);
    echo_round_trip(server.port);
    let grown = server.rss().saturating_sub(before);
    let per_connection = grown / held.len();
    assert!(
        per_connection <= 2048,
        "{per_connection} bytes per connection holding one byte ({grown} in all)"
    );
}

#[test]
fn two_thousand_slowloris_connections_grow_the_chat_server_by_under_8_mib() {
    if !enough_fds(2000) {
        return;
    }
    let mut server = Example::start("chat_server", &["0"]);
    let before = server.rss();
    let mut trickling = partial_lines(server.port, 2000, b"s");
    // Everybody joined (the welcome line is each one's proof), then a second byte each.
    for stream in &mut trickling {
        let mut welcome = [0u8; 20];
        stream.read_exact(&mut welcome).unwrap();
        assert_eq!(&welcome, b"welcome to the chat\n");
        stream.write_all(b"l").unwrap();
    }
    // A normal member still gets through, after the server read every trickled byte.
    let a = connect(server.port);
    let mut b = connect(server.port);
    let mut a_lines = BufReader::new(a.try_clone().unwrap());
    let mut line = String::new();
    a_lines.read_line(&mut line).unwrap();
    let mut b_welcome = [0u8; 20];
    b.read_exact(&mut b_welcome).unwrap();
    server.wait_for_line(|l| l.ends_with("joined")); // keep the pipe drained
    b.write_all(b"still here\n").unwrap();
    line.clear();
    a_lines.read_line(&mut line).unwrap();
    assert!(line.ends_with("] still here\n"), "{line:?}");
    let grown = server.rss().saturating_sub(before);
    assert!(
        grown <= 8 << 20,
        "2000 slowloris connections grew the chat server by {grown} bytes"
    );
    drop(a);
}

/// Sends lines on a non-blocking socket until the peer stops taking them (no progress
/// for 2 s) or `limit` bytes went out; returns the bytes sent.
fn flood_without_reading(stream: &TcpStream, limit: usize) -> usize {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    stream.set_nonblocking(true).unwrap();
    let line = [b"y".repeat(1023), b"\n".to_vec()].concat();
    let chunk = line.repeat(64);
    let mut sent = 0;
    while sent < limit {
        match (&*stream).write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let mut fds = [PollFd::new(stream, PollFlags::OUT)];
                let two_seconds = Timespec {
                    tv_sec: 2,
                    tv_nsec: 0,
                };
                if poll(&mut fds, Some(&two_seconds)).unwrap() == 0 {
                    break; // the server stopped reading from us
                }
            }
            Err(e) => panic!("flood failed after {sent} bytes: {e}"),
        }
    }
    sent
}

#[test]
fn a_client_flooding_the_echo_server_without_reading_is_throttled_and_others_are_served() {
    let server = Example::start("echo_server", &["0"]);
    echo_round_trip(server.port);
    let before = server.rss();
    let flooder = connect(server.port);
    let sent = flood_without_reading(&flooder, 1 << 30);
    assert!(
        sent < 64 << 20,
        "the server took {sent} bytes from a client that reads nothing"
    );
    let grown = server.rss().saturating_sub(before);
    assert!(
        grown <= 16 << 20,
        "the flood grew the server by {grown} bytes"
    );
    echo_round_trip(server.port);
    drop(flooder);
}

#[test]
fn a_chat_member_that_stops_reading_is_disconnected_and_the_room_goes_on() {
    let mut server = Example::start("chat_server", &["0"]);
    let mut sleeper = connect(server.port); // joins, then never reads
    let mut welcome = [0u8; 20];
    sleeper.read_exact(&mut welcome).unwrap();
    let talker = connect(server.port);
    let talker_port = talker.local_addr().unwrap().port();
    server.wait_for_line(|l| l.ends_with("joined"));
    server.wait_for_line(|l| l.ends_with("joined"));
    let before = server.rss();
    // 256 MiB said to a room where the only other member reads nothing.
    let line = [b"z".repeat(4000), b"\n".to_vec()].concat();
    let chunk = line.repeat(64);
    let mut said = 0;
    while said < 256 << 20 {
        (&talker).write_all(&chunk).unwrap();
        said += chunk.len();
    }
    // The talker leaves; the server prints that once it has read everything it said.
    talker.shutdown(std::net::Shutdown::Write).unwrap();
    server.wait_for_line(|l| l == "disconnecting a member that stopped reading");
    server.wait_for_line(|l| l.ends_with(&format!(":{talker_port} left")));
    let grown = server.rss().saturating_sub(before);
    assert!(
        grown <= 16 << 20,
        "one member that does not read grew the chat server by {grown} bytes"
    );
    // The sleeper finds its connection closed after what was sent to it.
    let mut rest = Vec::new();
    match sleeper.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the disconnected member saw {e}"),
    }
    // The room goes on.
    let listener = connect(server.port);
    let mut heard = BufReader::new(listener);
    let mut welcome_line = String::new();
    heard.read_line(&mut welcome_line).unwrap();
    let mut speaker = connect(server.port);
    let mut welcome = [0u8; 20];
    speaker.read_exact(&mut welcome).unwrap();
    speaker.write_all(b"anyone?\n").unwrap();
    let mut line = String::new();
    heard.read_line(&mut line).unwrap();
    assert!(line.ends_with("] anyone?\n"), "{line:?}");
}
