//! TLS over real sockets (feature `tls`): this crate's client and server against each
//! other and against peers no one here wrote (`curl`, `openssl s_client`, Python's `ssl`
//! module, the Python `websockets` package). Certificates are made at test time
//! (`common::tls::TestPki`). Each test of an outside tool says "skipped: X not
//! installed" when it is missing, unless `IOLOOP_REQUIRE_CLIENTS=1`.

#![cfg(all(feature = "tls", feature = "websocket"))]

use crate::common;

use std::cell::RefCell;
use std::collections::hash_map::DefaultHasher;
use std::hash::Hasher;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use common::tls::TestPki;
use common::{has_tool, require_tool, with_client};
use ioloop::testing::{advance_to_next_deadline, run_test, run_until, LogCapture};
use ioloop::tls::rustls;
use ioloop::tls::{TlsAcceptor, TlsError};
use ioloop::web::{get, Application};
use ioloop::websocket::{websocket, websocket_connect_with, ClientOptions, Message};
use ioloop::{IoLoop, IoStream, TcpClient, TcpConnectError, TcpServer};

const LIMIT: Duration = Duration::from_secs(20);

/// Echoes what arrives until the peer leaves.
async fn echo(stream: IoStream) {
    let mut buffer = vec![0; 64 * 1024];
    while let Ok(n) = stream.read_into(&mut buffer, true).await {
        if stream.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    stream.close();
}

/// Echoes one line, then closes (with close_notify).
async fn echo_one_line(stream: IoStream) {
    if let Ok(line) = stream.read_until(b"\n", 1024).await {
        let _ = stream.write_all(&line).await;
    }
    stream.close();
}

/// A TLS server on 127.0.0.1 running `handler` per connection, and its port.
fn tls_server<F, Fut>(ioloop: &IoLoop, acceptor: TlsAcceptor, handler: F) -> (TcpServer, u16)
where
    F: Fn(IoStream) -> Fut + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let server = TcpServer::new_async(ioloop, move |stream, _| handler(stream));
    server.set_tls(acceptor);
    let port = server.bind("127.0.0.1:0").unwrap().port();
    (server, port)
}

#[test]
fn handshake_alpn_sni_and_data_both_ways() {
    let pki = TestPki::new();
    run_test(LIMIT, move |ioloop| async move {
        let mut config = pki.server_config();
        config.alpn_protocols = vec![b"h2".to_vec(), b"echo/1".to_vec()];
        let seen = Rc::new(RefCell::new(None));
        let record = seen.clone();
        let (_server, port) = tls_server(&ioloop, TlsAcceptor::new(config), move |stream| {
            *record.borrow_mut() = Some((stream.alpn_protocol(), stream.tls_server_name()));
            echo(stream)
        });
        let mut client_config = (*pki.client_config()).clone();
        client_config.alpn_protocols = vec![b"echo/1".to_vec()];
        let stream = TcpClient::new(&ioloop)
            .connect_tls("localhost", port, Arc::new(client_config))
            .await
            .unwrap();
        assert!(stream.is_tls());
        assert_eq!(stream.alpn_protocol().as_deref(), Some(&b"echo/1"[..]));
        stream.write_all(b"hello over TLS\n").await.unwrap();
        assert_eq!(
            stream.read_until(b"\n", 64).await.unwrap(),
            b"hello over TLS\n"
        );
        assert_eq!(
            seen.borrow().clone().unwrap(),
            (Some(b"echo/1".to_vec()), Some("localhost".to_owned()))
        );
    });
}

