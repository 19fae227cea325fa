//! The WebSocket workload of `bench/ws.sh`: servers, and the load client that drives them.
//!
//! ```text
//! ioloop-bench ws-server ioloop|ioloop-async|tungstenite
//! ioloop-bench ws-load PORT echo|broadcast|idle CONNS SIZE MS [SERVER_PID]
//! ```
//!
//! Servers print `listening on 127.0.0.1:PORT` and serve until SIGTERM: `GET /echo` echoes
//! every message; `GET /broadcast` sends every message a member sends to every member
//! (the sender included). `ioloop`: callback style (`WebSocketHandler`,
//! `write_message`, `Broadcast`); `ioloop-async`: `recv().await`/`send().await`;
//! `tungstenite`: tokio-tungstenite on a tokio current_thread runtime, a task per
//! connection, and for the room an unbounded channel per member drained by its writer
//! task (the crate's chat example). Tornado's peer is `python/ws_server.py`.
//!
//! The load client runs on one thread with one level-triggered `polling` loop:
//! - `echo`: each of CONNS connections sends a binary message of SIZE bytes, waits for
//!   its echo, and sends the next (ping-pong); it counts echoes over MS ms after a
//!   warm-up of a quarter of that.
//! - `broadcast`: CONNS members; the first sends a SIZE-byte message, and once every
//!   member has received it, the next; it counts broadcasts (each is CONNS deliveries).
//! - `idle`: opens CONNS connections, echoes one message on each, prints `held`, and
//!   keeps them open for MS ms (the script reads the server's memory meanwhile).
//!
//! It prints one JSON line: `{"messages": N, "secs": S, "server_cpu_s": C}` (echoes, or
//! broadcasts; C is the server process's utime+stime over exactly the measured window,
//! read from `/proc/SERVER_PID/stat` at its start and end, so handshakes, warm-up and
//! teardown are not counted; 0 without a pid).

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use polling::{Event, Events, PollMode, Poller};

use crate::util::{LoadArgs, ServerCpu};

pub fn serve(imp: &str) -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone()).map_err(|e| e.to_string())?;
    }
    match imp {
        "ioloop" => ioloop_server(stop, false),
        "ioloop-async" => ioloop_server(stop, true),
        "tungstenite" => tungstenite_server(stop),
        _ => Err(format!("ws-server: unknown implementation {imp}")),
    }
}

fn announce(port: u16) {
    println!("listening on 127.0.0.1:{port}");
    let _ = io::stdout().flush();
}

fn ioloop_server(stop: Arc<AtomicBool>, async_style: bool) -> Result<(), String> {
    use ioloop::web::Application;
    use ioloop::websocket::{
        websocket, Broadcast, Message, WebSocket, WebSocketHandler, WebSocketOptions,
        WebSocketRoute,
    };

    struct Echo;
    impl WebSocketHandler for Echo {
        fn on_message(&mut self, ws: &WebSocket, message: Message) {
            let _ = ws.write_message(message);
        }
    }
    struct Member(Rc<RefCell<Vec<WebSocket>>>);
    impl WebSocketHandler for Member {
        fn open(&mut self, ws: &WebSocket) {
            self.0.borrow_mut().push(ws.clone());
        }
        fn on_message(&mut self, _ws: &WebSocket, message: Message) {
            let members = self.0.borrow().clone();
            Broadcast::new(message).send_to(&members);
        }
        fn on_close(&mut self, ws: &WebSocket) {
            self.0.borrow_mut().retain(|m| !m.ptr_eq(ws));
        }
    }

    let ioloop = ioloop::IoLoop::new().map_err(|e| e.to_string())?;
    let options = WebSocketOptions {
        max_message_size: 64 << 20,
        ..WebSocketOptions::default()
    };
    let room: Rc<RefCell<Vec<WebSocket>>> = Rc::default();
    let echo = if async_style {
        websocket(|ws, _req| async move {
            while let Some(message) = ws.recv().await {
                if ws.send(message).await.is_err() {
                    break;
                }
            }
        })
    } else {
        WebSocketRoute::with_handler(|_req| Echo)
    };
    let (_server, addr) = Application::new()
        .route("/echo", echo.options(options.clone()))
        .route(
            "/broadcast",
            WebSocketRoute::with_handler(move |_req| Member(room.clone())).options(options),
        )
        .bind(&ioloop, "127.0.0.1:0")
        .map_err(|e| e.to_string())?;
    announce(addr.port());
    let watch =
        ioloop::PeriodicCallback::new(&ioloop, Duration::from_millis(50), move |ioloop, _| {
            if stop.load(Ordering::Relaxed) {
                ioloop.stop();
            }
        });
    watch.start();
    ioloop.start().map_err(|e| e.to_string())
}

