//! A property test over a simulated cluster, with the simulator as a test
//! API: what a user writes to check their configuration of `lapswim-core`.
//!
//! Each case is a seed, a message loss rate for the first 20 s and up to
//! two crashes at random times; proptest draws them, the simulator runs
//! them (deterministically: a case is a pure function of those values),
//! and two invariants are checked:
//!
//! 1. every crashed node is declared failed by every live node within
//!    [`DETECTION_BOUND_MS`] of its crash;
//! 2. without loss, no live node is ever declared failed; with loss, any
//!    live node declared failed is seen alive again by every live node
//!    once the loss is over.
//!
//! A failing case is shrunk to a small one and printed with the line that
//! replays it.
//!
//! ```text
//! cargo run --release -p lapswim-sim --example proptest_cluster            # 32 cases
//! cargo run --release -p lapswim-sim --example proptest_cluster -- 200     # 200 cases
//! # A failure, on purpose: a detection bound no configuration meets.
//! cargo run --release -p lapswim-sim --example proptest_cluster -- 32 --bound-ms 500
//! # Replay one case (as a failure prints it):
//! cargo run --release -p lapswim-sim --example proptest_cluster -- --replay 'seed=7 loss=3 crash=2@1500,5@900'
//! ```
//!
//! In a test suite the same `check` goes in a `proptest! { #[test] ... }`
//! block (see `swim-sim/tests/faults.rs`); proptest then prints the
//! failing case and keeps it in a regressions file.

use core::fmt;
use core::str::FromStr;

use lapswim_core::{Config, Event};
use lapswim_sim::net::{Command, Flow, NetConfig, Sim, name_index};
use lapswim_sim::scenario;
use lapswim_sim::views::{Belief, Views};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestError, TestRunner};

/// Nodes in the simulated cluster.
const N: usize = 8;

/// How long after its crash every live node must have declared a crashed
/// node failed: the LAN preset's longest suspicion at this size with a few
/// probe periods to spare.
const DETECTION_BOUND_MS: u64 = 30_000;

/// How long the loss lasts, from the start of the faults.
const LOSSY_MS: u64 = 20_000;

/// How long the case runs after the loss ends: long enough for a falsely
/// failed live node to refute and be seen alive again.
const CALM_MS: u64 = 60_000;

/// One case: the simulation's seed, a loss rate (percent) for the first
/// [`LOSSY_MS`], and crashes (node, milliseconds after the faults start).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Case {
    seed: u64,
    loss_pct: u8,
    crashes: Vec<(usize, u64)>,
}

fn case() -> impl Strategy<Value = Case> {
    // No loss in a third of the cases, so invariant 2's strict half is
    // exercised; up to two crashes of distinct nodes.
    let loss = prop_oneof![Just(0u8), 1u8..=10];
    let crashes = proptest::collection::btree_map(0..N, 0u64..10_000, 0..=2);
    (any::<u64>(), loss, crashes).prop_map(|(seed, loss_pct, crashes)| Case {
        seed,
        loss_pct,
        crashes: crashes.into_iter().collect(),
    })
}

