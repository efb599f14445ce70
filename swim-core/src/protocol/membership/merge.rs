//! Merging membership updates: every claim about another member goes
//! claim → [`precedes`] → apply. The one exception is address reclaim: an
//! alive from a new address takes over a name whose member has been dead
//! or gone for `dead_node_reclaim_time`, whatever the incarnations.
//!
//! Claims about ourselves are not merged: we refute them.

use core::net::SocketAddr;

use super::Membership;
use crate::api::Event;
use crate::protocol::dissemination::Dissemination;
use crate::protocol::outbox::Outbox;
use crate::protocol::table::MemberId;
use crate::protocol::table::record::{Claim, Member, MemberState, newer, precedes};
use crate::util::name::MemberName;
use crate::util::rng::Random;
use crate::util::time::Instant;
use crate::wire::Message;

/// Where an update came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// Gossip: a suspicion repeated here is an independent confirmation
    /// by the accuser it names.
    Gossip,
    /// A table sync: it repairs state, but a suspicion in it is relayed
    /// evidence and never confirms one (a death does: its declarer's own
    /// conclusion). `asked` when we opened the sync.
    Record {
        /// We opened the sync: its new names are not rate-limited.
        asked: bool,
    },
    /// An alive whose member has just answered a ping at the address it
    /// claims ([`admit`](super::admit)).
    Answered,
}

impl Source {
    /// Whether its alives are taken at once: we chose the peer that sent
    /// them, or the member answered at its address. Others wait for an
    /// answer first.
    fn trusted(self) -> bool {
        matches!(self, Source::Record { asked: true } | Source::Answered)
    }
}

/// What merging an update did that other components care about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Merged {
    /// Nothing beyond the member table and the update queue.
    Done,
    /// We refuted a rumour about ourselves.
    Refuted,
    /// An alive for our name at another address, which we would have
    /// refuted: maybe a stale record of ours, maybe another live process
    /// with our name. The caller checks which (and refutes, or resolves
    /// the conflict) with [`Membership::refute_claim`].
    Claimed {
        /// Where the other claim says we are.
        addr: SocketAddr,
        /// Its incarnation.
        incarnation: u32,
    },
}

/// A membership update, as claimed.
pub(super) struct Update<'a> {
    pub(super) name: &'a str,
    pub(super) claim: Claim,
    /// For alive: where and with what metadata.
    pub(super) alive: Option<(SocketAddr, &'a [u8])>,
    /// For suspect and dead: who says so.
    pub(super) from: &'a str,
    /// A suspicion taken from a death in a peer's table: its accuser has
    /// already declared.
    pub(super) declared: bool,
}

impl<'a> Update<'a> {
    /// The update `msg` claims, as heard from `source`.
    fn of(msg: &Message<'a>, source: Source) -> Option<Self> {
        Some(match *msg {
            Message::Alive { incarnation, name, addr, meta } => Update {
                name,
                claim: Claim::new(MemberState::Alive, incarnation),
                alive: Some((addr, meta)),
                from: "",
                declared: false,
            },
            Message::Suspect { incarnation, name, from } => Update {
                name,
                claim: Claim::new(MemberState::Suspect, incarnation),
                alive: None,
                from,
                declared: false,
            },
            Message::Dead { incarnation, name, from } => {
                // A death in a peer's table is taken as a suspicion: the
                // member gets its chance to refute here, rather than a
                // whole healed partition being declared dead at once.
                let declared = from != name && matches!(source, Source::Record { .. });
                // A member declaring itself dead is leaving.
                let state = match (from == name, declared) {
                    (true, _) => MemberState::Left,
                    (false, true) => MemberState::Suspect,
                    (false, false) => MemberState::Dead,
                };
                Update { name, claim: Claim::new(state, incarnation), alive: None, from, declared }
            }
            _ => return None,
        })
    }

    /// The update as it is passed on.
    pub(super) fn message(&self) -> Message<'a> {
        let (incarnation, name, from) = (self.claim.incarnation, self.name, self.from);
        match (self.claim.state, self.alive) {
            (MemberState::Alive, Some((addr, meta))) => Message::Alive { incarnation, name, addr, meta },
            (MemberState::Suspect, _) => Message::Suspect { incarnation, name, from },
            _ => Message::Dead { incarnation, name, from },
        }
    }
}

