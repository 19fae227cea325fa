//! A large static file sent to a client that does not read costs the server about one
//! piece, not the file: its own test binary, so the process's resident memory measures
//! this server alone.

#![cfg(feature = "web")]

mod common;

use common::http::SteppedServer;
use ioloop::web::{get, Application, StaticFiles};

/// Resident memory of this process, in bytes.
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
fn a_large_file_to_a_client_that_does_not_read_holds_the_server_to_a_few_pieces() {
    const SIZE: u64 = 128 << 20;
    let dir = std::env::temp_dir().join(format!("ioloop-static-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Sparse: 128 MiB of zeros without writing them.
    std::fs::File::create(dir.join("big.bin"))
        .unwrap()
        .set_len(SIZE)
        .unwrap();
    let root = dir.clone();
    let server = SteppedServer::start(move |ioloop| {
        Application::new()
            .route("/files/{*path}", get(StaticFiles::new(root)))
            .bind(ioloop, "127.0.0.1:0")
    });
    let mut client = server.connect();
    let before = resident_bytes();
    client.send(&server, b"GET /files/big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    for _ in 0..20 {
        server.settle();
    }
    let grown = resident_bytes().saturating_sub(before);
    assert!(
        grown < 32 << 20,
        "the server grew by {} MiB for a client that reads nothing",
        grown >> 20
    );
    let reply = client.reply(&server);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.len() as u64, SIZE);
    assert!(reply.body.iter().all(|&b| b == 0));
    std::fs::remove_dir_all(&dir).unwrap();
}
