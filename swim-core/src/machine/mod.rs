//! The [`Swim`] state machine: one door in, actions out.
//!
//! `Swim` owns no protocol state of its own. It composes the parts that
//! do, routes each input to them, and lets everything they want done leave
//! through the one outbox:
//!
//! - [`Detector`]: probes, relays, sequence numbers, local health;
//! - [`Membership`]: the member table, our own record, suspicions, merge;
//! - [`Dissemination`]: the update queue, gossip, the recently dead;
//! - [`Lifecycle`]: join, full-state sync, reconnects, leave;
//! - [`Streams`]: the book of open streams;
//! - [`UserData`]: the Lamport clock, broadcast deduplication, app state;
//! - [`Outbox`]: datagrams and events, packed and flushed once per input.
//!
//! Invariants: after every input the outbox is empty, every deadline any
//! part holds is at or after `now`, and the last `SetTimer` reported is
//! the earliest of them.

#[cfg(test)]
mod mesh;
mod on_stream;
mod on_user;
#[cfg(all(test, feature = "encryption"))]
mod security_tests;
#[cfg(test)]
mod tests;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::net::SocketAddr;

use rand_core::Rng;

use crate::api::config::Config;
use crate::api::stats::{Rejections, Stats};
use crate::api::{Action, Error, Identity, Input, Machine};
use crate::protocol::detector::{self, Detector};
use crate::protocol::dissemination::{self, Dissemination};
use crate::protocol::lifecycle::{self, Lifecycle, Phase, Sync};
use crate::protocol::membership::{Membership, Merged, Source};
use crate::protocol::outbox::{Outbox, Piggyback};
use crate::protocol::streams::Streams;
use crate::protocol::table::ProbeSelector;
use crate::protocol::table::record::MemberView;
use crate::protocol::updates::retransmit_limit;
use crate::protocol::user::UserData;
use crate::util::rng::Random;
use crate::util::time::Instant;
use crate::wire::seal::{Channel, Envelope};
use crate::wire::{self, DecodeError, Message, Messages};

/// Counters of what arrived.
#[derive(Clone, Debug, Default)]
struct Ingress {
    packets: u64,
    bytes: u64,
    rejected: Rejections,
}

/// A SWIM + Lifeguard member, as a pure state machine.
///
/// Feed it inputs with [`Swim::handle`] (or the `Vec`-returning wrappers)
/// and carry out the [`Action`]s it emits. It never reads a clock, never
/// does I/O, draws randomness only from the injected `R`, and never panics:
/// the same configuration, seed and inputs give the same actions, byte for
/// byte.
pub struct Swim<R> {
    config: Config,
    rng: R,
    membership: Membership,
    detector: Detector,
    dissemination: Dissemination,
    lifecycle: Lifecycle,
    streams: Streams,
    user: UserData,
    outbox: Outbox,
    envelope: Envelope,
    /// Decrypted packets are opened here: reused, so sealed traffic does
    /// not allocate in the steady state.
    scratch: Vec<u8>,
    ingress: Ingress,
    started: bool,
    now: Instant,
    reported: Option<Instant>,
}

impl<R> core::fmt::Debug for Swim<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Swim")
            .field("phase", &self.lifecycle.phase())
            .field("membership", &self.membership)
            .finish_non_exhaustive()
    }
}

impl<R: Rng> Swim<R> {
    /// A member that knows only itself. `rng` is its only source of
    /// randomness: seed it to make runs reproducible.
    pub fn new(config: Config, local: Identity, mut rng: R) -> Result<Self, Error> {
        config.validate()?;
        if local.meta.len() > config.max_meta_len {
            return Err(Error::MetaTooLong);
        }
        let hash_seed = Random::next_u64(&mut rng);
        // Drawn here once, so that sealing never draws from the generator
        // (which also orders probes). A runtime replaces it with OS
        // randomness: see `set_nonce_prefix`.
        let mut nonce_prefix = [0u8; 12];
        nonce_prefix[..8].copy_from_slice(&Random::next_u64(&mut rng).to_le_bytes());
        nonce_prefix[8..].copy_from_slice(&Random::next_u64(&mut rng).to_le_bytes()[..4]);
        let envelope = Envelope::new(config.label.clone(), &local.name, nonce_prefix);
        let mut swim = Swim {
            membership: Membership::new(&config, local, hash_seed),
            detector: Detector::new(&config),
            dissemination: Dissemination::new(&config),
            lifecycle: Lifecycle::new(&config),
            streams: Streams::new(&config),
            user: UserData::new(&config),
            outbox: Outbox::new(config.packet_budget),
            envelope,
            scratch: Vec::new(),
            config,
            rng,
            ingress: Ingress::default(),
            started: false,
            now: Instant::ZERO,
            reported: None,
        };
        swim.outbox.set_layout(swim.envelope.layout());
        Ok(swim)
    }

