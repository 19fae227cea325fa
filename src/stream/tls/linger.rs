//! The lingering close of a TLS socket (feature `tls`): a stream closed while rustls
//! still holds ciphertext the socket could not take (its close_notify, queued when a
//! write had just filled the socket) hands the socket here, off the stream, to be sent
//! out before the fd closes.

use std::io;
use std::time::Duration;

use crate::reactor::ioloop::IoLoop;
use crate::stream::StreamSocket;
use crate::task::AsyncFd;
use crate::time::timeout;

/// How long a closed TLS socket stays open to send what rustls still holds.
const LINGER: Duration = Duration::from_secs(5);

/// Closes `socket` once rustls has handed the kernel what it holds, or [`LINGER`] has
/// passed: closing at once would end the session without close_notify, which the peer
/// must take for a truncation. A socket with nothing held (every plain one: the kernel
/// sends what it holds) is closed at once.
pub(crate) fn close_when_sent(ioloop: &IoLoop, socket: StreamSocket) {
    if !socket.wants_write() {
        return;
    }
    let Ok(fd) = AsyncFd::new(ioloop, socket) else {
        return;
    };
    let flush = async move {
        while fd.get_ref().wants_write() {
            if fd.writable().await.is_err() {
                return;
            }
            match fd.get_ref().send_pending() {
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => return,
                _ => {}
            }
        }
    };
    drop(ioloop.spawn(async move {
        let _ = timeout(LINGER, flush).await;
    }));
}
