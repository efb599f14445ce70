//! Membership: the member table, our own record, suspicions and their
//! expiry, reaping, and answering questions about members.
//!
//! Invariants:
//! - the table never holds the local member, nor two entries of one name;
//! - a member is `Suspect` iff it carries a running suspicion, whose
//!   incarnation is the member's and whose timer is set;
//! - every state a member takes comes from a claim that precedes the
//!   previous one ([`precedes`](crate::protocol::table::record::precedes)), with address
//!   reclaim as the one exception (see [`merge`]);
//! - only we change our own incarnation, and only upwards (in serial
//!   arithmetic), to refute a rumour or announce a change, except back to
//!   one past a peer's record of us that ours has left out of its reach
//!   ([`Claim::leaps`](crate::protocol::table::record::Claim::leaps));
//! - a dead or departed member is reaped after `dead_member_retention`.

mod admit;
mod decide;
mod forced;
mod merge;
#[cfg(any(test, feature = "internals"))]
mod seed;
pub(crate) mod suspicion;
mod verify;

pub(crate) use merge::{Merged, Source};

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddr;

use crate::api::Event;
use crate::api::Identity;
use crate::api::config::Config;
use crate::protocol::dissemination::Dissemination;
use crate::protocol::membership::suspicion::{Suspicion, suspicion_min};
use crate::protocol::outbox::{Outbox, Piggyback};
use crate::protocol::table::record::{Claim, MemberState, MemberView, newer};
use crate::protocol::table::{MemberId, Members};
use crate::util::name::MemberName;
use crate::util::rng::Random;
use crate::util::time::Instant;
use crate::util::timers::Timers;
use crate::wire::Message;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// A suspicion's next last-chance check or its deadline.
    Suspicion(MemberId),
    /// A dead or departed member may be removed from the table.
    Reap(MemberId),
    /// The check of a death declared elsewhere is over.
    Verify(MemberId),
    /// The ping checking a claim at this address went unanswered.
    Admit(SocketAddr),
}

/// Moves the timer of `id`'s suspicion `s` to its next wake-up after its
/// deadline moved. A suspicion already past its deadline (its checks still
/// out, or waiting for the accusers) goes on from now.
fn rewake(
    timers: &mut Timers<Timer>,
    id: MemberId,
    s: &mut Suspicion,
    now: Instant,
    spacing: crate::util::time::Duration,
) {
    let old = s.timer_at;
    s.timer_at = s.wake_at(spacing).max(now);
    timers.reschedule(old, s.timer_at, Timer::Suspicion(id));
}

/// How many peers the last question before a declaration goes to.
const FINAL_QUERIES: usize = 2;

/// A last-chance check to make over a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StreamCheck {
    /// Tell the suspect `name` at `addr` that we suspect it at
    /// `incarnation` (it answers with its record).
    Suspect { addr: SocketAddr, name: MemberName, incarnation: u32 },
    /// Ask the member at `via` for its record of `name`.
    Query { via: SocketAddr, name: MemberName },
    /// Ask each member at `vias` (one or two) for its record of `name`:
    /// the last question before a declaration, put to two peers so that
    /// one of them paused just then cannot decide it.
    Queries { vias: heapless::Vec<SocketAddr, 2>, name: MemberName },
}

/// Counters of the membership component.
#[derive(Clone, Debug, Default)]
pub(crate) struct Counters {
    pub(crate) suspicions_raised: u64,
    pub(crate) failures_declared: u64,
    pub(crate) refutations: u64,
    pub(crate) table_full: u64,
    pub(crate) address_conflicts: u64,
    pub(crate) incarnation_leaps: u64,
    pub(crate) last_chance_checks: u64,
    pub(crate) admissions_refused: u64,
    pub(crate) deaths_checked: u64,
    pub(crate) refused_connections: u64,
    pub(crate) admission_checks: u64,
}

/// A token bucket for new members: `rate` a second, a burst of `rate`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Admission {
    /// Thousandths of a token.
    milli: u64,
    at: Option<Instant>,
}

impl Admission {
    /// Takes one token if there is one.
    pub(crate) fn admit(&mut self, now: Instant, rate: u32) -> bool {
        let cap = u64::from(rate) * 1000;
        let elapsed = self.at.map_or(u64::MAX, |at| (now - at).as_millis());
        self.milli = self.milli.saturating_add(elapsed.saturating_mul(u64::from(rate))).min(cap);
        self.at = Some(now);
        if self.milli < 1000 {
            return false;
        }
        self.milli -= 1000;
        true
    }
}

