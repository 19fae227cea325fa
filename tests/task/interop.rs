//! Interop: runtime-agnostic channels inside ioloop tasks, tokio on another thread awaiting
//! an ioloop Task and posting through Remote, and one scenario written as callbacks and as
//! async code.

use crate::common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use common::manual_loop;
use ioloop::IoLoop;

#[test]
fn a_task_awaits_a_futures_channel_oneshot_sent_from_a_std_thread() {
    let ioloop = IoLoop::new().unwrap();
    let (tx, rx) = futures_channel::oneshot::channel();
    let worker = std::thread::spawn(move || tx.send(6 * 7).unwrap());
    let got = ioloop.run_sync(rx).unwrap().unwrap();
    worker.join().unwrap();
    assert_eq!(got, 42);
}

#[test]
fn a_task_awaits_async_channel_messages_from_a_std_thread() {
    let ioloop = IoLoop::new().unwrap();
    let (tx, rx) = async_channel::bounded(4);
    let worker = std::thread::spawn(move || {
        for i in 0..100 {
            tx.send_blocking(i).unwrap();
        }
    });
    let sum = ioloop
        .run_sync(async move {
            let mut sum = 0;
            while let Ok(i) = rx.recv().await {
                sum += i;
            }
            sum
        })
        .unwrap();
    worker.join().unwrap();
    assert_eq!(sum, (0..100).sum::<i32>());
}

#[test]
fn tokio_on_another_thread_awaits_an_ioloop_task_and_posts_through_remote() {
    let ioloop = IoLoop::new().unwrap();
    let remote = ioloop.remote();
    let (answer_tx, answer_rx) = async_channel::bounded::<u32>(1);
    // The ioloop task waits for a number that a tokio task will post, then doubles it.
    let task = ioloop.spawn(async move { answer_rx.recv().await.unwrap() * 2 });
    let tokio_thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async move {
            let posted = tokio::spawn(async move {
                remote
                    .add_callback(move |_ioloop| answer_tx.try_send(21).unwrap())
                    .unwrap();
                remote
            });
            let remote = posted.await.unwrap();
            let doubled = task.await.unwrap();
            remote.stop();
            doubled
        })
    });
    ioloop.start().unwrap();
    assert_eq!(tokio_thread.join().unwrap(), 42);
}

/// The values seen by the scenario and the loop time (s) at which each was seen.
type Steps = Rc<RefCell<Vec<(u32, u64)>>>;

/// One scenario: after 3 s, read a value produced by a callback API, add 1 after another
/// 2 s, record the time of each step.
fn produce_later(ioloop: &IoLoop, on_done: impl FnOnce(&IoLoop, u32) + 'static) {
    ioloop.call_later(Duration::from_secs(3), move |ioloop| on_done(ioloop, 41));
}

fn as_callbacks(ioloop: &IoLoop) -> Steps {
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let start = ioloop.time();
    produce_later(ioloop, move |ioloop, v| {
        l.borrow_mut().push((v, (ioloop.time() - start).as_secs()));
        ioloop.call_later(Duration::from_secs(2), move |ioloop| {
            l.borrow_mut()
                .push((v + 1, (ioloop.time() - start).as_secs()));
            ioloop.stop();
        });
    });
    log
}

fn as_async(ioloop: &IoLoop) -> Steps {
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let handle = ioloop.clone();
    drop(ioloop.spawn(async move {
        let start = handle.time();
        let (done, value) = ioloop::completion();
        produce_later(&handle, move |_, v| done.complete(v));
        let v = value.await.unwrap();
        l.borrow_mut().push((v, (handle.time() - start).as_secs()));
        ioloop::sleep(Duration::from_secs(2)).await;
        l.borrow_mut()
            .push((v + 1, (handle.time() - start).as_secs()));
        handle.stop();
    }));
    log
}

fn run_on_manual_clock(build: fn(&IoLoop) -> Steps) -> Vec<(u32, u64)> {
    let (ioloop, clock) = manual_loop();
    let log = build(&ioloop);
    // Step until stopped, jumping the clock to each deadline.
    while ioloop.run_once(Duration::ZERO).unwrap() && log.borrow().len() < 2 {
        if let Some(wait) = ioloop.poll_timeout() {
            clock.advance(wait);
        }
    }
    let out = log.borrow().clone();
    out
}

#[test]
fn the_same_scenario_as_callbacks_and_as_async_code_gives_the_same_result() {
    let callbacks = run_on_manual_clock(as_callbacks);
    let async_code = run_on_manual_clock(as_async);
    assert_eq!(callbacks, [(41, 3), (42, 5)]);
    assert_eq!(async_code, callbacks);
}

#[test]
fn a_completion_completed_from_another_thread_wakes_the_task() {
    let ioloop = IoLoop::new().unwrap();
    let (done, value) = ioloop::completion();
    let worker = std::thread::spawn(move || done.complete(String::from("from a thread")));
    let got = ioloop.run_sync(value).unwrap();
    worker.join().unwrap();
    assert_eq!(got.as_deref(), Ok("from a thread"));
}

#[test]
fn a_completer_dropped_without_completing_gives_abandoned_not_a_hang() {
    let (ioloop, _) = manual_loop();
    let (done, value) = ioloop::completion::<u8>();
    // A callback API that drops its callback (here: a timeout removed before it fires).
    let t = ioloop.call_later(Duration::from_secs(1), move |_| done.complete(1));
    ioloop.remove_timeout(t);
    assert_eq!(
        ioloop.run_sync(value).unwrap(),
        Err(ioloop::task::Abandoned)
    );
}
