//! `futures-io`'s traits over `IoStream` (feature `futures-io`), driven by a crate no one
//! here wrote: `futures-lite`'s `io::copy` as an echo server and its line reader, over
//! loopback TCP, with a client from std.

#![cfg(feature = "futures-io")]

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::with_client;
use futures_lite::io::{AsyncBufReadExt, AsyncWriteExt};
use futures_lite::StreamExt;
use ioloop::{IoLoop, TcpServer};

#[test]
fn futures_io_copy_echoes_megabytes_with_backpressure() {
    let ioloop = IoLoop::new().unwrap();
    let server = TcpServer::new_async(&ioloop, |stream, _| async move {
        let reader = stream.clone().into_futures_io();
        let mut writer = stream.into_futures_io();
        // Ends when the client closes (the end of its stream closes this one too, as in
        // Tornado), after everything was echoed.
        let _ = futures_lite::io::copy(reader, &mut writer).await;
    });
    let addr = server.bind("127.0.0.1:0").unwrap();
    const SIZE: usize = 8 << 20;
    let echoed = with_client(&ioloop, addr, |addr| {
        let conn = TcpStream::connect(addr).unwrap();
        let mut reader = conn.try_clone().unwrap();
        let sender = std::thread::spawn(move || {
            let mut conn = conn;
            let data: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
            conn.write_all(&data).unwrap();
            conn
        });
        let mut echoed = vec![0u8; SIZE];
        reader.read_exact(&mut echoed).unwrap();
        drop(sender.join().unwrap());
        echoed
    });
    assert!(echoed
        .iter()
        .enumerate()
        .all(|(i, &b)| b == (i % 251) as u8));
}

#[test]
fn a_line_reader_from_another_crate_reads_lines() {
    let ioloop = IoLoop::new().unwrap();
    let server = TcpServer::new_async(&ioloop, |stream, _| async move {
        let mut lines = stream.clone().into_futures_io().lines();
        let mut writer = stream.into_futures_io();
        let mut count = 0;
        while let Some(Ok(line)) = lines.next().await {
            if line == "quit" {
                writer.write_all(b"bye\n").await.unwrap();
                writer.close().await.unwrap();
                break;
            }
            count += 1;
            let reply = format!("{count}: {}\n", line.to_uppercase());
            writer.write_all(reply.as_bytes()).await.unwrap();
        }
    });
    let addr = server.bind("127.0.0.1:0").unwrap();
    let answer = with_client(&ioloop, addr, |addr| {
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.write_all(b"first\nsec").unwrap();
        conn.write_all(b"ond\nthird\nquit\n").unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        answer
    });
    assert_eq!(answer, "1: FIRST\n2: SECOND\n3: THIRD\nbye\n");
}