impl Membership {
    /// New names admitted a second: `member_admission_rate`, or as many as
    /// the live members we hold (ourselves counted), whichever is more. A
    /// cluster whose members all join at once (or restart at new
    /// addresses) brings about one new name per member, so every member
    /// takes them in about a second whatever the cluster's size; a flood
    /// of names from outside still waits on the checks of admission, one
    /// per address (`admit.rs`), and grows the rate only by the names
    /// that answered there.
    pub(crate) fn admission_rate(&self) -> u32 {
        let live = u32::try_from(self.table.live_len() + 1).unwrap_or(u32::MAX);
        self.config.member_admission_rate.get().max(live)
    }
}

/// A member we declared failed, remembered for reconnect attempts after
/// it has left the table.
#[derive(Clone, Debug)]
pub(crate) struct Remembered {
    pub(crate) name: MemberName,
    pub(crate) addr: SocketAddr,
    pub(crate) since: Instant,
}

/// The member table and our own record.
pub(crate) struct Membership {
    config: Arc<Config>,
    pub(crate) table: Members,
    local: Identity,
    incarnation: u32,
    /// Whether we still defend our own alive (not once we leave).
    refuting: bool,
    timers: Timers<Timer>,
    /// Running suspicions, by member: apart from the table, which would
    /// otherwise spend a pointer on every member for the few suspects.
    suspicions: alloc::collections::BTreeMap<MemberId, Suspicion>,
    /// Deaths declared elsewhere being checked, by member (at most one
    /// each).
    verifying: alloc::collections::BTreeMap<MemberId, verify::Verification>,
    pub(crate) counters: Counters,
    admission: Admission,
    /// Claims waiting for their member to answer at its address.
    admissions: admit::Admissions,
    scratch: Vec<MemberId>,
    /// Failed members to retry, oldest first, at most `max_reconnect`.
    pub(crate) remembered: alloc::collections::VecDeque<Remembered>,
}

impl core::fmt::Debug for Membership {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Membership")
            .field("name", &self.local.name)
            .field("incarnation", &self.incarnation)
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

/// Up to this many suspicions, a datagram's sender is matched against
/// the suspects' addresses rather than looked up in the table.
const FEW_SUSPECTS: usize = 8;

impl Membership {
    /// `hash_seed` keys the name index (drawn from the injected generator,
    /// so peers cannot choose colliding names).
    pub(crate) fn new(config: &Arc<Config>, local: Identity, hash_seed: u64) -> Self {
        Membership {
            config: config.clone(),
            table: Members::new(hash_seed),
            local,
            // memberlist starts its own at 1 and takes no alive at 0 for a
            // member new to it (it books the member at 0, then ignores
            // what is not newer): in its format, we start at 1 too.
            incarnation: u32::from(config.speaks_memberlist()),
            refuting: true,
            timers: Timers::default(),
            suspicions: alloc::collections::BTreeMap::new(),
            verifying: alloc::collections::BTreeMap::new(),
            counters: Counters::default(),
            admission: Admission::default(),
            admissions: admit::Admissions::default(),
            scratch: Vec::new(),
            remembered: alloc::collections::VecDeque::new(),
        }
    }

    /// Remembers a member we now hold failed, for reconnect attempts (one
    /// already remembered keeps its entry and its time).
    pub(super) fn remember_failed(&mut self, now: Instant, name: &MemberName, addr: SocketAddr) {
        if self.config.reconnect_interval.is_none() || self.remembered.iter().any(|r| r.name == *name) {
            return;
        }
        if self.remembered.len() >= self.config.max_reconnect.get() as usize {
            self.remembered.pop_front();
        }
        self.remembered.push_back(Remembered { name: name.clone(), addr, since: now });
    }

    /// A member is alive again (or left for good): no more retries.
    pub(super) fn forget_failed(&mut self, name: &str) {
        if !self.remembered.is_empty() {
            self.remembered.retain(|r| r.name.as_str() != name);
        }
    }

    /// One remembered failed member to retry: a random one among those
    /// remembered for less than `reconnect_timeout` that are not live
    /// (expired ones are forgotten on the way).
    pub(crate) fn reconnect_candidate(&mut self, now: Instant, rng: &mut dyn Random) -> Option<SocketAddr> {
        let timeout = self.config.reconnect_timeout;
        let table = &self.table;
        self.remembered.retain(|r| {
            now - r.since < timeout
                && !table.id_of(r.name.as_str()).and_then(|id| table.get(id)).is_some_and(|m| m.state.is_live())
        });
        if self.remembered.is_empty() {
            return None;
        }
        let i = rng.below(self.remembered.len());
        self.remembered.get(i).map(|r| r.addr)
    }

