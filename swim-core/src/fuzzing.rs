//! Harnesses for the fuzz targets in `fuzz/`: each target is a one-line
//! call into a function here (the simulator's is in `swim-sim`), so the
//! same code also runs in the ordinary test suite, and committed inputs
//! under `fuzz/regressions/` are replayed by `cargo test`. Not a stable
//! API.
//!
//! Fuzzed bytes rarely carry a valid checksum, so the harnesses that feed
//! the state machine wrap most of them in a valid envelope: the fuzzer's
//! effort goes into the decoder and the protocol, not into guessing CRCs.

use alloc::vec::Vec;
use core::net::SocketAddr;

use rand_core::{Infallible, TryRng};

use crate::wire::{self, Datagram, Messages, PacketWriter};
use crate::{Config, Driver, Event, Identity, Input, Instant, MemberName, StreamEnd, StreamId, Swim, Transport};

/// Decodes `data` as a whole datagram and as the messages of an opened
/// one; whatever decodes must re-encode within the size limit to a
/// datagram that decodes to the same messages (a round trip by value:
/// postcard is not canonical, so bytes may differ).
pub fn decode(data: &[u8]) {
    let mut msgs = Messages::new();
    if wire::decode(data, &mut msgs).is_ok() {
        round_trip(&msgs, wire::MAX_DATAGRAM);
    }
    if wire::decode_body(data, &mut msgs).is_ok() {
        // Messages of at most one frame fit one frame again.
        let limit = if data.len() + 6 <= wire::MAX_DATAGRAM { wire::MAX_DATAGRAM } else { wire::MAX_FRAME };
        if data.len() + 6 <= limit {
            round_trip(&msgs, limit);
        }
    }
}

fn round_trip(msgs: &Messages<'_>, limit: usize) {
    let mut w = PacketWriter::with_layout(limit, Vec::new(), wire::Layout::PLAIN);
    for m in msgs {
        assert!(w.push(m).is_ok(), "a decoded packet re-encodes within its size limit");
    }
    let again = w.finish();
    assert!(again.len() <= limit);
    let mut back = Messages::new();
    let r = if limit == wire::MAX_DATAGRAM {
        wire::decode(&again, &mut back)
    } else {
        wire::decode_frame(&again, &mut back)
    };
    assert_eq!(r, Ok(()));
    assert_eq!(*msgs, back);
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

/// Small limits, so a short input can reach every bound.
fn small_config() -> Config {
    Config::lan()
        .with_max_members(core::num::NonZeroU32::new(16).unwrap_or(core::num::NonZeroU32::MIN))
        .with_max_queued_updates(core::num::NonZeroU32::new(16).unwrap_or(core::num::NonZeroU32::MIN))
        .with_max_queued_broadcasts(core::num::NonZeroU32::new(8).unwrap_or(core::num::NonZeroU32::MIN))
        .with_max_streams(core::num::NonZeroU32::new(4).unwrap_or(core::num::NonZeroU32::MIN))
        .with_max_relays(core::num::NonZeroU32::new(4).unwrap_or(core::num::NonZeroU32::MIN))
        .with_max_reconnect(core::num::NonZeroU32::new(4).unwrap_or(core::num::NonZeroU32::MIN))
        .with_broadcast_window(16)
}

/// Checks every action against the state machine's contract: datagrams
/// and frames decode and fit their limits, deadlines are not in the past,
/// streams opened are the machine's own.
struct Contract {
    budget: usize,
    now: Instant,
    /// While set up, the lone pings sent (the checks of new members), to
    /// be answered.
    checks: Option<Vec<(SocketAddr, u32)>>,
}

impl Transport for Contract {
    fn send(&mut self, to: SocketAddr, packet: Datagram) -> Option<Datagram> {
        assert!(packet.len() <= self.budget, "a datagram within the budget");
        let mut msgs = Messages::new();
        assert_eq!(wire::decode(&packet, &mut msgs), Ok(()), "what we send decodes");
        let check = match msgs.as_slice() {
            [wire::Message::Ping { seq, .. }] => Some(*seq),
            _ => None,
        };
        drop(msgs);
        if let (Some(checks), Some(seq)) = (&mut self.checks, check) {
            checks.push((to, seq));
        }
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
        assert_eq!(wire::decode_frame(&frame, &mut Messages::new()), Ok(()), "what we send decodes");
        Some(frame)
    }
    fn close_stream(&mut self, _id: StreamId) {}
}

/// The bounds the configuration promises, whatever the input.
fn assert_bounded<R: rand_core::Rng>(swim: &Swim<R>) {
    let c = swim.config();
    assert!(swim.members().count() <= c.max_members.get() as usize + 1, "member table bounded");
    assert!(swim.queued_updates() <= c.max_queued_updates.get() as usize + 1, "update queue bounded");
    assert!(swim.queued_broadcasts() <= c.max_queued_broadcasts.get() as usize, "broadcast queue bounded");
    assert!(swim.open_streams() <= 2 * c.max_streams.get() as usize, "streams bounded");
    let (asked, answering) = swim.open_queries();
    assert!(asked + answering <= c.max_open_queries.get() as usize, "open queries bounded");
    assert!(swim.stats().events_kept <= u64::from(c.max_repair_events), "repair buffer bounded");
}

/// Wraps `body` in a valid plain envelope (a checksum that matches), or
/// passes it as is when `raw`.
fn envelope(body: &[u8], raw: bool, buf: &mut Vec<u8>) {
    if raw {
        buf.clear();
        buf.extend_from_slice(body);
    } else {
        wire::frame::plain_packet(body, buf);
    }
}

/// Takes a length byte and that many bytes from the script.
fn take<'a>(script: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (&len, rest) = script.split_first()?;
    let len = usize::from(len).min(rest.len());
    let (bytes, rest) = rest.split_at(len);
    *script = rest;
    Some(bytes)
}

