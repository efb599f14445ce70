//! The `memory` scenario: what one member entry costs a node, measured on
//! the heap with a counting allocator (see [`crate::heap`]).
//!
//! One node learns `n` members by gossip (alive records, 40 to a datagram,
//! as fast as the admission rate lets names in), answers for them (every
//! probe is acked, every stream refused) until its update queue has
//! drained, and reports the bytes it held per member: at the bootstrap
//! peak, when news of every member is queued, and in the steady state.

use core::net::SocketAddr;

use lapswim_core::internals::wire::{Message, Messages, PacketWriter, decode};
use lapswim_core::{Action, Identity, Input, Instant, MemberName, StreamEnd, Swim};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde_json::{Value, json};

use crate::process::Meter;
use crate::scenario::{Params, finish, header};

/// Alive records per bootstrap datagram.
const PER_PACKET: usize = 40;
/// How long the queue may take to drain, virtual ms.
const SETTLE_CAP_MS: u64 = 600_000;

fn member_addr(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 1 + (i >> 16) as u8, (i >> 8) as u8, i as u8], 7946))
}

/// A node's fixed cost (buffers, timers, its own record) is measured
/// apart, on a node that learns one datagram's worth of members, and taken
/// off: the figures are the bytes each further member adds.
const REFERENCE: usize = PER_PACKET;

/// What one node held after learning its members.
struct Measured {
    /// Bytes held once the update queue drained.
    held: usize,
    /// The most bytes held between two inputs.
    peak: usize,
    queued_at_peak: usize,
    live: usize,
    queued: usize,
    bootstrap_ms: u64,
    settled_ms: u64,
}

/// Runs the scenario for `p.n` members; `None` without a heap meter.
pub fn memory(p: &Params) -> Option<Value> {
    let meter = Meter::start();
    let n = p.n.max(REFERENCE + 1);
    let fixed = measure(p, REFERENCE)?;
    let run = measure(p, n)?;
    let per = |bytes: usize, fixed: usize| {
        let extra = bytes.saturating_sub(fixed) as f64 / (n - REFERENCE) as f64;
        (extra * 10.0).round() / 10.0
    };
    let mut m = header("memory", p, p.seed, 0.0);
    m.insert("members".into(), json!(n));
    m.insert("bytes_per_member".into(), json!(per(run.held, fixed.held)));
    m.insert("peak_bytes_per_member".into(), json!(per(run.peak, fixed.peak)));
    m.insert("node_bytes".into(), json!(fixed.held));
    m.insert("queued_at_peak".into(), json!(run.queued_at_peak));
    m.insert("live".into(), json!(run.live));
    m.insert("queued_at_end".into(), json!(run.queued));
    m.insert("bootstrap_ms".into(), json!(run.bootstrap_ms));
    m.insert("settled_ms".into(), json!(run.settled_ms));
    // `live` counts the node itself.
    let outcome = if run.queued == 0 && run.live == n + 1 { "completed" } else { "unsettled" };
    Some(finish(m, outcome, &meter))
}

