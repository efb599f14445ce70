//! serf's internal queries, in serf's dialect
//! ([`Config::serf_wire`](crate::Config::serf_wire)): the protocol
//! answers them itself, as a serf agent does, and never raises them to
//! the application.
//!
//! - `_serf_install-key`, `_serf_use-key`, `_serf_remove-key`,
//!   `_serf_list-keys` (`serf keys`): change or list our keyring and
//!   answer whether we could, as memberlist's keyring would (installing a
//!   key held already, or removing one not held, succeeds). Taken only
//!   sealed: a key never comes from a datagram anyone could have sent.
//! - `_serf_ping` (`serf reachability`): the acknowledgement the query
//!   asks for is the whole answer, and it is sent before this.
//! - Anything else (`_serf_conflict`, which asks about a name claimed
//!   twice): not answered.

use alloc::string::String;
use alloc::vec::Vec;

use rand_core::Rng;

use super::Swim;
use crate::protocol::queries::Answering;
use crate::wire::memberlist::serf_keys::{KeyQuery, KeyResponse};

impl<R: Rng> Swim<R> {
    /// Answers serf's internal query `name` (its ack, if asked for, is
    /// sent already). `sealed`: whether it reached us sealed.
    pub(super) fn answer_serf_internal(&mut self, sealed: bool, a: &Answering, name: &str, payload: &[u8]) {
        let Some(query) = KeyQuery::from_name(name) else { return };
        let mut keys = Vec::new();
        let mut primary = String::new();
        let outcome = self.serf_key_change(sealed, query, payload, &mut keys, &mut primary);
        let response = KeyResponse {
            result: outcome.is_ok(),
            message: outcome.err().unwrap_or_default(),
            keys: keys.iter().map(String::as_str).collect(),
            primary_key: &primary,
        };
        let mut bytes = Vec::new();
        if response.encode(&mut bytes).is_ok() {
            self.send_answer(a, false, &bytes);
        }
    }

    /// Does what key query `query` asks: listing, our keys in base64 into
    /// `keys` and the primary into `primary`. The error is serf's message.
    fn serf_key_change(
        &mut self,
        sealed: bool,
        query: KeyQuery,
        payload: &[u8],
        keys: &mut Vec<String>,
        primary: &mut String,
    ) -> Result<(), &'static str> {
        if !self.envelope.sealing() {
            return Err(match query {
                KeyQuery::List => "Keyring is empty (encryption not enabled)",
                _ => "No keyring to modify (encryption not enabled)",
            });
        }
        if !sealed {
            return Err("refused: the key query was not sealed");
        }
        #[cfg(feature = "encryption")]
        {
            use base64::Engine;
            use base64::engine::general_purpose::STANDARD;

            use crate::wire::keyring::{Key, KeyringError, KeyringOp};
            let key = match query {
                KeyQuery::List => None,
                _ => {
                    let bytes = crate::wire::memberlist::serf_keys::decode_request(payload)
                        .map_err(|_| "refused: the key request does not decode")?;
                    Some(Key::from_slice(bytes).ok_or("refused: only 32-byte (AES-256) keys are taken")?)
                }
            };
            let op = match (query, key) {
                (KeyQuery::Install, Some(k)) => Some(KeyringOp::Install(k)),
                (KeyQuery::Use, Some(k)) => Some(KeyringOp::Use(k)),
                (KeyQuery::Remove, Some(k)) => Some(KeyringOp::Remove(k)),
                _ => None,
            };
            let result = match op.map(|op| self.envelope.apply(op)) {
                // memberlist removes a key it does not hold without a word.
                Some(Err(KeyringError::UnknownKey)) if query == KeyQuery::Remove => Ok(()),
                Some(Err(KeyringError::UnknownKey)) => Err("Requested key is not in the keyring"),
                Some(Err(KeyringError::Primary)) => Err("Removing the primary key is not allowed"),
                Some(Err(KeyringError::Full)) => Err("refused: the keyring is full"),
                Some(Ok(())) | None => Ok(()),
            };
            self.outbox.set_layout(self.envelope.layout());
            if query == KeyQuery::List {
                keys.extend(self.envelope.keys().map(|k| STANDARD.encode(k.as_bytes())));
                *primary = keys.first().cloned().unwrap_or_default();
            }
            result
        }
        #[cfg(not(feature = "encryption"))]
        {
            let _ = (payload, keys, primary);
            Err("No keyring to modify (encryption not enabled)")
        }
    }
}
