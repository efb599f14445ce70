//! The `steady` scenario: a large cluster in its steady state, started
//! converged rather than bootstrapped.
//!
//! A bootstrap of n members by joins and gossip moves n² table entries
//! through gossip and syncs: at 10,000 members that is 10^8 entries, most
//! of a run's memory traffic, and minutes of virtual time before anything
//! steady can be measured. Here every table is built directly
//! ([`seed_converged`], through the core's doc-hidden
//! `Swim::seed_members`), so the run measures only what a converged
//! cluster does: probing, the occasional push-pull, and one crash.

use lapswim_core::internals::Random;
use lapswim_core::{Event, Instant, Swim};
use serde_json::{Value, json};

use crate::net::{Command, Flow, Sim, SimError, SimRng, name_index};
use crate::process::Meter;
use crate::scenario::{DETECT_CAP_MS, Params, finish, header};

/// The crash comes this long after the start, plus a uniform
/// `0..1000` ms (or at a quarter of a shorter run, but never within the
/// settling time).
pub const CRASH_AT_MS: u64 = 10_000;

/// Protocol periods the cluster runs before the crash may come: the
/// members' timers, drawn at random offsets within their first period,
/// are all running by then.
pub const SETTLE_PERIODS: u64 = 2;

/// Fills every node's table with every other node, alive at its current
/// incarnation, at its current address and with its metadata, as a
/// converged cluster holds them, and starts every node's timers. Call it
/// before the run starts (at virtual time 0, before any input): nothing
/// is sent, no event is emitted, nothing is queued for gossip.
///
/// Returns the fewest members a node holds afterwards, itself included:
/// the node count when every table is whole (fewer only when
/// `max_members` is below it).
pub fn seed_converged(sim: &mut Sim<Swim<SimRng>>) -> Result<usize, SimError> {
    let n = sim.len();
    let mut everyone = Vec::with_capacity(n);
    for j in 0..n {
        let node = sim.node(j)?;
        let local = node.local();
        everyone.push((local.name.clone(), sim.addr(j)?, node.incarnation(), local.meta.clone()));
    }
    let now = Instant::from_millis(sim.now());
    let mut fewest = usize::MAX;
    for i in 0..n {
        // Everyone but the node itself, as an iterator of known length so
        // that the table is sized once.
        let others = everyone[..i].iter().chain(&everyone[i + 1..]);
        let node = sim.node_mut(i)?;
        node.seed_members(now, others.map(|(name, addr, inc, meta)| (name.clone(), *addr, *inc, meta.as_slice())));
        fewest = fewest.min(node.num_live());
    }
    Ok(fewest.min(n))
}

/// What the run's events say about the crash and the rest.
#[derive(Default)]
struct Tally {
    /// The crashed node and when it crashed.
    crash: Option<(usize, u64)>,
    /// Which observers hold the crashed node failed (or gone), and how many.
    down: Vec<bool>,
    down_count: usize,
    first_suspect_ms: Option<u64>,
    first_down_ms: Option<u64>,
    all_live_down_ms: Option<u64>,
    false_failures: u64,
    suspicions_of_live: u64,
    joins: u64,
}

impl Tally {
    /// Takes `e`, emitted by `o` at `t`; whether every live node now
    /// holds the crashed node failed.
    fn see(&mut self, t: u64, o: usize, e: &Event) -> bool {
        let (x, at) = self.crash.unwrap_or((usize::MAX, u64::MAX));
        let about = |name: &lapswim_core::MemberName| name_index(name.as_str());
        // Only from the crash on is the crashed node not live.
        let crashed = |name| about(name) == Some(x) && t >= at;
        match e {
            Event::Suspected { name, local: true, .. } if crashed(name) => {
                self.first_suspect_ms.get_or_insert(t - at);
            }
            Event::Suspected { local: true, .. } => self.suspicions_of_live += 1,
            Event::Failed { name, .. } | Event::Left { name } if crashed(name) => {
                if matches!(e, Event::Failed { .. }) {
                    self.first_down_ms.get_or_insert(t - at);
                }
                self.mark(o, true);
            }
            Event::Failed { .. } => self.false_failures += 1,
            Event::Joined { name, .. } | Event::Alive { name, .. } if crashed(name) => self.mark(o, false),
            Event::JoinCompleted { .. } => self.joins += 1,
            _ => {}
        }
        let live = self.down.len().saturating_sub(1);
        let all = self.crash.is_some() && self.down_count >= live;
        if all && self.all_live_down_ms.is_none() {
            self.all_live_down_ms = Some(t - at);
        }
        all
    }

    fn mark(&mut self, o: usize, down: bool) {
        if let Some(d) = self.down.get_mut(o)
            && *d != down
        {
            *d = down;
            if down { self.down_count += 1 } else { self.down_count -= 1 }
        }
    }
}