/// One node learning `n` members, measured from before it was made.
fn measure(p: &Params, n: usize) -> Option<Measured> {
    let names: Vec<String> = (0..n).map(|i| format!("member-{i:09}")).collect();
    let packets: Vec<Vec<u8>> = names
        .chunks(PER_PACKET)
        .enumerate()
        .map(|(c, chunk)| {
            let mut w = PacketWriter::new(1400);
            for (k, name) in chunk.iter().enumerate() {
                let addr = member_addr(c * PER_PACKET + k);
                // A record of this size always fits: 40 of them are < 1,400 B.
                let _ = w.push(&Message::Alive { incarnation: 1, name, addr, meta: b"" });
            }
            w.finish().to_vec()
        })
        .collect();
    // Spaced to stay within the admission rate.
    let rate = u64::from(p.config.member_admission_rate.get()).max(1);
    let gap_ms = (PER_PACKET as u64 * 1000).div_ceil(rate);
    let from = member_addr(0);
    let me = Identity::new(MemberName::new("me").ok()?, SocketAddr::from(([10, 0, 0, 1], 7946)));
    let out = Vec::with_capacity(1024);
    let base = crate::heap::held()?;
    let swim = Swim::new(p.config.clone(), me, Xoshiro256PlusPlus::seed_from_u64(p.seed)).ok()?;
    let mut node = Node { swim, out, base, peak: 0, queued_at_peak: 0 };
    let mut now = 0u64;
    for bytes in &packets {
        node.wake_until(now);
        node.step(now, Input::Packet { from, bytes });
        now += gap_ms;
    }
    let bootstrap_ms = now;
    while node.swim.queued_updates() > 0 && now < bootstrap_ms + SETTLE_CAP_MS {
        now += 1000;
        node.wake_until(now);
    }
    let held = crate::heap::held()?.saturating_sub(base);
    Some(Measured {
        held,
        peak: node.peak.max(held),
        queued_at_peak: node.queued_at_peak,
        live: node.swim.num_live(),
        queued: node.swim.queued_updates(),
        bootstrap_ms,
        settled_ms: now,
    })
}

/// The measured node, and the highest heap mark seen between its inputs.
struct Node {
    swim: Swim<Xoshiro256PlusPlus>,
    out: Vec<Action>,
    base: usize,
    peak: usize,
    queued_at_peak: usize,
}

impl Node {
    /// Handles `input`, answers for the members, and notes the heap mark.
    fn step(&mut self, now: u64, input: Input<'_>) {
        let _ = self.swim.handle(Instant::from_millis(now), input, &mut self.out);
        answer(&mut self.swim, now, &mut self.out);
        let held = crate::heap::held().unwrap_or(0).saturating_sub(self.base);
        if held > self.peak {
            self.peak = held;
            self.queued_at_peak = self.swim.queued_updates();
        }
    }

    /// Wakes the node at each of its deadlines up to `until`.
    fn wake_until(&mut self, until: u64) {
        while let Some(at) = self.swim.deadline().filter(|d| d.as_millis() <= until) {
            self.step(at.as_millis(), Input::Timeout);
        }
    }
}

/// Plays every member the node talks to: acks its pings and refuses its
/// streams, until nothing more is said. Replies go back in as inputs at
/// the same instant.
fn answer(swim: &mut Swim<Xoshiro256PlusPlus>, now: u64, out: &mut Vec<Action>) {
    let (mut replies, mut refused) = (Vec::new(), Vec::new());
    loop {
        for action in out.drain(..) {
            match action {
                Action::Send { to, packet } => {
                    let mut msgs = Messages::new();
                    if decode(&packet, &mut msgs).is_ok() {
                        for msg in msgs.iter() {
                            if let Message::Ping { seq, .. } = msg {
                                let mut w = PacketWriter::new(64);
                                let _ = w.push(&Message::Ack { seq: *seq });
                                replies.push((to, w.finish().to_vec()));
                            }
                        }
                    }
                    drop(msgs);
                    swim.recycle(packet);
                }
                Action::OpenStream { id, .. } => refused.push(id),
                _ => {}
            }
        }
        if replies.is_empty() && refused.is_empty() {
            return;
        }
        for (from, bytes) in replies.drain(..) {
            let _ = swim.handle(Instant::from_millis(now), Input::Packet { from, bytes: &bytes }, out);
        }
        for id in refused.drain(..) {
            let _ = swim.handle(Instant::from_millis(now), Input::StreamClosed { id, end: StreamEnd::Refused }, out);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn without_a_counting_allocator_there_is_no_figure() {
        // Unit tests run without one: nothing registers a meter here.
        let p = crate::scenario::Params {
            n: 100,
            seed: 1,
            latency_ms: 1,
            jitter_ms: 0,
            config: lapswim_core::Config::lan(),
            regions: None,
            latency_model: crate::geo::LatencyModel::Flat,
        };
        assert!(super::memory(&p).is_none());
    }
}
