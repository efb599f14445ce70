//! serf's state in memberlist's push-pull (`messagePushPull` in
//! `serf/messages.go` at serf 0.9.4, the push-pull's user state): serf's
//! three Lamport clocks and its recent user events, which a push-pull
//! carries to repair members that missed them and to tell a joiner which
//! events are the cluster's past.
//!
//! Read: the clocks and the events. Each member's status time
//! (`StatusLTimes`) and the left members (`LeftMembers`) are skipped:
//! the membership in the same push-pull already says who is alive or
//! left. Written: the same, with no status times and no left members.

use alloc::vec::Vec;

use super::error::{EncodeError, Error};
use super::msgpack::read::Reader;
use super::msgpack::write;
use super::serf::SerfType;

/// Past this many events in one push-pull the state is no serf agent's
/// (serf keeps 512 by default): refused rather than read on.
const MAX_EVENTS: usize = 8192;

/// One recent user event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StateEvent<'a> {
    /// Its event clock time.
    pub(crate) ltime: u64,
    /// `Name`.
    pub(crate) name: &'a str,
    /// `Payload`.
    pub(crate) payload: &'a [u8],
}

/// serf's push-pull state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PushPullState<'a> {
    /// `LTime`: the member clock, past every join and leave intent seen.
    pub(crate) ltime: u64,
    /// `EventLTime`: the time the sender's next event will carry.
    pub(crate) event_ltime: u64,
    /// `QueryLTime`: the time the sender's next query will carry.
    pub(crate) query_ltime: u64,
    /// `Events`: the recent events, flattened.
    pub(crate) events: Vec<StateEvent<'a>>,
}

