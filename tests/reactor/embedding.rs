//! Embedding the loop in a host loop: non-blocking steps, the loop's fd, a host clock.

use crate::common;

use std::cell::Cell;
use std::io::Write;
use std::os::fd::AsFd;
use std::rc::Rc;
use std::time::Duration;

use common::manual_loop;
use ioloop::testing::step;
use ioloop::{Interest, IoLoop};

/// Whether `fd` is readable right now (zero-timeout poll).
fn readable_now(fd: impl AsFd) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    poll(&mut fds, Some(&zero)).unwrap() > 0
}

#[test]
fn the_loop_fd_becomes_readable_for_posts_and_io_but_not_timers() {
    let (ioloop, clock) = manual_loop();
    assert!(!readable_now(&ioloop));

    // A cross-thread post wakes the fd...
    let remote = ioloop.remote();
    std::thread::spawn(move || remote.add_callback(|_| {}).unwrap())
        .join()
        .unwrap();
    assert!(readable_now(&ioloop));
    // A zero-wait step consumes the wakeup, so a host waiting on the fd does not spin.
    ioloop.run_once(Duration::ZERO).unwrap();
    assert!(!readable_now(&ioloop));

    // ...so does a ready source...
    let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    let id = ioloop.add_handler(a, Interest::READ, |_, _, _| {}).unwrap();
    assert!(!readable_now(&ioloop));
    b.write_all(b"x").unwrap();
    assert!(readable_now(&ioloop));
    ioloop.remove_handler(id);

    // ...but a due timeout does not: poll_timeout covers timers.
    ioloop.call_later(Duration::from_millis(1), |_| {});
    clock.advance(Duration::from_millis(5));
    assert!(!readable_now(&ioloop));
    assert_eq!(ioloop.poll_timeout(), Some(Duration::ZERO));
}

#[test]
fn a_fixed_timestep_host_drives_timers_with_a_manual_clock() {
    let (ioloop, clock) = manual_loop();
    let fired_at_frame = Rc::new(Cell::new(None));
    let f = fired_at_frame.clone();
    let frame = Rc::new(Cell::new(0u32));
    let fr = frame.clone();
    ioloop.call_later(Duration::from_millis(500), move |_| f.set(Some(fr.get())));
    let dt = Duration::from_micros(16_667);
    for n in 1..=60 {
        frame.set(n);
        clock.advance(dt);
        step(&ioloop);
    }
    // 30 frames of 16.667 ms = 500.01 ms: the first frame at or past the deadline.
    assert_eq!(fired_at_frame.get(), Some(30));
}

#[test]
fn a_zero_wait_step_never_blocks_even_with_pending_io_interest_and_timers() {
    let ioloop = IoLoop::new().unwrap();
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    ioloop.add_handler(a, Interest::READ, |_, _, _| {}).unwrap();
    ioloop.call_later(Duration::from_secs(3600), |_| {});
    // Each of these would hang for an hour if the step blocked.
    for _ in 0..100 {
        assert!(ioloop.run_once(Duration::ZERO).unwrap());
    }
    assert_eq!(ioloop.stats().iterations, 100);
}

#[test]
fn a_frame_loop_serves_a_socket_from_inside_its_steps() {
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    let ioloop = IoLoop::new().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    ioloop
        .add_handler(
            listener,
            Interest::READ,
            |ioloop, listener: &mut TcpListener, _| {
                let (conn, _) = listener.accept().unwrap();
                conn.set_nonblocking(true).unwrap();
                ioloop
                    .add_handler(conn, Interest::READ, |ioloop, conn: &mut TcpStream, ev| {
                        let mut buf = [0u8; 64];
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => drop(ioloop.remove_handler(ev.id())),
                            Ok(n) => conn.write_all(&buf[..n]).unwrap(),
                        }
                    })
                    .unwrap();
            },
        )
        .unwrap();
    let client = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"frame").unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        buf
    });
    let mut frames = 0;
    while !client.is_finished() {
        // A host frame: one step with a bounded wait (the host's own frame budget).
        ioloop.run_once(Duration::from_millis(16)).unwrap();
        frames += 1;
        assert!(frames < 10_000, "client never answered");
    }
    assert_eq!(&client.join().unwrap(), b"frame");
}