#[test]
fn plaintext_rustls_holds_is_read_without_waiting_for_the_socket() {
    // A 4-byte read chunk leaves most of a record's plaintext inside rustls, with nothing
    // left on the socket to wake the poller.
    let pki = TestPki::new();
    run_test(LIMIT, move |ioloop| async move {
        let (_server, port) = tls_server(&ioloop, pki.acceptor(), |stream: IoStream| async move {
            let _ = stream.write_all(b"one line, two lines\nthree\n").await;
            let _ = stream.read_until_close().await;
        });
        let options = ioloop::StreamOptions {
            read_chunk_size: 4,
            ..ioloop::StreamOptions::default()
        };
        let stream = TcpClient::with_options(&ioloop, options)
            .connect_tls("localhost", port, pki.client_config())
            .await
            .unwrap();
        assert_eq!(
            stream.read_until(b"\n", 64).await.unwrap(),
            b"one line, two lines\n"
        );
        let mut rest = [0u8; 6];
        let n = stream.read_into(&mut rest, false).await.unwrap();
        assert_eq!(&rest[..n], b"three\n");
    });
}

#[test]
fn the_server_picks_its_certificate_by_the_name_the_client_asks_for() {
    let alpha = TestPki::for_names(&["alpha.test"]);
    let beta = TestPki::for_names(&["beta.test"]);
    let mut resolver = rustls::server::ResolvesServerCertUsingSni::new();
    resolver.add("alpha.test", alpha.certified_key()).unwrap();
    resolver.add("beta.test", beta.certified_key()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_cert_resolver(Arc::new(resolver));
    run_test(LIMIT, move |ioloop| async move {
        let names = Rc::new(RefCell::new(Vec::new()));
        let record = names.clone();
        let (_server, port) = tls_server(&ioloop, TlsAcceptor::new(config), move |stream| {
            record.borrow_mut().push(stream.tls_server_name());
            echo(stream)
        });
        let client = TcpClient::new(&ioloop);
        // Each client trusts only its own name's CA: the handshake succeeds only with
        // the certificate chosen for the name it asked for.
        for (name, pki) in [("beta.test", &beta), ("alpha.test", &alpha)] {
            let plain = client.connect("127.0.0.1", port).await.unwrap();
            let secure = plain
                .start_tls_client(pki.client_config(), name)
                .await
                .unwrap();
            secure.write_all(b"sni\n").await.unwrap();
            assert_eq!(secure.read_until(b"\n", 64).await.unwrap(), b"sni\n");
        }
        // An unknown name gets no certificate at all.
        let plain = client.connect("127.0.0.1", port).await.unwrap();
        let refused = plain
            .start_tls_client(alpha.client_config(), "gamma.test")
            .await
            .unwrap_err();
        assert!(matches!(refused, TlsError::Handshake(_)), "{refused:?}");
        assert_eq!(
            *names.borrow(),
            [Some("beta.test".to_owned()), Some("alpha.test".to_owned())]
        );
    });
}

/// Runs `f` with the TCP socket under a TLS stream.
fn with_tcp(stream: &IoStream, f: impl FnOnce(&TcpStream)) {
    stream.with_socket(|socket| {
        if let ioloop::StreamSocket::Tls(tls) = socket {
            if let ioloop::StreamSocket::Tcp(tcp) = tls.transport() {
                f(tcp);
            }
        }
    });
}

#[test]
fn a_write_completes_only_once_its_ciphertext_left_so_a_close_then_loses_nothing() {
    // The kernel's buffers shrunk to a few KiB: most of a 48 KiB write waits inside
    // rustls as ciphertext, with nothing left in the stream's own buffer.
    let pki = TestPki::new();
    run_test(LIMIT, move |ioloop| async move {
        let mut rng = common::Rng(0xc105e);
        let data: Vec<u8> = (0..48 << 10).map(|_| rng.next() as u8).collect();
        let expected = hash(&data);
        let (_server, port) = tls_server(&ioloop, pki.acceptor(), move |stream: IoStream| {
            let data = data.clone();
            async move {
                with_tcp(&stream, |tcp| {
                    rustix::net::sockopt::set_socket_send_buffer_size(tcp, 4096).unwrap()
                });
                // Closes as soon as the write says it is done.
                stream
                    .write_then(&data, |stream, written| {
                        written.unwrap();
                        stream.close();
                    })
                    .unwrap();
            }
        });
        let stream = TcpClient::new(&ioloop)
            .connect_tls("localhost", port, pki.client_config())
            .await
            .unwrap();
        with_tcp(&stream, |tcp| {
            rustix::net::sockopt::set_socket_recv_buffer_size(tcp, 4096).unwrap()
        });
        let received = stream.read_until_close().await.unwrap();
        assert_eq!(received.len(), 48 << 10);
        assert_eq!(hash(&received), expected);
        assert!(stream.error().is_none(), "ended by close_notify");
    });
}

#[test]
fn a_client_handshake_with_a_silent_server_times_out() {
    let pki = TestPki::new();
    let (ioloop, clock) = common::manual_loop();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let outcome = Rc::new(RefCell::new(None));
    let slot = outcome.clone();
    let config = pki.client_config();
    ioloop.add_future(
        async move {
            let plain = TcpClient::new(&IoLoop::current().unwrap())
                .connect("127.0.0.1", port)
                .await
                .unwrap();
            plain.start_tls_client(config, "localhost").await
        },
        move |_, result| *slot.borrow_mut() = Some(result),
    );
    // The kernel completes the TCP handshake from the backlog; nothing ever answers.
    run_until(&ioloop, || ioloop.stats().timeouts_pending > 0);
    assert_eq!(
        advance_to_next_deadline(&ioloop, &clock),
        Some(ioloop::tls::DEFAULT_HANDSHAKE_TIMEOUT)
    );
    run_until(&ioloop, || outcome.borrow().is_some());
    assert!(matches!(outcome.take().unwrap(), Err(TlsError::TimedOut)));
}

#[test]
fn a_server_stopped_during_a_handshake_does_not_take_the_connection() {
    let pki = TestPki::new();
    run_test(LIMIT, move |ioloop| async move {
        let handled = Rc::new(std::cell::Cell::new(0));
        let count = handled.clone();
        let (server, port) = tls_server(&ioloop, pki.acceptor(), move |stream: IoStream| {
            count.set(count.get() + 1);
            echo(stream)
        });
        let plain = TcpClient::new(&ioloop)
            .connect("127.0.0.1", port)
            .await
            .unwrap();
        // Accepted, its handshake waiting for the client's hello.
        run_until_async(|| ioloop.stats().tasks > 1).await;
        server.stop();
        let secure = plain
            .start_tls_client(pki.client_config(), "localhost")
            .await
            .unwrap();
        assert_eq!(secure.read_until_close().await.unwrap(), b"");
        assert_eq!(handled.get(), 0);
    });
}

fn hash(bytes: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    hasher.write(bytes);
    hasher.finish()
}

#[test]
fn a_32_mib_transfer_keeps_its_hash() {
    let pki = TestPki::new();
    run_test(LIMIT, move |ioloop| async move {
        let (_server, port) = tls_server(&ioloop, pki.acceptor(), echo);
        let stream = TcpClient::new(&ioloop)
            .connect_tls("127.0.0.1", port, pki.client_config())
            .await
            .unwrap();
        let mut rng = common::Rng(0x5eed);
        let data: Vec<u8> = (0..32 << 20).map(|_| rng.next() as u8).collect();
        let sent_hash = hash(&data);
        let writer = stream.clone();
        let write = ioloop::spawn(async move { writer.write_all(&data).await });
        let echoed = stream.read_bytes(32 << 20, false).await.unwrap();
        write.await.unwrap().unwrap();
        assert_eq!(echoed.len(), 32 << 20);
        assert_eq!(hash(&echoed), sent_hash);
    });
}

#[test]
fn an_untrusted_certificate_or_a_wrong_name_fails_the_handshake_typed() {
    let logs = LogCapture::start();
    let pki = TestPki::new();
    run_test(LIMIT, move |ioloop| async move {
        let (_server, port) = tls_server(&ioloop, pki.acceptor(), echo);
        let client = TcpClient::new(&ioloop);
        // The Web PKI does not know the test CA.
        let untrusted = client
            .connect_tls("localhost", port, ioloop::tls::default_client_config())
            .await
            .unwrap_err();
        assert!(
            matches!(
                &untrusted,
                TcpConnectError::Tls(TlsError::Handshake(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::UnknownIssuer
                )))
            ),
            "{untrusted:?}"
        );
        // The CA is trusted, but the certificate is not for this name.
        let plain = client.connect("127.0.0.1", port).await.unwrap();
        let misnamed = plain
            .start_tls_client(pki.client_config(), "example.com")
            .await
            .unwrap_err();
        let TlsError::Handshake(rustls::Error::InvalidCertificate(why)) = &misnamed else {
            panic!("{misnamed:?}");
        };
        assert!(format!("{why:?}").contains("NotValidForName"), "{why:?}");
        // The server goes on.
        let good = client
            .connect_tls("localhost", port, pki.client_config())
            .await
            .unwrap();
        good.write_all(b"still here\n").await.unwrap();
        assert_eq!(good.read_until(b"\n", 64).await.unwrap(), b"still here\n");
    });
    // The server's side of the failures is the clients' business: debug, not warn.
    assert!(
        logs.messages(log::Level::Warn).is_empty(),
        "{:?}",
        logs.records()
    );
    assert!(logs.contains(log::Level::Debug, "TLS with 127.0.0.1"));
}

