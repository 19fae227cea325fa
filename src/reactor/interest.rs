//! [`Interest`]: what a handler wants to hear about, and [`Readiness`]: what the poller
//! reported, before it is matched to a registration.

use std::ops::BitOr;

/// Which readiness a handler wants to hear about. Errors and hang-ups are always reported.
///
/// # Examples
///
/// ```
/// use ioloop::Interest;
/// let both = Interest::READ | Interest::WRITE;
/// assert_eq!(both, Interest::BOTH);
/// assert!(both.is_readable() && both.is_writable());
/// assert!(!Interest::NONE.is_readable());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Interest {
    readable: bool,
    writable: bool,
}

impl Interest {
    /// Only errors and hang-ups.
    pub const NONE: Interest = Interest {
        readable: false,
        writable: false,
    };
    /// Readable (and errors, hang-ups).
    pub const READ: Interest = Interest {
        readable: true,
        writable: false,
    };
    /// Writable (and errors, hang-ups).
    pub const WRITE: Interest = Interest {
        readable: false,
        writable: true,
    };
    /// Readable and writable.
    pub const BOTH: Interest = Interest {
        readable: true,
        writable: true,
    };

    /// Whether readability is wanted.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(ioloop::Interest::READ.is_readable());
    /// ```
    pub fn is_readable(self) -> bool {
        self.readable
    }

    /// Whether writability is wanted.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(ioloop::Interest::WRITE.is_writable());
    /// ```
    pub fn is_writable(self) -> bool {
        self.writable
    }
}

impl BitOr for Interest {
    type Output = Interest;
    fn bitor(self, rhs: Interest) -> Interest {
        Interest {
            readable: self.readable || rhs.readable,
            writable: self.writable || rhs.writable,
        }
    }
}

/// Readiness as reported by the poller, before it is matched to a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Readiness {
    pub(super) readable: bool,
    pub(super) writable: bool,
    pub(super) error: bool,
    pub(super) hangup: bool,
}
