//! Operators' overrides: forcing a failed member out, and forgetting it.
//!
//! A member that crashed for good stays failed until it is reaped, and
//! failed members are retried (`reconnect_interval`). An operator who
//! knows it will not come back declares it departed: the record becomes
//! a departure at the member's own incarnation, which outranks the death
//! at that incarnation everywhere, stops the retries, and spreads like
//! the member's own leave. A running member answers such a record with a
//! refutation, so only members we hold failed are forced. A failed member
//! already reaped from the table is still retried for
//! `reconnect_timeout`: forcing it out stops that.

use super::Membership;
use crate::api::{Error, Event};
use crate::protocol::dissemination::Dissemination;
use crate::protocol::outbox::Outbox;
use crate::protocol::table::record::MemberState;
use crate::util::rng::Random;
use crate::util::time::Instant;
use crate::wire::Message;

impl Membership {
    /// Declares the failed member `name` departed and spreads the news.
    pub(crate) fn force_leave(
        &mut self,
        now: Instant,
        name: &str,
        dissem: &mut Dissemination,
        outbox: &mut Outbox,
        rng: &mut dyn Random,
    ) -> Result<(), Error> {
        if name == self.local.name.as_str() {
            return Err(Error::NotFailed);
        }
        let Some(id) = self.table.id_of(name) else {
            // Reaped already, but still retried: stop the retries.
            if self.remembered.iter().any(|r| r.name.as_str() == name) {
                self.forget_failed(name);
                return Ok(());
            }
            return Err(Error::UnknownMember);
        };
        let m = self.table.get(id).ok_or(Error::UnknownMember)?;
        if m.state.is_live() {
            return Err(Error::NotFailed);
        }
        if m.state == MemberState::Left {
            return Ok(());
        }
        let (incarnation, member) = (m.incarnation, m.name.clone());
        self.forget_verification(id);
        self.table.set_state(id, MemberState::Left, rng);
        if let Some(mut m) = self.table.get_mut(id) {
            m.since = now;
        }
        self.bury(now, id, dissem);
        // A member's own death notice is its departure: the same record
        // its graceful leave would have spread.
        let name = member.as_str();
        dissem.queue_member(id, &Message::Dead { incarnation, name, from: name });
        outbox.event(Event::Left { name: member.clone() });
        Ok(())
    }

    /// Forgets the member `name` now if we hold it failed or departed;
    /// whether we did. The request may outrun the departure it follows:
    /// a member still held failed is reported departed first, as it would
    /// have been.
    pub(crate) fn prune(&mut self, name: &str, dissem: &mut Dissemination, outbox: &mut Outbox) -> bool {
        let Some(id) = self.table.id_of(name) else {
            // Reaped already: only its reconnect attempts are left.
            self.forget_failed(name);
            return false;
        };
        let Some(m) = self.table.get(id) else { return false };
        if m.state.is_live() {
            return false;
        }
        if m.state == MemberState::Dead {
            outbox.event(Event::Left { name: m.name.clone() });
        }
        self.clear_suspicion(id);
        self.forget_verification(id);
        self.forget_failed(name);
        self.table.remove(id);
        dissem.forget(id);
        true
    }
}
