//! [`run_test`]: an async test body on a fresh loop, with a time limit.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use crate::reactor::ioloop::IoLoop;
use crate::reactor::LoopStats;
use crate::task::RunSyncError;

/// Runs the future `body` makes on a fresh loop (which is then the thread's current
/// loop) and returns its output (Tornado's `gen_test`). If it has not finished after
/// `limit`, the test fails with what the loop was still waiting on, for example "timed
/// out after 5 s; pending: 2 timeouts, 1 handler".
///
/// # Panics
///
/// On the time limit, as said; when `body`'s future panics (the same panic, so
/// `#[should_panic]` works); when the loop fails.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let echoed = ioloop::testing::run_test(Duration::from_secs(5), |ioloop| async move {
///     let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
///     let a = ioloop::IoStream::new(&ioloop, a).unwrap();
///     let b = ioloop::IoStream::new(&ioloop, b).unwrap();
///     a.write_all(b"ping\n").await.unwrap();
///     b.read_until(b"\n", 64).await.unwrap()
/// });
/// assert_eq!(echoed, b"ping\n");
/// ```
///
/// ```should_panic
/// use std::time::Duration;
///
/// // Panics: "timed out after 10ms; pending: 1 timeout".
/// ioloop::testing::run_test(Duration::from_millis(10), |_| async {
///     ioloop::sleep(Duration::from_secs(60)).await;
/// });
/// ```
#[track_caller]
pub fn run_test<F, Fut>(limit: Duration, body: F) -> Fut::Output
where
    F: FnOnce(IoLoop) -> Fut,
    Fut: Future + 'static,
    Fut::Output: 'static,
{
    let ioloop = match IoLoop::new() {
        Ok(ioloop) => ioloop,
        Err(e) => panic!("cannot make a loop for the test: {e}"),
    };
    let at_limit: Rc<Cell<Option<LoopStats>>> = Rc::default();
    let seen = at_limit.clone();
    let limit_timer = ioloop.call_later(limit, move |ioloop| {
        seen.set(Some(ioloop.stats()));
        ioloop.stop();
    });
    let future = body(ioloop.clone());
    let outcome = ioloop.run_sync(future);
    ioloop.remove_timeout(limit_timer);
    match outcome {
        Ok(output) => output,
        Err(RunSyncError::Panicked(panic)) => std::panic::resume_unwind(panic.into_payload()),
        Err(RunSyncError::Stopped) if at_limit.get().is_some() => {
            let stats = at_limit.get().expect("checked");
            // The body's own task is not something it waits on.
            panic!(
                "timed out after {limit:?}; pending: {}",
                describe_pending(&stats, 1)
            )
        }
        Err(e) => panic!("the test's loop failed: {e}"),
    }
}

/// What a loop still has to do, for a failure message: "2 timeouts, 1 handler".
/// `own_tasks` tasks are the caller's and not counted.
pub(super) fn describe_pending(stats: &LoopStats, own_tasks: usize) -> String {
    let counts = [
        (stats.timeouts_pending, "timeout"),
        (stats.handlers, "handler"),
        (stats.tasks.saturating_sub(own_tasks), "other task"),
        (stats.callbacks_queued, "callback"),
    ];
    let parts: Vec<String> = counts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}{}", if *n == 1 { "" } else { "s" }))
        .collect();
    if parts.is_empty() {
        "nothing (the awaited work is not on this loop: another thread, or a future no one wakes)"
            .to_owned()
    } else {
        parts.join(", ")
    }
}
