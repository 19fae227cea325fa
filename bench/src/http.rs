//! The HTTP servers that `bench/http.sh` loads with wrk: `GET /plaintext` answers
//! `Hello, World!` as `text/plain`, and `GET /json` `{"message":"Hello, World!"}` as
//! `application/json`, serialized per request (TechEmpower's JSON test); keep-alive on.
//!
//! ```text
//! ioloop-bench http-server ioloop|hyper|actix [--threads N] [--tls DIR]
//! ```
//!
//! Prints `listening on 127.0.0.1:PORT` and serves until SIGTERM (or SIGINT). With
//! `--threads N` every thread runs its own loop (runtime) on its own `SO_REUSEPORT`
//! listener on the shared port: ioloop's `serve_on_threads`, and hyper with one
//! current_thread runtime per thread (TechEmpower's hyper setup). With `--tls DIR` (one
//! thread) it serves HTTPS with the certificate of `ioloop-bench tls-cert DIR`: ioloop
//! through `HttpServer::set_tls`, hyper through tokio-rustls, both on rustls with ring.
//! actix-web runs on its own runtime (actix-rt) with `--threads` workers (one by default),
//! plaintext only.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub fn serve(imp: &str, threads: usize, tls: Option<&str>) -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone()).map_err(|e| e.to_string())?;
    }
    match imp {
        "ioloop" => ioloop_server(threads, stop, tls),
        "hyper" => hyper_server(threads, stop, tls),
        "actix" if tls.is_none() => actix_server(threads),
        _ => Err(format!("http-server: unknown implementation {imp}")),
    }
}

fn announce(addr: SocketAddr) {
    use std::io::Write;
    println!("listening on 127.0.0.1:{}", addr.port());
    let _ = std::io::stdout().flush();
}

/// The TLS configuration of `--tls DIR`.
fn tls_config(dir: &str) -> Result<ioloop::tls::rustls::ServerConfig, String> {
    let dir = std::path::Path::new(dir);
    ioloop::tls::server_config_from_pem(dir.join("cert.pem"), dir.join("key.pem"))
        .map_err(|e| e.to_string())
}

/// The body of the JSON rows, TechEmpower's JSON test: `{"message":"Hello, World!"}`,
/// serialized per request.
#[derive(serde::Serialize)]
struct Message {
    message: &'static str,
}

impl Message {
    fn hello() -> Message {
        Message {
            message: "Hello, World!",
        }
    }
}

fn ioloop_server(threads: usize, stop: Arc<AtomicBool>, tls: Option<&str>) -> Result<(), String> {
    use ioloop::http::{serve_on_threads, ServerOptions};
    use ioloop::web::{get, Application};
    let app = || {
        Application::new()
            .route("/plaintext", get(|_req| async { "Hello, World!" }))
            .route(
                "/json",
                get(|_req| async { ioloop::web::Json(Message::hello()) }),
            )
    };
    if threads > 1 {
        let servers = serve_on_threads(threads, 0, ServerOptions::default(), app)
            .map_err(|e| e.to_string())?;
        announce(servers.local_addrs()[0]);
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        servers.shutdown(std::time::Duration::from_secs(1));
        return Ok(());
    }
    let ioloop = ioloop::IoLoop::new().map_err(|e| e.to_string())?;
    let (server, addr) = app()
        .bind(&ioloop, "127.0.0.1:0")
        .map_err(|e| e.to_string())?;
    if let Some(dir) = tls {
        server.set_tls(ioloop::tls::TlsAcceptor::new(tls_config(dir)?));
    }
    announce(addr);
    let watch = ioloop::PeriodicCallback::new(
        &ioloop,
        std::time::Duration::from_millis(50),
        move |ioloop, _| {
            if stop.load(Ordering::Relaxed) {
                ioloop.stop();
            }
        },
    );
    watch.start();
    ioloop.start().map_err(|e| e.to_string())
}