/// The datagram target: a member that knows a few others is fed datagrams
/// (most in a valid envelope), wake-ups at arbitrary times, joins, leaves
/// and API calls, in any order. It must never panic, what it emits must
/// decode and respect its contract, and its memory must stay within the
/// configured bounds.
pub fn datagram(data: &[u8]) {
    script(data, false);
}

/// The stream target: as [`datagram`], with stream accepts, frames (most
/// in a valid envelope) and ends as well.
pub fn stream(data: &[u8]) {
    script(data, true);
}

/// A member "me" that knows members "b".."e" at 10.0.0.2..5 (each
/// answered the ping that checked it), so that probes, relays and queries
/// from them are served; `None` when the seed makes no member.
fn member(seed: &[u8]) -> Option<(Swim<Bytes<'_>>, Driver, Contract)> {
    let me = Identity::new(MemberName::new("me").unwrap_or_else(|_| unreachable!()), addr(0));
    let mut swim = Swim::new(small_config(), me, Bytes(seed)).ok()?;
    let mut driver = Driver::new();
    let mut io = Contract { budget: swim.config().packet_budget, now: Instant::ZERO, checks: Some(Vec::new()) };
    for (i, name) in ["b", "c", "d", "e"].into_iter().enumerate() {
        let mut w = PacketWriter::new(1400);
        let a = addr(2 + i as u8);
        let _ = w.push(&wire::Message::Alive { incarnation: 0, name, addr: a, meta: b"" });
        let r = driver.handle(&mut swim, io.now, Input::Packet { from: a, bytes: &w.finish() }, &mut io);
        assert!(r.is_ok(), "bytes from the network are never an Err: {r:?}");
        for (to, seq) in io.checks.replace(Vec::new()).unwrap_or_default() {
            let mut w = PacketWriter::new(1400);
            let _ = w.push(&wire::Message::Ack { seq });
            let r = driver.handle(&mut swim, io.now, Input::Packet { from: to, bytes: &w.finish() }, &mut io);
            assert!(r.is_ok(), "bytes from the network are never an Err: {r:?}");
        }
    }
    io.checks = None;
    assert_eq!(swim.num_live(), 5, "b to e answered their checks and are members");
    Some((swim, driver, io))
}

