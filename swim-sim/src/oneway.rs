//! The `oneway` scenario: half of the cluster cannot send to the other
//! half, while the other half's packets still reach it.
//!
//! Each half rightly fails the other: neither can exchange packets both
//! ways with any member across the cut. No member may fail a member it can
//! still exchange packets with both ways, first-hand or from gossip.

use lapswim_core::Event;
use serde_json::{Value, json};

use crate::net::{Command, Flow, NetConfig, Sim, SimError, name_index};
use crate::process::Meter;
use crate::resilience::HEAL_CAP_MS;
use crate::scenario::{Params, finish, header, warm_up};
use crate::views::{Belief, Views};

/// `oneway`: warm up; then for `seconds` the upper half (B) cannot send
/// to the lower half (A) while A's packets reach B; then the cut heals.
///
/// `false_failures` counts `Failed` events at a member about a member it
/// could exchange packets with both ways when the event came: one of its
/// own half during the cut, anyone after the heal. `cut_off_failed` is
/// true when, at the end of the cut, every member of each half held every
/// member of the other failed. `heal_ms` is the time from the heal until
/// every member sees every member alive.
pub fn oneway(p: &Params, seconds: u64) -> Result<Value, SimError> {
    let meter = Meter::start();
    let net = NetConfig { seed: p.seed, latency_ms: p.latency_ms, jitter_ms: p.jitter_ms, ..NetConfig::default() };
    let mut sim = Sim::new(p.n, p.config.clone(), net)?;
    let mut views = Views::new(p.n);
    let mut m = header("oneway", p, p.seed, 0.0);
    m.insert("seconds".into(), json!(seconds));
    let Some(start) = warm_up(&mut sim, &mut views)? else { return Ok(finish(m, "timeout", &meter)) };
    let half = p.n / 2;
    let (a, b): (Vec<usize>, Vec<usize>) = ((0..half).collect(), (half..p.n).collect());
    sim.schedule(start, Command::Partition { id: 1, from: b, to: a, both: false })?;
    let heal = start + seconds.saturating_mul(1000);
    sim.schedule(heal, Command::HealPartition(1))?;
    let same_side = |i: usize, j: usize| (i < half) == (j < half);
    let mut false_failures = 0u64;
    let mut cross_failures = 0u64;
    sim.run_until(heal.saturating_sub(1), &mut |t, o, e: &Event| {
        views.apply(o, e);
        if let Event::Failed { name, .. } = e
            && t >= start
            && let Some(x) = name_index(name.as_str())
        {
            if same_side(o, x) { false_failures += 1 } else { cross_failures += 1 }
        }
        Flow::Continue
    });
    let cut_off_failed =
        (0..p.n).all(|o| (0..p.n).filter(|&x| !same_side(o, x)).all(|x| views.get(o, x) == Belief::Dead));
    // After the heal every pair can talk both ways: any failure is false.
    let mut after = 0u64;
    let all = views.all_pairs();
    let healed_at = if views.alive_pairs() == all {
        Some(heal)
    } else {
        sim.run_until(heal + HEAL_CAP_MS, &mut |_, o, e: &Event| {
            views.apply(o, e);
            if matches!(e, Event::Failed { .. }) {
                after += 1;
            }
            if views.alive_pairs() == all { Flow::Stop } else { Flow::Continue }
        });
        (views.alive_pairs() == all).then(|| sim.now())
    };
    let healed = healed_at.is_some();
    m.insert("false_failures".into(), json!(false_failures + after));
    m.insert("cut_off_failed".into(), json!(cut_off_failed));
    m.insert("cross_failures".into(), json!(cross_failures));
    m.insert("heal_ms".into(), json!(healed_at.map(|t| t - heal)));
    m.insert("whole_at_end".into(), json!(healed));
    let outcome = if false_failures + after == 0 && cut_off_failed && healed { "completed" } else { "failed" };
    Ok(finish(m, outcome, &meter))
}