    /// The one door: applies `input` at `now` and appends what to do to
    /// `out` (which is not cleared, so a runtime can reuse one buffer).
    ///
    /// `now` must not go backwards; an earlier `now` is taken as the latest
    /// one seen. Refused inputs (`Err`) change no protocol state; only the
    /// latest time seen and the counters advance.
    pub fn handle(&mut self, now: Instant, input: Input<'_>, out: &mut Vec<Action>) -> Result<(), Error> {
        let now = now.max(self.now);
        self.now = now;
        let result = match input {
            Input::Packet { from, bytes } => self.on_packet(now, from, bytes),
            Input::Timeout => {
                self.on_timeout(now);
                Ok(())
            }
            Input::Join { seeds } => self.on_join(now, seeds),
            Input::Leave => self.on_leave(now),
            Input::StreamAccepted { id, from } => {
                self.on_stream_accepted(now, id, from);
                Ok(())
            }
            Input::StreamFrame { id, frame } => self.on_stream_frame(now, id, frame),
            Input::StreamClosed { id, end } => {
                self.on_stream_closed(now, id, end);
                Ok(())
            }
            Input::SetMeta { meta } => self.on_set_meta(meta),
            Input::SetAppState { state } => self.on_set_app_state(state),
            Input::Broadcast { payload } => self.on_broadcast(now, payload),
            Input::Message { to, payload, reliable } => self.on_direct(now, to, payload, reliable),
            #[cfg(feature = "encryption")]
            Input::Keyring(op) => self.on_keyring(op),
        };
        self.flush(out);
        result
    }

    /// A datagram arrived: [`Swim::handle`] with [`Input::Packet`].
    pub fn handle_packet(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) -> Result<Vec<Action>, Error> {
        let mut out = Vec::new();
        self.handle(now, Input::Packet { from, bytes }, &mut out).map(|()| out)
    }

