//! The HTTP client workload: GETs of `/plaintext` from one local server, by ioloop's
//! `HttpClient` and by hyper's client (hyper-util's legacy pooled client on a tokio
//! current_thread runtime), `REQUESTS` in all, `CONCURRENCY` at a time.
//!
//! ```text
//! ioloop-bench http-client-load ioloop|hyper PORT REQUESTS CONCURRENCY
//! ```
//!
//! Prints one JSON object: requests done, seconds, and this process's CPU (utime +
//! stime) over the run. Both clients keep connections alive and are asked for up to
//! `CONCURRENCY` connections.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use crate::util::usage;

const USAGE: &str = "usage: http-client-load ioloop|hyper PORT REQUESTS CONCURRENCY";

pub fn load(args: &[String]) -> Result<(), String> {
    let [imp, port, requests, concurrency] = args else {
        return Err(USAGE.into());
    };
    let number = |s: &String| s.parse::<usize>().map_err(|_| USAGE.to_string());
    let (port, requests, concurrency) = (number(port)?, number(requests)?, number(concurrency)?);
    let url = format!("http://127.0.0.1:{port}/plaintext");
    let cpu_before = usage().cpu;
    let started = Instant::now();
    match imp.as_str() {
        "ioloop" => ioloop_client(&url, requests, concurrency)?,
        "hyper" => hyper_client(&url, requests, concurrency)?,
        other => return Err(format!("unknown client {other}")),
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = (usage().cpu - cpu_before).as_secs_f64();
    println!(r#"{{"requests": {requests}, "secs": {secs}, "client_cpu_s": {cpu}}}"#);
    Ok(())
}

fn ioloop_client(url: &str, requests: usize, concurrency: usize) -> Result<(), String> {
    use ioloop::http::{HttpClient, HttpClientOptions};

    let ioloop = ioloop::IoLoop::new().map_err(|e| e.to_string())?;
    let options = HttpClientOptions {
        max_clients: concurrency,
        max_idle_per_host: concurrency,
        ..Default::default()
    };
    let client = HttpClient::with_options(&ioloop, options);
    let left = Rc::new(Cell::new(requests));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, left, url) = (client.clone(), left.clone(), url.to_owned());
            ioloop.spawn(async move {
                while left.get() > 0 {
                    left.set(left.get() - 1);
                    let response = client
                        .fetch(url.as_str())
                        .await
                        .map_err(|e| e.to_string())?;
                    if response.status() != 200 || response.body().is_empty() {
                        return Err(format!("bad response {}", response.status()));
                    }
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    ioloop
        .run_sync(async move {
            for worker in workers {
                worker.await.map_err(|e| e.to_string())??;
            }
            Ok::<(), String>(())
        })
        .map_err(|e| e.to_string())?
}

fn hyper_client(url: &str, requests: usize, concurrency: usize) -> Result<(), String> {
    use http_body_util::{BodyExt, Empty};
    use hyper::body::Bytes;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{e}"))?;
    runtime.block_on(async move {
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(concurrency)
            .build_http::<Empty<Bytes>>();
        let left = Rc::new(Cell::new(requests));
        let local = tokio::task::LocalSet::new();
        for _ in 0..concurrency {
            let (client, left, uri) = (client.clone(), left.clone(), uri.clone());
            local.spawn_local(async move {
                while left.get() > 0 {
                    left.set(left.get() - 1);
                    let response = client.get(uri.clone()).await.expect("hyper GET");
                    assert_eq!(response.status(), 200);
                    let body = response
                        .into_body()
                        .collect()
                        .await
                        .expect("body")
                        .to_bytes();
                    assert!(!body.is_empty());
                }
            });
        }
        local.await;
        Ok(())
    })
}
