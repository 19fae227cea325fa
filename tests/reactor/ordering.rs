//! The iteration order and the run controls: start, stop, run_once, close, current.

use crate::common;

use std::cell::Cell;
use std::io::Write;
use std::rc::Rc;
use std::time::Duration;

use common::{manual_loop, Trace};
use ioloop::testing::step;
use ioloop::{Interest, IoLoop, LoopError};

#[test]
fn callbacks_run_in_fifo_order() {
    let (ioloop, _) = manual_loop();
    let trace = Trace::default();
    for i in 0..10 {
        let t = trace.clone();
        ioloop.add_callback(move |_| t.push(i.to_string()));
    }
    step(&ioloop);
    let expected: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    assert_eq!(trace.take(), expected);
}

#[test]
fn a_callback_added_during_a_batch_waits_for_the_next_iteration() {
    let (ioloop, _) = manual_loop();
    let trace = Trace::default();
    let t = trace.clone();
    ioloop.add_callback(move |ioloop| {
        t.push("outer");
        let t2 = t.clone();
        ioloop.add_callback(move |_| t2.push("inner"));
    });
    let t3 = trace.clone();
    ioloop.add_callback(move |_| t3.push("second"));
    step(&ioloop);
    assert_eq!(trace.take(), ["outer", "second"]);
    step(&ioloop);
    assert_eq!(trace.take(), ["inner"]);
}

#[test]
fn spawn_callback_is_add_callback() {
    let (ioloop, _) = manual_loop();
    let trace = Trace::default();
    let (a, b) = (trace.clone(), trace.clone());
    ioloop.add_callback(move |_| a.push("add"));
    ioloop.spawn_callback(move |_| b.push("spawn"));
    step(&ioloop);
    assert_eq!(trace.take(), ["add", "spawn"]);
}

#[test]
fn one_iteration_runs_callbacks_then_due_timeouts_then_io_handlers() {
    let (ioloop, clock) = manual_loop();
    let trace = Trace::default();
    let (reader, mut writer) = std::os::unix::net::UnixStream::pair().unwrap();
    let t = trace.clone();
    ioloop
        .add_handler(reader, Interest::READ, move |_, _, _| t.push("handler"))
        .unwrap();
    writer.write_all(b"x").unwrap();
    let t = trace.clone();
    ioloop.call_later(Duration::from_millis(1), move |_| t.push("timeout"));
    let t = trace.clone();
    ioloop.add_callback(move |_| t.push("callback"));
    clock.advance(Duration::from_millis(1));
    step(&ioloop);
    assert_eq!(trace.take(), ["callback", "timeout", "handler"]);
}

#[test]
fn due_timeouts_are_collected_before_callbacks_run() {
    // A timeout added by a callback is not run in the same iteration even when due.
    let (ioloop, _) = manual_loop();
    let trace = Trace::default();
    let t = trace.clone();
    ioloop.add_callback(move |ioloop| {
        let t2 = t.clone();
        ioloop.call_later(Duration::ZERO, move |_| t2.push("timeout"));
    });
    step(&ioloop);
    assert_eq!(trace.len(), 0);
    step(&ioloop);
    assert_eq!(trace.take(), ["timeout"]);
}

#[test]
fn stop_before_start_makes_start_return_at_once() {
    let (ioloop, _) = manual_loop();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    ioloop.add_callback(move |_| r.set(true));
    ioloop.stop();
    ioloop.start().unwrap();
    assert!(!ran.get(), "start returned before running anything");
    assert!(!ioloop.is_running());
}

#[test]
fn stop_lets_the_current_batch_finish_and_pending_work_survives() {
    let (ioloop, _) = manual_loop();
    let trace = Trace::default();
    let t = trace.clone();
    ioloop.add_callback(move |ioloop| {
        t.push("stopper");
        ioloop.stop();
        let t2 = t.clone();
        ioloop.add_callback(move |ioloop| {
            t2.push("next start");
            ioloop.stop();
        });
    });
    let t = trace.clone();
    ioloop.add_callback(move |_| t.push("same batch"));
    let t = trace.clone();
    ioloop.call_later(Duration::from_secs(60), move |_| t.push("timer"));
    ioloop.start().unwrap();
    assert_eq!(trace.take(), ["stopper", "same batch"]);
    assert_eq!(ioloop.stats().timeouts_pending, 1);
    ioloop.start().unwrap();
    assert_eq!(trace.take(), ["next start"]);
}

