//! PeriodicCallback schedules on a manual clock, with Tornado's exact expected times.

use crate::common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::manual_loop;
use ioloop::testing::{advance_to_next_deadline, step};
use ioloop::{IoLoop, ManualClock, PeriodicCallback};

/// Runs a 10 s periodic callback starting at t=1000 on a manual clock; each call moves
/// the clock by the next entry of `durations` (seconds, may be negative). Returns the
/// times (in seconds) at which the calls started.
fn simulate(durations: &[f64], jitter: Option<(f64, Vec<f64>)>) -> Vec<f64> {
    let t0 = Instant::now();
    let clock = ManualClock::starting_at(t0 + Duration::from_secs(1000));
    let ioloop = IoLoop::builder().clock(clock.clone()).build().unwrap();
    let calls = Rc::new(RefCell::new(Vec::new()));
    let remaining = Rc::new(RefCell::new(durations.to_vec()));
    let (c, r, clk) = (calls.clone(), remaining.clone(), clock.clone());
    let pc = PeriodicCallback::new(&ioloop, Duration::from_secs(10), move |_, me| {
        c.borrow_mut().push((clk.now() - t0).as_secs_f64());
        let d = r.borrow_mut().remove(0);
        if d >= 0.0 {
            clk.advance(Duration::from_secs_f64(d));
        } else {
            clk.set(clk.now() - Duration::from_secs_f64(-d));
        }
        if r.borrow().is_empty() {
            me.stop();
        }
    });
    if let Some((j, randoms)) = jitter {
        pc.set_jitter(j);
        let randoms = RefCell::new(randoms.into_iter());
        pc.set_random_source(move || randoms.borrow_mut().next().unwrap());
    }
    pc.start();
    while pc.is_running() {
        advance_to_next_deadline(&ioloop, &clock);
    }
    let calls = calls.borrow().clone();
    calls
}

#[test]
fn first_call_is_one_period_after_start_then_every_period() {
    assert_eq!(
        simulate(&[0.0; 5], None),
        [1010.0, 1020.0, 1030.0, 1040.0, 1050.0]
    );
}

#[test]
fn overruns_skip_missed_periods_and_keep_the_start_grid() {
    let durations = [9.0, 9.0, 10.0, 11.0, 20.0, 20.0, 35.0, 35.0, 0.0, 0.0, 0.0];
    assert_eq!(
        simulate(&durations, None),
        [1010.0, 1020.0, 1030.0, 1050.0, 1070.0, 1100.0, 1130.0, 1170.0, 1210.0, 1220.0, 1230.0]
    );
}

#[test]
fn a_clock_moving_backwards_adds_one_period() {
    assert_eq!(
        simulate(&[-2.0, -1.0, -3.0, -2.0, 0.0], None),
        [1010.0, 1020.0, 1030.0, 1040.0, 1050.0]
    );
}

#[test]
fn jitter_scales_each_period_by_one_plus_or_minus_half_the_jitter() {
    let times = simulate(&[0.0; 4], Some((0.5, vec![0.5, 1.0, 0.0, 0.75])));
    let expected = [1010.0, 1022.5, 1030.0, 1041.25];
    for (t, e) in times.iter().zip(expected) {
        assert!((t - e).abs() < 1e-6, "{times:?} != {expected:?}");
    }
    assert_eq!(times.len(), 4);
}

#[test]
fn stop_from_inside_the_callback_removes_the_schedule() {
    let (ioloop, clock) = manual_loop();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    let pc = PeriodicCallback::new(&ioloop, Duration::from_millis(100), move |_, me| {
        c.set(c.get() + 1);
        if c.get() == 3 {
            me.stop();
        }
    });
    pc.start();
    for _ in 0..3 {
        advance_to_next_deadline(&ioloop, &clock);
    }
    assert_eq!(calls.get(), 3);
    assert!(!pc.is_running());
    assert_eq!(ioloop.stats().timeouts_pending, 0);
    assert_eq!(ioloop.poll_timeout(), None);
}

#[test]
fn stop_and_restart_from_inside_the_callback_schedules_once() {
    let (ioloop, clock) = manual_loop();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    let pc = PeriodicCallback::new(&ioloop, Duration::from_millis(100), move |_, me| {
        c.set(c.get() + 1);
        me.stop();
        me.start();
    });
    pc.start();
    advance_to_next_deadline(&ioloop, &clock);
    assert_eq!(calls.get(), 1);
    assert_eq!(ioloop.stats().timeouts_pending, 1);
}

#[test]
fn a_panicking_callback_is_reported_and_the_schedule_continues() {
    let (ioloop, clock) = manual_loop();
    let reports = Rc::new(RefCell::new(Vec::new()));
    let r = reports.clone();
    ioloop.set_panic_handler(move |report| {
        r.borrow_mut().push((
            report.kind(),
            report.site().line(),
            report.message().to_owned(),
        ))
    });
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    let line = line!() + 1;
    let pc = PeriodicCallback::new(&ioloop, Duration::from_secs(1), move |_, _| {
        c.set(c.get() + 1);
        panic!("tick {}", c.get());
    });
    pc.start();
    for _ in 0..3 {
        advance_to_next_deadline(&ioloop, &clock);
    }
    assert_eq!(calls.get(), 3);
    assert!(pc.is_running());
    let reports = reports.borrow();
    assert_eq!(reports.len(), 3);
    assert_eq!(
        reports[2],
        (ioloop::CallbackKind::Periodic, line, "tick 3".to_owned())
    );
}

#[test]
fn stop_before_the_first_call_means_no_call() {
    let (ioloop, clock) = manual_loop();
    let pc = PeriodicCallback::new(&ioloop, Duration::from_secs(1), |_, _| panic!("no"));
    pc.start();
    pc.stop();
    pc.stop(); // idempotent
    clock.advance(Duration::from_secs(5));
    step(&ioloop);
    assert!(!pc.is_running());
}

#[test]
#[should_panic(expected = "period must be greater than zero")]
fn a_zero_period_is_refused() {
    let ioloop = IoLoop::new().unwrap();
    let _refused = PeriodicCallback::new(&ioloop, Duration::ZERO, |_, _| {});
}