fn script(data: &[u8], streams: bool) {
    let (seed, mut script) = data.split_at(data.len().min(16));
    let Some((mut swim, mut driver, mut io)) = member(seed) else { return };
    let mut buf = Vec::new();
    let mut now = 0u64;
    let ask = crate::api::QueryOptions::default().with_ack(true).with_relay_factor(1);
    let mut tags = crate::api::Tags::new();
    while let Some((&op, rest)) = script.split_first() {
        script = rest;
        io.now = Instant::from_millis(now);
        let stream = if op & 0x80 == 0 {
            StreamId::Inbound(u64::from(op >> 4 & 3))
        } else {
            StreamId::Outbound(u64::from(op >> 4 & 3))
        };
        let ops = if streams { 12 } else { 8 };
        let input = match op % ops {
            0..=2 => {
                let Some(body) = take(&mut script) else { break };
                envelope(body, op & 0x40 != 0 && op & 0x20 != 0, &mut buf);
                Input::Packet { from: addr(op >> 3), bytes: &buf }
            }
            3 => {
                let Some((&step, rest)) = script.split_first() else { break };
                script = rest;
                now += u64::from(step) * 50;
                io.now = Instant::from_millis(now);
                Input::Timeout
            }
            4 => {
                let seeds = [addr(op >> 3), addr(op >> 5)];
                let _ = driver.handle(&mut swim, io.now, Input::Join { seeds: &seeds }, &mut io);
                assert_bounded(&swim);
                continue;
            }
            5 => {
                if op & 0x40 != 0 {
                    Input::Leave
                } else {
                    Input::SetMeta { meta: &[op; 3] }
                }
            }
            6 => {
                let Some(payload) = take(&mut script) else { break };
                match op >> 5 & 3 {
                    0 => Input::UserEvent { name: "e", payload, coalesce: op & 0x10 != 0 },
                    1 => {
                        let _ = driver.handle(
                            &mut swim,
                            io.now,
                            Input::Query { name: "q", payload, options: &ask },
                            &mut io,
                        );
                        assert_bounded(&swim);
                        continue;
                    }
                    2 => Input::Respond { id: crate::api::QueryId(u64::from(op & 0x1F)), payload },
                    _ => {
                        tags.insert(core::str::from_utf8(payload).unwrap_or("k"), "v");
                        Input::SetTags { tags: &tags }
                    }
                }
            }
            7 => {
                let Some(payload) = take(&mut script) else { break };
                let to = ["b", "c", "zz"][usize::from(op >> 4) % 3];
                match op >> 6 {
                    0 | 1 => Input::Message { to, payload, reliable: op & 0x40 != 0 },
                    2 => Input::ForceLeave { name: to, prune: op & 0x08 != 0 },
                    _ => {
                        let t = payload.iter().fold(0u64, |t, &b| t << 8 | u64::from(b));
                        Input::Restore { events: t, queries: t.rotate_left(17) }
                    }
                }
            }
            8 | 9 => {
                let Some(body) = take(&mut script) else { break };
                envelope(body, op & 0x40 != 0 && op & 0x20 != 0, &mut buf);
                Input::StreamFrame { id: stream, frame: &buf }
            }
            10 => Input::StreamAccepted { id: stream, from: addr(op >> 2) },
            _ => {
                let end = [
                    StreamEnd::Closed,
                    StreamEnd::Failed,
                    StreamEnd::Refused,
                    StreamEnd::TimedOut,
                    StreamEnd::NotListening,
                ];
                Input::StreamClosed { id: stream, end: end[usize::from(op >> 2) % end.len()] }
            }
        };
        let from_network = matches!(input, Input::Packet { .. } | Input::StreamFrame { .. });
        let result = driver.handle(&mut swim, io.now, input, &mut io);
        assert!(!from_network || result.is_ok(), "bytes from the network are never an Err: {result:?}");
        assert_bounded(&swim);
    }
}