impl<'a> PushPullState<'a> {
    /// Reads a push-pull's user state: serf's type byte, then the struct.
    pub(crate) fn decode(bytes: &'a [u8]) -> Result<Self, Error> {
        let (&t, body) = bytes.split_first().ok_or(Error::Truncated)?;
        if t != SerfType::PushPull as u8 {
            return Err(Error::UnexpectedType(t));
        }
        let mut s = PushPullState::default();
        Reader::new(body).read_struct(|key, r| {
            match key {
                b"LTime" => s.ltime = r.uint()?,
                b"EventLTime" => s.event_ltime = r.uint()?,
                b"QueryLTime" => s.query_ltime = r.uint()?,
                b"Events" => read_events(r, &mut s.events)?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(s)
    }

    /// Appends the state as serf writes it: type byte, then the struct
    /// with its fields sorted by name; the events grouped by time, in
    /// the order given.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write::atomically(out, |out| {
            out.push(SerfType::PushPull as u8);
            write::map_header(out, 6);
            write::key(out, "EventLTime");
            write::uint(out, self.event_ltime);
            write::key(out, "Events");
            let groups: Vec<&[StateEvent<'_>]> = self.events.chunk_by(|a, b| a.ltime == b.ltime).collect();
            write::array_header(out, groups.len());
            for group in groups {
                write::map_header(out, 2);
                write::key(out, "Events");
                write::array_header(out, group.len());
                for e in group {
                    write::map_header(out, 2);
                    write::key(out, "Name");
                    write::raw(out, e.name.as_bytes())?;
                    write::key(out, "Payload");
                    write::raw(out, e.payload)?;
                }
                write::key(out, "LTime");
                write::uint(out, group.first().map_or(0, |e| e.ltime));
            }
            write::key(out, "LTime");
            write::uint(out, self.ltime);
            write::key(out, "LeftMembers");
            write::array_header(out, 0);
            write::key(out, "QueryLTime");
            write::uint(out, self.query_ltime);
            write::key(out, "StatusLTimes");
            write::map_header(out, 0);
            Ok(())
        })
    }
}

/// `Events`: a list of `*userEvents` (nil for an empty slot of serf's
/// ring), each a time and the events at it.
fn read_events<'a>(r: &mut Reader<'a>, out: &mut Vec<StateEvent<'a>>) -> Result<(), Error> {
    let groups = r.array_len()?.unwrap_or(0);
    for _ in 0..groups {
        if r.nil() {
            continue;
        }
        let mut ltime = 0;
        let start = out.len();
        r.read_struct(|key, r| {
            match key {
                b"LTime" => ltime = r.uint()?,
                b"Events" => {
                    let n = r.array_len()?.unwrap_or(0);
                    if out.len().saturating_add(n) > MAX_EVENTS {
                        return Err(Error::Oversized);
                    }
                    for _ in 0..n {
                        let mut e = StateEvent { ltime: 0, name: "", payload: &[] };
                        r.read_struct(|key, r| {
                            match key {
                                b"Name" => e.name = r.str()?,
                                b"Payload" => e.payload = r.bytes_or_empty()?,
                                _ => return Ok(false),
                            }
                            Ok(true)
                        })?;
                        out.push(e);
                    }
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        // The time may come after the events: set once the group is read.
        for e in out.get_mut(start..).unwrap_or_default() {
            e.ltime = ltime;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(out: &mut Vec<u8>, k: &str) {
        out.push(0xa0 | k.len() as u8);
        out.extend_from_slice(k.as_bytes());
    }

    /// A serf agent's state as go-msgpack writes it: a ring of four slots,
    /// two empty, one member's status time, one left member.
    fn serfs_state() -> Vec<u8> {
        let mut b = alloc::vec![2, 0x86];
        key(&mut b, "EventLTime");
        b.push(9);
        key(&mut b, "Events");
        b.extend_from_slice(&[0x94, 0xc0]);
        b.push(0x82);
        key(&mut b, "Events");
        b.extend_from_slice(&[0x92, 0x82]);
        key(&mut b, "Name");
        b.extend_from_slice(&[0xa6, b'd', b'e', b'p', b'l', b'o', b'y']);
        key(&mut b, "Payload");
        b.extend_from_slice(&[0xa2, b'v', b'1', 0x82]);
        key(&mut b, "Name");
        b.extend_from_slice(&[0xa2, b'u', b'p']);
        key(&mut b, "Payload");
        b.push(0xc0);
        key(&mut b, "LTime");
        b.push(7);
        b.push(0xc0);
        b.push(0x82);
        key(&mut b, "LTime");
        b.push(8);
        key(&mut b, "Events");
        b.extend_from_slice(&[0x91, 0x82]);
        key(&mut b, "Name");
        b.extend_from_slice(&[0xa1, b'x']);
        key(&mut b, "Payload");
        b.extend_from_slice(&[0xa0]);
        key(&mut b, "LTime");
        b.push(5);
        key(&mut b, "LeftMembers");
        b.extend_from_slice(&[0x91, 0xa2, b'g', b'o']);
        key(&mut b, "QueryLTime");
        b.push(3);
        key(&mut b, "StatusLTimes");
        b.extend_from_slice(&[0x81, 0xa2, b'g', b'o', 4]);
        b
    }

    #[test]
    fn a_serf_agents_state_is_read_and_ours_written_as_serf_writes_it() {
        let bytes = serfs_state();
        let s = PushPullState::decode(&bytes).unwrap();
        assert_eq!((s.ltime, s.event_ltime, s.query_ltime), (5, 9, 3));
        let ev = |ltime, name, payload| StateEvent { ltime, name, payload };
        assert_eq!(s.events, [ev(7, "deploy", &b"v1"[..]), ev(7, "up", &b""[..]), ev(8, "x", &b""[..])]);
        // Ours: the same clocks and events; no status times, nobody left.
        let mut out = Vec::new();
        s.encode(&mut out).unwrap();
        assert_eq!(PushPullState::decode(&out), Ok(s));
        let tail = [0xa0 | 10, b'Q', b'u', b'e', b'r', b'y', b'L', b'T', b'i', b'm', b'e', 3];
        assert!(out.windows(tail.len()).any(|w| w == tail));
        assert!(out.ends_with(&[0xac, b'S', b't', b'a', b't', b'u', b's', b'L', b'T', b'i', b'm', b'e', b's', 0x80]));
    }

    #[test]
    fn junk_states_are_refused() {
        assert_eq!(PushPullState::decode(&[]), Err(Error::Truncated));
        assert_eq!(PushPullState::decode(&[3, 0x80]), Err(Error::UnexpectedType(3)));
        let mut huge = alloc::vec![2, 0x81];
        key(&mut huge, "Events");
        huge.extend_from_slice(&[0x91, 0x81]);
        key(&mut huge, "Events");
        huge.extend_from_slice(&[0xdd, 0, 1, 0, 0]);
        huge.extend(core::iter::repeat_n(0x80, 70_000));
        assert_eq!(PushPullState::decode(&huge), Err(Error::Oversized));
        let mut bytes = serfs_state();
        bytes.truncate(bytes.len() - 3);
        assert!(PushPullState::decode(&bytes).is_err());
    }
}