#[test]
fn a_client_leaving_or_stalling_mid_handshake_costs_nothing() {
    let logs = LogCapture::start();
    let pki = TestPki::new();
    let (ioloop, clock) = common::manual_loop();
    let (server, port) = tls_server(&ioloop, pki.acceptor(), echo);
    // Half a ClientHello, then gone.
    let mut leaving = TcpStream::connect(("127.0.0.1", port)).unwrap();
    leaving
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    drop(leaving);
    // Connected, silent.
    let mut stalling = TcpStream::connect(("127.0.0.1", port)).unwrap();
    run_until(&ioloop, || {
        logs.contains(log::Level::Debug, "during the TLS handshake")
    });
    // The stalled handshake ends at the acceptor's time limit.
    assert_eq!(
        advance_to_next_deadline(&ioloop, &clock),
        Some(ioloop::tls::DEFAULT_HANDSHAKE_TIMEOUT)
    );
    run_until(&ioloop, || {
        logs.contains(log::Level::Debug, "did not finish in time")
    });
    let mut rest = Vec::new();
    stalling.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "closed without a word");
    assert!(
        logs.messages(log::Level::Warn).is_empty(),
        "{:?}",
        logs.records()
    );
    assert_eq!(ioloop.stats().handlers, 1, "only the listener is left");
    server.stop();
}

