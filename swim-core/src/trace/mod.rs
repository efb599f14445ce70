//! Traces: one member's life, recorded input by input, so that it can be
//! re-run offline exactly (`swim replay`). A `Swim` is deterministic for a
//! configuration, a generator seed and a sequence of `(now, input)`; a
//! trace holds exactly that, plus the running [`Digest`](crate::Digest) of everything the
//! member emitted after each input and a short account of those actions
//! ([`ActionNote`]), so a replay can say where it first went another way
//! and what was expected there. docs/trace.md specifies the bytes.
//!
//! ```text
//! "SWIMTRC\0" | version (u16 LE) | header length (u32 LE) | header | record | record | ...
//! record = length (u32 LE) | postcard(TraceRecord)
//! ```
//!
//! Writing is streaming with a bounded buffer: records collect in a
//! buffer that goes to the [`TraceSink`] whenever it passes
//! 64 KiB (and on [`TraceWriter::flush`] or drop). The core never
//! does I/O itself: the sink is the caller's.
//!
//! A trace holds no key: a keyring change is recorded with the key's
//! [fingerprint](Key::fingerprint) ([`TraceInput::Keyring`]), and a replay
//! is given the keys to put back ([`replay`]).

pub(crate) mod reader;
mod replay;
#[cfg(test)]
mod tests;
pub(crate) mod writer;

pub use reader::TraceReader;
pub use replay::{Divergence, Replayed, replay};
pub use writer::TraceWriter;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::SocketAddr;

use serde::{Deserialize, Serialize, Serializer};

use crate::api::Identity;
use crate::api::config::Config;
use crate::api::{Action, Input, OwnedInput, StreamId};
use crate::machine::Swim;
use crate::util::name::MemberName;
use crate::util::time::Instant;
use crate::wire::Datagram;
use crate::wire::keyring::{Key, KeyringOp};

/// The first bytes of every trace.
pub(crate) const MAGIC: [u8; 8] = *b"SWIMTRC\0";
/// The format version this build writes and reads.
pub(crate) const TRACE_VERSION: u16 = 12;
/// Buffered bytes that trigger a write to the sink.
pub(crate) const FLUSH_BYTES: usize = 64 * 1024;
/// The largest record a reader accepts (a stream frame and its framing).
pub(crate) const MAX_RECORD: usize = crate::wire::MAX_FRAME + 1024;

/// Who the member is and how it was built: what a replay needs to build
/// it again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TraceHeader {
    /// The seed of its generator (`Xoshiro256PlusPlus::seed_from_u64` in
    /// every runtime of this repository).
    pub seed: u64,
    /// Its configuration.
    pub config: Config,
    /// Its name.
    pub name: String,
    /// Its address.
    pub addr: SocketAddr,
    /// Its metadata at start.
    pub meta: Vec<u8>,
    /// The prefix of its nonces ([`Swim::set_nonce_prefix`]), which a
    /// replay needs to seal the same bytes. Not a secret: the first
    /// packet it sealed carries it as its nonce.
    pub nonce_prefix: [u8; 12],
}

impl TraceHeader {
    /// The header of `swim`, as it is now (built, not yet given any
    /// input), whose generator was seeded with `seed`.
    pub fn of<R>(seed: u64, swim: &Swim<R>) -> Self {
        let identity = swim.local();
        TraceHeader {
            seed,
            config: swim.config().clone(),
            name: identity.name.as_str().into(),
            addr: identity.addr,
            meta: identity.meta.clone(),
            nonce_prefix: swim.nonce_prefix(),
        }
    }

    /// The member's identity.
    pub fn identity(&self) -> Result<Identity, TraceError> {
        let name = MemberName::new(&self.name).map_err(|_| TraceError::Malformed { records: 0 })?;
        Ok(Identity { name, addr: self.addr, meta: self.meta.clone() })
    }
}

/// One input as the member got it, and the digest of everything it had
/// emitted once the input was handled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TraceRecord {
    /// When (the `now` given with the input).
    pub at: Instant,
    /// The input.
    pub input: TraceInput,
    /// The driver's running digest after it.
    pub digest: u64,
    /// What the member emitted for it, in short.
    pub actions: Vec<ActionNote>,
}

