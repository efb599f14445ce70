//! The `regions` scenario: a cluster spread over regions (5 ms within one,
//! 80 ms across by default), run with the default probe choice, the
//! hand-written topology-aware selector ([`lapswim_core::Topology::new`]
//! over the region in the metadata) and the one driven by network
//! coordinates ([`lapswim_core::Topology::by_round_trip`]): the share of
//! datagrams that cross regions in a quiet minute, S2 crash detection, and
//! S3 false failures under loss. Every selector gets the same learning
//! time after the warm-up before anything is measured.

use core::cell::Cell;
use std::rc::Rc;

use serde_json::{Value, json};

use crate::net::{Flow, SimError};
use crate::process::Meter;
use crate::scenario::{self, Params, Regions, Selector, finish, header, summary};
use crate::views::Views;

/// The quiet window the cross-region share is counted over, virtual ms.
const QUIET_MS: u64 = 60_000;

/// Options of the scenario.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// How many regions.
    pub regions: usize,
    /// One-way latency within a region, ms.
    pub near_ms: u64,
    /// One-way latency between regions, ms.
    pub far_ms: u64,
    /// S2 runs per selector.
    pub runs: usize,
    /// S3's loss rate.
    pub loss: f64,
    /// The selectors to run, in order.
    pub selectors: &'static [Selector],
}

/// Every selector, as the scenario runs them by default.
pub const ALL: &[Selector] = &[Selector::Default, Selector::Topology, Selector::Coords];

/// Virtual ms after the warm-up before anything is measured, for every
/// selector: time for the coordinates to place every member (each member
/// exchanges coordinates with about two others a second).
pub const LEARN_MS: u64 = 300_000;

/// Runs the scenario with both selectors.
pub fn regions(p: &Params, o: Options) -> Result<Value, SimError> {
    let meter = Meter::start();
    let mut m = header("regions", p, p.seed, o.loss);
    m.insert("regions".into(), json!(o.regions));
    m.insert("near_ms".into(), json!(o.near_ms));
    m.insert("far_ms".into(), json!(o.far_ms));
    let mut ok = true;
    m.insert("learn_ms".into(), json!(LEARN_MS));
    for &selector in o.selectors {
        let key = selector.key();
        let r = Regions { count: o.regions.max(1), near_ms: o.near_ms, far_ms: o.far_ms, selector, learn_ms: LEARN_MS };
        let p = Params { regions: Some(r), ..p.clone() };
        let (cross, total, cross_bytes, bytes) = quiet_traffic(&p, r)?;
        let crashes: Vec<scenario::CrashRun> = (0..o.runs)
            .map(|k| scenario::s2_run(&p, crate::net::mix(p.seed, 1000 + k as u64)))
            .collect::<Result<_, _>>()?;
        let s3 = scenario::s3_run(&p, o.loss, scenario::S3_WINDOW_MS)?;
        ok &= crashes.iter().all(|c| c.all_live_down_ms.is_some()) && s3.warmed_up;
        let share = |a: u64, b: u64| if b == 0 { 0.0 } else { (a as f64 / b as f64 * 1000.0).round() / 1000.0 };
        let pick = |f: fn(&scenario::CrashRun) -> Option<u64>| summary(&crashes.iter().map(f).collect::<Vec<_>>());
        m.insert(
            key.into(),
            json!({
                "cross_region_share": share(cross, total),
                "cross_region_bytes_share": share(cross_bytes, bytes),
                "msgs_per_node_s": share(total, (p.n as u64) * QUIET_MS / 1000),
                "first_suspect_ms": pick(|c| c.first_suspect_ms),
                "all_live_down_ms": pick(|c| c.all_live_down_ms),
                "s2_false_failures": crashes.iter().map(|c| c.false_failures).sum::<u64>(),
                "s3_false_failures": s3.false_positive_declarations,
                "s3_false_down_observations": s3.false_down_observations,
                "s3_suspicions": s3.suspicions_raised,
                "s3_whole_at_end": s3.whole_at_end,
            }),
        );
    }
    Ok(finish(m, if ok { "completed" } else { "timeout" }, &meter))
}

/// Datagrams (and bytes) delivered in a quiet minute after warm-up, and
/// how many of them crossed regions.
fn quiet_traffic(p: &Params, r: Regions) -> Result<(u64, u64, u64, u64), SimError> {
    let mut sim = scenario::sim(p, p.seed, 0.0)?;
    let mut views = Views::new(p.n);
    let Some(start) = scenario::warm_up_for(p, &mut sim, &mut views)? else { return Ok((0, 0, 0, 0)) };
    let counts = Rc::new(Cell::new((0u64, 0u64, 0u64, 0u64)));
    let c = Rc::clone(&counts);
    sim.set_tap(Box::new(move |_, to, from, bytes: &[u8]| {
        let (mut cross, mut total, mut cross_bytes, mut all) = c.get();
        let len = bytes.len() as u64;
        total += 1;
        all += len;
        if r.of(to) != r.of(from) {
            cross += 1;
            cross_bytes += len;
        }
        c.set((cross, total, cross_bytes, all));
    }));
    sim.run_until(start + QUIET_MS, &mut |_, _, _: &lapswim_core::Event| Flow::Continue);
    Ok(counts.get())
}
