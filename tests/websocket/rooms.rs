//! `Room`: one chat room across the loops of a process. Two server loops on two threads
//! share a room; WebSocket clients on both: a message said on any thread reaches every
//! member on every thread exactly once, and a member too slow for it is closed with 1008
//! (today's per-member bound) while the others go on.

#![cfg(all(feature = "websocket", unix))]

use crate::common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread::ThreadId;
use std::time::Duration;

use ioloop::web::Application;
use ioloop::websocket::{websocket, websocket_connect, Message, Room, WebSocketOptions};
use ioloop::{IoLoop, Remote};

const LIMIT: Duration = Duration::from_secs(30);

/// A server loop on its own thread whose `/ws` members join `room` and say what they
/// get; reports each join (with the loop's thread) on `joined`.
fn server(room: &Room, options: WebSocketOptions, joined: mpsc::Sender<ThreadId>) -> (u16, Remote) {
    let room = room.clone();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let ioloop = IoLoop::new().unwrap();
        let route = websocket(move |ws, _req| {
            let (room, joined) = (room.clone(), joined.clone());
            async move {
                room.join(&ws);
                let _ = joined.send(std::thread::current().id());
                while let Some(Message::Text(text)) = ws.recv().await {
                    room.say(text);
                }
                room.leave(&ws);
            }
        })
        .options(options);
        // Its connections get a small kernel send buffer (inherited from the listening
        // socket, without autotuning), so a reader that stops is soon in user space.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        rustix::net::sockopt::set_socket_send_buffer_size(&listener, 16 << 10).unwrap();
        let server = ioloop::http::HttpServer::new(&ioloop, Application::new().route("/ws", route));
        let addrs = server.add_sockets(vec![listener]).unwrap();
        tx.send((addrs[0].port(), ioloop.remote())).unwrap();
        ioloop.start().unwrap();
    });
    rx.recv().unwrap()
}

#[test]
fn a_message_said_on_any_thread_reaches_every_member_on_every_thread_once() {
    let room = Room::new();
    let (joined_tx, joined) = mpsc::channel();
    let (port_a, remote_a) = server(&room, WebSocketOptions::default(), joined_tx.clone());
    let (port_b, remote_b) = server(&room, WebSocketOptions::default(), joined_tx);
    let client = IoLoop::new().unwrap();
    let urls: Vec<String> = (0..6)
        .map(|i| {
            format!(
                "ws://127.0.0.1:{}/ws",
                if i % 2 == 0 { port_a } else { port_b }
            )
        })
        .collect();
    let members = client
        .run_sync_timeout(
            async move {
                let mut members = Vec::new();
                for url in urls {
                    members.push(websocket_connect(&url).await.unwrap());
                }
                members
            },
            LIMIT,
        )
        .unwrap();
    // Everyone is in the room (on two threads) before anyone speaks.
    let threads: Vec<ThreadId> = (0..6)
        .map(|_| joined.recv_timeout(LIMIT).unwrap())
        .collect();
    assert_eq!(room.len(), 6);
    let mut distinct = threads.clone();
    distinct.sort_by_key(|t| format!("{t:?}"));
    distinct.dedup();
    assert_eq!(distinct.len(), 2, "members on two loops");

    let seen = client
        .run_sync_timeout(
            async move {
                for (i, ws) in members.iter().enumerate() {
                    ws.send(format!("m{i}")).await.unwrap();
                    ws.send(format!("end{i}")).await.unwrap();
                }
                let mut all = Vec::new();
                for ws in &members {
                    // Each sender's messages arrive in order: "end i" after "m i".
                    let mut seen: HashMap<String, usize> = HashMap::new();
                    while (0..6).any(|i| !seen.contains_key(&format!("end{i}"))) {
                        match ws.recv().await {
                            Some(Message::Text(t)) => *seen.entry(t).or_default() += 1,
                            other => panic!("{other:?}"),
                        }
                    }
                    all.push(seen);
                }
                all
            },
            LIMIT,
        )
        .unwrap();
    for (member, seen) in seen.iter().enumerate() {
        for i in 0..6 {
            assert_eq!(
                seen.get(&format!("m{i}")),
                Some(&1),
                "member {member}: {seen:?}"
            );
            assert_eq!(
                seen.get(&format!("end{i}")),
                Some(&1),
                "member {member}: {seen:?}"
            );
        }
        assert_eq!(seen.len(), 12, "member {member}: {seen:?}");
    }
    // Said from a thread that runs no loop of the room: reaches both loops.
    let r = room.clone();
    std::thread::spawn(move || r.say("from elsewhere"))
        .join()
        .unwrap();
    remote_a.stop();
    remote_b.stop();
}

