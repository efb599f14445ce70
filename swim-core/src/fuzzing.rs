//! Harnesses for the fuzz targets in `fuzz/`: each target is a one-line
//! call into a function here, so the same code also runs in the ordinary
//! test suite. Not a stable API.

use core::net::SocketAddr;

use rand_core::{Infallible, TryRng};

use crate::wire::{self, Datagram, Messages, PacketWriter};
use crate::{Config, Driver, Event, Identity, Input, Instant, MemberName, StreamId, Swim, Transport};

/// Decodes `data` as a datagram; whatever decodes must re-encode to a
/// datagram that decodes to the same messages (round trip by value:
/// postcard is not canonical, so bytes may differ).
pub fn decode(data: &[u8]) {
    let mut msgs = Messages::new();
    if wire::decode(data, &mut msgs).is_err() {
        return;
    }
    let mut w = PacketWriter::new(wire::MAX_DATAGRAM);
    for m in &msgs {
        assert!(w.push(m).is_ok(), "a decoded datagram re-encodes within the maximum size");
    }
    let again = w.finish();
    let mut back = Messages::new();
    assert_eq!(wire::decode(&again, &mut back), Ok(()));
    assert_eq!(msgs, back);
}

/// A generator that replays the fuzzer's bytes, then zeros.
struct Bytes<'a>(&'a [u8]);

impl TryRng for Bytes<'_> {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.try_next_u64()? as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        let n = self.0.len().min(8);
        b[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let v = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i % 8], 7946))
}

/// Checks every action against the state machine's contract.
struct Contract {
    budget: usize,
    now: Instant,
}

impl Transport for Contract {
    fn send(&mut self, _to: SocketAddr, packet: Datagram) -> Option<Datagram> {
        assert!(packet.len() <= self.budget, "a datagram within the budget");
        Some(packet)
    }
    fn set_timer(&mut self, at: Instant) {
        assert!(at >= self.now, "no deadline in the past");
    }
    fn event(&mut self, _: Event) {}
    fn open_stream(&mut self, id: StreamId, _to: SocketAddr) {
        assert!(matches!(id, StreamId::Outbound(_)), "the machine opens outbound streams only");
    }
    fn send_frame(&mut self, _id: StreamId, frame: Datagram) -> Option<Datagram> {
        assert!(frame.len() <= wire::MAX_FRAME, "a frame within the limit");
        Some(frame)
    }
    fn close_stream(&mut self, _id: StreamId) {}
}

/// Drives one state machine with a script read from `data`: datagrams
/// (arbitrary bytes), wake-ups at arbitrary times, joins and leaves, stream
/// accepts, frames (arbitrary bytes) and ends, in any
/// order. It must never panic, and what it emits must respect its
/// contract (datagrams within the budget, deadlines not in the past).
pub fn state_machine(data: &[u8]) {
    let (seed, mut script) = data.split_at(data.len().min(16));
    let me = Identity::new(MemberName::new("me").unwrap_or_else(|_| unreachable!()), addr(0));
    let Ok(mut swim) = Swim::new(Config::lan(), me, Bytes(seed)) else { return };
    let mut driver = Driver::new();
    let mut io = Contract { budget: swim.config().packet_budget, now: Instant::ZERO };
    let mut now = 0u64;
    while let Some((&op, rest)) = script.split_first() {
        script = rest;
        io.now = Instant::from_millis(now);
        let stream = if op & 0x80 == 0 {
            StreamId::Inbound(u64::from(op >> 4 & 3))
        } else {
            StreamId::Outbound(u64::from(op >> 4 & 3))
        };
        let input = match op % 8 {
            0 | 1 => {
                // A datagram: a length byte, then that many bytes.
                let Some((&len, rest)) = script.split_first() else { break };
                let len = usize::from(len).min(rest.len());
                let (bytes, rest) = rest.split_at(len);
                script = rest;
                Input::Packet { from: addr(op), bytes }
            }
            2 => {
                let Some((&step, rest)) = script.split_first() else { break };
                script = rest;
                now += u64::from(step) * 50;
                io.now = Instant::from_millis(now);
                Input::Timeout
            }
            3 => {
                let seeds = [addr(op >> 3), addr(op >> 5)];
                let _ = driver.handle(&mut swim, io.now, Input::Join { seeds: &seeds }, &mut io);
                continue;
            }
            4 => Input::Leave,
            5 => Input::StreamAccepted { id: stream, from: addr(op >> 2) },
            6 => {
                // A frame: a length byte, then that many bytes.
                let Some((&len, rest)) = script.split_first() else { break };
                let len = usize::from(len).min(rest.len());
                let (frame, rest) = rest.split_at(len);
                script = rest;
                Input::StreamFrame { id: stream, frame }
            }
            _ => Input::StreamClosed { id: stream, end: crate::StreamEnd::Failed },
        };
        let _ = driver.handle(&mut swim, io.now, input, &mut io);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn harnesses_hold_on_random_input(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            decode(&data);
            state_machine(&data);
        }
    }

    #[test]
    fn harnesses_hold_on_valid_traffic() {
        let mut w = PacketWriter::new(1400);
        w.push(&wire::Message::Alive { incarnation: 1, name: "b", addr: addr(2), meta: b"x" }).unwrap();
        w.push(&wire::Message::Ping { seq: 3, target: "me" }).unwrap();
        let d = w.finish();
        decode(&d);
        let mut script = alloc::vec![0u8; 16];
        script.extend_from_slice(&[0, d.len() as u8]);
        script.extend_from_slice(&d);
        script.extend_from_slice(&[2, 40, 2, 200, 3, 4]);
        state_machine(&script);
    }
}