/// `steady`: `p.n` nodes started converged ([`seed_converged`]), run for
/// `seconds` virtual seconds from then, with one process crash (a node
/// chosen from the seed, at [`CRASH_AT_MS`] plus a uniform `0..1000` ms,
/// or at a quarter of a run shorter than 40 s, never before
/// [`SETTLE_PERIODS`] protocol periods). When the run's end comes before
/// every live node holds the crashed one failed, it goes on until they do,
/// at most [`DETECT_CAP_MS`] from the crash; `virtual_ms` says how long it
/// ran in all, and the per-second figures are over that whole span.
///
/// `virtual_per_wall` is virtual seconds over wall seconds of the run
/// after seeding, which shares each instant's steps between two threads
/// ([`Sim::run_parallel_until`]: the same run as one thread's);
/// `seed_wall_s` the wall seconds building the tables.
/// `false_failures` counts `Failed` events at live nodes about live
/// nodes; `suspicions_of_live` the suspicions of live nodes raised by
/// their own probes; `joins` the joins completed (none: no bootstrap).
pub fn steady(p: &Params, seconds: u64) -> Result<Value, SimError> {
    let meter = Meter::start();
    let mut sim = crate::scenario::sim(p, p.seed, 0.0)?;
    let seed_start = meter.wall_s();
    let members_at_start = seed_converged(&mut sim)?;
    let seeded = meter.wall_s();
    let span = seconds.saturating_mul(1000);
    let settle = SETTLE_PERIODS * p.config.probe_interval.as_millis();
    let mut tally = Tally { down: vec![false; p.n], ..Tally::default() };
    if p.n >= 2 {
        let x = Random::below(sim.rng(), p.n);
        let at = CRASH_AT_MS.min(span / 4).max(settle) + Random::below(sim.rng(), 1000) as u64;
        sim.schedule(at, Command::Crash(x))?;
        tally.crash = Some((x, at));
    }
    // Nothing here stops the run early, so each instant's steps can be
    // shared between two threads: the same run, in less wall time.
    sim.run_parallel_until(span, &mut |t, o, e: &Event| {
        tally.see(t, o, e);
    });
    if let Some((_, at)) = tally.crash
        && tally.all_live_down_ms.is_none()
    {
        sim.run_until(at + DETECT_CAP_MS, &mut |t, o, e: &Event| {
            if tally.see(t, o, e) { Flow::Stop } else { Flow::Continue }
        });
    }
    let run_wall = meter.wall_s() - seeded;
    let virtual_ms = sim.now();
    let secs = (virtual_ms as f64 / 1000.0).max(1e-3);
    let st = sim.stats();
    let per_node_s = |x: u64| round3(x as f64 / p.n as f64 / secs);
    let (mut refutations, mut syncs) = (0, 0);
    for i in 0..p.n {
        let s = sim.node(i)?.stats();
        refutations += s.refutations;
        syncs += s.syncs_completed;
    }
    let mut m = header("steady", p, p.seed, 0.0);
    m.insert("seconds".into(), json!(seconds));
    m.insert("virtual_ms".into(), json!(virtual_ms));
    m.insert("members_at_start".into(), json!(members_at_start));
    m.insert("seed_wall_s".into(), json!(round3(seeded - seed_start)));
    m.insert("run_wall_s".into(), json!(round3(run_wall)));
    m.insert("virtual_per_wall".into(), json!(round3(if run_wall > 0.0 { secs / run_wall } else { 0.0 })));
    m.insert("crash_at_ms".into(), json!(tally.crash.map(|c| c.1)));
    m.insert("first_suspect_ms".into(), json!(tally.first_suspect_ms));
    m.insert("first_down_ms".into(), json!(tally.first_down_ms));
    m.insert("all_live_down_ms".into(), json!(tally.all_live_down_ms));
    m.insert("false_failures".into(), json!(tally.false_failures));
    m.insert("suspicions_of_live".into(), json!(tally.suspicions_of_live));
    m.insert("refutations".into(), json!(refutations));
    m.insert("joins".into(), json!(tally.joins));
    m.insert("syncs_completed".into(), json!(syncs));
    m.insert("msgs_per_node_per_s".into(), json!(per_node_s(st.msgs_sent)));
    m.insert("bytes_per_node_per_s".into(), json!(per_node_s(st.bytes_sent)));
    m.insert("sync_bytes_per_node_per_s".into(), json!(per_node_s(st.frame_bytes)));
    m.insert("digest".into(), json!(sim.digest().to_string()));
    let whole = members_at_start == p.n;
    let detected = tally.crash.is_none() || tally.all_live_down_ms.is_some();
    let outcome = match (whole, detected) {
        (false, _) => "not_seeded",
        (true, false) => "timeout",
        (true, true) => "completed",
    };
    Ok(finish(m, outcome, &meter))
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
