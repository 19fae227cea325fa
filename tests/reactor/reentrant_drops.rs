//! No user value is dropped or called while a borrow of shared state is held (DESIGN.md
//! section 7): a closure, handler, random source or future whose destructor (or call)
//! uses the very object that holds it must find that object free, never "already
//! borrowed". Each test failed before its fix (a panic, or a double drop) unless it says pin.

use crate::common;

use std::cell::{Cell, RefCell};
use std::fmt;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use common::manual_loop;
use ioloop::testing::{advance_to_next_deadline, step, LogCapture};
use ioloop::{IoLoop, IoStream, PeriodicCallback, Task};

/// Runs its closure when dropped: a user value whose destructor calls back in.
struct OnDrop(Option<Box<dyn FnOnce()>>);

impl OnDrop {
    fn new(f: impl FnOnce() + 'static) -> OnDrop {
        OnDrop(Some(Box::new(f)))
    }
}

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

#[test]
fn a_replaced_panic_handler_is_dropped_after_the_loops_borrow() {
    let ioloop = IoLoop::new().unwrap();
    let reported = Rc::new(Cell::new(0));
    let (l, r) = (ioloop.clone(), reported.clone());
    // The old handler's destructor installs a handler of its own.
    let guard = OnDrop::new(move || l.set_panic_handler(move |_| r.set(r.get() + 1)));
    ioloop.set_panic_handler(move |_| {
        let _ = &guard;
    });
    ioloop.set_panic_handler(|_| {});
    ioloop.add_callback(|_| panic!("reported"));
    step(&ioloop);
    assert_eq!(
        reported.get(),
        1,
        "the last handler set (by the destructor) got it"
    );
}

/// Counts its drops, and cancels the task that owns it when dropped.
struct CancelsItsOwnTask {
    task: Rc<RefCell<Option<Task<()>>>>,
    drops: Rc<Cell<u32>>,
}

impl Drop for CancelsItsOwnTask {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
        let task = self.task.borrow_mut().take();
        if let Some(task) = task {
            task.cancel();
        }
    }
}

#[test]
fn a_future_whose_drop_cancels_its_own_task_is_dropped_once() {
    let ioloop = IoLoop::new().unwrap();
    let slot: Rc<RefCell<Option<Task<()>>>> = Rc::default();
    let drops = Rc::new(Cell::new(0));
    let guard = CancelsItsOwnTask {
        task: slot.clone(),
        drops: drops.clone(),
    };
    let task = ioloop.spawn(async move {
        let _guard = guard;
        std::future::pending::<()>().await;
    });
    *slot.borrow_mut() = Some(task);
    step(&ioloop);
    // Closing the loop drops the future, whose guard cancels the task being ended.
    ioloop.close(true).unwrap();
    assert_eq!(drops.get(), 1);
}

#[test]
fn cancelling_a_task_whose_future_cancels_another_on_drop() {
    // Pin: safe before the audit too.
    let ioloop = IoLoop::new().unwrap();
    let slot: Rc<RefCell<Option<Task<()>>>> = Rc::default();
    let drops = Rc::new(Cell::new(0));
    let guard = CancelsItsOwnTask {
        task: slot.clone(),
        drops: drops.clone(),
    };
    let other = ioloop.spawn(async move {
        let _guard = guard;
        std::future::pending::<()>().await;
    });
    *slot.borrow_mut() = Some(ioloop.spawn(std::future::pending::<()>()));
    step(&ioloop);
    // Cancelling drops the future at once; its guard cancels another task meanwhile.
    other.cancel();
    assert_eq!(drops.get(), 1);
    step(&ioloop);
    assert_eq!(ioloop.stats().tasks, 0);
}

#[test]
fn a_periodic_random_source_may_replace_itself() {
    let (ioloop, clock) = manual_loop();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    let pc = PeriodicCallback::new(&ioloop, Duration::from_secs(10), move |_, _| {
        c.set(c.get() + 1)
    });
    pc.set_jitter(0.5);
    let slot: Rc<RefCell<Option<PeriodicCallback>>> = Rc::default();
    let s = slot.clone();
    pc.set_random_source(move || {
        let me = s.borrow_mut().take();
        if let Some(me) = me {
            // Called back from inside the source: the source replaces itself.
            me.set_random_source(|| 0.5);
        }
        0.5
    });
    *slot.borrow_mut() = Some(pc.clone());
    let start = ioloop.time();
    pc.start();
    advance_to_next_deadline(&ioloop, &clock);
    assert_eq!(calls.get(), 1);
    assert_eq!(ioloop.time() - start, Duration::from_secs(10));
    advance_to_next_deadline(&ioloop, &clock);
    assert_eq!(calls.get(), 2);
    assert_eq!(ioloop.time() - start, Duration::from_secs(20));
    pc.stop();
}

