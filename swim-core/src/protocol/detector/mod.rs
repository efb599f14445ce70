//! Failure detection: the protocol period, direct and indirect probes,
//! relaying probes for others, and Lifeguard's local health.
//!
//! Invariants:
//! - every probe opened in a period is settled exactly once, when the next
//!   period starts: acked (health improves) or failed (its target is handed
//!   back for suspicion);
//! - an ack counts only from the probe's target or a helper we asked; a
//!   nack only from a helper we asked, once per helper, and only after the
//!   probe went indirect;
//! - sequence numbers are drawn from the injected generator, so a peer
//!   cannot guess the one of an open probe, and are distinct among open
//!   probes and relays;
//! - at most `max_relays` relays are open at once.

pub(crate) mod awareness;
pub(crate) mod rtt;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::net::SocketAddr;

use crate::api::config::Config;
use crate::protocol::coordinates::Coordinates;
use crate::protocol::coordinates::coordinate::Coordinate;
use crate::protocol::detector::awareness::Awareness;
use crate::protocol::detector::rtt::Rtt;
use crate::protocol::outbox::{Outbox, Piggyback};
use crate::protocol::table::record::MemberState;
use crate::protocol::table::{MemberId, Members};
use crate::util::rng::Random;
use crate::util::time::{Duration, Instant};
use crate::util::timers::Timers;
use crate::wire::Message;

/// Helpers nack when the target has been silent for this share (in
/// percent) of the nack window (see [`nack_wait`]), so the nack still
/// reaches the requester, over a second hop, before its period ends.
pub const NACK_PERCENT: u64 = 80;

/// Draws per wanted probe target: with `p > 1` a round may end mid-way and
/// hand out a member already chosen this period; a few spare draws skip it
/// without looping without bound.
const TARGET_DRAWS_PER_PROBE: usize = 2;

/// Most helpers a probe can have (`indirect_checks` is at most 16), so
/// their nacks fit a 32-bit mask.
const MAX_HELPERS: usize = 16;

/// How long a helper waits for the target before it nacks:
/// [`NACK_PERCENT`] of the shorter of the probe timeout (the time the
/// requester itself gave the target) and `probe_interval - probe_timeout`
/// (the time the requester has left in its period to hear the answer).
/// With the WAN preset (5 s period, 3 s timeout) that is 1.6 s, not 2.4 s,
/// which would arrive after the requester's period ended.
pub fn nack_wait(config: &Config) -> Duration {
    let timeout = config.probe_timeout.as_millis();
    let left = config.probe_interval.as_millis().saturating_sub(timeout);
    Duration::from_millis(timeout.min(left) * NACK_PERCENT / 100)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// Settle this period's probes and start the next period.
    Period,
    /// The direct ping of probe `seq` went unanswered: go indirect.
    ProbeTimeout(u32),
    /// The target of a ping-req we relay (our ping `seq`) stayed silent.
    Relay(u32),
}

/// One of our probes in flight.
#[derive(Clone, Debug)]
struct Probe {
    seq: u32,
    target: MemberId,
    addr: SocketAddr,
    /// When the ping went out (for the round-trip estimate).
    sent: Instant,
    timeout_at: Instant,
    acked: bool,
    /// Helpers asked to probe indirectly (empty, and unallocated, until
    /// the probe times out).
    helpers: Vec<SocketAddr>,
    /// Bit `i` set: helper `i` has nacked.
    nacked: u32,
}

/// A ping-req we relay for another member.
#[derive(Clone, Copy, Debug)]
struct Relay {
    requester: SocketAddr,
    target: SocketAddr,
    seq: u32,
    deadline: Instant,
}

