//! Deaths declared elsewhere are checked before they are believed.
//!
//! A member's death reaches us by gossip from its declarer, whose own
//! probes went unanswered for a whole suspicion. That is the declarer's
//! view: across a one-way cut (the declarer cannot hear the member, we
//! can) the member is running, and a refutation it made may have missed
//! us, since gossip sends each update a bounded number of times and some
//! of those go where they are lost. So before we report a death we did not
//! witness, we ping the member once with the accusation attached: a
//! running member refutes on its ack, and the death is never reported. A
//! member that really crashed stays silent, and its death is applied a
//! probe timeout later, as the declarer gave it. The death is passed on
//! meanwhile, so its spread is not slowed: every member checks it for
//! itself.
//!
//! The check counts against the bytes of the datagram that brought the
//! death, like any answer: it carries the accusation when that datagram
//! has room for it (a running member then refutes on its ack), and is a
//! bare ping otherwise. An ack from the member's address is enough to hold
//! the death back; the member refutes when the death reaches it by gossip,
//! as it will, since the death is passed on.

use core::net::SocketAddr;

use super::merge::Update;
use super::{Membership, Timer};
use crate::protocol::dissemination::Dissemination;
use crate::protocol::outbox::Outbox;
use crate::protocol::table::MemberId;
use crate::protocol::table::record::{Claim, MemberState, newer, precedes};
use crate::util::name::MemberName;
use crate::util::rng::Random;
use crate::util::time::Instant;
use crate::wire::Message;

/// A death being checked.
#[derive(Clone, Debug)]
pub(crate) struct Verification {
    incarnation: u32,
    declarer: MemberName,
    at: Instant,
    /// The check ping's sequence number and where it went.
    seq: u32,
    addr: SocketAddr,
}

impl Membership {
    /// Whether a death at `claim` about `id`, heard from gossip, is to be
    /// checked first: we hold the member live, the claim would win, and we
    /// have no evidence of our own (we are not among its accusers).
    pub(super) fn must_verify(&self, id: MemberId, claim: Claim) -> bool {
        let Some(m) = self.table.get(id) else { return false };
        let accused_by_us = self
            .suspicions
            .get(&id)
            .is_some_and(|s| s.incarnation == m.incarnation && s.accusers.contains(&self.local.name));
        claim.state == MemberState::Dead && m.state.is_live() && precedes(claim, m.claim()) && !accused_by_us
    }

    /// Starts checking a death declared elsewhere (or, while one is being
    /// checked, takes a repeat of it as nothing new).
    pub(super) fn verify_death(
        &mut self,
        now: Instant,
        id: MemberId,
        u: &Update<'_>,
        dissem: &mut Dissemination,
        outbox: &mut Outbox,
    ) {
        let (Some(m), Ok(declarer)) = (self.table.get(id), MemberName::new(u.from)) else { return };
        if let Some(v) = self.verifying.get_mut(&id) {
            // One check at a time; it decides on the newest death heard,
            // so the order deaths arrive in does not change the outcome.
            if newer(u.claim.incarnation, v.incarnation) {
                v.incarnation = u.claim.incarnation;
                v.declarer = declarer;
            }
            return;
        }
        let (addr, incarnation) = (m.addr.get(), u.claim.incarnation);
        let at = now + self.config.probe_timeout;
        let seq = self.admissions.seq();
        self.verifying.insert(id, Verification { incarnation, declarer, at, seq, addr });
        self.timers.insert(at, Timer::Verify(id));
        self.counters.deaths_checked += 1;
        // The accusation rides along when the datagram that brought the
        // death has room for it, so a running member refutes at once.
        let check =
            [Message::Ping { seq, target: u.name }, Message::Suspect { incarnation, name: u.name, from: u.from }];
        if !outbox.send_aside_if_room(addr, &check) {
            outbox.send_aside(addr, &check[..1]);
        }
        dissem.queue_member(id, &u.message());
    }

    /// An ack from `from` with `seq`: if it answers the check of a death,
    /// the member is running there, and the death is dropped.
    pub(super) fn death_check_answered(&mut self, from: SocketAddr, seq: u32) -> bool {
        // Most acks answer probes: no lookup in a large table for them.
        if self.verifying.is_empty() {
            return false;
        }
        let Some(id) = self.table.live_at(&from) else { return false };
        if !self.verifying.get(&id).is_some_and(|v| v.seq == seq && v.addr == from) {
            return false;
        }
        self.forget_verification(id);
        true
    }

    /// The check of a declared death is over: unless the member refuted
    /// (or newer news came) meanwhile, the death stands.
    pub(super) fn on_verify_timer(
        &mut self,
        now: Instant,
        id: MemberId,
        dissem: &mut Dissemination,
        outbox: &mut Outbox,
        rng: &mut dyn Random,
    ) {
        let Some(v) = self.verifying.remove(&id) else { return };
        let claim = Claim::new(MemberState::Dead, v.incarnation);
        let Some(m) = self.table.get(id) else { return };
        // Whatever arrived meanwhile, the death then merges as it would
        // have at once: the record does not depend on the order of news.
        if !precedes(claim, m.claim()) {
            return;
        }
        let name = m.name.clone();
        let u = Update { name: name.as_str(), claim, alive: None, from: v.declarer.as_str(), declared: false };
        self.apply(now, id, &u, dissem, outbox, rng);
    }

    /// Forgets a check whose member left the table.
    pub(super) fn forget_verification(&mut self, id: MemberId) {
        if let Some(v) = self.verifying.remove(&id) {
            self.timers.remove(v.at, Timer::Verify(id));
        }
    }
}