    /// The deadline passed: [`Swim::handle`] with [`Input::Timeout`].
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        // A timeout is never refused.
        let _ = self.handle(now, Input::Timeout, &mut out);
        out
    }

    /// Joins through `seeds`: [`Swim::handle`] with [`Input::Join`].
    pub fn join(&mut self, now: Instant, seeds: &[SocketAddr]) -> Result<Vec<Action>, Error> {
        let mut out = Vec::new();
        self.handle(now, Input::Join { seeds }, &mut out).map(|()| out)
    }

    /// Leaves gracefully: [`Swim::handle`] with [`Input::Leave`].
    pub fn leave(&mut self, now: Instant) -> Result<Vec<Action>, Error> {
        let mut out = Vec::new();
        self.handle(now, Input::Leave, &mut out).map(|()| out)
    }

    /// Installs a key that may open received packets (the first one
    /// installed becomes the primary): [`Swim::handle`] with
    /// [`Input::Keyring`].
    #[cfg(feature = "encryption")]
    pub fn install_key(&mut self, key: crate::wire::keyring::Key) -> Result<(), Error> {
        self.keyring(crate::wire::keyring::KeyringOp::Install(key))
    }

    /// Makes an installed key the primary, which seals from now on.
    #[cfg(feature = "encryption")]
    pub fn use_key(&mut self, key: crate::wire::keyring::Key) -> Result<(), Error> {
        self.keyring(crate::wire::keyring::KeyringOp::Use(key))
    }

    /// Removes an installed key other than the primary.
    #[cfg(feature = "encryption")]
    pub fn remove_key(&mut self, key: crate::wire::keyring::Key) -> Result<(), Error> {
        self.keyring(crate::wire::keyring::KeyringOp::Remove(key))
    }

    /// Applies a keyring change at the latest time seen (it emits no
    /// action).
    #[cfg(feature = "encryption")]
    pub fn keyring(&mut self, op: crate::wire::keyring::KeyringOp) -> Result<(), Error> {
        let mut out = Vec::new();
        self.handle(self.now, Input::Keyring(op), &mut out)
    }

    /// Sets the 12 bytes every nonce this member seals with starts from.
    ///
    /// Call it once, before the first packet, with bytes from the
    /// operating system's cryptographic generator (`swim-node` does, from
    /// `getrandom`). Each sealed packet's nonce is this prefix with its
    /// last eight bytes XORed with a count of the packets sealed so far,
    /// so one member repeats no nonce within 2^64 packets. Two members
    /// with random prefixes that seal at most `N` packets each share a
    /// nonce with a chance below `N` × 2^-95, so a cluster of `n` members
    /// below n² × `N` × 2^-96 (a thousand members, 2^32 packets each:
    /// 2^-44), far less than with a random nonce per packet.
    ///
    /// Without it the prefix is drawn once from the injected generator
    /// when the member is built, which keeps simulations and tests
    /// deterministic, but two members built with one seed would then seal
    /// with the same nonces. Sealing never draws from the generator. The
    /// count of packets sealed runs on across calls.
    #[cfg(feature = "encryption")]
    pub fn set_nonce_prefix(&mut self, prefix: [u8; 12]) {
        self.envelope.set_nonce_prefix(prefix);
    }

    /// Replaces the randomized round-robin probe order.
    pub fn set_probe_selector(&mut self, selector: Box<dyn ProbeSelector + Send>) {
        self.membership.table.set_selector(selector, &mut self.rng);
    }

    /// Packs and hands over everything the input produced, completes a
    /// leave whose announcement has had all its transmissions, and reports
    /// a changed deadline.
    fn flush(&mut self, out: &mut Vec<Action>) {
        let limit = retransmit_limit(self.config.retransmit_mult.get(), self.membership.num_live());
        self.outbox.flush(self.dissemination.piggybacks(limit, &self.membership), &mut self.envelope, out);
        if self.lifecycle.phase() == Phase::Leaving && !self.dissemination.has_local() {
            self.complete_leave();
            self.outbox.flush(self.dissemination.piggybacks(limit, &self.membership), &mut self.envelope, out);
        }
        self.dissemination.resume(self.now);
        let next = self.earliest_deadline();
        if next != self.reported {
            if let Some(at) = next {
                out.push(Action::SetTimer(at));
            }
            self.reported = next;
        }
    }

    /// Counts bytes from the network that were refused unread (and
    /// reports them, when asked to). They are never an `Err`: junk from
    /// anyone is not the caller's mistake.
    fn reject(&mut self, from: SocketAddr, stream: Option<crate::api::StreamId>, reason: DecodeError) {
        self.ingress.rejected.count(reason);
        if self.config.report_rejections {
            self.outbox.event(crate::api::Event::Rejected { from, stream, reason });
        }
    }

    fn ensure_started(&mut self, now: Instant) {
        if self.started {
            return;
        }
        self.started = true;
        self.detector.start(now, &self.config, &mut self.rng);
        self.dissemination.start(now, &mut self.rng);
        self.lifecycle.start(now, &mut self.rng);
    }

    #[cfg(feature = "encryption")]
    fn on_keyring(&mut self, op: crate::wire::keyring::KeyringOp) -> Result<(), Error> {
        self.envelope.apply(op).map_err(Error::Keyring)?;
        self.outbox.set_layout(self.envelope.layout());
        Ok(())
    }

    fn on_packet(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) -> Result<(), Error> {
        self.ingress.packets += 1;
        self.ingress.bytes += bytes.len() as u64;
        if self.lifecycle.phase() == Phase::Left {
            return Ok(());
        }
        let mut scratch = core::mem::take(&mut self.scratch);
        let result = self.open_packet(now, from, bytes, &mut scratch);
        scratch.clear();
        self.scratch = scratch;
        result
    }

    fn open_packet(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
        scratch: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let mut msgs = Messages::new();
        let sender = match self.envelope.decode(bytes, wire::MAX_DATAGRAM, Channel::Datagram, scratch, &mut msgs) {
            Ok(sender) => sender,
            Err(e) => {
                self.reject(from, None, e);
                return Ok(());
            }
        };
        self.ensure_started(now);
        let me = self.membership.local().name.as_str();
        // Whatever this datagram makes us send, it pays for: a forged
        // source draws no more bytes than it sent. A sealed one (only a
        // holder of the key can make it) named its sender inside the seal
        // where our answers name us: a longer name of ours is not counted.
        let names = sender.map_or(0, |s| me.len().saturating_sub(s.len()));
        self.outbox.begin_reply(bytes.len() + names);
        // The sender accuses us: our answer to it carries our alive.
        let accused = msgs.iter().any(|m| m.accuses(me));
        let source = Source::Gossip;
        // Membership updates first, probe traffic second: a suspicion that
        // rides on a ping (the buddy system) is refuted before the ack is
        // built, so the refutation travels back on the ack itself.
        for msg in msgs.iter().filter(|m| m.is_update()) {
            let merged =
                self.membership.merge(now, msg, source, &mut self.dissemination, &mut self.outbox, &mut self.rng);
            if merged == Merged::Refuted {
                self.detector.on_refuted();
            }
        }
        // A suspect that is heard from but has not refuted by now is told.
        self.membership.heard_from(now, from, &mut self.outbox);
        // One request answered per datagram: our own datagrams never hold
        // two, and a datagram of many would draw many answers.
        let mut answered = false;
        for msg in msgs.iter().filter(|m| !m.is_update()) {
            if matches!(msg, Message::Ping { .. } | Message::PingReq { .. } | Message::Query { .. }) {
                if answered {
                    self.detector.counters.surplus_requests += 1;
                    continue;
                }
                answered = true;
            }
            self.on_message(now, from, sender, msg, accused);
        }
        Ok(())
    }

    /// Probe, sync and query traffic. A sender that is not a live member
    /// at its address may be anyone, its address forged: it gets answers
    /// no larger than what it sent (a bare ack) and no work done for it
    /// (no relayed probe, no query answer), so the node cannot be used to
    /// amplify traffic at a victim. A sealed packet names its `sender`:
    /// that member must be the live one at the address. A relayed probe
    /// goes only to a live member at the address we know for it.
    fn on_message(&mut self, now: Instant, from: SocketAddr, sender: Option<&str>, msg: &Message<'_>, accused: bool) {
        let me = self.membership.local().name.as_str();
        let known = || match sender {
            Some(name) => self.membership.table.is_live_member_at(name, from),
            None => self.membership.table.is_live_at(&from),
        };
        match *msg {
            Message::Ping { seq, target } => {
                let running = self.lifecycle.phase() == Phase::Running;
                let known = known();
                let refutation = (accused && running && known).then(|| self.membership.self_alive());
                let piggyback = if known { Piggyback::Fill } else { Piggyback::None };
                self.detector.on_ping(from, seq, target, me, refutation, piggyback, &mut self.outbox);
            }
            Message::PingReq { .. } | Message::Query { .. } if !known() => {
                self.detector.counters.strangers_refused += 1
            }
            // Even a member (or a forged source that looks like one) only
            // gets probes sent to where we know the target lives.
            Message::PingReq { seq, target, addr }
                if target != me && !self.membership.table.is_live_member_at(target, addr) =>
            {
                self.detector.counters.strangers_refused += 1;
                // A member asking about one we hold failed (or elsewhere)
                // gets a nack at once: its own network is fine, and it must
                // not take our silence for its own trouble (Lifeguard).
                self.outbox.send(from, &[Message::Nack { seq }], Piggyback::Fill);
            }
            Message::PingReq { seq, target, addr } => {
                // The ack or nack we send the requester later is part of
                // the answer.
                let later = self.outbox.size_of(&[Message::Nack { seq }]);
                self.outbox.reserve(later);
                self.detector.on_ping_req(
                    now,
                    from,
                    seq,
                    target,
                    addr,
                    me,
                    &self.config,
                    &mut self.outbox,
                    &mut self.rng,
                )
            }
            Message::Ack { seq } => {
                let (d, o, r) = (&mut self.dissemination, &mut self.outbox, &mut self.rng);
                if !self.membership.on_ack(now, from, seq, d, o, r) {
                    self.detector.on_ack(now, from, seq, &mut self.outbox);
                }
            }
            Message::Nack { seq } => self.detector.on_nack(from, seq),
            Message::Query { name } => self.membership.answer_query(from, name, &mut self.outbox),
            Message::User { ltime, from: author, payload } => self.on_user(ltime, author, payload),
            Message::Direct { from: author, payload } => self.on_direct_arrived(author, payload, false),
            // Tables travel over streams only: a datagram never draws one.
            Message::SyncRequest { .. }
            | Message::SyncReply
            | Message::SyncEnd
            | Message::AppState { .. }
            | Message::Alive { .. }
            | Message::Suspect { .. }
            | Message::Dead { .. }
            | Message::Padding { .. } => {}
        }
    }

    /// Runs every timer due at `now`, earliest first; ties go to the parts
    /// in a fixed order (detector, membership, dissemination, life cycle).
    fn on_timeout(&mut self, now: Instant) {
        if self.lifecycle.phase() == Phase::Left {
            return;
        }
        self.ensure_started(now);
        loop {
            let Some((part, _)) = self
                .part_deadlines()
                .iter()
                .enumerate()
                .filter_map(|(i, d)| d.filter(|&at| at <= now).map(|at| (i, at)))
                .min_by_key(|&(i, at)| (at, i))
            else {
                return;
            };
            match part {
                0 => self.on_detector_timer(now),
                1 => {
                    if let Some(t) = self.membership.pop_due(now) {
                        let (d, o, r) = (&mut self.dissemination, &mut self.outbox, &mut self.rng);
                        let doubt = self.detector.datagrams_doubtful();
                        if let Some(check) = self.membership.on_timer(now, t, doubt, d, o, r) {
                            self.check_over_stream(now, check);
                        }
                    }
                }
                2 => {
                    if let Some(dissemination::Timer::Gossip) = self.dissemination.pop_due(now) {
                        self.dissemination.on_gossip_tick(now, &self.membership.table, &mut self.outbox, &mut self.rng);
                    }
                }
                3 => self.on_lifecycle_timer(now),
                _ => self.on_stream_expired(now),
            }
            if self.lifecycle.phase() == Phase::Left {
                return;
            }
        }
    }

    fn on_detector_timer(&mut self, now: Instant) {
        let Some(timer) = self.detector.pop_due(now) else { return };
        match timer {
            detector::Timer::Period => {
                // Settle the last period: each failed probe makes its
                // target suspect (or confirms a suspicion of it).
                for id in self.detector.finish_period() {
                    let (d, o, r) = (&mut self.dissemination, &mut self.outbox, &mut self.rng);
                    self.membership.suspect_from_probe(now, id, d, o, r);
                }
                let (me, table) = self.membership.name_and_table();
                self.detector.start_period(now, &self.config, me, table, &mut self.outbox, &mut self.rng);
            }
            detector::Timer::ProbeTimeout(seq) => {
                let table = &mut self.membership.table;
                self.detector.on_probe_timeout(seq, &self.config, table, &mut self.outbox, &mut self.rng);
                if self.config.fallback_ping {
                    self.fallback_ping(now, seq);
                }
            }
            detector::Timer::Relay(seq) => self.detector.on_relay_timeout(seq, &mut self.outbox),
        }
    }

    fn on_lifecycle_timer(&mut self, now: Instant) {
        let Some(timer) = self.lifecycle.pop_due(now) else { return };
        let sync = Sync {
            membership: &mut self.membership,
            streams: &mut self.streams,
            app_state: &self.user.app_state,
            outbox: &mut self.outbox,
        };
        match timer {
            lifecycle::Timer::PushPull => {
                let deaf = self.detector.answered_by_stream_only();
                self.lifecycle.on_push_pull_tick(now, deaf, sync, &mut self.rng);
            }
            lifecycle::Timer::JoinRetry => self.lifecycle.on_join_retry(now, sync, &mut self.rng),
            lifecycle::Timer::Reconnect => self.lifecycle.on_reconnect_tick(now, sync, &mut self.rng),
            lifecycle::Timer::LeaveDeadline => self.complete_leave(),
        }
    }

    fn on_join(&mut self, now: Instant, seeds: &[SocketAddr]) -> Result<(), Error> {
        let sync = Sync {
            membership: &mut self.membership,
            streams: &mut self.streams,
            app_state: &self.user.app_state,
            outbox: &mut self.outbox,
        };
        self.lifecycle.join(now, seeds, sync, &mut self.dissemination, &mut self.rng)?;
        self.ensure_started(now);
        Ok(())
    }

    fn on_leave(&mut self, now: Instant) -> Result<(), Error> {
        if self.lifecycle.phase() != Phase::Running {
            return Err(Error::Leaving);
        }
        self.ensure_started(now);
        let (m, d, o, r) = (&mut self.membership, &mut self.dissemination, &mut self.outbox, &mut self.rng);
        self.lifecycle.leave(now, m, d, o, r)
    }
}

