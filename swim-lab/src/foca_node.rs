//! foca as a simulator node, so the benchmark scenarios run the same code
//! on it as on swim (`swim-sim s1 --impl foca`, and s2, s3, s4, spread).
//!
//! The adapter only moves bytes, time and events: foca's datagrams become
//! [`Action::Send`], the timers foca asks for are kept here and fired on
//! [`Input::Timeout`], and foca's member notifications become the events
//! the scenarios read ([`Event::Joined`] for a member up, [`Event::Failed`]
//! for a member down). foca reports neither suspicions nor whether a down
//! member was declared here or heard of, so the scenario fields that need
//! them are `null` for foca.
//!
//! foca has no member metadata; a metadata change ([`Input::SetMeta`], as
//! the `spread` scenario makes) becomes one of foca's custom broadcasts,
//! versioned per member, which foca disseminates like its own updates and
//! which every member that receives it new reports as [`Event::Updated`].
//!
//! foca runs on datagrams alone: a stream accepted from a peer is closed
//! at once. The other application inputs (application state, broadcasts,
//! messages, keyrings), for which foca has interfaces of its own, are not
//! translated: the compared scenarios never send them.

use core::cell::RefCell;
use core::net::SocketAddr;
use core::num::NonZeroU32;
use std::collections::BTreeMap;
use std::rc::Rc;

use foca::{AccumulatingRuntime, BroadcastHandler, Foca, Invalidates, OwnedNotification, PostcardCodec, Timer};
use lapswim_core::Datagram;
use lapswim_core::{Action, Error, Event, Input, Instant, Machine, MemberName};
use serde_json::{Value, json};

use lapswim_sim::net::{NodeSpec, Sim, SimError, SimRng, node_index, node_name};
use lapswim_sim::scenario::{Params, ScenarioNode};

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

/// A member's metadata change as a custom broadcast: the member's address
/// and its change count, then the metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaKey {
    /// Whose metadata.
    pub addr: SocketAddr,
    /// Its change count: a later change replaces an earlier one.
    pub version: u64,
}

impl Invalidates for MetaKey {
    fn invalidates(&self, other: &Self) -> bool {
        self.addr == other.addr && self.version >= other.version
    }
}

impl MetaKey {
    /// The broadcast: the key, then `meta`.
    fn encode(&self, meta: &[u8]) -> Vec<u8> {
        let mut b = postcard::to_allocvec(&(self.addr, self.version)).unwrap_or_default();
        b.extend_from_slice(meta);
        b
    }

    fn decode(data: &[u8]) -> Option<Self> {
        let ((addr, version), _meta) = postcard::take_from_bytes::<(SocketAddr, u64)>(data).ok()?;
        Some(MetaKey { addr, version })
    }
}

/// A broadcast that is not a metadata change.
#[derive(Debug)]
pub struct NotAMetaChange;

impl core::fmt::Display for NotAMetaChange {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("not a metadata change")
    }
}

impl core::error::Error for NotAMetaChange {}

/// Keeps the newest metadata change seen of each member, and notes the
/// members whose change arrived new (for the adapter to report).
#[derive(Default)]
pub struct MetaChanges {
    newest: BTreeMap<SocketAddr, u64>,
    arrived: Rc<RefCell<Vec<SocketAddr>>>,
}

impl BroadcastHandler<FocaId> for MetaChanges {
    type Key = MetaKey;
    type Error = NotAMetaChange;

    fn receive_item(&mut self, data: &[u8], sender: Option<&FocaId>) -> Result<Option<MetaKey>, NotAMetaChange> {
        let key = MetaKey::decode(data).ok_or(NotAMetaChange)?;
        if self.newest.get(&key.addr).is_some_and(|&v| v >= key.version) {
            return Ok(None);
        }
        self.newest.insert(key.addr, key.version);
        // Our own change (added here, no sender) is not news to us.
        if sender.is_some() {
            self.arrived.borrow_mut().push(key.addr);
        }
        Ok(Some(key))
    }
}

/// One foca instance driven like a [`Machine`].
pub struct FocaNode {
    foca: Foca<FocaId, PostcardCodec, SimRng, MetaChanges>,
    runtime: AccumulatingRuntime<FocaId>,
    /// The timers foca asked for, by due time, then submission (so
    /// same-instant timers fire in the order foca submitted them).
    timers: BTreeMap<(Instant, u64), Timer<FocaId>>,
    submitted: u64,
    addr: SocketAddr,
    /// Our metadata changes so far.
    version: u64,
    /// Members whose metadata change arrived new, from the handler.
    arrived: Rc<RefCell<Vec<SocketAddr>>>,
}

impl FocaNode {
    /// A node at `spec`'s address with `config`, alone until it joins.
    pub fn new(spec: NodeSpec, config: foca::Config) -> Self {
        let handler = MetaChanges::default();
        let arrived = handler.arrived.clone();
        let foca = Foca::with_custom_broadcast(FocaId::new(spec.addr), config, spec.rng, PostcardCodec, handler);
        FocaNode {
            foca,
            runtime: AccumulatingRuntime::new(),
            timers: BTreeMap::new(),
            submitted: 0,
            addr: spec.addr,
            version: 0,
            arrived,
        }
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
            self.schedule(now, after, timer);
        }
        while let Some(n) = self.runtime.to_notify() {
            if let Some(e) = event(n) {
                out.push(Action::Event(e));
            }
        }
        for addr in self.arrived.borrow_mut().drain(..) {
            if let Some(name) = name_at(addr) {
                out.push(Action::Event(Event::Updated { name, addr }));
            }
        }
        if let Some((&(at, _), _)) = self.timers.first_key_value() {
            out.push(Action::SetTimer(at));
        }
    }

    /// Keeps `timer`, due `after` from `now`.
    fn schedule(&mut self, now: Instant, after: core::time::Duration, timer: Timer<FocaId>) {
        // The simulator counts whole milliseconds: round up, so a timer
        // never fires before foca asked.
        let ms = after.as_millis() + u128::from(!after.subsec_nanos().is_multiple_of(1_000_000));
        let at = now + lapswim_core::Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX));
        self.submitted += 1;
        self.timers.insert((at, self.submitted), timer);
    }
}

