//! Scenarios of the production extensions: a healed partition, rolling
//! restarts, application broadcasts and a key rotation. Each prints one JSON line in the
//! style of `docs/scenarios.md`.

use std::collections::BTreeMap;

use lapswim_core::internals::Random;
use lapswim_core::{Event, Identity, Key, KeyringOp, MemberState, OwnedInput, Swim};
use serde_json::{Value, json};

use crate::net::{Command, Flow, NetConfig, NodeSpec, Sim, SimError, mix, name_index};
use crate::process::Meter;
use crate::scenario::{Params, converge, finish, header, observe, summary, warm_up};
use crate::views::Views;

/// How long the two halves stay cut: longer than the longest suspicion.
pub const PARTITION_MS: u64 = 120_000;
/// Cap on the wait for a healed partition to merge.
pub const HEAL_CAP_MS: u64 = 300_000;
/// Time between two nodes' restarts in a rolling restart.
pub const RESTART_GAP_MS: u64 = 2_000;
/// How long a restarting node is down.
pub const DOWN_MS: u64 = 500;
/// Time between two broadcasts.
pub const BROADCAST_GAP_MS: u64 = 100;
/// Time after the last broadcast for the stragglers.
pub const BROADCAST_TAIL_MS: u64 = 60_000;

pub(crate) fn sim(p: &Params, seed: u64) -> Result<Sim, SimError> {
    Sim::new(
        p.n,
        p.config.clone(),
        NetConfig { seed, latency_ms: p.latency_ms, jitter_ms: p.jitter_ms, ..NetConfig::default() },
    )
}

/// One partition run: from the heal until every node sees all alive.
pub fn partition_run(p: &Params, seed: u64) -> Result<Option<u64>, SimError> {
    let mut sim = sim(p, seed)?;
    let mut views = Views::new(p.n);
    let Some(start) = warm_up(&mut sim, &mut views)? else { return Ok(None) };
    let half = p.n / 2;
    let (a, b): (Vec<usize>, Vec<usize>) = ((0..half).collect(), (half..p.n).collect());
    sim.schedule(start, Command::Partition { id: 1, from: a, to: b, both: true })?;
    let heal = start + PARTITION_MS;
    sim.schedule(heal, Command::Heal)?;
    observe(&mut sim, &mut views, heal);
    let healed = converge(&mut sim, &mut views, heal + HEAL_CAP_MS);
    Ok(healed.then(|| sim.now() - heal))
}

/// `partition`: halves cut apart for 120 s, then healed, `runs` times.
pub fn partition(p: &Params, runs: usize) -> Result<Value, SimError> {
    let meter = Meter::start();
    let results: Vec<Option<u64>> =
        (0..runs).map(|r| partition_run(p, mix(p.seed, 2000 + r as u64))).collect::<Result<_, _>>()?;
    let healed = results.iter().flatten().count();
    let mut m = header("partition", p, p.seed, 0.0);
    m.insert("runs".into(), json!(runs));
    m.insert("partition_ms".into(), json!(PARTITION_MS));
    m.insert("healed_runs".into(), json!(healed));
    m.insert("heal_ms".into(), summary(&results));
    Ok(finish(m, if healed == runs { "healed" } else { "split" }, &meter))
}

