//! TcpServer, TcpClient and bind_sockets over real loopback connections.

use crate::common;

use std::cell::Cell;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::Duration;

use common::{manual_loop, with_client};
use ioloop::{bind_sockets, IoLoop, IoStream, TcpClient, TcpConnectError, TcpServer};

/// A callback-style echo server: each line back, until the peer leaves.
fn echo_server(ioloop: &IoLoop) -> TcpServer {
    fn echo_lines(stream: &IoStream) {
        stream.read_until_then(b"\n", 1 << 16, |stream, line| match line {
            Ok(line) => {
                let _ = stream.write(&line);
                echo_lines(stream);
            }
            Err(_) => stream.close(),
        });
    }
    TcpServer::new(ioloop, |_, stream, _| echo_lines(&stream))
}

fn ask(addr: SocketAddr, line: &str) -> String {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.write_all(line.as_bytes()).unwrap();
    let mut answer = String::new();
    BufReader::new(conn).read_line(&mut answer).unwrap();
    answer
}

/// A loopback listener with the given accept backlog (std's `bind` always asks for 128).
fn listener_with_backlog(backlog: i32) -> std::net::TcpListener {
    let socket = rustix::net::socket(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::STREAM,
        None,
    )
    .unwrap();
    rustix::net::bind(&socket, &"127.0.0.1:0".parse::<SocketAddr>().unwrap()).unwrap();
    rustix::net::listen(&socket, backlog).unwrap();
    std::net::TcpListener::from(socket)
}

#[test]
fn the_callback_echo_server_answers() {
    let ioloop = IoLoop::new().unwrap();
    let server = echo_server(&ioloop);
    let addr = server.bind("127.0.0.1:0").unwrap();
    let answer = with_client(&ioloop, addr, |addr| ask(addr, "hello\n"));
    assert_eq!(answer, "hello\n");
}

#[test]
fn a_server_whose_handles_are_all_dropped_keeps_serving_until_its_loop_closes() {
    let ioloop = IoLoop::new().unwrap();
    let addr = echo_server(&ioloop).bind("127.0.0.1:0").unwrap();
    // The handle is gone: as in Tornado, the server lives until stop() or the loop ends.
    let answer = with_client(&ioloop, addr, |addr| ask(addr, "still here\n"));
    assert_eq!(answer, "still here\n");
    ioloop.close(true).unwrap();
    assert!(
        TcpStream::connect(addr).is_err(),
        "the loop closed its listener"
    );
}

#[test]
fn the_async_echo_server_answers_and_sees_the_peer_address() {
    let ioloop = IoLoop::new().unwrap();
    let peers = Rc::new(Cell::new(0));
    let p = peers.clone();
    let server = TcpServer::new_async(&ioloop, move |stream, peer| {
        assert!(peer.ip().is_loopback());
        p.set(p.get() + 1);
        async move {
            while let Ok(line) = stream.read_until(b"\n", 1024).await {
                stream.write_all(&line).await.unwrap();
            }
        }
    });
    let addr = server.bind("127.0.0.1:0").unwrap();
    let answer = with_client(&ioloop, addr, |addr| ask(addr, "async\n"));
    assert_eq!(answer, "async\n");
    assert_eq!(peers.get(), 1);
}

#[test]
fn a_thousand_concurrent_connections_are_all_answered() {
    // Both ends live in this process: make sure 2 000 sockets fit.
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    if limit.current.is_some_and(|soft| soft < 4096) {
        let wanted = limit.maximum.map_or(4096, |hard| hard.min(4096));
        rustix::process::setrlimit(
            rustix::process::Resource::Nofile,
            rustix::process::Rlimit {
                current: Some(wanted),
                maximum: limit.maximum,
            },
        )
        .unwrap();
    }
    let ioloop = IoLoop::new().unwrap();
    let server = echo_server(&ioloop);
    let addr = server.bind("127.0.0.1:0").unwrap();
    let answered = with_client(&ioloop, addr, |addr| {
        let mut conns: Vec<TcpStream> = (0..1000)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        for (i, conn) in conns.iter_mut().enumerate() {
            conn.write_all(format!("{i}\n").as_bytes()).unwrap();
        }
        conns
            .into_iter()
            .enumerate()
            .filter(|(i, conn)| {
                let mut line = String::new();
                BufReader::new(conn).read_line(&mut line).unwrap();
                line == format!("{i}\n")
            })
            .count()
    });
    assert_eq!(answered, 1000);
}

