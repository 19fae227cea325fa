//! `Subprocess` over real processes: pipes both ways, exit codes, signals, a grandchild
//! holding the pipe after its parent exited, a child flooding a pipe no one reads, and
//! the loop closing before a child exits.

#![cfg(feature = "process")]

mod common;

use std::cell::Cell;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::Duration;

use ioloop::process::Subprocess;
use ioloop::testing::{run_test, run_until, step};
use ioloop::IoLoop;

const LIMIT: Duration = Duration::from_secs(10);

fn sh(script: &str) -> Command {
    let mut command = Command::new("sh");
    command.args(["-c", script]);
    command
}

#[test]
fn cat_echoes_stdin_to_stdout_and_exits_zero() {
    run_test(LIMIT, |ioloop| async move {
        let mut cat = Command::new("cat");
        cat.stdin(Stdio::piped()).stdout(Stdio::piped());
        let child = Subprocess::spawn(&ioloop, &mut cat).unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let stdin = child.stdin().unwrap().clone();
        let sent = data.clone();
        // Written while stdout is read: a pipe holds 64 KiB, so this needs both at once.
        ioloop::spawn(async move {
            stdin.write_all(&sent).await.unwrap();
            stdin.close();
        });
        let echoed = child.stdout().unwrap().read_until_close().await.unwrap();
        assert_eq!(echoed, data);
        let status = child.wait_for_exit().await.unwrap();
        assert!(status.success());
        assert_eq!(child.exit_status(), Some(status));
    });
}

#[test]
fn exit_code_reaches_the_callback_and_the_future() {
    let ioloop = IoLoop::new().unwrap();
    let child = Subprocess::spawn(&ioloop, &mut sh("exit 3")).unwrap();
    let code = Rc::new(Cell::new(None));
    let seen = code.clone();
    child.set_exit_callback(move |status| seen.set(Some(status.code())));
    run_until(&ioloop, || code.get().is_some());
    assert_eq!(code.get(), Some(Some(3)));
    // A callback set after the exit still runs, on a later iteration.
    let late = Rc::new(Cell::new(false));
    let flag = late.clone();
    child.set_exit_callback(move |status| flag.set(status.code() == Some(3)));
    assert!(!late.get(), "never inline");
    step(&ioloop);
    assert!(late.get());
    let status = ioloop.run_sync(child.wait_for_exit()).unwrap().unwrap();
    assert_eq!(status.code(), Some(3));
}

#[test]
fn a_panicking_exit_callback_leaves_the_waiting_task_its_status() {
    let logs = ioloop::testing::LogCapture::start();
    let ioloop = IoLoop::new().unwrap();
    let child = Subprocess::spawn(&ioloop, &mut sh("exit 4")).unwrap();
    child.set_exit_callback(|_| panic!("exit callback trouble"));
    let status = ioloop
        .run_sync_timeout(child.wait_for_exit(), LIMIT)
        .expect("woken despite the panic")
        .unwrap();
    assert_eq!(status.code(), Some(4));
    logs.assert_logged(log::Level::Error, "exit callback trouble");
    for _ in 0..3 {
        step(&ioloop);
    }
    assert_eq!(ioloop.stats().handlers, 0, "the exit watch is gone");
}

#[test]
fn a_child_killed_by_a_signal_reports_the_signal() {
    run_test(LIMIT, |ioloop| async move {
        let sleeper = Subprocess::spawn(&ioloop, Command::new("sleep").arg("60")).unwrap();
        sleeper.kill().unwrap();
        let status = sleeper.wait_for_exit().await.unwrap();
        assert_eq!(status.signal(), Some(9));
        assert_eq!(status.code(), None);
        // Signalling a reaped child does nothing.
        sleeper.kill().unwrap();

        let terminated = Subprocess::spawn(&ioloop, Command::new("sleep").arg("60")).unwrap();
        terminated.signal(ioloop::signal::SIGTERM).unwrap();
        let status = terminated.wait_for_exit().await.unwrap();
        assert_eq!(status.signal(), Some(ioloop::signal::SIGTERM));
        let refused = terminated.signal(12345).unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::InvalidInput);
    });
}