impl<R> Swim<R> {
    /// Takes back the buffer of a sent [`Action::Send`] datagram for reuse
    /// (up to a small bound), so a runtime that always recycles sends
    /// without allocating.
    pub fn recycle(&mut self, packet: crate::wire::Datagram) {
        self.outbox.recycle(packet.into_vec());
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Installed keys, the primary first.
    #[cfg(feature = "encryption")]
    pub fn keys(&self) -> Vec<crate::wire::keyring::Key> {
        self.envelope.keys().collect()
    }

    /// The prefix of the nonces this member seals with (see
    /// [`Swim::set_nonce_prefix`]). Not secret: it is the nonce of the
    /// first packet sealed.
    #[cfg(feature = "trace")]
    pub(crate) fn nonce_prefix(&self) -> [u8; 12] {
        self.envelope.nonce_prefix()
    }

    /// Whether what we send now is sealed.
    pub fn sealing(&self) -> bool {
        self.envelope.sealing()
    }

    /// Our identity.
    pub fn local(&self) -> &Identity {
        self.membership.local()
    }

    /// Our current incarnation number.
    pub fn incarnation(&self) -> u32 {
        self.membership.incarnation()
    }

    /// Counters since start.
    pub fn stats(&self) -> Stats {
        let (d, m) = (&self.detector.counters, &self.membership.counters);
        Stats {
            probes_sent: d.probes_sent,
            probes_acked: d.probes_acked,
            probes_failed: d.probes_failed,
            ping_reqs_sent: d.ping_reqs_sent,
            acks_received: d.acks_received,
            nacks_received: d.nacks_received,
            unexpected_answers: d.unexpected_answers,
            relays: d.relays,
            relays_dropped: d.relays_dropped,
            suspicions_raised: m.suspicions_raised,
            failures_declared: m.failures_declared,
            refutations: m.refutations,
            last_chance_checks: m.last_chance_checks,
            deaths_checked: m.deaths_checked,
            refused_connections: m.refused_connections,
            packets_sent: self.outbox.packets_sent,
            bytes_sent: self.outbox.bytes_sent,
            packets_received: self.ingress.packets,
            bytes_received: self.ingress.bytes,
            rejections: self.ingress.rejected.clone(),
            misdirected: d.misdirected,
            strangers_refused: d.strangers_refused,
            surplus_requests: d.surplus_requests,
            replies_dropped: self.outbox.replies_dropped,
            admission_checks: m.admission_checks,
            table_full: m.table_full,
            admissions_refused: m.admissions_refused,
            address_conflicts: m.address_conflicts,
            incarnation_leaps: m.incarnation_leaps,
            streams_opened: self.streams.counters.opened,
            streams_accepted: self.streams.counters.accepted,
            streams_refused: self.streams.counters.refused,
            streams_failed: self.streams.counters.failed + self.streams.counters.timed_out,
            frames_sent: self.outbox.frames_sent,
            frame_bytes_sent: self.outbox.frame_bytes_sent,
            frames_received: self.streams.counters.frames_received,
            frame_bytes_received: self.streams.counters.frame_bytes_received,
            syncs_completed: self.streams.counters.syncs_completed,
            fallback_pings: d.fallback_pings,
            fallback_acks: d.fallback_acks,
            reconnects: self.lifecycle.reconnects,
            broadcasts_delivered: self.user.counters.delivered,
            broadcasts_duplicate: self.user.counters.duplicates,
            broadcasts_too_old: self.user.counters.too_old,
            broadcasts_too_far: self.user.counters.too_far,
        }
    }

    /// Lifeguard's local health score, `0..awareness_max_multiplier`
    /// (0 is healthy).
    pub fn local_health(&self) -> u32 {
        self.detector.local_health()
    }

    /// Streams open now, both ways.
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }

