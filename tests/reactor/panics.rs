//! Panics in user code: logged with the registration site, the batch goes on, a
//! replaceable handler, the propagate policy, and blocking-callback warnings.

use crate::common;

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use common::{manual_loop, Trace};
use ioloop::testing::{step, LogCapture};
use ioloop::{CallbackKind, IoLoop, ManualClock, PanicPolicy};

#[test]
fn a_panic_is_logged_with_its_registration_site_and_the_batch_goes_on() {
    let logs = LogCapture::start();
    let (ioloop, clock) = manual_loop();
    let trace = Trace::default();
    let line = line!() + 1;
    ioloop.add_callback(|_| panic!("callback failure"));
    let t = trace.clone();
    ioloop.add_callback(move |_| t.push("after the panic"));
    let timeout_line = line!() + 1;
    ioloop.call_later(Duration::from_millis(1), |_| panic!("timeout failure"));
    let t = trace.clone();
    ioloop.call_later(Duration::from_millis(1), move |_| t.push("timeout after"));
    clock.advance(Duration::from_millis(1));
    step(&ioloop);
    assert_eq!(trace.take(), ["after the panic", "timeout after"]);
    let errors = logs.messages(log::Level::Error);
    assert_eq!(errors.len(), 2, "{errors:?}");
    let site = format!("{}:{line}:", file!());
    assert!(errors[0].contains(&site), "{} lacks {site}", errors[0]);
    assert!(errors[0].contains("callback failure"));
    assert!(errors[1].contains(&format!("{}:{timeout_line}:", file!())));
    assert!(errors[1].contains("timeout"));
    // And the loop keeps going.
    let t = trace.clone();
    ioloop.add_callback(move |_| t.push("next iteration"));
    step(&ioloop);
    assert_eq!(trace.take(), ["next iteration"]);
}

#[test]
fn remote_callbacks_report_the_posting_site() {
    let (ioloop, _) = manual_loop();
    let sites = Rc::new(RefCell::new(Vec::new()));
    let s = sites.clone();
    ioloop.set_panic_handler(move |r| s.borrow_mut().push((r.kind(), r.site().line())));
    let remote = ioloop.remote();
    let line = line!() + 1;
    std::thread::spawn(move || remote.add_callback(|_| panic!("remote")).unwrap())
        .join()
        .unwrap();
    step(&ioloop);
    assert_eq!(*sites.borrow(), [(CallbackKind::Callback, line)]);
}

#[test]
fn the_panic_handler_can_be_replaced_and_survives_its_own_panic() {
    let logs = LogCapture::start();
    let (ioloop, _) = manual_loop();
    let first = Rc::new(Cell::new(0));
    let f = first.clone();
    ioloop.set_panic_handler(move |_| {
        f.set(f.get() + 1);
        panic!("the handler itself fails");
    });
    ioloop.add_callback(|_| panic!("one"));
    ioloop.add_callback(|_| panic!("two"));
    step(&ioloop);
    assert_eq!(first.get(), 2, "a panicking handler stays installed");
    assert!(logs
        .messages(log::Level::Error)
        .iter()
        .any(|m| m.contains("panic handler panicked")));

    let second = Rc::new(Cell::new(0));
    let s = second.clone();
    ioloop.set_panic_handler(move |_| s.set(s.get() + 1));
    ioloop.add_callback(|_| panic!("three"));
    step(&ioloop);
    assert_eq!((first.get(), second.get()), (2, 1));
}

#[test]
fn a_handler_that_replaces_itself_is_not_put_back() {
    let (ioloop, _) = manual_loop();
    let log = Trace::default();
    let l = log.clone();
    ioloop.set_panic_handler(move |_| {
        l.push("old");
        let l2 = l.clone();
        IoLoop::current()
            .unwrap()
            .set_panic_handler(move |_| l2.push("new"));
    });
    ioloop.add_callback(|_| panic!("a"));
    ioloop.add_callback(|_| panic!("b"));
    step(&ioloop);
    assert_eq!(log.take(), ["old", "new"]);
}

#[test]
fn propagate_policy_finishes_the_batch_then_resumes_the_panic() {
    let ioloop = IoLoop::builder()
        .panic_policy(PanicPolicy::Propagate)
        .build()
        .unwrap();
    let trace = Trace::default();
    ioloop.add_callback(|_| std::panic::panic_any(42u32));
    let t = trace.clone();
    ioloop.add_callback(move |_| t.push("rest of batch"));
    let result = catch_unwind(AssertUnwindSafe(|| ioloop.run_once(Duration::ZERO)));
    let payload = result.expect_err("the panic propagates");
    assert_eq!(payload.downcast_ref::<u32>(), Some(&42));
    assert_eq!(trace.take(), ["rest of batch"]);
    // The loop's state is consistent: it can run again, and start works too.
    ioloop.add_callback(|ioloop| ioloop.stop());
    ioloop.start().unwrap();
    assert!(!ioloop.is_running());
}

#[test]
fn propagate_policy_out_of_start_leaves_the_loop_restartable() {
    let ioloop = IoLoop::builder()
        .panic_policy(PanicPolicy::Propagate)
        .build()
        .unwrap();
    ioloop.add_callback(|_| panic!("crash"));
    let result = catch_unwind(AssertUnwindSafe(|| ioloop.start()));
    assert!(result.is_err());
    assert!(!ioloop.is_running());
    ioloop.add_callback(|ioloop| ioloop.stop());
    ioloop.start().unwrap();
}

#[test]
fn a_callback_slower_than_the_threshold_is_logged_as_blocking() {
    let logs = LogCapture::start();
    let clock = ManualClock::new();
    let ioloop = IoLoop::builder()
        .clock(clock.clone())
        .blocking_threshold(Duration::from_millis(100))
        .build()
        .unwrap();
    let c = clock.clone();
    ioloop.add_callback(move |_| c.advance(Duration::from_millis(100))); // at the limit: fine
    let c = clock.clone();
    let line = line!() + 1;
    ioloop.add_callback(move |_| c.advance(Duration::from_millis(250)));
    step(&ioloop);
    let warnings = logs.messages(log::Level::Warn);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("blocked for 250ms"), "{}", warnings[0]);
    assert!(warnings[0].contains(&format!("{}:{line}:", file!())));
}

#[test]
fn without_a_threshold_nothing_is_timed() {
    let logs = LogCapture::start();
    let (ioloop, clock) = manual_loop();
    ioloop.add_callback(move |_| clock.advance(Duration::from_secs(10)));
    step(&ioloop);
    assert!(logs.messages(log::Level::Warn).is_empty());
}
