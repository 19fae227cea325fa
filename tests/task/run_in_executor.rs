//! Blocking work off the loop (feature `blocking`): `run_in_executor` and its callback
//! and `Remote` counterparts run on the pool while the loop goes on, and hand results
//! and panics back through the loop.

#![cfg(feature = "blocking")]

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc;

use ioloop::IoLoop;

#[test]
fn the_loop_runs_while_the_work_blocks_and_the_result_comes_back_as_a_task() {
    let ioloop = IoLoop::new().unwrap();
    let (release, blocked) = mpsc::channel::<u32>();
    // The work blocks until the loop itself releases it: a loop that waited for the
    // work would never get there.
    let task = ioloop.run_in_executor(move || blocked.recv().unwrap() * 2);
    ioloop.add_callback(move |_| release.send(21).unwrap());
    assert_eq!(ioloop.run_sync(task).unwrap().unwrap(), 42);
}

#[test]
fn a_panic_in_the_work_ends_its_task_as_panicked() {
    let ioloop = IoLoop::new().unwrap();
    let task = ioloop.run_in_executor(|| -> u32 { panic!("in the pool") });
    let outcome = ioloop.run_sync(task).unwrap();
    assert!(matches!(outcome, Err(e) if e.is_panic()));
}

#[test]
fn the_callback_form_runs_on_the_loop_thread() {
    let ioloop = IoLoop::new().unwrap();
    let loop_thread = std::thread::current().id();
    let seen: Rc<RefCell<Option<(std::thread::ThreadId, std::thread::ThreadId)>>> = Rc::default();
    let out = seen.clone();
    ioloop.run_in_executor_then(
        || std::thread::current().id(),
        move |ioloop, worker| {
            *out.borrow_mut() = Some((worker, std::thread::current().id()));
            ioloop.stop();
        },
    );
    ioloop.start().unwrap();
    let (worker, callback) = seen.borrow_mut().take().unwrap();
    assert_ne!(worker, loop_thread, "the work ran on the pool");
    assert_eq!(callback, loop_thread, "the callback ran on the loop");
}

#[test]
fn another_thread_posts_work_through_a_remote_and_awaits_it_anywhere() {
    let ioloop = IoLoop::new().unwrap();
    let remote = ioloop.remote();
    let waiter = std::thread::spawn(move || {
        let task = remote.run_in_executor(|| "done on the pool");
        // Awaited by a minimal executor on this thread, not by the loop.
        let result = futures_lite::future::block_on(task);
        remote.stop();
        result.unwrap()
    });
    ioloop.start().unwrap(); // until the waiter stops it
    assert_eq!(waiter.join().unwrap(), "done on the pool");
}
