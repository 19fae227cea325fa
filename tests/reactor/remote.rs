//! Cross-thread access through Remote: posting, coalesced wakeups, stop, closed loops.

use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use ioloop::testing::step;
use ioloop::{IoLoop, LoopError, Remote};

#[test]
fn remote_is_send_sync_and_clone() {
    fn assert_send_sync_clone<T: Send + Sync + Clone>() {}
    assert_send_sync_clone::<Remote>();
}

#[test]
fn callbacks_posted_from_threads_run_on_the_loop_thread_in_order() {
    let ioloop = IoLoop::new().unwrap();
    let remote = ioloop.remote();
    let loop_thread = thread::current().id();
    let (tx, rx) = mpsc::channel();
    let worker = thread::spawn(move || {
        for i in 0..100 {
            let tx = tx.clone();
            remote
                .add_callback(move |ioloop| {
                    assert_eq!(thread::current().id(), loop_thread);
                    tx.send(i).unwrap();
                    if i == 99 {
                        ioloop.stop();
                    }
                })
                .unwrap();
        }
    });
    ioloop.start().unwrap();
    worker.join().unwrap();
    let got: Vec<i32> = rx.try_iter().collect();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
}

#[test]
fn posts_between_two_iterations_cost_one_wakeup() {
    let ioloop = IoLoop::new().unwrap();
    let remote = ioloop.remote();
    thread::spawn(move || {
        for _ in 0..1000 {
            remote.add_callback(|_| {}).unwrap();
        }
    })
    .join()
    .unwrap();
    assert_eq!(ioloop.stats().remote_wakeups, 1);
    step(&ioloop);
    assert_eq!(ioloop.stats().callbacks_queued, 0);
    // After the drain, the next post wakes the loop again.
    ioloop.remote().add_callback(|_| {}).unwrap();
    assert_eq!(ioloop.stats().remote_wakeups, 2);
}

#[test]
fn a_post_wakes_a_loop_blocked_in_poll() {
    let ioloop = IoLoop::new().unwrap();
    let remote = ioloop.remote();
    let barrier = Arc::new(Barrier::new(2));
    let b = barrier.clone();
    let worker = thread::spawn(move || {
        b.wait();
        remote.add_callback(|ioloop| ioloop.stop()).unwrap();
    });
    // With nothing scheduled, the loop would wait forever without the wakeup.
    ioloop.add_callback(move |_| {
        barrier.wait();
    });
    ioloop.start().unwrap();
    worker.join().unwrap();
}

#[test]
fn remote_stop_wakes_and_stops_an_idle_loop() {
    let ioloop = IoLoop::new().unwrap();
    let remote = ioloop.remote();
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let worker = thread::spawn(move || {
        ready_rx.recv().unwrap();
        remote.stop();
    });
    ioloop.add_callback(move |_| ready_tx.send(()).unwrap());
    ioloop.start().unwrap();
    worker.join().unwrap();
}

#[test]
fn remote_stop_before_start_makes_start_return_at_once() {
    let ioloop = IoLoop::new().unwrap();
    let remote = ioloop.remote();
    thread::spawn(move || remote.stop()).join().unwrap();
    ioloop.start().unwrap();
}

#[test]
fn posting_to_a_closed_loop_is_an_error() {
    let ioloop = IoLoop::new().unwrap();
    let remote = ioloop.remote();
    ioloop.close(true).unwrap();
    assert!(remote.is_closed());
    let result = thread::spawn(move || remote.add_callback(|_| {}))
        .join()
        .unwrap();
    assert!(matches!(result, Err(LoopError::Closed)));
}

#[test]
fn posting_to_a_dropped_loop_is_an_error() {
    let ioloop = IoLoop::new().unwrap();
    let remote = ioloop.remote();
    drop(ioloop);
    assert!(matches!(
        remote.add_callback(|_| {}),
        Err(LoopError::Closed)
    ));
    remote.stop(); // harmless
}

#[test]
fn callbacks_pending_at_close_are_dropped_not_run() {
    let ioloop = IoLoop::new().unwrap();
    let remote = ioloop.remote();
    let (tx, rx) = mpsc::channel::<()>();
    remote.add_callback(move |_| tx.send(()).unwrap()).unwrap();
    ioloop.close(true).unwrap();
    // The closure (and its sender) was dropped: the channel is disconnected.
    assert!(matches!(
        rx.recv_timeout(Duration::from_secs(5)),
        Err(mpsc::RecvTimeoutError::Disconnected)
    ));
}

#[test]
fn posted_callbacks_run_after_local_ones_already_queued() {
    let ioloop = IoLoop::new().unwrap();
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let o = order.clone();
    ioloop.add_callback(move |_| o.lock().unwrap().push("local"));
    let (remote, o) = (ioloop.remote(), order.clone());
    thread::spawn(move || {
        remote
            .add_callback(move |_| o.lock().unwrap().push("remote"))
            .unwrap()
    })
    .join()
    .unwrap();
    step(&ioloop);
    assert_eq!(*order.lock().unwrap(), ["local", "remote"]);
}
