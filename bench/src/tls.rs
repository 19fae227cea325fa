//! The TLS workload of `bench/tls.sh`: servers, the load client that drives them, and
//! the test certificate they share.
//!
//! ```text
//! ioloop-bench tls-cert DIR
//! ioloop-bench tls-server ioloop|tokio-rustls DIR
//! ioloop-bench tls-load PORT echo|handshake CONNS SIZE MS DIR [SERVER_PID]
//! ```
//!
//! `tls-cert` writes a CA and a certificate it signed for `localhost` (ECDSA P-256, made
//! with rcgen) to DIR as `ca.pem`, `cert.pem` and `key.pem`. Servers load them with
//! rustls on its ring provider, print `listening on 127.0.0.1:PORT` and echo every byte
//! until SIGTERM: `ioloop` is a `TcpServer::new_async` with a `TlsAcceptor`, a task per
//! connection reading into a 16 KiB buffer and writing it back; `tokio-rustls` is a
//! tokio current_thread runtime, `tokio_rustls::TlsAcceptor`, a task per connection doing
//! the same with `AsyncReadExt::read` and `write_all`.
//!
//! The load client is one ioloop loop on one thread with rustls clients trusting the CA:
//! - `echo`: CONNS connections, each sending SIZE bytes and waiting for their echo, then
//!   again (ping-pong); counts echoes over MS ms after a warm-up of a quarter of that.
//! - `handshake`: CONNS workers, each connecting, completing a TLS 1.3 handshake,
//!   exchanging one byte (so the server finished its side), and closing, then again;
//!   counts handshakes over MS ms after the warm-up.
//!
//! It prints `{"messages": N, "secs": S, "server_cpu_s": C}`, C as in `ws.rs`.

use std::cell::Cell;
use std::io::{self, Write};
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ioloop::tls::rustls;

use crate::util::{LoadArgs, ServerCpu};

/// The most a connection reads at once.
const READ_BUFFER: usize = 16 * 1024;

pub fn write_certificate(dir: &str) -> Result<(), String> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let fail = |e: rcgen::Error| e.to_string();
    let ca_key = KeyPair::generate().map_err(fail)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ioloop bench CA");
    let ca = ca_params.self_signed(&ca_key).map_err(fail)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().map_err(fail)?;
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .map_err(fail)?
        .signed_by(&key, &issuer)
        .map_err(fail)?;
    let dir = Path::new(dir);
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    for (name, pem) in [
        ("ca.pem", ca.pem()),
        ("cert.pem", cert.pem()),
        ("key.pem", key.serialize_pem()),
    ] {
        std::fs::write(dir.join(name), pem).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn server_config(dir: &str) -> Result<rustls::ServerConfig, String> {
    let dir = Path::new(dir);
    ioloop::tls::server_config_from_pem(dir.join("cert.pem"), dir.join("key.pem"))
        .map_err(|e| e.to_string())
}

pub fn serve(imp: &str, dir: &str) -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone()).map_err(|e| e.to_string())?;
    }
    let config = server_config(dir)?;
    match imp {
        "ioloop" => ioloop_server(stop, config),
        "tokio-rustls" => tokio_server(stop, config),
        _ => Err(format!("tls-server: unknown implementation {imp}")),
    }
}

fn announce(port: u16) {
    println!("listening on 127.0.0.1:{port}");
    let _ = io::stdout().flush();
}

fn ioloop_server(stop: Arc<AtomicBool>, config: rustls::ServerConfig) -> Result<(), String> {
    use ioloop::{IoLoop, TcpServer};

    let ioloop = IoLoop::new().map_err(|e| e.to_string())?;
    let server = TcpServer::new_async(&ioloop, |stream, _peer| async move {
        let _ = stream.set_nodelay(true);
        let mut buffer = vec![0; READ_BUFFER];
        while let Ok(n) = stream.read_into(&mut buffer, true).await {
            if stream.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
        stream.close();
    });
    server.set_tls(ioloop::tls::TlsAcceptor::new(config));
    let port = server
        .bind("127.0.0.1:0")
        .map_err(|e| e.to_string())?
        .port();
    announce(port);
    let watch =
        ioloop::PeriodicCallback::new(&ioloop, Duration::from_millis(50), move |ioloop, _| {
            if stop.load(Ordering::Relaxed) {
                ioloop.stop();
            }
        });
    watch.start();
    ioloop.start().map_err(|e| e.to_string())
}

fn tokio_server(stop: Arc<AtomicBool>, config: rustls::ServerConfig) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        announce(listener.local_addr().map_err(|e| e.to_string())?.port());
        let accept = async {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buffer = vec![0; READ_BUFFER];
                    loop {
                        match tls.read(&mut buffer).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if tls.write_all(&buffer[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = tls.shutdown().await;
                });
            }
        };
        crate::util::serve_until_stopped(&stop, accept).await;
        Ok(())
    })
}

