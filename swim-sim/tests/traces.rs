//! The committed traces under `tests/traces/` replay digest for digest on
//! this build. They are one small simulated run (6 nodes, 2 % loss, a
//! crash, a leave, a restart at a new address); a change of behaviour
//! shows here as a divergence to review, then to bless with
//! `SWIM_BLESS=1 cargo test -p lapswim-sim --test traces`, which records
//! them again.

use std::path::{Path, PathBuf};

use lapswim_core::Config;
use lapswim_core::trace::replay;
use lapswim_sim::net::{Command, Flow, NetConfig, Sim, recording};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/traces")
}

fn record(into: &Path) {
    let tmp = std::env::temp_dir().join(format!("swim-bless-traces-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    recording::record_to(Some(&tmp));
    let n = 6;
    let mut sim = Sim::new(n, Config::lan(), NetConfig { seed: 7, loss: 0.02, ..NetConfig::default() }).unwrap();
    recording::record_to(None);
    for i in 1..n {
        sim.schedule(0, Command::Join { node: i, seeds: vec![0] }).unwrap();
    }
    sim.schedule(15_000, Command::Crash(4)).unwrap();
    sim.schedule(30_000, Command::Leave(5)).unwrap();
    sim.schedule(35_000, Command::Restart { node: 4, seeds: vec![0], new_addr: true }).unwrap();
    sim.run_until(60_000, &mut |_, _, _: &lapswim_core::Event| Flow::Continue);
    drop(sim);
    let _ = std::fs::remove_dir_all(into);
    std::fs::create_dir_all(into).unwrap();
    for e in std::fs::read_dir(tmp.join("run0")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, into.join(p.file_name().unwrap())).unwrap();
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn committed_traces_replay_identically() {
    if std::env::var_os("SWIM_BLESS").is_some() {
        record(&dir());
    }
    let mut files: Vec<_> = std::fs::read_dir(dir())
        .expect("tests/traces exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "trace"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "{files:?}");
    for f in files {
        let bytes = std::fs::read(&f).expect("readable");
        let r = replay(&bytes, &[], Xoshiro256PlusPlus::seed_from_u64, None, false).expect("a whole trace");
        if let Some(d) = &r.divergence {
            panic!(
                "{} diverges at input {} (t = {} ms, {:?}): behaviour changed; review, then bless with \
                 SWIM_BLESS=1 cargo test -p lapswim-sim --test traces",
                f.display(),
                d.index,
                d.at.as_millis(),
                d.input
            );
        }
        assert!(r.inputs > 0);
    }
}