    /// How many failed members are remembered for reconnects (after the
    /// last [`Membership::reconnect_candidate`] dropped those back or
    /// expired).
    pub(crate) fn remembered_len(&self) -> usize {
        self.remembered.len()
    }

    /// Replaces our metadata: a new incarnation, announced as alive.
    pub(crate) fn set_meta(&mut self, meta: &[u8], dissem: &mut Dissemination) {
        self.local.meta = meta.to_vec();
        self.incarnation = self.incarnation.wrapping_add(1);
        self.queue_self_alive(dissem);
    }

    pub(crate) fn local(&self) -> &Identity {
        &self.local
    }

    pub(crate) fn incarnation(&self) -> u32 {
        self.incarnation
    }

    /// Members alive or suspect, ourselves included: the `n` of the
    /// protocol's formulas.
    /// Our name beside the table, for parts that read one and change the
    /// other.
    pub(crate) fn name_and_table(&mut self) -> (&str, &mut Members) {
        (self.local.name.as_str(), &mut self.table)
    }

    /// Claims waiting for their member to answer at its address.
    pub(crate) fn pending_admissions(&self) -> usize {
        self.admissions.len()
    }

    pub(crate) fn num_live(&self) -> usize {
        self.table.live_len() + 1
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.next()
    }

    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        self.timers.pop_due(now)
    }

    /// We are leaving: no more refutations, no more timers.
    pub(crate) fn stop_refuting(&mut self) {
        self.refuting = false;
    }

    pub(crate) fn clear_timers(&mut self) {
        self.timers.clear();
    }

