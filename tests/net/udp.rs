//! `UdpSocket` over real sockets: the `udp_echo` example against Python's `socket`
//! module, this crate's socket against a Python echo server, truncation, a connected
//! socket's refusal, and multicast on the loopback interface.

use crate::common;

use std::cell::RefCell;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::Duration;

use common::example::Example;
use ioloop::testing::{run_test, run_until};
use ioloop::{IoLoop, UdpSocket};

const LIMIT: Duration = Duration::from_secs(10);

/// A Python client: sends datagrams of each size (0 bytes to the IPv4 maximum) to the
/// port in argv[1] and checks each echo.
const PYTHON_CLIENT: &str = r#"
import socket, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
for size in (0, 1, 100, 1472, 9000, 65507):
    payload = bytes((i * 7 + size) % 256 for i in range(size))
    s.sendto(payload, ("127.0.0.1", port))
    echoed, sender = s.recvfrom(70000)
    assert echoed == payload, (size, len(echoed))
    assert sender == ("127.0.0.1", port), sender
print("ok")
"#;

#[test]
fn the_echo_example_answers_python_datagrams_of_every_size() {
    let example = Example::start("udp_echo", &["0"]);
    let out = Command::new("python3")
        .args(["-c", PYTHON_CLIENT, &example.port.to_string()])
        .output()
        .expect("python3 runs the client");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

/// A Python echo server for `count` datagrams: prints its port, then echoes.
const PYTHON_SERVER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
s.settimeout(10)
for _ in range(int(sys.argv[1])):
    data, sender = s.recvfrom(70000)
    s.sendto(data[::-1], sender)
"#;

#[test]
fn talks_to_a_python_server_with_callbacks_and_futures() {
    let mut server = Command::new("python3")
        .args(["-c", PYTHON_SERVER, "2"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs the server");
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let to: SocketAddr = format!("127.0.0.1:{}", line.trim()).parse().unwrap();

    let ioloop = IoLoop::new().unwrap();
    let socket = UdpSocket::bind(&ioloop, "127.0.0.1:0").unwrap();
    // Callback style.
    let got = Rc::new(RefCell::new(None));
    let slot = got.clone();
    socket.try_send_to(b"callback", to).unwrap();
    socket.recv_from_then(64, move |_, received| {
        *slot.borrow_mut() = Some(received.unwrap())
    });
    run_until(&ioloop, || got.borrow().is_some());
    assert_eq!(got.take().unwrap(), (b"kcabllac".to_vec(), to));
    // Async style.
    let reply = ioloop
        .run_sync(async move {
            socket.send_to(b"future", to).await?;
            let mut buf = [0; 64];
            let (n, from) = socket.recv_from(&mut buf).await?;
            std::io::Result::Ok((buf[..n].to_vec(), from))
        })
        .unwrap()
        .unwrap();
    assert_eq!(reply, (b"erutuf".to_vec(), to));
    assert!(server.wait().unwrap().success());
}

#[test]
fn a_datagram_longer_than_the_buffer_is_truncated() {
    run_test(LIMIT, |ioloop| async move {
        let a = UdpSocket::bind(&ioloop, "127.0.0.1:0").unwrap();
        let b = UdpSocket::bind(&ioloop, "127.0.0.1:0").unwrap();
        a.send_to(&[1; 1000], b.local_addr().unwrap())
            .await
            .unwrap();
        a.send_to(b"next", b.local_addr().unwrap()).await.unwrap();
        let mut small = [0; 10];
        let (n, _) = b.recv_from(&mut small).await.unwrap();
        assert_eq!((n, small), (10, [1; 10]));
        // The rest of the long one is gone; the next datagram is whole.
        let (n, _) = b.recv_from(&mut small).await.unwrap();
        assert_eq!(&small[..n], b"next");
    });
}

#[test]
fn a_connected_socket_reports_the_peer_refusing() {
    run_test(LIMIT, |ioloop| async move {
        // A port with no UDP socket: one bound, noted and closed (another test taking
        // the port in between would need the same ephemeral port, for UDP, within
        // microseconds).
        let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let socket = UdpSocket::bind(&ioloop, "127.0.0.1:0").unwrap();
        socket.connect(("127.0.0.1", port)).unwrap();
        assert_eq!(socket.peer_addr().unwrap().port(), port);
        socket.send(b"anyone?").await.unwrap();
        let mut buf = [0; 16];
        let error = socket.recv(&mut buf).await.unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused);
        // The socket and the loop carry on.
        let peer = UdpSocket::bind(&ioloop, "127.0.0.1:0").unwrap();
        socket.connect(peer.local_addr().unwrap()).unwrap();
        socket.send(b"there").await.unwrap();
        let (n, from) = peer.recv_from(&mut buf).await.unwrap();
        assert_eq!(
            (&buf[..n], from),
            (&b"there"[..], socket.local_addr().unwrap())
        );
    });
}

#[test]
fn multicast_on_loopback() {
    run_test(LIMIT, |ioloop| async move {
        let group = Ipv4Addr::new(239, 255, 7, 7);
        let member = UdpSocket::bind(&ioloop, "0.0.0.0:0").unwrap();
        member
            .get_ref()
            .join_multicast_v4(&group, &Ipv4Addr::LOCALHOST)
            .unwrap();
        let sender = UdpSocket::bind(&ioloop, "127.0.0.1:0").unwrap();
        sender
            .set_multicast_interface_v4(Ipv4Addr::LOCALHOST)
            .unwrap();
        sender.get_ref().set_multicast_loop_v4(true).unwrap();
        let to = SocketAddr::from((group, member.local_addr().unwrap().port()));
        sender.send_to(b"to the group", to).await.unwrap();
        let mut buf = [0; 32];
        let (n, from) = member.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"to the group");
        assert_eq!(from, sender.local_addr().unwrap());
    });
}
