//! The `flood` scenario: an outsider without the key floods the cluster
//! with `alive` messages for fresh names that all point at one address (a
//! third party, the victim), while a real member crashes.
//!
//! It measures what the flood costs the cluster (how much later the crash
//! is detected everywhere than in the same run without the flood, and how
//! large the member tables grow) and what it turns on the victim (the
//! bytes the cluster sends to the victim's address, over the bytes the
//! attacker sent).

use core::net::SocketAddr;

use lapswim_core::internals::wire::{Message, PacketWriter};
use lapswim_core::{Event, OwnedInput};
use serde_json::{Value, json};

use crate::net::{Command, Flow, NetConfig, Sim, SimError, name_index};
use crate::process::Meter;
use crate::scenario::{Params, finish, header, warm_up};
use crate::views::{Belief, Views};

/// Fresh names in one attacker datagram.
pub const NAMES_PER_DATAGRAM: usize = 40;
/// Attacker datagrams a second.
pub const DATAGRAMS_PER_SECOND: u64 = 25;
/// When the crash comes, after the flood starts.
const CRASH_AFTER_MS: u64 = 10_000;
/// How long the run goes on after the flood ends (traffic the flood left
/// behind is counted too).
const AFTER_MS: u64 = 30_000;
/// The longest a detection is waited for.
const DETECT_CAP_MS: u64 = 120_000;

/// The address every fake name points at.
pub fn victim() -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], 7946))
}

/// The attacker's own address.
pub fn attacker() -> SocketAddr {
    SocketAddr::from(([198, 51, 100, 1], 4000))
}

/// What one run measured.
#[derive(Default)]
struct Run {
    /// From the crash until every live node held the crashed one failed.
    all_live_down_ms: Option<u64>,
    /// The most members any node's table held, sampled every second.
    table_max: usize,
    /// Bytes the attacker sent, and the cluster sent to the victim.
    attacker_bytes: u64,
    victim_bytes: u64,
    victim_datagrams: u64,
    victim_connects: u64,
    false_failures: u64,
}

/// `flood`: warm up; then `fake` fresh names, [`NAMES_PER_DATAGRAM`] to a
/// datagram at [`DATAGRAMS_PER_SECOND`], sent round robin to every node
/// from the attacker's address, all pointing at [`victim`]; 10 s into the
/// flood the last node's process crashes. The same run without the flood
/// gives `baseline_all_live_down_ms`. `victim_bytes_ratio` is the bytes
/// of the datagrams the nodes sent to the victim's address over the bytes
/// the attacker sent (stream connections to it never open: they are
/// counted apart, as `victim_connects`).
pub fn flood(p: &Params, fake: usize) -> Result<Value, SimError> {
    let meter = Meter::start();
    let mut m = header("flood", p, p.seed, 0.0);
    m.insert("fake".into(), json!(fake));
    let base = run(p, 0)?;
    let attacked = run(p, fake)?;
    let ratio =
        if attacked.attacker_bytes == 0 { 0.0 } else { attacked.victim_bytes as f64 / attacked.attacker_bytes as f64 };
    m.insert("all_live_down_ms".into(), json!(attacked.all_live_down_ms));
    m.insert("baseline_all_live_down_ms".into(), json!(base.all_live_down_ms));
    m.insert("table_max".into(), json!(attacked.table_max));
    m.insert("baseline_table_max".into(), json!(base.table_max));
    m.insert("attacker_bytes".into(), json!(attacked.attacker_bytes));
    m.insert("victim_bytes".into(), json!(attacked.victim_bytes));
    m.insert("victim_datagrams".into(), json!(attacked.victim_datagrams));
    m.insert("victim_connects".into(), json!(attacked.victim_connects));
    m.insert("victim_bytes_ratio".into(), json!((ratio * 1e4).round() / 1e4));
    m.insert("false_failures".into(), json!(attacked.false_failures + base.false_failures));
    let detected = attacked.all_live_down_ms.is_some() && base.all_live_down_ms.is_some();
    let outcome = if detected { "completed" } else { "timeout" };
    Ok(finish(m, outcome, &meter))
}

fn run(p: &Params, fake: usize) -> Result<Run, SimError> {
    let net = NetConfig { seed: p.seed, latency_ms: p.latency_ms, jitter_ms: p.jitter_ms, ..NetConfig::default() };
    let mut sim = Sim::new(p.n, p.config.clone(), net)?;
    let mut views = Views::new(p.n);
    let Some(start) = warm_up(&mut sim, &mut views)? else {
        // Never converged: nothing to measure.
        return Ok(Run::default());
    };
    let datagrams = fake.div_ceil(NAMES_PER_DATAGRAM);
    let mut attacker_bytes = 0u64;
    for d in 0..datagrams {
        let names: Vec<String> = (d * NAMES_PER_DATAGRAM..((d + 1) * NAMES_PER_DATAGRAM).min(fake))
            .map(|k| format!("fake-{k:06}"))
            .collect();
        let mut w = PacketWriter::new(1400);
        for name in &names {
            let alive = Message::Alive { incarnation: 0, name, addr: victim(), meta: b"" };
            if w.push(&alive).is_err() {
                break;
            }
        }
        let bytes = w.finish().to_vec();
        attacker_bytes += bytes.len() as u64;
        let at = start + d as u64 * 1000 / DATAGRAMS_PER_SECOND;
        let input = OwnedInput::Packet { from: attacker(), bytes };
        sim.schedule(at, Command::Input { node: d % p.n, input })?;
    }
    let flood_ms = datagrams as u64 * 1000 / DATAGRAMS_PER_SECOND;
    let crashed = p.n - 1;
    let crash_at = start + CRASH_AFTER_MS;
    sim.schedule(crash_at, Command::Crash(crashed))?;
    let end = start + flood_ms.max(CRASH_AFTER_MS) + AFTER_MS;
    let mut down_at = None;
    let mut false_failures = 0u64;
    let mut table_max = 0usize;
    let mut t = start;
    while t < end || (down_at.is_none() && t < crash_at + DETECT_CAP_MS) {
        t += 1000;
        sim.run_until(t, &mut |now, o, e: &Event| {
            views.apply(o, e);
            if let Event::Failed { name, .. } = e
                && name_index(name.as_str()).is_some_and(|x| x != crashed)
            {
                false_failures += 1;
            }
            if down_at.is_none()
                && now >= crash_at
                && (0..p.n).filter(|&i| i != crashed).all(|i| views.get(i, crashed) == Belief::Dead)
            {
                down_at = Some(now);
            }
            Flow::Continue
        });
        for i in (0..p.n).filter(|&i| i != crashed) {
            if let Ok(node) = sim.node(i) {
                table_max = table_max.max(node.members().count());
            }
        }
    }
    let v = sim.stats().outside.get(&victim()).copied().unwrap_or_default();
    Ok(Run {
        all_live_down_ms: down_at.map(|d| d - crash_at),
        table_max,
        attacker_bytes,
        victim_bytes: v.bytes,
        victim_datagrams: v.datagrams,
        victim_connects: v.connects,
        false_failures,
    })
}
