//! A browser chat room: `GET /` serves a page whose script opens a WebSocket to `/ws` on
//! the same origin; every text message a member sends goes to every member, the sender
//! included, as sent. Written in the callback style (Tornado's `WebSocketHandler`).
//!
//! ```text
//! cargo run --example chat_web -- 8888
//! # open http://localhost:8888/ in two browser tabs
//! python3 -m websockets ws://localhost:8888/ws
//! ```
//!
//! Scaling out: `--threads N` serves with N loops on N threads sharing one room
//! (`Room`); `--redis URL` (feature `redis`) shares the room with every other process
//! started with the same URL (`RedisRoom`, channel `chat_web`), so two processes on two
//! ports (or machines, behind a load balancer) are one chat:
//!
//! ```text
//! cargo run --features redis --example chat_web -- 8001 --redis redis://127.0.0.1:6379
//! cargo run --features redis --example chat_web -- 8002 --redis redis://127.0.0.1:6379 --threads 2
//! ```
//!
//! A handshake from another site's page (its `Origin`) gets 403. SIGINT or SIGTERM closes
//! every member with 1001 ("going away") and exits once they are gone (at most 4 s).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use ioloop::http::Response;
use ioloop::signal::{SIGINT, SIGTERM};
use ioloop::web::{get, Application};
use ioloop::websocket::{Broadcast, Message, Room, WebSocket, WebSocketHandler, WebSocketRoute};
#[cfg(feature = "redis")]
use ioloop::websocket::{RedisRoom, RedisRoomOptions};
use ioloop::IoLoop;

/// The chat page: plain DOM, no framework. Messages are shown with `textContent`, so
/// they appear verbatim and never as markup.
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>ioloop chat</title></head>
<body>
<h1>ioloop chat</h1>
<p id="status">connecting…</p>
<ul id="log"></ul>
<form id="form"><input id="message" autocomplete="off" autofocus><button id="send">Send</button></form>
<script>
const scheme = location.protocol === "https:" ? "wss://" : "ws://";
const ws = new WebSocket(scheme + location.host + "/ws");
const log = document.getElementById("log");
const status = document.getElementById("status");
ws.onopen = () => { status.textContent = "connected"; };
ws.onclose = (e) => { status.textContent = "closed (" + e.code + ")"; };
ws.onmessage = (e) => {
  const item = document.createElement("li");
  item.textContent = e.data;
  log.appendChild(item);
};
document.getElementById("form").onsubmit = (e) => {
  e.preventDefault();
  const input = document.getElementById("message");
  if (input.value && ws.readyState === WebSocket.OPEN) { ws.send(input.value); }
  input.value = "";
};
</script>
</body>
</html>
"#;

/// Where a message goes beyond this loop's members: the other loops of this process,
/// and (with `--redis`) the other processes.
#[derive(Clone)]
enum Fanout {
    /// One loop, no Redis: [`Broadcast`] to this loop's members.
    Here,
    /// A room shared by this process's loops.
    Threads(Room),
    /// A room shared by processes through Redis.
    #[cfg(feature = "redis")]
    Redis(RedisRoom),
}

impl Fanout {
    fn join(&self, ws: &WebSocket) {
        match self {
            Fanout::Here => {}
            Fanout::Threads(room) => room.join(ws),
            #[cfg(feature = "redis")]
            Fanout::Redis(room) => room.join(ws),
        }
    }

    fn leave(&self, ws: &WebSocket) {
        match self {
            Fanout::Here => {}
            Fanout::Threads(room) => room.leave(ws),
            #[cfg(feature = "redis")]
            Fanout::Redis(room) => room.leave(ws),
        }
    }
}

/// The members of this loop, and whether the server is shutting down.
struct ChatRoom {
    members: RefCell<Vec<WebSocket>>,
    shutting_down: Cell<bool>,
    fanout: Fanout,
}

impl ChatRoom {
    fn new(fanout: Fanout) -> ChatRoom {
        ChatRoom {
            members: RefCell::default(),
            shutting_down: Cell::new(false),
            fanout,
        }
    }

    /// Says `text` to every member of the chat (on this loop, the other loops and the
    /// other processes).
    fn say(&self, text: String) {
        match &self.fanout {
            Fanout::Here => {
                // Encoded once for the whole room; a member too slow to keep up is closed.
                let members = self.members.borrow().clone();
                Broadcast::new(text).send_to(&members);
            }
            Fanout::Threads(room) => room.say(text),
            #[cfg(feature = "redis")]
            Fanout::Redis(room) => room.say(text),
        }
    }

    /// Closes every member with 1001; the loop stops once the last one is gone.
    fn close_all(&self) {
        self.shutting_down.set(true);
        let members = self.members.borrow().clone();
        for member in &members {
            member.close(1001, "server shutting down");
        }
        self.stop_if_empty();
    }

