//! `ioloop::testing`: the failure messages of the time limits, panics passing through,
//! the log capture's thread boundary, and the ports.

use crate::common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use ioloop::testing::{
    advance_to_next_deadline, bind_refusing_port, bind_unused_port, run_test, run_until_within,
    LogCapture,
};
use ioloop::TcpServer;

/// The message of the panic `f` raises.
fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("it panics");
    if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        payload.downcast_ref::<&str>().unwrap().to_string()
    }
}

#[test]
fn a_test_over_its_limit_says_what_was_pending() {
    let message = panic_message(|| {
        run_test(Duration::from_millis(20), |ioloop| async move {
            let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
            let stream = ioloop::IoStream::new(&ioloop, a).unwrap();
            ioloop.call_later(Duration::from_secs(60), |_| {});
            // Waits for a line that never comes, with a sleep pending meanwhile.
            let line = stream.read_until(b"\n", 64);
            let _ = ioloop::timeout(Duration::from_secs(30), line).await;
        })
    });
    assert_eq!(
        message,
        "timed out after 20ms; pending: 2 timeouts, 1 handler"
    );
}

#[test]
fn a_panic_in_the_body_is_the_test_s_panic() {
    let message = panic_message(|| {
        run_test(Duration::from_secs(5), |_| async {
            ioloop::yield_now().await;
            panic!("the body's own words");
        })
    });
    assert_eq!(message, "the body's own words");
}

#[test]
fn run_until_within_reports_a_condition_never_met() {
    let (ioloop, clock) = common::manual_loop();
    ioloop.call_later(Duration::from_secs(1), |_| {});
    let message = panic_message(|| {
        run_until_within(&ioloop, Duration::from_millis(20), || false);
    });
    assert_eq!(message, "condition not met after 20ms; pending: 1 timeout");
    // The manual clock was not moved: the timeout is still there for the test to fire.
    assert_eq!(
        advance_to_next_deadline(&ioloop, &clock),
        Some(Duration::from_secs(1))
    );
    assert_eq!(ioloop.stats().timeouts_pending, 0);
}

#[test]
fn queued_callbacks_are_a_deadline_of_now() {
    let (ioloop, clock) = common::manual_loop();
    ioloop.add_callback(|_| {});
    assert_eq!(
        advance_to_next_deadline(&ioloop, &clock),
        Some(Duration::ZERO)
    );
    assert_eq!(advance_to_next_deadline(&ioloop, &clock), None);
}

#[test]
fn a_capture_sees_its_own_thread_only() {
    let logs = LogCapture::start();
    log::warn!(target: "here", "on the test's thread");
    std::thread::spawn(|| log::warn!("on another thread"))
        .join()
        .unwrap();
    assert_eq!(logs.messages(log::Level::Trace), ["on the test's thread"]);
    assert_eq!(logs.records()[0].target, "here");
    drop(logs);
    log::warn!("after the capture ended");
    let again = LogCapture::start();
    assert!(again.records().is_empty(), "a new capture starts empty");
}

#[test]
fn ports_for_a_server_and_for_a_refusal() {
    let ioloop = ioloop::IoLoop::new().unwrap();
    let (listener, port) = bind_unused_port().unwrap();
    let server = TcpServer::new(&ioloop, |_, stream, _| stream.close());
    assert_eq!(server.add_sockets(vec![listener]).unwrap()[0].port(), port);
    let (_reserved, refusing) = bind_refusing_port().unwrap();
    let error = std::net::TcpStream::connect(("127.0.0.1", refusing)).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused);
}
