//! Workload 4, tasks (the future adapter).
//!
//! - `spawn`: batches of `batch` tasks spawned from the driving code, each a future that
//!   completes on its first poll, then the loop runs until all of them completed; ns per
//!   spawn + completion. The floor is a `VecDeque` of boxed futures, each polled once with
//!   a no-op waker.
//! - `spawn-await`: one driver task does `spawn(fut).await` n times in sequence; ns per
//!   spawn + completion + wake of the driver.
//! - `wake-rtt`: a worker thread (pinned to another core) sends a sequence number over an
//!   `async-channel` to a task on the loop, which stores it in an atomic; the worker spins
//!   until it sees it, then pauses 20 µs so that the loop thread is asleep in its poller
//!   again (the shape of `rtt`). The wake crosses threads: on ioloop through the coalesced
//!   remote queue and an eventfd notify. Median and p99 in µs.
//!
//! Every task captures 8 bytes (its index) and bumps the same counters as the callbacks.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Waker};
use std::time::Duration;

use crate::callbacks::{ran, report, timed, tokio_rt, work, Unit};
use crate::cross::{ping_pong, rtt_floor_eventfd, rtt_report, spawn_worker, ACK};
use crate::util::Report;

const TASK: Unit = Unit {
    name: "tasks",
    ns: "ns_per_task",
    cpu_ns: "cpu_ns_per_task",
};

pub fn spawn(imp: &str, n: Option<usize>, batch: usize) -> Result<Report, String> {
    let n = n.unwrap_or(1_000_000);
    let n = n / batch * batch;
    let (elapsed, cpu, note) = match imp {
        "ioloop" => {
            let (e, c) = ioloop_spawn(n, batch);
            (
                e,
                c,
                "spawn x batch (Task dropped: detached), then run_once(ZERO) until they ran",
            )
        }
        "floor" => {
            let (e, c) = floor_spawn(n, batch);
            (
                e,
                c,
                "push x batch onto a VecDeque<Pin<Box<dyn Future>>>, then pop and poll each once with a no-op waker",
            )
        }
        "tokio" => {
            let (e, c) = tokio_spawn(n, batch);
            (
                e,
                c,
                "in LocalSet::block_on: spawn_local x batch (JoinHandle dropped), then yield until they ran",
            )
        }
        "async-task" => {
            let (e, c) = async_task_spawn(n, batch);
            (
                e,
                c,
                "async_task::spawn_local x batch (Task detached) into a thread-local VecDeque<Runnable>, then run each",
            )
        }
        _ => return Err(format!("spawn: unknown implementation {imp}")),
    };
    Ok(report("spawn", imp, n, (elapsed, cpu), &TASK, note))
}

pub fn spawn_await(imp: &str, n: Option<usize>) -> Result<Report, String> {
    let n = n.unwrap_or(1_000_000);
    let (elapsed, cpu, note) = match imp {
        "ioloop" => {
            let (e, c) = ioloop_spawn_await(n);
            (
                e,
                c,
                "run_sync(driver); the driver does spawn(fut).await n times",
            )
        }
        "tokio" => {
            let (e, c) = tokio_spawn_await(n);
            (
                e,
                c,
                "LocalSet::block_on(spawn_local(driver)); the driver does spawn_local(fut).await n times",
            )
        }
        "async-task" => {
            let (e, c) = async_task_spawn_await(n);
            (
                e,
                c,
                "a driver task on a thread-local VecDeque<Runnable> does async_task::spawn_local(fut).await n times",
            )
        }
        _ => return Err(format!("spawn-await: unknown implementation {imp}")),
    };
    Ok(report("spawn-await", imp, n, (elapsed, cpu), &TASK, note))
}

pub fn wake_rtt(imp: &str, n: Option<usize>, cpu: Option<usize>) -> Result<Report, String> {
    let n = n.unwrap_or(100_000) as u64;
    let (samples, note) = match imp {
        "ioloop" => (
            wake_rtt_ioloop(n, cpu),
            "run_sync(task); the task awaits async_channel::Receiver::recv",
        ),
        "floor" => (
            rtt_floor_eventfd(n, cpu),
            "raw eventfd: write(2) / blocking read(2) (rtt's floor-eventfd)",
        ),
        "tokio" => (
            wake_rtt_tokio(n, cpu),
            "LocalSet::spawn_local(task) on current_thread (IO driver on: parks in epoll); the task awaits recv",
        ),
        _ => return Err(format!("wake-rtt: unknown implementation {imp}")),
    };
    Ok(rtt_report("wake-rtt", imp, samples, note))
}

fn ioloop_spawn(n: usize, batch: usize) -> (Duration, Duration) {
    let ioloop = ioloop::IoLoop::new().unwrap();
    timed(|| {
        let mut i = 0u64;
        for _ in 0..n / batch {
            for _ in 0..batch {
                let k = i;
                drop(ioloop.spawn(async move { work(k) }));
                i += 1;
            }
            while ran() < i {
                ioloop.run_once(Duration::ZERO).unwrap();
            }
        }
    })
}

