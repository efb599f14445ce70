//! Scenarios of serf's layer: queries with answers and relays, named
//! events under loss and churn, and a key rotation driven by internal
//! queries. Each prints one JSON line (docs/scenarios.md).

use std::collections::{BTreeMap, BTreeSet};

use lapswim_core::internals::Random;
use lapswim_core::{Event, KeyringOp, OwnedInput, QueryId, QueryOptions};
use serde_json::{Value, json};

use crate::net::{Command, Flow, SimError, mix, name_index};
use crate::process::Meter;
use crate::resilience::{NEW_KEY, OLD_KEY, sealed_sim, sim};
use crate::scenario::{Params, finish, header, warm_up};
use crate::views::Views;

/// Time between two events in `events`.
pub const EVENT_GAP_MS: u64 = 100;
/// Time after the last event for stragglers (two sync periods).
pub const EVENT_TAIL_MS: u64 = 60_000;
/// In the churn half of `events`, a node crashes this often...
pub const CHURN_EVERY_MS: u64 = 2_000;
/// ...and comes back this much later.
pub const CHURN_DOWN_MS: u64 = 5_000;
/// An event sent this long before a process joined is the past to it, not
/// one still in flight.
pub const IN_FLIGHT_MS: u64 = 1_000;
/// Time between the steps of `rotate --via-queries`.
pub const QUERY_STEP_GAP_MS: u64 = 20_000;

/// The `q` quantile of `sorted` (nearest rank); `None` when it is empty.
pub(crate) fn pct(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[i])
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 1.0 } else { (a as f64 / b as f64 * 1e6).round() / 1e6 }
}

/// What one query run saw.
#[derive(Default)]
struct QueryRun {
    raised: usize,
    responses: usize,
    duplicates: usize,
    latencies: Vec<u64>,
    done: bool,
    timeout_ms: u64,
}

/// One run of `query`: a random origin asks every member; each answers
/// the moment it raises the query.
fn query_run(p: &Params, seed: u64, loss: f64, relay_factor: u8) -> Result<Option<QueryRun>, SimError> {
    let mut sim = sim(p, seed)?;
    let mut views = Views::new(p.n);
    let Some(start) = warm_up(&mut sim, &mut views)? else { return Ok(None) };
    sim.schedule(start, Command::SetLoss(loss))?;
    let origin = Random::below(sim.rng(), p.n);
    let ask_at = start + 1_000;
    let options = QueryOptions::default().with_relay_factor(relay_factor);
    let input = OwnedInput::Query { name: "load".into(), payload: b"?".to_vec(), options };
    sim.schedule(ask_at, Command::Input { node: origin, input })?;
    let mut run = QueryRun::default();
    let mut raised_at: BTreeSet<usize> = BTreeSet::new();
    let mut answered: BTreeSet<usize> = BTreeSet::new();
    let mut done_at = None;
    // The deadline is serf's default, a few seconds at most: run well past it.
    let end = ask_at + 120_000;
    loop {
        let mut to_answer: Vec<(usize, QueryId)> = Vec::new();
        let stopped = sim.run_until(end, &mut |t, node, e: &Event| {
            match e {
                Event::Query { id, .. } => {
                    if !raised_at.insert(node) {
                        run.duplicates += 1;
                    }
                    to_answer.push((node, *id));
                }
                Event::QueryResponse { from, .. } if node == origin && done_at.is_none() => {
                    let i = name_index(from.as_str()).unwrap_or(usize::MAX);
                    if answered.insert(i) {
                        run.latencies.push(t - ask_at);
                    } else {
                        run.duplicates += 1;
                    }
                }
                Event::QueryDone { .. } if node == origin => {
                    done_at = Some(t);
                    return Flow::Stop;
                }
                _ => {}
            }
            if to_answer.is_empty() { Flow::Continue } else { Flow::Stop }
        });
        let now = sim.now();
        for (node, id) in to_answer {
            let payload = format!("load-{node}").into_bytes();
            sim.schedule(now, Command::Input { node, input: OwnedInput::Respond { id, payload } })?;
        }
        if done_at.is_some() || stopped == crate::net::Stopped::Deadline {
            break;
        }
    }
    run.raised = raised_at.len();
    run.responses = answered.len();
    run.done = done_at.is_some();
    run.timeout_ms = done_at.map_or(0, |t| t - ask_at);
    Ok(Some(run))
}