#[test]
fn plain_http_to_an_https_port_gets_400() {
    let pki = TestPki::new();
    let ioloop = IoLoop::new().unwrap();
    let app = Application::new().route("/", get(|_| async { "secret" }));
    let (server, addr) = app.bind(&ioloop, "127.0.0.1:0").unwrap();
    server.set_tls(pki.acceptor());
    let answer = with_client(&ioloop, addr, |addr| {
        let mut plain = TcpStream::connect(addr).unwrap();
        plain
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        plain.read_to_string(&mut answer).unwrap();
        answer
    });
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    assert!(answer.ends_with("use an https:// URL.\n"), "{answer}");
    assert!(!answer.contains("secret"));
}

#[test]
fn start_tls_upgrades_a_plain_connection_and_refuses_bytes_sent_early() {
    let pki = TestPki::new();
    run_test(LIMIT, move |ioloop| async move {
        let acceptor = pki.acceptor();
        let outcomes = Rc::new(RefCell::new(Vec::new()));
        let record = outcomes.clone();
        let server = TcpServer::new_async(&ioloop, move |stream, _| {
            let acceptor = acceptor.clone();
            let record = record.clone();
            async move {
                let command = stream.read_until(b"\r\n", 64).await.unwrap();
                assert_eq!(command, b"STARTTLS\r\n");
                stream.write_all(b"220 go ahead\r\n").await.unwrap();
                match stream.start_tls_server(&acceptor).await {
                    Ok(secure) => {
                        let line = secure.read_until(b"\n", 64).await.unwrap();
                        secure
                            .write_all(&[b"secure: ", &line[..]].concat())
                            .await
                            .unwrap();
                        record.borrow_mut().push("upgraded".to_owned());
                    }
                    Err(e) => {
                        record.borrow_mut().push(e.to_string());
                        stream.close();
                    }
                }
            }
        });
        let port = server.bind("127.0.0.1:0").unwrap().port();
        let client = TcpClient::new(&ioloop);
        let plain = client.connect("127.0.0.1", port).await.unwrap();
        plain.write_all(b"STARTTLS\r\n").await.unwrap();
        assert_eq!(
            plain.read_until(b"\r\n", 64).await.unwrap(),
            b"220 go ahead\r\n"
        );
        let secure = plain
            .start_tls_client(pki.client_config(), "localhost")
            .await
            .unwrap();
        assert!(plain.closed(), "the plain stream is done with");
        secure.write_all(b"hi\n").await.unwrap();
        assert_eq!(secure.read_until(b"\n", 64).await.unwrap(), b"secure: hi\n");
        // Bytes sent before the server's go-ahead would be read as plain text: refused.
        let early = client.connect("127.0.0.1", port).await.unwrap();
        early.write_all(b"STARTTLS\r\ninjected").await.unwrap();
        let _ = early.read_until_close().await;
        run_until_async(|| outcomes.borrow().len() == 2).await;
        assert_eq!(
            *outcomes.borrow(),
            [
                "upgraded".to_owned(),
                "cannot start TLS: bytes arrived before the TLS handshake".to_owned()
            ]
        );
    });
}

