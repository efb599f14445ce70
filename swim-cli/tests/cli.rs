//! The command line itself: flag errors, help texts, and which flags each
//! command offers.

use std::process::Command;

/// Runs swim; its exit code, stdout and stderr.
fn swim(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_swim")).args(args).output().expect("runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn a_flag_error_names_the_problem_and_shows_usage() {
    let (code, _, err) = swim(&["agent", "--bind", "127.0.0.1:0"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--name") && err.contains("Usage:"), "the missing flag is named: {err}");

    let (code, _, err) = swim(&["agent", "--bnd", "127.0.0.1:0", "--name", "x"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--bnd") && err.contains("--bind"), "a close flag is suggested: {err}");

    let (code, _, err) = swim(&["replay"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("<PATH>") && err.contains("Usage:"), "{err}");
}

#[test]
fn plain_swim_lists_the_commands_and_fails() {
    let (code, out, err) = swim(&[]);
    assert_ne!(code, Some(0), "{out}{err}");
    let text = out + &err;
    for command in ["agent", "demo", "sim", "loopback", "keygen", "replay"] {
        assert!(text.contains(command), "{command} is not listed: {text}");
    }
}

#[test]
fn the_agents_help_documents_rust_log() {
    let (code, out, err) = swim(&["agent", "--help"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("RUST_LOG"), "{out}");
}

#[test]
fn limit_errors_name_the_limit() {
    let meta = format!("k={}", "x".repeat(600));
    let (code, _, err) = swim(&["agent", "--bind", "127.0.0.1:0", "--name", "x", "--meta", &meta]);
    assert_ne!(code, Some(0), "{err}");
    assert!(err.contains("602") && err.contains("512"), "size and limit named: {err}");

    let (code, _, err) = swim(&["agent", "--bind", "127.0.0.1:0", "--name", "x", "--label", &"l".repeat(300)]);
    assert_ne!(code, Some(0), "{err}");
    assert!(err.contains("255"), "{err}");
}

/// `--plot` is offered only where it draws something.
#[test]
fn only_charted_scenarios_offer_plot() {
    for scenario in ["s1", "s2", "s3", "gray"] {
        let (code, out, err) = swim(&["sim", scenario, "--help"]);
        assert_eq!(code, Some(0), "{err}");
        assert!(out.contains("--plot"), "{scenario} --help: {out}");
    }
    for scenario in ["s4", "s5", "memory", "regions", "partition", "churn", "broadcast", "spread", "rotate"] {
        let (code, out, err) = swim(&["sim", scenario, "--help"]);
        assert_eq!(code, Some(0), "{err}");
        assert!(!out.contains("--plot"), "{scenario} --help offers --plot: {out}");
    }
    let (_, out, _) = swim(&["sim", "--help"]);
    assert!(!out.contains("--plot"), "swim sim --help offers --plot: {out}");

    let dir = std::env::temp_dir().join(format!("swim-cli-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let svg = dir.join("s2.svg");
    let (code, _, err) = swim(&["sim", "s2", "--nodes", "6", "--runs", "1", "--plot", svg.to_str().expect("UTF-8")]);
    assert_eq!(code, Some(0), "{err}");
    assert!(std::fs::read_to_string(&svg).is_ok_and(|s| s.contains("<svg")), "no chart written");
    let _ = std::fs::remove_dir_all(&dir);
}
