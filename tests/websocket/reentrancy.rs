//! User values a WebSocket holds (handlers, wakers) dropped or called while the
//! connection's state is borrowed would panic with "already borrowed" when they touch the
//! socket again, and a panic in a destructor can abort the process (issue 24's bug
//! class). Each case drives a real connection: a raw-frame client on a stepped loop.

#![cfg(feature = "websocket")]

use crate::common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use common::http::SteppedServer;
use common::websocket::{Frame, WsClient};
use ioloop::testing::LogCapture;
use ioloop::web::Application;
use ioloop::websocket::{websocket, Message, WebSocket, WebSocketHandler, WebSocketRoute};

/// A handler that echoes.
struct Echo;

impl WebSocketHandler for Echo {
    fn on_message(&mut self, ws: &WebSocket, message: Message) {
        let _ = ws.write_message(message);
    }
}

/// A handler whose destructor uses the socket it served.
struct SaysGoodbye {
    ws: WebSocket,
    dropped: Rc<Cell<u32>>,
}

impl WebSocketHandler for SaysGoodbye {
    fn on_message(&mut self, _ws: &WebSocket, _message: Message) {}
}

impl Drop for SaysGoodbye {
    fn drop(&mut self) {
        if !self.ws.is_closed() {
            let _ = self.ws.write_message("replaced");
        }
        self.dropped.set(self.dropped.get() + 1);
    }
}

#[test]
fn a_handler_replaced_by_another_may_use_the_socket_in_its_destructor() {
    let logs = LogCapture::start();
    let dropped = Rc::new(Cell::new(0));
    let count = dropped.clone();
    let server = SteppedServer::start(move |ioloop| {
        Application::new()
            .route(
                "/swap",
                websocket(move |ws, _| {
                    let dropped = count.clone();
                    async move {
                        ws.set_handler(SaysGoodbye {
                            ws: ws.clone(),
                            dropped,
                        });
                        ws.set_handler(Echo);
                        ws.closed().await;
                    }
                }),
            )
            .bind(ioloop, "127.0.0.1:0")
    });
    let mut ws = WsClient::open(&server, "/swap");
    let first = ws.read(&server).expect("a frame");
    assert_eq!(
        (first.opcode, first.payload.as_slice()),
        (0x1, &b"replaced"[..]),
        "{first:?}"
    );
    assert_eq!(dropped.get(), 1);
    ws.send(&server, Frame::text(b"to the new handler"));
    assert_eq!(ws.read(&server).unwrap().payload, b"to the new handler");
    assert!(logs.messages(log::Level::Error).is_empty());
}

thread_local! {
    /// The socket the wakers below touch when dropped.
    static TOUCHED_BY_WAKERS: RefCell<Option<WebSocket>> = const { RefCell::new(None) };
    static WAKERS_DROPPED: Cell<u32> = const { Cell::new(0) };
}

/// A waker whose destructor uses the socket (a user's executor may do anything there).
struct TouchingWaker;

impl Wake for TouchingWaker {
    fn wake(self: Arc<Self>) {}
}

impl Drop for TouchingWaker {
    fn drop(&mut self) {
        TOUCHED_BY_WAKERS.with(|ws| {
            if let Some(ws) = &*ws.borrow() {
                let _ = ws.is_closed();
                WAKERS_DROPPED.set(WAKERS_DROPPED.get() + 1);
            }
        });
    }
}

#[test]
fn a_waker_replaced_by_another_poll_may_use_the_socket_when_dropped() {
    let held: Rc<RefCell<Option<WebSocket>>> = Rc::default();
    let slot = held.clone();
    let server = SteppedServer::start(move |ioloop| {
        Application::new()
            .route(
                "/hold",
                websocket(move |ws, _| {
                    *slot.borrow_mut() = Some(ws.clone());
                    async move { ws.closed().await }
                }),
            )
            .bind(ioloop, "127.0.0.1:0")
    });
    let _client = WsClient::open(&server, "/hold");
    server.settle();
    let ws = held.borrow().clone().expect("the session started");
    TOUCHED_BY_WAKERS.with(|t| *t.borrow_mut() = Some(ws.clone()));
    let mut recv = ws.recv();
    for _ in 0..2 {
        // Each poll leaves its waker with the socket, dropping the one before.
        let waker = Waker::from(Arc::new(TouchingWaker));
        let mut cx = Context::from_waker(&waker);
        assert!(std::pin::Pin::new(&mut recv)
            .poll_with(&mut cx)
            .is_pending());
    }
    assert_eq!(WAKERS_DROPPED.get(), 1, "the first waker was dropped");
    drop(recv);
    TOUCHED_BY_WAKERS.with(|t| t.borrow_mut().take());
}

/// `Future::poll` spelled as a method of a pinned reference.
trait PollWith: std::future::Future {
    fn poll_with(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        self.poll(cx)
    }
}

impl<F: std::future::Future> PollWith for F {}

/// A callback-style handler that uses the socket in `on_close` and in its destructor.
struct TouchesOnClose {
    seen: Rc<RefCell<Vec<String>>>,
}

impl WebSocketHandler for TouchesOnClose {
    fn on_message(&mut self, ws: &WebSocket, message: Message) {
        let _ = ws.write_message(message);
    }
    fn on_close(&mut self, ws: &WebSocket) {
        let sent = ws.write_message("too late");
        ws.close(1000, "again");
        self.seen
            .borrow_mut()
            .push(format!("on_close closed={} send={sent:?}", ws.is_closed()));
    }
}

impl Drop for TouchesOnClose {
    fn drop(&mut self) {
        self.seen.borrow_mut().push("dropped".into());
    }
}

#[test]
fn a_peer_reset_while_the_handler_uses_the_socket_in_on_close_and_drop() {
    let logs = LogCapture::start();
    let seen: Rc<RefCell<Vec<String>>> = Rc::default();
    let record = seen.clone();
    let server = SteppedServer::start(move |ioloop| {
        let record = record.clone();
        Application::new()
            .route(
                "/cb",
                WebSocketRoute::with_handler(move |_| TouchesOnClose {
                    seen: record.clone(),
                }),
            )
            .bind(ioloop, "127.0.0.1:0")
    });
    let mut ws = WsClient::open(&server, "/cb");
    ws.send(&server, Frame::text(b"hello"));
    assert_eq!(ws.read(&server).unwrap().payload, b"hello");
    // The peer resets: RST instead of FIN.
    rustix::net::sockopt::set_socket_linger(&ws.conn.stream, Some(Duration::ZERO)).unwrap();
    drop(ws);
    server.settle();
    assert_eq!(
        *seen.borrow(),
        ["on_close closed=true send=Err(Closed)", "dropped"]
    );
    assert!(logs.messages(log::Level::Error).is_empty());
}