impl Membership {
    /// Merges one alive, suspect or dead message (others are ignored).
    pub(crate) fn merge(
        &mut self,
        now: Instant,
        msg: &Message<'_>,
        source: Source,
        dissem: &mut Dissemination,
        outbox: &mut Outbox,
        rng: &mut dyn Random,
    ) -> Merged {
        let Some(u) = Update::of(msg, source) else { return Merged::Done };
        if u.name == self.local.name.as_str() {
            return self.rumour_about_us(&u, dissem);
        }
        if u.alive.is_some_and(|(_, meta)| meta.len() > self.config.max_meta_len) {
            return Merged::Done;
        }
        let Some(id) = self.table.find(u.name) else {
            // Suspect and dead claims about strangers carry no address:
            // there is nothing to record.
            if let Some((addr, meta)) = u.alive {
                if source.trusted() {
                    self.add(now, &u, addr, meta, dissem, outbox, rng);
                } else if self.admission.admit(now, self.admission_rate()) {
                    self.propose(now, &u, addr, meta, outbox, rng);
                } else {
                    self.counters.admissions_refused += 1;
                }
            }
            return Merged::Done;
        };
        let Some(m) = self.table.get(id) else { return Merged::Done };
        let moved = u.alive.is_some_and(|(addr, _)| addr != m.addr.get());
        let reclaimable =
            moved && !m.state.is_live() && self.config.dead_node_reclaim_time.is_some_and(|t| now - m.since >= t);
        if u.claim.leaps(m.incarnation) && !reclaimable {
            // No member gets that far ahead of its peers' records by itself:
            // believing it would let one forged message declare a live
            // member dead, and the member's refutation, one past a number
            // no other peer holds, would be out of their reach.
            self.counters.incarnation_leaps += 1;
            return Merged::Done;
        }
        if source == Source::Gossip && self.must_verify(id, u.claim) {
            self.verify_death(now, id, &u, dissem, outbox);
            return Merged::Done;
        }
        if moved {
            // Only the member raises its incarnation: a newer one from a new
            // address is the member itself, restarted elsewhere.
            let restarted = newer(u.claim.incarnation, m.incarnation);
            if !restarted && !reclaimable {
                self.counters.address_conflicts += 1;
                // The member we hold may have a namesake: tell it (one
                // datagram, paid for by what brought the claim), so that it
                // can look into it (see `machine::conflict`).
                if m.state.is_live() {
                    outbox.send_aside_if_room(m.addr.get(), &[u.message()]);
                }
                return Merged::Done;
            }
            if !source.trusted() {
                // The member keeps its address until it answers at the
                // new one.
                if let Some((addr, meta)) = u.alive {
                    self.propose(now, &u, addr, meta, outbox, rng);
                }
                return Merged::Done;
            }
        } else if !precedes(u.claim, m.claim()) {
            let same = u.claim == m.claim() && m.state == MemberState::Suspect;
            // A suspicion repeated by gossip is its accuser's own evidence;
            // a table's suspicion is only relayed, but a table's death is
            // its declarer's conclusion at this very incarnation: both
            // count as an independent confirmation.
            let confirms = same && (source == Source::Gossip || u.declared);
            let newer_data = u.alive.filter(|_| newer(u.claim.incarnation, m.data_incarnation));
            if confirms {
                self.confirm(now, id, u.claim.incarnation, u.from, dissem);
            }
            if u.declared && same {
                self.declared_elsewhere(id, u.claim.incarnation);
            }
            if let Some((addr, meta)) = newer_data {
                self.take_data(id, u.claim.incarnation, addr, meta, outbox);
            }
            return Merged::Done;
        }
        self.apply(now, id, &u, dissem, outbox, rng);
        Merged::Done
    }