#[test]
fn one_readiness_event_accepts_a_bounded_number_of_connections() {
    let ioloop = IoLoop::new().unwrap();
    let server = TcpServer::new(&ioloop, |_, _, _| {});
    // A deep backlog, so that 200 connections wait in the accept queue.
    let listener = listener_with_backlog(1024);
    let addr = server.add_sockets(vec![listener]).unwrap()[0];
    let conns: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    ioloop.run_once(Duration::from_secs(5)).unwrap();
    assert_eq!(ioloop.stats().handlers, 1 + ioloop::net::ACCEPTS_PER_EVENT);
    ioloop.run_once(Duration::from_secs(5)).unwrap();
    assert_eq!(ioloop.stats().handlers, 1 + 200);
    drop(conns);
}

#[test]
fn stop_closes_the_listeners_leaves_accepted_streams_and_is_idempotent() {
    let ioloop = IoLoop::new().unwrap();
    let server = echo_server(&ioloop);
    let addr = server.bind("127.0.0.1:0").unwrap();
    let mut conn = TcpStream::connect(addr).unwrap();
    while ioloop.stats().handlers < 2 {
        ioloop.run_once(Duration::from_secs(1)).unwrap(); // until accepted
    }
    server.stop();
    server.stop();
    assert!(server.local_addrs().is_empty());
    assert_eq!(
        TcpStream::connect(addr).unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused
    );
    // The accepted connection still echoes.
    conn.write_all(b"still here\n").unwrap();
    let answer = with_client(&ioloop, addr, move |_| {
        let mut line = String::new();
        BufReader::new(&mut conn).read_line(&mut line).unwrap();
        line
    });
    assert_eq!(answer, "still here\n");
}

#[test]
fn bind_sockets_shares_one_port_across_families_and_reuse_port_shares_it_across_loops() {
    let listeners = bind_sockets(0, None, false).unwrap();
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    assert!(ports.iter().all(|p| *p == ports[0]), "{ports:?}");
    for l in &listeners {
        if l.local_addr().unwrap().is_ipv6() {
            assert!(rustix::net::sockopt::ipv6_v6only(l).unwrap());
        }
    }
    let first = bind_sockets(0, Some("127.0.0.1"), true).unwrap();
    let port = first[0].local_addr().unwrap().port();
    let second = bind_sockets(port, Some("127.0.0.1"), true).unwrap();
    assert_eq!(second[0].local_addr().unwrap().port(), port);
    assert!(
        bind_sockets(port, Some("127.0.0.1"), false).is_err(),
        "taken without SO_REUSEPORT"
    );
}

#[test]
fn one_loop_per_thread_can_serve_a_reuse_port_socket() {
    let port = bind_sockets(0, Some("127.0.0.1"), true).unwrap()[0]
        .local_addr()
        .unwrap()
        .port();
    let mut workers = Vec::new();
    let mut remotes = Vec::new();
    for _ in 0..2 {
        let (tx, rx) = std::sync::mpsc::channel();
        workers.push(std::thread::spawn(move || {
            let ioloop = IoLoop::new().unwrap();
            let server = echo_server(&ioloop);
            server
                .add_sockets(bind_sockets(port, Some("127.0.0.1"), true).unwrap())
                .unwrap();
            tx.send(ioloop.remote()).unwrap();
            ioloop.start().unwrap();
        }));
        remotes.push(rx.recv().unwrap());
    }
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    for i in 0..20 {
        assert_eq!(ask(addr, &format!("{i}\n")), format!("{i}\n"));
    }
    remotes.iter().for_each(|r| r.stop());
    workers.into_iter().for_each(|w| w.join().unwrap());
}

#[test]
fn the_client_connects_by_name_through_the_resolver() {
    let ioloop = IoLoop::new().unwrap();
    let server = echo_server(&ioloop);
    let port = server.bind("127.0.0.1:0").unwrap().port();
    let client = TcpClient::new(&ioloop);
    let echoed = ioloop
        .run_sync(async move {
            let stream = client.connect("localhost", port).await.unwrap();
            stream.write_all(b"by name\n").await.unwrap();
            stream.read_until(b"\n", 64).await.unwrap()
        })
        .unwrap();
    assert_eq!(echoed, b"by name\n");
}