/// Yields to the loop until `done` holds.
async fn run_until_async(mut done: impl FnMut() -> bool) {
    while !done() {
        ioloop::yield_now().await;
    }
}

#[test]
fn close_notify_and_its_absence_are_told_apart() {
    let pki = TestPki::new();
    run_test(LIMIT, move |ioloop| async move {
        let (_server, port) = tls_server(&ioloop, pki.acceptor(), |stream: IoStream| async move {
            let how = stream.read_until(b"\n", 64).await.unwrap();
            stream.write_all(b"bye\n").await.unwrap();
            if how == b"abrupt\n" {
                // The TCP connection ends under the session: no close_notify.
                stream.with_socket(|socket| {
                    if let ioloop::StreamSocket::Tls(tls) = socket {
                        if let ioloop::StreamSocket::Tcp(tcp) = tls.transport() {
                            let _ = tcp.shutdown(std::net::Shutdown::Both);
                        }
                    }
                });
            }
            stream.close();
        });
        for (how, error) in [
            ("clean\n", None),
            ("abrupt\n", Some(std::io::ErrorKind::UnexpectedEof)),
        ] {
            let stream = TcpClient::new(&ioloop)
                .connect_tls("localhost", port, pki.client_config())
                .await
                .unwrap();
            stream.write_all(how.as_bytes()).await.unwrap();
            assert_eq!(stream.read_until_close().await.unwrap(), b"bye\n");
            assert_eq!(stream.error().map(|e| e.kind()), error, "{how}");
        }
    });
}

#[test]
fn curl_fetches_over_https_with_the_test_ca() {
    if !has_tool("curl", &["--version"]) {
        return require_tool("curl");
    }
    let pki = TestPki::new();
    let files = pki.files("curl");
    let ioloop = IoLoop::new().unwrap();
    let app = Application::new().route(
        "/hello",
        get(|req: ioloop::http::Request| async move {
            format!("Hello over {}", req.protocol().to_uppercase())
        }),
    );
    let (server, addr) = app.bind(&ioloop, "127.0.0.1:0").unwrap();
    server.set_tls(pki.acceptor());
    let ca = files.ca.clone();
    let out = with_client(&ioloop, addr, move |addr| {
        Command::new("curl")
            .args(["-s", "--max-time", "20", "--cacert"])
            .arg(&ca)
            .arg(format!("https://localhost:{}/hello", addr.port()))
            .output()
            .unwrap()
    });
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Hello over HTTPS");
}