    /// Our own alive update, as we announce and refute with it.
    pub(crate) fn self_alive(&self) -> Message<'_> {
        Message::Alive {
            incarnation: self.incarnation,
            name: self.local.name.as_str(),
            addr: self.local.addr,
            meta: &self.local.meta,
        }
    }

    /// Our own view: alive while running, left once leaving.
    pub(crate) fn self_view(&self, leaving: bool) -> MemberView<'_> {
        MemberView {
            name: &self.local.name,
            addr: self.local.addr,
            state: if leaving { MemberState::Left } else { MemberState::Alive },
            incarnation: self.incarnation,
            meta: &self.local.meta,
            is_local: true,
            coordinate: None,
            rtt: None,
        }
    }

    pub(crate) fn queue_self_alive(&self, dissem: &mut Dissemination) {
        dissem.queue_local(&self.self_alive());
    }

    /// Outbids a rumour about ourselves with a newer incarnation: one past
    /// the rumour or our own, whichever is newer, or one past the rumour
    /// when ours is out of its holder's reach ([`Claim::leaps`]).
    pub(super) fn refute(&mut self, rumour: u32, dissem: &mut Dissemination) -> Merged {
        let ours = self.incarnation;
        let behind = Claim::new(MemberState::Alive, ours).leaps(rumour);
        let base = if newer(rumour, ours) || behind { rumour } else { ours };
        self.incarnation = base.wrapping_add(1);
        self.counters.refutations += 1;
        self.queue_self_alive(dissem);
        Merged::Refuted
    }

    /// Our own probe of `id` failed: suspect it, or, when someone else
    /// already does, count our failure as an independent confirmation.
    pub(crate) fn suspect_from_probe(
        &mut self,
        now: Instant,
        id: MemberId,
        dissem: &mut Dissemination,
        outbox: &mut Outbox,
        rng: &mut dyn Random,
    ) {
        let Some(m) = self.table.get(id) else { return };
        let (name, incarnation, state) = (m.name.clone(), m.incarnation, m.state);
        let me = self.local.name.clone();
        match state {
            MemberState::Suspect => self.confirm(now, id, incarnation, me.as_str(), dissem),
            MemberState::Alive => {
                self.counters.suspicions_raised += 1;
                self.start_suspicion(now, id, incarnation, me.clone(), rng);
                outbox.event(Event::Suspected { name: name.clone(), incarnation, local: true });
                dissem.queue_member(id, &Message::Suspect { incarnation, name: name.as_str(), from: me.as_str() });
            }
            MemberState::Dead | MemberState::Left => {}
        }
    }

    /// A datagram from `from` reached us: if it is a member we suspect, it
    /// is running, and it refutes as soon as it hears of the suspicion. A
    /// member that holds a suspicion only from gossip may get the suspect's
    /// answers to others' probes (as their helper) and no refutation, and
    /// declare it for want of one: so it tells the suspect (the first
    /// accuser's accusation, at most once a protocol period).
    pub(crate) fn heard_from(&mut self, now: Instant, from: SocketAddr, outbox: &mut Outbox) {
        if self.suspicions.is_empty() {
            return;
        }
        // A few suspects (the usual case) are checked by address, which
        // spares every datagram a lookup in a large table.
        let id = if self.suspicions.len() <= FEW_SUSPECTS {
            let mut ids = self.suspicions.keys().copied();
            ids.find(|&id| self.table.get(id).is_some_and(|m| m.addr.is(&from) && m.state.is_live()))
        } else {
            self.table.live_at(&from)
        };
        let Some(id) = id else { return };
        let Some(m) = self.table.get(id).filter(|m| m.state == MemberState::Suspect) else { return };
        let Some(s) = self.suspicions.get_mut(&id).filter(|s| s.incarnation == m.incarnation) else {
            return;
        };
        if s.told_at.is_some_and(|t| now - t < self.config.probe_interval) {
            return;
        }
        s.told_at = Some(now);
        let Some(accuser) = s.accusers.first() else { return };
        let tell = Message::Suspect { incarnation: m.incarnation, name: m.name.as_str(), from: accuser.as_str() };
        // Not an answer to what arrived: at most one a protocol period per
        // suspect, to the suspect at the address we hold for it.
        outbox.send_free(from, &[tell], Piggyback::Fill);
    }

    /// A connection to `id`'s address was refused by its host: nothing
    /// listens there, so the member's process is gone (a live member at a
    /// new address has announced a newer incarnation already). We suspect
    /// it ourselves, if we did not, and declare it one protocol period
    /// from now rather than at the end of a whole suspicion: time for the
    /// last-chance checks (the buddy ping among them) that a live member
    /// would answer with its refutation.
    pub(crate) fn not_listening(
        &mut self,
        now: Instant,
        id: MemberId,
        dissem: &mut Dissemination,
        outbox: &mut Outbox,
        rng: &mut dyn Random,
    ) {
        self.counters.refused_connections += 1;
        self.suspect_from_probe(now, id, dissem, outbox, rng);
        let (window, spacing) = (self.config.probe_interval, self.config.probe_timeout);
        let Some(m) = self.table.get(id) else { return };
        let incarnation = m.incarnation;
        let Some(s) = self.suspicions.get_mut(&id).filter(|s| s.incarnation == incarnation) else { return };
        s.not_listening(now, window, spacing);
        rewake(&mut self.timers, id, s, now, spacing);
    }

    /// A last-chance check of our suspicion of `name` went out over a
    /// stream: the declaration waits for it.
    pub(crate) fn check_opened(&mut self, name: &str) {
        if let Some(s) = self.suspicion_of(name) {
            s.awaiting = s.awaiting.saturating_add(1);
        }
    }

    /// A stream check of `name` ended (answered or not).
    pub(crate) fn check_ended(&mut self, name: &str) {
        if let Some(s) = self.suspicion_of(name) {
            s.awaiting = s.awaiting.saturating_sub(1);
        }
    }

    pub(super) fn suspicion_of(&mut self, name: &str) -> Option<&mut Suspicion> {
        let id = self.table.id_of(name)?;
        self.suspicions.get_mut(&id)
    }

    /// Answers a [`Message::Query`] with our record of `name`, alone in
    /// its datagram.
    pub(crate) fn answer_query(&self, from: SocketAddr, name: &str, outbox: &mut Outbox) {
        let Some(answer) = self.query_answer(name) else { return };
        let mut w = outbox.writer();
        if w.push(&answer).is_ok() {
            outbox.push(from, w, Piggyback::None);
        }
    }

    /// Our record of `name` (ourselves included), if we hold one.
    pub(crate) fn query_answer(&self, name: &str) -> Option<Message<'_>> {
        if name == self.local.name.as_str() {
            return Some(self.self_alive());
        }
        let id = self.table.id_of(name)?;
        Some(self.record(id, self.table.get(id)?))
    }

    /// A member's state as an update message for a table or a query answer:
    /// a suspicion names its first accuser (never us as a relay of it), a
    /// death names us as the one who reports it.
    pub(crate) fn record<'a>(&'a self, id: MemberId, m: &'a crate::protocol::table::record::Member) -> Message<'a> {
        let me = self.local.name.as_str();
        let accuser = self.suspicions.get(&id).and_then(|s| s.accusers.first()).map_or(me, |a| a.as_str());
        m.record(accuser, me)
    }
}

impl crate::protocol::retransmit::Records for Membership {
    fn write_record(
        &self,
        index: u32,
        room: usize,
        w: &mut crate::wire::PacketWriter,
    ) -> Result<usize, crate::protocol::retransmit::Unwritten> {
        use crate::protocol::retransmit::Unwritten;
        let (id, m) = self.table.at_index(index).ok_or(Unwritten::Gone)?;
        Ok(w.push_within(&self.record(id, m), room)?)
    }
}