/// `query`: `runs` times, a random origin queries every member at `loss`
/// and every member answers at once; who raised it, how many answers
/// reached the origin before its deadline, duplicates and latencies.
pub fn query(p: &Params, loss: f64, relay_factor: u8, runs: usize) -> Result<Value, SimError> {
    let meter = Meter::start();
    let mut raised = 0;
    let mut responses = 0;
    let mut duplicates = 0;
    let mut latencies = Vec::new();
    let mut done = 0;
    let mut completed = 0;
    let mut timeout_ms = 0;
    for r in 0..runs {
        let Some(run) = query_run(p, mix(p.seed, 3000 + r as u64), loss, relay_factor)? else { continue };
        completed += 1;
        raised += run.raised;
        responses += run.responses;
        duplicates += run.duplicates;
        latencies.extend(run.latencies);
        done += usize::from(run.done);
        timeout_ms = timeout_ms.max(run.timeout_ms);
    }
    latencies.sort_unstable();
    let asked = completed * p.n;
    let mut m = header("query", p, p.seed, loss);
    m.insert("relay_factor".into(), json!(relay_factor));
    m.insert("runs".into(), json!(runs));
    m.insert("delivered_ratio".into(), json!(ratio(raised, asked)));
    m.insert("response_ratio".into(), json!(ratio(responses, asked)));
    m.insert("duplicates".into(), json!(duplicates));
    m.insert("latency_p50_ms".into(), json!(pct(&latencies, 0.5)));
    m.insert("latency_p99_ms".into(), json!(pct(&latencies, 0.99)));
    m.insert("timeout_ms".into(), json!(timeout_ms));
    m.insert("done_runs".into(), json!(done));
    let ok = completed == runs && done == runs;
    Ok(finish(m, if ok { "completed" } else { "incomplete" }, &meter))
}

/// One event's fate.
struct Fate {
    sent_at: u64,
    /// Nodes in the cluster when it was sent that stayed up to the end.
    expected: Vec<bool>,
    /// When each node's latest process delivered it.
    delivered: Vec<Option<u64>>,
}

/// `events`: 1,000 named events (one every 100 ms) from random members at
/// `loss`; during the second half a node crashes every 2 s and comes back
/// (a fresh process, same name) 5 s later. An event counts for the nodes
/// that were members when it was sent and stayed up to the end.
pub fn events(p: &Params, loss: f64, count: usize) -> Result<Value, SimError> {
    let meter = Meter::start();
    let mut sim = sim(p, p.seed)?;
    let mut views = Views::new(p.n);
    let Some(start) = warm_up(&mut sim, &mut views)? else {
        return Ok(finish(header("events", p, p.seed, loss), "timeout", &meter));
    };
    sim.schedule(start, Command::SetLoss(loss))?;
    // Who is down when: crash and restart times per node.
    let churn_from = start + (count / 2) as u64 * EVENT_GAP_MS;
    let churn_to = start + count as u64 * EVENT_GAP_MS;
    let mut down: BTreeMap<usize, Vec<(u64, u64)>> = BTreeMap::new();
    let mut t = churn_from;
    while t + CHURN_DOWN_MS < churn_to {
        let node = Random::below(sim.rng(), p.n);
        if down.get(&node).is_none_or(|spans| spans.iter().all(|&(_, back)| back + 1_000 < t)) {
            let seed = (node + 1 + Random::below(sim.rng(), p.n - 1)) % p.n;
            sim.schedule(t, Command::Crash(node))?;
            sim.schedule(t + CHURN_DOWN_MS, Command::Restart { node, seeds: vec![seed], new_addr: false })?;
            down.entry(node).or_default().push((t, t + CHURN_DOWN_MS));
        }
        t += CHURN_EVERY_MS;
    }
    let restarts: usize = down.values().map(Vec::len).sum();
    // A node that crashes at some point loses what it held: it is expected
    // to hold only events sent after it came back and joined.
    let member_from = |node: usize| down.get(&node).and_then(|s| s.last()).map_or(0, |&(_, back)| back);
    let mut senders = Vec::with_capacity(count);
    for k in 0..count {
        let at = start + 1 + k as u64 * EVENT_GAP_MS;
        // The sender is up (and stays up long enough to send it).
        let node = loop {
            let n = Random::below(sim.rng(), p.n);
            if down.get(&n).is_none_or(|s| s.iter().all(|&(c, b)| at + 1_000 < c || at > b + 2_000)) {
                break n;
            }
        };
        senders.push((at, node));
        let input = OwnedInput::UserEvent {
            name: "deploy".into(),
            payload: format!("e{k}").into_bytes(),
            coalesce: k % 2 == 0,
        };
        sim.schedule(at, Command::Input { node, input })?;
    }
    let mut joined_at: Vec<u64> = vec![0; p.n];
    let mut fates: BTreeMap<String, Fate> = BTreeMap::new();
    let mut duplicates = 0u64;
    // Each process (a node between two restarts) may deliver an event once.
    let mut seen: BTreeSet<(usize, u64, String)> = BTreeSet::new();
    let life =
        |node: usize, t: u64| down.get(&node).map_or(0, |s| s.iter().filter(|&&(_, back)| back <= t).count() as u64);
    let mut replayed = 0u64;
    let end = churn_to + EVENT_TAIL_MS;
    let n = p.n;
    sim.run_until(end, &mut |t, node, e: &Event| {
        match e {
            Event::JoinCompleted { .. } => joined_at[node] = t,
            Event::User { payload, .. } => {
                let key = String::from_utf8_lossy(payload).into_owned();
                if !seen.insert((node, life(node, t), key.clone())) {
                    duplicates += 1;
                    return Flow::Continue;
                }
                let f = fates.entry(key).or_insert_with(|| Fate {
                    sent_at: t,
                    expected: vec![false; n],
                    delivered: vec![None; n],
                });
                if life(node, t) > 0 && f.sent_at + IN_FLIGHT_MS < joined_at[node] {
                    // Sent well before this process joined: the past, which
                    // a joiner skips unless it asked for a replay. (Events
                    // still spreading while it joined are delivered.)
                    replayed += 1;
                }
                f.delivered[node] = Some(t);
            }
            _ => {}
        }
        Flow::Continue
    });
    let mut expected = 0usize;
    let mut delivered = 0usize;
    let mut latencies = Vec::new();
    // A node that restarted counts from its rejoin on.
    let expects = |i: usize, at: u64| member_from(i) == 0 || (joined_at[i] >= member_from(i) && joined_at[i] < at);
    for (k, &(at, _)) in senders.iter().enumerate() {
        let Some(f) = fates.get_mut(&format!("e{k}")) else {
            expected += (0..n).filter(|&i| expects(i, at)).count();
            continue;
        };
        for (i, e) in f.expected.iter_mut().enumerate() {
            *e = expects(i, at);
        }
        let want = f.expected.iter().filter(|&&x| x).count();
        let got: Vec<u64> = (0..n).filter(|&i| f.expected[i]).filter_map(|i| f.delivered[i]).collect();
        expected += want;
        delivered += got.len();
        if got.len() == want {
            latencies.push(got.iter().max().map_or(0, |&last| last - f.sent_at));
        }
    }
    latencies.sort_unstable();
    let mut m = header("events", p, p.seed, loss);
    m.insert("events".into(), json!(count));
    m.insert("restarts".into(), json!(restarts));
    m.insert("delivery_ratio".into(), json!(ratio(delivered, expected)));
    m.insert("expected_deliveries".into(), json!(expected));
    m.insert("duplicates".into(), json!(duplicates));
    m.insert("replayed_to_joiners".into(), json!(replayed));
    m.insert("latency_p50_ms".into(), json!(pct(&latencies, 0.5)));
    m.insert("latency_p99_ms".into(), json!(pct(&latencies, 0.99)));
    Ok(finish(m, "completed", &meter))
}

