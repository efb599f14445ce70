//! The comparison build's `swim-sim` binary (`swim sim` with foca): its
//! command line, one JSON line per report, and a closed stdout ending it
//! quietly.

use std::process::{Command, Stdio};

/// Runs swim-sim; its exit code, stdout and stderr.
fn lapswim_sim(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_swim-sim")).args(args).output().expect("runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

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

#[test]
fn the_runner_prints_each_scenario_as_one_json_line() {
    for args in [
        &["partition", "--nodes", "8", "--runs", "1"][..],
        &["churn", "--nodes", "6", "--rounds", "1"],
        &["broadcast", "--nodes", "6", "--count", "10", "--loss", "0.05"],
        &["rotate", "--nodes", "6"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_swim-sim")).args(args).output().expect("runs");
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).expect("UTF-8");
        assert_eq!(text.lines().count(), 1, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(v["scenario"], args[0]);
    }
}

/// `--plot` is offered only where it draws something.
#[test]
fn only_charted_scenarios_offer_plot() {
    for scenario in ["s1", "s2", "s3", "gray"] {
        let (code, out, err) = lapswim_sim(&[scenario, "--help"]);
        assert_eq!(code, Some(0), "{err}");
        assert!(out.contains("--plot"), "{scenario} --help: {out}");
    }
    for scenario in ["s4", "s5", "memory", "regions", "partition", "churn", "broadcast", "spread", "rotate"] {
        let (code, out, err) = lapswim_sim(&[scenario, "--help"]);
        assert_eq!(code, Some(0), "{err}");
        assert!(!out.contains("--plot"), "{scenario} --help offers --plot: {out}");
    }
    let (_, out, _) = lapswim_sim(&["--help"]);
    assert!(!out.contains("--plot"), "swim-sim --help offers --plot: {out}");

    let dir = std::env::temp_dir().join(format!("swim-lab-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let svg = dir.join("s2.svg");
    let (code, _, err) = lapswim_sim(&["s2", "--nodes", "6", "--runs", "1", "--plot", svg.to_str().expect("UTF-8")]);
    assert_eq!(code, Some(0), "{err}");
    assert!(std::fs::read_to_string(&svg).is_ok_and(|s| s.contains("<svg")), "no chart written");
    let _ = std::fs::remove_dir_all(&dir);
}