    /// Moves `id` to the update's claim, reports the change and queues the
    /// update for dissemination.
    pub(super) fn apply(
        &mut self,
        now: Instant,
        id: MemberId,
        u: &Update<'_>,
        dissem: &mut Dissemination,
        outbox: &mut Outbox,
        rng: &mut dyn Random,
    ) {
        let Some(m) = self.table.get(id) else { return };
        let (was, name) = (m.state, m.name.clone());
        let incarnation = u.claim.incarnation;
        let event = match u.claim.state {
            MemberState::Alive => {
                let Some((addr, meta)) = u.alive else { return };
                let changed = m.addr.get() != addr || *m.meta != *meta;
                self.clear_suspicion(id);
                self.table.set_addr(id, addr);
                if let Some(mut m) = self.table.get_mut(id) {
                    m.incarnation = incarnation;
                    m.data_incarnation = incarnation;
                    if *m.meta != *meta {
                        m.meta = meta.into();
                    }
                    if was != MemberState::Alive {
                        m.since = now;
                    }
                }
                self.table.set_state(id, MemberState::Alive, rng);
                self.forget_failed(name.as_str());
                match was {
                    MemberState::Suspect => Some(Event::Alive { name, incarnation }),
                    MemberState::Dead | MemberState::Left => Some(Event::Joined { name, addr }),
                    MemberState::Alive => changed.then_some(Event::Updated { name, addr }),
                }
            }
            MemberState::Suspect => {
                let Ok(accuser) = MemberName::new(u.from) else { return };
                self.start_suspicion(now, id, incarnation, accuser, rng);
                if u.declared {
                    self.declared_elsewhere(id, incarnation);
                }
                (was != MemberState::Suspect).then_some(Event::Suspected { name, incarnation, local: false })
            }
            state @ (MemberState::Dead | MemberState::Left) => {
                self.clear_suspicion(id);
                self.table.set_state(id, state, rng);
                if let Some(mut m) = self.table.get_mut(id) {
                    m.incarnation = incarnation;
                    m.since = now;
                }
                self.bury(now, id, dissem);
                match state {
                    MemberState::Left => (was != MemberState::Left).then_some(Event::Left { name }),
                    _ => was.is_live().then_some(Event::Failed { name, incarnation, local: false }),
                }
            }
        };
        if let Some(e) = event {
            outbox.event(e);
        }
        dissem.queue_member(id, &u.message());
    }

    /// An alive whose state claim lost still carries the member's newest
    /// address and metadata.
    fn take_data(&mut self, id: MemberId, incarnation: u32, addr: SocketAddr, meta: &[u8], outbox: &mut Outbox) {
        let Some(mut m) = self.table.get_mut(id) else { return };
        m.data_incarnation = incarnation;
        if *m.meta != *meta {
            m.meta = meta.into();
            outbox.event(Event::Updated { name: m.name.clone(), addr });
        }
    }

    #[expect(clippy::too_many_arguments, reason = "the new member's fields plus where its news goes")]
    fn add(
        &mut self,
        now: Instant,
        u: &Update<'_>,
        addr: SocketAddr,
        meta: &[u8],
        dissem: &mut Dissemination,
        outbox: &mut Outbox,
        rng: &mut dyn Random,
    ) {
        if self.table.len() >= self.config.max_members.get() as usize {
            self.counters.table_full += 1;
            return;
        }
        let Ok(name) = MemberName::new(u.name) else { return };
        let member = Member {
            name: name.clone(),
            addr: addr.into(),
            incarnation: u.claim.incarnation,
            state: MemberState::Alive,
            since: now,
            meta: meta.into(),
            data_incarnation: u.claim.incarnation,
            live_pos: None,
        };
        let id = self.table.insert(member, rng);
        self.forget_failed(name.as_str());
        outbox.event(Event::Joined { name, addr });
        dissem.queue_member(id, &u.message());
    }

    /// A rumour about ourselves. Someone holds a newer or different
    /// picture of us (typically our own state from before a restart), or
    /// accuses us: outbid it. A stale accusation still going round (our
    /// refutation may have been lost) gets our current alive again.
    ///
    /// A rumour any distance ahead is outbid: after a restart we start
    /// again from 0, wherever our old record stands. A forged one far
    /// ahead takes us where peers will not follow ([`Claim::leaps`]), so a
    /// rumour that far behind us is a record our alives can no longer
    /// reach: we answer from it instead, one past it.
    fn rumour_about_us(&mut self, u: &Update<'_>, dissem: &mut Dissemination) -> Merged {
        if !self.refuting {
            return Merged::Done;
        }
        let (theirs, ours) = (u.claim.incarnation, self.incarnation);
        let out_of_reach = Claim::new(MemberState::Alive, ours).leaps(theirs);
        match u.alive {
            Some((addr, meta)) => {
                let stale = theirs == ours && (addr != self.local.addr || *meta != *self.local.meta);
                if newer(theirs, ours) || stale || out_of_reach {
                    if addr != self.local.addr {
                        return Merged::Claimed { addr, incarnation: theirs };
                    }
                    return self.refute(theirs, dissem);
                }
            }
            None if !newer(ours, theirs) || out_of_reach => return self.refute(theirs, dissem),
            None => {
                if !dissem.has_local() {
                    self.queue_self_alive(dissem);
                }
            }
        }
        Merged::Done
    }

    /// Outbids a claim on our name at `incarnation` (see
    /// [`Merged::Claimed`]): it was stale, or we keep the name.
    pub(crate) fn refute_claim(&mut self, incarnation: u32, dissem: &mut Dissemination) {
        if self.refuting {
            let _ = self.refute(incarnation, dissem);
        }
    }
}
