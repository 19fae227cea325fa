//! `read_until_regex` (feature `regex`): Tornado's rules for a read that ends at a
//! pattern's match, over real socket pairs.

#![cfg(feature = "regex")]

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;
use std::time::Duration;

use ioloop::testing::{run_test, run_until};
use ioloop::{IoLoop, IoStream, StreamError};
use regex::bytes::Regex;

const LIMIT: Duration = Duration::from_secs(10);

fn pair(ioloop: &IoLoop) -> (IoStream, IoStream) {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    (
        IoStream::new(ioloop, a).unwrap(),
        IoStream::new(ioloop, b).unwrap(),
    )
}

#[test]
fn a_match_split_across_writes_is_found_and_the_rest_stays_buffered() {
    run_test(LIMIT, |ioloop| async move {
        let (a, b) = pair(&ioloop);
        let blank_line = Regex::new(r"\r?\n\r?\n").unwrap();
        let read = b.read_until_regex(&blank_line, 1024);
        a.write_all(b"Host: x\r\n").await.unwrap();
        ioloop::yield_now().await;
        a.write_all(b"\r\nbody").await.unwrap();
        assert_eq!(read.await.unwrap(), b"Host: x\r\n\r\n");
        assert_eq!(b.read_bytes(4, false).await.unwrap(), b"body");
    });
}

#[test]
fn the_first_match_ends_the_read_even_if_more_data_would_extend_it() {
    run_test(LIMIT, |ioloop| async move {
        let (a, b) = pair(&ioloop);
        a.write_all(b"12").await.unwrap();
        let digits = Regex::new(r"[0-9]+").unwrap();
        assert_eq!(b.read_until_regex(&digits, 64).await.unwrap(), b"12");
    });
}

#[test]
fn a_match_beyond_max_bytes_or_none_within_it_closes_the_stream() {
    run_test(LIMIT, |ioloop| async move {
        // The match is there but ends past max_bytes.
        let (a, b) = pair(&ioloop);
        a.write_all(b"0123456789;").await.unwrap();
        ioloop::yield_now().await;
        let semicolon = Regex::new(";").unwrap();
        let error = b.read_until_regex(&semicolon, 5).await.unwrap_err();
        assert!(matches!(error, StreamError::Unsatisfiable), "{error:?}");
        assert!(b.closed());
        // No match in the first max_bytes bytes.
        let (a, b) = pair(&ioloop);
        let read = b.read_until_regex(&semicolon, 8);
        a.write_all(b"no semicolon in sight").await.unwrap();
        assert!(matches!(read.await, Err(StreamError::Unsatisfiable)));
        assert!(b.closed());
    });
}

#[test]
fn a_callback_runs_on_a_later_iteration_even_when_the_buffer_holds_the_match() {
    let ioloop = IoLoop::new().unwrap();
    let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    let a = IoStream::new(&ioloop, a).unwrap();
    b.write_all(b"first;second;").unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let seen = got.clone();
    let semicolon = Regex::new(";").unwrap();
    a.read_until_regex_then(&semicolon, 64, move |stream, first| {
        seen.borrow_mut().push(first.unwrap());
        let second_seen = seen.clone();
        stream.read_until_regex_then(&Regex::new(";").unwrap(), 64, move |_, second| {
            second_seen.borrow_mut().push(second.unwrap());
        });
        assert_eq!(
            seen.borrow().len(),
            1,
            "the second read does not complete inline"
        );
    });
    run_until(&ioloop, || got.borrow().len() == 2);
    assert_eq!(*got.borrow(), [b"first;".to_vec(), b"second;".to_vec()]);
    // A closed stream without a match fails the read with Closed.
    drop(b);
    let end = Rc::new(RefCell::new(None));
    let slot = end.clone();
    a.read_until_regex_then(&semicolon, 64, move |_, read| {
        *slot.borrow_mut() = Some(read)
    });
    run_until(&ioloop, || end.borrow().is_some());
    let outcome = end.take().unwrap();
    assert!(
        matches!(outcome, Err(StreamError::Closed { .. })),
        "{outcome:?}"
    );
}
