//! The `spread` scenario: how fast one membership update reaches the
//! cluster, in gossip rounds and in ms.

use lapswim_core::internals::Random;
use lapswim_core::{Event, OwnedInput, Swim};
use serde_json::{Value, json};

use crate::net::{Command, Flow, SimError, SimRng, name_index};
use crate::process::Meter;
use crate::scenario::{Params, ScenarioNode, finish, header_of, summary, warm_up};
use crate::views::Views;

/// Time between two injected updates, ms.
pub const GAP_MS: u64 = 15_000;
/// How long after the last injection stragglers are waited for, ms.
pub const TAIL_MS: u64 = 60_000;
/// The shares of the cluster reported.
pub const MARKS: [(&str, f64); 4] = [("50", 0.5), ("99", 0.99), ("9999", 0.9999), ("100", 1.0)];

/// One injected update: who, when, and when each share was reached.
#[derive(Clone, Debug)]
struct Update {
    node: usize,
    at: u64,
    reached: Vec<bool>,
    count: usize,
    marks: [Option<u64>; 4],
}

impl Update {
    /// Notes, for every share whose node count `needed` it has just
    /// reached, that it took `since` ms.
    fn mark(&mut self, needed: &[usize], since: u64) {
        for (k, &need) in needed.iter().enumerate() {
            if self.marks[k].is_none() && self.count >= need {
                self.marks[k] = Some(since);
            }
        }
    }
}

/// `spread`: warm up, then `runs` times (15 s apart) a random node changes
/// its metadata — one alive update at a new incarnation — and every other
/// node reports it (`Event::Updated`). Reports, over the runs, when 50 %,
/// 99 %, 99.99 % and 100 % of the nodes (the originator included) had it,
/// in ms and in gossip rounds (ms / the gossip interval, rounded up).
pub fn spread(p: &Params, runs: usize) -> Result<Value, SimError> {
    spread_of::<Swim<SimRng>>(p, runs)
}

/// [`spread`] on implementation `N`.
pub fn spread_of<N: ScenarioNode>(p: &Params, runs: usize) -> Result<Value, SimError> {
    let meter = Meter::start();
    let mut sim = N::cluster(&Params { regions: None, ..p.clone() }, p.seed, 0.0)?;
    let mut views = Views::new(p.n);
    let Some(start) = warm_up(&mut sim, &mut views)? else {
        return Ok(finish(header_of::<N>("spread", p, p.seed, 0.0), "timeout", &meter));
    };
    let mut updates: Vec<Update> = Vec::with_capacity(runs);
    for k in 0..runs {
        let node = Random::below(sim.rng(), p.n);
        let at = start + k as u64 * GAP_MS;
        let meta = format!("spread-{k}").into_bytes();
        sim.schedule(at, Command::Input { node, input: OwnedInput::SetMeta { meta } })?;
        let mut reached = vec![false; p.n];
        reached[node] = true;
        updates.push(Update { node, at, reached, count: 1, marks: [None; 4] });
    }
    let n = p.n;
    let needed: Vec<usize> = MARKS.iter().map(|(_, f)| ((f * n as f64).ceil() as usize).clamp(1, n)).collect();
    // Which update each node is waiting for, by originator: the latest
    // injected one (updates from one node do not overlap: 15 s apart and
    // each is over long before the same node is picked again, or it is
    // superseded, which the count then shows).
    let end = start + runs as u64 * GAP_MS + TAIL_MS;
    sim.run_until(end, &mut |t: u64, o: usize, e: &Event| {
        let Event::Updated { name, .. } = e else { return Flow::Continue };
        let Some(x) = name_index(name.as_str()) else { return Flow::Continue };
        // The latest update of x injected by now.
        if let Some(u) = updates.iter_mut().rev().find(|u| u.node == x && u.at <= t)
            && !u.reached[o]
        {
            u.reached[o] = true;
            u.count += 1;
            u.mark(&needed, t - u.at);
        }
        Flow::Continue
    });
    // A single-node cluster is reached at once.
    for u in &mut updates {
        u.mark(&needed, 0);
    }
    let round = N::gossip_interval_ms(p).max(1);
    let mut m = header_of::<N>("spread", p, p.seed, 0.0);
    m.insert("runs".into(), json!(runs));
    m.insert("gossip_interval_ms".into(), json!(round));
    for (k, (label, _)) in MARKS.iter().enumerate() {
        let ms: Vec<Option<u64>> = updates.iter().map(|u| u.marks[k]).collect();
        let rounds: Vec<Option<u64>> = ms.iter().map(|v| v.map(|ms| ms.div_ceil(round))).collect();
        m.insert(format!("rounds_{label}"), median_max(&rounds));
        m.insert(format!("rounds_{label}_ms"), median_max(&ms));
    }
    let missed = updates.iter().filter(|u| u.count < n).count();
    m.insert("runs_not_reaching_all".into(), json!(missed));
    Ok(finish(m, if missed == 0 { "completed" } else { "incomplete" }, &meter))
}

/// `{median, max}` of per-run figures (a run that never got there makes
/// `max` null).
fn median_max(runs: &[Option<u64>]) -> Value {
    let s = summary(runs);
    let max = if runs.iter().any(Option::is_none) { Value::Null } else { s["max"].clone() };
    json!({ "median": s["median"], "max": max })
}