#[test]
fn a_replaced_periodic_random_source_is_dropped_after_the_borrow() {
    let (ioloop, _clock) = manual_loop();
    let pc = PeriodicCallback::new(&ioloop, Duration::from_secs(1), |_, _| {});
    let me = pc.clone();
    let guard = OnDrop::new(move || me.set_random_source(|| 0.25));
    pc.set_random_source(move || {
        let _ = &guard;
        0.5
    });
    pc.set_random_source(|| 0.75);
}

#[test]
fn a_replaced_close_callback_is_dropped_after_the_streams_borrow() {
    let ioloop = IoLoop::new().unwrap();
    let (a, _b) = UnixStream::pair().unwrap();
    let stream = IoStream::new(&ioloop, a).unwrap();
    let seen = Rc::new(Cell::new(None));
    let (s, saw) = (stream.clone(), seen.clone());
    let guard = OnDrop::new(move || {
        saw.set(Some(s.closed()));
        s.close();
    });
    stream.set_close_callback(move |_| drop(guard));
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    // Replacing the first callback drops it, and with it the guard, which uses the stream.
    stream.set_close_callback(move |_| r.set(true));
    assert_eq!(seen.get(), Some(false));
    assert!(stream.closed());
    step(&ioloop);
    assert!(
        ran.get(),
        "the close the old callback made runs the new one"
    );
}

/// A value whose `Display` logs: formatting a record must not hold the capture's buffer.
struct LogsWhileFormatted;

impl fmt::Display for LogsWhileFormatted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        log::info!(target: "inner", "formatted");
        f.write_str("outer")
    }
}

#[test]
fn a_record_whose_arguments_log_is_captured_with_them() {
    let logs = LogCapture::start();
    log::info!(target: "outer", "{}", LogsWhileFormatted);
    let messages = logs.messages(log::Level::Info);
    assert_eq!(messages, ["formatted", "outer"]);
}

