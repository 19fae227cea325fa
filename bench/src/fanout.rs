//! The room fan-out workload of `bench/fanout.sh`: a chat room's server, one process or
//! several through Redis, and the load client that measures deliveries and their latency.
//!
//! ```text
//! ioloop-bench fanout-server [--redis URL] [--threads N]
//! ioloop-bench fanout-load PORT[,PORT...] CONNS SIZE MS
//! ```
//!
//! The server prints `listening on 127.0.0.1:PORT` and serves until SIGTERM: `GET
//! /broadcast` joins a room (`websocket::Room`, shared by its N loops, or with `--redis`
//! a `websocket::RedisRoom` on channel `fanout`) and every message a member sends is
//! said to the room.
//!
//! The load client spreads CONNS members over the PORTs in turn (two servers sharing a
//! room through Redis: half on each), waits until a first message has reached every
//! member (everyone has joined), then the first member sends a SIZE-byte message and,
//! once every member has received it, the next. Over MS ms (after a quarter of that as
//! warm-up) it counts deliveries and the latency of each (from the send to its arrival
//! at a member). Prints `{"broadcasts": B, "deliveries": D, "secs": S, "p50_us": ..,
//! "p99_us": .., "max_us": ..}`.

use std::time::{Duration, Instant};

use polling::{Event, Events, PollMode, Poller};

use crate::util::percentile;
use crate::ws::{client_frame, handshake, pump, Client};

const USAGE: &str = "usage: fanout-load PORT[,PORT...] CONNS SIZE MS";

pub fn serve(args: &[String]) -> Result<(), String> {
    use ioloop::signal::{SIGINT, SIGTERM};
    use ioloop::web::Application;
    use ioloop::websocket::{
        Message, RedisRoom, RedisRoomOptions, Room, WebSocket, WebSocketHandler, WebSocketRoute,
    };

    #[derive(Clone)]
    enum Fan {
        Local(Room),
        Redis(RedisRoom),
    }
    struct Member(Fan);
    impl WebSocketHandler for Member {
        fn open(&mut self, ws: &WebSocket) {
            match &self.0 {
                Fan::Local(room) => room.join(ws),
                Fan::Redis(room) => room.join(ws),
            }
        }
        fn on_message(&mut self, _ws: &WebSocket, message: Message) {
            match &self.0 {
                Fan::Local(room) => room.say(message),
                Fan::Redis(room) => room.say(message),
            }
        }
    }
    fn app(fan: Fan) -> Application {
        Application::new().route(
            "/broadcast",
            WebSocketRoute::with_handler(move |_req| Member(fan.clone())).allow_any_origin(),
        )
    }

    let (mut redis, mut threads) = (None, 1usize);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(USAGE)?;
        match flag.as_str() {
            "--redis" => redis = Some(value.clone()),
            "--threads" => threads = value.parse().map_err(|_| USAGE)?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    let ioloop = ioloop::IoLoop::new().map_err(|e| e.to_string())?;
    let fan = match redis {
        Some(url) => Fan::Redis(
            RedisRoom::new(&ioloop, &url, "fanout", RedisRoomOptions::default())
                .map_err(|e| e.to_string())?,
        ),
        None => Fan::Local(Room::new()),
    };
    let mut handlers = Vec::new();
    for signal in [SIGINT, SIGTERM] {
        handlers.push(
            ioloop
                .add_signal_handler(signal, |ioloop| ioloop.stop())
                .map_err(|e| e.to_string())?,
        );
    }
    if threads > 1 {
        let shared = fan.clone();
        let servers = ioloop::http::serve_on_threads(
            threads,
            0,
            ioloop::http::ServerOptions::default(),
            move || app(shared.clone()),
        )
        .map_err(|e| e.to_string())?;
        announce(servers.local_addrs()[0].port());
        ioloop.start().map_err(|e| e.to_string())?;
        servers.shutdown(Duration::from_secs(1));
    } else {
        let server = app(fan.clone())
            .listen(&ioloop, 0)
            .map_err(|e| e.to_string())?;
        announce(server.local_addrs()[0].port());
        ioloop.start().map_err(|e| e.to_string())?;
    }
    for handler in handlers {
        ioloop.remove_signal_handler(handler);
    }
    drop(fan);
    Ok(())
}

fn announce(port: u16) {
    use std::io::Write;
    println!("listening on 127.0.0.1:{port}");
    let _ = std::io::stdout().flush();
}

pub fn load(args: &[String]) -> Result<(), String> {
    let [ports, conns, size, ms] = args else {
        return Err(USAGE.into());
    };
    let ports: Vec<u16> = ports
        .split(',')
        .map(|p| p.parse().map_err(|_| USAGE.to_string()))
        .collect::<Result<_, _>>()?;
    let number = |s: &String| s.parse::<usize>().map_err(|_| USAGE.to_string());
    let (conns, size, window) = (
        number(conns)?,
        number(size)?,
        Duration::from_millis(number(ms)? as u64),
    );
    let frame = std::rc::Rc::new(client_frame(size));
    let poller = Poller::new().map_err(|e| e.to_string())?;
    let mut clients = Vec::with_capacity(conns);
    for key in 0..conns {
        let sock = handshake(ports[key % ports.len()], "/broadcast")?;
        // SAFETY: the socket outlives its registration: it is deleted from the poller
        // before the client (and its socket) is dropped, at the end of this function.
        unsafe { poller.add_with_mode(&sock, Event::readable(key), PollMode::Level) }
            .map_err(|e| e.to_string())?;
        clients.push(Client::new(sock, frame.clone()));
    }
    let result = run(&poller, &mut clients, window);
    for client in &clients {
        let _ = poller.delete(&client.sock);
    }
    let (broadcasts, secs, mut latencies) = result?;
    latencies.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        r#"{{"broadcasts": {broadcasts}, "deliveries": {}, "secs": {secs:.6}, "p50_us": {:.1}, "p99_us": {:.1}, "max_us": {:.1}}}"#,
        broadcasts * conns as u64,
        us(percentile(&latencies, 50.0)),
        us(percentile(&latencies, 99.0)),
        us(latencies.last().copied().unwrap_or_default()),
    );
    Ok(())
}