/// `churn`: `rounds` rolling restarts of every node (same name; every
/// other node at a new address), then the reap time; the live table sizes
/// and failures of live nodes.
pub fn churn(p: &Params, rounds: usize) -> Result<Value, SimError> {
    let meter = Meter::start();
    let mut sim = sim(p, p.seed)?;
    let mut views = Views::new(p.n);
    let Some(start) = warm_up(&mut sim, &mut views)? else {
        return Ok(finish(header("churn", p, p.seed, 0.0), "timeout", &meter));
    };
    let round_ms = RESTART_GAP_MS * p.n as u64;
    // When each node goes down and comes back, to tell a failure of a node
    // that was up from one of a node that was down.
    let mut changes: BTreeMap<u64, Vec<(usize, bool)>> = BTreeMap::new();
    for r in 0..rounds {
        for i in 0..p.n {
            let at = start + r as u64 * round_ms + i as u64 * RESTART_GAP_MS;
            let seed = (i + 1 + Random::below(sim.rng(), p.n.max(2) - 1)) % p.n;
            sim.schedule(at, Command::Crash(i))?;
            sim.schedule(at + DOWN_MS, Command::Restart { node: i, seeds: vec![seed], new_addr: i % 2 == 0 })?;
            changes.entry(at).or_default().push((i, true));
            changes.entry(at + DOWN_MS).or_default().push((i, false));
        }
    }
    let restarts = (rounds * p.n) as u64;
    let reap = p.config.dead_member_retention.as_millis() + 30_000;
    // After the last restart, the reap time with every node up.
    changes.insert(start + rounds as u64 * round_ms + reap + 1, Vec::new());
    let mut down = vec![false; p.n];
    let mut false_failures = 0u64;
    for (&at, change) in &changes {
        sim.run_until(at.saturating_sub(1), &mut |_, _, e: &Event| {
            if let Event::Failed { name, .. } = e
                && name_index(name.as_str()).is_some_and(|x| !down[x])
            {
                false_failures += 1;
            }
            Flow::Continue
        });
        for &(i, is_down) in change {
            down[i] = is_down;
        }
    }
    let mut sizes = Vec::with_capacity(p.n);
    let mut duplicates = 0usize;
    let mut entries_max = 0usize;
    for i in 0..p.n {
        let node = sim.node(i)?;
        let members: Vec<_> = node.members().collect();
        let live = members.iter().filter(|m| matches!(m.state, MemberState::Alive | MemberState::Suspect)).count();
        let mut names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        duplicates += members.len() - names.len();
        entries_max = entries_max.max(members.len());
        sizes.push(live);
    }
    let mut m = header("churn", p, p.seed, 0.0);
    m.insert("rounds".into(), json!(rounds));
    m.insert("restarts".into(), json!(restarts));
    m.insert("moved_every_other".into(), json!(true));
    m.insert("reap_wait_ms".into(), json!(reap));
    m.insert("table_size_min".into(), json!(sizes.iter().min()));
    m.insert("table_size_max".into(), json!(sizes.iter().max()));
    m.insert("entries_max".into(), json!(entries_max));
    m.insert("duplicates".into(), json!(duplicates));
    m.insert("false_failures".into(), json!(false_failures));
    let whole = sizes.iter().all(|&s| s == p.n);
    Ok(finish(m, if whole { "completed" } else { "diverged" }, &meter))
}

/// One broadcast's fate.
#[derive(Default)]
struct Fate {
    sent_at: u64,
    delivered: Vec<bool>,
    count: usize,
    last_at: u64,
}

/// `broadcast`: `count` broadcasts from random nodes, one every 100 ms, at
/// `loss`; with `churn`, a random node also changes its metadata every
/// 100 ms so membership updates compete for the same datagrams.
pub fn broadcast(p: &Params, loss: f64, count: usize, churn: bool) -> Result<Value, SimError> {
    let meter = Meter::start();
    let mut sim = sim(p, p.seed)?;
    let mut views = Views::new(p.n);
    let Some(start) = warm_up(&mut sim, &mut views)? else {
        return Ok(finish(header("broadcast", p, p.seed, loss), "timeout", &meter));
    };
    sim.schedule(start, Command::SetLoss(loss))?;
    for k in 0..count {
        let at = start + 1 + k as u64 * BROADCAST_GAP_MS;
        let node = Random::below(sim.rng(), p.n);
        let payload = format!("event-{k}").into_bytes();
        let input = OwnedInput::UserEvent { name: "event".into(), payload, coalesce: false };
        sim.schedule(at, Command::Input { node, input })?;
        if churn {
            let who = Random::below(sim.rng(), p.n);
            let meta = format!("v{k}").into_bytes();
            sim.schedule(at + BROADCAST_GAP_MS / 2, Command::Input { node: who, input: OwnedInput::SetMeta { meta } })?;
        }
    }
    let end = start + count as u64 * BROADCAST_GAP_MS + BROADCAST_TAIL_MS;
    let mut fates: BTreeMap<(String, u64), Fate> = BTreeMap::new();
    let mut duplicates = 0u64;
    let mut false_failures = 0u64;
    let n = p.n;
    sim.run_until(end, &mut |t, node, e: &Event| {
        match e {
            Event::User { from, ltime, .. } => {
                let f = fates.entry((from.as_str().to_string(), *ltime)).or_insert_with(|| Fate {
                    sent_at: t,
                    delivered: vec![false; n],
                    ..Fate::default()
                });
                if f.delivered[node] {
                    duplicates += 1;
                } else {
                    f.delivered[node] = true;
                    f.count += 1;
                    f.last_at = t;
                }
            }
            Event::Failed { .. } => false_failures += 1,
            _ => {}
        }
        Flow::Continue
    });
    let deliveries: usize = fates.values().map(|f| f.count).sum();
    let mut latencies: Vec<u64> = fates.values().filter(|f| f.count == n).map(|f| f.last_at - f.sent_at).collect();
    latencies.sort_unstable();
    let pct = |q: f64| crate::serf::pct(&latencies, q);
    let ratio = deliveries as f64 / (count * n) as f64;
    let mut m = header("broadcast", p, p.seed, loss);
    m.insert("broadcasts".into(), json!(count));
    m.insert("membership_churn".into(), json!(churn));
    m.insert("delivery_ratio".into(), json!((ratio * 1e6).round() / 1e6));
    m.insert("reached_all".into(), json!(latencies.len()));
    m.insert("duplicates".into(), json!(duplicates));
    m.insert("latency_p50_ms".into(), json!(pct(0.5)));
    m.insert("latency_p99_ms".into(), json!(pct(0.99)));
    m.insert("false_failures".into(), json!(false_failures));
    Ok(finish(m, "completed", &meter))
}

