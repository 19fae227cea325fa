//! Workload `timing`: how precisely an idle loop waits.
//!
//! - *run_once overshoot*: how much longer than asked a wait of `d` takes on an idle
//!   loop: `run_once(d)` for ioloop, `std::thread::sleep(d)`, and `tokio::time::sleep(d)`
//!   awaited on a current_thread runtime.
//! - *timer lateness*: how long after its deadline a timer's callback runs: a timeout at
//!   `now + d` (ioloop: `add_timeout` then `start` until its callback stops the loop),
//!   `thread::sleep` to the deadline, `tokio::time::sleep_until` the deadline. Never
//!   negative for ioloop (a timer never fires early); the report counts early firings.
//!
//! Each sample is one wait on the wall clock; median and p99 over `n` samples, in µs.
//! `ioloop-ms` is ioloop run under `strace` refusing `epoll_pwait2`: its millisecond
//! fallback (what every wait was before it used `epoll_pwait2`).

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ioloop::IoLoop;

use crate::util::{percentile, Report};

/// Runs both measurements for a wait of `wait_us` µs; `n` samples each (default 2000).
pub(crate) fn run(imp: &str, n: Option<usize>, wait_us: usize) -> Result<Report, String> {
    let n = n.unwrap_or(2000).max(1);
    let d = Duration::from_micros(wait_us as u64);
    let (overshoot, lateness, early, note) = match imp {
        "ioloop" => {
            let (o, l, e) = ioloop_samples(n, d)?;
            (o, l, e, "`IoLoop::run_once(d)` on an idle loop; `add_timeout(now + d)` then `start()`, the callback stopping the loop")
        }
        "ioloop-ms" => {
            // `timing.sh` runs it under `strace`, which refuses `epoll_pwait2` (ENOSYS):
            // the loop's millisecond fallback, as every wait was before Linux 5.11 support.
            if !traced() {
                return Err("timing ioloop-ms: run it under strace with epoll_pwait2 \
                            refused (bench/timing.sh does)"
                    .into());
            }
            let (o, l, e) = ioloop_samples(n, d)?;
            (o, l, e, "ioloop as above with `epoll_pwait2` refused (`strace -e inject=epoll_pwait2:error=ENOSYS`): its fallback, `epoll_wait` in milliseconds rounded up, which every wait used before")
        }
        "std" => {
            let (o, l) = std_samples(n, d);
            (
                o,
                l,
                0,
                "`std::thread::sleep(d)`; lateness: `thread::sleep(deadline - now)`",
            )
        }
        "tokio" => {
            let (o, l) = tokio_samples(n, d)?;
            (o, l, 0, "tokio current_thread (`enable_time`): `sleep(d).await`; `sleep_until(deadline).await`")
        }
        other => return Err(format!("timing: unknown implementation {other}")),
    };
    let us = |sorted: &[Duration], p: f64| percentile(sorted, p).as_secs_f64() * 1e6;
    Ok(Report::new("timing", imp, n)
        .param("wait_us", wait_us)
        .metric("overshoot_median_us", us(&overshoot, 50.0))
        .metric("overshoot_p99_us", us(&overshoot, 99.0))
        .metric("lateness_median_us", us(&lateness, 50.0))
        .metric("lateness_p99_us", us(&lateness, 99.0))
        .metric("early", early as f64)
        .note(note))
}

/// Whether this process is traced (by the `strace` that refuses `epoll_pwait2`).
fn traced() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("TracerPid:"))
            .is_some_and(|pid| pid.trim() != "0")
    })
}

/// Overshoots and latenesses, sorted, and how many timers fired before their deadline.
fn ioloop_samples(n: usize, d: Duration) -> Result<(Vec<Duration>, Vec<Duration>, usize), String> {
    let ioloop = IoLoop::new().map_err(|e| e.to_string())?;
    let mut overshoot = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        ioloop.run_once(d).map_err(|e| e.to_string())?;
        overshoot.push(start.elapsed().saturating_sub(d));
    }
    let mut lateness = Vec::with_capacity(n);
    let mut early = 0;
    for _ in 0..n {
        let deadline = Instant::now() + d;
        let fired = Rc::new(Cell::new(None));
        let f = fired.clone();
        ioloop.add_timeout(deadline, move |ioloop| {
            f.set(Some(Instant::now()));
            ioloop.stop();
        });
        ioloop.start().map_err(|e| e.to_string())?;
        let at = fired.get().ok_or("the timer did not fire")?;
        if at < deadline {
            early += 1;
        }
        lateness.push(at.saturating_duration_since(deadline));
    }
    overshoot.sort();
    lateness.sort();
    Ok((overshoot, lateness, early))
}

fn std_samples(n: usize, d: Duration) -> (Vec<Duration>, Vec<Duration>) {
    let mut overshoot = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        std::thread::sleep(d);
        overshoot.push(start.elapsed().saturating_sub(d));
    }
    let mut lateness = Vec::with_capacity(n);
    for _ in 0..n {
        let deadline = Instant::now() + d;
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
        lateness.push(Instant::now().saturating_duration_since(deadline));
    }
    overshoot.sort();
    lateness.sort();
    (overshoot, lateness)
}

fn tokio_samples(n: usize, d: Duration) -> Result<(Vec<Duration>, Vec<Duration>), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| e.to_string())?;
    let (mut overshoot, mut lateness) = rt.block_on(async move {
        let mut overshoot = Vec::with_capacity(n);
        for _ in 0..n {
            let start = Instant::now();
            tokio::time::sleep(d).await;
            overshoot.push(start.elapsed().saturating_sub(d));
        }
        let mut lateness = Vec::with_capacity(n);
        for _ in 0..n {
            let deadline = Instant::now() + d;
            tokio::time::sleep_until(deadline.into()).await;
            lateness.push(Instant::now().saturating_duration_since(deadline));
        }
        (overshoot, lateness)
    });
    overshoot.sort();
    lateness.sort();
    Ok((overshoot, lateness))
}
