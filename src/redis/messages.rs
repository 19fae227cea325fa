//! [`PubSubMessage`], and [`Messages`]: a [`Subscriber`](super::Subscriber)'s messages as
//! an async stream, over a bounded queue (newer messages are dropped and counted when it
//! is full).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// A message received on a subscribed channel (or pattern).
///
/// # Examples
///
/// ```
/// let m = ioloop::redis::PubSubMessage {
///     channel: b"news".to_vec(),
///     pattern: None,
///     payload: b"hi".to_vec(),
/// };
/// assert_eq!(m.payload, b"hi");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubSubMessage {
    /// The channel it was published to.
    pub channel: Vec<u8>,
    /// The pattern that matched it (`PSUBSCRIBE`), if any.
    pub pattern: Option<Vec<u8>>,
    /// What was published.
    pub payload: Vec<u8>,
}

/// The queue behind one [`Messages`] stream, filled by the subscriber.
pub(crate) struct Queue {
    items: RefCell<VecDeque<PubSubMessage>>,
    capacity: usize,
    dropped: Cell<u64>,
    waker: RefCell<Option<Waker>>,
    ended: Cell<bool>,
}

impl Queue {
    pub(crate) fn new(capacity: usize) -> Queue {
        Queue {
            items: RefCell::new(VecDeque::new()),
            capacity: capacity.max(1),
            dropped: Cell::new(0),
            waker: RefCell::new(None),
            ended: Cell::new(false),
        }
    }

    pub(crate) fn push(&self, message: PubSubMessage) {
        {
            let mut items = self.items.borrow_mut();
            if items.len() >= self.capacity {
                self.dropped.set(self.dropped.get() + 1);
                return;
            }
            items.push_back(message);
        }
        self.wake();
    }

    pub(crate) fn end(&self) {
        self.ended.set(true);
        self.wake();
    }

    fn wake(&self) {
        let waker = self.waker.borrow_mut().take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The messages of a [`Subscriber`](super::Subscriber) as an async stream
/// ([`Subscriber::messages`](super::Subscriber::messages)).
///
/// # Examples
///
/// The stream ends when its subscriber is closed:
///
/// ```
/// use ioloop::redis::{Messages, Subscriber, SubscriberOptions};
///
/// let ioloop = ioloop::IoLoop::new()?;
/// let (_reserved, port) = ioloop::testing::bind_refusing_port()?; // no Redis there
/// let url = format!("redis://127.0.0.1:{port}").parse()?;
/// let sub = Subscriber::new(&ioloop, url, SubscriberOptions::default());
/// let mut messages: Messages = sub.messages();
/// sub.close();
/// let next = ioloop.run_sync(async move { messages.recv().await })?;
/// assert!(next.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Messages {
    queue: Rc<Queue>,
}

impl fmt::Debug for Messages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Messages")
            .field("unread", &self.queue.items.borrow().len())
            .field("dropped", &self.queue.dropped.get())
            .finish()
    }
}

impl Messages {
    pub(crate) fn new(queue: Rc<Queue>) -> Messages {
        Messages { queue }
    }

    /// The next message, or `None` once the subscriber is closed and the queue read.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ioloop::redis::Subscriber;
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let handle = ioloop.clone();
    /// ioloop.run_sync(async move {
    ///     let sub = Subscriber::connect(&handle, "redis://127.0.0.1:6379").await?;
    ///     let mut messages = sub.messages();
    ///     sub.psubscribe("room:*").await?;
    ///     while let Some(m) = messages.recv().await {
    ///         assert_eq!(m.pattern.as_deref(), Some(&b"room:*"[..]));
    ///         println!("{}: {}", String::from_utf8_lossy(&m.channel), m.payload.len());
    ///     }
    ///     Ok::<(), ioloop::redis::RedisError>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv(&mut self) -> NextMessage<'_> {
        NextMessage { messages: self }
    }

    /// How many messages were dropped because this stream's queue was full.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(m: ioloop::redis::Messages) {
    /// assert_eq!(m.dropped(), 0);
    /// # }
    /// ```
    pub fn dropped(&self) -> u64 {
        self.queue.dropped.get()
    }
}

/// The future of [`Messages::recv`].
///
/// # Examples
///
/// Waiting for a message at most a minute:
///
/// ```no_run
/// use std::time::Duration;
/// use ioloop::redis::{NextMessage, Subscriber};
/// let ioloop = ioloop::IoLoop::new()?;
/// let handle = ioloop.clone();
/// ioloop.run_sync(async move {
///     let sub = Subscriber::connect(&handle, "redis://127.0.0.1:6379").await?;
///     let mut messages = sub.messages();
///     sub.subscribe("alerts").await?;
///     let next: NextMessage<'_> = messages.recv();
///     match ioloop::timeout(Duration::from_secs(60), next).await {
///         Ok(Some(alert)) => println!("alert: {:?}", alert.payload),
///         Ok(None) => println!("the subscriber closed"),
///         Err(_) => println!("a quiet minute"),
///     }
///     Ok::<(), ioloop::redis::RedisError>(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct NextMessage<'a> {
    messages: &'a mut Messages,
}

impl Future for NextMessage<'_> {
    type Output = Option<PubSubMessage>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let queue = &self.messages.queue;
        let next = queue.items.borrow_mut().pop_front();
        match next {
            Some(message) => Poll::Ready(Some(message)),
            None if queue.ended.get() => Poll::Ready(None),
            None => {
                let old = queue.waker.borrow_mut().replace(cx.waker().clone());
                drop(old);
                Poll::Pending
            }
        }
    }
}