fn floor_spawn(n: usize, batch: usize) -> (Duration, Duration) {
    let mut queue: VecDeque<Pin<Box<dyn Future<Output = ()>>>> = VecDeque::new();
    let mut cx = Context::from_waker(Waker::noop());
    timed(|| {
        let mut i = 0u64;
        for _ in 0..n / batch {
            for _ in 0..batch {
                let k = i;
                queue.push_back(Box::pin(async move { work(k) }));
                i += 1;
            }
            while let Some(mut future) = queue.pop_front() {
                assert!(future.as_mut().poll(&mut cx).is_ready());
            }
        }
    })
}

fn tokio_spawn(n: usize, batch: usize) -> (Duration, Duration) {
    let rt = tokio_rt();
    let local = tokio::task::LocalSet::new();
    timed(|| {
        local.block_on(&rt, async move {
            let mut i = 0u64;
            for _ in 0..n / batch {
                for _ in 0..batch {
                    let k = i;
                    drop(tokio::task::spawn_local(async move { work(k) }));
                    i += 1;
                }
                while ran() < i {
                    tokio::task::yield_now().await;
                }
            }
        })
    })
}

thread_local! {
    /// The run queue of the minimal `async-task` executor: what a loop built on the crate
    /// would at least do per task (no registry, no cross-thread path).
    static RUNNABLES: std::cell::RefCell<VecDeque<async_task::Runnable>> =
        const { std::cell::RefCell::new(VecDeque::new()) };
}

fn async_task_schedule(runnable: async_task::Runnable) {
    RUNNABLES.with(|q| q.borrow_mut().push_back(runnable));
}

fn async_task_spawn_local<F: Future + 'static>(future: F) -> async_task::Task<F::Output> {
    let (runnable, task) = async_task::spawn_local(future, async_task_schedule);
    runnable.schedule();
    task
}

/// Runs queued runnables until the queue is empty.
fn async_task_run_queued() {
    while let Some(runnable) = RUNNABLES.with(|q| q.borrow_mut().pop_front()) {
        runnable.run();
    }
}

fn async_task_spawn(n: usize, batch: usize) -> (Duration, Duration) {
    timed(|| {
        let mut i = 0u64;
        for _ in 0..n / batch {
            for _ in 0..batch {
                let k = i;
                async_task_spawn_local(async move { work(k) }).detach();
                i += 1;
            }
            async_task_run_queued();
            assert!(ran() >= i);
        }
    })
}

fn async_task_spawn_await(n: usize) -> (Duration, Duration) {
    let n = n as u64;
    timed(|| {
        let driver = async_task_spawn_local(async move {
            for i in 0..n {
                async_task_spawn_local(async move { work(i) }).await;
            }
        });
        async_task_run_queued();
        assert!(driver.is_finished());
    })
}

fn ioloop_spawn_await(n: usize) -> (Duration, Duration) {
    let ioloop = ioloop::IoLoop::new().unwrap();
    let n = n as u64;
    timed(|| {
        ioloop
            .run_sync(async move {
                // Not a captured handle: a task holding its own loop would be a cycle.
                let ioloop = ioloop::IoLoop::current().unwrap();
                for i in 0..n {
                    ioloop.spawn(async move { work(i) }).await.unwrap();
                }
            })
            .unwrap()
    })
}

fn tokio_spawn_await(n: usize) -> (Duration, Duration) {
    let rt = tokio_rt();
    let local = tokio::task::LocalSet::new();
    let n = n as u64;
    timed(|| {
        local.block_on(&rt, async move {
            tokio::task::spawn_local(async move {
                for i in 0..n {
                    tokio::task::spawn_local(async move { work(i) })
                        .await
                        .unwrap();
                }
            })
            .await
            .unwrap()
        })
    })
}

/// The loop side of `wake-rtt`: answers every message until the worker hangs up.
async fn answer(rx: async_channel::Receiver<u64>) {
    while let Ok(k) = rx.recv().await {
        ACK.store(k, Ordering::Release);
    }
}

/// Spawns the `wake-rtt` worker: it sends `k` for each round trip, then hangs up.
fn sender(
    n: u64,
    cpu: Option<usize>,
    tx: async_channel::Sender<u64>,
) -> std::thread::JoinHandle<Vec<Duration>> {
    spawn_worker(cpu, move || {
        let s = ping_pong(n, |k| tx.try_send(k).unwrap());
        drop(tx);
        s
    })
}

fn wake_rtt_ioloop(n: u64, cpu: Option<usize>) -> Vec<Duration> {
    let ioloop = ioloop::IoLoop::new().unwrap();
    let (tx, rx) = async_channel::unbounded();
    let worker = sender(n, cpu, tx);
    ioloop.run_sync(answer(rx)).unwrap();
    worker.join().unwrap()
}

fn wake_rtt_tokio(n: u64, cpu: Option<usize>) -> Vec<Duration> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let (tx, rx) = async_channel::unbounded();
    let worker = sender(n, cpu, tx);
    let task = local.spawn_local(answer(rx));
    local.block_on(&rt, task).unwrap();
    worker.join().unwrap()
}
