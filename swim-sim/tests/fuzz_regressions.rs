//! Every committed input under `fuzz/regressions/<target>/` replayed
//! through its target's harness: a crash the fuzzer once found stays
//! fixed, on the stable toolchain, in every `cargo test`.

use std::path::Path;

fn replay(target: &str, harness: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions").join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no inputs under {}", dir.display());
    for path in inputs {
        let data = std::fs::read(&path).expect("readable");
        let run = std::panic::catch_unwind(|| harness(&data));
        assert!(run.is_ok(), "{target} fails on {}", path.display());
    }
}

#[test]
fn decode_regressions() {
    replay("decode", lapswim_core::internals::fuzzing::decode);
}

#[test]
fn datagram_regressions() {
    replay("datagram", lapswim_core::internals::fuzzing::datagram);
}

#[test]
fn stream_regressions() {
    replay("stream", lapswim_core::internals::fuzzing::stream);
}

#[test]
fn decrypt_regressions() {
    replay("decrypt", lapswim_core::internals::fuzzing::decrypt);
}

#[test]
fn scenario_regressions() {
    replay("scenario", lapswim_sim::fuzzing::scenario);
}

#[test]
fn serf_regressions() {
    replay("serf", lapswim_core::internals::fuzzing::serf);
}

#[test]
fn memberlist_regressions() {
    replay("memberlist", lapswim_core::internals::fuzzing::memberlist);
}