#[test]
fn connection_refused_is_a_typed_error() {
    let ioloop = IoLoop::new().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = TcpClient::new(&ioloop);
    let result = ioloop.run_sync(client.connect("127.0.0.1", port)).unwrap();
    match result {
        Err(TcpConnectError::Refused(addr)) => assert_eq!(addr.port(), port),
        other => panic!("{other:?}"),
    }
    let result = ioloop
        .run_sync(client.connect("no-such-host.invalid", 80))
        .unwrap();
    assert!(
        matches!(result, Err(TcpConnectError::Resolve(_))),
        "{result:?}"
    );
}

#[test]
fn a_connect_that_never_completes_times_out_on_the_loop_clock() {
    // A listener with a full accept queue drops further SYNs: the connect stays pending.
    let listener = listener_with_backlog(0);
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    loop {
        // Fill the queue until a non-blocking connect stays in progress.
        let probe = rustix::net::socket_with(
            rustix::net::AddressFamily::INET,
            rustix::net::SocketType::STREAM,
            rustix::net::SocketFlags::NONBLOCK,
            None,
        )
        .unwrap();
        match rustix::net::connect(&probe, &addr) {
            Err(rustix::io::Errno::INPROGRESS) => {
                let mut fds = [rustix::event::PollFd::new(
                    &probe,
                    rustix::event::PollFlags::OUT,
                )];
                let wait = rustix::event::Timespec {
                    tv_sec: 0,
                    tv_nsec: 50_000_000,
                };
                if rustix::event::poll(&mut fds, Some(&wait)).unwrap() == 0 {
                    break; // this one hangs: the queue is full
                }
            }
            Ok(()) => {}
            Err(e) => panic!("{e}"),
        }
        fillers.push(probe);
        assert!(fillers.len() < 64, "the accept queue never filled");
    }
    let (ioloop, clock) = manual_loop();
    let client = TcpClient::new(&ioloop);
    let mut connect =
        ioloop.spawn(client.connect_timeout("127.0.0.1", addr.port(), Duration::from_secs(3)));
    ioloop.run_once(Duration::ZERO).unwrap();
    assert_eq!(ioloop.stats().handlers, 1, "the pending socket is watched");
    clock.advance(Duration::from_secs(3));
    for _ in 0..3 {
        ioloop.run_once(Duration::ZERO).unwrap();
    }
    match common::poll_once(&mut connect) {
        std::task::Poll::Ready(Ok(Err(TcpConnectError::TimedOut))) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(ioloop.stats().handlers, 0, "the pending socket was closed");
    drop((listener, fillers));
}

/// A fresh directory for socket files, removed by the caller.
fn socket_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ioloop-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_unix_socket_listener_serves_and_replaces_a_stale_socket_file() {
    let dir = socket_dir("unix-server");
    let path = dir.join("echo.sock");
    drop(ioloop::bind_unix_socket(&path).unwrap()); // a server that left its file behind
    assert!(path.exists());
    let ioloop = IoLoop::new().unwrap();
    let server = echo_server(&ioloop);
    server
        .add_unix_listener(ioloop::bind_unix_socket(&path).unwrap())
        .unwrap();
    let remote = ioloop.remote();
    let p = path.clone();
    let client = std::thread::spawn(move || {
        let mut conn = std::os::unix::net::UnixStream::connect(p).unwrap();
        conn.write_all(b"over a unix socket\n").unwrap();
        let mut line = String::new();
        BufReader::new(conn).read_line(&mut line).unwrap();
        remote.stop();
        line
    });
    ioloop.start().unwrap();
    assert_eq!(client.join().unwrap(), "over a unix socket\n");
    server.stop();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bind_unix_socket_never_deletes_a_file_that_is_not_a_socket() {
    let dir = socket_dir("not-a-socket");
    let path = dir.join("important.txt");
    std::fs::write(&path, b"keep me").unwrap();
    let err = ioloop::bind_unix_socket(&path).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
    std::fs::remove_dir_all(dir).unwrap();
}