    /// The Lamport time our next broadcast will carry.
    pub fn lamport_time(&self) -> u64 {
        self.user.clock()
    }

    /// Broadcasts waiting for retransmission.
    pub fn queued_broadcasts(&self) -> usize {
        self.dissemination.user.len()
    }

    /// Updates waiting in the piggyback queue (memberlist's `NumQueued`).
    pub fn queued_updates(&self) -> usize {
        self.dissemination.queue.len()
    }

    /// A digest of the protocol state: every member's record (ourselves
    /// included), the update and broadcast queues, the Lamport clock, the
    /// members remembered for reconnects and the open streams. Input that
    /// is rejected leaves it unchanged.
    pub fn state_digest(&self) -> crate::Digest {
        let mut d = crate::Digest::new();
        for m in self.members() {
            d.write_bytes(m.name.as_str().as_bytes());
            d.write_addr(m.addr);
            d.write_u64(u64::from(m.incarnation) << 8 | m.state as u64);
            d.write_bytes(m.meta);
        }
        self.dissemination.queue.digest(&mut d);
        self.dissemination.user.digest(&mut d);
        d.write_u64(self.user.clock());
        d.write_u64(self.membership.remembered.len() as u64);
        d.write_u64(self.membership.pending_admissions() as u64);
        d.write_u64(self.streams.len() as u64);
        d
    }