#[test]
fn start_inside_a_running_loop_is_an_error_not_a_deadlock() {
    let (ioloop, _) = manual_loop();
    let result = Rc::new(Cell::new(None));
    let r = result.clone();
    ioloop.add_callback(move |ioloop| {
        r.set(Some(matches!(
            ioloop.start(),
            Err(LoopError::AlreadyRunning)
        )));
        ioloop.stop();
    });
    ioloop.start().unwrap();
    assert_eq!(result.get(), Some(true));
}

#[test]
fn start_inside_run_once_is_an_error() {
    let (ioloop, _) = manual_loop();
    let result = Rc::new(Cell::new(false));
    let r = result.clone();
    ioloop.add_callback(move |ioloop| {
        r.set(matches!(ioloop.start(), Err(LoopError::AlreadyRunning)));
    });
    step(&ioloop);
    assert!(result.get());
}

#[test]
fn run_once_is_never_reentrant() {
    let (ioloop, clock) = manual_loop();
    let results = Rc::new(Cell::new(0));
    let r = results.clone();
    ioloop.add_callback(move |ioloop| {
        if matches!(ioloop.run_once(Duration::ZERO), Err(LoopError::Reentrant)) {
            r.set(r.get() + 1);
        }
    });
    let r = results.clone();
    ioloop.call_later(Duration::from_millis(1), move |ioloop| {
        if matches!(ioloop.run_once(Duration::ZERO), Err(LoopError::Reentrant)) {
            r.set(r.get() + 1);
        }
    });
    clock.advance(Duration::from_millis(1));
    step(&ioloop);
    assert_eq!(results.get(), 2);
    // And the loop is still usable afterwards.
    step(&ioloop);
}

#[test]
fn run_once_reports_whether_work_remains() {
    let (ioloop, clock) = manual_loop();
    assert!(!ioloop.run_once(Duration::ZERO).unwrap());
    ioloop.call_later(Duration::from_millis(5), |_| {});
    assert!(ioloop.run_once(Duration::ZERO).unwrap());
    clock.advance(Duration::from_millis(5));
    assert!(!ioloop.run_once(Duration::ZERO).unwrap());
    ioloop.add_callback(|ioloop| ioloop.add_callback(|_| {}));
    assert!(ioloop.run_once(Duration::ZERO).unwrap());
    assert!(!ioloop.run_once(Duration::ZERO).unwrap());
}

#[test]
fn run_once_consumes_a_stop_request_and_skips_its_poll() {
    let (ioloop, _) = manual_loop();
    ioloop.add_callback(|ioloop| ioloop.stop());
    // Would block for an hour if the poll were not skipped.
    ioloop.run_once(Duration::from_secs(3600)).unwrap();
    // The request is used up: start now runs until the next stop.
    ioloop.add_callback(|ioloop| ioloop.stop());
    ioloop.start().unwrap();
}