/// The serf target: well-formed events, queries and answers built from
/// the fuzzer's bytes (origins known and unknown, at their addresses or
/// not, filters of any bytes, any times, relays and deadlines), mixed with
/// the application's queries, answers, events and tags and with wake-ups.
/// Nothing panics, nothing is an `Err` from the network, and the open
/// queries and the repair buffer stay within their bounds.
pub fn serf(data: &[u8]) {
    let (seed, mut script) = data.split_at(data.len().min(16));
    let Some((mut swim, mut driver, mut io)) = member(seed) else { return };
    let names = ["b", "c", "d", "e", "me", "zz"];
    let mut now = 0u64;
    let mut tags = crate::api::Tags::new();
    while let Some((&op, rest)) = script.split_first() {
        script = rest;
        let Some(bytes) = take(&mut script) else { break };
        let byte = |i: usize| bytes.get(i).copied().unwrap_or(0);
        let name = names[usize::from(op >> 3) % names.len()];
        let at = addr(byte(0) % 7);
        let ltime = u64::from(byte(1) % 16);
        let msg = match op % 8 {
            0 => wire::Message::Question {
                ltime,
                origin: name,
                addr: at,
                name: if byte(2) % 4 == 0 { "_swim_keys" } else { "q" },
                payload: bytes,
                filter: bytes.get(3..).unwrap_or_default(),
                ack: byte(2) & 1 != 0,
                relay_factor: byte(3),
                timeout_ms: u32::from(byte(4)) * 100,
            },
            1 => wire::Message::Response {
                ltime,
                from: name,
                ack: byte(2) & 1 != 0,
                payload: bytes,
                relay: (byte(3) & 1 != 0).then_some(at),
            },
            2 => wire::Message::User { ltime, from: name, name: "e", payload: bytes, coalesce: byte(2) & 1 != 0 },
            3 => {
                now += u64::from(byte(0)) * 50;
                io.now = Instant::from_millis(now);
                let _ = driver.handle(&mut swim, io.now, Input::Timeout, &mut io);
                assert_bounded(&swim);
                continue;
            }
            op => {
                io.now = Instant::from_millis(now);
                let options = crate::api::QueryOptions::default()
                    .with_ack(byte(0) & 1 != 0)
                    .with_relay_factor(byte(1) % 7)
                    .with_filter(crate::api::QueryFilter::all().tag("k", core::str::from_utf8(bytes).unwrap_or(".")));
                let input = match op {
                    4 => Input::Query { name: "q", payload: bytes, options: &options },
                    5 => Input::Respond { id: crate::api::QueryId(u64::from(byte(0) % 8)), payload: bytes },
                    6 => Input::UserEvent { name: "e", payload: bytes, coalesce: false },
                    _ => {
                        tags.insert(core::str::from_utf8(bytes).unwrap_or("k"), "v");
                        Input::SetTags { tags: &tags }
                    }
                };
                let _ = driver.handle(&mut swim, io.now, input, &mut io);
                assert_bounded(&swim);
                continue;
            }
        };
        let mut w = PacketWriter::new(1400);
        if w.push(&msg).is_err() {
            continue;
        }
        let from = if byte(5) & 1 == 0 { at } else { addr(2 + byte(5) % 4) };
        let r = driver.handle(&mut swim, io.now, Input::Packet { from, bytes: &w.finish() }, &mut io);
        assert!(r.is_ok(), "bytes from the network are never an Err: {r:?}");
        assert_bounded(&swim);
    }
}

