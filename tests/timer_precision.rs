//! Waits keep sub-millisecond precision, and a timer never fires before its deadline on
//! the real clock. No assertion here is about how long anything took: the first test
//! compares each firing with its own deadline (a busy machine only makes it later), the
//! second reads the timeouts the loop hands the kernel, under `strace`.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ioloop::IoLoop;

/// DESIGN.md §2: "A timer never fires before its deadline." Deadlines a fraction of a
/// millisecond apart, on the system clock, stepped both by long waits (woken by the timer)
/// and by waits shorter than the deadline (woken by `max_wait`).
#[test]
fn a_timer_never_fires_before_its_deadline_on_the_real_clock() {
    for max_wait in [Duration::from_secs(1), Duration::from_micros(90)] {
        let ioloop = IoLoop::new().unwrap();
        let early = Rc::new(RefCell::new(Vec::new()));
        let fired = Rc::new(RefCell::new(0usize));
        let start = ioloop.time();
        let count = 120;
        for i in 0..count {
            let deadline = start + Duration::from_nanos(137_000 * i + 1_000 * (i % 7));
            let (early, fired) = (early.clone(), fired.clone());
            // Each callback stops the iteration: no idle wait after the last one.
            ioloop.add_timeout(deadline, move |ioloop| {
                ioloop.stop();
                let now = Instant::now();
                if now < deadline {
                    early.borrow_mut().push((i, deadline - now));
                }
                *fired.borrow_mut() += 1;
            });
        }
        while *fired.borrow() < count as usize {
            ioloop.run_once(max_wait).unwrap();
        }
        assert!(
            early.borrow().is_empty(),
            "fired early: {:?}",
            early.borrow()
        );
    }
}

/// What the child under `strace` does: waits on an idle loop for 400 µs, three times,
/// then for a timer 1.5 ms away with a `max_wait` of one second.
fn waits_to_trace() {
    let ioloop = IoLoop::new().unwrap();
    for _ in 0..3 {
        ioloop.run_once(Duration::from_micros(400)).unwrap();
    }
    let fired = Rc::new(RefCell::new(false));
    let f = fired.clone();
    ioloop.call_later(Duration::from_micros(1500), move |ioloop| {
        *f.borrow_mut() = true;
        ioloop.stop(); // no wait after it
    });
    while !*fired.borrow() {
        ioloop.run_once(Duration::from_secs(1)).unwrap();
    }
}

/// The timeout arguments, in nanoseconds, of the epoll waits in an `strace` log: the
/// timespec of `epoll_pwait2`, the milliseconds of `epoll_wait`/`epoll_pwait`. `None` if
/// the kernel refused `epoll_pwait2` (ENOSYS or EPERM).
fn traced_timeouts(log: &str) -> Option<Vec<u64>> {
    let mut timeouts = Vec::new();
    for line in log.lines() {
        if line.contains("epoll_pwait2(") {
            if line.contains("ENOSYS") || line.contains("EPERM") {
                return None;
            }
            let field = |name: &str| -> u64 {
                let at = line.find(name).expect(line) + name.len();
                let digits: String = line[at..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                digits.parse().expect(line)
            };
            timeouts.push(field("tv_sec=") * 1_000_000_000 + field("tv_nsec="));
        } else if line.contains("epoll_wait(") || line.contains("epoll_pwait(") {
            // `epoll_wait(fd, [events], maxevents, timeout_ms` then, for `epoll_pwait`,
            // the signal mask: the timeout is the second argument after the events.
            let after_events = line.split_once("], ").expect(line).1;
            let ms: i64 = after_events
                .split([',', ')'])
                .nth(1)
                .expect(line)
                .trim()
                .parse()
                .expect(line);
            if ms >= 0 {
                timeouts.push(ms as u64 * 1_000_000);
            }
        }
    }
    Some(timeouts)
}

/// The loop hands the kernel the wait it was asked for, not one rounded up to whole
/// milliseconds: `run_once(400 µs)` on an idle loop waits 400 000 ns, and the wait for a
/// timer 1.5 ms away is between 1 and 1.5 ms. Where the kernel has no `epoll_pwait2`
/// (Linux before 5.11, or a seccomp filter), the fallback in milliseconds rounds up:
/// never a wait of zero, never one shorter than asked.
#[cfg(target_os = "linux")]
#[test]
fn waits_reach_the_kernel_unrounded() {
    const CHILD: &str = "IOLOOP_TIMER_PRECISION_CHILD";
    if std::env::var_os(CHILD).is_some() {
        return waits_to_trace();
    }
    if !common::has_tool("strace", &["-V"]) {
        return common::require_tool("strace");
    }
    let log = std::env::temp_dir().join(format!(
        "ioloop-timer-precision-{}.strace",
        std::process::id()
    ));
    let out = std::process::Command::new("strace")
        .arg("-f")
        .args(["-e", "trace=epoll_wait,epoll_pwait,epoll_pwait2"])
        .arg("-o")
        .arg(&log)
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "waits_reach_the_kernel_unrounded",
            "--test-threads",
            "1",
        ])
        .env(CHILD, "1")
        .output()
        .expect("strace runs");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    if !out.status.success() && text.is_empty() {
        // strace cannot trace here (no ptrace permission).
        return common::require_tool("strace (ptrace)");
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    match traced_timeouts(&text) {
        Some(timeouts) => {
            let idle: Vec<_> = timeouts.iter().filter(|&&t| t == 400_000).collect();
            assert_eq!(idle.len(), 3, "three waits of 400 µs: {timeouts:?}\n{text}");
            assert!(
                timeouts.iter().any(|&t| t > 1_000_000 && t <= 1_500_000),
                "a wait for the timer 1.5 ms away: {timeouts:?}\n{text}"
            );
        }
        None => {
            // The millisecond fallback: the 400 µs waits become 1 ms, never 0.
            let fallback = traced_timeouts(&text.replace("epoll_pwait2(", "refused("));
            let timeouts = fallback.unwrap();
            assert!(
                timeouts.iter().filter(|&&t| t == 1_000_000).count() >= 3,
                "{timeouts:?}\n{text}"
            );
            assert!(!timeouts.contains(&0), "{timeouts:?}\n{text}");
        }
    }
}
