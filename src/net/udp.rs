//! [`UdpSocket`]: datagrams on the loop, received with a callback or awaited, sent
//! without hidden buffering (what asyncio's `DatagramProtocol` and a hand-made
//! `AsyncFd<UdpSocket>` do, as one type).

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::rc::Rc;

use crate::reactor::ioloop::IoLoop;
use crate::task::AsyncFd;

/// A UDP socket registered with a loop.
///
/// Receiving: [`recv_from`](UdpSocket::recv_from) awaits one datagram into a buffer;
/// [`recv_from_then`](UdpSocket::recv_from_then) delivers one to a callback, which
/// calls it again to keep receiving (as a stream's `read_*_then` does). Sending never
/// buffers: [`try_send_to`](UdpSocket::try_send_to) hands the datagram to the kernel or
/// fails with `WouldBlock` when the socket's send buffer is full, and
/// [`send_to`](UdpSocket::send_to) waits for room instead. A datagram longer than the
/// buffer is truncated, as with `recv_from(2)`. [`connect`](UdpSocket::connect)ed, the
/// socket talks to one peer through [`send`](UdpSocket::send)/[`recv`](UdpSocket::recv)
/// and reports that peer's refusal (an ICMP port unreachable) as
/// [`ConnectionRefused`](io::ErrorKind::ConnectionRefused) on the next call.
/// Options std provides (multicast membership, TTL, broadcast) are on
/// [`get_ref`](UdpSocket::get_ref).
///
/// A cheap clonable handle; the socket closes when the last handle (and the last
/// callback waiting on it) is gone. Loop thread only.
///
/// # Examples
///
/// ```
/// use ioloop::{IoLoop, UdpSocket};
///
/// let ioloop = IoLoop::new()?;
/// let a = UdpSocket::bind(&ioloop, "127.0.0.1:0")?;
/// let b = UdpSocket::bind(&ioloop, "127.0.0.1:0")?;
/// let to = b.local_addr()?;
/// let (n, from) = ioloop.run_sync(async move {
///     a.send_to(b"ping", to).await?;
///     let mut buf = [0; 16];
///     let (n, from) = b.recv_from(&mut buf).await?;
///     assert_eq!(&buf[..n], b"ping");
///     std::io::Result::Ok((n, from))
/// })??;
/// assert_eq!(n, 4);
/// # let _ = from;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct UdpSocket {
    fd: Rc<AsyncFd<std::net::UdpSocket>>,
}