/// An input as a trace keeps it: as given, except that a keyring change
/// (local, or cluster-wide through a query) names its key by fingerprint
/// only. However it was built, a keyring change is written as
/// [`TraceInput::Keyring`] or [`TraceInput::ClusterKeys`], so no key's
/// bytes ever reach a trace.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub enum TraceInput {
    /// Any input but a keyring change.
    Input(OwnedInput),
    /// A keyring change.
    Keyring(KeyringChange),
    /// A cluster-wide keyring change (`None`: a listing).
    ClusterKeys(Option<KeyringChange>),
}

/// A keyring change with its key named by [`Key::fingerprint`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum KeyringChange {
    /// [`KeyringOp::Install`] of the key with this fingerprint.
    Install(u32),
    /// [`KeyringOp::Use`] of the key with this fingerprint.
    Use(u32),
    /// [`KeyringOp::Remove`] of the key with this fingerprint.
    Remove(u32),
    /// [`KeyringOp::Mode`], as given.
    Mode {
        /// Seal outgoing datagrams and frames.
        seal_outgoing: bool,
        /// Accept plaintext.
        accept_plaintext: bool,
    },
}

impl KeyringChange {
    /// `op`, its key replaced by its fingerprint.
    pub fn of(op: KeyringOp) -> Self {
        match op {
            KeyringOp::Install(k) => KeyringChange::Install(k.fingerprint()),
            KeyringOp::Use(k) => KeyringChange::Use(k.fingerprint()),
            KeyringOp::Remove(k) => KeyringChange::Remove(k.fingerprint()),
            KeyringOp::Mode { seal_outgoing, accept_plaintext } => {
                KeyringChange::Mode { seal_outgoing, accept_plaintext }
            }
        }
    }

    /// The change, with the key of its fingerprint taken from `keys`;
    /// `Err(fingerprint)` when none of them has it.
    pub fn with_keys(self, keys: &[Key]) -> Result<KeyringOp, u32> {
        let key = |fp: u32| keys.iter().copied().find(|k| k.fingerprint() == fp).ok_or(fp);
        Ok(match self {
            KeyringChange::Install(fp) => KeyringOp::Install(key(fp)?),
            KeyringChange::Use(fp) => KeyringOp::Use(key(fp)?),
            KeyringChange::Remove(fp) => KeyringOp::Remove(key(fp)?),
            KeyringChange::Mode { seal_outgoing, accept_plaintext } => {
                KeyringOp::Mode { seal_outgoing, accept_plaintext }
            }
        })
    }
}

impl From<Input<'_>> for TraceInput {
    fn from(input: Input<'_>) -> Self {
        match input {
            Input::Keyring(op) => TraceInput::Keyring(KeyringChange::of(op)),
            Input::ClusterKeys { op } => TraceInput::ClusterKeys(op.map(KeyringChange::of)),
            other => TraceInput::Input(OwnedInput::from(other)),
        }
    }
}

impl From<OwnedInput> for TraceInput {
    fn from(input: OwnedInput) -> Self {
        match input {
            OwnedInput::Keyring(op) => TraceInput::Keyring(KeyringChange::of(op)),
            OwnedInput::ClusterKeys { op } => TraceInput::ClusterKeys(op.map(KeyringChange::of)),
            other => TraceInput::Input(other),
        }
    }
}

impl Serialize for TraceInput {
    /// Variant by variant as derived, but a keyring change held as an
    /// [`OwnedInput`] is written as [`TraceInput::Keyring`] too.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            TraceInput::Input(OwnedInput::Keyring(op)) => {
                s.serialize_newtype_variant("TraceInput", 1, "Keyring", &KeyringChange::of(*op))
            }
            TraceInput::Input(OwnedInput::ClusterKeys { op }) => {
                s.serialize_newtype_variant("TraceInput", 2, "ClusterKeys", &op.map(KeyringChange::of))
            }
            TraceInput::Input(input) => s.serialize_newtype_variant("TraceInput", 0, "Input", input),
            TraceInput::Keyring(change) => s.serialize_newtype_variant("TraceInput", 1, "Keyring", change),
            TraceInput::ClusterKeys(change) => s.serialize_newtype_variant("TraceInput", 2, "ClusterKeys", change),
        }
    }
}