/// Counters of the failure detector.
#[derive(Clone, Debug, Default)]
pub(crate) struct Counters {
    pub(crate) probes_sent: u64,
    pub(crate) probes_acked: u64,
    pub(crate) probes_failed: u64,
    pub(crate) ping_reqs_sent: u64,
    pub(crate) acks_received: u64,
    pub(crate) nacks_received: u64,
    pub(crate) unexpected_answers: u64,
    pub(crate) relays: u64,
    pub(crate) relays_dropped: u64,
    pub(crate) misdirected: u64,
    pub(crate) surplus_requests: u64,
    pub(crate) strangers_refused: u64,
    pub(crate) fallback_pings: u64,
    pub(crate) fallback_acks: u64,
}

/// Targets of the probes that failed in a period.
pub(crate) type Failed = heapless::Vec<MemberId, 16>;

/// The failure detector: our probes, the relays we run, local health.
#[derive(Debug)]
pub(crate) struct Detector {
    probes: Vec<Probe>,
    relays: BTreeMap<u32, Relay>,
    awareness: Awareness,
    timers: Timers<Timer>,
    /// Our last answered probe was answered over a stream only: our
    /// datagrams may not be coming back.
    stream_only: bool,
    /// Round-trip estimates by member, at the address measured, when
    /// probe timeouts come from them (`Config::rtt_probe_timeout`).
    rtts: Option<BTreeMap<MemberId, (SocketAddr, Rtt)>>,
    pub(crate) counters: Counters,
}

impl Detector {
    pub(crate) fn new(config: &Config) -> Self {
        Detector {
            probes: Vec::new(),
            relays: BTreeMap::new(),
            awareness: Awareness::new(config.awareness_max_multiplier.get()),
            timers: Timers::default(),
            stream_only: false,
            rtts: config.rtt_probe_timeout.map(|_| BTreeMap::new()),
            counters: Counters::default(),
        }
    }

