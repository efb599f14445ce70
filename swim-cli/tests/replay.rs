//! A simulated run recorded (as `swim-sim s2 --record DIR` records it)
//! then `swim replay DIR`: every node's trace replays identically;
//! `--until` prints the member's state there.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;

fn swim(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_swim")).args(args).output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// Records one S2 run of `nodes` simulated nodes under `dir` (`run0/`),
/// as `swim-sim s2 --nodes N --runs 1 --record DIR` does.
fn record(dir: &Path, nodes: usize) {
    // The recording directory is the process's: one run at a time.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    std::fs::create_dir_all(dir).expect("trace directory");
    lapswim_sim::net::recording::record_to(Some(dir));
    let p = lapswim_sim::scenario::Params {
        n: nodes,
        seed: 1,
        latency_ms: 1,
        jitter_ms: 0,
        config: lapswim_core::Config::lan(),
        regions: None,
        latency_model: lapswim_sim::geo::LatencyModel::Flat,
    };
    let report = lapswim_sim::scenario::s2(&p, 1);
    lapswim_sim::net::recording::record_to(None);
    report.expect("the scenario runs");
}

#[test]
fn a_recorded_simulator_run_replays_identically() {
    let dir = std::env::temp_dir().join(format!("swim-cli-replay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.to_str().expect("UTF-8");
    record(&dir, 6);
    let (ok, text) = swim(&["replay", d]);
    assert!(ok, "{text}");
    assert!(text.contains("6 traces") && text.contains("0 diverged"), "{text}");
    let one = dir.join("run0").join("n1.trace");
    let (ok, text) = swim(&["replay", one.to_str().expect("UTF-8"), "--until", "20"]);
    assert!(ok, "{text}");
    assert!(text.contains("after 20 inputs") && text.contains("n1 "), "{text}");
    let (ok, text) = swim(&["replay", one.to_str().expect("UTF-8"), "--print", "--until", "3"]);
    assert!(ok && text.contains(" -> "), "{text}");
    std::fs::write(dir.join("junk.trace"), b"not a trace").expect("write");
    let (ok, text) = swim(&["replay", d]);
    assert!(!ok && text.contains("not a swim trace"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs swim with its stdout a pipe nobody reads any more (`swim ... |
/// head` once head is done): every write fails with a broken pipe.
fn into_closed_pipe(args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_swim"))
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("runs");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    let dir = std::env::temp_dir().join(format!("swim-cli-pipe-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.to_str().expect("UTF-8");
    record(&dir, 4);
    let one = dir.join("run0").join("n1.trace");
    let one = one.to_str().expect("UTF-8");
    let commands: [&[&str]; 5] =
        [&["replay", one, "--print"], &["replay", d], &["replay", one, "--until", "5"], &["keygen"], &["--help"]];
    for args in commands {
        let (code, err) = into_closed_pipe(args);
        assert!(!err.contains("panicked"), "swim {args:?} panicked: {err}");
        assert_ne!(code, Some(101), "swim {args:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