// ---- the load client ----

pub fn load(args: &[String]) -> Result<(), String> {
    const USAGE: &str = "usage: tls-load PORT MODE CONNS SIZE MS DIR [SERVER_PID]";
    let LoadArgs {
        port,
        mode,
        conns,
        size,
        window,
        rest,
    } = LoadArgs::parse(args, USAGE)?;
    let dir = rest.first().cloned().ok_or(USAGE)?;
    let cpu = ServerCpu(rest.get(1).and_then(|p| p.parse().ok()));
    let mut roots = rustls::RootCertStore::empty();
    for ca in ioloop::tls::load_certs(Path::new(&dir).join("ca.pem")).map_err(|e| e.to_string())? {
        roots.add(ca).map_err(|e| e.to_string())?;
    }
    let config = Arc::new(ioloop::tls::client_config(roots));
    let ioloop = ioloop::IoLoop::new().map_err(|e| e.to_string())?;
    let counted = Rc::new(Cell::new(0u64));
    let counting = Rc::new(Cell::new(false));
    let failures = Rc::new(Cell::new(0u64));
    for _ in 0..conns {
        let (config, counted, counting, failures) = (
            config.clone(),
            counted.clone(),
            counting.clone(),
            failures.clone(),
        );
        let mode = mode.clone();
        let worker = async move {
            let count = || {
                if counting.get() {
                    counted.set(counted.get() + 1);
                }
            };
            let client = ioloop::TcpClient::new(&ioloop::IoLoop::current().unwrap());
            match mode.as_str() {
                "echo" => {
                    let Ok(stream) = client.connect_tls("localhost", port, config).await else {
                        failures.set(failures.get() + 1);
                        return;
                    };
                    let _ = stream.set_nodelay(true);
                    let message = vec![b'x'; size];
                    loop {
                        if stream.write_all(&message).await.is_err()
                            || stream.read_bytes(size, false).await.is_err()
                        {
                            break;
                        }
                        count();
                    }
                }
                _ => loop {
                    let Ok(stream) = client.connect_tls("localhost", port, config.clone()).await
                    else {
                        failures.set(failures.get() + 1);
                        return;
                    };
                    let _ = stream.set_nodelay(true);
                    if stream.write_all(b"x").await.is_err()
                        || stream.read_bytes(1, false).await.is_err()
                    {
                        failures.set(failures.get() + 1);
                        return;
                    }
                    stream.close();
                    count();
                },
            }
        };
        drop(ioloop.spawn(worker));
    }
    // Warm up for a quarter of the window, then count over the window.
    let warm_up = window / 4;
    let (start, cpu_start) = (Rc::new(Cell::new(Instant::now())), Rc::new(Cell::new(0.0)));
    let outcome = Rc::new(Cell::new((0u64, 0f64, 0f64)));
    {
        let (counting, start, cpu_start) = (counting.clone(), start.clone(), cpu_start.clone());
        let cpu = ServerCpu(cpu.0);
        ioloop.call_later(warm_up, move |_| {
            counting.set(true);
            start.set(Instant::now());
            cpu_start.set(cpu.seconds());
        });
    }
    {
        let (counted, outcome) = (counted.clone(), outcome.clone());
        ioloop.call_later(warm_up + window, move |ioloop| {
            let secs = start.get().elapsed().as_secs_f64();
            outcome.set((counted.get(), secs, cpu.seconds() - cpu_start.get()));
            ioloop.stop();
        });
    }
    ioloop.start().map_err(|e| e.to_string())?;
    let (messages, secs, cpu_s) = outcome.get();
    if messages == 0 {
        return Err(format!("no {mode} completed ({} failures)", failures.get()));
    }
    println!("{{\"messages\": {messages}, \"secs\": {secs:.6}, \"server_cpu_s\": {cpu_s:.6}}}");
    Ok(())
}