fn tungstenite_server(stop: Arc<AtomicBool>) -> Result<(), String> {
    use futures_util::{SinkExt, StreamExt};
    use tokio::sync::mpsc;
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
    use tokio_tungstenite::tungstenite::Message;

    type Room = Rc<RefCell<Vec<mpsc::UnboundedSender<Message>>>>;

    async fn connection(tcp: tokio::net::TcpStream, room: Room) {
        let _ = tcp.set_nodelay(true);
        let mut path = String::new();
        let config = WebSocketConfig::default().max_message_size(Some(64 << 20));
        // The callback's type is tungstenite's (its error is an HTTP response).
        #[allow(clippy::result_large_err)]
        let accepted = tokio_tungstenite::accept_hdr_async_with_config(
            tcp,
            |request: &Request, response: Response| {
                path = request.uri().path().to_owned();
                Ok(response)
            },
            Some(config),
        )
        .await;
        let Ok(mut ws) = accepted else { return };
        if path == "/broadcast" {
            let (mut sink, mut stream) = ws.split();
            let (tx, mut rx) = mpsc::unbounded_channel();
            room.borrow_mut().push(tx);
            tokio::task::spawn_local(async move {
                while let Some(message) = rx.recv().await {
                    if sink.send(message).await.is_err() {
                        break;
                    }
                }
            });
            while let Some(Ok(message)) = stream.next().await {
                if message.is_binary() || message.is_text() {
                    room.borrow_mut()
                        .retain(|member| member.send(message.clone()).is_ok());
                }
            }
            return;
        }
        while let Some(Ok(message)) = ws.next().await {
            if (message.is_binary() || message.is_text()) && ws.send(message).await.is_err() {
                break;
            }
        }
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        announce(listener.local_addr().map_err(|e| e.to_string())?.port());
        let room: Room = Rc::default();
        let accept = async {
            loop {
                if let Ok((tcp, _)) = listener.accept().await {
                    tokio::task::spawn_local(connection(tcp, room.clone()));
                }
            }
        };
        crate::util::serve_until_stopped(&stop, accept).await;
        Ok(())
    })
}

// ---- the load client ----

/// One client connection: its socket, bytes read and not yet parsed, and bytes to write.
pub(crate) struct Client {
    pub(crate) sock: TcpStream,
    inbox: Vec<u8>,
    outbox: Vec<u8>,
    /// The frame this connection sends, masked once.
    frame: Rc<Vec<u8>>,
    /// Waiting for writability.
    want_write: bool,
}