/// The cluster's key before a rotation.
pub const OLD_KEY: Key = Key::new([0x11; 32]);
/// The key a rotation installs.
pub const NEW_KEY: Key = Key::new([0x22; 32]);
/// Each step of a rotation reaches every node within this window (a
/// rolling roll-out, node by node in random order).
pub const ROTATE_STEP_MS: u64 = 10_000;
/// Time between two steps: enough for the previous one to be everywhere.
pub const ROTATE_GAP_MS: u64 = 20_000;

/// A cluster of `p.n` members, every one sealed with [`OLD_KEY`].
pub(crate) fn sealed_sim(p: &Params) -> Result<Sim, SimError> {
    let config = p.config.clone();
    let net = NetConfig { seed: p.seed, latency_ms: p.latency_ms, jitter_ms: p.jitter_ms, ..NetConfig::default() };
    Sim::with_nodes(
        p.n,
        net,
        Box::new(move |spec: NodeSpec| {
            let mut swim = Swim::new(config.clone(), Identity::new(spec.name, spec.addr), spec.rng)?;
            swim.install_key(OLD_KEY)?;
            Ok(swim)
        }),
    )
}

/// Key rotation while the cluster runs at `loss`: every node starts sealed
/// with [`OLD_KEY`]; then the documented procedure, each step rolled out
/// node by node over [`ROTATE_STEP_MS`]: install [`NEW_KEY`] everywhere,
/// make it the primary everywhere, remove the old key everywhere. Reports
/// failures of live members, packets rejected, and whether every node sees
/// every node alive at the end.
pub fn rotate(p: &Params, loss: f64) -> Result<Value, SimError> {
    let meter = Meter::start();
    let mut sim = sealed_sim(p)?;
    let mut views = Views::new(p.n);
    let Some(start) = warm_up(&mut sim, &mut views)? else {
        return Ok(finish(header("rotate", p, p.seed, loss), "timeout", &meter));
    };
    sim.schedule(start, Command::SetLoss(loss))?;
    let steps = [KeyringOp::Install(NEW_KEY), KeyringOp::Use(NEW_KEY), KeyringOp::Remove(OLD_KEY)];
    let mut at = start + ROTATE_GAP_MS;
    for op in steps {
        let mut order: Vec<usize> = (0..p.n).collect();
        (sim.rng() as &mut dyn Random).shuffle(&mut order);
        for (k, &i) in order.iter().enumerate() {
            let t = at + k as u64 * ROTATE_STEP_MS / p.n as u64;
            sim.schedule(t, Command::Input { node: i, input: OwnedInput::Keyring(op) })?;
        }
        at += ROTATE_STEP_MS + ROTATE_GAP_MS;
    }
    let end = at + 60_000;
    let mut false_failures = 0u64;
    sim.run_until(end, &mut |_, node, e: &Event| {
        views.apply(node, e);
        if matches!(e, Event::Failed { .. }) {
            false_failures += 1;
        }
        Flow::Continue
    });
    let mut rejected = 0u64;
    let mut on_new_key_only = true;
    for i in 0..p.n {
        let node = sim.node(i)?;
        rejected += node.stats().rejected_total();
        on_new_key_only &= node.keys() == [NEW_KEY];
    }
    let whole = views.alive_pairs() == views.all_pairs();
    let mut m = header("rotate", p, p.seed, loss);
    m.insert("steps".into(), json!(["install", "use", "remove"]));
    m.insert("step_rollout_ms".into(), json!(ROTATE_STEP_MS));
    m.insert("step_gap_ms".into(), json!(ROTATE_GAP_MS));
    m.insert("false_failures".into(), json!(false_failures));
    m.insert("rejected_packets".into(), json!(rejected));
    m.insert("on_new_key_only".into(), json!(on_new_key_only));
    m.insert("whole_at_end".into(), json!(whole));
    let ok = whole && on_new_key_only && false_failures == 0;
    Ok(finish(m, if ok { "completed" } else { "diverged" }, &meter))
}