    /// Starts the first period at a random offset within one, so members
    /// started together do not probe in lockstep.
    pub(crate) fn start(&mut self, now: Instant, config: &Config, rng: &mut dyn Random) {
        let stagger = rng.below(config.probe_interval.as_millis() as usize) as u64;
        self.timers.insert(now + Duration::from_millis(stagger), Timer::Period);
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.next()
    }

    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        self.timers.pop_due(now)
    }

    /// Stops everything (a completed leave).
    pub(crate) fn clear(&mut self) {
        self.timers.clear();
        self.probes.clear();
        self.relays.clear();
    }

    /// The timeout of a probe of `id` at `addr`, before local health
    /// scaling: from its round trips when so configured and measured.
    fn probe_timeout(&self, config: &Config, id: MemberId, addr: SocketAddr) -> Duration {
        let (Some(floor), Some(rtts)) = (config.rtt_probe_timeout, self.rtts.as_ref()) else {
            return config.probe_timeout;
        };
        match rtts.get(&id) {
            Some((at, rtt)) if *at == addr => {
                let ms = rtt.timeout_ms().clamp(floor.as_millis(), config.probe_timeout.as_millis());
                Duration::from_millis(ms)
            }
            _ => config.probe_timeout,
        }
    }

    pub(crate) fn local_health(&self) -> u32 {
        self.awareness.score()
    }

    /// Having to refute a suspicion of ourselves is a sign of our own
    /// trouble (Lifeguard).
    pub(crate) fn on_refuted(&mut self) {
        self.awareness.apply(1);
    }

    /// Settles the period's probes. An ack lowers the health score;
    /// silence raises it by the nacks we missed (our own network may be
    /// the problem), or by one without helpers. Returns the targets of the
    /// failed probes.
    pub(crate) fn finish_period(&mut self) -> Failed {
        let mut failed = Failed::new();
        for p in self.probes.drain(..) {
            self.timers.remove(p.timeout_at, Timer::ProbeTimeout(p.seq));
            if p.acked {
                self.counters.probes_acked += 1;
                self.awareness.apply(-1);
                continue;
            }
            self.counters.probes_failed += 1;
            let missed = if p.helpers.is_empty() { 1 } else { p.helpers.len() as u32 - p.nacked.count_ones() };
            self.awareness.apply(i64::from(missed));
            let _ = failed.push(p.target);
        }
        failed
    }

    /// Starts a protocol period: probes the next `probe_targets` members
    /// and schedules the next period, both scaled by local health. A probe
    /// whose target's coordinate we want carries ours.
    #[expect(clippy::too_many_arguments, reason = "the parts a period touches")]
    pub(crate) fn start_period(
        &mut self,
        now: Instant,
        config: &Config,
        me: &str,
        members: &mut Members,
        coords: &mut Coordinates,
        outbox: &mut Outbox,
        rng: &mut dyn Random,
    ) {
        let wanted = (config.probe_targets.get() as usize).min(members.live_len());
        let mut chosen = heapless::Vec::<MemberId, 16>::new();
        for _ in 0..wanted * TARGET_DRAWS_PER_PROBE {
            if chosen.len() == wanted {
                break;
            }
            let c = &*coords;
            let Some(id) = members.next_probe_target(rng, &|id| (c.of(id), c.round_trip(id))) else { break };
            if !chosen.contains(&id) {
                let _ = chosen.push(id);
            }
        }
        for id in chosen {
            let Some(m) = members.get(id) else { continue };
            let timeout = self.awareness.scale(self.probe_timeout(config, id, m.addr.get()));
            let seq = self.fresh_seq(rng);
            let (name, addr) = (m.name.as_str(), m.addr.get());
            let ping = Message::Ping { seq, target: name };
            let mut buf = [0u8; 2 * Coordinate::DIMENSIONS];
            let ours = coords.own().filter(|_| coords.wants(now, id));
            let coordinate = ours.map(|c| c.message(&mut buf));
            if coordinate.is_some() {
                coords.sent();
            }
            // The buddy system: a suspect learns of the suspicion from the
            // probe itself and can refute at once.
            if m.state == MemberState::Suspect {
                let suspect = Message::Suspect { incarnation: m.incarnation, name, from: me };
                let refutation = Message::Alive { incarnation: u32::MAX, name, addr, meta: &m.meta };
                let room = match &coordinate {
                    Some(c) => outbox.answer_room(&[Message::Ack { seq }, refutation, c.clone()]),
                    None => outbox.answer_room(&[Message::Ack { seq }, refutation]),
                };
                match coordinate {
                    Some(c) => outbox.send_padded(addr, &[ping, suspect, c], room, Piggyback::Fill),
                    None => outbox.send_padded(addr, &[ping, suspect], room, Piggyback::Fill),
                }
            } else {
                match coordinate {
                    // Ours makes room for theirs on the ack.
                    Some(c) => outbox.send(addr, &[ping, c], Piggyback::Fill),
                    None => outbox.send(addr, &[ping], Piggyback::Fill),
                }
            }
            self.counters.probes_sent += 1;
            let timeout_at = now + timeout;
            self.timers.insert(timeout_at, Timer::ProbeTimeout(seq));
            let probe =
                Probe { seq, target: id, addr, sent: now, timeout_at, acked: false, helpers: Vec::new(), nacked: 0 };
            self.probes.push(probe);
        }
        self.timers.insert(now + self.awareness.scale(config.probe_interval), Timer::Period);
    }

    /// The direct ping went unanswered: ask `indirect_checks` others.
    pub(crate) fn on_probe_timeout(
        &mut self,
        seq: u32,
        config: &Config,
        members: &mut Members,
        outbox: &mut Outbox,
        rng: &mut dyn Random,
    ) {
        let Some(p) = self.probes.iter_mut().find(|p| p.seq == seq) else { return };
        if p.acked {
            return;
        }
        let Some(name) = members.get(p.target).map(|m| m.name.clone()) else { return };
        let mut helpers = Vec::new();
        let k = (config.indirect_checks as usize).min(MAX_HELPERS);
        members.helpers(p.target, k, rng, &mut helpers);
        for &h in &helpers {
            let Some(via) = members.get(h).map(|m| m.addr.get()) else { continue };
            let req = Message::PingReq { seq, target: name.as_str(), addr: p.addr };
            // Room for what the helper sends on our behalf: its ping to
            // the target, then its ack or nack to us.
            let room = outbox.answer_room(&[Message::Ping { seq: u32::MAX, target: name.as_str() }])
                + outbox.answer_room(&[Message::Nack { seq: u32::MAX }]);
            outbox.send_padded(via, &[req], room, Piggyback::Fill);
            p.helpers.push(via);
            self.counters.ping_reqs_sent += 1;
        }
    }

    /// Where a stream ping for the unanswered probe `seq` goes, counted
    /// as one fallback ping; `None` if the probe is answered or over.
    pub(crate) fn fallback_target(&mut self, seq: u32) -> Option<(SocketAddr, MemberId)> {
        let p = self.probes.iter().find(|p| p.seq == seq && !p.acked)?;
        self.counters.fallback_pings += 1;
        Some((p.addr, p.target))
    }

    /// The target answered probe `seq` over a stream: the probe succeeded.
    pub(crate) fn on_stream_ack(&mut self, seq: u32) {
        let Some(p) = self.probes.iter_mut().find(|p| p.seq == seq) else { return };
        if !p.acked {
            p.acked = true;
            self.stream_only = true;
            self.counters.fallback_acks += 1;
        }
    }

    /// Whether the last probe we got an answer to was answered over a
    /// stream only: our datagrams (or their answers) are not getting
    /// through.
    pub(crate) fn answered_by_stream_only(&self) -> bool {
        self.stream_only
    }

    /// Whether our datagram path is in doubt: local health is degraded, or
    /// the last probe we got an answer to was answered over a stream only.
    pub(crate) fn datagrams_doubtful(&self) -> bool {
        self.stream_only || self.awareness.score() > 0
    }

    /// Answers a ping that names us; `refutation` (our alive) rides on the
    /// ack when the datagram accused us, so the prober hears it at once,
    /// and `coordinate` (ours) when the prober asked for it. Returns
    /// whether the ping was ours to answer.
    #[expect(clippy::too_many_arguments, reason = "the ping's fields plus how to answer it")]
    pub(crate) fn on_ping(
        &mut self,
        from: SocketAddr,
        seq: u32,
        target: &str,
        me: &str,
        refutation: Option<Message<'_>>,
        coordinate: Option<Coordinate>,
        piggyback: Piggyback,
        outbox: &mut Outbox,
    ) -> bool {
        if target != me {
            // Meant for a member that used to have our address.
            self.counters.misdirected += 1;
            return false;
        }
        let mut buf = [0u8; 2 * Coordinate::DIMENSIONS];
        let mut msgs = heapless::Vec::<Message<'_>, 3>::new();
        let _ = msgs.push(Message::Ack { seq });
        if let Some(alive) = refutation {
            let _ = msgs.push(alive);
        }
        if let Some(c) = coordinate {
            let _ = msgs.push(c.message(&mut buf));
        }
        outbox.send(from, &msgs, piggyback);
        true
    }

    /// Probes `target` at `addr` for `from`: one ping per request, and a
    /// bound on requests in flight, so a ping-req cannot amplify traffic.
    #[expect(clippy::too_many_arguments, reason = "the request's fields plus what relaying needs")]
    pub(crate) fn on_ping_req(
        &mut self,
        now: Instant,
        from: SocketAddr,
        seq: u32,
        target: &str,
        addr: SocketAddr,
        me: &str,
        config: &Config,
        outbox: &mut Outbox,
        rng: &mut dyn Random,
    ) {
        if target == me {
            outbox.send(from, &[Message::Ack { seq }], Piggyback::Fill);
            return;
        }
        if self.relays.len() >= config.max_relays.get() as usize {
            self.counters.relays_dropped += 1;
            return;
        }
        let ours = self.fresh_seq(rng);
        outbox.send(addr, &[Message::Ping { seq: ours, target }], Piggyback::Fill);
        let deadline = now + nack_wait(config);
        self.relays.insert(ours, Relay { requester: from, target: addr, seq, deadline });
        debug_assert!(self.relays.len() <= config.max_relays.get() as usize, "relays within max_relays");
        self.timers.insert(deadline, Timer::Relay(ours));
        self.counters.relays += 1;
    }

    /// An ack arrived. Returns the probe's target and the round trip in
    /// ms when it is the first, direct ack of one of our probes.
    pub(crate) fn on_ack(
        &mut self,
        now: Instant,
        from: SocketAddr,
        seq: u32,
        outbox: &mut Outbox,
    ) -> Option<(MemberId, u64)> {
        self.counters.acks_received += 1;
        if let Some(p) = self.probes.iter_mut().find(|p| p.seq == seq) {
            // A direct ack, the first for this probe, is a round trip.
            let round_trip =
                (from == p.addr && !p.acked).then(|| (p.target, now.as_millis().saturating_sub(p.sent.as_millis())));
            if let (Some(rtts), Some((_, ms))) = (self.rtts.as_mut(), round_trip) {
                let ms = u32::try_from(ms).unwrap_or(u32::MAX);
                match rtts.get_mut(&p.target) {
                    Some((addr, rtt)) if *addr == p.addr => rtt.sample(ms),
                    _ => {
                        rtts.insert(p.target, (p.addr, Rtt::first(ms)));
                    }
                }
            }
            if from == p.addr || p.helpers.contains(&from) {
                p.acked = true;
                self.stream_only = false;
                // Nothing is left to do at the timeout: do not wake for it.
                self.timers.remove(p.timeout_at, Timer::ProbeTimeout(p.seq));
                return round_trip;
            }
            self.counters.unexpected_answers += 1;
            return None;
        }
        match self.relays.get(&seq) {
            Some(r) if r.target == from => {
                let r = *r;
                self.relays.remove(&seq);
                self.timers.remove(r.deadline, Timer::Relay(seq));
                // Paid for by the ping-req, which kept room for it.
                outbox.send_free(r.requester, &[Message::Ack { seq: r.seq }], Piggyback::Fill);
            }
            _ => self.counters.unexpected_answers += 1,
        }
        None
    }

    /// A nack counts once per helper we asked, for a probe gone indirect.
    pub(crate) fn on_nack(&mut self, from: SocketAddr, seq: u32) {
        let helper = self
            .probes
            .iter_mut()
            .find(|p| p.seq == seq)
            .and_then(|p| p.helpers.iter().position(|&h| h == from).map(|i| (p, i)));
        match helper {
            Some((p, i)) if p.nacked & (1 << i) == 0 => {
                p.nacked |= 1 << i;
                self.counters.nacks_received += 1;
            }
            _ => self.counters.unexpected_answers += 1,
        }
    }

    pub(crate) fn on_relay_timeout(&mut self, seq: u32, outbox: &mut Outbox) {
        if let Some(r) = self.relays.remove(&seq) {
            outbox.send(r.requester, &[Message::Nack { seq: r.seq }], Piggyback::Fill);
        }
    }

    /// A random sequence number no open probe or relay uses. After the
    /// draw, counting up finds a free one within `16 + max_relays` steps
    /// whatever the generator returns.
    fn fresh_seq(&self, rng: &mut dyn Random) -> u32 {
        let mut seq = rng.next_u64() as u32;
        while self.probes.iter().any(|p| p.seq == seq) || self.relays.contains_key(&seq) {
            seq = seq.wrapping_add(1);
        }
        seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nacks_fit_in_the_requesters_period_with_every_preset() {
        for c in [Config::lan(), Config::wan(), Config::local()] {
            let wait = nack_wait(&c);
            // The ping-req leaves at the probe timeout; the nack must be
            // back, with room for two network hops, before the period ends.
            assert!(c.probe_timeout.as_millis() + wait.as_millis() < c.probe_interval.as_millis(), "{c:?}");
            assert!(wait.as_millis() > 0);
        }
        assert_eq!(nack_wait(&Config::lan()), Duration::from_millis(400));
        assert_eq!(nack_wait(&Config::wan()), Duration::from_millis(1600));
    }
}