impl TraceInput {
    /// The input to hand the member, a keyring change's key taken from
    /// `keys` by fingerprint; `Err(fingerprint)` when none of them has it.
    pub fn as_input(&self, keys: &[Key]) -> Result<Input<'_>, u32> {
        match self {
            TraceInput::Input(input) => Ok(input.as_input()),
            TraceInput::Keyring(change) => change.with_keys(keys).map(Input::Keyring),
            TraceInput::ClusterKeys(change) => {
                change.map(|c| c.with_keys(keys)).transpose().map(|op| Input::ClusterKeys { op })
            }
        }
    }
}

/// An action in short, as a trace keeps it: enough to see what a member
/// did (whom it sent how much, when it asked to wake, what it reported),
/// not the bytes themselves (the digest covers those).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ActionNote {
    /// A datagram of `len` bytes to `to`.
    Send {
        /// Destination.
        to: SocketAddr,
        /// Its length.
        len: u32,
    },
    /// A wake-up asked for.
    SetTimer(Instant),
    /// An event, in its debug form.
    Event(String),
    /// A stream opened.
    OpenStream {
        /// Its handle.
        id: StreamId,
        /// Where to.
        to: SocketAddr,
    },
    /// A frame of `len` bytes on a stream.
    SendFrame {
        /// The stream.
        id: StreamId,
        /// Its length.
        len: u32,
    },
    /// A stream closed.
    CloseStream {
        /// The stream.
        id: StreamId,
    },
}

impl ActionNote {
    /// The note of `action`.
    pub fn of(action: &Action) -> Self {
        let len = |d: &Datagram| u32::try_from(d.len()).unwrap_or(u32::MAX);
        match action {
            Action::Send { to, packet } => ActionNote::Send { to: *to, len: len(packet) },
            Action::SetTimer(at) => ActionNote::SetTimer(*at),
            Action::Event(e) => ActionNote::Event(alloc::format!("{e:?}")),
            Action::OpenStream { id, to } => ActionNote::OpenStream { id: *id, to: *to },
            Action::SendFrame { id, frame } => ActionNote::SendFrame { id: *id, len: len(frame) },
            Action::CloseStream { id } => ActionNote::CloseStream { id: *id },
        }
    }
}

/// Why a trace cannot be read or replayed. Reading touches nothing but
/// the bytes given; a replay that stops with one has built nothing the
/// caller holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TraceError {
    /// The file does not start with the magic bytes `SWIMTRC\0`: not a trace.
    NotATrace,
    /// A format version this build does not read.
    Version(u16),
    /// The file ends inside the header or a record (after `records`
    /// whole records): cut short, as by a crash while writing.
    Truncated {
        /// Whole records before the cut.
        records: usize,
    },
    /// The header or a record does not decode (after `records` records).
    Malformed {
        /// Whole records before the bad one.
        records: usize,
    },
    /// Record `record` changes the keyring with the key of this
    /// fingerprint, and the replay was not given that key.
    MissingKey {
        /// The key's [fingerprint](Key::fingerprint).
        fingerprint: u32,
        /// The record's index.
        record: usize,
    },
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::NotATrace => f.write_str("not a swim trace (bad magic)"),
            TraceError::Version(v) if *v < TRACE_VERSION => write!(
                f,
                "trace format version {v} is older than this build's {TRACE_VERSION} and cannot be replayed \
                 (record it again; a trace of version 4 or older of a sealed member holds its keys in the \
                 clear: delete it)"
            ),
            TraceError::Version(v) => write!(f, "trace format version {v}; this build reads {TRACE_VERSION}"),
            TraceError::Truncated { records } => write!(f, "trace cut short after {records} records"),
            TraceError::Malformed { records } => write!(f, "trace corrupt after {records} records"),
            TraceError::MissingKey { fingerprint, record } => {
                write!(f, "input {record} of the trace uses key {fingerprint:08x}, which the replay was not given")
            }
        }
    }
}

impl core::error::Error for TraceError {}

/// Where trace bytes go (a file, a socket, memory).
pub trait TraceSink {
    /// Takes the next bytes of the trace.
    fn write(&mut self, bytes: &[u8]);
}

impl<F: FnMut(&[u8])> TraceSink for F {
    fn write(&mut self, bytes: &[u8]) {
        self(bytes)
    }
}