#[test]
fn openssl_s_client_verifies_negotiates_alpn_and_echoes() {
    if !has_tool("openssl", &["version"]) {
        return require_tool("openssl");
    }
    let pki = TestPki::new();
    let files = pki.files("s_client");
    let ioloop = IoLoop::new().unwrap();
    let mut config = pki.server_config();
    config.alpn_protocols = vec![b"echo/1".to_vec()];
    let (_server, port) = tls_server(&ioloop, TlsAcceptor::new(config), echo_one_line);
    let ca = files.ca.clone();
    let out = with_client(&ioloop, ([127, 0, 0, 1], port).into(), move |addr| {
        let mut child = Command::new("openssl")
            .args(["s_client", "-ign_eof", "-verify_return_error"])
            .args(["-connect", &addr.to_string(), "-servername", "localhost"])
            .args(["-alpn", "echo/1", "-CAfile"])
            .arg(&ca)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"ping\n").unwrap();
        child.wait_with_output().unwrap()
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("\nping\n"), "{stdout}\n{stderr}");
    assert!(stdout.contains("Verify return code: 0 (ok)"), "{stdout}");
    assert!(stdout.contains("ALPN protocol: echo/1"), "{stdout}");
}

/// A Python TLS client: connects with the CA in argv[2], sends a line, prints the echo
/// and the protocol version.
const PYTHON_CLIENT: &str = r#"
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
with socket.create_connection(("127.0.0.1", int(sys.argv[1]))) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"from python\n")
        got = b""
        while True:
            chunk = s.recv(1024)
            if not chunk:
                break
            got += chunk
        print(got.decode().strip(), s.version())
"#;

/// A Python TLS server: one connection, echoes one line reversed, prints its port first.
const PYTHON_SERVER: &str = r#"
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
with socket.socket() as listener:
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    print(listener.getsockname()[1], flush=True)
    conn, _ = listener.accept()
    with ctx.wrap_socket(conn, server_side=True) as s:
        line = b""
        while not line.endswith(b"\n"):
            line += s.recv(1024)
        s.sendall(line.strip()[::-1] + b"\n")
"#;

#[test]
fn python_ssl_as_client_and_as_server() {
    let pki = TestPki::new();
    let files = pki.files("python");
    // Python's client against this server.
    let ioloop = IoLoop::new().unwrap();
    let (_server, port) = tls_server(&ioloop, pki.acceptor(), echo_one_line);
    let ca = files.ca.clone();
    let out = with_client(&ioloop, ([127, 0, 0, 1], port).into(), move |addr| {
        Command::new("python3")
            .args(["-c", PYTHON_CLIENT, &addr.port().to_string()])
            .arg(&ca)
            .output()
            .unwrap()
    });
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.starts_with("from python TLSv1."), "{said}");

    // This client against Python's server.
    let mut python = Command::new("python3")
        .args(["-c", PYTHON_SERVER])
        .arg(&files.cert)
        .arg(&files.key)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut port_line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(python.stdout.take().unwrap()),
        &mut port_line,
    )
    .unwrap();
    let port: u16 = port_line.trim().parse().unwrap();
    let client_config = pki.client_config();
    let reply = run_test(LIMIT, move |ioloop| async move {
        let stream = TcpClient::new(&ioloop)
            .connect_tls("localhost", port, client_config)
            .await
            .unwrap();
        stream.write_all(b"stressed\n").await.unwrap();
        stream.read_until(b"\n", 64).await.unwrap()
    });
    assert_eq!(reply, b"desserts\n");
    assert!(python.wait().unwrap().success());
}

#[test]
fn the_web_app_example_serves_https_and_wss_with_tls_on_the_command_line() {
    if !has_tool("curl", &["--version"]) {
        return require_tool("curl");
    }
    let pki = TestPki::new();
    let files = pki.files("web_app");
    let cert = files.cert.to_str().unwrap();
    let key = files.key.to_str().unwrap();
    let app = common::example::Example::start("web_app", &["--tls", cert, key, "0"]);
    assert!(app.banner.contains("https://"), "{}", app.banner);
    let out = Command::new("curl")
        .args(["-s", "--max-time", "20", "--cacert"])
        .arg(&files.ca)
        .arg(format!("https://localhost:{}/plaintext", app.port))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Hello, World!");
    let options = ClientOptions {
        tls: Some(pki.client_config()),
        ..ClientOptions::default()
    };
    let url = format!("wss://localhost:{}/ws/echo", app.port);
    let echoed = IoLoop::new()
        .unwrap()
        .run_sync(async move {
            let ws = websocket_connect_with(&url, options).await.unwrap();
            ws.send(Message::Text("through the example".into()))
                .await
                .unwrap();
            ws.recv().await
        })
        .unwrap();
    assert_eq!(echoed, Some(Message::Text("through the example".into())));
}

