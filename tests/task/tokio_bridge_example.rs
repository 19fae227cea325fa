//! The tokio bridge example, run as a user would: tokio awaits a loop task, a loop task
//! awaits a tokio oneshot, tokio posts futures and blocking work through a `Remote`.

#![cfg(feature = "blocking")]

use crate::common;

#[test]
fn the_tokio_bridge_example_crosses_both_ways() {
    let out = std::process::Command::new(common::example::example_path("tokio_bridge"))
        .output()
        .expect("the example runs");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(
        lines[0],
        "1. tokio awaited a loop task: slept 10 ms on the loop"
    );
    assert_eq!(
        lines[1],
        "2. the loop got from tokio: hello from a tokio task"
    );
    assert!(
        lines[2].starts_with("3. tokio awaited a posted future (55) and blocking work (on "),
        "{text}"
    );
    assert_eq!(lines[3], "done");
}
