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
//! [`FLUSH_BYTES`] (and on [`TraceWriter::flush`] or drop). The core never
//! does I/O itself: the sink is the caller's.
//!
//! A trace holds no key: a keyring change is recorded with the key's
//! [fingerprint](Key::fingerprint) ([`TraceInput::Keyring`]), and a replay
//! is given the keys to put back ([`replay`]).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::SocketAddr;

use serde::{Deserialize, Serialize, Serializer};

use crate::config::Config;
use crate::driver::{Driver, Transport};
use crate::io::{Action, Event, Input, OwnedInput, StreamId};
use crate::keyring::{Key, KeyringOp};
use crate::name::MemberName;
use crate::swim::{Identity, Swim};
use crate::time::Instant;
use crate::wire::Datagram;

/// The first bytes of every trace.
pub const MAGIC: [u8; 8] = *b"SWIMTRC\0";
/// The format version this build writes and reads.
pub const TRACE_VERSION: u16 = 6;
/// Buffered bytes that trigger a write to the sink.
pub const FLUSH_BYTES: usize = 64 * 1024;
/// The largest record a reader accepts (a stream frame and its framing).
pub const MAX_RECORD: usize = crate::wire::MAX_FRAME + 1024;

/// Who the member is and how it was built: what a replay needs to build
/// it again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
/// names its key by fingerprint only. However it was built, a keyring
/// change is written as [`TraceInput::Keyring`], so no key's bytes ever
/// reach a trace.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub enum TraceInput {
    /// Any input but a keyring change.
    Input(OwnedInput),
    /// A keyring change.
    Keyring(KeyringChange),
}

/// A keyring change with its key named by [`Key::fingerprint`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
            other => TraceInput::Input(OwnedInput::from(other)),
        }
    }
}

impl From<OwnedInput> for TraceInput {
    fn from(input: OwnedInput) -> Self {
        match input {
            OwnedInput::Keyring(op) => TraceInput::Keyring(KeyringChange::of(op)),
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
            TraceInput::Input(input) => s.serialize_newtype_variant("TraceInput", 0, "Input", input),
            TraceInput::Keyring(change) => s.serialize_newtype_variant("TraceInput", 1, "Keyring", change),
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
        }
    }
}

/// An action in short, as a trace keeps it: enough to see what a member
/// did (whom it sent how much, when it asked to wake, what it reported),
/// not the bytes themselves (the digest covers those).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

/// Why a trace cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceError {
    /// The file does not start with [`MAGIC`]: not a trace.
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

/// Encodes a trace into a sink, record by record.
pub struct TraceWriter {
    buf: Vec<u8>,
    sink: Box<dyn TraceSink + Send>,
}

impl fmt::Debug for TraceWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceWriter").field("buffered", &self.buf.len()).finish_non_exhaustive()
    }
}

impl TraceWriter {
    /// A trace of the member described by `header`, into `sink`.
    pub fn new(header: &TraceHeader, sink: Box<dyn TraceSink + Send>) -> Self {
        let mut buf = Vec::with_capacity(FLUSH_BYTES);
        write_header(&mut buf, header);
        let mut w = TraceWriter { buf, sink };
        w.flush();
        w
    }

    /// Appends one record.
    pub fn push(&mut self, record: &TraceRecord) {
        write_record(&mut self.buf, record);
        if self.buf.len() >= FLUSH_BYTES {
            self.flush();
        }
    }

    /// Hands everything buffered to the sink.
    pub fn flush(&mut self) {
        if !self.buf.is_empty() {
            self.sink.write(&self.buf);
            self.buf.clear();
        }
    }
}

/// A whole trace in memory: `header`, then `records` (to write a trace
/// out of a test or a tool, or to edit one read with [`TraceReader`]).
pub fn to_bytes<'r>(header: &TraceHeader, records: impl IntoIterator<Item = &'r TraceRecord>) -> Vec<u8> {
    let mut buf = Vec::new();
    write_header(&mut buf, header);
    for r in records {
        write_record(&mut buf, r);
    }
    buf
}

