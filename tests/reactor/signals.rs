//! Unix signals delivered as loop callbacks. Each test uses its own signal: handlers are
//! process-wide and the tests of this file run in parallel.
#![cfg(feature = "signals")]

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use ioloop::IoLoop;
use signal_hook::consts::{SIGUSR1, SIGUSR2, SIGWINCH};
use signal_hook::low_level::raise;

#[test]
fn a_signal_runs_its_callback_on_the_loop_and_deliveries_are_coalesced() {
    let ioloop = IoLoop::new().unwrap();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    let handler = ioloop
        .add_signal_handler(SIGUSR1, move |_| c.set(c.get() + 1))
        .unwrap();
    ioloop.run_once(Duration::ZERO).unwrap();
    assert_eq!(calls.get(), 0);
    raise(SIGUSR1).unwrap();
    raise(SIGUSR1).unwrap();
    // The signal handler has written to the socket pair before raise returned.
    ioloop.run_once(Duration::from_secs(5)).unwrap();
    assert_eq!(
        calls.get(),
        1,
        "two deliveries before the loop looked: one call"
    );
    raise(SIGUSR1).unwrap();
    ioloop.run_once(Duration::from_secs(5)).unwrap();
    assert_eq!(calls.get(), 2);
    ioloop.remove_signal_handler(handler);
    assert_eq!(ioloop.stats().handlers, 0);
}

#[test]
fn a_signal_can_stop_a_running_loop_for_a_clean_shutdown() {
    let ioloop = IoLoop::new().unwrap();
    let handler = ioloop
        .add_signal_handler(SIGUSR2, |ioloop| ioloop.stop())
        .unwrap();
    ioloop.add_callback(|_| raise(SIGUSR2).unwrap());
    ioloop.start().unwrap(); // returns: the handler stopped it
    ioloop.remove_signal_handler(handler);
}

#[test]
fn two_loops_handling_one_signal_both_hear_it() {
    let a = IoLoop::new().unwrap();
    let b = IoLoop::new().unwrap();
    let heard = Rc::new(Cell::new(0));
    let (h1, h2) = (heard.clone(), heard.clone());
    let ha = a
        .add_signal_handler(SIGWINCH, move |_| h1.set(h1.get() + 1))
        .unwrap();
    let hb = b
        .add_signal_handler(SIGWINCH, move |_| h2.set(h2.get() + 1))
        .unwrap();
    raise(SIGWINCH).unwrap();
    a.run_once(Duration::from_secs(5)).unwrap();
    b.run_once(Duration::from_secs(5)).unwrap();
    assert_eq!(heard.get(), 2);
    a.remove_signal_handler(ha);
    b.remove_signal_handler(hb);
}

#[test]
fn an_unhandleable_signal_is_an_error() {
    let ioloop = IoLoop::new().unwrap();
    let result = ioloop.add_signal_handler(signal_hook::consts::SIGKILL, |_| {});
    assert!(result.is_err());
    assert_eq!(ioloop.stats().handlers, 0);
}

#[test]
fn a_program_needs_no_crate_but_ioloop_for_signals() {
    // The numbers and the handler type come from `ioloop::signal`.
    use ioloop::signal::{SignalHandler, SIGALRM};
    let ioloop = IoLoop::new().unwrap();
    let fired = Rc::new(Cell::new(false));
    let f = fired.clone();
    let handler: SignalHandler = ioloop
        .add_signal_handler(SIGALRM, move |_| f.set(true))
        .unwrap();
    raise(SIGALRM).unwrap();
    ioloop.run_once(Duration::from_secs(5)).unwrap();
    assert!(fired.get());
    ioloop.remove_signal_handler(handler);
    // And the examples that handle signals use nothing else.
    for example in ["chat_server.rs", "web_app.rs"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(example);
        let source = std::fs::read_to_string(path).unwrap();
        assert!(
            !source.contains("signal_hook"),
            "{example} names signal_hook"
        );
    }
}
