//! The Redis client workload of `bench/fanout.sh`: one connection, pipelined commands.
//!
//! ```text
//! ioloop-bench redis-load ioloop|redis-rs PORT set|get|publish N PIPELINE
//! ```
//!
//! Sends N commands in batches of PIPELINE (all of a batch written before its replies are
//! read, as `redis-benchmark -P` does) on one connection to the `redis-server` on PORT:
//! `SET key:__rand_int__ xxx`, `GET key:__rand_int__` or `PUBLISH chan xxx`, the
//! commands and 3-byte values of `redis-benchmark`'s defaults. `ioloop`: `RedisClient`
//! (RESP3); `redis-rs`: the `redis` crate's multiplexed connection on a tokio
//! current_thread runtime with `redis::pipe()`. Prints
//! `{"ops": N, "secs": S, "client_cpu_s": C}` (C: this process's user+system CPU over
//! the run).

use std::time::Instant;

use crate::util::usage;

const USAGE: &str = "usage: redis-load ioloop|redis-rs PORT set|get|publish N PIPELINE";

fn command(op: &str) -> Result<&'static [&'static str], String> {
    Ok(match op {
        "set" => &["SET", "key:__rand_int__", "xxx"],
        "get" => &["GET", "key:__rand_int__"],
        "publish" => &["PUBLISH", "chan", "xxx"],
        other => return Err(format!("unknown op {other}")),
    })
}

pub fn load(args: &[String]) -> Result<(), String> {
    let [imp, port, op, n, pipeline] = args else {
        return Err(USAGE.into());
    };
    let number = |s: &String| s.parse::<usize>().map_err(|_| USAGE.to_string());
    let (n, pipeline) = (number(n)?, number(pipeline)?.max(1));
    let url = format!("redis://127.0.0.1:{port}");
    let args = command(op)?;
    let batches = n.div_ceil(pipeline);
    let cpu_before = usage().cpu;
    let started = Instant::now();
    match imp.as_str() {
        "ioloop" => ioloop_load(&url, args, batches, pipeline)?,
        "redis-rs" => redis_rs_load(&url, args, batches, pipeline)?,
        other => return Err(format!("unknown client {other}")),
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = (usage().cpu - cpu_before).as_secs_f64();
    let ops = batches * pipeline;
    println!(r#"{{"ops": {ops}, "secs": {secs}, "client_cpu_s": {cpu}}}"#);
    Ok(())
}

fn ioloop_load(
    url: &str,
    args: &'static [&'static str],
    batches: usize,
    pipeline: usize,
) -> Result<(), String> {
    use ioloop::redis::RedisClient;
    let ioloop = ioloop::IoLoop::new().map_err(|e| e.to_string())?;
    let handle = ioloop.clone();
    let url = url.to_owned();
    ioloop
        .run_sync(async move {
            let redis = RedisClient::connect(&handle, &url)
                .await
                .map_err(|e| e.to_string())?;
            let mut replies = Vec::with_capacity(pipeline);
            for _ in 0..batches {
                replies.extend((0..pipeline).map(|_| redis.cmd(args)));
                for reply in replies.drain(..) {
                    reply.await.map_err(|e| e.to_string())?;
                }
            }
            Ok::<(), String>(())
        })
        .map_err(|e| e.to_string())?
}

fn redis_rs_load(
    url: &str,
    args: &'static [&'static str],
    batches: usize,
    pipeline: usize,
) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let url = url.to_owned();
    runtime.block_on(async move {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let mut con = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        let mut pipe = redis::pipe();
        for _ in 0..pipeline {
            let mut cmd = redis::cmd(args[0]);
            for arg in &args[1..] {
                cmd.arg(*arg);
            }
            pipe.add_command(cmd);
        }
        for _ in 0..batches {
            let _: Vec<redis::Value> = pipe
                .query_async(&mut con)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}