/// Magic, version, header length, header.
fn write_header(buf: &mut Vec<u8>, header: &TraceHeader) {
    buf.extend_from_slice(&MAGIC);
    buf.extend_from_slice(&TRACE_VERSION.to_le_bytes());
    let body = postcard::to_allocvec(header).unwrap_or_default();
    buf.extend_from_slice(&(body.len() as u32).to_le_bytes());
    buf.extend_from_slice(&body);
}

/// Record length, record.
fn write_record(buf: &mut Vec<u8>, record: &TraceRecord) {
    let at = buf.len();
    buf.extend_from_slice(&[0; 4]);
    // Encoding into a Vec cannot fail; should it, the record is left out.
    match postcard::to_extend(record, core::mem::take(buf)) {
        Ok(b) => *buf = b,
        Err(_) => return,
    }
    let len = (buf.len() - at - 4) as u32;
    buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

impl Drop for TraceWriter {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Reads a trace: its header, then its records in order.
#[derive(Debug)]
pub struct TraceReader<'a> {
    /// The member the trace is of.
    pub header: TraceHeader,
    rest: &'a [u8],
    records: usize,
}

impl<'a> TraceReader<'a> {
    /// Checks the magic and version and decodes the header.
    pub fn new(bytes: &'a [u8]) -> Result<Self, TraceError> {
        if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
            return Err(TraceError::NotATrace);
        }
        let rest = &bytes[MAGIC.len()..];
        let (version, rest) = split::<2>(rest).ok_or(TraceError::Truncated { records: 0 })?;
        let version = u16::from_le_bytes(version);
        if version != TRACE_VERSION {
            return Err(TraceError::Version(version));
        }
        let (len, rest) = split::<4>(rest).ok_or(TraceError::Truncated { records: 0 })?;
        let len = u32::from_le_bytes(len) as usize;
        if rest.len() < len {
            return Err(TraceError::Truncated { records: 0 });
        }
        let (body, rest) = rest.split_at(len);
        let header = postcard::from_bytes(body).map_err(|_| TraceError::Malformed { records: 0 })?;
        Ok(TraceReader { header, rest, records: 0 })
    }
}

fn split<const N: usize>(b: &[u8]) -> Option<([u8; N], &[u8])> {
    let head = b.get(..N)?;
    let mut a = [0; N];
    a.copy_from_slice(head);
    Some((a, &b[N..]))
}

impl Iterator for TraceReader<'_> {
    type Item = Result<TraceRecord, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let records = self.records;
        let Some((len, rest)) = split::<4>(self.rest) else {
            self.rest = &[];
            return Some(Err(TraceError::Truncated { records }));
        };
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_RECORD {
            self.rest = &[];
            return Some(Err(TraceError::Malformed { records }));
        }
        if rest.len() < len {
            self.rest = &[];
            return Some(Err(TraceError::Truncated { records }));
        }
        let (body, rest) = rest.split_at(len);
        self.rest = rest;
        self.records += 1;
        Some(postcard::from_bytes(body).map_err(|_| {
            self.rest = &[];
            TraceError::Malformed { records }
        }))
    }
}

/// Where a replay first went another way than the recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// The input's index (0 is the first record).
    pub index: usize,
    /// Its time.
    pub at: Instant,
    /// The input.
    pub input: TraceInput,
    /// The digest recorded after it.
    pub expected: u64,
    /// The digest the replay reached.
    pub actual: u64,
    /// What the recording emitted for it.
    pub expected_actions: Vec<ActionNote>,
    /// What the replay emitted for it.
    pub actions: Vec<Action>,
}

