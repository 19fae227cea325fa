//! [`Extensions`]: values of any type a request carries besides what was sent, one per
//! type — what a `prepare` hook or the current-user hook hands to the handler, and the
//! web layer's own per-request state.

use std::any::{Any, TypeId};
use std::fmt;
use std::rc::Rc;

/// A typed map: at most one value of each type, kept in an [`Rc`] so that a copy of the
/// request (the one an error page sees) shares them.
///
/// Empty, it allocates nothing. Loop thread only (it is `!Send`, as the request is).
///
/// # Examples
///
/// ```
/// use ioloop::http::Request;
///
/// struct TraceId(u64);
/// let mut req = Request::parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
/// req.extensions_mut().insert(TraceId(7));
/// assert_eq!(req.extensions().get::<TraceId>().map(|t| t.0), Some(7));
/// assert!(req.extensions().get::<String>().is_none());
/// ```
#[derive(Clone, Default)]
pub struct Extensions {
    entries: Vec<(TypeId, Rc<dyn Any>)>,
}

impl Extensions {
    /// Adds `value`, replacing (and returning) one of the same type. The old value is
    /// returned, not dropped here, only when no other copy of the request shares it;
    /// otherwise `None` and the copies keep it.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut ext = ioloop::http::Extensions::default();
    /// assert_eq!(ext.insert(1u32), None);
    /// assert_eq!(ext.insert(2u32), Some(1));
    /// ```
    pub fn insert<T: 'static>(&mut self, value: T) -> Option<T> {
        self.insert_rc(Rc::new(value))
            .and_then(|old| Rc::try_unwrap(old).ok())
    }

    /// Adds a shared value, replacing (and returning) one of the same type.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc;
    /// let mut ext = ioloop::http::Extensions::default();
    /// ext.insert_rc(Rc::new("config"));
    /// assert_eq!(ext.get::<&str>(), Some(&"config"));
    /// ```
    pub fn insert_rc<T: 'static>(&mut self, value: Rc<T>) -> Option<Rc<T>> {
        let id = TypeId::of::<T>();
        let old = match self.entries.iter_mut().find(|(t, _)| *t == id) {
            Some((_, slot)) => Some(std::mem::replace(slot, value)),
            None => {
                self.entries.push((id, value));
                None
            }
        };
        old.and_then(|old| old.downcast::<T>().ok())
    }

    /// The value of type `T`, if there is one.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut ext = ioloop::http::Extensions::default();
    /// ext.insert(String::from("admin"));
    /// assert_eq!(ext.get::<String>().map(String::as_str), Some("admin"));
    /// assert_eq!(ext.get::<u32>(), None);
    /// ```
    pub fn get<T: 'static>(&self) -> Option<&T> {
        let id = TypeId::of::<T>();
        let (_, value) = self.entries.iter().find(|(t, _)| *t == id)?;
        (**value).downcast_ref::<T>()
    }

    /// The shared value of type `T`, if there is one (to keep it beyond the request).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut ext = ioloop::http::Extensions::default();
    /// ext.insert(5u8);
    /// let kept: std::rc::Rc<u8> = ext.get_rc::<u8>().unwrap();
    /// assert_eq!(*kept, 5);
    /// ```
    pub fn get_rc<T: 'static>(&self) -> Option<Rc<T>> {
        let id = TypeId::of::<T>();
        let (_, value) = self.entries.iter().find(|(t, _)| *t == id)?;
        value.clone().downcast::<T>().ok()
    }

    /// Removes the value of type `T` and returns it (shared with copies of the request
    /// that have it).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut ext = ioloop::http::Extensions::default();
    /// ext.insert(5u8);
    /// assert_eq!(ext.remove::<u8>().as_deref(), Some(&5));
    /// assert!(ext.get::<u8>().is_none());
    /// ```
    pub fn remove<T: 'static>(&mut self) -> Option<Rc<T>> {
        let id = TypeId::of::<T>();
        let at = self.entries.iter().position(|(t, _)| *t == id)?;
        self.entries.swap_remove(at).1.downcast::<T>().ok()
    }

    /// Whether there is no value.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(ioloop::http::Extensions::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extensions")
            .field("len", &self.entries.len())
            .finish()
    }
}
