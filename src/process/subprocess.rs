//! [`Subprocess`]: a child process whose pipes are streams on the loop and whose exit
//! the loop reports (Tornado's `tornado.process.Subprocess`).

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::process::{Command, ExitStatus};
use std::rc::Rc;
use std::task::{Context, Poll};

use super::exit::{watch, ExitState, Outcome, WatchMethod};
use crate::reactor::ioloop::{IoLoop, WeakIoLoop};
use crate::stream::{IoStream, StreamSocket};

/// A child process run from the loop: each of its standard streams that the
/// [`Command`] pipes (`Stdio::piped()`) is an [`IoStream`], and the loop observes its exit
/// without a thread per child and without reaping anyone else's children (a pidfd on
/// Linux, `SIGCHLD` elsewhere; see [`spawn`](Subprocess::spawn)).
///
/// As with Tornado's `Subprocess`, the loop watches the child until it exits and reaps
/// it, whether or not this handle is kept; the pipes are streams with the usual rules (a
/// child writing more than anyone reads fills its pipe and blocks: the stream buffers at
/// most one read chunk while nothing reads). The exit may be reported before everything
/// the child wrote has been read (and a grandchild may hold the pipes open after it): to
/// read all output, read the stream to its close. Loop thread only.
///
/// # Examples
///
/// ```
/// use ioloop::process::Subprocess;
/// use ioloop::IoLoop;
/// use std::process::{Command, Stdio};
///
/// let ioloop = IoLoop::new()?;
/// let (said, status) = ioloop.run_sync(async {
///     let mut command = Command::new("sh");
///     command.args(["-c", "echo hello; exit 3"]).stdout(Stdio::piped());
///     let child = Subprocess::spawn(&ioloop::IoLoop::current().unwrap(), &mut command)?;
///     let said = child.stdout().unwrap().read_until_close().await?;
///     let status = child.wait_for_exit().await?;
///     Ok::<_, Box<dyn std::error::Error>>((said, status))
/// })??;
/// assert_eq!(said, b"hello\n");
/// assert_eq!(status.code(), Some(3));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Subprocess {
    stdin: Option<IoStream>,
    stdout: Option<IoStream>,
    stderr: Option<IoStream>,
    exit: Rc<ExitState>,
    /// The loop that watches the child (and runs late exit callbacks).
    ioloop: WeakIoLoop,
}

