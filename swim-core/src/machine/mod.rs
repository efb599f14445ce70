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
//! - [`UserData`]: the event clock, event repair, app state;
//! - [`Queries`]: the query clock, open queries, per-member query rates;
//! - [`Outbox`]: datagrams and events, packed and flushed once per input.
//!
//! Invariants: after every input the outbox is empty, every deadline any
//! part holds is at or after `now`, and the last `SetTimer` reported is
//! the earliest of them.

mod conflict;
mod internal;
#[cfg(test)]
mod mesh;
mod on_memberlist_stream;
mod on_packet;
mod on_query;
mod on_stream;
mod on_timer;
mod on_user;
#[cfg(all(test, feature = "encryption"))]
mod security_tests;
mod serf_internal;
#[cfg(test)]
mod tests;
mod view;

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddr;

use rand_core::Rng;

use crate::api::config::Config;
use crate::api::stats::{Rejections, Stats};
use crate::api::{Action, Error, Identity, Input, Machine};
use crate::protocol::coordinates::Coordinates;
use crate::protocol::coordinates::coordinate::Coordinate;
use crate::protocol::detector::{self, Detector};
use crate::protocol::dissemination::{self, Dissemination};
use crate::protocol::lifecycle::{self, Lifecycle, Phase, Sync};
use crate::protocol::membership::{Membership, Merged, Source};
use crate::protocol::outbox::{Outbox, Piggyback};
use crate::protocol::queries::Queries;
use crate::protocol::retransmit::retransmit_limit;
use crate::protocol::streams::Streams;
use crate::protocol::table::ProbeSelector;
use crate::protocol::table::record::{Member, MemberView};
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
    /// One copy, shared with the parts that read it: every step reads
    /// settings through several of them, and with a copy each a step at
    /// 10,000 members missed the cache once per copy.
    config: Arc<Config>,
    rng: R,
    membership: Membership,
    detector: Detector,
    coords: Coordinates,
    dissemination: Dissemination,
    lifecycle: Lifecycle,
    streams: Streams,
    user: UserData,
    queries: Queries,
    outbox: Outbox,
    envelope: Envelope,
    /// Decrypted packets are opened here: reused, so sealed traffic does
    /// not allocate in the steady state.
    scratch: Vec<u8>,
    ingress: Ingress,
    started: bool,
    now: Instant,
    reported: Option<Instant>,
    last_query: Option<crate::api::QueryId>,
    /// A claim on our name from another address, being looked into.
    claim: Option<conflict::NameClaim>,
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
        let config = Arc::new(config);
        let mut envelope = Envelope::new(config.label.clone(), &local.name, nonce_prefix);
        envelope.set_memberlist(config.speaks_memberlist(), config.serf_wire, (&local.name, local.addr));
        let mut swim = Swim {
            membership: Membership::new(&config, local, hash_seed),
            detector: Detector::new(&config),
            coords: Coordinates::new(&config),
            dissemination: Dissemination::new(&config),
            lifecycle: Lifecycle::new(&config),
            streams: Streams::new(&config),
            user: UserData::new(&config),
            queries: Queries::new(&config),
            outbox: Outbox::new(config.packet_budget),
            envelope,
            scratch: Vec::new(),
            config,
            rng,
            ingress: Ingress::default(),
            started: false,
            now: Instant::ZERO,
            reported: None,
            last_query: None,
            claim: None,
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
        self.user.prune(now);
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
            Input::SetTags { tags } => self.on_set_tags(tags),
            Input::UserEvent { name, payload, coalesce } => self.on_user_event(now, name, payload, coalesce),
            Input::Query { name, payload, options } => self.on_query(now, name, payload, options).map(drop),
            Input::Respond { id, payload } => self.on_respond(now, id, payload),
            #[cfg(feature = "encryption")]
            Input::ClusterKeys { op } => self.on_cluster_keys(now, op).map(drop),
            Input::Reachability => self.on_reachability(now).map(drop),
            Input::Message { to, payload, reliable } => self.on_direct(now, to, payload, reliable),
            #[cfg(feature = "encryption")]
            Input::Keyring(op) => self.on_keyring(op),
            Input::Restore { events, queries } => {
                self.user.restore(events);
                self.queries.clock.skip_before(queries);
                Ok(())
            }
            Input::ForceLeave { name, prune } => self.on_force_leave(now, name, prune),
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

    /// Asks the cluster `name` with `payload` ([`Input::Query`]), appending
    /// what to do to `out`: the query's id, which its acks, answers and
    /// end carry.
    pub fn query(
        &mut self,
        now: Instant,
        name: &str,
        payload: &[u8],
        options: &crate::api::QueryOptions,
        out: &mut Vec<Action>,
    ) -> Result<crate::api::QueryId, Error> {
        self.handle(now, Input::Query { name, payload, options }, out)?;
        self.last_query.ok_or(Error::InvalidQuery)
    }

    /// The id of the latest query this member asked (its own, internal
    /// ones included): how a runtime that feeds [`Input::Query`] through
    /// [`Driver`](crate::Driver) learns it.
    pub fn last_query(&self) -> Option<crate::api::QueryId> {
        self.last_query
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
    /// operating system's cryptographic generator (`lapswim-node` does, from
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

    /// Not part of the API (`internals` only): puts `members` (name,
    /// address, incarnation, metadata) straight into the table, alive, as
    /// every member of a converged cluster holds them, and starts the
    /// member's timers: from here it probes, gossips and syncs as a member
    /// long in the cluster does. For the simulator, which starts clusters
    /// of thousands in their steady state this way instead of by a
    /// bootstrap that would cost far more than the run it leads to.
    ///
    /// Each member is placed in the probe order and the live list as if
    /// it had been learnt, but no event is emitted and nothing is queued
    /// for gossip: in a converged cluster there is no news to spread. No
    /// admission check is made (the caller vouches for every member); our
    /// own name, names already held and metadata longer than
    /// `max_meta_len` are skipped, and members beyond `max_members` are
    /// refused. Returns how many were added (0 once leaving).
    ///
    /// Seed before the member's first input: its first push-pull is then
    /// drawn within the interval scaled to the seeded table, as in a
    /// steady state (a member seeded later keeps the offset it drew
    /// alone). The deadline the timers now hold is reported with the
    /// next input's actions (an [`Input::Timeout`] will do); nothing here
    /// goes through [`Swim::handle`], so a [`Driver`](crate::Driver)'s
    /// digest and a recorded trace do not see it.
    #[cfg(any(test, feature = "internals"))]
    #[doc(hidden)]
    pub fn seed_members<'a>(
        &mut self,
        now: Instant,
        members: impl IntoIterator<Item = (crate::MemberName, SocketAddr, u32, &'a [u8])>,
    ) -> usize {
        if self.lifecycle.phase() != Phase::Running {
            return 0;
        }
        let now = now.max(self.now);
        self.now = now;
        let added = self.membership.seed(now, members.into_iter(), &mut self.rng);
        self.ensure_started(now);
        added
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
        self.lifecycle.start(now, self.membership.num_live(), &mut self.rng);
    }

    #[cfg(feature = "encryption")]
    fn on_keyring(&mut self, op: crate::wire::keyring::KeyringOp) -> Result<(), Error> {
        self.envelope.apply(op).map_err(Error::Keyring)?;
        self.outbox.set_layout(self.envelope.layout());
        Ok(())
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