/// The next server frame from a blocking socket: (opcode, payload).
fn read_frame(sock: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    sock.read_exact(&mut head).ok()?;
    let len = match head[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            sock.read_exact(&mut b).ok()?;
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            sock.read_exact(&mut b).ok()?;
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    sock.read_exact(&mut payload).ok()?;
    Some((head[0] & 0x0f, payload))
}

#[test]
fn a_member_too_slow_for_the_room_is_closed_with_1008_and_the_others_go_on() {
    let room = Room::new();
    let (joined_tx, joined) = mpsc::channel();
    let bounded = WebSocketOptions {
        max_write_buffer: 64 << 10,
        ..Default::default()
    };
    let (port_a, remote_a) = server(&room, WebSocketOptions::default(), joined_tx.clone());
    let (port_b, remote_b) = server(&room, bounded, joined_tx);
    let _ = port_b;
    // The slow member, on loop B: a raw socket with a small receive buffer that reads
    // nothing until the flood is over.
    let socket = rustix::net::socket(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::STREAM,
        None,
    )
    .unwrap();
    rustix::net::sockopt::set_socket_recv_buffer_size(&socket, 4096).unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port_b}").parse().unwrap();
    rustix::net::connect(&socket, &addr).unwrap();
    let mut slow = TcpStream::from(socket);
    slow.write_all(common::websocket::handshake("/ws", "").as_bytes())
        .unwrap();
    slow.set_read_timeout(Some(LIMIT)).unwrap();
    let mut response = Vec::new();
    while !response.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        slow.read_exact(&mut byte).unwrap();
        response.push(byte[0]);
    }
    assert!(response.starts_with(b"HTTP/1.1 101"));
    joined.recv_timeout(LIMIT).unwrap();

    let client = IoLoop::new().unwrap();
    // The speaker and a listener on loop A (the default bound); the slow member alone on
    // loop B, with a 64 KiB bound.
    let urls = [port_a, port_a].map(|p| format!("ws://127.0.0.1:{p}/ws"));
    let got = client
        .run_sync_timeout(
            async move {
                let speaker = websocket_connect(&urls[0]).await.unwrap();
                let listener = websocket_connect(&urls[1]).await.unwrap();
                (speaker, listener)
            },
            LIMIT,
        )
        .unwrap();
    joined.recv_timeout(LIMIT).unwrap();
    joined.recv_timeout(LIMIT).unwrap();
    let (speaker, listener) = got;
    let total = 400;
    let handle = client.clone();
    let counts = client
        .run_sync_timeout(
            async move {
                // Both read as it comes (a reader that stops would be the slow one).
                let readers: Vec<_> = [speaker.clone(), listener]
                    .into_iter()
                    .map(|ws| {
                        handle.spawn(async move {
                            let mut count = 0;
                            while count < total {
                                match ws.recv().await {
                                    Some(Message::Text(t)) => {
                                        assert_eq!(t[..4].parse::<usize>().unwrap(), count);
                                        count += 1;
                                    }
                                    other => panic!(
                                        "{other:?} after {count}: closed with {:?} {:?}",
                                        ws.close_code(),
                                        ws.close_reason()
                                    ),
                                }
                            }
                            count
                        })
                    })
                    .collect();
                let chunk = "x".repeat(4 << 10);
                for i in 0..total {
                    speaker.send(format!("{i:04}{chunk}")).await.unwrap();
                }
                let mut counts = [0usize; 2];
                for (n, reader) in readers.into_iter().enumerate() {
                    counts[n] = reader.await.unwrap();
                }
                counts
            },
            LIMIT,
        )
        .unwrap();
    assert_eq!(
        counts,
        [total, total],
        "the others got everything, in order"
    );
    // The slow member got some of it, then a close with 1008.
    let mut texts = 0;
    let code = loop {
        match read_frame(&mut slow) {
            Some((0x1, _)) => texts += 1,
            Some((0x8, payload)) => break u16::from_be_bytes([payload[0], payload[1]]),
            Some((op, _)) => panic!("opcode {op}"),
            None => panic!("no close frame after {texts} messages"),
        }
    };
    assert_eq!(code, 1008);
    assert!(texts < total, "{texts}");
    remote_a.stop();
    remote_b.stop();
}
