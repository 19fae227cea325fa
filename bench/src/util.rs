//! Shared helpers: resource usage, thread CPU clocks, thread pinning, a tiny RNG, and
//! JSON-line output.

use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// User + system CPU time and peak RSS of this process, from `getrusage(RUSAGE_SELF)`.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub cpu: Duration,
    pub maxrss_kb: u64,
}

pub fn usage() -> Usage {
    // SAFETY: getrusage only writes into the struct we pass.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Usage {
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        maxrss_kb: ru.ru_maxrss as u64,
    }
}

/// The CPU-time clock of the calling thread (user + system), readable from any thread of
/// the process with [`cpu_clock`].
pub fn this_thread_cpu_clock() -> libc::clockid_t {
    let mut id: libc::clockid_t = 0;
    // SAFETY: writes the clock id of the calling thread into `id`.
    let r = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut id) };
    assert_eq!(r, 0, "pthread_getcpuclockid failed");
    id
}

/// The current value of a CPU-time clock (from [`this_thread_cpu_clock`], or
/// `libc::CLOCK_THREAD_CPUTIME_ID` for the calling thread).
pub fn cpu_clock(id: libc::clockid_t) -> Duration {
    // SAFETY: clock_gettime only writes into the timespec we pass.
    let ts = unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(id, &mut ts);
        ts
    };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Pins the calling thread to `cpu`, if that CPU exists. Returns whether it worked.
pub fn pin_current_thread(cpu: usize) -> bool {
    // SAFETY: plain libc calls on a zeroed cpu_set_t.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// xorshift64*: deterministic deadlines, the same for every implementation.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        ((self.next_u64() >> 32) * bound) >> 32
    }
}

/// `count` pseudo-random offsets in nanoseconds, spread over `spread`.
pub fn offsets_ns(count: usize, spread: Duration) -> Vec<u64> {
    let mut rng = Rng::new(0x1234_5678_9abc_def1);
    let spread = spread.as_nanos() as u64;
    (0..count).map(|_| rng.below(spread)).collect()
}

pub fn ns_per(d: Duration, count: usize) -> f64 {
    d.as_nanos() as f64 / count.max(1) as f64
}

/// Sorted-sample percentile (nearest rank).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One result line: `{"workload":..,"impl":..,"n":..,"metrics":{..},"note":..}`, with
/// `"params":{..}` after `n` for a workload run with parameters (`echo`).
pub struct Report {
    workload: String,
    imp: String,
    n: usize,
    params: Vec<(&'static str, usize)>,
    metrics: Vec<(&'static str, f64)>,
    note: String,
}

impl Report {
    pub fn new(workload: &str, imp: &str, n: usize) -> Report {
        Report {
            workload: workload.to_owned(),
            imp: imp.to_owned(),
            n,
            params: Vec::new(),
            metrics: Vec::new(),
            note: String::new(),
        }
    }

    pub fn param(mut self, name: &'static str, value: usize) -> Report {
        self.params.push((name, value));
        self
    }

    pub fn metric(mut self, name: &'static str, value: f64) -> Report {
        self.metrics.push((name, value));
        self
    }

    pub fn note(mut self, note: &str) -> Report {
        self.note = note.to_owned();
        self
    }

    pub fn to_json(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "{{\"workload\":\"{}\",\"impl\":\"{}\",\"n\":{},",
            self.workload, self.imp, self.n
        );
        if !self.params.is_empty() {
            s.push_str("\"params\":{");
            for (i, (k, v)) in self.params.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                let _ = write!(s, "\"{k}\":{v}");
            }
            s.push_str("},");
        }
        s.push_str("\"metrics\":{");
        for (i, (k, v)) in self.metrics.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(s, "\"{k}\":{v:.4}");
        }
        let _ = write!(s, "}},\"note\":\"{}\"}}", self.note.replace('"', "'"));
        s
    }
}

/// The kernel's id of the calling thread (`/proc/<pid>/task/<tid>`).
pub fn current_tid() -> u32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

/// The server process's CPU time (utime+stime), read from `/proc`.
pub struct ServerCpu(pub Option<u32>);

impl ServerCpu {
    pub fn seconds(&self) -> f64 {
        let Some(pid) = self.0 else { return 0.0 };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return 0.0;
        };
        // The fields after the parenthesised command name; utime and stime are the 12th
        // and 13th of them (14 and 15 of the whole line).
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
            f.iter().filter_map(|t| t.parse::<f64>().ok()).sum()
        });
        // SAFETY: sysconf has no preconditions.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        ticks / per_second
    }
}

/// The arguments the load clients of `ws.sh` and `tls.sh` share:
/// `PORT MODE CONNS SIZE MS`, then each client's own (`rest`).
pub struct LoadArgs {
    pub port: u16,
    pub mode: String,
    pub conns: usize,
    pub size: usize,
    pub window: Duration,
    pub rest: Vec<String>,
}

impl LoadArgs {
    /// Parses `args`, naming `usage` when one is missing.
    pub fn parse(args: &[String], usage: &'static str) -> Result<LoadArgs, String> {
        let arg = |i: usize| args.get(i).cloned().ok_or(usage);
        let number = |i: usize, what: &str| -> Result<u64, String> {
            arg(i)?.parse().map_err(|_| format!("bad {what}"))
        };
        Ok(LoadArgs {
            port: u16::try_from(number(0, "port")?).map_err(|_| "bad port")?,
            mode: arg(1)?,
            conns: number(2, "conns")? as usize,
            size: number(3, "size")? as usize,
            window: Duration::from_millis(number(4, "ms")?),
            rest: args.get(5..).unwrap_or_default().to_vec(),
        })
    }
}

/// Runs `serving` (a tokio server's accept loop) until `stop` is set (by SIGTERM),
/// looking at the flag every 50 ms.
pub async fn serve_until_stopped(stop: &AtomicBool, serving: impl Future) {
    let watch = async {
        while !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        _ = serving => {}
        _ = watch => {}
    }
}
