//! Running out of file descriptors for a while is logged at most once a second, however
//! often the listener's backoff ends and the accept fails again (issue 24). In its own
//! test binary: it lowers the process's descriptor limit.

mod common;

use std::net::TcpStream;
use std::time::Duration;

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
fn out_of_descriptors_is_logged_at_most_once_a_second() {
    let logs = LogCapture::start();
    let (ioloop, clock) = manual_loop();
    let server = TcpServer::new(&ioloop, |_, _, _| {});
    let addr = server.bind("127.0.0.1:0").unwrap();
    let clients: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();

    let limit = getrlimit(Resource::Nofile);
    let ceiling = highest_fd() + 1;
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(ceiling),
            maximum: limit.maximum,
        },
    )
    .unwrap();
    let mut fillers = Vec::new();
    while let Ok(file) = std::fs::File::open("/dev/null") {
        fillers.push(file);
    }
    // Two seconds out of descriptors: the first accept fails at 0 s, then the listener
    // retries after every backoff and fails again (21 failures in all); they are logged
    // at 0 s, 1 s and 2 s only.
    step(&ioloop);
    let rounds = (Duration::from_secs(2).as_millis() / ACCEPT_BACKOFF.as_millis()) as usize;
    let mut errors_by_round = Vec::new();
    for _ in 0..rounds {
        clock.advance(ACCEPT_BACKOFF);
        step(&ioloop); // the pause ends and the accept fails again
        errors_by_round.push(logs.messages(log::Level::Error).len());
    }
    drop(fillers);
    setrlimit(Resource::Nofile, limit).unwrap();

    let errors = logs.messages(log::Level::Error);
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(errors[0].contains("pausing the listener"), "{errors:?}");
    assert!(
        errors[1].contains("9 more") && errors[2].contains("9 more"),
        "the quiet ones are counted: {errors:?}"
    );
    assert_eq!(errors_by_round[8], 1, "{errors_by_round:?}"); // 0.9 s
    assert_eq!(errors_by_round[9], 2, "{errors_by_round:?}"); // 1.0 s
                                                              // Every backoff did retry (and fail; the pause is no longer for being quiet), and
                                                              // the quiet failures are still there at debug level.
    let quiet = logs
        .records()
        .into_iter()
        .filter(|r| r.level == log::Level::Debug && r.message.contains("cannot accept"))
        .count();
    assert_eq!(quiet, rounds + 1 - 3);

    clock.advance(ACCEPT_BACKOFF);
    step(&ioloop); // the three waiting connections are accepted
    step(&ioloop);
    assert_eq!(ioloop.stats().handlers, 1 + 3, "accepting resumed");
    drop(clients);
}