/// The decrypt target: a keyring of two keys opens arbitrary bytes
/// without panicking (what opens is decoded too), and a packet sealed
/// with `data` as its body opens back to exactly it, and not under
/// another cluster's key.
#[cfg(feature = "encryption")]
pub fn decrypt(data: &[u8]) {
    use crate::wire::keyring::{Key, KeyringOp};
    use crate::wire::seal::{Channel, Envelope, Opened};

    let Ok(me) = crate::MemberName::new("fuzz-member") else { return };
    let mut e = Envelope::new(wire::Label::new("fuzz").unwrap_or_default(), &me, [0; 12]);
    let _ = e.apply(KeyringOp::Install(Key::new([1; 32])));
    let _ = e.apply(KeyringOp::Install(Key::new([2; 32])));
    let mut scratch = Vec::new();
    let _ = e.decode(data, wire::MAX_FRAME, Channel::Frame, &mut scratch, &mut Messages::new());
    // Seal the fuzzer's bytes as a body (up to a frame) and open them.
    let body = &data[..data.len().min(wire::MAX_FRAME - 64)];
    let mut w = PacketWriter::with_layout(wire::MAX_FRAME, Vec::new(), e.layout());
    if w.push_encoded(body).is_ok() {
        let sealed = e.close(w, Channel::Frame);
        assert!(sealed.len() <= wire::MAX_FRAME);
        let mut out = Vec::new();
        let opened = e.open(&sealed, wire::MAX_FRAME, Channel::Frame, &mut out);
        assert_eq!(opened, Ok(Opened { sender: Some("fuzz-member"), messages: body }), "a sealed body opens to itself");
        // Not as a datagram.
        assert!(e.open(&sealed, wire::MAX_FRAME, Channel::Datagram, &mut out).is_err());
        // Another cluster's keys open none of it.
        let mut other = Envelope::new(wire::Label::new("fuzz").unwrap_or_default(), &me, [0; 12]);
        let _ = other.apply(KeyringOp::Install(Key::new([3; 32])));
        assert!(other.open(&sealed, wire::MAX_FRAME, Channel::Frame, &mut out).is_err());
    }
}

/// The memberlist target, seeded with datagrams and streams that real
/// memberlist 0.2.2 nodes sent (`swim-core/tests/data/memberlist/`).
/// `data` is read three ways: by the codec as a datagram and as a stream
/// message, where whatever decodes must encode back to a value that
/// decodes to the same thing, with decompression within its cap; and by a
/// member speaking memberlist's datagrams, which must take it without an
/// `Err` and whose every datagram, then and at its next wake-ups, must
/// decode as memberlist's.
pub fn memberlist(data: &[u8]) {
    use crate::wire::memberlist::Limits;
    use crate::wire::memberlist::message::Message as Ml;
    use crate::wire::memberlist::packet::Unpacked;
    use crate::wire::memberlist::stream::StreamMessage;

    if let Ok(unpacked) = Unpacked::parse(data, &Limits::PACKET) {
        assert!(unpacked.inflated_capacity() <= Limits::PACKET.max_inflated, "decompression within its cap");
        for m in unpacked.messages().flatten() {
            let mut out = Vec::new();
            if m.encode(&mut out).is_ok() {
                assert_eq!(Ml::decode(&out), Ok(m), "a decoded message encodes back to itself");
            }
        }
    }
    if let Ok(m) = StreamMessage::decode(data, &Limits::STREAM) {
        let mut out = Vec::new();
        if m.encode(&mut out).is_ok() {
            assert_eq!(StreamMessage::decode(&out, &Limits::STREAM), Ok(m), "a stream message encodes back to itself");
        }
    }
    serf_codecs(data);
    // A member speaking memberlist's format, then serf's layer on it, takes
    // the bytes as a datagram and as a stream message.
    for serf in [false, true] {
        let me = Identity::new(MemberName::new("me").unwrap_or_else(|_| unreachable!()), addr(0));
        let config = small_config().with_memberlist_wire(true).with_serf_wire(serf);
        let Ok(mut swim) = Swim::new(config, me, Bytes(data)) else {
            return;
        };
        let mut sent = match swim.handle_packet(Instant::from_millis(1), addr(2), data) {
            Ok(out) => out,
            Err(e) => panic!("bytes from the network are never an Err: {e:?}"),
        };
        let id = crate::StreamId::Inbound(1);
        let stream =
            [crate::Input::StreamAccepted { id, from: addr(3) }, crate::Input::StreamFrame { id, frame: data }];
        for input in stream {
            if let Err(e) = swim.handle(Instant::from_millis(2), input, &mut sent) {
                panic!("bytes from the network are never an Err: {e:?}");
            }
        }
        for t in [3, 600, 1_200, 5_000] {
            sent.extend(swim.handle_timeout(Instant::from_millis(t)));
        }
        for a in &sent {
            match a {
                crate::Action::Send { packet, .. } => {
                    let unpacked = Unpacked::parse(packet, &Limits::PACKET);
                    let decoded = unpacked.as_ref().map(|u| u.decode_all().is_ok());
                    assert_eq!(decoded, Ok(true), "what a member speaking memberlist sends decodes as memberlist");
                }
                crate::Action::SendFrame { frame, .. } => {
                    let decoded = StreamMessage::decode(frame, &Limits::STREAM);
                    assert!(decoded.is_ok(), "a stream message we send decodes as memberlist's: {decoded:?}");
                }
                _ => {}
            }
        }
    }
}

