//! Internal queries: the protocol asks and answers them itself.
//!
//! - `_swim_keys`: apply a keyring change (or list the keys) on every
//!   member, each answering whether it could. Carried, and answered, only
//!   sealed: a key never crosses the network in plaintext.
//! - `_swim_ping`: every member acknowledges (reachability).
//! - `_swim_prune`: every member forgets a member forced out (the payload
//!   is its name) if it holds it failed or departed, and acknowledges.
//!
//! Answers are encoded with postcard (docs/protocol.md, "Internal
//! queries") and collected into a [`QueryReport`] at the deadline.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use rand_core::Rng;
use serde::{Deserialize, Serialize};

use super::Swim;
use crate::api::{Error, QueryId, QueryReport};
use crate::protocol::queries::{Answering, Asked, Internal, Queries, base_report};
use crate::util::time::Instant;

/// The internal query that changes or lists keyrings.
pub(super) const KEYS: &str = "_swim_keys";
/// The internal reachability query.
pub(super) const PING: &str = "_swim_ping";
/// The internal query that has every member forget a member forced out.
pub(super) const PRUNE: &str = "_swim_prune";

/// What a `_swim_keys` query asks.
#[derive(Serialize, Deserialize)]
enum KeyCommand {
    Install([u8; 32]),
    Use([u8; 32]),
    Remove([u8; 32]),
    List,
}

/// A member's answer to `_swim_keys`.
#[derive(Serialize, Deserialize, Default)]
struct KeyAnswer {
    /// Why it could not, if it could not.
    error: Option<String>,
    /// Its keys by fingerprint, the primary first.
    keys: Vec<u32>,
}

impl<R: Rng> Swim<R> {
    /// [`Input::ClusterKeys`](crate::Input::ClusterKeys).
    #[cfg(feature = "encryption")]
    pub(super) fn on_cluster_keys(
        &mut self,
        now: Instant,
        op: Option<crate::wire::keyring::KeyringOp>,
    ) -> Result<QueryId, Error> {
        use crate::wire::keyring::KeyringOp;
        if self.lifecycle.phase() != crate::protocol::lifecycle::Phase::Running {
            return Err(Error::Leaving);
        }
        if !self.envelope.sealing() {
            return Err(Error::NotSealing);
        }
        let timeout = Queries::default_timeout(&self.config, self.num_live());
        if self.config.serf_wire {
            // serf's own key queries, which serf agents answer too. No
            // relays: serf relays answers in a message we do not read.
            use crate::wire::memberlist::serf_keys::{KeyQuery, encode_request};
            let (query, key) = match op {
                Some(KeyringOp::Install(k)) => (KeyQuery::Install, Some(k)),
                Some(KeyringOp::Use(k)) => (KeyQuery::Use, Some(k)),
                Some(KeyringOp::Remove(k)) => (KeyQuery::Remove, Some(k)),
                None => (KeyQuery::List, None),
                Some(_) => return Err(Error::InvalidQuery),
            };
            let mut payload = Vec::new();
            encode_request(key.as_ref().map_or(&[][..], |k| &k.as_bytes()[..]), &mut payload)
                .map_err(|_| Error::InvalidQuery)?;
            return self.start_query(now, (query.name(), &payload, &[], false, 0), timeout, Some(Internal::Keys));
        }
        let command = match op {
            Some(KeyringOp::Install(k)) => KeyCommand::Install(*k.as_bytes()),
            Some(KeyringOp::Use(k)) => KeyCommand::Use(*k.as_bytes()),
            Some(KeyringOp::Remove(k)) => KeyCommand::Remove(*k.as_bytes()),
            None => KeyCommand::List,
            Some(_) => return Err(Error::InvalidQuery),
        };
        let payload = postcard::to_allocvec(&command).map_err(|_| Error::InvalidQuery)?;
        // Relayed twice: a member whose answer is lost on the way would be
        // reported silent though it changed its keyring.
        self.start_query(now, (KEYS, &payload, &[], false, 2), timeout, Some(Internal::Keys))
    }

    /// [`Input::Reachability`](crate::Input::Reachability).
    pub(super) fn on_reachability(&mut self, now: Instant) -> Result<QueryId, Error> {
        if self.lifecycle.phase() != crate::protocol::lifecycle::Phase::Running {
            return Err(Error::Leaving);
        }
        let timeout = Queries::default_timeout(&self.config, self.num_live());
        self.start_query(now, (PING, &[], &[], true, 0), timeout, Some(Internal::Ping))
    }

