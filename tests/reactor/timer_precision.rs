//! Waits keep sub-millisecond precision, and a timer never fires before its deadline on
//! the real clock. No assertion here is about how long anything took: the first test
//! compares each firing with its own deadline (a busy machine only makes it later), the
//! second reads the timeouts the loop hands the kernel, under `strace`.

use crate::common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ioloop::{IoLoop, ManualClock};

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

/// What the child under `strace` does, on a manual clock so that every wait is known to
/// the nanosecond: waits on an idle loop for 400 µs, three times, then for a timer 1.5 ms
/// away (the clock stands still meanwhile) with a `max_wait` of one second.
fn waits_to_trace() {
    let clock = ManualClock::new();
    let ioloop = IoLoop::builder().clock(clock.clone()).build().unwrap();
    for _ in 0..3 {
        ioloop.run_once(Duration::from_micros(400)).unwrap();
    }
    let fired = Rc::new(RefCell::new(false));
    let f = fired.clone();
    ioloop.call_later(Duration::from_micros(1500), move |_| *f.borrow_mut() = true);
    ioloop.run_once(Duration::from_secs(1)).unwrap();
    assert!(!*fired.borrow(), "the manual clock has not moved");
    clock.advance(Duration::from_micros(1500));
    ioloop.run_once(Duration::ZERO).unwrap(); // no wait: nothing to poll
    assert!(*fired.borrow());
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

const CHILD: &str = "IOLOOP_TIMER_PRECISION_CHILD";

/// The full name of this module's test `name` in its test binary (the module path
/// without the crate's name), as the child's `--exact` filter needs it.
fn full_test_name(name: &str) -> String {
    match module_path!().split_once("::") {
        Some((_, module)) => format!("{module}::{name}"),
        None => name.to_owned(),
    }
}

/// Runs this test binary's test `name` as a child under `strace`, with `inject` (an
/// `strace -e inject=` spec) if given, and returns the log of its epoll waits; `None`
/// when the test is to be skipped (no strace, or it cannot trace here).
fn trace_child(name: &str, inject: Option<&str>) -> Option<String> {
    if !common::has_tool("strace", &["-V"]) {
        common::require_tool("strace");
        return None;
    }
    let log = std::env::temp_dir().join(format!(
        "ioloop-timer-precision-{}-{name}.strace",
        std::process::id()
    ));
    let mut strace = std::process::Command::new("strace");
    strace
        .arg("-f")
        .args(["-e", "trace=epoll_wait,epoll_pwait,epoll_pwait2"]);
    if let Some(inject) = inject {
        strace.args(["-e", &format!("inject={inject}")]);
    }
    let out = strace
        .arg("-o")
        .arg(&log)
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", &full_test_name(name), "--test-threads", "1"])
        .env(CHILD, "1")
        .output()
        .expect("strace runs");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    if !out.status.success() && text.is_empty() {
        // strace cannot trace here (no ptrace permission).
        common::require_tool("strace (ptrace)");
        return None;
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(text)
}

/// The waits of the child's log after the refused `epoll_pwait2` calls: rounded up to
/// milliseconds, 1 ms for the waits of 400 µs and 2 ms for the timer 1.5 ms away, never
/// 0, never shorter than asked.
fn assert_millisecond_fallback(text: &str) {
    let refused_dropped: String = text
        .lines()
        .filter(|l| !l.contains("epoll_pwait2("))
        .map(|l| format!("{l}\n"))
        .collect();
    let timeouts = traced_timeouts(&refused_dropped).unwrap();
    assert_eq!(
        timeouts,
        [1_000_000, 1_000_000, 1_000_000, 2_000_000],
        "the waits rounded up to milliseconds:\n{text}"
    );
}

/// The loop hands the kernel the wait it was asked for, not one rounded up to whole
/// milliseconds: `run_once(400 µs)` on an idle loop waits 400 000 ns, and the wait for a
/// timer 1.5 ms away 1 500 000 ns. (On a kernel without `epoll_pwait2`, the fallback of
/// the next test.)
#[cfg(target_os = "linux")]
#[test]
fn waits_reach_the_kernel_unrounded() {
    if std::env::var_os(CHILD).is_some() {
        return waits_to_trace();
    }
    let Some(text) = trace_child("waits_reach_the_kernel_unrounded", None) else {
        return;
    };
    match traced_timeouts(&text) {
        Some(timeouts) => assert_eq!(
            timeouts,
            [400_000, 400_000, 400_000, 1_500_000],
            "the waits to the nanosecond:\n{text}"
        ),
        None => assert_millisecond_fallback(&text),
    }
}

/// Where the kernel refuses `epoll_pwait2` (Linux before 5.11: ENOSYS; a seccomp filter:
/// ENOSYS or EPERM; here injected by strace), the loop asks once, then waits with
/// `epoll_wait` in milliseconds rounded up.
#[cfg(target_os = "linux")]
#[test]
fn a_refused_epoll_pwait2_falls_back_to_milliseconds_rounded_up() {
    if std::env::var_os(CHILD).is_some() {
        return waits_to_trace();
    }
    let name = "a_refused_epoll_pwait2_falls_back_to_milliseconds_rounded_up";
    for error in ["ENOSYS", "EPERM"] {
        let inject = format!("epoll_pwait2:error={error}");
        let Some(text) = trace_child(name, Some(&inject)) else {
            return;
        };
        assert_eq!(traced_timeouts(&text), None, "{text}");
        let refused = text.lines().filter(|l| l.contains("epoll_pwait2(")).count();
        assert_eq!(refused, 1, "asked once, then remembered:\n{text}");
        assert_millisecond_fallback(&text);
    }
}
