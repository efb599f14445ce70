//! The `gray` scenario: a long run under gray failures — pauses, loss and
//! a node that cannot hear — counting how often a healthy node is
//! declared failed.

use lapswim_core::Event;
use lapswim_core::internals::Random;
use serde_json::json;

use crate::chart::Chart;
use crate::net::{Command, NetConfig, Sim, SimError, name_index};
use crate::process::Meter;
use crate::scenario::{Params, Report, finish, header, refutations, run_in_bins, warm_up};
use crate::views::Views;

/// Share of nodes that pause now and then.
pub const PAUSING_SHARE: f64 = 0.10;
/// Shortest and longest pause, ms.
pub const PAUSE_MS: (u64, u64) = (500, 5_000);
/// Shortest and longest time between two pauses of one node, ms.
pub const PAUSE_GAP_MS: (u64, u64) = (10_000, 60_000);
/// Random loss on every link.
pub const LOSS: f64 = 0.05;
/// How long each node in turn is receive-deaf, ms.
pub const DEAF_MS: u64 = 60_000;
/// Width of the chart's bins, ms.
pub const BIN_MS: u64 = 60_000;

/// `gray`: warm up, then `hours` of 5 % loss, 10 % of nodes pausing for
/// 0.5–5 s every 10–60 s, and one node at a time receive-deaf for 60 s
/// (in random order, back to back). A failure declared of a node that is
/// not deaf, and has not been deaf within the longest suspicion timeout
/// plus a minute, is false: pauses and loss are what a healthy node lives
/// through.
///
/// The chart has suspicions raised and refutations made per minute.
pub fn gray(p: &Params, hours: f64) -> Result<Report, SimError> {
    let meter = Meter::start();
    let net = NetConfig { seed: p.seed, latency_ms: p.latency_ms, jitter_ms: p.jitter_ms, ..NetConfig::default() };
    let mut sim = Sim::new(p.n, p.config.clone(), net)?;
    let mut views = Views::new(p.n);
    let span = (hours.max(0.0) * 3_600_000.0) as u64;
    let Some(start) = warm_up(&mut sim, &mut views)? else {
        return Ok(Report { line: finish(header("gray", p, p.seed, LOSS), "timeout", &meter), chart: None });
    };
    let end = start + span;
    sim.schedule(start, Command::SetLoss(LOSS))?;
    let pausing = ((p.n as f64 * PAUSING_SHARE).round() as usize).min(p.n);
    let mut order: Vec<usize> = (0..p.n).collect();
    (sim.rng() as &mut dyn Random).shuffle(&mut order);
    let mut pauses = 0u64;
    for &node in &order[..pausing] {
        let mut at = start + uniform(&mut sim, PAUSE_GAP_MS);
        while at < end {
            let ms = uniform(&mut sim, PAUSE_MS);
            sim.schedule(at, Command::Pause { node, ms })?;
            pauses += 1;
            at += ms + uniform(&mut sim, PAUSE_GAP_MS);
        }
    }
    // Who is deaf in each window.
    let mut deaf: Vec<usize> = Vec::new();
    let mut at = start;
    while at < end {
        let node = Random::below(sim.rng(), p.n);
        sim.schedule(at, Command::SetDeaf { node, deaf: true })?;
        sim.schedule((at + DEAF_MS).min(end), Command::SetDeaf { node, deaf: false })?;
        deaf.push(node);
        at += DEAF_MS;
    }
    let c = &p.config;
    let suspicion_max = lapswim_core::internals::suspicion_min(c.suspicion_mult.get(), p.n, c.probe_interval)
        .as_millis()
        * u64::from(c.suspicion_max_timeout_mult.get());
    let grace = suspicion_max + 60_000;
    // Whether `x` was deaf at any time in [t - grace, t].
    let excused = |x: usize, t: u64| {
        let first = t.saturating_sub(grace).saturating_sub(start) / DEAF_MS;
        let last = t.saturating_sub(start) / DEAF_MS;
        (first..=last).any(|w| deaf.get(w as usize) == Some(&x))
    };
    let refuted_before = refutations(&sim);
    let (mut false_failures, mut deaf_failures) = (0u64, 0u64);
    let bins = run_in_bins(&mut sim, end, BIN_MS, &mut |t, node, e: &Event| {
        views.apply(node, e);
        if let Event::Failed { name, .. } = e
            && t >= start
        {
            match name_index(name.as_str()) {
                Some(x) if excused(x, t) => deaf_failures += 1,
                _ => false_failures += 1,
            }
        }
    });
    let suspicions: u64 = bins.iter().map(|b| b.0).sum();
    let node_periods = p.n as u64 * span / p.config.probe_interval.as_millis().max(1);
    let mut m = header("gray", p, p.seed, LOSS);
    m.insert("hours".into(), json!(hours));
    m.insert("node_periods".into(), json!(node_periods));
    m.insert("false_failures".into(), json!(false_failures));
    m.insert("suspicions".into(), json!(suspicions));
    m.insert("refutations".into(), json!(refutations(&sim) - refuted_before));
    m.insert("deaf_failures".into(), json!(deaf_failures));
    m.insert("pausing_nodes".into(), json!(pausing));
    m.insert("pauses".into(), json!(pauses));
    m.insert("deaf_windows".into(), json!(deaf.len()));
    m.insert("whole_at_end".into(), json!(views.up_pairs() == views.all_pairs()));
    let outcome = if false_failures == 0 { "completed" } else { "false_failures" };
    Ok(Report { line: finish(m, outcome, &meter), chart: Some(chart(p.n, &bins)) })
}

/// A uniform draw in `lo..=hi` from the network's generator.
fn uniform(sim: &mut Sim, (lo, hi): (u64, u64)) -> u64 {
    lo + Random::below(sim.rng(), (hi - lo + 1) as usize) as u64
}

fn chart(n: usize, bins: &[(u64, u64)]) -> Chart {
    let minute = |k: usize| (k as f64 + 1.0) * BIN_MS as f64 / 60_000.0;
    Chart::new(format!("gray failures, n = {n}"), "minutes into the run", "per minute, whole cluster")
        .line("suspicions raised", bins.iter().enumerate().map(|(k, b)| (minute(k), b.0 as f64)).collect())
        .line("refutations", bins.iter().enumerate().map(|(k, b)| (minute(k), b.1 as f64)).collect())
}
