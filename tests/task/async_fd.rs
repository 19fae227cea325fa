//! AsyncFd readiness futures over real loopback sockets: readable/writable, read_with and
//! write_with, lazy interest changes, hang-ups, and dropping.

use crate::common;

use std::io::{self, Read, Write};
use std::net::TcpStream;

use common::{poll_once, tcp_pair, unix_pair};
use ioloop::testing::step;
use ioloop::{AsyncFd, IoLoop};

#[test]
fn readable_resolves_after_data_arrives_and_read_with_gets_it() {
    let ioloop = IoLoop::new().unwrap();
    let (a, mut b) = tcp_pair();
    let a = AsyncFd::new(&ioloop, a).unwrap();
    let mut task = ioloop.spawn(async move {
        let mut buf = [0u8; 16];
        let n = a.read_with(|mut s| s.read(&mut buf)).await?;
        io::Result::Ok(buf[..n].to_vec())
    });
    step(&ioloop);
    step(&ioloop);
    assert!(poll_once(&mut task).is_pending(), "nothing to read yet");
    b.write_all(b"hello").unwrap();
    let out = ioloop.run_sync(task).unwrap().unwrap().unwrap();
    assert_eq!(out, b"hello");
}

#[test]
fn a_ping_pong_over_async_fds_changes_poller_interest_only_at_the_start() {
    let ioloop = IoLoop::new().unwrap();
    let (a, b) = tcp_pair();
    let client = AsyncFd::new(&ioloop, a).unwrap();
    let server = AsyncFd::new(&ioloop, b).unwrap();
    let rounds = 200;
    drop(ioloop.spawn(async move {
        let mut buf = [0u8; 64];
        for _ in 0..rounds {
            let n = server.read_with(|mut s| s.read(&mut buf)).await.unwrap();
            server.write_with(|mut s| s.write(&buf[..n])).await.unwrap();
        }
    }));
    let handle = ioloop.clone();
    let modifications = ioloop
        .run_sync(async move {
            let mut buf = [0u8; 64];
            let mut first = 0;
            for round in 0..rounds {
                client.write_with(|mut s| s.write(b"ping")).await.unwrap();
                let mut got = 0;
                while got < 4 {
                    got += client.read_with(|mut s| s.read(&mut buf)).await.unwrap();
                }
                if round == 0 {
                    first = handle.stats().poller_modifications;
                }
            }
            handle.stats().poller_modifications - first
        })
        .unwrap();
    assert_eq!(modifications, 0, "steady state makes no epoll_ctl");
}

#[test]
fn writable_resolves_when_a_full_socket_drains() {
    let ioloop = IoLoop::new().unwrap();
    let (a, mut b) = unix_pair();
    // Fill a's send buffer.
    let chunk = [0u8; 65536];
    let mut written = 0usize;
    loop {
        match (&a).write(&chunk) {
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    let a = AsyncFd::new(&ioloop, a).unwrap();
    let mut task = ioloop.spawn(async move { a.writable().await });
    step(&ioloop);
    step(&ioloop);
    assert!(poll_once(&mut task).is_pending(), "full: not writable");
    let mut sink = vec![0u8; written];
    b.set_nonblocking(false).unwrap();
    b.read_exact(&mut sink).unwrap();
    ioloop.run_sync(task).unwrap().unwrap().unwrap();
}

#[test]
fn a_hang_up_wakes_the_reader_and_an_idle_hung_up_source_leaves_the_poller() {
    let ioloop = IoLoop::new().unwrap();
    let (a, b) = unix_pair();
    let a = std::rc::Rc::new(AsyncFd::new(&ioloop, a).unwrap());
    let reader = a.clone();
    let task = ioloop.spawn(async move {
        let mut buf = [0u8; 8];
        reader.read_with(|mut s| s.read(&mut buf)).await
    });
    step(&ioloop);
    drop(b);
    let n = ioloop.run_sync(task).unwrap().unwrap().unwrap();
    assert_eq!(n, 0, "end of stream");
    // Nobody waits any more: the next hang-up event takes the source off the poller
    // instead of being reported on every iteration.
    step(&ioloop);
    step(&ioloop);
    assert_eq!(ioloop.stats().handlers, 0);
    // Waiting again puts it back.
    let again = a.clone();
    let result = ioloop.run_sync(async move { again.readable().await });
    assert!(result.unwrap().is_ok());
    drop(a);
    assert_eq!(ioloop.stats().handlers, 0);
}

#[test]
fn dropping_the_async_fd_removes_the_source_and_into_inner_gives_it_back() {
    let ioloop = IoLoop::new().unwrap();
    let (a, _b) = tcp_pair();
    let fd = AsyncFd::new(&ioloop, a).unwrap();
    assert_eq!(ioloop.stats().handlers, 1);
    let a: TcpStream = fd.into_inner().unwrap();
    assert_eq!(ioloop.stats().handlers, 0);
    let fd = AsyncFd::new(&ioloop, a).unwrap();
    drop(fd);
    assert_eq!(ioloop.stats().handlers, 0);
}

#[test]
fn a_source_the_poller_refuses_comes_back_in_the_error() {
    let ioloop = IoLoop::new().unwrap();
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let err = AsyncFd::new(&ioloop, file).unwrap_err();
    let file = err.into_source();
    assert!(file.metadata().is_ok());
}

#[test]
fn waiting_after_the_loop_is_closed_is_an_error_not_a_hang() {
    let ioloop = IoLoop::new().unwrap();
    let (a, _b) = unix_pair();
    let a = AsyncFd::new(&ioloop, a).unwrap();
    ioloop.close(true).unwrap();
    let mut readable = Box::pin(a.readable());
    match poll_once(&mut readable) {
        std::task::Poll::Ready(Err(_)) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_async_fd_lends_its_descriptor_and_a_stream_names_its_own_until_closed() {
    use std::os::fd::{AsFd, AsRawFd};
    let ioloop = IoLoop::new().unwrap();
    let (a, b) = unix_pair();
    let raw = a.as_raw_fd();
    let watched = AsyncFd::new(&ioloop, a).unwrap();
    assert_eq!(watched.as_raw_fd(), raw);
    assert_eq!(watched.as_fd().as_raw_fd(), raw);
    let stream = ioloop::IoStream::new(&ioloop, b).unwrap();
    assert!(stream.as_raw_fd() >= 0 && stream.as_raw_fd() != raw);
    stream.close();
    assert_eq!(stream.as_raw_fd(), -1);
}