    fn stop_if_empty(&self) {
        if self.shutting_down.get() && self.members.borrow().is_empty() {
            if let Some(ioloop) = IoLoop::current() {
                ioloop.stop();
            }
        }
    }
}

/// One member's connection.
struct Member {
    room: Rc<ChatRoom>,
}

impl WebSocketHandler for Member {
    fn open(&mut self, ws: &WebSocket) {
        self.room.members.borrow_mut().push(ws.clone());
        self.room.fanout.join(ws);
    }

    fn on_message(&mut self, _ws: &WebSocket, message: Message) {
        if let Message::Text(text) = message {
            self.room.say(text);
        }
    }

    fn on_close(&mut self, ws: &WebSocket) {
        self.room.members.borrow_mut().retain(|m| !m.ptr_eq(ws));
        self.room.fanout.leave(ws);
        self.room.stop_if_empty();
    }
}

/// The chat's routes, for one loop.
fn app(room: Rc<ChatRoom>) -> Application {
    Application::new()
        .route(
            "/",
            get(|_req| async {
                Response::new(200)
                    .header("Content-Type", "text/html; charset=utf-8")
                    .body(PAGE)
            }),
        )
        .route(
            "/ws",
            WebSocketRoute::with_handler(move |_req| Member { room: room.clone() }),
        )
}

/// `PORT [--redis URL] [--threads N]`.
struct Args {
    port: u16,
    redis: Option<String>,
    threads: usize,
}

fn parse_args() -> Result<Args, Box<dyn std::error::Error>> {
    let mut args = Args {
        port: 8888,
        redis: None,
        threads: 1,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        match arg.as_str() {
            "--redis" => args.redis = Some(argv.next().ok_or("--redis needs a URL")?),
            "--threads" => args.threads = argv.next().ok_or("--threads needs N")?.parse()?,
            port => args.port = port.parse()?,
        }
    }
    Ok(args)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let args = parse_args()?;
    let ioloop = IoLoop::new()?;
    let fanout = match &args.redis {
        #[cfg(feature = "redis")]
        Some(url) => {
            let room = RedisRoom::new(&ioloop, url, "chat_web", RedisRoomOptions::default())?;
            println!(
                "chat_web: room shared through {url} as origin {}",
                room.origin()
            );
            Fanout::Redis(room)
        }
        #[cfg(not(feature = "redis"))]
        Some(_) => return Err("--redis needs the example built with --features redis".into()),
        None if args.threads > 1 => Fanout::Threads(Room::new()),
        None => Fanout::Here,
    };
    if args.threads > 1 {
        return serve_threads(&ioloop, &args, fanout);
    }
    let room = Rc::new(ChatRoom::new(fanout));
    let server = app(room.clone()).listen(&ioloop, args.port)?;
    let mut handlers = Vec::new();
    for signal in [SIGINT, SIGTERM] {
        let (server, room) = (server.clone(), room.clone());
        handlers.push(ioloop.add_signal_handler(signal, move |ioloop| {
            println!("shutting down");
            server.stop();
            room.close_all();
            // Members that never answer the close are cut by their close timeout; this is
            // the backstop.
            ioloop.call_later(Duration::from_secs(4), |ioloop| ioloop.stop());
        })?);
    }
    // Said once the signals are handled: a script that signals on this line is safe.
    for addr in server.local_addrs() {
        println!("chat_web listening on {addr}");
    }
    ioloop.start()?;
    for handler in handlers {
        ioloop.remove_signal_handler(handler);
    }
    println!("bye");
    Ok(())
}

/// `--threads N`: N loops on N threads share the port (`SO_REUSEPORT`) and one room;
/// this thread's loop keeps the Redis connection and waits for SIGINT or SIGTERM, which
/// shut every thread down gracefully (members get 1001).
fn serve_threads(
    ioloop: &IoLoop,
    args: &Args,
    fanout: Fanout,
) -> Result<(), Box<dyn std::error::Error>> {
    let shared = fanout.clone();
    let servers = ioloop::http::serve_on_threads(
        args.threads,
        args.port,
        ioloop::http::ServerOptions::default(),
        move || app(Rc::new(ChatRoom::new(shared.clone()))),
    )?;
    let addrs = servers.local_addrs().to_vec();
    let servers = Rc::new(RefCell::new(Some(servers)));
    let mut handlers = Vec::new();
    for signal in [SIGINT, SIGTERM] {
        let servers = servers.clone();
        handlers.push(ioloop.add_signal_handler(signal, move |ioloop| {
            println!("shutting down");
            let taken = servers.borrow_mut().take();
            if let Some(servers) = taken {
                servers.shutdown(Duration::from_secs(4));
            }
            ioloop.stop();
        })?);
    }
    for addr in addrs {
        println!("chat_web listening on {addr}");
    }
    ioloop.start()?;
    for handler in handlers {
        ioloop.remove_signal_handler(handler);
    }
    drop(fanout);
    println!("bye");
    Ok(())
}
