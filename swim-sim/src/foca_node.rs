//! foca as a simulator node, so the benchmark scenarios run the same code
//! on it as on swim (`swim sim s1 --impl foca`, and s2, s3, s4).
//!
//! The adapter only moves bytes, time and events: foca's datagrams become
//! [`Action::Send`], the timers foca asks for are kept here and fired on
//! [`Input::Timeout`], and foca's member notifications become the events
//! the scenarios read ([`Event::Joined`] for a member up, [`Event::Failed`]
//! for a member down). foca reports neither suspicions nor whether a down
//! member was declared here or heard of, so the scenario fields that need
//! them are `null` for foca.
//!
//! foca runs on datagrams alone: a stream accepted from a peer is closed
//! at once. The application inputs (metadata, application state,
//! broadcasts, messages, keyrings), for which foca has interfaces of its
//! own, are not translated: the compared scenarios never send them.

use core::cmp::Reverse;
use core::net::SocketAddr;
use core::num::NonZeroU32;
use std::collections::BinaryHeap;

use foca::{AccumulatingRuntime, Foca, NoCustomBroadcast, OwnedNotification, PostcardCodec, Timer};
use serde_json::{Value, json};
use swim_core::wire::Datagram;
use swim_core::{Action, Error, Event, Input, Instant, Machine, MemberName};

use crate::net::{NetConfig, NodeSpec, Sim, SimError, SimRng, node_index, node_name};
use crate::scenario::Params;

/// A foca identity: an address, and a counter bumped on renewal (foca's
/// way of rejoining under the same address after being declared down).
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct FocaId {
    /// Where the member is.
    pub addr: SocketAddr,
    /// Renewals so far.
    pub bump: u64,
}

impl FocaId {
    /// The identity of a member first seen at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        FocaId { addr, bump: 0 }
    }
}

impl foca::Identity for FocaId {
    type Addr = SocketAddr;
    fn renew(&self) -> Option<Self> {
        Some(FocaId { addr: self.addr, bump: self.bump.wrapping_add(1) })
    }
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.bump > adversary.bump
    }
}

/// foca's LAN configuration for `n` members (derived, as foca says, from
/// memberlist's DefaultLANConfig): what the scenarios run foca with.
pub fn lan_config(n: usize) -> foca::Config {
    foca::Config::new_lan(NonZeroU32::new(n.clamp(1, u32::MAX as usize) as u32).unwrap_or(NonZeroU32::MIN))
}

/// The configuration as a scenario line reports it.
pub fn describe(c: &foca::Config) -> Value {
    let periodic = |p: &Option<foca::PeriodicParams>| {
        p.as_ref().map(|p| json!({"frequency_ms": p.frequency.as_millis(), "num_members": p.num_members.get()}))
    };
    json!({
        "probe_period_ms": c.probe_period.as_millis(),
        "probe_rtt_ms": c.probe_rtt.as_millis(),
        "num_indirect_probes": c.num_indirect_probes.get(),
        "max_transmissions": c.max_transmissions.get(),
        "suspect_to_down_after_ms": c.suspect_to_down_after.as_millis(),
        "remove_down_after_ms": c.remove_down_after.map(|d| d.as_millis()),
        "max_packet_size": c.max_packet_size.get(),
        "periodic_announce": periodic(&c.periodic_announce),
        "periodic_announce_to_down_members": periodic(&c.periodic_announce_to_down_members),
        "periodic_gossip": periodic(&c.periodic_gossip),
    })
}

/// A timer foca asked for, due at `at`; `seq` keeps same-instant timers in
/// the order foca submitted them.
struct Due {
    at: Instant,
    seq: u64,
    timer: Timer<FocaId>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// One foca instance driven like a [`Machine`].
pub struct FocaNode {
    foca: Foca<FocaId, PostcardCodec, SimRng, NoCustomBroadcast>,
    runtime: AccumulatingRuntime<FocaId>,
    timers: BinaryHeap<Reverse<Due>>,
    submitted: u64,
}

impl FocaNode {
    /// A node at `spec`'s address with `config`, alone until it joins.
    pub fn new(spec: NodeSpec, config: foca::Config) -> Self {
        let foca = Foca::new(FocaId::new(spec.addr), config, spec.rng, PostcardCodec);
        FocaNode { foca, runtime: AccumulatingRuntime::new(), timers: BinaryHeap::new(), submitted: 0 }
    }

    /// Members foca holds active, itself excluded.
    pub fn num_members(&self) -> usize {
        self.foca.num_members()
    }