#[test]
fn run_once_waits_at_most_max_wait() {
    let ioloop = IoLoop::new().unwrap();
    ioloop.call_later(Duration::from_secs(3600), |_| {});
    let started = std::time::Instant::now();
    ioloop.run_once(Duration::from_millis(1)).unwrap();
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn poll_timeout_reports_how_long_the_host_may_sleep() {
    let (ioloop, clock) = manual_loop();
    assert_eq!(ioloop.poll_timeout(), None);
    let t = ioloop.call_later(Duration::from_millis(40), |_| {});
    assert_eq!(ioloop.poll_timeout(), Some(Duration::from_millis(40)));
    clock.advance(Duration::from_millis(15));
    assert_eq!(ioloop.poll_timeout(), Some(Duration::from_millis(25)));
    clock.advance(Duration::from_millis(100));
    assert_eq!(ioloop.poll_timeout(), Some(Duration::ZERO));
    ioloop.remove_timeout(t);
    assert_eq!(ioloop.poll_timeout(), None);
    ioloop.add_callback(|_| {});
    assert_eq!(ioloop.poll_timeout(), Some(Duration::ZERO));
}

#[test]
fn callback_budget_bounds_one_iteration_and_keeps_order() {
    let ioloop = IoLoop::builder().callback_budget(3).build().unwrap();
    let trace = Trace::default();
    for i in 0..7 {
        let t = trace.clone();
        ioloop.add_callback(move |_| t.push(i.to_string()));
    }
    step(&ioloop);
    assert_eq!(trace.take(), ["0", "1", "2"]);
    let t = trace.clone();
    ioloop.add_callback(move |_| t.push("late"));
    step(&ioloop);
    step(&ioloop);
    step(&ioloop);
    assert_eq!(trace.take(), ["3", "4", "5", "6", "late"]);
}

/// An iteration calls at most `dispatch_budget` of the handlers one wait reported; the
/// callbacks they queued run first thing next iteration, then the next handlers of the
/// same wait, and only once every one of them has been called does the loop wait again.
#[test]
fn dispatch_budget_bounds_one_iteration_and_the_rest_of_the_wait_comes_before_the_next() {
    use std::os::unix::net::UnixStream;

    let ioloop = IoLoop::builder().dispatch_budget(2).build().unwrap();
    let trace = Trace::default();
    // A sixth source the first handler makes ready: a loop that waited again before
    // the five of the first wait were all called would report it among them.
    let (late, late_peer) = UnixStream::pair().unwrap();
    let t = trace.clone();
    ioloop
        .add_handler(late, Interest::READ, move |_, _, _| t.push("late"))
        .unwrap();
    let mut peers = Vec::new();
    let poke = Rc::new(Cell::new(false));
    for i in 0..5 {
        let (source, mut peer) = UnixStream::pair().unwrap();
        peer.write_all(b"x").unwrap();
        peers.push(peer);
        let (t, poke) = (trace.clone(), poke.clone());
        let mut late_peer = late_peer.try_clone().unwrap();
        ioloop
            .add_handler(source, Interest::READ, move |ioloop, _, event| {
                t.push(format!("h{i}"));
                if !poke.replace(true) {
                    late_peer.write_all(b"x").unwrap();
                }
                // The source stays readable (level-triggered): only one wait reports it.
                ioloop.remove_handler(event.id());
                let t = t.clone();
                ioloop.add_callback(move |_| t.push(format!("c{i}")));
            })
            .unwrap();
    }

    let is = |prefix: char| move |entry: &String| entry.starts_with(prefix);
    let mut handled = Vec::new();
    let mut last = Vec::new();
    step(&ioloop);
    let first = trace.take();
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(first.iter().all(is('h')), "{first:?}");
    handled.extend(first.iter().map(|h| h[1..].to_owned()));
    // Three sources of that wait are still to be called: the loop has work now.
    assert_eq!(ioloop.poll_timeout(), Some(Duration::ZERO));

    for expected_handlers in [2, 1] {
        step(&ioloop);
        let batch = trace.take();
        // The callbacks the previous handlers queued, in order, then the next handlers.
        let callbacks: Vec<_> = batch.iter().filter(|e| is('c')(e)).collect();
        let handlers: Vec<_> = batch.iter().filter(|e| is('h')(e)).collect();
        assert_eq!(batch.len(), callbacks.len() + handlers.len(), "{batch:?}");
        assert!(batch[..callbacks.len()].iter().all(is('c')), "{batch:?}");
        assert_eq!(handlers.len(), expected_handlers, "{batch:?}");
        last = handlers.iter().map(|h| h[1..].to_owned()).collect();
        handled.extend(last.iter().cloned());
    }
    handled.sort();
    assert_eq!(handled, ["0", "1", "2", "3", "4"]);

    // Only now does the loop wait again, and find the source made ready meanwhile.
    step(&ioloop);
    assert_eq!(trace.take(), [format!("c{}", last[0]), "late".to_owned()]);
    drop(peers);
}

/// Sources of a wait beyond the budget are work an embedding host must not sleep on,
/// even with no callback queued; a stop dispatches them before `start` returns, and a
/// closed loop forgets them.
#[test]
fn readiness_beyond_the_budget_is_work_until_dispatched_or_closed() {
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    let ready_loop = |stop_at_first: bool| {
        let ioloop = IoLoop::builder().dispatch_budget(1).build().unwrap();
        let calls = Rc::new(Cell::new(0));
        let mut peers = Vec::new();
        for _ in 0..3 {
            let (source, mut peer) = UnixStream::pair().unwrap();
            peer.write_all(b"x").unwrap();
            peers.push(peer);
            let calls = calls.clone();
            ioloop
                .add_handler(source, Interest::READ, move |ioloop, source, _| {
                    // Drained: no later wait reports it again.
                    source.read_exact(&mut [0]).unwrap();
                    calls.set(calls.get() + 1);
                    if stop_at_first && calls.get() == 1 {
                        ioloop.stop();
                    }
                })
                .unwrap();
        }
        (ioloop, calls, peers)
    };

    // Handlers that queue nothing: only the undispatched sources keep the host awake.
    let (ioloop, calls, _peers) = ready_loop(false);
    assert!(ioloop.run_once(Duration::ZERO).unwrap());
    assert_eq!(calls.get(), 1);
    assert_eq!(ioloop.stats().callbacks_queued, 0);
    assert_eq!(ioloop.poll_timeout(), Some(Duration::ZERO));
    step(&ioloop);
    step(&ioloop);
    assert_eq!(calls.get(), 3);
    assert_eq!(ioloop.poll_timeout(), None);

    // The first handler stops the loop: `start` returns once the other two ran.
    let (ioloop, calls, _peers) = ready_loop(true);
    ioloop.start().unwrap();
    assert_eq!(calls.get(), 3);
    assert_eq!(ioloop.poll_timeout(), None);

    // Closed with two sources left: nothing is left to do.
    let (ioloop, calls, _peers) = ready_loop(false);
    ioloop.run_once(Duration::ZERO).unwrap();
    assert_eq!(calls.get(), 1);
    ioloop.close(true).unwrap();
    assert_eq!(ioloop.poll_timeout(), None);
}

#[test]
fn close_drops_pending_work_and_refuses_to_run() {
    let (ioloop, _) = manual_loop();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    ioloop.add_callback(move |_| r.set(true));
    ioloop.call_later(Duration::ZERO, |_| panic!("must not run"));
    ioloop.close(true).unwrap();
    assert!(ioloop.is_closed());
    assert!(matches!(
        ioloop.run_once(Duration::ZERO),
        Err(LoopError::Closed)
    ));
    assert!(matches!(ioloop.start(), Err(LoopError::Closed)));
    assert!(!ran.get());
    assert_eq!(ioloop.stats().callbacks_queued, 0);
    assert_eq!(ioloop.stats().timeouts_pending, 0);
    // Idempotent; later callbacks are dropped.
    ioloop.close(true).unwrap();
    ioloop.add_callback(|_| panic!("must not run"));
    assert_eq!(ioloop.stats().callbacks_queued, 0);
}

#[test]
fn close_hands_sources_back_unless_asked_to_close_them() {
    let (ioloop, _) = manual_loop();
    let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    ioloop.add_handler(a, Interest::READ, |_, _, _| {}).unwrap();
    // A stream is not handed back: it closes with the loop.
    let (c, _d) = std::os::unix::net::UnixStream::pair().unwrap();
    let stream = ioloop::IoStream::new(&ioloop, c).unwrap();
    let sources = ioloop.close(false).unwrap();
    assert!(stream.closed());
    assert_eq!(sources.len(), 1);
    let a = sources.into_iter().next().unwrap();
    let a = a.downcast::<std::os::unix::net::UnixStream>().unwrap();
    // Still open: the peer can write to it.
    b.write_all(b"still open").unwrap();
    drop(a);

    let (ioloop, _) = manual_loop();
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    ioloop.add_handler(a, Interest::READ, |_, _, _| {}).unwrap();
    assert!(ioloop.close(true).unwrap().is_empty());
    // The loop closed `a`: writing to `b` now fails with EPIPE.
    let mut b = b;
    assert!(b.write_all(b"x").is_err());
}

#[test]
fn close_while_running_is_refused() {
    let (ioloop, _) = manual_loop();
    let refused = Rc::new(Cell::new(false));
    let r = refused.clone();
    ioloop.add_callback(move |ioloop| {
        r.set(matches!(ioloop.close(true), Err(LoopError::AlreadyRunning)));
    });
    step(&ioloop);
    assert!(refused.get());
    assert!(!ioloop.is_closed());
}

#[test]
fn current_is_the_running_loop_and_is_restored_afterwards() {
    let first = IoLoop::new().unwrap();
    let second = IoLoop::new().unwrap();
    // The first loop built on this thread is current while nothing runs.
    assert!(IoLoop::current().unwrap().ptr_eq(&first));
    let seen = Rc::new(Cell::new(false));
    let s = seen.clone();
    second.add_callback(move |ioloop| s.set(IoLoop::current().unwrap().ptr_eq(ioloop)));
    step(&second);
    assert!(seen.get());
    assert!(IoLoop::current().unwrap().ptr_eq(&first));
    drop(first);
    drop(second);
    assert!(IoLoop::current().is_none());
}
