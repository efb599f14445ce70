//! Re-running a trace and finding where it first goes another way.

use alloc::vec::Vec;
use core::net::SocketAddr;

use super::reader::TraceReader;
use super::{ActionNote, TraceError, TraceInput, TraceRecord};
use crate::api::driver::{Driver, Transport};
use crate::api::{Action, Event, StreamId};
use crate::machine::Swim;
use crate::util::time::Instant;
use crate::wire::Datagram;
use crate::wire::keyring::Key;

/// Where a replay first went another way than the recording.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
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
#[non_exhaustive]
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
pub(super) struct Keep(pub(super) Vec<Action>);

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