/// The simulator's name for the member at `addr`.
fn name_at(addr: SocketAddr) -> Option<MemberName> {
    node_index(addr).and_then(|i| MemberName::new(&node_name(i)).ok())
}

/// The scenario event for a foca notification, if it has one.
fn event(n: OwnedNotification<FocaId>) -> Option<Event> {
    match n {
        OwnedNotification::MemberUp(id) => Some(Event::Joined { name: name_at(id.addr)?, addr: id.addr }),
        OwnedNotification::MemberDown(id) => {
            Some(Event::Failed { name: name_at(id.addr)?, incarnation: 0, local: false })
        }
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
                while let Some(entry) = self.timers.first_entry().filter(|e| e.key().0 <= now) {
                    let _ = self.foca.handle_timer(entry.remove(), &mut self.runtime);
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
            Input::SetMeta { meta } => {
                self.version += 1;
                let change = MetaKey { addr: self.addr, version: self.version }.encode(meta);
                // foca sends broadcasts with its next message or gossip.
                if self.foca.add_broadcast(&change).is_err() {
                    // Too large for foca's datagrams: refused, as swim
                    // refuses metadata over its limit.
                    self.version -= 1;
                    return Err(Error::MetaTooLong);
                }
            }
            _ => {}
        }
        self.drain(now, out);
        Ok(())
    }

    fn recycle(&mut self, _packet: Datagram) {}
}

impl ScenarioNode for FocaNode {
    const IMPL: &'static str = "foca";
    const REPORTS_SUSPICIONS: bool = false;
    fn cluster(p: &Params, seed: u64, loss: f64) -> Result<Sim<Self>, SimError> {
        cluster(p, seed, loss)
    }
    fn describe(p: &Params) -> Value {
        describe(&lan_config(p.n))
    }
    fn refutations(&self) -> Option<u64> {
        None
    }
    fn last_chance_checks(&self) -> Option<u64> {
        None
    }
    fn gossip_interval_ms(p: &Params) -> u64 {
        let c = lan_config(p.n);
        c.periodic_gossip.map_or(c.probe_period, |g| g.frequency).as_millis() as u64
    }
}

/// A cluster of `p.n` foca nodes with foca's LAN configuration on the
/// network `p` describes (regions are swim's alone).
pub fn cluster(p: &Params, seed: u64, loss: f64) -> Result<Sim<FocaNode>, SimError> {
    let net = p.net(seed, loss);
    let config = lan_config(p.n);
    Sim::with_nodes(p.n, net, Box::new(move |spec: NodeSpec| Ok(FocaNode::new(spec, config.clone()))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapswim_sim::net::{Command, Flow};

    #[test]
    fn a_foca_cluster_converges_and_sees_a_crash() {
        let p = Params {
            n: 8,
            seed: 1,
            latency_ms: 1,
            jitter_ms: 0,
            config: lapswim_core::Config::lan(),
            regions: None,
            latency_model: lapswim_sim::geo::LatencyModel::Flat,
        };
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
    fn a_metadata_change_is_news_once_and_an_older_one_never() {
        let mut h = MetaChanges::default();
        let a = lapswim_sim::net::node_addr(1);
        let from = FocaId::new(lapswim_sim::net::node_addr(2));
        let change = |version| MetaKey { addr: a, version }.encode(b"meta");
        assert_eq!(h.receive_item(&change(2), Some(&from)).unwrap(), Some(MetaKey { addr: a, version: 2 }));
        assert_eq!(h.receive_item(&change(2), Some(&from)).unwrap(), None, "heard already");
        assert_eq!(h.receive_item(&change(1), Some(&from)).unwrap(), None, "older");
        assert_eq!(*h.arrived.borrow(), [a], "reported once");
        assert!(h.receive_item(&[0xff], Some(&from)).is_err(), "not a change");
        assert!(MetaKey { addr: a, version: 3 }.invalidates(&MetaKey { addr: a, version: 2 }));
        assert!(!MetaKey { addr: a, version: 3 }.invalidates(&MetaKey { addr: from.addr, version: 2 }));
    }

    #[test]
    fn timers_fire_in_due_order() {
        let spec = lapswim_sim::net::NodeSpec {
            index: 0,
            name: MemberName::new("n0").unwrap(),
            addr: lapswim_sim::net::node_addr(0),
            rng: rand_core::SeedableRng::seed_from_u64(1),
            restarts: 0,
            seed: 1,
        };
        let mut node = FocaNode::new(spec, lan_config(2));
        let ms = core::time::Duration::from_millis;
        for after in [ms(5), ms(5), ms(3)] {
            node.schedule(Instant::ZERO, after, Timer::PeriodicGossip(0));
        }
        // Submitted 1 and 2 at 5 ms, 3 at 3 ms: earliest first, then in
        // the order submitted.
        let order: Vec<(u64, u64)> =
            core::iter::from_fn(|| node.timers.pop_first()).map(|((at, seq), _)| (at.as_millis(), seq)).collect();
        assert_eq!(order, [(3, 3), (5, 1), (5, 2)]);
    }
}
