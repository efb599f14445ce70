//! Application calls: metadata and tags, application state, named events
//! and direct messages.

use rand_core::Rng;

use super::Swim;
use crate::api::{Error, Event, Tags};
use crate::protocol::lifecycle::Phase;
use crate::protocol::outbox::Piggyback;
use crate::protocol::streams::Purpose;
use crate::util::name::MemberName;
use crate::util::time::Instant;
use crate::wire::Message;

impl<R: Rng> Swim<R> {
    fn running(&self) -> Result<(), Error> {
        if self.lifecycle.phase() == Phase::Running { Ok(()) } else { Err(Error::Leaving) }
    }

    pub(super) fn on_set_meta(&mut self, meta: &[u8]) -> Result<(), Error> {
        self.running()?;
        if meta.len() > self.config.max_meta_len {
            return Err(Error::MetaTooLong);
        }
        self.membership.set_meta(meta, &mut self.dissemination);
        Ok(())
    }

    pub(super) fn on_set_app_state(&mut self, state: &[u8]) -> Result<(), Error> {
        self.running()?;
        if state.len() > self.config.max_app_state_len {
            return Err(Error::TooLarge);
        }
        self.user.app_state.clear();
        self.user.app_state.extend_from_slice(state);
        Ok(())
    }

    pub(super) fn on_set_tags(&mut self, tags: &Tags) -> Result<(), Error> {
        self.running()?;
        if tags.encoded_len() > self.config.max_meta_len {
            return Err(Error::MetaTooLong);
        }
        self.membership.set_meta(&tags.encode(), &mut self.dissemination);
        Ok(())
    }

    pub(super) fn on_user_event(
        &mut self,
        now: Instant,
        name: &str,
        payload: &[u8],
        coalesce: bool,
    ) -> Result<(), Error> {
        self.running()?;
        if name.len() + payload.len() > self.config.user_limits().0 {
            return Err(Error::TooLarge);
        }
        self.ensure_started(now);
        let mut me = self.membership.local().name.clone();
        if self.config.serf_wire {
            // serf names no event's sender and tells events apart by time
            // and name: the name stands for the sender, here as in every
            // event that comes back to us through serf agents.
            me = MemberName::new(name).unwrap_or(me);
        }
        let ltime = self.user.stamp(now, &me, name, payload, coalesce);
        self.outbox.event(Event::User {
            from: me.clone(),
            ltime,
            name: name.into(),
            payload: payload.to_vec(),
            coalesce,
        });
        self.dissemination.queue_user(&Message::User { ltime, from: me.as_str(), name, payload, coalesce });
        Ok(())
    }

    /// An event arrived by gossip (`gossip`) or in a sync: deliver it, the
    /// first time, and pass a gossiped one on.
    pub(super) fn on_user(&mut self, now: Instant, msg: &Message<'_>) {
        self.deliver_event(now, msg, true);
    }

    pub(super) fn deliver_event(&mut self, now: Instant, msg: &Message<'_>, gossip: bool) {
        let Some(from) = self.user.arrive(now, msg) else { return };
        let Message::User { ltime, name, payload, coalesce, .. } = *msg else { return };
        if gossip {
            self.dissemination.queue_user(msg);
        }
        self.outbox.event(Event::User { from, ltime, name: name.into(), payload: payload.to_vec(), coalesce });
    }

    pub(super) fn on_direct(&mut self, now: Instant, to: &str, payload: &[u8], reliable: bool) -> Result<(), Error> {
        self.running()?;
        if self.config.serf_wire {
            return Err(Error::Unsupported);
        }
        if payload.len() > self.config.max_user_payload {
            return Err(Error::TooLarge);
        }
        let table = &self.membership.table;
        let member = table.id_of(to).and_then(|id| table.get(id)).filter(|m| m.state.is_live());
        let Some((addr, name)) = member.map(|m| (m.addr.get(), m.name.clone())) else {
            return Err(Error::UnknownMember);
        };
        let me = self.membership.local().name.clone();
        let msg = Message::Direct { from: me.as_str(), payload };
        if !reliable {
            self.outbox.send(addr, &[msg], Piggyback::Fill);
            return Ok(());
        }
        let id = self.streams.open(now, addr, Purpose::Message { to: name }, None).ok_or(Error::Busy)?;
        self.outbox.open(id, addr);
        self.outbox.send_frame(id, &[msg]);
        Ok(())
    }

    pub(super) fn on_direct_arrived(&mut self, from: &str, payload: &[u8], reliable: bool) {
        if let Ok(from) = MemberName::new(from) {
            self.outbox.event(Event::Message { from, payload: payload.to_vec(), reliable });
        }
    }
}