impl UdpSocket {
    /// Binds a socket to `address` (port 0 for any free port) and registers it with
    /// `ioloop`.
    ///
    /// # Errors
    ///
    /// The address cannot be bound (in use, not local) or resolved, or the loop refused
    /// the socket.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let socket = ioloop::UdpSocket::bind(&ioloop, "127.0.0.1:0")?;
    /// assert_ne!(socket.local_addr()?.port(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bind(ioloop: &IoLoop, address: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        UdpSocket::from_std(ioloop, std::net::UdpSocket::bind(address)?)
    }

    /// Registers a std socket (made non-blocking here) with `ioloop`: for options set
    /// before binding, through `socket2` or `rustix`.
    ///
    /// # Errors
    ///
    /// The socket cannot be made non-blocking, or the loop refused it.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let std_socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// let socket = ioloop::UdpSocket::from_std(&ioloop, std_socket)?;
    /// # let _ = socket;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_std(ioloop: &IoLoop, socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        socket.set_nonblocking(true)?;
        let fd = AsyncFd::new(ioloop, socket).map_err(|e| e.into_parts().0)?;
        Ok(UdpSocket { fd: Rc::new(fd) })
    }

    /// The address the socket is bound to.
    ///
    /// # Errors
    ///
    /// As [`std::net::UdpSocket::local_addr`].
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let std_socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// let bound = std_socket.local_addr()?;
    /// let socket = ioloop::UdpSocket::from_std(&ioloop, std_socket)?;
    /// assert_eq!(socket.local_addr()?, bound);
    /// assert!(socket.local_addr()?.ip().is_loopback());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.fd.get_ref().local_addr()
    }

    /// The std socket, for the options std provides: `join_multicast_v4`/`_v6`,
    /// `set_multicast_loop_v4`, `set_multicast_ttl_v4`, `set_broadcast`, `set_ttl`, and
    /// so on. Do not read or write through it while a receive or send here waits.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let socket = ioloop::UdpSocket::bind(&ioloop, "0.0.0.0:0")?;
    /// socket.get_ref().set_multicast_loop_v4(true)?;
    /// socket.get_ref().set_multicast_ttl_v4(1)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_ref(&self) -> &std::net::UdpSocket {
        self.fd.get_ref()
    }

    /// Sends multicast datagrams out of the interface with address `interface`
    /// (`IP_MULTICAST_IF`, which std does not set; the kernel's routing picks one
    /// otherwise). Join groups with [`get_ref`](UdpSocket::get_ref)`.join_multicast_v4`.
    ///
    /// # Errors
    ///
    /// No interface has that address, or the socket is not IPv4.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let socket = ioloop::UdpSocket::bind(&ioloop, "0.0.0.0:0")?;
    /// socket.set_multicast_interface_v4(Ipv4Addr::LOCALHOST)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_multicast_interface_v4(&self, interface: Ipv4Addr) -> io::Result<()> {
        Ok(rustix::net::sockopt::set_ip_multicast_if(
            self.get_ref(),
            &interface,
        )?)
    }

    /// Sends IPv6 multicast datagrams out of the interface with index `interface`
    /// (`IPV6_MULTICAST_IF`; 0 lets the kernel choose).
    ///
    /// # Errors
    ///
    /// No interface has that index, or the socket is not IPv6.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let socket = ioloop::UdpSocket::bind(&ioloop, "127.0.0.1:0")?;
    /// assert!(socket.set_multicast_interface_v6(0).is_err(), "an IPv4 socket");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_multicast_interface_v6(&self, interface: u32) -> io::Result<()> {
        Ok(rustix::net::sockopt::set_ipv6_multicast_if(
            self.get_ref(),
            interface,
        )?)
    }

    /// Sets the one peer the socket sends to and receives from. Datagrams from other
    /// addresses are dropped by the kernel.
    ///
    /// # Errors
    ///
    /// As [`std::net::UdpSocket::connect`].
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let a = ioloop::UdpSocket::bind(&ioloop, "127.0.0.1:0")?;
    /// let b = ioloop::UdpSocket::bind(&ioloop, "127.0.0.1:0")?;
    /// a.connect(b.local_addr()?)?;
    /// b.connect(a.local_addr()?)?;
    /// let got = ioloop.run_sync(async move {
    ///     a.send(b"hi").await?;
    ///     let mut buf = [0; 8];
    ///     let n = b.recv(&mut buf).await?;
    ///     std::io::Result::Ok(buf[..n].to_vec())
    /// })??;
    /// assert_eq!(got, b"hi");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect(&self, address: impl ToSocketAddrs) -> io::Result<()> {
        self.fd.get_ref().connect(address)
    }

    /// The connected peer.
    ///
    /// # Errors
    ///
    /// [`NotConnected`](io::ErrorKind::NotConnected) before
    /// [`connect`](UdpSocket::connect).
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let a = ioloop::UdpSocket::bind(&ioloop, "127.0.0.1:0")?;
    /// assert!(a.peer_addr().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.fd.get_ref().peer_addr()
    }

    /// Receives one datagram into `buffer` (the rest of a longer one is dropped),
    /// waiting for one to arrive. Returns its length and sender.
    ///
    /// # Errors
    ///
    /// The socket failed (for a connected socket, the peer refused an earlier datagram:
    /// [`ConnectionRefused`](io::ErrorKind::ConnectionRefused)), or the loop is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let socket = ioloop::UdpSocket::bind(&ioloop, "127.0.0.1:0")?;
    /// let sender = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// sender.send_to(b"truncated datagram", socket.local_addr()?)?;
    /// let (got, from) = ioloop.run_sync(async move {
    ///     let mut buf = [0; 9]; // shorter than the datagram: the rest is dropped
    ///     let (n, from) = socket.recv_from(&mut buf).await?;
    ///     std::io::Result::Ok((buf[..n].to_vec(), from))
    /// })??;
    /// assert_eq!(got, b"truncated");
    /// assert_eq!(from, sender.local_addr()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn recv_from(&self, buffer: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.fd.read_with(|socket| socket.recv_from(buffer)).await
    }

    /// Receives one datagram of at most `max` bytes and calls `callback` with it and its
    /// sender, from the loop. Call it again from the callback to receive the next.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::{IoLoop, UdpSocket};
    ///
    /// let ioloop = IoLoop::new()?;
    /// let server = UdpSocket::bind(&ioloop, "127.0.0.1:0")?;
    /// let client = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// client.send_to(b"hello", server.local_addr()?)?;
    /// server.recv_from_then(1500, |socket, received| {
    ///     let (datagram, from) = received.unwrap();
    ///     assert_eq!(datagram, b"hello");
    ///     socket.try_send_to(&datagram, from).unwrap();
    ///     IoLoop::current().unwrap().stop();
    /// });
    /// ioloop.start()?;
    /// let mut buf = [0; 16];
    /// let (n, _) = client.recv_from(&mut buf)?;
    /// assert_eq!(&buf[..n], b"hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_from_then<F>(&self, max: usize, callback: F)
    where
        F: FnOnce(&UdpSocket, io::Result<(Vec<u8>, SocketAddr)>) + 'static,
    {
        let Some(ioloop) = self.fd.ioloop() else {
            return;
        };
        let socket = self.clone();
        drop(ioloop.spawn(async move {
            let mut buffer = vec![0; max];
            let received = socket.recv_from(&mut buffer).await.map(|(n, from)| {
                buffer.truncate(n);
                (buffer, from)
            });
            callback(&socket, received);
        }));
    }

    /// Sends `datagram` to `address` if the socket's send buffer has room now.
    ///
    /// # Errors
    ///
    /// [`WouldBlock`](io::ErrorKind::WouldBlock) when the send buffer is full (nothing
    /// is queued: retry after [`send_to`](UdpSocket::send_to)'s wait, or drop the
    /// datagram, as UDP allows); otherwise the OS's error (too long, unreachable).
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let socket = ioloop::UdpSocket::bind(&ioloop, "127.0.0.1:0")?;
    /// let receiver = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// assert_eq!(socket.try_send_to(b"now", receiver.local_addr()?)?, 3);
    /// let mut buf = [0; 8];
    /// let (n, from) = receiver.recv_from(&mut buf)?;
    /// assert_eq!((&buf[..n], from), (&b"now"[..], socket.local_addr()?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_send_to(&self, datagram: &[u8], address: SocketAddr) -> io::Result<usize> {
        self.fd.get_ref().send_to(datagram, address)
    }

    /// Sends `datagram` to `address`, waiting while the send buffer is full.
    ///
    /// # Errors
    ///
    /// As [`try_send_to`](UdpSocket::try_send_to), without `WouldBlock`.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let socket = ioloop::UdpSocket::bind(&ioloop, "127.0.0.1:0")?;
    /// let receiver = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// let to = receiver.local_addr()?;
    /// let sent = ioloop.run_sync(async move { socket.send_to(b"hello", to).await })??;
    /// assert_eq!(sent, 5);
    /// let mut buf = [0; 8];
    /// let n = receiver.recv(&mut buf)?;
    /// assert_eq!(&buf[..n], b"hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn send_to(&self, datagram: &[u8], address: SocketAddr) -> io::Result<usize> {
        self.fd
            .write_with(|socket| socket.send_to(datagram, address))
            .await
    }

    /// Receives one datagram from the connected peer into `buffer`.
    ///
    /// # Errors
    ///
    /// As [`recv_from`](UdpSocket::recv_from).
    ///
    /// # Examples
    ///
    /// Datagrams from other addresses than the connected peer's never arrive:
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let socket = ioloop::UdpSocket::bind(&ioloop, "127.0.0.1:0")?;
    /// let peer = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// let stranger = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// socket.connect(peer.local_addr()?)?;
    /// stranger.send_to(b"dropped by the kernel", socket.local_addr()?)?;
    /// peer.send_to(b"from the peer", socket.local_addr()?)?;
    /// let got = ioloop.run_sync(async move {
    ///     let mut buf = [0; 32];
    ///     let n = socket.recv(&mut buf).await?;
    ///     std::io::Result::Ok(buf[..n].to_vec())
    /// })??;
    /// assert_eq!(got, b"from the peer");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn recv(&self, buffer: &mut [u8]) -> io::Result<usize> {
        self.fd.read_with(|socket| socket.recv(buffer)).await
    }

    /// Sends `datagram` to the connected peer if the send buffer has room now.
    ///
    /// # Errors
    ///
    /// As [`try_send_to`](UdpSocket::try_send_to), and
    /// [`NotConnected`](io::ErrorKind::NotConnected) before
    /// [`connect`](UdpSocket::connect).
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let a = ioloop::UdpSocket::bind(&ioloop, "127.0.0.1:0")?;
    /// assert!(a.try_send(b"nobody").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_send(&self, datagram: &[u8]) -> io::Result<usize> {
        self.fd.get_ref().send(datagram)
    }

    /// Sends `datagram` to the connected peer, waiting while the send buffer is full.
    ///
    /// # Errors
    ///
    /// As [`try_send`](UdpSocket::try_send), without `WouldBlock`.
    ///
    /// # Examples
    ///
    /// ```
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let socket = ioloop::UdpSocket::bind(&ioloop, "127.0.0.1:0")?;
    /// let peer = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// socket.connect(peer.local_addr()?)?;
    /// let sent = ioloop.run_sync(async move { socket.send(b"to the peer").await })??;
    /// assert_eq!(sent, 11);
    /// let mut buf = [0; 16];
    /// let n = peer.recv(&mut buf)?;
    /// assert_eq!(&buf[..n], b"to the peer");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn send(&self, datagram: &[u8]) -> io::Result<usize> {
        self.fd.write_with(|socket| socket.send(datagram)).await
    }
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("local_addr", &self.local_addr().ok())
            .finish_non_exhaustive()
    }
}
