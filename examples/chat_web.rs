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
//! A handshake from another site's page (its `Origin`) gets 403. SIGINT or SIGTERM closes
//! every member with 1001 ("going away") and exits once they are gone (at most 4 s).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use ioloop::http::Response;
use ioloop::signal::{SIGINT, SIGTERM};
use ioloop::web::{get, Application};
use ioloop::websocket::{Broadcast, Message, WebSocket, WebSocketHandler, WebSocketRoute};
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

/// The members, and whether the server is shutting down.
#[derive(Default)]
struct Room {
    members: RefCell<Vec<WebSocket>>,
    shutting_down: Cell<bool>,
}

impl Room {
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
    room: Rc<Room>,
}

impl WebSocketHandler for Member {
    fn open(&mut self, ws: &WebSocket) {
        self.room.members.borrow_mut().push(ws.clone());
    }

    fn on_message(&mut self, _ws: &WebSocket, message: Message) {
        if let Message::Text(text) = message {
            // Encoded once for the whole room; a member too slow to keep up is closed.
            let members = self.room.members.borrow().clone();
            Broadcast::new(text).send_to(&members);
        }
    }

    fn on_close(&mut self, ws: &WebSocket) {
        self.room.members.borrow_mut().retain(|m| !m.ptr_eq(ws));
        self.room.stop_if_empty();
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let port: u16 = std::env::args().nth(1).map_or(Ok(8888), |p| p.parse())?;
    let ioloop = IoLoop::new()?;
    let room = Rc::new(Room::default());
    let members = room.clone();
    let server = Application::new()
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
            WebSocketRoute::with_handler(move |_req| Member {
                room: members.clone(),
            }),
        )
        .listen(&ioloop, port)?;
    for addr in server.local_addrs() {
        println!("chat_web listening on {addr}");
    }
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
    ioloop.start()?;
    for handler in handlers {
        ioloop.remove_signal_handler(handler);
    }
    println!("bye");
    Ok(())
}