/// The Python `websockets` client over wss://, trusting the CA in argv[2].
const PYTHON_WSS: &str = r#"
import asyncio, ssl, sys
import websockets
async def main():
    ctx = ssl.create_default_context(cafile=sys.argv[2])
    async with websockets.connect(f"wss://localhost:{sys.argv[1]}/echo", ssl=ctx) as ws:
        await ws.send("over wss")
        print(await ws.recv())
asyncio.run(main())
"#;

#[test]
fn websockets_over_wss_with_python_and_this_client() {
    let has_websockets = Command::new("python3")
        .args(["-c", "import websockets"])
        .status()
        .is_ok_and(|s| s.success());
    let pki = TestPki::new();
    let files = pki.files("wss");
    let ioloop = IoLoop::new().unwrap();
    let app = Application::new().route("/echo", websocket(common::websocket::echo));
    let (server, addr) = app.bind(&ioloop, "127.0.0.1:0").unwrap();
    server.set_tls(pki.acceptor());
    // This crate's client.
    let options = ClientOptions {
        tls: Some(pki.client_config()),
        ..ClientOptions::default()
    };
    let url = format!("wss://localhost:{}/echo", addr.port());
    let echoed = ioloop
        .run_sync(async move {
            let ws = websocket_connect_with(&url, options).await.unwrap();
            ws.send(Message::Text("hello".into())).await.unwrap();
            ws.recv().await
        })
        .unwrap();
    assert_eq!(echoed, Some(Message::Text("hello".into())));
    // Python's.
    if !has_websockets {
        return require_tool("python3 websockets");
    }
    let ca = files.ca.clone();
    let out = with_client(&ioloop, addr, move |addr| {
        Command::new("python3")
            .args(["-c", PYTHON_WSS, &addr.port().to_string()])
            .arg(&ca)
            .output()
            .unwrap()
    });
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "over wss");
}

/// Write-family syscalls (`write`, `writev`; the kernel does not count `send`) made so
/// far by this thread.
fn thread_write_syscalls() -> u64 {
    let io = std::fs::read_to_string("/proc/thread-self/io").unwrap();
    let line = io.lines().find(|l| l.starts_with("syscw:")).unwrap();
    line["syscw:".len()..].trim().parse().unwrap()
}

#[test]
fn every_record_of_a_write_leaves_in_one_writev() {
    // Over a Unix socket pair (its buffers take all of it at once): 40 KiB is three TLS
    // records, which one `writev` sends, not one `write` each.
    let pki = TestPki::new();
    run_test(LIMIT, move |ioloop| async move {
        let (a, b) = common::unix_pair();
        let (a, b) = (
            IoStream::new(&ioloop, a).unwrap(),
            IoStream::new(&ioloop, b).unwrap(),
        );
        let acceptor = pki.acceptor();
        let server = ioloop.spawn(async move { b.start_tls_server(&acceptor).await });
        let client = a
            .start_tls_client(pki.client_config(), "localhost")
            .await
            .unwrap();
        let server = server.await.unwrap().unwrap();
        let data = vec![7u8; 40 << 10];
        let before = thread_write_syscalls();
        server.write(&data).unwrap();
        assert_eq!(
            thread_write_syscalls() - before,
            1,
            "one writev for three records"
        );
        assert_eq!(server.write_buffered(), 0);
        let received = client.read_bytes(data.len(), false).await.unwrap();
        assert_eq!(received, data);
    });
}