fn run(
    poller: &Poller,
    clients: &mut [Client],
    window: Duration,
) -> Result<(u64, f64, Vec<Duration>), String> {
    let members = clients.len();
    let mut events = Events::new();
    // Everyone in: the first message must reach every member. A member whose server had
    // not joined it yet misses it: then send again (each try counts afresh).
    'joined: loop {
        let mut got = vec![false; members];
        clients[0].send().map_err(|e| e.to_string())?;
        let tried = Instant::now();
        while got.iter().any(|g| !g) {
            if tried.elapsed() > Duration::from_millis(500) {
                continue 'joined;
            }
            pump(poller, clients, &mut events, |_, key, _| {
                got[key] = true;
                Ok(())
            })?;
        }
        // Late copies of earlier tries: let them arrive and drop them.
        let settle = Instant::now() + Duration::from_millis(200);
        while Instant::now() < settle {
            let mut quiet = Events::new();
            poller
                .wait(&mut quiet, Some(Duration::from_millis(20)))
                .map_err(|e| e.to_string())?;
            for event in quiet.iter() {
                clients[event.key].receive()?;
            }
        }
        break;
    }
    let mut received = 0usize;
    let mut broadcasts = 0u64;
    let mut sent_at = Instant::now();
    clients[0].send().map_err(|e| e.to_string())?;
    let warm_up = Instant::now() + window / 4;
    let mut started: Option<(Instant, u64)> = None;
    let mut latencies = Vec::new();
    loop {
        let now = Instant::now();
        match started {
            None if now >= warm_up => started = Some((now, broadcasts)),
            Some((at, _)) if now >= at + window => break,
            _ => {}
        }
        let measuring = started.is_some();
        pump(poller, clients, &mut events, |clients, _key, frames| {
            let now = Instant::now();
            if measuring {
                latencies.extend(std::iter::repeat_n(now - sent_at, frames));
            }
            received += frames;
            if received >= members {
                received -= members;
                broadcasts += 1;
                sent_at = Instant::now();
                clients[0].send().map_err(|e| e.to_string())?;
            }
            Ok(())
        })?;
    }
    let (at, before) = started.expect("the window started");
    Ok((broadcasts - before, at.elapsed().as_secs_f64(), latencies))
}