#[cfg(feature = "web")]
#[test]
fn a_static_file_whose_next_write_fails_at_once_ends_without_a_panic() {
    use common::http::SteppedServer;
    use ioloop::web::{get, Application, StaticFiles};
    use std::os::fd::AsFd;

    let dir = std::env::temp_dir().join(format!("ioloop-reentrant-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("blob.bin"), vec![b'b'; 8 * 64 * 1024]).unwrap();
    let app = Application::new().route("/files/{*path}", get(StaticFiles::new(dir.clone())));
    let server = SteppedServer::start(move |ioloop: &IoLoop| app.bind(ioloop, "127.0.0.1:0"));
    let panics = Rc::new(RefCell::new(Vec::new()));
    let p = panics.clone();
    server
        .ioloop
        .set_panic_handler(move |report| p.borrow_mut().push(report.to_string()));
    let mut client = server.connect();
    client.send(&server, b"GET /files/blob.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    // Once the first piece has arrived, its completion waits for the next iteration.
    let mut first = [0u8; 1];
    for _ in 0..1000 {
        if client.stream.peek(&mut first).is_ok_and(|n| n > 0) {
            break;
        }
        server.step();
    }
    assert!(client.stream.peek(&mut first).is_ok_and(|n| n > 0));
    // The client resets: the next piece's write fails at once, and its completion is
    // called from inside `write_then`.
    let linger = Some(Duration::ZERO);
    rustix::net::sockopt::set_socket_linger(client.stream.as_fd(), linger).unwrap();
    drop(client);
    server.settle_until(|| server.server.connections() == 0);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(panics.borrow().is_empty(), "{:?}", panics.borrow());
}

#[cfg(feature = "http-client")]
#[test]
fn closing_the_loop_under_a_queued_fetch_whose_callback_owns_the_client() {
    // Pin: safe before the audit too.
    use ioloop::http::{HttpClient, HttpClientOptions};

    let ioloop = IoLoop::new().unwrap();
    // Accepted by the kernel, never answered: the first fetch holds the only place.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", silent.local_addr().unwrap());
    let options = HttpClientOptions {
        max_clients: 1,
        ..Default::default()
    };
    let client = HttpClient::with_options(&ioloop, options);
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    let guard = OnDrop::new(move || d.set(true));
    let in_flight = ioloop.spawn(client.fetch(url.as_str()));
    let owner = client.clone();
    client.fetch_then(url.as_str(), move |_, _| {
        let _ = (&owner, &guard);
        panic!("never answered");
    });
    for _ in 0..50 {
        step(&ioloop);
    }
    assert_eq!(client.queued_requests(), 1);
    // Cancelling the fetch in flight hands its place to the queued one, whose callback
    // owns the client; then the loop closes under it.
    in_flight.cancel();
    assert_eq!(client.queued_requests(), 0);
    drop(client);
    ioloop.close(true).unwrap();
    assert!(
        dropped.get(),
        "the queued fetch and its callback were let go"
    );
}

/// A guard whose destructor uses the loop every way it can: cancels a task (whose
/// future, an armed sleep, is dropped then), removes a timer, adds a callback, closes a
/// stream. It records that it ran.
fn calls_back_into(ioloop: &IoLoop, ran: &Rc<Cell<u32>>) -> OnDrop {
    let sleeper = ioloop.spawn(ioloop::sleep(Duration::from_secs(60)));
    let timer = ioloop.call_later(Duration::from_secs(60), |_| {});
    let (a, _b) = UnixStream::pair().unwrap();
    let stream = IoStream::new(ioloop, a).unwrap();
    let (l, r) = (ioloop.clone(), ran.clone());
    OnDrop::new(move || {
        sleeper.cancel();
        l.remove_timeout(timer);
        l.add_callback(|_| {});
        stream.close();
        r.set(r.get() + 1);
    })
}

#[test]
fn closures_whose_drop_calls_back_into_the_loop() {
    // Pin: safe before the audit too.
    let (ioloop, _clock) = manual_loop();
    let ran = Rc::new(Cell::new(0));
    let guard = calls_back_into(&ioloop, &ran);
    let removed = ioloop.call_later(Duration::from_secs(1), move |_| drop(guard));
    let guard = calls_back_into(&ioloop, &ran);
    ioloop.add_callback(move |_| {
        let _ = &guard;
    });
    // Held by an open stream until the loop closes it.
    let guard = calls_back_into(&ioloop, &ran);
    let (a, _peer) = UnixStream::pair().unwrap();
    IoStream::new(&ioloop, a)
        .unwrap()
        .set_close_callback(move |_| drop(guard));
    step(&ioloop); // the sleeps are armed, then the callback runs
    assert_eq!(ran.get(), 1, "the callback ran and dropped its guard");
    assert!(ioloop.remove_timeout(removed));
    assert_eq!(ran.get(), 2, "remove_timeout dropped the closure");
    let guard = calls_back_into(&ioloop, &ran);
    ioloop.call_later(Duration::from_secs(1), move |_| drop(guard));
    ioloop.close(true).unwrap();
    assert_eq!(
        ran.get(),
        4,
        "closing the loop dropped the rest (stream and timer)"
    );
}

#[cfg(feature = "process")]
#[test]
fn a_subprocess_whose_exit_callback_owns_it() {
    // Pin: safe before the audit too.
    use ioloop::process::Subprocess;
    use std::process::{Command, Stdio};

    let ioloop = IoLoop::new().unwrap();
    let mut command = Command::new("sh");
    command.args(["-c", "echo bye"]).stdout(Stdio::piped());
    let owned = Subprocess::spawn(&ioloop, &mut command).unwrap();
    let status = Rc::new(Cell::new(None));
    let s = status.clone();
    let handle = Rc::new(RefCell::new(None));
    let h = handle.clone();
    owned.set_exit_callback(move |exit| {
        // Dropping the subprocess (and its pipe) from inside its own exit callback.
        let subprocess: Option<Subprocess> = h.borrow_mut().take();
        drop(subprocess);
        s.set(Some(exit.code()));
    });
    *handle.borrow_mut() = Some(owned);
    ioloop::testing::run_until(&ioloop, || status.get().is_some());
    assert_eq!(status.get(), Some(Some(0)));
    // A second one, never reaped: the loop closes under it.
    let mut command = Command::new("sleep");
    command.arg("60");
    let sleeper = Subprocess::spawn(&ioloop, &mut command).unwrap();
    let pid = sleeper.pid();
    let handle = Rc::new(RefCell::new(None));
    let h = handle.clone();
    sleeper.set_exit_callback(move |_| drop(h.borrow_mut().take()));
    *handle.borrow_mut() = Some(sleeper);
    ioloop.close(true).unwrap();
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    );
}

/// Counts its drops, and panics in the first.
struct PanicsWhenDropped(Rc<Cell<u32>>);

impl Drop for PanicsWhenDropped {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
        if self.0.get() == 1 {
            panic!("a future's destructor panics");
        }
    }
}

#[test]
fn a_finished_future_whose_destructor_panics_is_dropped_once() {
    // Pin: safe before the audit too (an assignment whose old value's drop panics still
    // stores the new value), and still so now that the future is moved out first.
    let ioloop = IoLoop::new().unwrap();
    let drops = Rc::new(Cell::new(0));
    let guard = PanicsWhenDropped(drops.clone());
    let reported = Rc::new(Cell::new(0));
    let r = reported.clone();
    ioloop.set_panic_handler(move |_| r.set(r.get() + 1));
    // Ready at once, holding the guard until the future itself is dropped.
    let task = ioloop.spawn(std::future::poll_fn(move |_| {
        let _ = &guard;
        std::task::Poll::Ready(())
    }));
    step(&ioloop);
    assert_eq!(drops.get(), 1);
    drop(task);
    assert_eq!(drops.get(), 1, "dropped once");
}