/// Runs `case` and checks both invariants against `bound_ms`.
fn check(case: &Case, bound_ms: u64) -> Result<(), TestCaseError> {
    let mut sim = Sim::new(N, Config::lan(), NetConfig { seed: case.seed, ..NetConfig::default() })
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut views = Views::new(N);
    for i in 1..N {
        sim.schedule(0, Command::Join { node: i, seeds: vec![0] }).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
    // Gossip alone may miss a pair; push-pull (every 30 s) repairs it.
    prop_assert!(scenario::converge(&mut sim, &mut views, 65_000), "no convergence before the faults");

    let start = sim.now();
    let schedule =
        |sim: &mut Sim, at: u64, c: Command| sim.schedule(at, c).map_err(|e| TestCaseError::fail(e.to_string()));
    schedule(&mut sim, start, Command::SetLoss(f64::from(case.loss_pct) / 100.0))?;
    schedule(&mut sim, start + LOSSY_MS, Command::SetLoss(0.0))?;
    let mut crashed_at = [None; N];
    for &(node, after) in &case.crashes {
        crashed_at[node] = Some(start + after);
        schedule(&mut sim, start + after, Command::Crash(node))?;
    }

    // When each observer first declared each node failed, and failures of
    // live nodes.
    let mut failed_at = [[None::<u64>; N]; N];
    let mut false_failures = Vec::new();
    sim.run_until(start + LOSSY_MS + CALM_MS, &mut |t, observer, e: &Event| {
        views.apply(observer, e);
        if let Event::Failed { name, .. } = e
            && let Some(target) = name_index(name.as_str()).filter(|&i| i < N)
        {
            failed_at[observer][target].get_or_insert(t);
            if crashed_at[target].is_none_or(|c| t < c) {
                false_failures.push((t - start, observer, target));
            }
        }
        Flow::Continue
    });

    let live = |i: usize| crashed_at[i].is_none();
    // 1. Crashed nodes are failed everywhere, in time.
    for target in (0..N).filter(|&t| !live(t)) {
        let crash = crashed_at[target].unwrap_or_default();
        for observer in (0..N).filter(|&o| live(o)) {
            let took = failed_at[observer][target].map(|t| t - crash);
            prop_assert!(
                took.is_some_and(|ms| ms <= bound_ms),
                "node {observer} declared crashed node {target} failed after {took:?} ms (bound {bound_ms} ms)"
            );
        }
    }
    // 2. Live nodes: never failed without loss; alive everywhere at the end.
    if case.loss_pct == 0 {
        prop_assert!(
            false_failures.is_empty(),
            "live nodes declared failed without loss (ms, observer, target): {false_failures:?}"
        );
    }
    for observer in (0..N).filter(|&o| live(o)) {
        for target in (0..N).filter(|&t| t != observer && live(t)) {
            prop_assert_eq!(views.get(observer, target), Belief::Alive, "node {} about live node {}", observer, target);
        }
    }
    Ok(())
}

/// What the command line asks for.
struct Args {
    cases: u32,
    bound_ms: u64,
    replay: Option<Case>,
}

fn args() -> Result<Args, String> {
    let mut args = Args { cases: 32, bound_ms: DETECTION_BOUND_MS, replay: None };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |flag: &str| it.next().ok_or(format!("{flag} needs a value"));
        match a.as_str() {
            "--bound-ms" => args.bound_ms = value("--bound-ms")?.parse().map_err(|e| format!("--bound-ms: {e}"))?,
            "--replay" => args.replay = Some(value("--replay")?.parse()?),
            n => args.cases = n.parse().map_err(|_| format!("not a case count: {n:?} (see the example's doc)"))?,
        }
    }
    Ok(args)
}

fn main() -> Result<(), String> {
    let args = args()?;
    if let Some(case) = args.replay {
        println!("replaying {case}");
        check(&case, args.bound_ms).map_err(|e| format!("{case}: {e}"))?;
        println!("both invariants held");
        return Ok(());
    }
    // Proptest's own generator is seeded from the OS each run; every case
    // it draws carries its simulation seed, so a failure replays from the
    // printed line alone.
    // (An example has no source file for proptest to keep regressions
    // beside; a test does.)
    let config = ProptestConfig { cases: args.cases, failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = TestRunner::new(config);
    let bound = args.bound_ms;
    match runner.run(&case(), |case| check(&case, bound)) {
        Ok(()) => {
            println!("{} cases of {N} nodes: both invariants held", args.cases);
            Ok(())
        }
        Err(TestError::Fail(why, case)) => {
            println!("failed: {why}");
            println!("smallest failing case: {case}");
            println!(
                "replay: cargo run --release -p lapswim-sim --example proptest_cluster -- --bound-ms {bound} --replay '{case}'"
            );
            Err("an invariant does not hold".into())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// `seed=7 loss=3 crash=2@1500,5@900`: what a failure prints and
/// `--replay` reads.
impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seed={} loss={}", self.seed, self.loss_pct)?;
        let crashes: Vec<String> = self.crashes.iter().map(|(n, ms)| format!("{n}@{ms}")).collect();
        if !crashes.is_empty() {
            write!(f, " crash={}", crashes.join(","))?;
        }
        Ok(())
    }
}

impl FromStr for Case {
    type Err = String;

    fn from_str(s: &str) -> Result<Case, String> {
        let mut case = Case { seed: 0, loss_pct: 0, crashes: Vec::new() };
        let bad = |what: &str| format!("{what} in {s:?}: expected seed=U64 loss=PERCENT [crash=NODE@MS,...]");
        for part in s.split_whitespace() {
            match part.split_once('=') {
                Some(("seed", v)) => case.seed = v.parse().map_err(|_| bad("seed"))?,
                Some(("loss", v)) => case.loss_pct = v.parse().map_err(|_| bad("loss"))?,
                Some(("crash", v)) => {
                    for c in v.split(',') {
                        let (node, ms) = c.split_once('@').ok_or_else(|| bad("crash"))?;
                        let node: usize = node.parse().map_err(|_| bad("crash node"))?;
                        if node >= N {
                            return Err(bad("crash node"));
                        }
                        case.crashes.push((node, ms.parse().map_err(|_| bad("crash time"))?));
                    }
                }
                _ => return Err(bad(part)),
            }
        }
        Ok(case)
    }
}
