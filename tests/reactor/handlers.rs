//! fd handlers over real sockets: level-triggered readiness, hang-ups, removal and
//! re-registration from inside handlers, stale events.

use crate::common;

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::rc::Rc;

use common::{tcp_pair, unix_pair as pair, Trace};
use ioloop::testing::step;
use ioloop::{HandlerId, Interest, IoLoop};

#[test]
fn readiness_is_level_triggered() {
    let ioloop = IoLoop::new().unwrap();
    let (reader, mut writer) = tcp_pair();
    let reads = Rc::new(RefCell::new(Vec::new()));
    let r = reads.clone();
    ioloop
        .add_handler(
            reader,
            Interest::READ,
            move |_, reader: &mut TcpStream, ev| {
                assert!(ev.is_readable());
                let mut byte = [0u8; 1];
                let n = reader.read(&mut byte).unwrap();
                r.borrow_mut().push(byte[..n].to_vec());
            },
        )
        .unwrap();
    writer.write_all(b"abc").unwrap();
    // Each iteration reads one byte; the rest stays readable and is reported again.
    for _ in 0..3 {
        // Loopback delivery is immediate but give the kernel a blocking wait to be sure.
        ioloop.run_once(std::time::Duration::from_secs(5)).unwrap();
    }
    assert_eq!(
        *reads.borrow(),
        [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
    );
    step(&ioloop);
    assert_eq!(reads.borrow().len(), 3, "drained: no more events");
}

#[test]
fn writable_interest_is_reported() {
    let ioloop = IoLoop::new().unwrap();
    let (a, _b) = pair();
    let writable = Rc::new(Cell::new(false));
    let w = writable.clone();
    ioloop
        .add_handler(a, Interest::WRITE, move |_, _, ev| w.set(ev.is_writable()))
        .unwrap();
    step(&ioloop);
    assert!(writable.get());
}

#[test]
fn hang_up_is_reported_as_readiness() {
    let ioloop = IoLoop::new().unwrap();
    let (a, b) = pair();
    let seen = Rc::new(RefCell::new(None));
    let s = seen.clone();
    ioloop
        .add_handler(a, Interest::NONE, move |ioloop, _, ev| {
            *s.borrow_mut() = Some((ev.is_readable(), ev.is_hangup()));
            ioloop.remove_handler(ev.id());
        })
        .unwrap();
    step(&ioloop);
    assert_eq!(*seen.borrow(), None, "nothing happened yet");
    drop(b);
    ioloop.run_once(std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(*seen.borrow(), Some((true, true)));
}

#[test]
fn remove_handler_returns_the_source_and_stops_events() {
    let ioloop = IoLoop::new().unwrap();
    let (a, mut b) = pair();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    let id = ioloop
        .add_handler(a, Interest::READ, move |_, _, _| c.set(c.get() + 1))
        .unwrap();
    let mut a: UnixStream = ioloop.remove_handler(id).unwrap();
    b.write_all(b"hello").unwrap();
    step(&ioloop);
    assert_eq!(calls.get(), 0);
    let mut buf = [0u8; 5];
    a.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    assert!(ioloop.remove_handler(id).is_none());
    assert!(ioloop.update_handler(id, Interest::BOTH).is_err());
}

#[test]
fn a_handler_removed_by_an_earlier_handler_of_the_batch_is_not_called() {
    let ioloop = IoLoop::new().unwrap();
    let (a, mut a_peer) = pair();
    let (b, mut b_peer) = pair();
    let trace = Trace::default();
    let ids: Rc<RefCell<Vec<HandlerId<UnixStream>>>> = Rc::default();
    for (name, sock) in [("a", a), ("b", b)] {
        let (t, ids2) = (trace.clone(), ids.clone());
        let id = ioloop
            .add_handler(sock, Interest::READ, move |ioloop, _, ev| {
                t.push(name);
                // Remove every other handler: whichever runs first removes the other.
                for other in ids2.borrow().iter().filter(|&&id| id != ev.id()) {
                    ioloop.remove_handler(*other);
                }
            })
            .unwrap();
        ids.borrow_mut().push(id);
    }
    a_peer.write_all(b"x").unwrap();
    b_peer.write_all(b"x").unwrap();
    ioloop.run_once(std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(
        trace.len(),
        1,
        "only one of the two handlers ran: {:?}",
        trace.take()
    );
}

#[test]
fn handlers_can_update_their_own_interest() {
    let ioloop = IoLoop::new().unwrap();
    let (a, _peer) = pair();
    let writes = Rc::new(Cell::new(0));
    let w = writes.clone();
    ioloop
        .add_handler(a, Interest::WRITE, move |ioloop, _, ev| {
            w.set(w.get() + 1);
            ioloop.update_handler(ev.id(), Interest::READ).unwrap();
        })
        .unwrap();
    step(&ioloop);
    step(&ioloop);
    step(&ioloop);
    assert_eq!(
        writes.get(),
        1,
        "after switching to READ the idle socket is quiet"
    );
}

#[test]
fn update_handler_makes_no_syscall_when_the_interest_is_unchanged() {
    let ioloop = IoLoop::new().unwrap();
    let (a, _peer) = pair();
    let id = ioloop.add_handler(a, Interest::READ, |_, _, _| {}).unwrap();
    let before = ioloop.stats().poller_modifications;
    ioloop.update_handler(id, Interest::READ).unwrap();
    assert_eq!(ioloop.stats().poller_modifications, before);
    ioloop.update_handler(id, Interest::BOTH).unwrap();
    assert_eq!(ioloop.stats().poller_modifications, before + 1);
}

#[test]
fn steady_readiness_makes_no_modify_calls() {
    // Level mode: events keep coming without re-arming.
    let ioloop = IoLoop::new().unwrap();
    let (a, _peer) = pair();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    ioloop
        .add_handler(a, Interest::WRITE, move |_, _, _| c.set(c.get() + 1))
        .unwrap();
    for _ in 0..10 {
        step(&ioloop);
    }
    assert_eq!(calls.get(), 10);
    assert_eq!(ioloop.stats().poller_modifications, 0);
}

#[test]
fn a_handler_can_remove_itself() {
    let ioloop = IoLoop::new().unwrap();
    let (a, mut peer) = pair();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    ioloop
        .add_handler(a, Interest::READ, move |ioloop, _, ev| {
            c.set(c.get() + 1);
            assert!(ioloop.remove_handler(ev.id()).is_none());
        })
        .unwrap();
    peer.write_all(b"x").unwrap();
    ioloop.run_once(std::time::Duration::from_secs(5)).unwrap();
    step(&ioloop);
    assert_eq!(calls.get(), 1);
    assert_eq!(ioloop.stats().handlers, 0);
    // The source was dropped (closed) when the handler returned.
    assert!(peer.write_all(b"y").is_err());
}

#[test]
fn a_source_removed_from_a_callback_comes_back_to_the_caller() {
    let ioloop = IoLoop::new().unwrap();
    let (a, mut peer) = pair();
    let returned: Rc<RefCell<Option<UnixStream>>> = Rc::default();
    let r = returned.clone();
    ioloop
        .add_handler(a, Interest::READ, move |ioloop, _, ev| {
            let (id, r) = (ev.id(), r.clone());
            ioloop.update_handler(id, Interest::NONE).unwrap();
            ioloop.add_callback(move |ioloop| *r.borrow_mut() = ioloop.remove_handler(id));
        })
        .unwrap();
    peer.write_all(b"x").unwrap();
    ioloop.run_once(std::time::Duration::from_secs(5)).unwrap();
    step(&ioloop);
    let mut a = returned.borrow_mut().take().expect("source handed back");
    let mut buf = [0u8; 1];
    a.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"x");
}

#[test]
fn a_handler_can_add_another_handler() {
    let ioloop = IoLoop::new().unwrap();
    let (a, mut peer) = pair();
    let (c, _c_peer) = pair();
    let trace = Trace::default();
    let t = trace.clone();
    let c = RefCell::new(Some(c));
    ioloop
        .add_handler(a, Interest::READ, move |ioloop, sock, _| {
            let mut buf = [0u8; 8];
            let _ = sock.read(&mut buf);
            if let Some(c) = c.borrow_mut().take() {
                let t2 = t.clone();
                ioloop
                    .add_handler(c, Interest::WRITE, move |_, _, _| t2.push("added"))
                    .unwrap();
            }
        })
        .unwrap();
    peer.write_all(b"x").unwrap();
    ioloop.run_once(std::time::Duration::from_secs(5)).unwrap();
    step(&ioloop);
    assert_eq!(trace.take(), ["added"]);
}

#[test]
fn registering_an_unpollable_source_hands_it_back() {
    let ioloop = IoLoop::new().unwrap();
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let err = ioloop
        .add_handler(file, Interest::READ, |_, _, _| {})
        .unwrap_err();
    assert_eq!(err.error().raw_os_error(), Some(1)); // EPERM
    let mut file = err.into_source();
    let mut s = String::new();
    file.read_to_string(&mut s).unwrap();
    assert!(s.contains("ioloop"));
    assert_eq!(ioloop.stats().handlers, 0);
}

#[test]
fn a_panicking_handler_stays_registered_and_the_loop_goes_on() {
    let ioloop = IoLoop::new().unwrap();
    ioloop.set_panic_handler(|_| {});
    let (a, _peer) = pair();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    ioloop
        .add_handler(a, Interest::WRITE, move |_, _, _| {
            c.set(c.get() + 1);
            panic!("handler failure");
        })
        .unwrap();
    step(&ioloop);
    step(&ioloop);
    assert_eq!(calls.get(), 2);
    assert_eq!(ioloop.stats().handlers, 1);
}

#[test]
fn peer_reset_is_reported_as_readiness_and_error() {
    let ioloop = IoLoop::new().unwrap();
    let (mut a, b) = tcp_pair();
    // Closing a socket with unread data makes the kernel send RST instead of FIN.
    a.write_all(b"never read").unwrap();
    let seen = Rc::new(RefCell::new(None));
    let s = seen.clone();
    ioloop
        .add_handler(
            a,
            Interest::READ,
            move |ioloop, sock: &mut TcpStream, ev| {
                let mut buf = [0u8; 16];
                let read = sock.read(&mut buf).map_err(|e| e.kind());
                *s.borrow_mut() = Some((ev.is_readable(), ev.is_error() || ev.is_hangup(), read));
                ioloop.remove_handler(ev.id());
            },
        )
        .unwrap();
    step(&ioloop);
    assert!(seen.borrow().is_none(), "nothing to read yet");
    drop(b);
    while seen.borrow().is_none() {
        ioloop.run_once(std::time::Duration::from_secs(5)).unwrap();
    }
    let (readable, error_or_hangup, read) = seen.borrow().unwrap();
    assert!(readable && error_or_hangup);
    assert_eq!(read, Err(std::io::ErrorKind::ConnectionReset));
}

/// The slab index inside a handler id's debug form, `HandlerId(<index>v<generation>)`.
fn slot_index<S>(id: HandlerId<S>) -> String {
    let s = format!("{id:?}");
    s["HandlerId(".len()..s.find('v').unwrap()].to_string()
}

#[test]
fn a_slot_reused_in_the_same_batch_never_gets_the_old_event() {
    let ioloop = IoLoop::new().unwrap();
    let (a, mut a_peer) = pair();
    let (b, mut b_peer) = pair();
    let ids: Rc<RefCell<Vec<HandlerId<UnixStream>>>> = Rc::default();
    let first_done = Rc::new(Cell::new(false));
    let second_ran = Rc::new(Cell::new(false));
    let fresh_calls = Rc::new(Cell::new(0));
    let keep_alive: Rc<RefCell<Vec<UnixStream>>> = Rc::default();

    // Whichever handler runs first removes the other, then registers a new, always-ready
    // source that reuses the freed slot. The removed source's event, collected in the
    // same batch, must reach neither the removed handler nor the new one.
    for sock in [a, b] {
        let (ids2, first_done, second_ran) = (ids.clone(), first_done.clone(), second_ran.clone());
        let (fresh_calls, keep_alive) = (fresh_calls.clone(), keep_alive.clone());
        let id = ioloop
            .add_handler(sock, Interest::READ, move |ioloop, _, ev| {
                if first_done.replace(true) {
                    second_ran.set(true);
                    return;
                }
                let other = *ids2.borrow().iter().find(|&&id| id != ev.id()).unwrap();
                ioloop.remove_handler(other).unwrap();
                let (fresh, fresh_peer) = pair();
                keep_alive.borrow_mut().push(fresh_peer);
                let f = fresh_calls.clone();
                let new_id = ioloop
                    .add_handler(fresh, Interest::WRITE, move |_, _, _| f.set(f.get() + 1))
                    .unwrap();
                assert_eq!(slot_index(new_id), slot_index(other), "slot reused");
                assert_ne!(new_id, other);
            })
            .unwrap();
        ids.borrow_mut().push(id);
    }
    a_peer.write_all(b"x").unwrap();
    b_peer.write_all(b"x").unwrap();
    step(&ioloop);
    assert!(first_done.get());
    assert!(!second_ran.get(), "the removed handler was called");
    assert_eq!(
        fresh_calls.get(),
        0,
        "the reused slot received the old event"
    );
    step(&ioloop);
    assert_eq!(fresh_calls.get(), 1, "the new registration works");
}

#[test]
fn events_capacity_bounds_the_sources_dispatched_per_iteration() {
    let ioloop = IoLoop::builder().events_capacity(1).build().unwrap();
    let (a, _a_peer) = pair();
    let (b, _b_peer) = pair();
    let called: Rc<RefCell<Vec<&'static str>>> = Rc::default();
    for (name, sock) in [("a", a), ("b", b)] {
        let c = called.clone();
        ioloop
            .add_handler(sock, Interest::WRITE, move |_, _, _| {
                c.borrow_mut().push(name)
            })
            .unwrap();
    }
    step(&ioloop);
    assert_eq!(called.borrow().len(), 1, "one event per poll");
    // Level-triggered and round-robin (epoll_wait(2)): the other source comes next.
    step(&ioloop);
    let mut seen = called.borrow().clone();
    seen.sort_unstable();
    assert_eq!(seen, ["a", "b"]);
}