    /// Turns what foca left in its runtime into actions.
    fn drain(&mut self, now: Instant, out: &mut Vec<Action>) {
        while let Some((to, data)) = self.runtime.to_send() {
            out.push(Action::Send { to: to.addr, packet: Datagram::from(data.to_vec()) });
        }
        while let Some((after, timer)) = self.runtime.to_schedule() {
            // The simulator counts whole milliseconds: round up, so a
            // timer never fires before foca asked.
            let ms = after.as_millis() + u128::from(after.subsec_nanos() % 1_000_000 != 0);
            let at = now + swim_core::Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX));
            self.submitted += 1;
            self.timers.push(Reverse(Due { at, seq: self.submitted, timer }));
        }
        while let Some(n) = self.runtime.to_notify() {
            if let Some(e) = event(n) {
                out.push(Action::Event(e));
            }
        }
        if let Some(Reverse(next)) = self.timers.peek() {
            out.push(Action::SetTimer(next.at));
        }
    }
}

/// The scenario event for a foca notification, if it has one.
fn event(n: OwnedNotification<FocaId>) -> Option<Event> {
    let name = |id: &FocaId| node_index(id.addr).and_then(|i| MemberName::new(&node_name(i)).ok());
    match n {
        OwnedNotification::MemberUp(id) => Some(Event::Joined { name: name(&id)?, addr: id.addr }),
        OwnedNotification::MemberDown(id) => Some(Event::Failed { name: name(&id)?, incarnation: 0, local: false }),
        _ => None,
    }
}

impl Machine for FocaNode {
    fn handle(&mut self, now: Instant, input: Input<'_>, out: &mut Vec<Action>) -> Result<(), Error> {
        // foca's own errors (an undecodable datagram, a timer for a member
        // it has since forgotten) change nothing of its state; they are
        // not the scenarios' concern, as swim's refusals are counted only.
        match input {
            Input::Packet { bytes, .. } => {
                let _ = self.foca.handle_data(bytes, &mut self.runtime);
            }
            Input::Timeout => {
                while self.timers.peek().is_some_and(|Reverse(d)| d.at <= now) {
                    if let Some(Reverse(due)) = self.timers.pop() {
                        let _ = self.foca.handle_timer(due.timer, &mut self.runtime);
                    }
                }
            }
            Input::Join { seeds } => {
                for &seed in seeds {
                    let _ = self.foca.announce(FocaId::new(seed), &mut self.runtime);
                }
            }
            Input::Leave => {
                let _ = self.foca.leave_cluster(&mut self.runtime);
            }
            Input::StreamAccepted { id, .. } => out.push(Action::CloseStream { id }),
            _ => {}
        }
        self.drain(now, out);
        Ok(())
    }

    fn recycle(&mut self, _packet: Datagram) {}
}

/// A cluster of `p.n` foca nodes with foca's LAN configuration on the
/// network `p` describes (regions are swim's alone).
pub fn cluster(p: &Params, seed: u64, loss: f64) -> Result<Sim<FocaNode>, SimError> {
    let net = NetConfig { seed, latency_ms: p.latency_ms, loss, jitter_ms: p.jitter_ms, ..NetConfig::default() };
    let config = lan_config(p.n);
    Sim::with_nodes(p.n, net, Box::new(move |spec: NodeSpec| Ok(FocaNode::new(spec, config.clone()))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{Command, Flow};

    #[test]
    fn a_foca_cluster_converges_and_sees_a_crash() {
        let p = Params { n: 8, seed: 1, latency_ms: 1, jitter_ms: 0, config: swim_core::Config::lan(), regions: None };
        let mut sim = cluster(&p, 1, 0.0).unwrap();
        for i in 1..p.n {
            sim.schedule(0, Command::Join { node: i, seeds: vec![0] }).unwrap();
        }
        sim.run_until(20_000, &mut |_, _, _: &Event| Flow::Continue);
        for i in 0..p.n {
            assert_eq!(sim.node(i).unwrap().num_members(), p.n - 1, "node {i} sees everyone");
        }
        sim.schedule(20_000, Command::Crash(3)).unwrap();
        let mut down = std::collections::BTreeSet::new();
        sim.run_until(60_000, &mut |_, node, e: &Event| {
            if let Event::Failed { name, .. } = e
                && name.as_str() == "n3"
            {
                down.insert(node);
            }
            Flow::Continue
        });
        assert_eq!(down.len(), p.n - 1, "every live node has the crashed one down");
    }

    #[test]
    fn timers_fire_in_due_order() {
        let t = |at: u64, seq: u64| Reverse(Due { at: Instant::from_millis(at), seq, timer: Timer::PeriodicGossip(0) });
        let mut h = BinaryHeap::from([t(5, 2), t(3, 3), t(5, 1)]);
        let order: Vec<(u64, u64)> =
            core::iter::from_fn(|| h.pop()).map(|Reverse(d)| (d.at.as_millis(), d.seq)).collect();
        assert_eq!(order, [(3, 3), (5, 1), (5, 2)]);
    }
}
