//! A stable digest of what a state machine emitted.
//!
//! 64-bit FNV-1a over a fixed encoding of each action (not `Debug`
//! strings, not `DefaultHasher`, whose output may change between Rust
//! releases), so a digest can be written to a file, committed, and
//! compared by a later build on any platform. Byte strings are taken eight
//! bytes (one little-endian word) per step, the tail byte by byte: the
//! same mixing as FNV-1a, an eighth of the steps.

use core::fmt;
use core::net::SocketAddr;

use crate::api::{Action, Event, StreamId};
use crate::util::time::Instant;

use crate::util::fnv::Fnv;

/// A running FNV-1a digest; see the module docs.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Digest(Fnv);

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({:016x})", self.0.value())
    }
}

impl fmt::Display for Digest {
    /// Sixteen lowercase hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0.value())
    }
}

impl Digest {
    /// The digest of nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// The digest's value.
    pub fn value(self) -> u64 {
        self.0.value()
    }

    /// Adds raw bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }

    /// Adds a number (little-endian).
    pub fn write_u64(&mut self, v: u64) {
        self.write(&v.to_le_bytes());
    }

    /// Adds a length-prefixed byte string.
    pub(crate) fn write_bytes(&mut self, b: &[u8]) {
        self.write_u64(b.len() as u64);
        self.write(b);
    }

    pub(crate) fn write_addr(&mut self, a: SocketAddr) {
        match a {
            SocketAddr::V4(v4) => {
                self.write(&[4]);
                self.write(&v4.ip().octets());
            }
            SocketAddr::V6(v6) => {
                self.write(&[6]);
                self.write(&v6.ip().octets());
            }
        }
        self.write(&a.port().to_le_bytes());
    }

    /// Adds the time an input was handled.
    pub fn time(&mut self, now: Instant) {
        self.write(&[0xff]);
        self.write_u64(now.as_millis());
    }

    /// Adds one action: a datagram's destination and bytes, a deadline, or
    /// an event with all its fields.
    pub fn action(&mut self, action: &Action) {
        match action {
            Action::Send { to, packet } => {
                self.write(&[0]);
                self.write_addr(*to);
                self.write_bytes(packet);
            }
            Action::SetTimer(at) => {
                self.write(&[1]);
                self.write_u64(at.as_millis());
            }
            Action::Event(e) => {
                self.write(&[2]);
                self.event(e);
            }
            Action::OpenStream { id, to } => {
                self.write(&[3]);
                self.stream(*id);
                self.write_addr(*to);
            }
            Action::SendFrame { id, frame } => {
                self.write(&[4]);
                self.stream(*id);
                self.write_bytes(frame);
            }
            Action::CloseStream { id } => {
                self.write(&[5]);
                self.stream(*id);
            }
        }
    }

    fn named(&mut self, kind: u8, name: &str) {
        self.write(&[kind]);
        self.write_bytes(name.as_bytes());
    }

    fn event(&mut self, e: &Event) {
        let named = Self::named;
        match e {
            Event::Joined { name, addr } => {
                named(self, 0, name.as_str());
                self.write_addr(*addr);
            }
            Event::Suspected { name, incarnation, local } => {
                named(self, 1, name.as_str());
                self.write_u64(u64::from(*incarnation));
                self.write(&[u8::from(*local)]);
            }
            Event::Alive { name, incarnation } => {
                named(self, 2, name.as_str());
                self.write_u64(u64::from(*incarnation));
            }
            Event::Failed { name, incarnation, local } => {
                named(self, 3, name.as_str());
                self.write_u64(u64::from(*incarnation));
                self.write(&[u8::from(*local)]);
            }
            Event::Left { name } => named(self, 4, name.as_str()),
            Event::Updated { name, addr } => {
                named(self, 5, name.as_str());
                self.write_addr(*addr);
            }
            Event::JoinCompleted { seed } => {
                self.write(&[6]);
                self.write_addr(*seed);
            }
            Event::JoinFailed => self.write(&[7]),
            Event::LeaveCompleted => self.write(&[8]),
            Event::User { from, ltime, name, payload, coalesce } => {
                named(self, 9, from.as_str());
                self.write_u64(*ltime);
                self.write_bytes(name.as_bytes());
                self.write_bytes(payload);
                self.write(&[u8::from(*coalesce)]);
            }
            Event::Message { from, payload, reliable } => {
                named(self, 10, from.as_str());
                self.write_bytes(payload);
                self.write(&[u8::from(*reliable)]);
            }
            Event::MessageFailed { to } => named(self, 11, to.as_str()),
            Event::AppState { from, join, state } => {
                named(self, 12, from.as_str());
                self.write(&[u8::from(*join)]);
                self.write_bytes(state);
            }
            Event::Rejected { from, stream, reason } => {
                self.write(&[13]);
                self.write_addr(*from);
                match stream {
                    Some(id) => self.stream(*id),
                    None => self.write(&[2]),
                }
                self.write(&[reason.index() as u8]);
            }
            Event::Query { id, from, ltime, name, payload } => {
                named(self, 14, from.as_str());
                self.write_u64(id.get());
                self.write_u64(*ltime);
                self.write_bytes(name.as_bytes());
                self.write_bytes(payload);
            }
            Event::QueryAck { id, from } => {
                named(self, 15, from.as_str());
                self.write_u64(id.get());
            }
            Event::QueryResponse { id, from, payload } => {
                named(self, 16, from.as_str());
                self.write_u64(id.get());
                self.write_bytes(payload);
            }
            Event::QueryDone { id } => {
                self.write(&[17]);
                self.write_u64(id.get());
            }
            Event::NameConflict { other, won } => {
                self.write(&[19, won.map_or(2, u8::from)]);
                self.write_addr(*other);
            }
            Event::Report { id, report } => {
                self.write(&[18]);
                self.write_u64(id.get());
                for (list, tag) in [(&report.acked, 0u8), (&report.silent, 1)] {
                    self.write(&[tag]);
                    for m in list {
                        self.write_bytes(m.as_str().as_bytes());
                    }
                }
                for (m, why) in &report.failed {
                    self.write_bytes(m.as_str().as_bytes());
                    self.write_bytes(why.as_bytes());
                }
                for (k, n) in &report.keys {
                    self.write_u64(u64::from(*k) << 32 | *n as u64);
                }
                for (m, k) in &report.primary {
                    self.write_bytes(m.as_str().as_bytes());
                    self.write_u64(u64::from(*k));
                }
            }
        }
    }

    fn stream(&mut self, id: StreamId) {
        match id {
            StreamId::Outbound(n) => {
                self.write(&[0]);
                self.write_u64(n);
            }
            StreamId::Inbound(n) => {
                self.write(&[1]);
                self.write_u64(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::name::MemberName;

    #[test]
    fn known_values_stay_put() {
        // FNV-1a test vectors: the empty input and "a".
        assert_eq!(Digest::new().value(), 0xcbf2_9ce4_8422_2325);
        let mut d = Digest::new();
        d.write(b"a");
        assert_eq!(d.value(), 0xaf63_dc4c_8601_ec8c);
        // A pinned action digest: changes only if the encoding does.
        let mut d = Digest::new();
        d.time(Instant::from_millis(5));
        d.action(&Action::SetTimer(Instant::from_millis(7)));
        let name = MemberName::new("n1").unwrap();
        d.action(&Action::Event(Event::Suspected { name, incarnation: 3, local: true }));
        assert_eq!(alloc::format!("{d}"), "a97dd20614c491a7");
    }
}
