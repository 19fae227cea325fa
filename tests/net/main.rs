//! The network layer (`src/net`) and TLS (`src/stream/tls`): `TcpServer`,
//! `TcpClient`, `bind_sockets`, `UdpSocket`, TLS against outside peers, and the TCP
//! examples under ordinary and hostile clients. One test binary; each file is a module.

#[path = "../common/mod.rs"]
mod common;

mod chat_server_example;
mod hostile_peers;
mod tcp;
mod tls;
mod udp;
