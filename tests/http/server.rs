//! The HTTP server and web layer in process, on a manual-clock loop the test steps: the
//! timeouts (header from accept, idle, body), streaming request bodies with backpressure,
//! both handler styles on one router, Tornado's handler hooks (`prepare`, `on_finish`,
//! `write_error`, `redirect`, `on_connection_close`, a `flush` that completes when
//! written), arguments and cookies, graceful shutdown, and one loop per thread.

#![cfg(feature = "web")]

use crate::common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use common::http::SteppedServer;
use ioloop::http::{BodyChunk, Cookie, Request, Responder, Response, ServerOptions};
use ioloop::web::{get, post, Application, FinishedRequest};

const SECOND: Duration = Duration::from_secs(1);

fn serve(app: Application) -> SteppedServer {
    SteppedServer::start(|ioloop| app.bind(ioloop, "127.0.0.1:0"))
}

fn plain() -> Application {
    Application::new().route("/", get(|_req| async { "root" }))
}

fn with_options(options: ServerOptions) -> SteppedServer {
    serve(plain().server_options(options))
}

// ---- timeouts ----

#[test]
fn a_connection_that_sends_nothing_is_closed_silently_at_the_header_timeout() {
    let server = with_options(ServerOptions {
        header_timeout: 10 * SECOND,
        ..Default::default()
    });
    let mut client = server.connect();
    server.advance(10 * SECOND - Duration::from_millis(1));
    assert!(!client.is_closed(&server), "closed before the timeout");
    server.advance(Duration::from_millis(1));
    assert!(client.is_closed(&server));
    assert!(
        client.unparsed().is_empty(),
        "nothing was asked, nothing is answered"
    );
    assert_eq!(server.server.connections(), 0);
}

#[test]
fn the_header_timeout_runs_from_accept_not_from_the_first_byte() {
    let server = with_options(ServerOptions {
        header_timeout: 10 * SECOND,
        ..Default::default()
    });
    let mut client = server.connect();
    server.advance(9 * SECOND);
    client.send(&server, b"GET / HTTP/1.1\r\nHost: x\r\n");
    server.advance(SECOND);
    let reply = client.reply(&server);
    assert_eq!(reply.status, 408);
    assert!(client.is_closed(&server));
}

