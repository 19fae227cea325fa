//! [`LogCapture`]: the log records made on this thread while a test runs.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Once;

thread_local! {
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    static RECORDS: RefCell<Vec<CapturedRecord>> = const { RefCell::new(Vec::new()) };
}

/// One log record seen by a [`LogCapture`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedRecord {
    /// Its level.
    pub level: log::Level,
    /// Its target (`"ioloop"` for this crate's records).
    pub target: String,
    /// Its message, formatted.
    pub message: String,
}

/// The process's logger while captures are in use: keeps the records of threads that
/// capture, drops the others.
struct CaptureLogger;

impl log::Log for CaptureLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        CAPTURING.with(Cell::get)
    }

    fn log(&self, record: &log::Record<'_>) {
        if CAPTURING.with(Cell::get) {
            // Formatted before the buffer is borrowed: formatting runs the arguments'
            // `Display`, which may log in turn.
            let captured = CapturedRecord {
                level: record.level(),
                target: record.target().to_owned(),
                message: record.args().to_string(),
            };
            RECORDS.with(|records| records.borrow_mut().push(captured));
        }
    }

    fn flush(&self) {}
}

/// Captures the log records made on this thread from [`start`](LogCapture::start) until
/// it is dropped (Tornado's `ExpectLog`, without the filtering): for asserting that a
/// panic in a callback, or a refused connection, was reported. Tests run on threads of
/// their own, so each sees only its own records.
///
/// The first capture installs a process-wide logger (all levels) that keeps only the
/// records of capturing threads; a test binary that captures cannot also use another
/// logger.
///
/// # Examples
///
/// ```
/// use ioloop::testing::LogCapture;
///
/// let logs = LogCapture::start();
/// let ioloop = ioloop::IoLoop::new()?;
/// ioloop.add_callback(|_| panic!("boom"));
/// ioloop.add_callback(|ioloop| ioloop.stop());
/// ioloop.start()?;
/// logs.assert_logged(log::Level::Error, "boom");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct LogCapture {
    /// Capturing is a property of this thread.
    _thread_bound: PhantomData<*const ()>,
}

impl LogCapture {
    /// Starts capturing this thread's records, forgetting any captured before.
    ///
    /// # Panics
    ///
    /// If another logger was installed in the process.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::testing::LogCapture;
    ///
    /// let first = LogCapture::start();
    /// log::info!("forgotten by the next start");
    /// drop(first);
    /// log::info!("not captured: no capture running");
    /// let logs = LogCapture::start();
    /// log::info!("captured");
    /// assert_eq!(logs.messages(log::Level::Info), ["captured"]);
    /// ```
    pub fn start() -> LogCapture {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            if log::set_logger(&CaptureLogger).is_err() {
                panic!("LogCapture needs to be the process's logger, and another is installed");
            }
            log::set_max_level(log::LevelFilter::Trace);
        });
        RECORDS.with(|records| records.borrow_mut().clear());
        CAPTURING.with(|capturing| capturing.set(true));
        LogCapture {
            _thread_bound: PhantomData,
        }
    }

    /// The records captured so far, oldest first.
    ///
    /// # Examples
    ///
    /// ```
    /// let logs = ioloop::testing::LogCapture::start();
    /// log::info!(target: "mine", "hello");
    /// assert_eq!(logs.records()[0].message, "hello");
    /// assert_eq!(logs.records()[0].target, "mine");
    /// ```
    pub fn records(&self) -> Vec<CapturedRecord> {
        RECORDS.with(|records| records.borrow().clone())
    }

    /// The messages of the records at `level` or more severe, oldest first.
    ///
    /// # Examples
    ///
    /// ```
    /// let logs = ioloop::testing::LogCapture::start();
    /// log::debug!("detail");
    /// log::error!("failure");
    /// assert_eq!(logs.messages(log::Level::Warn), ["failure"]);
    /// ```
    pub fn messages(&self, level: log::Level) -> Vec<String> {
        RECORDS.with(|records| {
            records
                .borrow()
                .iter()
                .filter(|r| r.level <= level)
                .map(|r| r.message.clone())
                .collect()
        })
    }

    /// Whether a record at `level` or more severe has `text` in its message.
    ///
    /// # Examples
    ///
    /// ```
    /// let logs = ioloop::testing::LogCapture::start();
    /// log::warn!("disk almost full");
    /// assert!(logs.contains(log::Level::Info, "almost full"));
    /// assert!(!logs.contains(log::Level::Error, "almost full"));
    /// ```
    pub fn contains(&self, level: log::Level, text: &str) -> bool {
        RECORDS.with(|records| {
            records
                .borrow()
                .iter()
                .any(|r| r.level <= level && r.message.contains(text))
        })
    }

    /// Panics, listing what was captured, unless a record at `level` or more severe has
    /// `text` in its message.
    ///
    /// # Panics
    ///
    /// As said.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::panic::{catch_unwind, AssertUnwindSafe};
    ///
    /// let logs = ioloop::testing::LogCapture::start();
    /// log::warn!("connection refused");
    /// logs.assert_logged(log::Level::Warn, "refused");
    /// // Not at `Error` or more severe: that assertion fails.
    /// let stricter = AssertUnwindSafe(|| logs.assert_logged(log::Level::Error, "refused"));
    /// assert!(catch_unwind(stricter).is_err());
    /// ```
    #[track_caller]
    pub fn assert_logged(&self, level: log::Level, text: &str) {
        if !self.contains(level, text) {
            panic!(
                "no {level} record (or more severe) containing {text:?}; captured: {:#?}",
                self.records()
            );
        }
    }
}

impl Drop for LogCapture {
    fn drop(&mut self) {
        CAPTURING.with(|capturing| capturing.set(false));
    }
}

impl fmt::Debug for LogCapture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogCapture")
            .field("records", &RECORDS.with(|r| r.borrow().len()))
            .finish()
    }
}