impl Subprocess {
    /// Spawns `command` and registers its piped standard streams and its exit with
    /// `ioloop`. Streams the command does not pipe are inherited or null, as the command
    /// says, and their methods here return `None`.
    ///
    /// # Errors
    ///
    /// The process could not be started (for example
    /// [`NotFound`](io::ErrorKind::NotFound)), or its pipes or exit could not be
    /// registered with the loop (then the child is killed and reaped before this
    /// returns).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::process::Subprocess;
    /// use std::process::Command;
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let missing = Subprocess::spawn(&ioloop, &mut Command::new("/no/such/program"));
    /// assert_eq!(missing.err().unwrap().kind(), std::io::ErrorKind::NotFound);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn(ioloop: &IoLoop, command: &mut Command) -> io::Result<Subprocess> {
        Subprocess::spawn_watching(ioloop, command, WatchMethod::Best)
    }

    pub(crate) fn spawn_watching(
        ioloop: &IoLoop,
        command: &mut Command,
        method: WatchMethod,
    ) -> io::Result<Subprocess> {
        let mut child = command.spawn()?;
        let pipes = [
            child.stdin.take().map(StreamSocket::from),
            child.stdout.take().map(StreamSocket::from),
            child.stderr.take().map(StreamSocket::from),
        ];
        let exit = ExitState::new(child);
        let mut streams: [Option<IoStream>; 3] = Default::default();
        let registered = (|| {
            for (stream, pipe) in streams.iter_mut().zip(pipes) {
                if let Some(pipe) = pipe {
                    *stream = Some(IoStream::new(ioloop, pipe)?);
                }
            }
            watch(ioloop, &exit, method)
        })();
        if let Err(e) = registered {
            // The loop holds a registered stream until it is closed.
            streams.iter().flatten().for_each(IoStream::close);
            exit.kill_and_reap();
            return Err(e);
        }
        let [stdin, stdout, stderr] = streams;
        Ok(Subprocess {
            stdin,
            stdout,
            stderr,
            exit,
            ioloop: ioloop.downgrade(),
        })
    }

    /// The child's process id.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::process::Subprocess;
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let child = Subprocess::spawn(&ioloop, &mut std::process::Command::new("true"))?;
    /// assert!(child.pid() > 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pid(&self) -> u32 {
        self.exit.pid()
    }

    /// The child's standard input, if the command piped it. Close it
    /// ([`IoStream::close`]) to send the child end of file.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::process::Subprocess;
    /// use std::process::{Command, Stdio};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let mut cat = Command::new("cat");
    /// cat.stdin(Stdio::piped()).stdout(Stdio::piped());
    /// let child = Subprocess::spawn(&ioloop, &mut cat)?;
    /// let stdin = child.stdin().unwrap();
    /// ioloop.run_sync(stdin.write_all(b"echoed by cat"))??;
    /// stdin.close(); // end of file: cat exits
    /// let out = ioloop.run_sync(child.stdout().unwrap().read_until_close())??;
    /// assert_eq!(out, b"echoed by cat");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stdin(&self) -> Option<&IoStream> {
        self.stdin.as_ref()
    }

    /// The child's standard output, if the command piped it.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::process::Subprocess;
    /// use std::process::{Command, Stdio};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let mut echo = Command::new("echo");
    /// let child = Subprocess::spawn(&ioloop, echo.arg("hi").stdout(Stdio::piped()))?;
    /// let out = ioloop.run_sync(child.stdout().unwrap().read_until_close())??;
    /// assert_eq!(out, b"hi\n");
    ///
    /// let quiet = Subprocess::spawn(&ioloop, Command::new("true").stdout(Stdio::null()))?;
    /// assert!(quiet.stdout().is_none()); // not piped
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stdout(&self) -> Option<&IoStream> {
        self.stdout.as_ref()
    }

    /// The child's standard error, if the command piped it.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::process::Subprocess;
    /// use std::process::{Command, Stdio};
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let mut command = Command::new("sh");
    /// command.args(["-c", "echo oops >&2"]).stderr(Stdio::piped());
    /// let child = Subprocess::spawn(&ioloop, &mut command)?;
    /// let errors = ioloop.run_sync(child.stderr().unwrap().read_until_close())??;
    /// assert_eq!(errors, b"oops\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stderr(&self) -> Option<&IoStream> {
        self.stderr.as_ref()
    }

    /// Calls `callback` with the exit status when the child exits (Tornado's
    /// `set_exit_callback`), from the loop; if it has exited already, on the loop's next
    /// iteration. Several callbacks run in the order they were set. A callback is dropped
    /// uncalled if the exit cannot be observed (the loop closed first, or other code
    /// reaped the child); [`wait_for_exit`](Subprocess::wait_for_exit) reports those.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::process::Subprocess;
    /// use std::process::Command;
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let child = Subprocess::spawn(&ioloop, Command::new("sh").args(["-c", "exit 3"]))?;
    /// child.set_exit_callback(|status| {
    ///     assert_eq!(status.code(), Some(3));
    ///     ioloop::IoLoop::current().unwrap().stop();
    /// });
    /// ioloop.start()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_exit_callback<F>(&self, callback: F)
    where
        F: FnOnce(ExitStatus) + 'static,
    {
        let ioloop = self.ioloop.upgrade();
        self.exit.on_exit(ioloop, Box::new(callback));
    }

    /// Resolves with the exit status once the child has exited (Tornado's
    /// `wait_for_exit`, without turning a failure status into an error: check
    /// [`ExitStatus::success`]).
    ///
    /// # Errors
    ///
    /// The exit cannot be observed: the loop closed before the child exited, or other
    /// code reaped the child.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::process::Subprocess;
    /// use std::process::Command;
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let child = Subprocess::spawn(&ioloop, Command::new("sh").args(["-c", "exit 7"]))?;
    /// let status = ioloop.run_sync(child.wait_for_exit())??;
    /// assert!(!status.success()); // a failure status is not an error
    /// assert_eq!(status.code(), Some(7));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_for_exit(&self) -> WaitForExit {
        WaitForExit {
            exit: self.exit.clone(),
        }
    }

    /// The exit status, once the loop has seen the child exit.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::process::Subprocess;
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let child = Subprocess::spawn(&ioloop, &mut std::process::Command::new("true"))?;
    /// let status = ioloop.run_sync(child.wait_for_exit())??;
    /// assert_eq!(child.exit_status(), Some(status));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn exit_status(&self) -> Option<ExitStatus> {
        match self.exit.outcome() {
            Outcome::Exited(status) => Some(status),
            _ => None,
        }
    }

    /// Sends the child `SIGKILL`. Does nothing once the child's exit was seen (or once
    /// other code reaped it). A child whose loop closed first can still be killed.
    ///
    /// # Errors
    ///
    /// The OS refused the signal.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::process::Subprocess;
    /// use std::os::unix::process::ExitStatusExt;
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let child = Subprocess::spawn(&ioloop, std::process::Command::new("sleep").arg("60"))?;
    /// child.kill()?;
    /// let status = ioloop.run_sync(child.wait_for_exit())??;
    /// assert_eq!(status.signal(), Some(9));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn kill(&self) -> io::Result<()> {
        self.exit.signal(rustix::process::Signal::KILL)
    }

    /// Sends the child `signal` (a number, such as [`crate::signal::SIGTERM`]). Does
    /// nothing once the child's exit was seen. On Linux the signal goes through the
    /// pidfd, so it cannot reach another process that reused the pid.
    ///
    /// # Errors
    ///
    /// `signal` is not a signal ([`InvalidInput`](io::ErrorKind::InvalidInput)), or the
    /// OS refused it.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::process::Subprocess;
    /// use std::os::unix::process::ExitStatusExt;
    ///
    /// let ioloop = ioloop::IoLoop::new()?;
    /// let child = Subprocess::spawn(&ioloop, std::process::Command::new("sleep").arg("60"))?;
    /// child.signal(ioloop::signal::SIGTERM)?;
    /// let status = ioloop.run_sync(child.wait_for_exit())??;
    /// assert_eq!(status.signal(), Some(ioloop::signal::SIGTERM));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn signal(&self, signal: i32) -> io::Result<()> {
        let signal = rustix::process::Signal::from_named_raw(signal).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{signal} is not a signal"),
            )
        })?;
        self.exit.signal(signal)
    }
}