#[test]
fn an_idle_keep_alive_connection_closes_at_the_idle_timeout() {
    let server = with_options(ServerOptions {
        idle_timeout: 5 * SECOND,
        ..Default::default()
    });
    let mut client = server.connect();
    assert_eq!(
        client
            .request(&server, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .text(),
        "root"
    );
    server.advance(5 * SECOND - Duration::from_millis(1));
    assert!(!client.is_closed(&server));
    // A request just in time resets the idle time.
    assert_eq!(
        client
            .request(&server, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .status,
        200
    );
    server.advance(5 * SECOND - Duration::from_millis(1));
    assert!(!client.is_closed(&server));
    server.advance(Duration::from_millis(1));
    assert!(client.is_closed(&server));
}

#[test]
fn a_body_that_stops_arriving_gets_408_at_the_body_timeout() {
    let app = Application::new().route(
        "/echo",
        post(|mut req: Request| async move { Response::new(200).body(req.take_body()) }),
    );
    let server = serve(app.server_options(ServerOptions {
        body_timeout: 20 * SECOND,
        ..Default::default()
    }));
    let mut client = server.connect();
    client.send(
        &server,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
    );
    server.settle();
    server.advance(20 * SECOND - Duration::from_millis(1));
    assert!(client.reply_within(&server, false, 16).is_none());
    server.advance(Duration::from_millis(1));
    assert_eq!(client.reply(&server).status, 408);
    assert!(client.is_closed(&server));
}

#[test]
fn keep_alive_requests_cost_no_poller_change_each() {
    let server = serve(plain());
    let mut client = server.connect();
    client.request(&server, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let before = server.ioloop.stats().poller_modifications;
    for _ in 0..50 {
        assert_eq!(
            client
                .request(&server, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .text(),
            "root"
        );
    }
    let changes = server.ioloop.stats().poller_modifications - before;
    assert_eq!(changes, 0, "{changes} epoll_ctl over 50 requests");
}

// ---- streamed request bodies ----

/// A streaming upload route whose handler asks for the first piece only once the test
/// completes the gate it is handed (through `gates`), then reads the rest and answers with
/// the byte count.
fn gated_upload(gates: Rc<RefCell<Vec<ioloop::task::Completer<()>>>>) -> Application {
    let upload = move |_req: Request, responder: Responder| {
        let (open, gate) = ioloop::completion();
        gates.borrow_mut().push(open);
        async move {
            if gate.await.is_err() {
                return;
            }
            let mut total = 0;
            loop {
                match responder.next_body_chunk().await {
                    BodyChunk::Data(data) => total += data.len(),
                    BodyChunk::End => break,
                    BodyChunk::Failed(_) => return,
                }
            }
            responder.send(Response::text(format!("{total} bytes")));
        }
    };
    // Over the 2 MiB default: the streamed uploads here are up to 64 MiB.
    Application::new().route("/upload", post(upload).stream_body().body_limit(1 << 30))
}

fn open_gate(gates: &RefCell<Vec<ioloop::task::Completer<()>>>) {
    let gate = gates.borrow_mut().pop().expect("the handler is waiting");
    gate.complete(());
}

#[test]
fn a_streamed_body_is_read_only_as_the_handler_asks() {
    let gates = Rc::default();
    let server = serve(gated_upload(Rc::clone(&gates)));
    let mut client = server.connect();
    const SIZE: usize = 64 << 20;
    client.send(
        &server,
        format!("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {SIZE}\r\n\r\n").as_bytes(),
    );
    // The handler does not ask: the client's writes soon block, far short of the body.
    let body = vec![b'x'; SIZE];
    let mut sent = 0;
    let mut stalled = 0;
    while sent < SIZE && stalled < 200 {
        match std::io::Write::write(&mut client.stream, &body[sent..]) {
            Ok(n) => {
                sent += n;
                stalled = 0;
            }
            Err(_) => {
                stalled += 1;
                server.step();
            }
        }
    }
    assert!(
        sent < SIZE / 4,
        "{sent} bytes went in without the handler asking"
    );
    // Once it asks, everything flows.
    open_gate(&gates);
    client.send(&server, &body[sent..]);
    assert_eq!(client.reply(&server).text(), format!("{SIZE} bytes"));
}

#[test]
fn a_streamed_body_sends_100_continue_on_the_first_ask_only() {
    let gates = Rc::default();
    let server = serve(gated_upload(Rc::clone(&gates)));
    let mut client = server.connect();
    client.send(
        &server,
        b"POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    );
    assert!(
        client.reply_within(&server, false, 64).is_none(),
        "100 Continue before the handler asked"
    );
    open_gate(&gates);
    assert_eq!(client.reply(&server).status, 100);
    client.send(&server, b"abcd");
    assert_eq!(client.reply(&server).text(), "4 bytes");
}

// ---- handlers and hooks ----

async fn panics(_req: Request) -> &'static str {
    panic!("on purpose")
}

#[test]
fn callback_and_async_handlers_share_one_router() {
    let app = Application::new()
        .route(
            "/callback",
            get(|req: Request, responder: Responder| {
                responder.send(Response::text(format!("callback {}", req.path())))
            }),
        )
        .route(
            "/async",
            get(|_req: Request| async {
                ioloop::sleep(Duration::from_secs(2)).await;
                "async"
            }),
        )
        .route(
            "/later",
            get(|_req: Request, responder: Responder| {
                let ioloop = ioloop::IoLoop::current().unwrap();
                ioloop.call_later(SECOND, move |_| responder.send("later"));
            }),
        );
    let server = serve(app);
    let mut client = server.connect();
    assert_eq!(
        client
            .request(&server, "GET /callback HTTP/1.1\r\nHost: x\r\n\r\n")
            .text(),
        "callback /callback"
    );
    client.send(
        &server,
        b"GET /async HTTP/1.1\r\nHost: x\r\n\r\nGET /later HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert!(client.reply_within(&server, false, 64).is_none());
    server.advance(SECOND);
    server.settle();
    assert!(
        client.unparsed().is_empty(),
        "/later is ready but waits for /async before it"
    );
    server.advance(SECOND);
    assert_eq!(client.reply(&server).text(), "async");
    assert_eq!(client.reply(&server).text(), "later");
}

#[test]
fn prepare_hooks_can_answer_instead_of_the_handler() {
    let app = Application::new()
        .route("/secret", get(|_req| async { "the secret" }))
        .prepare(|req| {
            (req.header("authorization").is_none())
                .then(|| Response::error(401).header("WWW-Authenticate", "Basic"))
        });
    let server = serve(app);
    let mut client = server.connect();
    let refused = client.request(&server, "GET /secret HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        (refused.status, refused.header("www-authenticate")),
        (401, Some("Basic"))
    );
    let allowed = client.request(
        &server,
        "GET /secret HTTP/1.1\r\nHost: x\r\nAuthorization: x\r\n\r\n",
    );
    assert_eq!(allowed.text(), "the secret");
}

#[test]
fn on_finish_sees_every_answer_with_its_status_and_time() {
    let log: Rc<RefCell<Vec<FinishedRequest>>> = Rc::default();
    let seen = log.clone();
    let app = Application::new()
        .route(
            "/slow",
            get(|_req| async {
                ioloop::sleep(Duration::from_secs(2)).await;
                "slow"
            }),
        )
        .route("/panic", get(panics))
        .route(
            "/stream",
            get(|_req: Request, responder: Responder| {
                let mut body = responder.start(Response::new(201));
                body.write(b"x").unwrap();
                body.finish();
            }),
        )
        .on_finish(move |done| seen.borrow_mut().push(done.clone()));
    let server = serve(app);
    let mut client = server.connect();
    client.send(&server, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    server.settle();
    server.advance(2 * SECOND);
    assert_eq!(client.reply(&server).text(), "slow");
    assert_eq!(
        client
            .request(&server, "GET /panic HTTP/1.1\r\nHost: x\r\n\r\n")
            .status,
        500
    );
    assert_eq!(
        client
            .request(&server, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
            .status,
        201
    );
    assert_eq!(
        client
            .request(&server, "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
            .status,
        404
    );
    assert_eq!(
        client
            .request(&server, "POST /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            .status,
        405
    );
    let log = log.borrow();
    let summary: Vec<(u16, &str, &str)> = log
        .iter()
        .map(|d| (d.status(), d.method(), d.path()))
        .collect();
    assert_eq!(
        summary,
        [
            (200, "GET", "/slow"),
            (500, "GET", "/panic"),
            (201, "GET", "/stream"),
            (404, "GET", "/nowhere"),
            (405, "POST", "/slow"),
        ]
    );
    assert_eq!(log[0].elapsed(), 2 * SECOND, "measured on the loop's clock");
    assert!(log[0].peer_addr().ip().is_loopback());
}

#[test]
fn the_error_page_writes_404_405_and_the_500_of_a_panic() {
    let app = Application::new()
        .route("/panic", get(panics))
        .error_page(|err, req| Response::text(format!("oops {} at {}", err.status(), req.path())));
    let server = serve(app);
    let mut client = server.connect();
    let reply = client.request(&server, "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        (reply.status, reply.text()),
        (404, "oops 404 at /nowhere".to_owned())
    );
    let reply = client.request(&server, "DELETE /panic HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        (reply.status, reply.text()),
        (405, "oops 405 at /panic".to_owned())
    );
    assert!(reply.header("allow").unwrap().contains("GET"));
    let reply = client.request(&server, "GET /panic HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        (reply.status, reply.text()),
        (500, "oops 500 at /panic".to_owned())
    );
    // The connection survived the panic.
    assert_eq!(
        client
            .request(&server, "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
            .status,
        404
    );
}

#[test]
fn redirects_arguments_and_cookies() {
    let app = Application::new()
        .route(
            "/old",
            get(|_req| async { Response::redirect("/new", true) }),
        )
        .route(
            "/args",
            post(|req: Request| async move {
                format!(
                    "q={} name={} session={}",
                    req.query_arg("q").unwrap_or_default(),
                    req.form_arg("name").unwrap_or_default(),
                    req.cookie("session").unwrap_or_default(),
                )
            }),
        )
        .route(
            "/login",
            get(|_req| async {
                Response::new(204).with_cookie(&Cookie::new("session", "s1").http_only())
            }),
        );
    let server = serve(app);
    let mut client = server.connect();
    let reply = client.request(&server, "GET /old HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        (reply.status, reply.header("location")),
        (301, Some("/new"))
    );
    let form = "name=J%C3%BCrgen+X&other=1";
    let reply = client.request(
        &server,
        &format!(
            "POST /args?q=a%20b HTTP/1.1\r\nHost: x\r\nCookie: a=1; session=abc\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ),
    );
    assert_eq!(reply.text(), "q=a b name=Jürgen X session=abc");
    let reply = client.request(&server, "GET /login HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        reply.header("set-cookie"),
        Some("session=s1; Path=/; HttpOnly")
    );
}

#[test]
fn on_connection_close_tells_a_long_poll_that_its_client_left() {
    let left = Rc::new(Cell::new(false));
    let held: Rc<RefCell<Option<Responder>>> = Rc::default();
    let (left_flag, hold) = (left.clone(), held.clone());
    let app = Application::new().route(
        "/poll",
        get(move |_req: Request, responder: Responder| {
            let left = left_flag.clone();
            responder.on_connection_close(move || left.set(true));
            *hold.borrow_mut() = Some(responder);
        }),
    );
    let server = serve(app);
    let mut client = server.connect();
    client.send(&server, b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n");
    server.settle();
    assert!(held.borrow().is_some() && !left.get());
    drop(client);
    server.settle();
    assert!(left.get(), "the handler was not told");
    let responder = held.borrow_mut().take().unwrap();
    assert!(responder.is_connection_closed());
    responder.send("too late"); // goes nowhere, harms nothing
    assert_eq!(server.server.connections(), 0);
}

#[test]
fn write_all_completes_only_once_the_piece_is_handed_to_the_kernel() {
    const PIECE: usize = 256 * 1024;
    const PIECES: usize = 64;
    let written = Rc::new(Cell::new(0));
    let count = written.clone();
    let app = Application::new().route(
        "/big",
        get(move |_req: Request, responder: Responder| {
            let count = count.clone();
            async move {
                let mut body = responder.start_sized(Response::new(200), (PIECE * PIECES) as u64);
                let piece = vec![7u8; PIECE];
                for _ in 0..PIECES {
                    if body.write_all(&piece).await.is_err() {
                        return;
                    }
                    count.set(count.get() + 1);
                }
                body.finish();
            }
        }),
    );
    let server = serve(app);
    let mut client = server.connect();
    client.send(&server, b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
    server.settle();
    let before_reading = written.get();
    assert!(
        before_reading < PIECES / 2,
        "{before_reading} of {PIECES} pieces 'written' to a client that reads nothing"
    );
    let reply = client.reply(&server);
    assert_eq!(reply.body.len(), PIECE * PIECES);
    server.settle();
    assert_eq!(written.get(), PIECES);
}

// ---- shutdown ----

#[test]
fn graceful_shutdown_finishes_in_flight_requests_closes_idle_ones_and_stops_accepting() {
    let app = Application::new().route(
        "/slow",
        get(|_req| async {
            ioloop::sleep(Duration::from_secs(3)).await;
            "done"
        }),
    );
    let server = serve(app);
    let mut idle = server.connect();
    assert_eq!(
        idle.request(&server, "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
            .status,
        404
    );
    let mut busy = server.connect();
    busy.send(&server, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    server.settle();
    let finished = Rc::new(Cell::new(false));
    let flag = finished.clone();
    server
        .server
        .shutdown_then(10 * SECOND, move |_| flag.set(true));
    assert!(idle.is_closed(&server), "the idle connection stays open");
    assert!(
        std::net::TcpStream::connect(server.addr).is_err(),
        "still accepting"
    );
    assert!(!finished.get());
    server.advance(3 * SECOND);
    let reply = busy.reply(&server);
    assert_eq!(reply.text(), "done");
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(busy.is_closed(&server));
    server.step();
    assert!(finished.get());
}

#[test]
fn graceful_shutdown_closes_what_is_left_at_its_deadline() {
    let app = Application::new().route(
        "/forever",
        get(|_req| async {
            ioloop::sleep(Duration::from_secs(3600)).await;
            "never"
        }),
    );
    let server = serve(app);
    let mut busy = server.connect();
    busy.send(&server, b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n");
    server.settle();
    let finished = Rc::new(Cell::new(false));
    let flag = finished.clone();
    server
        .server
        .shutdown_then(5 * SECOND, move |_| flag.set(true));
    server.advance(5 * SECOND - Duration::from_millis(1));
    assert!(!busy.is_closed(&server));
    server.advance(Duration::from_millis(1));
    assert!(busy.is_closed(&server));
    server.step();
    assert!(finished.get());
}

// ---- more than one core ----

#[test]
fn serve_on_threads_spreads_connections_over_every_thread() {
    let servers = ioloop::http::serve_on_threads(2, 0, ServerOptions::default(), || {
        Application::new().route(
            "/",
            get(|_req| async { format!("{:?}", std::thread::current().id()) }),
        )
    })
    .unwrap();
    let port = servers.local_addrs()[0].port();
    let mut threads = std::collections::BTreeSet::new();
    for _ in 0..400 {
        let reply = common::http::get(port, "/");
        assert_eq!(reply.status, 200);
        threads.insert(reply.text());
        if threads.len() == 2 {
            break;
        }
    }
    assert_eq!(threads.len(), 2, "only one thread served: {threads:?}");
    servers.shutdown(SECOND);
}

#[test]
fn the_test_clients_parser_waits_for_a_whole_response() {
    // The helpers' parser, against a response cut at every byte.
    let bytes = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    for cut in 0..bytes.len() {
        assert!(common::http::parse_reply(&bytes[..cut], false, false).is_none());
    }
    let (reply, used) = common::http::parse_reply(bytes, false, false).unwrap();
    assert_eq!((reply.text(), used), ("abc".to_owned(), bytes.len()));
}

// ---- what a review found ----

#[test]
fn a_streaming_route_answered_before_its_body_closes_after_the_answer() {
    let app = Application::new()
        .route(
            "/upload",
            post(|_req: Request, responder: Responder| responder.send("not reading it"))
                .stream_body(),
        )
        .route("/", get(|_req| async { "root" }));
    let server = serve(app);
    let mut client = server.connect();
    client.send(
        &server,
        b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabcGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    let reply = client.reply(&server);
    assert_eq!(reply.text(), "not reading it");
    assert_eq!(
        reply.header("connection"),
        Some("close"),
        "the body was never read"
    );
    assert!(client.is_closed(&server), "the connection was left stuck");
}

#[test]
fn answers_given_at_once_to_a_pipelining_client_that_does_not_read_stay_bounded() {
    let handled = Rc::new(Cell::new(0));
    let count = handled.clone();
    let app = Application::new().route(
        "/big",
        get(move |_req: Request, responder: Responder| {
            count.set(count.get() + 1);
            responder.send(Response::new(200).body(vec![b'x'; 64 * 1024]));
        }),
    );
    let server = serve(app);
    let mut client = server.connect();
    let batch = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n".repeat(2000);
    client.send(&server, batch.as_bytes());
    server.settle();
    assert!(
        handled.get() < 500,
        "{} of 2000 answers of 64 KiB held for a client that reads nothing",
        handled.get()
    );
    for _ in 0..2000 {
        assert_eq!(client.reply(&server).body.len(), 64 * 1024);
    }
    assert_eq!(handled.get(), 2000);
}

#[test]
fn a_client_that_stops_reading_is_closed_at_the_write_timeout_one_that_reads_is_not() {
    let app = Application::new().route(
        "/big",
        get(|_req| async { Response::new(200).body(vec![b'x'; 16 << 20]) }),
    );
    let server = serve(app.server_options(ServerOptions {
        write_timeout: 30 * SECOND,
        ..Default::default()
    }));
    let mut stalled = server.connect();
    let mut slow = server.connect();
    stalled.send(&server, b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
    slow.send(&server, b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
    server.settle();
    for _ in 0..3 {
        server.advance(20 * SECOND);
        // The slow client takes a part every 20 s (enough for the server's socket to take
        // more); the stalled one nothing.
        let mut part = vec![0u8; 1 << 20];
        let mut taken = 0;
        while taken < part.len() {
            match std::io::Read::read(&mut slow.stream, &mut part[taken..]) {
                Ok(n) if n > 0 => taken += n,
                _ => break,
            }
        }
        server.settle();
    }
    assert!(
        stalled.is_closed(&server),
        "a client reading nothing kept its connection"
    );
    assert!(!slow.is_closed(&server));
    assert_eq!(server.server.connections(), 1);
}

#[test]
fn a_handler_slower_than_the_idle_timeout_keeps_its_keep_alive_connection() {
    let app = Application::new().route(
        "/slow",
        get(|_req| async {
            ioloop::sleep(Duration::from_secs(10)).await;
            "slow"
        }),
    );
    let server = serve(app.server_options(ServerOptions {
        idle_timeout: 5 * SECOND,
        ..Default::default()
    }));
    let mut client = server.connect();
    assert_eq!(
        client
            .request(&server, "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
            .status,
        404
    );
    client.send(&server, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    server.settle();
    server.advance(10 * SECOND);
    let reply = client.reply(&server);
    assert_eq!(
        (reply.text(), reply.header("connection")),
        ("slow".into(), None)
    );
    assert!(!client.is_closed(&server));
}

#[test]
fn a_pipelined_upload_gets_100_continue_once_it_reaches_the_front() {
    let app = Application::new()
        .route(
            "/slow",
            get(|_req| async {
                ioloop::sleep(Duration::from_secs(1)).await;
                "slow"
            }),
        )
        .route(
            "/echo",
            post(|mut req: Request| async move { Response::new(200).body(req.take_body()) }),
        );
    let server = serve(app);
    let mut client = server.connect();
    client.send(
        &server,
        b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    );
    server.settle();
    assert!(
        client.unparsed().is_empty(),
        "100 Continue before the slow answer"
    );
    server.advance(SECOND);
    assert_eq!(client.reply(&server).text(), "slow");
    assert_eq!(client.reply(&server).status, 100);
    client.send(&server, b"hello");
    assert_eq!(client.reply(&server).text(), "hello");
}

#[test]
fn a_pipeline_of_one_still_reads_bodies() {
    let app = Application::new().route(
        "/echo",
        post(|mut req: Request| async move { Response::new(200).body(req.take_body()) }),
    );
    let server = serve(app.server_options(ServerOptions {
        max_pipeline: 1,
        ..Default::default()
    }));
    let mut client = server.connect();
    for _ in 0..3 {
        let reply = client.request(
            &server,
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        );
        assert_eq!(reply.text(), "hello");
    }
}

#[test]
fn two_host_fields_get_400_and_a_chunked_http_1_0_request_closes_after_its_answer() {
    // RFC 9112 §3.2: two Host fields are refused; so are a missing one (in HTTP/1.1) and
    // an invalid one (tests/http/conformance.rs).
    let app = Application::new().route(
        "/echo",
        post(|mut req: Request| async move { Response::new(200).body(req.take_body()) }),
    );
    let server = serve(app);
    let mut client = server.connect();
    let reply = client.request(&server, "POST /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
    assert_eq!(reply.status, 400);
    assert!(client.is_closed(&server));

    let mut client = server.connect();
    let reply = client.request(
        &server,
        "POST /echo HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n\
         3\r\nabc\r\n0\r\n\r\n",
    );
    assert_eq!((reply.status, reply.text()), (200, "abc".to_owned()));
    assert!(client.is_closed(&server), "RFC 9112 §6.1: close after it");
}

#[test]
fn on_connection_close_is_not_called_after_the_answer() {
    let calls = Rc::new(Cell::new(0));
    let count = calls.clone();
    let app = Application::new().route(
        "/",
        get(move |_req: Request, responder: Responder| {
            let count = count.clone();
            responder.on_connection_close(move || count.set(count.get() + 1));
            responder.send("answered");
        }),
    );
    let server = serve(app);
    let mut client = server.connect();
    for _ in 0..3 {
        assert_eq!(
            client
                .request(&server, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .text(),
            "answered"
        );
    }
    drop(client);
    server.settle();
    assert_eq!(calls.get(), 0);
}

/// A chunked body that goes over a streamed route's `body_limit` is refused with 413, and
/// the handler waiting for the next chunk hears `Failed(413)`. (Before, the reader was
/// taken before the limit was checked and dropped unheard: an async reader saw
/// `Failed(500)`, a callback reader nothing, and `Multipart::receive` reported 500.)
#[test]
fn a_streamed_body_over_its_limit_tells_the_waiting_reader_413() {
    let heard = Rc::new(RefCell::new(Vec::new()));
    let seen = Rc::clone(&heard);
    let upload = move |_req: Request, responder: Responder| {
        let seen = Rc::clone(&seen);
        async move {
            loop {
                let chunk = responder.next_body_chunk().await;
                let end = !matches!(chunk, BodyChunk::Data(_));
                seen.borrow_mut().push(match chunk {
                    BodyChunk::Data(data) => format!("data {}", data.len()),
                    BodyChunk::End => "end".to_owned(),
                    BodyChunk::Failed(status) => format!("failed {status}"),
                });
                if end {
                    return;
                }
            }
        }
    };
    let server =
        serve(Application::new().route("/upload", post(upload).stream_body().body_limit(8)));
    let mut client = server.connect();
    client.send(
        &server,
        b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n",
    );
    server.settle();
    client.send(&server, b"6\r\nfghijk\r\n0\r\n\r\n");
    let reply = client.reply(&server);
    assert_eq!(reply.status, 413);
    // The handler's task runs on the iteration after the reader was told.
    server.settle();
    assert_eq!(*heard.borrow(), ["data 5", "failed 413"]);
}
