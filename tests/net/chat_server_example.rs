//! Drives `examples/chat_server.rs` with clients that are not ours (Python's standard
//! `socket` module) and checks the broadcast and the clean shutdown on SIGTERM.
#![cfg(feature = "signals")]

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::example::example_path as example;

const CLIENTS: &str = r#"
import socket, sys
port = int(sys.argv[1])
def connect():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = s.makefile("rb")
    assert f.readline() == b"welcome to the chat\n"
    return s, f
listener, listener_lines = connect()
speaker, _ = connect()
speaker.sendall(b"hello from python\n")
print(listener_lines.readline().decode().strip())
"#;

#[test]
fn the_chat_server_broadcasts_to_other_clients_and_shuts_down_on_sigterm() {
    let mut server = Command::new(example("chat_server"))
        .arg("0")
        .stdout(Stdio::piped())
        .spawn()
        .expect("the chat_server example is built by cargo test");
    let mut stdout = BufReader::new(server.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let port: u16 = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));

    let clients = Command::new("python3")
        .args(["-c", CLIENTS, &port.to_string()])
        .output()
        .expect("python3 runs the clients");
    assert!(
        clients.status.success(),
        "{}",
        String::from_utf8_lossy(&clients.stderr)
    );
    let heard = String::from_utf8(clients.stdout).unwrap();
    assert!(heard.trim().ends_with("] hello from python"), "{heard:?}");

    let pid = rustix::process::Pid::from_raw(server.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = server.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let rest: Vec<String> = stdout.lines().map(Result::unwrap).collect();
    assert!(rest.iter().any(|l| l == "shutting down"), "{rest:?}");
    assert_eq!(rest.last().map(String::as_str), Some("bye"));
}