/// serf's codecs in memberlist's user messages, acks and push-pulls:
/// whatever decodes encodes back to itself.
fn serf_codecs(data: &[u8]) {
    use crate::wire::memberlist::serf::SerfMessage;
    use crate::wire::memberlist::serf_keys::KeyResponse;
    use crate::wire::memberlist::serf_ping::{DIMENSIONS, SerfCoordinate};
    use crate::wire::memberlist::serf_state::PushPullState;
    if let Ok(m) = SerfMessage::decode(data) {
        let mut out = Vec::new();
        if m.encode(&mut out).is_ok() {
            assert_eq!(SerfMessage::decode(&out), Ok(m), "a serf message encodes back to itself");
        }
    }
    if let Ok(s) = PushPullState::decode(data) {
        let mut out = Vec::new();
        if s.encode(&mut out).is_ok() {
            assert_eq!(PushPullState::decode(&out), Ok(s), "serf's state encodes back to itself");
        }
    }
    if let Ok(r) = KeyResponse::decode(data) {
        let mut out = Vec::new();
        if r.encode(&mut out).is_ok() {
            assert_eq!(KeyResponse::decode(&out), Ok(r), "a key response encodes back to itself");
        }
    }
    if let Ok(c) = SerfCoordinate::decode(data)
        && c.dims == DIMENSIONS
    {
        let mut out = Vec::new();
        c.encode(&mut out);
        let back = SerfCoordinate::decode(&out).map(|b| (b.vec.map(f64::to_bits), b.error.to_bits()));
        assert_eq!(back, Ok((c.vec.map(f64::to_bits), c.error.to_bits())), "a coordinate encodes back to itself");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A serf script that asks a question from "b" at its own address
    /// (acknowledged, a second's deadline), then lets two seconds pass: the
    /// fuzz target's seed input.
    const SERF_SAMPLE: [u8; 28] = [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // seed
        0, 6, 2, 1, 1, 0, 10, 0, // a question from b
        3, 1, 40, // two seconds pass
        3,
    ];

    proptest! {
        #[test]
        fn harnesses_hold_on_random_input(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            decode(&data);
            datagram(&data);
            stream(&data);
            serf(&data);
            memberlist(&data);
            #[cfg(feature = "encryption")]
            decrypt(&data);
        }
    }

    #[test]
    fn the_memberlist_harness_holds_on_every_recorded_go_message() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/memberlist");
        let mut n = 0;
        for setting in std::fs::read_dir(&dir).unwrap() {
            let setting = setting.unwrap().path();
            if !setting.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(&setting).unwrap() {
                memberlist(&std::fs::read(file.unwrap().path()).unwrap());
                n += 1;
            }
        }
        assert!(n > 200, "{n} recordings");
    }

    #[test]
    fn harnesses_hold_on_valid_traffic() {
        let mut w = PacketWriter::new(1400);
        w.push(&wire::Message::Alive { incarnation: 1, name: "f", addr: addr(6), meta: b"x" }).unwrap();
        w.push(&wire::Message::Ping { seq: 3, target: "me" }).unwrap();
        let d = w.finish();
        decode(&d);
        let body = &d[2..d.len() - 4];
        decode(body);
        let mut script = alloc::vec![0u8; 16];
        script.extend_from_slice(&[0, body.len() as u8]);
        script.extend_from_slice(body);
        script.extend_from_slice(&[3, 40, 3, 200, 4, 5]);
        datagram(&script);
        stream(&script);
        serf(&SERF_SAMPLE);
    }
}