/// `rotate --via-queries`: every node starts sealed with [`OLD_KEY`]; one
/// member rotates the whole cluster to [`NEW_KEY`] with three internal
/// queries (install, use, remove), each reported member by member.
pub fn rotate_via_queries(p: &Params, loss: f64) -> Result<Value, SimError> {
    let meter = Meter::start();
    let mut sim = sealed_sim(p)?;
    let mut views = Views::new(p.n);
    let Some(start) = warm_up(&mut sim, &mut views)? else {
        return Ok(finish(header("rotate", p, p.seed, loss), "timeout", &meter));
    };
    sim.schedule(start, Command::SetLoss(loss))?;
    let origin = Random::below(sim.rng(), p.n);
    let steps = [KeyringOp::Install(NEW_KEY), KeyringOp::Use(NEW_KEY), KeyringOp::Remove(OLD_KEY)];
    let mut at = start + QUERY_STEP_GAP_MS;
    for op in steps {
        sim.schedule(at, Command::Input { node: origin, input: OwnedInput::ClusterKeys { op: Some(op) } })?;
        at += QUERY_STEP_GAP_MS;
    }
    let end = at + 60_000;
    let mut false_failures = 0u64;
    let mut reports = Vec::new();
    sim.run_until(end, &mut |_, node, e: &Event| {
        views.apply(node, e);
        match e {
            Event::Failed { .. } => false_failures += 1,
            Event::Report { report, .. } if node == origin => reports.push(report.clone()),
            _ => {}
        }
        Flow::Continue
    });
    let acked: Vec<f64> = reports.iter().map(|r| ratio(r.acked.len(), p.n)).collect();
    let failed: Vec<usize> = reports.iter().map(|r| r.failed.len()).collect();
    let silent: Vec<usize> = reports.iter().map(|r| r.silent.len()).collect();
    let mut on_new_key_only = true;
    let mut rejected = 0u64;
    for i in 0..p.n {
        let node = sim.node(i)?;
        rejected += node.stats().rejected_total();
        on_new_key_only &= node.keys() == [NEW_KEY];
    }
    let whole = views.alive_pairs() == views.all_pairs();
    let mut m = header("rotate", p, p.seed, loss);
    m.insert("via_queries".into(), json!(true));
    m.insert("steps".into(), json!(["install", "use", "remove"]));
    m.insert("step_gap_ms".into(), json!(QUERY_STEP_GAP_MS));
    m.insert("acked_ratio".into(), json!(acked));
    m.insert("failed".into(), json!(failed));
    m.insert("silent".into(), json!(silent));
    m.insert("false_failures".into(), json!(false_failures));
    m.insert("rejected_packets".into(), json!(rejected));
    m.insert("on_new_key_only".into(), json!(on_new_key_only));
    m.insert("whole_at_end".into(), json!(whole));
    let ok = whole && on_new_key_only && false_failures == 0 && acked.len() == 3 && acked.iter().all(|&a| a == 1.0);
    Ok(finish(m, if ok { "completed" } else { "diverged" }, &meter))
}
