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
    let (code, _, err) = swim(&["agent", "--bind", "127.0.0.1:0", "--no-api"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("--name") && err.lines().count() == 1, "the missing flag is named: {err}");

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
fn sim_runs_swims_scenarios_and_sends_foca_to_the_comparison_build() {
    let (code, out, err) = swim(&["sim", "s1", "--nodes", "4"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("\"scenario\":\"S1\"") && out.contains("\"impl\":\"swim\""), "{out}");
    // The swim binary does not link foca: the comparison build runs it.
    let (code, _, err) = swim(&["sim", "s1", "--nodes", "4", "--impl", "foca"]);
    assert_ne!(code, Some(0), "{err}");
    assert!(err.contains("swim-lab"), "the comparison build is named: {err}");
}

#[test]
fn loopback_refuses_impossible_counts() {
    let (code, _, err) = swim(&["loopback", "--nodes", "1"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("need --nodes >= 2"), "{err}");
    let (_, help, _) = swim(&["loopback", "--help"]);
    for flag in ["--nodes", "--runtime", "--kill", "--seconds", "--config", "--record"] {
        assert!(help.contains(flag), "{flag} missing: {help}");
    }
}

/// Runs swim under `sh` once `ulimit` has set its open-file limits; its
/// exit code, stdout and stderr.
fn swim_limited(ulimit: &str, args: &str) -> (Option<i32>, String, String) {
    let script = format!("ulimit {ulimit} && exec \"$0\" {args}");
    let out = Command::new("sh").arg("-c").arg(script).arg(env!("CARGO_BIN_EXE_swim")).output().expect("runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn loopback_raises_its_open_file_limit_or_says_which_to_raise() {
    // 40 nodes need 144 open files at the least: over the soft limit, not
    // over the hard one.
    let (code, out, err) = swim_limited("-Sn 64", "loopback --nodes 40 --seconds 1");
    assert_eq!(code, Some(0), "{err}");
    let line: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON line");
    assert!(line["convergence_ms"].is_u64() && line["settle_ms"].is_u64(), "{line}");
    assert_eq!(line["false_failures"], 0, "{line}");
    // Over the hard limit too: it is named, with what to raise it to.
    let (code, _, err) = swim_limited("-n 64", "loopback --nodes 40 --seconds 1");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("144") && err.contains("hard limit is 64") && err.contains("416"), "{err}");
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
    assert!(err.contains("607 bytes") && err.contains("512"), "size and limit named: {err}");

    let (code, _, err) = swim(&["agent", "--bind", "127.0.0.1:0", "--name", "x", "--label", &"l".repeat(300)]);
    assert_ne!(code, Some(0), "{err}");
    assert!(err.contains("255"), "{err}");
}