fn hyper_server(threads: usize, stop: Arc<AtomicBool>, tls: Option<&str>) -> Result<(), String> {
    use std::convert::Infallible;
    use std::net::{Ipv4Addr, SocketAddrV4};

    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Request, Response};
    use hyper_util::rt::TokioIo;

    async fn plaintext(
        req: Request<hyper::body::Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let (body, content_type) = if req.uri().path() == "/json" {
            let json = serde_json::to_vec(&Message::hello()).unwrap_or_default();
            (Bytes::from(json), "application/json")
        } else {
            (Bytes::from_static(b"Hello, World!"), "text/plain")
        };
        let mut response = Response::new(Full::new(body));
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(content_type),
        );
        response.headers_mut().insert(
            hyper::header::SERVER,
            hyper::header::HeaderValue::from_static("hyper"),
        );
        Ok(response)
    }

    fn listener(port: u16) -> std::io::Result<tokio::net::TcpSocket> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.bind(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)))?;
        Ok(socket)
    }

    let acceptor = match tls {
        Some(dir) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(tls_config(dir)?))),
        None => None,
    };
    let first = listener(0).map_err(|e| e.to_string())?;
    let port = first.local_addr().map_err(|e| e.to_string())?.port();
    let mut sockets = vec![first];
    for _ in 1..threads.max(1) {
        sockets.push(listener(port).map_err(|e| e.to_string())?);
    }
    let mut handles = Vec::new();
    for socket in sockets {
        let stop = stop.clone();
        let acceptor = acceptor.clone();
        handles.push(std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = socket.listen(1024).unwrap();
                let serve = async {
                    loop {
                        let Ok((tcp, _)) = listener.accept().await else {
                            continue;
                        };
                        let _ = tcp.set_nodelay(true);
                        let acceptor = acceptor.clone();
                        tokio::task::spawn(async move {
                            let mut http = http1::Builder::new();
                            http.pipeline_flush(true);
                            let _ = match acceptor {
                                Some(acceptor) => {
                                    let Ok(tls) = acceptor.accept(tcp).await else {
                                        return;
                                    };
                                    http.serve_connection(TokioIo::new(tls), service_fn(plaintext))
                                        .await
                                }
                                None => {
                                    http.serve_connection(TokioIo::new(tcp), service_fn(plaintext))
                                        .await
                                }
                            };
                        });
                    }
                };
                crate::util::serve_until_stopped(&stop, serve).await;
            });
        }));
    }
    announce(SocketAddr::from(([127, 0, 0, 1], port)));
    for handle in handles {
        let _ = handle.join();
    }
    Ok(())
}

/// actix-web as its users run it: `HttpServer` with `threads` workers on actix-rt, one
/// route per row, the `Server` field set as hyper's and ioloop's are. It stops on SIGTERM
/// or SIGINT by itself (actix-rt's own signal handling), at once: no connection is left
/// when wrk has finished.
fn actix_server(threads: usize) -> Result<(), String> {
    use actix_web::{web, App, HttpResponse, HttpServer};

    async fn plaintext() -> HttpResponse {
        HttpResponse::Ok()
            .content_type("text/plain")
            .insert_header(("Server", "actix"))
            .body("Hello, World!")
    }

    async fn json() -> HttpResponse {
        let body = serde_json::to_vec(&Message::hello()).unwrap_or_default();
        HttpResponse::Ok()
            .content_type("application/json")
            .insert_header(("Server", "actix"))
            .body(body)
    }

    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(|| {
            App::new()
                .route("/plaintext", web::get().to(plaintext))
                .route("/json", web::get().to(json))
        })
        .workers(threads.max(1))
        .backlog(1024)
        .shutdown_timeout(0)
        .bind(("127.0.0.1", 0))
        .map_err(|e| e.to_string())?;
        let addr = *server.addrs().first().ok_or("actix bound no address")?;
        announce(addr);
        server.run().await.map_err(|e| e.to_string())
    })
}