/// A trace re-run: how far it went and, if it did, where it diverged.
#[derive(Debug)]
pub struct Replayed<R> {
    /// The member as the replay left it (for inspection).
    pub swim: Swim<R>,
    /// Inputs re-run.
    pub inputs: usize,
    /// Time of the last input re-run.
    pub last_at: Option<Instant>,
    /// The first input after which the digests differ.
    pub divergence: Option<Divergence>,
    /// Every input and what the replay emitted for it, when asked.
    pub listing: Vec<(TraceRecord, Vec<Action>)>,
}

/// A transport that keeps the actions of the input being handled.
struct Keep(Vec<Action>);

impl Transport for Keep {
    fn send(&mut self, to: SocketAddr, packet: Datagram) -> Option<Datagram> {
        self.0.push(Action::Send { to, packet });
        None
    }
    fn set_timer(&mut self, at: Instant) {
        self.0.push(Action::SetTimer(at));
    }
    fn event(&mut self, event: Event) {
        self.0.push(Action::Event(event));
    }
    fn open_stream(&mut self, id: StreamId, to: SocketAddr) {
        self.0.push(Action::OpenStream { id, to });
    }
    fn send_frame(&mut self, id: StreamId, frame: Datagram) -> Option<Datagram> {
        self.0.push(Action::SendFrame { id, frame });
        None
    }
    fn close_stream(&mut self, id: StreamId) {
        self.0.push(Action::CloseStream { id });
    }
}

/// Re-runs the trace in `bytes` on a member built from its header with
/// the generator `rng(seed)`, checking the digest after every input; stops
/// at the first divergence, after `until` inputs, or at the end. With
/// `list`, keeps every input and its actions. A keyring change takes its
/// key from `keys` (by fingerprint): one whose key is not there ends the
/// replay with [`TraceError::MissingKey`].
pub fn replay<R: rand_core::Rng>(
    bytes: &[u8],
    keys: &[Key],
    rng: impl FnOnce(u64) -> R,
    until: Option<usize>,
    list: bool,
) -> Result<Replayed<R>, TraceError> {
    let reader = TraceReader::new(bytes)?;
    let header = reader.header.clone();
    let mut swim = Swim::new(header.config.clone(), header.identity()?, rng(header.seed))
        .map_err(|_| TraceError::Malformed { records: 0 })?;
    swim.set_nonce_prefix(header.nonce_prefix);
    let mut driver = Driver::new();
    let mut keep = Keep(Vec::new());
    let (mut inputs, mut last_at, mut divergence, mut listing) = (0, None, None, Vec::new());
    for record in reader {
        if until.is_some_and(|u| inputs >= u) {
            break;
        }
        let record = record?;
        keep.0.clear();
        let input = record
            .input
            .as_input(keys)
            .map_err(|fingerprint| TraceError::MissingKey { fingerprint, record: inputs })?;
        let _ = driver.handle(&mut swim, record.at, input, &mut keep);
        inputs += 1;
        last_at = Some(record.at);
        let actual = driver.digest().value();
        if actual != record.digest {
            let actions = core::mem::take(&mut keep.0);
            let (index, at, expected) = (inputs - 1, record.at, record.digest);
            let expected_actions = record.actions;
            divergence =
                Some(Divergence { index, at, input: record.input, expected, actual, expected_actions, actions });
            break;
        }
        if list {
            listing.push((record, core::mem::take(&mut keep.0)));
        }
    }
    Ok(Replayed { swim, inputs, last_at, divergence, listing })
}

#[cfg(test)]
mod tests {
    use alloc::sync::Arc;
    use alloc::vec;
    use core::net::SocketAddr;
    use std::sync::Mutex;

    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus as Rng64;

    use super::*;
    use crate::MemberName;