/// A masked binary frame of `size` bytes (the mask is fixed: servers do not care).
pub(crate) fn client_frame(size: usize) -> Vec<u8> {
    let mask = [0x37, 0xFA, 0x21, 0x3D];
    let mut out = vec![0x82];
    if size < 126 {
        out.push(0x80 | size as u8);
    } else if size <= 0xFFFF {
        out.push(0x80 | 126);
        out.extend_from_slice(&(size as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(size as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend((0..size).map(|i| (i as u8) ^ mask[i % 4]));
    out
}

/// Whole server frames at the start of `buf`: how many, and the bytes they take.
fn whole_frames(buf: &[u8]) -> Result<(usize, usize), String> {
    let (mut count, mut at) = (0, 0);
    loop {
        let rest = &buf[at..];
        let [first, second, ..] = *rest else { break };
        if second & 0x80 != 0 || first & 0x70 != 0 {
            return Err("a masked or extended server frame".into());
        }
        let (len, header) = match second & 0x7F {
            126 => match rest.get(2..4) {
                Some(b) => (u16::from_be_bytes([b[0], b[1]]) as usize, 4),
                None => break,
            },
            127 => match rest.get(2..10) {
                Some(b) => (u64::from_be_bytes(b.try_into().unwrap()) as usize, 10),
                None => break,
            },
            n => (n as usize, 2),
        };
        if rest.len() < header + len {
            break;
        }
        if first & 0x0F == 0x8 {
            return Err("the server closed the connection".into());
        }
        at += header + len;
        count += 1;
    }
    Ok((count, at))
}

pub(crate) fn handshake(port: u16, path: &str) -> Result<TcpStream, String> {
    let mut sock = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    sock.set_nodelay(true).map_err(|e| e.to_string())?;
    write!(
        sock,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    // Read the 101 head byte by byte: nothing after it is sent before we write.
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        if sock.read(&mut byte).map_err(|e| e.to_string())? == 0 {
            return Err("closed during the handshake".into());
        }
        head.push(byte[0]);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(format!(
            "handshake refused: {}",
            String::from_utf8_lossy(&head)
        ));
    }
    sock.set_nonblocking(true).map_err(|e| e.to_string())?;
    Ok(sock)
}

impl Client {
    /// A member on `sock` that sends `frame`.
    pub(crate) fn new(sock: TcpStream, frame: Rc<Vec<u8>>) -> Client {
        Client {
            sock,
            inbox: Vec::new(),
            outbox: Vec::new(),
            frame,
            want_write: false,
        }
    }

    /// Queues the connection's frame and writes what the socket takes.
    pub(crate) fn send(&mut self) -> io::Result<()> {
        self.outbox.extend_from_slice(&self.frame);
        self.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        while !self.outbox.is_empty() {
            match self.sock.write(&self.outbox) {
                Ok(n) => {
                    self.outbox.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads what is there; returns the whole frames it completed.
    pub(crate) fn receive(&mut self) -> Result<usize, String> {
        let mut chunk = [0u8; 65536];
        loop {
            match self.sock.read(&mut chunk) {
                Ok(0) => return Err("the server closed a connection".into()),
                Ok(n) => self.inbox.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e.to_string()),
            }
        }
        let (frames, used) = whole_frames(&self.inbox)?;
        self.inbox.drain(..used);
        Ok(frames)
    }
}

pub fn load(args: &[String]) -> Result<(), String> {
    let LoadArgs {
        port,
        mode,
        conns,
        size,
        window,
        rest,
    } = LoadArgs::parse(args, "usage: ws-load PORT MODE CONNS SIZE MS [SERVER_PID]")?;
    let server_pid: Option<u32> = rest.first().and_then(|p| p.parse().ok());
    let path = if mode == "broadcast" {
        "/broadcast"
    } else {
        "/echo"
    };
    let frame = Rc::new(client_frame(size));
    let poller = Poller::new().map_err(|e| e.to_string())?;
    let mut clients = Vec::with_capacity(conns);
    for key in 0..conns {
        let sock = handshake(port, path)?;
        // SAFETY: the socket outlives its registration: it is deleted from the poller
        // before the client (and its socket) is dropped, at the end of this function.
        unsafe { poller.add_with_mode(&sock, Event::readable(key), PollMode::Level) }
            .map_err(|e| e.to_string())?;
        clients.push(Client {
            sock,
            inbox: Vec::new(),
            outbox: Vec::new(),
            frame: frame.clone(),
            want_write: false,
        });
    }
    let cpu = ServerCpu(server_pid);
    let result = match mode.as_str() {
        "echo" => echo_load(&poller, &mut clients, window, &cpu),
        "broadcast" => broadcast_load(&poller, &mut clients, window, &cpu),
        "idle" => idle_load(&poller, &mut clients, window).map(|(m, s)| (m, s, 0.0)),
        other => Err(format!("unknown mode {other}")),
    };
    for client in &clients {
        let _ = poller.delete(&client.sock);
    }
    let (messages, secs, cpu_s) = result?;
    println!("{{\"messages\": {messages}, \"secs\": {secs:.6}, \"server_cpu_s\": {cpu_s:.6}}}");
    Ok(())
}

/// Waits for events and hands each client that is readable to `on_frames` with the
/// frames it completed; keeps writability interest in step with pending output.
pub(crate) fn pump(
    poller: &Poller,
    clients: &mut [Client],
    events: &mut Events,
    mut on_frames: impl FnMut(&mut [Client], usize, usize) -> Result<(), String>,
) -> Result<(), String> {
    events.clear();
    poller
        .wait(events, Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    if events.is_empty() {
        return Err("the server stalled for 5 s".into());
    }
    for event in events.iter() {
        let key = event.key;
        if event.writable {
            clients[key].flush().map_err(|e| e.to_string())?;
        }
        if event.readable {
            let frames = clients[key].receive()?;
            if frames > 0 {
                on_frames(clients, key, frames)?;
            }
        }
    }
    for (key, client) in clients.iter_mut().enumerate() {
        let want = !client.outbox.is_empty();
        if want != client.want_write {
            client.want_write = want;
            let interest = if want {
                Event::all(key)
            } else {
                Event::readable(key)
            };
            poller
                .modify_with_mode(&client.sock, interest, PollMode::Level)
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

fn echo_load(
    poller: &Poller,
    clients: &mut [Client],
    window: Duration,
    cpu: &ServerCpu,
) -> Result<(u64, f64, f64), String> {
    for client in clients.iter_mut() {
        client.send().map_err(|e| e.to_string())?;
    }
    let mut events = Events::new();
    let warm_up = Instant::now() + window / 4;
    let mut started: Option<(Instant, u64, f64)> = None;
    let mut echoes = 0u64;
    loop {
        let now = Instant::now();
        match started {
            None if now >= warm_up => started = Some((now, echoes, cpu.seconds())),
            Some((at, _, _)) if now >= at + window => break,
            _ => {}
        }
        pump(poller, clients, &mut events, |clients, key, frames| {
            echoes += frames as u64;
            for _ in 0..frames {
                clients[key].send().map_err(|e| e.to_string())?;
            }
            Ok(())
        })?;
    }
    let (at, before, cpu_before) = started.expect("the window started");
    let secs = at.elapsed().as_secs_f64();
    Ok((echoes - before, secs, cpu.seconds() - cpu_before))
}

fn broadcast_load(
    poller: &Poller,
    clients: &mut [Client],
    window: Duration,
    cpu: &ServerCpu,
) -> Result<(u64, f64, f64), String> {
    let members = clients.len();
    let mut received = 0usize;
    let mut broadcasts = 0u64;
    clients[0].send().map_err(|e| e.to_string())?;
    let mut events = Events::new();
    let warm_up = Instant::now() + window / 4;
    let mut started: Option<(Instant, u64, f64)> = None;
    loop {
        let now = Instant::now();
        match started {
            None if now >= warm_up => started = Some((now, broadcasts, cpu.seconds())),
            Some((at, _, _)) if now >= at + window => break,
            _ => {}
        }
        pump(poller, clients, &mut events, |clients, _key, frames| {
            received += frames;
            if received >= members {
                received -= members;
                broadcasts += 1;
                clients[0].send().map_err(|e| e.to_string())?;
            }
            Ok(())
        })?;
    }
    let (at, before, cpu_before) = started.expect("the window started");
    let secs = at.elapsed().as_secs_f64();
    Ok((broadcasts - before, secs, cpu.seconds() - cpu_before))
}

fn idle_load(
    poller: &Poller,
    clients: &mut [Client],
    hold: Duration,
) -> Result<(u64, f64), String> {
    for client in clients.iter_mut() {
        client.send().map_err(|e| e.to_string())?;
    }
    let mut events = Events::new();
    let mut echoes = 0usize;
    while echoes < clients.len() {
        pump(poller, clients, &mut events, |_, _, frames| {
            echoes += frames;
            Ok(())
        })?;
    }
    println!("held");
    let _ = io::stdout().flush();
    std::thread::sleep(hold);
    Ok((echoes as u64, hold.as_secs_f64()))
}