#[test]
fn stdout_outlives_the_child_through_a_grandchild() {
    run_test(LIMIT, |ioloop| async move {
        // The grandchild inherits stdout, and stdin as fd 3 (sh gives a background job
        // /dev/null as its stdin); it writes only after it reads a line, which this test
        // sends after the child has exited.
        let mut command = sh("exec 3<&0; (read line <&3; echo \"late $line\") & echo early");
        command.stdin(Stdio::piped()).stdout(Stdio::piped());
        let child = Subprocess::spawn(&ioloop, &mut command).unwrap();
        let status = child.wait_for_exit().await.unwrap();
        assert!(status.success());
        let stdout = child.stdout().unwrap();
        assert_eq!(stdout.read_until(b"\n", 64).await.unwrap(), b"early\n");
        assert!(!stdout.closed(), "the grandchild still holds the pipe");
        child.stdin().unwrap().write_all(b"go\n").await.unwrap();
        assert_eq!(stdout.read_until_close().await.unwrap(), b"late go\n");
    });
}

#[test]
fn a_flooding_child_nobody_reads_is_held_by_its_pipe() {
    let ioloop = IoLoop::new().unwrap();
    let mut yes = Command::new("yes");
    yes.stdout(Stdio::piped());
    let child = Subprocess::spawn(&ioloop, &mut yes).unwrap();
    let stdout = child.stdout().unwrap().clone();
    let first = Rc::new(Cell::new(false));
    let done = first.clone();
    stdout.read_bytes_then(1, false, move |_, byte| done.set(byte.is_ok()));
    run_until(&ioloop, || first.get());
    // However long the loop runs (the pipe is always readable), the stream holds at most
    // the one read chunk it took while reading that byte.
    for _ in 0..200 {
        step(&ioloop);
    }
    assert!(
        stdout.buffered() <= 64 * 1024,
        "{} buffered",
        stdout.buffered()
    );
    assert_eq!(child.exit_status(), None, "yes is blocked, not gone");
    child.kill().unwrap();
    let status = ioloop.run_sync(child.wait_for_exit()).unwrap().unwrap();
    assert_eq!(status.signal(), Some(9));
}

#[test]
fn writing_to_a_child_that_exited_fails_with_a_broken_pipe_quietly() {
    let logs = ioloop::testing::LogCapture::start();
    let ioloop = IoLoop::new().unwrap();
    let mut command = Command::new("true");
    command.stdin(Stdio::piped());
    let child = Subprocess::spawn(&ioloop, &mut command).unwrap();
    assert!(ioloop
        .run_sync(child.wait_for_exit())
        .unwrap()
        .unwrap()
        .success());
    let stdin = child.stdin().unwrap().clone();
    run_until(&ioloop, || stdin.closed());
    let Err(ioloop::StreamError::Closed { real_error }) = stdin.write(b"anyone?") else {
        panic!("a write to a closed pipe fails");
    };
    assert_eq!(real_error.unwrap().kind(), std::io::ErrorKind::BrokenPipe);
    assert!(!logs.contains(log::Level::Warn, ""), "{:?}", logs.records());
}

#[test]
fn a_program_that_does_not_exist_is_not_found() {
    let ioloop = IoLoop::new().unwrap();
    let error = Subprocess::spawn(&ioloop, &mut Command::new("/no/such/program")).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
    assert_eq!(ioloop.stats().handlers, 0);
}

#[test]
fn other_code_keeps_its_own_children() {
    run_test(LIMIT, |ioloop| async move {
        let mut theirs = sh("exit 7").spawn().unwrap();
        let ours = Subprocess::spawn(&ioloop, &mut sh("exit 5")).unwrap();
        assert_eq!(ours.wait_for_exit().await.unwrap().code(), Some(5));
        assert_eq!(theirs.wait().unwrap().code(), Some(7));
    });
}

#[test]
fn a_loop_closed_before_the_exit_fails_the_wait() {
    let ioloop = IoLoop::new().unwrap();
    let child = Subprocess::spawn(&ioloop, Command::new("sleep").arg("60")).unwrap();
    let mut wait = child.wait_for_exit();
    ioloop.close(true).unwrap();
    let std::task::Poll::Ready(Err(error)) = poll_once(&mut wait) else {
        panic!("the wait should fail once the loop is closed");
    };
    assert!(error.to_string().contains("loop closed"), "{error}");
    // The child was not reaped, so it can still be killed.
    child.kill().unwrap();
}

fn poll_once<F: std::future::Future + Unpin>(future: &mut F) -> std::task::Poll<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    std::pin::Pin::new(future).poll(&mut cx)
}

#[test]
fn the_example_reports_each_child_and_exits_by_itself() {
    let out = Command::new(common::example::example_path("subprocess"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            r#"echo: said "hello from echo\n", exited with code 0"#,
            r#"cat: said "fed through stdin\n", exited with code 0"#,
            r#"sh: said "about to fail\n", exited with code 3"#,
            "sleep: killed by signal 9",
        ]
    );
}
