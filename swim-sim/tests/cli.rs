//! The `swim-sim` binary: a closed stdout ends it quietly.

use std::process::{Command, Stdio};

#[test]
fn a_closed_stdout_does_not_panic() {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_swim-sim"))
        .args(["s1", "--nodes", "4"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}