    /// [`Input::ForceLeave`](crate::Input::ForceLeave).
    pub(super) fn on_force_leave(&mut self, now: Instant, name: &str, prune: bool) -> Result<(), Error> {
        if self.lifecycle.phase() != crate::protocol::lifecycle::Phase::Running {
            return Err(Error::Leaving);
        }
        // Refused whole: the query's room is checked before the record
        // changes, so a busy member changes nothing.
        if prune && !self.queries.has_room() {
            return Err(Error::Busy);
        }
        let out = &mut self.outbox;
        self.membership.force_leave(now, name, &mut self.dissemination, out, &mut self.rng)?;
        if prune {
            let timeout = Queries::default_timeout(&self.config, self.num_live());
            self.start_query(now, (PRUNE, name.as_bytes(), &[], true, 0), timeout, Some(Internal::Prune))?;
        }
        Ok(())
    }

    /// Answers an internal query we were asked (its ack, if asked for, is
    /// sent already). `sealed`: whether it reached us sealed (or is ours).
    pub(super) fn answer_internal(&mut self, _now: Instant, sealed: bool, a: &Answering, name: &str, payload: &[u8]) {
        if name == KEYS {
            let answer = self.key_answer(sealed, payload);
            let bytes = postcard::to_allocvec(&answer).unwrap_or_default();
            self.send_answer(a, false, &bytes);
        } else if name == PRUNE
            && let Ok(member) = core::str::from_utf8(payload)
        {
            // Only a member held failed or departed is forgotten: a running
            // one stays, whoever asks.
            self.membership.prune(member, &mut self.dissemination, &mut self.outbox);
        }
    }

    fn key_answer(&mut self, sealed: bool, payload: &[u8]) -> KeyAnswer {
        let refuse = |why: &str| KeyAnswer { error: Some(why.into()), keys: Vec::new() };
        if !sealed {
            return refuse("refused: the key query was not sealed");
        }
        let Ok(command) = postcard::from_bytes::<KeyCommand>(payload) else {
            return refuse("refused: the key query does not decode");
        };
        #[cfg(feature = "encryption")]
        {
            use crate::wire::keyring::{Key, KeyringOp};
            let op = match command {
                KeyCommand::Install(k) => Some(KeyringOp::Install(Key::new(k))),
                KeyCommand::Use(k) => Some(KeyringOp::Use(Key::new(k))),
                KeyCommand::Remove(k) => Some(KeyringOp::Remove(Key::new(k))),
                KeyCommand::List => None,
            };
            let error = match op.map(|op| self.envelope.apply(op)) {
                Some(Err(e)) => Some(alloc::format!("{e}")),
                _ => None,
            };
            self.outbox.set_layout(self.envelope.layout());
            KeyAnswer { error, keys: self.envelope.keys().map(|k| k.fingerprint()).collect() }
        }
        #[cfg(not(feature = "encryption"))]
        {
            let _ = command;
            refuse("refused: this member has no keyring (built without encryption)")
        }
    }
}

impl<R> Swim<R> {
    /// The report of an internal query of ours at its deadline.
    pub(super) fn report(&self, kind: Internal, q: &Asked) -> QueryReport {
        let mut report = base_report(q);
        if kind != Internal::Keys {
            return report;
        }
        let mut held: BTreeMap<u32, usize> = BTreeMap::new();
        report.acked.clear();
        for (from, bytes) in &q.answers {
            let answer = if self.config.serf_wire { serf_key_answer(bytes) } else { postcard::from_bytes(bytes).ok() };
            let answer =
                answer.unwrap_or_else(|| KeyAnswer { error: Some("answer does not decode".into()), keys: Vec::new() });
            match answer.error {
                Some(why) => report.failed.push((from.clone(), why)),
                None => report.acked.push(from.clone()),
            }
            for k in &answer.keys {
                *held.entry(*k).or_default() += 1;
            }
            if let Some(&primary) = answer.keys.first() {
                report.primary.push((from.clone(), primary));
            }
        }
        report.keys = held.into_iter().collect();
        report
    }
}

/// A serf member's answer to a key query, as ours: its message if it could
/// not, and the fingerprints of its keys (of those we could hold: 32
/// bytes), the primary first.
fn serf_key_answer(bytes: &[u8]) -> Option<KeyAnswer> {
    let r = crate::wire::memberlist::serf_keys::KeyResponse::decode(bytes).ok()?;
    let error = (!r.result).then(|| String::from(r.message));
    #[cfg(feature = "encryption")]
    let keys = {
        use base64::Engine;
        use base64::engine::general_purpose::STANDARD;
        let fingerprint = |text: &str| {
            let bytes = STANDARD.decode(text).ok()?;
            crate::wire::keyring::Key::from_slice(&bytes).map(|k| k.fingerprint())
        };
        let primary = fingerprint(r.primary_key);
        let others = r.keys.iter().filter_map(|k| fingerprint(k)).filter(|f| Some(*f) != primary);
        primary.into_iter().chain(others).collect()
    };
    #[cfg(not(feature = "encryption"))]
    let keys = Vec::new();
    Some(KeyAnswer { error, keys })
}