impl fmt::Debug for Subprocess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subprocess")
            .field("pid", &self.pid())
            .field("exit", &self.exit.outcome())
            .finish_non_exhaustive()
    }
}

/// The future of [`Subprocess::wait_for_exit`].
#[must_use = "futures do nothing unless awaited"]
pub struct WaitForExit {
    exit: Rc<ExitState>,
}

impl Future for WaitForExit {
    type Output = io::Result<ExitStatus>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let outcome = self.exit.outcome();
        if let Some(why) = outcome.lost_because() {
            return Poll::Ready(Err(io::Error::other(why)));
        }
        match outcome {
            Outcome::Exited(status) => Poll::Ready(Ok(status)),
            _ => {
                self.exit.push_waker(cx.waker());
                Poll::Pending
            }
        }
    }
}

impl fmt::Debug for WaitForExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitForExit")
            .field("pid", &self.exit.pid())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn sh(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    /// The watcher of platforms without pidfds, run here on Linux.
    #[test]
    fn sigchld_watch_reaps_only_its_own_children() {
        let ioloop = IoLoop::new().unwrap();
        let mut theirs = sh("exit 7").spawn().unwrap();
        let ours =
            Subprocess::spawn_watching(&ioloop, &mut sh("exit 5"), WatchMethod::Sigchld).unwrap();
        let status = ioloop.run_sync(ours.wait_for_exit()).unwrap().unwrap();
        assert_eq!(status.code(), Some(5));
        assert_eq!(theirs.wait().unwrap().code(), Some(7));
        assert_eq!(ioloop.stats().handlers, 0, "the SIGCHLD handler is removed");

        let mut sleep = Command::new("sleep");
        sleep.arg("60");
        let sleeper =
            Subprocess::spawn_watching(&ioloop, &mut sleep, WatchMethod::Sigchld).unwrap();
        sleeper.kill().unwrap();
        let status = ioloop.run_sync(sleeper.wait_for_exit()).unwrap().unwrap();
        assert_eq!(status.signal(), Some(9));
    }
}
