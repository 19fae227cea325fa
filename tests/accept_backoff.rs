//! Running out of file descriptors pauses accepting instead of spinning. In its own test
//! binary: it lowers the process's descriptor limit.

mod common;

use std::net::TcpStream;

use common::manual_loop;
use ioloop::net::ACCEPT_BACKOFF;
use ioloop::testing::{step, LogCapture};
use ioloop::TcpServer;
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// The highest open descriptor number of this process.
fn highest_fd() -> u64 {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .unwrap()
}

#[test]
fn emfile_pauses_the_listener_then_accepting_resumes() {
    let logs = LogCapture::start();
    let (ioloop, clock) = manual_loop();
    let server = TcpServer::new(&ioloop, |_, _, _| {});
    let addr = server.bind("127.0.0.1:0").unwrap();
    let clients: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();

    let limit = getrlimit(Resource::Nofile);
    // No descriptor number above the current ones: every accept fails with EMFILE. (The
    // directory listing above is closed again before the limit applies.)
    let ceiling = highest_fd() + 1;
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(ceiling),
            maximum: limit.maximum,
        },
    )
    .unwrap();
    // Fill the free numbers below the ceiling too.
    let mut fillers = Vec::new();
    while let Ok(file) = std::fs::File::open("/dev/null") {
        fillers.push(file);
    }
    for _ in 0..5 {
        step(&ioloop);
    }
    drop(fillers);
    setrlimit(Resource::Nofile, limit).unwrap();

    let errors = logs.messages(log::Level::Error);
    assert_eq!(
        errors.len(),
        1,
        "paused after the first failure, no spin: {errors:?}"
    );
    assert!(errors[0].contains("pausing the listener"), "{errors:?}");
    assert_eq!(ioloop.stats().handlers, 1, "nothing accepted yet");

    clock.advance(ACCEPT_BACKOFF);
    step(&ioloop); // the pause ends: the listener is watched again
    step(&ioloop); // the three waiting connections are accepted
    assert_eq!(ioloop.stats().handlers, 1 + 3);
    drop(clients);
}
