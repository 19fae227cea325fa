//! Tasks: spawn, the Task handle (output, cancel, detach, panics), run_sync, add_future,
//! wakers (coalescing, once per iteration, no starvation) and IoLoop::current in tasks.

use crate::common;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::{manual_loop, poll_once, DropFlag};
use ioloop::testing::{step, LogCapture};
use ioloop::{CallbackKind, IoLoop, RunSyncError, Task, TaskError};

/// A future that counts its polls and stays pending, handing out its waker.
struct Pending {
    polls: Rc<Cell<u32>>,
    waker: LastWaker,
}

impl Future for Pending {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.polls.set(self.polls.get() + 1);
        *self.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// The waker a [`Pending`] was last polled with.
type LastWaker = Rc<RefCell<Option<Waker>>>;

fn pending() -> (Pending, Rc<Cell<u32>>, LastWaker) {
    let polls = Rc::new(Cell::new(0));
    let waker = Rc::new(RefCell::new(None));
    let future = Pending {
        polls: polls.clone(),
        waker: waker.clone(),
    };
    (future, polls, waker)
}

#[test]
fn spawn_polls_on_the_next_iteration_never_inline() {
    let (ioloop, _) = manual_loop();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let mut task = ioloop.spawn(async move {
        r.set(true);
        5
    });
    assert!(!ran.get(), "spawn does not poll inline");
    assert!(poll_once(&mut task).is_pending());
    step(&ioloop);
    assert!(ran.get());
    assert!(matches!(poll_once(&mut task), Poll::Ready(Ok(5))));
    assert_eq!(ioloop.stats().tasks, 0);
}

#[test]
fn spawn_eager_polls_inline_in_a_callback_and_then_like_any_task() {
    let (ioloop, _) = manual_loop();
    let tasks: Rc<RefCell<Vec<Task<i32>>>> = Rc::default();
    let (future, polls, waker) = pending();
    let (held, pending_polls) = (tasks.clone(), polls.clone());
    ioloop.add_callback(move |ioloop| {
        held.borrow_mut().push(ioloop.spawn_eager(async { 5 }));
        assert!(
            held.borrow()[0].is_finished(),
            "finished before spawn_eager returned"
        );
        held.borrow_mut().push(ioloop.spawn_eager(async move {
            future.await;
            6
        }));
        assert_eq!(pending_polls.get(), 1, "polled once, inline");
    });
    step(&ioloop);
    assert_eq!(ioloop.stats().tasks, 1, "the pending one is registered");
    waker.borrow_mut().take().unwrap().wake();
    step(&ioloop);
    assert_eq!(polls.get(), 2, "woken and polled as any task");
    let mut tasks = tasks.borrow_mut();
    assert!(matches!(poll_once(&mut tasks[0]), Poll::Ready(Ok(5))));
    assert!(poll_once(&mut tasks[1]).is_pending());
}

#[test]
fn spawn_eager_outside_an_iteration_queues_and_a_first_poll_panic_is_caught() {
    let (ioloop, _) = manual_loop();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let mut task = ioloop.spawn_eager(async move { r.set(true) });
    assert!(!ran.get(), "not inside an iteration: queued");
    step(&ioloop);
    assert!(ran.get() && matches!(poll_once(&mut task), Poll::Ready(Ok(()))));
    let outcome: Rc<RefCell<Option<Task<()>>>> = Rc::default();
    let slot = outcome.clone();
    ioloop.add_callback(move |ioloop| {
        *slot.borrow_mut() = Some(ioloop.spawn_eager(async { panic!("first poll") }));
    });
    step(&ioloop);
    let mut task = outcome.borrow_mut().take().unwrap();
    assert!(matches!(poll_once(&mut task), Poll::Ready(Err(e)) if e.is_panic()));
}

#[test]
fn a_task_is_send_when_its_output_is_even_if_its_future_is_not() {
    fn assert_send<T: Send>(_: &T) {}
    let ioloop = IoLoop::new().unwrap();
    let not_send = Rc::new(1);
    let task: Task<i32> = ioloop.spawn(async move { *not_send });
    assert_send(&task);
    assert_eq!(ioloop.run_sync(task).unwrap().unwrap(), 1);
}

#[test]
fn cancel_on_the_loop_thread_drops_the_future_at_once() {
    let (ioloop, _) = manual_loop();
    let dropped = DropFlag::default();
    let guard = dropped.guard();
    let (future, polls, _) = pending();
    let mut task = ioloop.spawn(async move {
        let _guard = guard;
        future.await
    });
    step(&ioloop);
    assert_eq!(polls.get(), 1);
    task.cancel();
    assert!(dropped.is_dropped());
    assert!(matches!(
        poll_once(&mut task),
        Poll::Ready(Err(TaskError::Cancelled))
    ));
    assert_eq!(ioloop.stats().tasks, 0);
}

#[test]
fn a_task_that_cancels_itself_is_dropped_when_its_poll_returns() {
    let (ioloop, _) = manual_loop();
    let slot: Rc<RefCell<Option<Task<()>>>> = Rc::default();
    let s = slot.clone();
    let dropped = DropFlag::default();
    let guard = dropped.guard();
    let task = ioloop.spawn(async move {
        let _guard = guard;
        s.borrow().as_ref().unwrap().cancel();
        std::future::pending::<()>().await
    });
    *slot.borrow_mut() = Some(task);
    step(&ioloop);
    assert!(dropped.is_dropped());
    let mut task = slot.borrow_mut().take().unwrap();
    assert!(matches!(
        poll_once(&mut task),
        Poll::Ready(Err(TaskError::Cancelled))
    ));
}

#[test]
fn cancel_from_another_thread_takes_effect_on_the_next_iteration() {
    let (ioloop, _) = manual_loop();
    let dropped = DropFlag::default();
    let guard = dropped.guard();
    let task = ioloop.spawn(async move {
        let _guard = guard;
        std::future::pending::<()>().await
    });
    step(&ioloop);
    let mut task = std::thread::spawn(move || {
        task.cancel();
        task
    })
    .join()
    .unwrap();
    assert!(!dropped.is_dropped());
    step(&ioloop);
    assert!(dropped.is_dropped());
    assert!(matches!(
        poll_once(&mut task),
        Poll::Ready(Err(TaskError::Cancelled))
    ));
}

#[test]
fn cancelling_a_finished_task_keeps_its_output() {
    let (ioloop, _) = manual_loop();
    let mut task = ioloop.spawn(async { "done" });
    step(&ioloop);
    task.cancel();
    assert!(matches!(poll_once(&mut task), Poll::Ready(Ok("done"))));
}

#[test]
fn dropping_a_task_detaches_it_and_it_runs_to_completion() {
    let (ioloop, _) = manual_loop();
    let steps = Rc::new(Cell::new(0));
    let s = steps.clone();
    drop(ioloop.spawn(async move {
        s.set(1);
        ioloop::yield_now().await;
        s.set(2);
    }));
    step(&ioloop);
    step(&ioloop);
    assert_eq!(steps.get(), 2);
    assert_eq!(ioloop.stats().tasks, 0);
}

#[test]
fn a_panic_surfaces_to_whoever_awaits_the_task() {
    let (ioloop, _) = manual_loop();
    let handler_calls = Rc::new(Cell::new(0));
    let h = handler_calls.clone();
    ioloop.set_panic_handler(move |_| h.set(h.get() + 1));
    let line = line!() + 1;
    let mut task = ioloop.spawn(async { panic!("task boom") });
    step(&ioloop);
    match poll_once(&mut task) {
        Poll::Ready(Err(TaskError::Panicked(panic))) => {
            assert_eq!(panic.message(), "task boom");
            assert_eq!(panic.site().line(), line);
            assert_eq!(panic.site().file(), file!());
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    assert_eq!(
        handler_calls.get(),
        0,
        "the awaiter got it, not the handler"
    );
    assert_eq!(ioloop.stats().tasks, 0);
}

#[test]
fn a_detached_task_panic_goes_to_the_panic_handler() {
    let (ioloop, _) = manual_loop();
    let reports = Rc::new(RefCell::new(Vec::new()));
    let r = reports.clone();
    ioloop.set_panic_handler(move |report| {
        r.borrow_mut().push((
            report.kind(),
            report.message().to_owned(),
            report.site().line(),
        ))
    });
    let line = line!() + 1;
    drop(ioloop.spawn(async { panic!("nobody waits") }));
    step(&ioloop);
    assert_eq!(
        *reports.borrow(),
        [(CallbackKind::Task, "nobody waits".to_owned(), line)]
    );
}

#[test]
fn a_panic_in_a_task_that_is_dropped_unawaited_is_logged() {
    let logs = LogCapture::start();
    let (ioloop, _) = manual_loop();
    let task = ioloop.spawn(async { panic!("never looked at") });
    step(&ioloop);
    assert!(task.is_finished());
    drop(task);
    let errors = logs.messages(log::Level::Error);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("never looked at"), "{errors:?}");
    assert!(errors[0].contains(file!()), "{errors:?}");
}

#[test]
fn closing_or_dropping_the_loop_cancels_pending_tasks() {
    let (ioloop, _) = manual_loop();
    let mut a = ioloop.spawn(std::future::pending::<()>());
    step(&ioloop);
    ioloop.close(true).unwrap();
    assert!(matches!(
        poll_once(&mut a),
        Poll::Ready(Err(TaskError::Cancelled))
    ));
    let mut late = ioloop.spawn(async { 1 });
    assert!(matches!(
        poll_once(&mut late),
        Poll::Ready(Err(TaskError::Cancelled))
    ));

    let (ioloop, _) = manual_loop();
    let mut b = ioloop.spawn(std::future::pending::<()>());
    drop(ioloop);
    assert!(matches!(
        poll_once(&mut b),
        Poll::Ready(Err(TaskError::Cancelled))
    ));
}

#[test]
fn run_sync_returns_the_output_and_leaves_other_work_pending() {
    let (ioloop, clock) = manual_loop();
    ioloop.call_later(Duration::from_secs(10), |_| {});
    let handle = ioloop.clone();
    let out = ioloop.run_sync(async move {
        ioloop::yield_now().await;
        handle.stats().timeouts_pending
    });
    assert_eq!(out.unwrap(), 1);
    assert_eq!(ioloop.stats().timeouts_pending, 1);
    assert_eq!(ioloop.stats().tasks, 0);
    drop(clock);
}

#[test]
fn run_sync_timeout_drops_the_future_and_says_timed_out() {
    let (ioloop, clock) = manual_loop();
    let dropped = DropFlag::default();
    let guard = dropped.guard();
    // The manual clock never moves by itself: advance it from a callback.
    let c = clock.clone();
    ioloop.add_callback(move |_| c.advance(Duration::from_secs(5)));
    let result = ioloop.run_sync_timeout(
        async move {
            let _guard = guard;
            std::future::pending::<()>().await
        },
        Duration::from_secs(5),
    );
    assert!(matches!(result, Err(RunSyncError::TimedOut)), "{result:?}");
    assert!(dropped.is_dropped());
    assert_eq!(ioloop.stats().tasks, 0);
    assert_eq!(ioloop.stats().timeouts_pending, 0);
}

#[test]
fn after_a_timeout_or_a_stop_the_next_run_sync_runs_normally() {
    let (ioloop, clock) = manual_loop();
    let c = clock.clone();
    ioloop.add_callback(move |_| c.advance(Duration::from_secs(1)));
    let never = std::future::pending::<()>();
    let timed_out = ioloop.run_sync_timeout(never, Duration::from_secs(1));
    assert!(matches!(timed_out, Err(RunSyncError::TimedOut)));
    ioloop.add_callback(|ioloop| ioloop.stop());
    let stopped = ioloop.run_sync(std::future::pending::<()>());
    assert!(matches!(stopped, Err(RunSyncError::Stopped)));
    // No stop request is left behind by cancelling the abandoned futures.
    let out = ioloop.run_sync(async {
        ioloop::yield_now().await;
        9
    });
    assert_eq!(out.unwrap(), 9);
}

#[test]
fn run_sync_drops_its_future_at_once_even_when_another_loop_is_current() {
    let _first = IoLoop::new().unwrap(); // the thread's current loop
    let clock = ioloop::ManualClock::new();
    let ioloop = IoLoop::builder().clock(clock.clone()).build().unwrap();
    let dropped = DropFlag::default();
    let guard = dropped.guard();
    ioloop.add_callback(move |_| clock.advance(Duration::from_secs(1)));
    let result = ioloop.run_sync_timeout(
        async move {
            let _guard = guard;
            std::future::pending::<()>().await
        },
        Duration::from_secs(1),
    );
    assert!(matches!(result, Err(RunSyncError::TimedOut)));
    assert!(dropped.is_dropped());
}

#[test]
fn run_sync_finishing_in_time_removes_its_timer() {
    let (ioloop, _) = manual_loop();
    let out = ioloop.run_sync_timeout(async { 3 }, Duration::from_secs(5));
    assert_eq!(out.unwrap(), 3);
    assert_eq!(ioloop.stats().timeouts_pending, 0);
}

#[test]
fn run_sync_reports_a_stop_before_the_future_completed() {
    let (ioloop, _) = manual_loop();
    let dropped = DropFlag::default();
    let guard = dropped.guard();
    ioloop.add_callback(|ioloop| ioloop.stop());
    let result = ioloop.run_sync(async move {
        let _guard = guard;
        std::future::pending::<()>().await
    });
    assert!(matches!(result, Err(RunSyncError::Stopped)), "{result:?}");
    assert!(dropped.is_dropped());
}

#[test]
fn run_sync_refuses_a_closed_or_running_loop_and_reports_panics() {
    let (ioloop, _) = manual_loop();
    let inner = Rc::new(RefCell::new(None));
    let i = inner.clone();
    ioloop.add_callback(move |ioloop| *i.borrow_mut() = Some(ioloop.run_sync(async {})));
    step(&ioloop);
    let nested = inner.borrow_mut().take().unwrap();
    assert!(
        matches!(
            nested,
            Err(RunSyncError::Loop(ioloop::LoopError::AlreadyRunning))
        ),
        "{nested:?}"
    );
    assert_eq!(ioloop.stats().tasks, 0, "nothing was spawned");

    let result = ioloop.run_sync(async { panic!("in run_sync") });
    match result {
        Err(RunSyncError::Panicked(panic)) => assert_eq!(panic.message(), "in run_sync"),
        other => panic!("{other:?}"),
    }

    ioloop.close(true).unwrap();
    assert!(matches!(
        ioloop.run_sync(async {}),
        Err(RunSyncError::Loop(ioloop::LoopError::Closed))
    ));
}

#[test]
fn add_future_calls_back_on_a_later_iteration_even_when_already_complete() {
    let (ioloop, _) = manual_loop();
    let got = Rc::new(Cell::new(None));
    let g = got.clone();
    ioloop.add_future(std::future::ready(7), move |_, v| g.set(Some(v)));
    step(&ioloop); // the future resolves here
    assert_eq!(got.get(), None, "never inline with the completion");
    step(&ioloop);
    assert_eq!(got.get(), Some(7));
}

#[test]
fn add_future_waits_for_a_pending_future_then_calls_back_the_iteration_after() {
    let (ioloop, _) = manual_loop();
    let (done, result) = ioloop::completion();
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    ioloop.add_future(result, move |ioloop, v| {
        g.borrow_mut().push((v, ioloop.stats().iterations))
    });
    step(&ioloop);
    step(&ioloop);
    assert!(got.borrow().is_empty());
    done.complete("v");
    let completed_at = ioloop.stats().iterations + 1;
    step(&ioloop); // the task sees the value and queues the callback
    step(&ioloop);
    assert_eq!(*got.borrow(), [(Ok("v"), completed_at + 1)]);
}

#[test]
fn a_task_is_polled_at_most_once_per_iteration_however_often_it_is_woken() {
    let (ioloop, _) = manual_loop();
    let (future, polls, waker) = pending();
    drop(ioloop.spawn(future));
    step(&ioloop);
    assert_eq!(polls.get(), 1);
    for _ in 0..5 {
        let waker = waker.borrow().clone().unwrap();
        ioloop.add_callback(move |_| waker.wake());
    }
    step(&ioloop); // five wakes from five callbacks
    assert_eq!(polls.get(), 1, "woken this iteration: polled on the next");
    step(&ioloop);
    assert_eq!(polls.get(), 2, "five wakes, one poll");
    step(&ioloop);
    assert_eq!(polls.get(), 2);
}

#[test]
fn ten_wakes_from_another_thread_give_one_poll_and_one_wakeup() {
    let (ioloop, _) = manual_loop();
    let (future, polls, waker) = pending();
    drop(ioloop.spawn(future));
    step(&ioloop);
    let waker = waker.borrow().clone().unwrap();
    let wakeups_before = ioloop.stats().remote_wakeups;
    std::thread::spawn(move || {
        for _ in 0..10 {
            waker.wake_by_ref();
        }
    })
    .join()
    .unwrap();
    assert_eq!(ioloop.stats().remote_wakeups - wakeups_before, 1);
    step(&ioloop);
    assert_eq!(polls.get(), 2);
    step(&ioloop);
    assert_eq!(polls.get(), 2);
}

#[test]
fn a_cross_thread_wake_makes_the_loop_fd_readable_so_a_blocking_wait_returns() {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let ioloop = IoLoop::new().unwrap();
    let (future, polls, waker) = pending();
    drop(ioloop.spawn(future));
    ioloop.run_once(Duration::ZERO).unwrap();
    let waker = waker.borrow().clone().unwrap();
    std::thread::spawn(move || waker.wake()).join().unwrap();
    let mut fds = [PollFd::new(&ioloop, PollFlags::IN)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    assert_eq!(
        poll(&mut fds, Some(&zero)).unwrap(),
        1,
        "the poller was woken"
    );
    // A wait that would otherwise block for a minute returns at once and polls the task.
    ioloop.run_once(Duration::from_secs(60)).unwrap();
    assert_eq!(polls.get(), 2);
}

#[test]
fn a_task_that_wakes_itself_forever_does_not_starve_timers_or_io() {
    let (ioloop, clock) = manual_loop();
    let spins = Rc::new(Cell::new(0u64));
    let s = spins.clone();
    drop(ioloop.spawn(async move {
        loop {
            s.set(s.get() + 1);
            ioloop::yield_now().await;
        }
    }));
    let fired = Rc::new(Cell::new(false));
    let f = fired.clone();
    ioloop.call_later(Duration::from_millis(10), move |_| f.set(true));
    let (reader, mut writer) = std::os::unix::net::UnixStream::pair().unwrap();
    let read = Rc::new(Cell::new(false));
    let r = read.clone();
    ioloop
        .add_handler(reader, ioloop::Interest::READ, move |ioloop, _, ev| {
            r.set(true);
            ioloop.remove_handler(ev.id());
        })
        .unwrap();
    std::io::Write::write_all(&mut writer, b"x").unwrap();
    step(&ioloop);
    assert!(read.get(), "I/O dispatched in the first iteration");
    clock.advance(Duration::from_millis(10));
    step(&ioloop);
    assert!(fired.get(), "the timer fired");
    assert_eq!(spins.get(), 2, "one poll per iteration");
}

#[test]
fn current_inside_a_task_is_the_loop_polling_it() {
    let ioloop = IoLoop::new().unwrap();
    let _other = IoLoop::new().unwrap();
    let handle = ioloop.clone();
    let same = ioloop
        .run_sync(async move { IoLoop::current().unwrap().ptr_eq(&handle) })
        .unwrap();
    assert!(same);
}

#[test]
fn wakers_are_send_and_sync_and_survive_the_loop() {
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    let (ioloop, _) = manual_loop();
    let (future, _, waker) = pending();
    drop(ioloop.spawn(future));
    step(&ioloop);
    let waker = waker.borrow().clone().unwrap();
    assert_send_sync(&waker);
    drop(ioloop);
    let woke = Arc::new(AtomicUsize::new(0));
    let w = woke.clone();
    std::thread::spawn(move || {
        waker.wake(); // the loop is gone: a no-op, not a panic
        w.fetch_add(1, Ordering::SeqCst);
    })
    .join()
    .unwrap();
    assert_eq!(woke.load(Ordering::SeqCst), 1);
}

#[test]
fn a_send_future_spawned_from_another_thread_runs_on_the_loop() {
    let ioloop = IoLoop::new().unwrap();
    let remote = ioloop.remote();
    let task = std::thread::spawn(move || {
        remote.spawn(async {
            let here = IoLoop::current().expect("a task of the loop");
            here.stats().tasks
        })
    })
    .join()
    .unwrap();
    assert_eq!(
        ioloop.stats().tasks,
        0,
        "adopted when the loop drains its queue"
    );
    assert_eq!(
        ioloop.run_sync(task).unwrap().unwrap(),
        2,
        "itself and run_sync's"
    );
    assert_eq!(ioloop.stats().tasks, 0);
}

#[test]
fn spawn_with_makes_a_loop_local_future_on_the_loop_thread() {
    let (ioloop, clock) = manual_loop();
    let remote = ioloop.remote();
    let loop_thread = std::thread::current().id();
    let task = std::thread::spawn(move || {
        remote.spawn_with(move || {
            assert_eq!(std::thread::current().id(), loop_thread, "made on the loop");
            async {
                ioloop::sleep(Duration::from_secs(5)).await;
                "woke"
            }
        })
    })
    .join()
    .unwrap();
    step(&ioloop);
    assert!(!task.is_finished());
    clock.advance(Duration::from_secs(5));
    step(&ioloop);
    step(&ioloop);
    assert!(task.is_finished());
    assert_eq!(ioloop.run_sync(task).unwrap().unwrap(), "woke");
}

#[test]
fn a_task_spawned_from_another_thread_on_a_closed_loop_is_cancelled_and_its_future_dropped() {
    let ioloop = IoLoop::new().unwrap();
    let remote = ioloop.remote();
    ioloop.close(true).unwrap();
    let dropped = Arc::new(AtomicUsize::new(0));
    struct CountsDrop(Arc<AtomicUsize>);
    impl Drop for CountsDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let guard = CountsDrop(dropped.clone());
    let task = remote.spawn(async move {
        let _guard = guard;
    });
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
    assert!(task.is_finished());
    let outcome = poll_once(&mut Box::pin(task));
    assert!(matches!(outcome, Poll::Ready(Err(TaskError::Cancelled))));
}

#[test]
fn a_task_sent_to_a_loop_that_closes_before_adopting_it_is_cancelled() {
    let ioloop = IoLoop::new().unwrap();
    let task = ioloop.remote().spawn(async { 1 });
    ioloop.close(true).unwrap();
    assert!(task.is_finished());
    assert!(poll_once(&mut Box::pin(task)).is_ready());
}

#[test]
fn a_detached_task_drops_its_output_on_the_loop_thread() {
    let ioloop = IoLoop::new().unwrap();
    let dropped_on = Rc::new(Cell::new(None));
    struct NotSend(Rc<Cell<Option<std::thread::ThreadId>>>);
    impl Drop for NotSend {
        fn drop(&mut self) {
            self.0.set(Some(std::thread::current().id()));
        }
    }
    let output = NotSend(dropped_on.clone());
    drop(ioloop.spawn(async move { output }));
    step(&ioloop);
    assert_eq!(dropped_on.get(), Some(std::thread::current().id()));
    assert_eq!(ioloop.stats().tasks, 0);
}

#[test]
fn cancel_from_another_thread_of_a_remote_task_reaches_the_loop() {
    let ioloop = IoLoop::new().unwrap();
    let task = ioloop.remote().spawn(std::future::pending::<()>());
    step(&ioloop);
    assert_eq!(ioloop.stats().tasks, 1, "adopted and pending");
    std::thread::scope(|s| {
        s.spawn(|| task.cancel());
    });
    assert!(!task.is_finished(), "the loop ends it, on its thread");
    step(&ioloop);
    assert_eq!(ioloop.stats().tasks, 0);
    assert!(task.is_finished());
    assert!(ioloop.run_sync(task).unwrap().unwrap_err().is_cancelled());
}
