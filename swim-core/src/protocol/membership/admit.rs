//! A member is admitted at an address only once it answers there.
//!
//! Without a key anyone can claim any name at any address: an alive for a
//! name we do not hold, or one that moves a member to a new address, may
//! be forged. Taken on trust, such a claim would have every member probe,
//! gossip to, sync with and later reconnect to whatever address it names,
//! and a flood of fresh names would crowd the real members out of the
//! probe order, so a real crash would go unnoticed for minutes.
//!
//! So a claim heard from gossip or from a sync someone else opened waits
//! here, and the address it names gets one ping naming the member. An ack
//! from that address admits it: the claim is merged as if the member had
//! told us itself, joins the table and spreads. Silence for a probe
//! timeout forgets it; the member is heard of again from its next alive.
//! One claim waits per address, and at most [`MAX_PENDING`] in all, so a
//! flood draws one small ping per address per probe timeout from each
//! member it reaches, whatever the number of names; and the ping counts
//! against the bytes of the datagram that brought the claim, which are
//! more than the ping's.
//!
//! Claims from a sync we opened ourselves are taken at once: we chose the
//! peer, a member that admitted them the same way.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use core::net::SocketAddr;

use super::{Membership, Timer};
use crate::protocol::dissemination::Dissemination;
use crate::protocol::membership::merge::{Source, Update};
use crate::protocol::outbox::Outbox;
use crate::protocol::table::record::newer;
use crate::util::name::MemberName;
use crate::util::rng::Random;
use crate::util::time::Instant;
use crate::wire::Message;

/// The most claims that wait for an answer at once; more are refused (and
/// heard of again later).
pub(crate) const MAX_PENDING: usize = 256;

/// Sequence numbers of death checks wrap below this, so they take two
/// bytes on the wire: a check costs less than the death that caused it.
const SEQ_SPAN: u32 = 1 << 14;

/// Sequence numbers of admission pings are drawn below this: a varint of
/// three bytes.
const ADMISSION_SEQ_SPAN: u32 = 1 << 21;

/// A claim waiting for its member to answer.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    name: MemberName,
    incarnation: u32,
    meta: Box<[u8]>,
    seq: u32,
    at: Instant,
}

/// Claims waiting for an answer, one per address.
#[derive(Clone, Debug, Default)]
pub(crate) struct Admissions {
    pending: BTreeMap<SocketAddr, Pending>,
    next_seq: u32,
}

impl Admissions {
    /// Claims waiting now.
    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    /// A sequence number for the ping that checks a death.
    pub(crate) fn seq(&mut self) -> u32 {
        self.next_seq = (self.next_seq + 1) % SEQ_SPAN;
        self.next_seq
    }
}

impl Membership {
    /// Holds an alive for a new name, or one that moves a member, until
    /// the address it names answers a ping.
    pub(super) fn propose(
        &mut self,
        now: Instant,
        u: &Update<'_>,
        addr: SocketAddr,
        meta: &[u8],
        outbox: &mut Outbox,
        rng: &mut dyn Random,
    ) {
        if let Some(p) = self.admissions.pending.get_mut(&addr) {
            // One claim per address: a newer alive of the same member
            // replaces its data, any other name waits its turn.
            if p.name.as_str() == u.name && newer(u.claim.incarnation, p.incarnation) {
                p.incarnation = u.claim.incarnation;
                p.meta = meta.into();
            } else if p.name.as_str() != u.name {
                self.counters.admissions_refused += 1;
            }
            return;
        }
        if self.admissions.len() >= MAX_PENDING {
            self.counters.admissions_refused += 1;
            return;
        }
        let Ok(name) = MemberName::new(u.name) else { return };
        // Unpredictable, so that whoever cannot read what is sent to the
        // address cannot answer for it (but for one guess in two million),
        // and three bytes on the wire, so the ping is no larger than the
        // alive that caused it.
        let seq = (rng.next_u64() % u64::from(ADMISSION_SEQ_SPAN)) as u32;
        let at = now + self.config.probe_timeout;
        outbox.send_aside(addr, &[Message::Ping { seq, target: name.as_str() }]);
        let pending = Pending { name, incarnation: u.claim.incarnation, meta: meta.into(), seq, at };
        self.admissions.pending.insert(addr, pending);
        self.timers.insert(at, Timer::Admit(addr));
        self.counters.admission_checks += 1;
    }

    /// An ack from `from`: if it answers an admission ping, the claim is
    /// merged; if it answers the check of a death, the member is running
    /// and the death is not applied. Whether it was ours.
    pub(crate) fn on_ack(
        &mut self,
        now: Instant,
        from: SocketAddr,
        seq: u32,
        dissem: &mut Dissemination,
        outbox: &mut Outbox,
        rng: &mut dyn Random,
    ) -> bool {
        if self.admissions.pending.get(&from).is_some_and(|p| p.seq == seq) {
            let Some(p) = self.admissions.pending.remove(&from) else { return false };
            self.timers.remove(p.at, Timer::Admit(from));
            let alive = Message::Alive { incarnation: p.incarnation, name: p.name.as_str(), addr: from, meta: &p.meta };
            self.merge(now, &alive, Source::Answered, dissem, outbox, rng);
            return true;
        }
        self.death_check_answered(from, seq)
    }

    /// The admission ping to `addr` went unanswered: the claim is dropped.
    pub(super) fn on_admit_timer(&mut self, now: Instant, addr: SocketAddr) {
        if self.admissions.pending.get(&addr).is_some_and(|p| p.at <= now) {
            self.admissions.pending.remove(&addr);
        }
    }
}
