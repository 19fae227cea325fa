//! What permessage-deflate costs per connection, measured with a counting allocator (this
//! file holds one test, so nothing else allocates meanwhile): connections with the
//! extension against the same number without it, after a message each way. The figure is
//! printed and held to `MEMORY_PER_CONNECTION`.

#![cfg(feature = "deflate")]

mod common;

use common::counting_alloc::{held, Counting};
use ioloop::web::Application;
use ioloop::websocket::{
    websocket, websocket_connect_with, ClientOptions, DeflateOptions, WebSocket, WebSocketOptions,
    MEMORY_PER_CONNECTION,
};
use ioloop::IoLoop;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const CONNECTIONS: usize = 20;

/// Bytes held by `CONNECTIONS` connections (each with a server and a client side) after
/// one message each way.
fn held_by_connections(compression: Option<DeflateOptions>) -> isize {
    let ioloop = IoLoop::new().unwrap();
    let options = WebSocketOptions {
        compression: compression.clone(),
        ..WebSocketOptions::default()
    };
    let (_server, addr) = Application::new()
        .route(
            "/echo",
            websocket(common::websocket::echo).options(options.clone()),
        )
        .bind(&ioloop, "127.0.0.1:0")
        .unwrap();
    let connect = ClientOptions {
        options,
        ..ClientOptions::default()
    };
    let message = "measure me ".repeat(100);
    let before = held();
    let sockets: Vec<WebSocket> = ioloop
        .run_sync(async move {
            let mut sockets = Vec::new();
            for _ in 0..CONNECTIONS {
                let ws = websocket_connect_with(&format!("ws://{addr}/echo"), connect.clone())
                    .await
                    .unwrap();
                ws.send(message.as_str()).await.unwrap();
                assert!(ws.recv().await.is_some());
                sockets.push(ws);
            }
            sockets
        })
        .unwrap();
    let held = held() - before;
    drop(sockets);
    held
}

#[test]
fn deflate_costs_at_most_the_documented_bytes_per_side() {
    let plain = held_by_connections(None);
    let compressed = held_by_connections(Some(DeflateOptions::default()));
    let per_side = (compressed - plain) / (2 * CONNECTIONS as isize);
    println!(
        "permessage-deflate: {per_side} bytes per side of a connection (plain: {} per connection)",
        plain / CONNECTIONS as isize
    );
    assert!(
        per_side > 0,
        "the compressor and decompressor were not counted"
    );
    assert!(
        per_side as usize <= MEMORY_PER_CONNECTION,
        "{per_side} bytes per side, over {MEMORY_PER_CONNECTION}"
    );
}
