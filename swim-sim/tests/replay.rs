//! Recording a simulated cluster and replaying every node: digest for
//! digest identical; a changed configuration, a changed input or a cut
//! file is reported.

use lapswim_core::Config;
use lapswim_core::internals::trace::to_bytes;
use lapswim_core::trace::TraceReader;
use lapswim_core::trace::{ActionNote, TraceError, TraceRecord, replay};
use lapswim_sim::net::{Command, Flow, NetConfig, Sim, recording, seed_from_env};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

fn rng(seed: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

/// Rewrites a trace with `header` applied to its header and `record` to
/// each record (by index).
fn rewrite(
    bytes: &[u8],
    header: impl Fn(&mut lapswim_core::trace::TraceHeader),
    record: impl Fn(usize, &mut TraceRecord),
) -> Vec<u8> {
    let reader = TraceReader::new(bytes).expect("a trace");
    let mut h = reader.header.clone();
    header(&mut h);
    let mut records: Vec<TraceRecord> = reader.map(|r| r.expect("whole")).collect();
    for (i, r) in records.iter_mut().enumerate() {
        record(i, r);
    }
    to_bytes(&h, &records)
}

#[test]
fn every_node_of_a_recorded_run_replays_identically_and_changes_are_caught() {
    let seed = seed_from_env(21);
    let dir = std::env::temp_dir().join(format!("swim-replay-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    recording::record_to(Some(&dir));
    let n = 8;
    let mut sim = Sim::new(n, Config::lan(), NetConfig { seed, loss: 0.05, ..NetConfig::default() }).unwrap();
    recording::record_to(None);
    for i in 1..n {
        sim.schedule(0, Command::Join { node: i, seeds: vec![0] }).unwrap();
    }
    sim.schedule(20_000, Command::Crash(5)).unwrap();
    sim.schedule(40_000, Command::Leave(6)).unwrap();
    sim.schedule(50_000, Command::Restart { node: 5, seeds: vec![0], new_addr: true }).unwrap();
    sim.run_until(90_000, &mut |_, _, _: &lapswim_core::Event| Flow::Continue);
    drop(sim); // flushes every trace

    let run = dir.join("run0");
    let mut files: Vec<_> = std::fs::read_dir(&run).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), n + 1, "a file per node, and one for the restarted life: {files:?}");
    #[cfg(unix)]
    for f in &files {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
    let mut total = 0;
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let r = replay(&bytes, &[], rng, None, false).unwrap();
        assert_eq!(r.divergence, None, "{} diverged; SWIM_SEED={seed}", f.display());
        assert!(r.inputs > 50, "{}: {} inputs", f.display(), r.inputs);
        total += r.inputs;
    }
    assert!(total > 1000, "{total}");

    let bytes = std::fs::read(run.join("n1.trace")).unwrap();
    // A build that behaves differently: another probe interval.
    let changed = rewrite(&bytes, |h| h.config.probe_interval = lapswim_core::Duration::from_millis(900), |_, _| {});
    let d = replay(&changed, &[], rng, None, false).unwrap().divergence.expect("a changed build diverges");
    assert!(d.expected != d.actual);
    // The divergence shows what the recording did there and what the
    // replay did instead.
    let replayed: Vec<ActionNote> = d.actions.iter().map(ActionNote::of).collect();
    assert!(!d.expected_actions.is_empty() || !replayed.is_empty());
    assert_ne!(d.expected_actions, replayed, "{:?}", d.expected_actions);
    // One input changed: the divergence is found at it (or the first
    // input whose output it changes). One that emitted something, so that
    // its time alone shows in the digest.
    let k = TraceReader::new(&bytes)
        .unwrap()
        .map(|r| r.expect("whole"))
        .enumerate()
        .position(|(i, r)| i >= 40 && !r.actions.is_empty())
        .expect("an input with actions");
    let changed = rewrite(
        &bytes,
        |_| {},
        |i, r| {
            if i == k {
                r.at = lapswim_core::Instant::from_millis(r.at.as_millis() + 1);
            }
        },
    );
    let d = replay(&changed, &[], rng, None, false).unwrap().divergence.expect("a changed input diverges");
    assert_eq!(d.index, k);
    // Cut short, or not a trace at all.
    let cut = &bytes[..bytes.len() - 3];
    let r = replay(cut, &[], rng, None, false);
    assert!(matches!(r, Err(TraceError::Truncated { .. })), "{r:?}");
    assert!(matches!(replay(b"hello, world", &[], rng, None, false), Err(TraceError::NotATrace)));
    // --until stops there.
    assert_eq!(replay(&bytes, &[], rng, Some(10), false).unwrap().inputs, 10);
    let _ = std::fs::remove_dir_all(&dir);
}
