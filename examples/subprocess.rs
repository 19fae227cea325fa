//! Child processes on the loop (Tornado's `Subprocess`): several children run at once,
//! one fed through its stdin, one killed; the program prints what each said and how it
//! ended, then exits by itself.
//!
//! ```text
//! cargo run --example subprocess
//! ```

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};

use ioloop::process::Subprocess;
use ioloop::{IoLoop, Task};

/// How a child ended, in words.
fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => format!("ended: {status}"),
    }
}

/// Runs `command` with its stdout piped, feeding `input` to its stdin if given, and
/// returns one line: the name, what it printed, how it ended.
fn run(
    ioloop: &IoLoop,
    name: &'static str,
    mut command: Command,
    input: Option<&'static [u8]>,
) -> Task<String> {
    command.stdout(Stdio::piped());
    if input.is_some() {
        command.stdin(Stdio::piped());
    }
    let child = Subprocess::spawn(ioloop, &mut command);
    ioloop.spawn(async move {
        let child = match child {
            Ok(child) => child,
            Err(e) => return format!("{name}: cannot start: {e}"),
        };
        if let (Some(stdin), Some(input)) = (child.stdin(), input) {
            let _ = stdin.write_all(input).await;
            stdin.close();
        }
        let said = child
            .stdout()
            .unwrap()
            .read_until_close()
            .await
            .unwrap_or_default();
        match child.wait_for_exit().await {
            Ok(status) => format!(
                "{name}: said {:?}, {}",
                String::from_utf8_lossy(&said),
                describe(status)
            ),
            Err(e) => format!("{name}: {e}"),
        }
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ioloop = IoLoop::new()?;
    let mut echo = Command::new("echo");
    echo.arg("hello from echo");
    let mut failing = Command::new("sh");
    failing.args(["-c", "echo about to fail; exit 3"]);
    let tasks = vec![
        run(&ioloop, "echo", echo, None),
        run(
            &ioloop,
            "cat",
            Command::new("cat"),
            Some(b"fed through stdin\n"),
        ),
        run(&ioloop, "sh", failing, None),
    ];
    // One more that would sleep for a minute, killed as soon as it runs.
    let mut sleep = Command::new("sleep");
    sleep.arg("60");
    let sleeper = Subprocess::spawn(&ioloop, &mut sleep)?;
    sleeper.kill()?;
    let lines = ioloop.run_sync(async move {
        let mut lines = Vec::new();
        for task in tasks {
            lines.push(task.await.unwrap_or_else(|e| format!("failed: {e}")));
        }
        let status = sleeper.wait_for_exit().await;
        lines.push(match status {
            Ok(status) => format!("sleep: {}", describe(status)),
            Err(e) => format!("sleep: {e}"),
        });
        lines
    })?;
    for line in lines {
        println!("{line}");
    }
    Ok(())
}