    /// When the state machine wants [`Input::Timeout`]: the deadline it
    /// last reported with [`Action::SetTimer`], the one copy of it (a
    /// runtime arms its timer from the action; [`Driver`](crate::Driver)
    /// keeps none). `None` before the first input and after a leave.
    pub fn deadline(&self) -> Option<Instant> {
        self.reported
    }

    /// The earliest of the parts' deadlines.
    fn earliest_deadline(&self) -> Option<Instant> {
        // Folded pairwise from the parts' deadlines taken apart: every
        // input asks, and the pairs stay in registers where iterating the
        // array went through memory.
        let earlier = |a: Option<Instant>, b: Option<Instant>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, None) => a,
            (None, b) => b,
        };
        let [a, b, c, d, e] = self.part_deadlines();
        earlier(earlier(earlier(earlier(a, b), c), d), e)
    }

    /// Each part's earliest deadline, in the order that breaks ties
    /// (detector, membership, dissemination, life cycle, streams).
    fn part_deadlines(&self) -> [Option<Instant>; 5] {
        [
            self.detector.next_deadline(),
            self.membership.next_deadline(),
            self.dissemination.next_deadline(),
            self.lifecycle.next_deadline(),
            self.streams.next_deadline(),
        ]
    }

    /// Members alive or suspect, ourselves included: the `n` of the
    /// protocol's formulas.
    pub fn num_live(&self) -> usize {
        self.membership.num_live()
    }

    /// Whether a graceful leave has completed (the member ignores input).
    pub fn has_left(&self) -> bool {
        self.lifecycle.phase() == Phase::Left
    }

    /// Every member we know, ourselves first, then in table order
    /// (tombstones of dead and departed members included until reaped).
    /// The order is deterministic but not sorted.
    pub fn members(&self) -> impl Iterator<Item = MemberView<'_>> + '_ {
        let me = self.membership.self_view(self.lifecycle.phase() != Phase::Running);
        core::iter::once(me).chain(self.membership.table.iter().map(|(_, m)| m.view()))
    }

    /// One member by name (ourselves included).
    pub fn member(&self, name: &str) -> Option<MemberView<'_>> {
        if name == self.membership.local().name.as_str() {
            return self.members().next();
        }
        let table = &self.membership.table;
        table.get(table.id_of(name)?).map(|m| m.view())
    }

    fn complete_leave(&mut self) {
        for id in self.streams.drain() {
            self.outbox.close(id);
        }
        self.lifecycle.complete_leave(&mut self.outbox);
        self.detector.clear();
        self.membership.clear_timers();
        self.dissemination.clear_timers();
    }
}

impl<R: Rng> Machine for Swim<R> {
    fn handle(&mut self, now: Instant, input: Input<'_>, out: &mut Vec<Action>) -> Result<(), Error> {
        Swim::handle(self, now, input, out)
    }

    fn recycle(&mut self, packet: crate::wire::Datagram) {
        Swim::recycle(self, packet);
    }
}