    fn addr(i: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], 7000 + i))
    }

    /// A key whose bytes all differ, so that no stretch of it turns up in
    /// a trace by chance.
    fn key() -> Key {
        Key::new(core::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11)))
    }

    /// The trace of a sealed member's first seconds: keys installed and
    /// made primary through the driver, a join, wake-ups.
    fn recorded() -> Vec<u8> {
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let sink = {
            let bytes = bytes.clone();
            move |b: &[u8]| bytes.lock().unwrap().extend_from_slice(b)
        };
        let id = Identity::new(MemberName::new("a").unwrap(), addr(1));
        let mut swim = Swim::new(Config::lan(), id, Rng64::seed_from_u64(5)).unwrap();
        swim.set_nonce_prefix([9; 12]);
        let mut driver = Driver::new();
        driver.record(TraceWriter::new(&TraceHeader::of(5, &swim), Box::new(sink)));
        let mut io = Keep(Vec::new());
        let other = Key::new([0xee; 32]);
        for op in [KeyringOp::Install(key()), KeyringOp::Install(other), KeyringOp::Use(other), KeyringOp::Use(key())] {
            driver.handle(&mut swim, Instant::ZERO, Input::Keyring(op), &mut io).unwrap();
        }
        driver.handle(&mut swim, Instant::ZERO, Input::Join { seeds: &[addr(2)] }, &mut io).unwrap();
        for t in (100..5000).step_by(100) {
            let _ = driver.handle(&mut swim, Instant::from_millis(t), Input::Timeout, &mut io);
        }
        assert!(
            io.0.iter().any(|a| matches!(a, Action::SendFrame { .. } | Action::Send { .. })),
            "it sealed something"
        );
        drop(driver);
        core::mem::take(&mut *bytes.lock().unwrap())
    }

    #[test]
    fn a_trace_holds_no_key_and_replays_with_the_keys_given() {
        let bytes = recorded();
        let k = key();
        for w in k.as_bytes().windows(8) {
            assert!(!bytes.windows(8).any(|b| b == w), "a stretch of the key is in the trace");
        }
        let records: Vec<_> = TraceReader::new(&bytes).unwrap().map(Result::unwrap).collect();
        assert_eq!(records[0].input, TraceInput::Keyring(KeyringChange::Install(k.fingerprint())));

        let rng = Rng64::seed_from_u64;
        let r = replay(&bytes, &[Key::new([0xee; 32]), k], rng, None, false).unwrap();
        assert_eq!(r.divergence, None);
        assert_eq!(r.inputs, records.len());
        assert_eq!(r.swim.keys(), [k, Key::new([0xee; 32])]);

        let Err(e) = replay(&bytes, &[Key::new([0xee; 32])], rng, None, false) else {
            panic!("replayed without the key")
        };
        assert_eq!(e, TraceError::MissingKey { fingerprint: k.fingerprint(), record: 0 });
        let text = alloc::format!("{e}");
        assert!(text.contains(&alloc::format!("{:08x}", k.fingerprint())), "{text}");
    }

    #[test]
    fn a_keyring_change_held_as_an_owned_input_is_written_by_fingerprint() {
        let k = key();
        let record = TraceRecord {
            at: Instant::ZERO,
            input: TraceInput::Input(OwnedInput::Keyring(KeyringOp::Install(k))),
            digest: 0,
            actions: vec![],
        };
        let header = TraceHeader::of(
            1,
            &Swim::new(Config::lan(), Identity::new(MemberName::new("a").unwrap(), addr(1)), Rng64::seed_from_u64(1))
                .unwrap(),
        );
        let bytes = to_bytes(&header, [&record]);
        assert!(!bytes.windows(32).any(|b| b == k.as_bytes()));
        let read: Vec<_> = TraceReader::new(&bytes).unwrap().map(Result::unwrap).collect();
        assert_eq!(read[0].input, TraceInput::Keyring(KeyringChange::Install(k.fingerprint())));
    }

    #[test]
    fn an_older_trace_is_refused_with_its_version() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&4u16.to_le_bytes());
        bytes.extend_from_slice(&[0; 8]);
        let e = TraceReader::new(&bytes).unwrap_err();
        assert_eq!(e, TraceError::Version(4));
        assert!(alloc::format!("{e}").contains("older"), "{e}");
    }
}
