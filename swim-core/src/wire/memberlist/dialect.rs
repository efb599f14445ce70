//! Speaking memberlist 0.2.2 on datagrams: swim's messages turned into
//! memberlist's on the way out and memberlist's into swim's on the way in,
//! at the packet boundary, so that the state machine runs unchanged.
//!
//! What maps, both ways: `ping` (its `Node` is the probe's target),
//! `indirectPingReq` (target name and address; we always ask for nacks),
//! `ackResp` (without payload), `nackResp`, `alive` (address, port and
//! metadata; we announce the version range memberlist 0.2.2 announces),
//! `suspect` and `dead` (a `dead` whose `From` is its `Node` is a leave,
//! as in swim's own format), and user messages (a message for one member,
//! [`Message::Direct`]: memberlist does not name their sender, so the
//! member at the datagram's source is taken for it). What swim sends that
//! memberlist has no word for (coordinates, queries, user events,
//! padding) is left out of the datagram.

use alloc::vec::Vec;
use core::net::SocketAddr;

use super::Limits;
use super::error::{EncodeError, Error};
use super::gossip::{Alive, Dead, IpBytes, Suspect, Versions, ip_from_wire};
use super::message::Message as Ml;
use super::packet::{Unpacked, encode_compound};
use super::probe::{Ack, IndirectPing, Nack, Ping};
use crate::wire::{DecodeError, MAX_MESSAGES, Message, Messages};

/// The versions our `alive` announces: memberlist 0.2.2's default range
/// (protocol 1 to 5, speaking 2) and no delegate protocol.
pub(crate) const VERSIONS: Versions =
    Versions { protocol_min: 1, protocol_max: 5, protocol_cur: 2, delegate_min: 0, delegate_max: 0, delegate_cur: 0 };

/// How a memberlist decoding error is counted: as the native format's
/// error of the same kind.
pub(crate) fn decode_error(e: Error) -> DecodeError {
    match e {
        Error::Truncated => DecodeError::Truncated,
        Error::Oversized => DecodeError::TooManyMessages,
        Error::UnknownType(_) | Error::UnexpectedType(_) => DecodeError::UnknownKind,
        Error::BadCrc => DecodeError::Checksum,
        Error::DecompressedTooLarge => DecodeError::Oversized,
        Error::Encrypted => DecodeError::Sealed,
        Error::UnknownEncryptionVersion(_) => DecodeError::Version,
        Error::Unauthenticated => DecodeError::Unauthenticated,
        Error::Malformed
        | Error::BadUtf8
        | Error::UnknownCompression(_)
        | Error::BadCompressedData
        | Error::TooDeep
        | Error::BadPadding => DecodeError::Malformed,
    }
}

/// Decodes a plain (decrypted) memberlist datagram into swim's messages:
/// its leaves are copied into `scratch`, which the messages borrow. All
/// or nothing: one leaf that does not decode rejects the datagram.
pub(crate) fn decode_packet<'b>(
    packet: &[u8],
    scratch: &'b mut Vec<u8>,
    out: &mut Messages<'b>,
) -> Result<(), DecodeError> {
    let unpacked = Unpacked::parse(packet, &Limits::PACKET).map_err(decode_error)?;
    // Go drops a compound's parts cut off by the end of the datagram and
    // takes the rest; all or nothing here, as for our own format.
    if unpacked.truncated() > 0 {
        return Err(DecodeError::Truncated);
    }
    scratch.clear();
    let mut ranges = heapless::Vec::<(usize, usize), MAX_MESSAGES>::new();
    for leaf in unpacked.leaves() {
        let start = scratch.len();
        scratch.extend_from_slice(leaf);
        ranges.push((start, scratch.len())).map_err(|_| DecodeError::TooManyMessages)?;
    }
    drop(unpacked);
    let scratch: &'b [u8] = scratch;
    for (start, end) in ranges {
        let leaf = scratch.get(start..end).ok_or(DecodeError::Truncated)?;
        let msg = Ml::decode(leaf).map_err(decode_error)?;
        if let Some(native) = to_native(msg)? {
            out.push(native).map_err(|_| DecodeError::TooManyMessages)?;
        }
    }
    Ok(())
}

/// Swim's message for one of memberlist's.
fn to_native(msg: Ml<'_>) -> Result<Option<Message<'_>>, DecodeError> {
    let addr = |ip: Option<&[u8]>, port: u16| {
        ip.and_then(ip_from_wire).map(|ip| SocketAddr::new(ip, port)).ok_or(DecodeError::Malformed)
    };
    Ok(Some(match msg {
        Ml::Ping(p) => Message::Ping { seq: p.seq_no, target: p.node },
        Ml::IndirectPing(p) => Message::PingReq { seq: p.seq_no, target: p.node, addr: addr(p.target, p.port)? },
        Ml::Ack(a) => Message::Ack { seq: a.seq_no },
        Ml::Nack(n) => Message::Nack { seq: n.seq_no },
        Ml::Alive(a) => Message::Alive {
            incarnation: a.incarnation,
            name: a.node,
            addr: addr(a.addr, a.port)?,
            meta: a.meta.unwrap_or_default(),
        },
        Ml::Suspect(s) => Message::Suspect { incarnation: s.incarnation, name: s.node, from: s.from },
        Ml::Dead(d) => Message::Dead { incarnation: d.incarnation, name: d.node, from: d.from },
        // memberlist does not name a user message's sender: the member at
        // the datagram's source is taken for it (`from` left empty here).
        Ml::User(payload) => Message::Direct { from: "", payload },
    }))
}

/// Appends `msg` as memberlist encodes it, if memberlist has a word for
/// it; whether it did.
fn encode_one(msg: &Message<'_>, out: &mut Vec<u8>) -> Result<bool, EncodeError> {
    let vsn = VERSIONS.to_vsn();
    let ml = match *msg {
        Message::Ping { seq, target } => Ml::Ping(Ping { seq_no: seq, node: target, ..Ping::default() }),
        Message::PingReq { seq, target, addr } => {
            let ip = IpBytes::new(addr.ip());
            let m = IndirectPing {
                seq_no: seq,
                target: Some(ip.as_slice()),
                port: addr.port(),
                node: target,
                nack: true,
                ..IndirectPing::default()
            };
            Ml::IndirectPing(m).encode(out)?;
            return Ok(true);
        }
        Message::Ack { seq } => Ml::Ack(Ack { seq_no: seq, payload: None }),
        Message::Nack { seq } => Ml::Nack(Nack { seq_no: seq }),
        Message::Alive { incarnation, name, addr, meta } => {
            let ip = IpBytes::new(addr.ip());
            let m = Alive {
                incarnation,
                node: name,
                addr: Some(ip.as_slice()),
                port: addr.port(),
                meta: Some(meta),
                vsn: Some(&vsn),
            };
            Ml::Alive(m).encode(out)?;
            return Ok(true);
        }
        Message::Suspect { incarnation, name, from } => Ml::Suspect(Suspect { incarnation, node: name, from }),
        Message::Dead { incarnation, name, from } => Ml::Dead(Dead { incarnation, node: name, from }),
        Message::Direct { payload, .. } => Ml::User(payload),
        _ => return Ok(false),
    };
    ml.encode(out)?;
    Ok(true)
}

/// Appends swim's `msgs` as one memberlist datagram: the message alone,
/// or a compound of them. Nothing is appended when memberlist has a word
/// for none of them.
pub(crate) fn encode_packet(msgs: &[Message<'_>], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let mut parts: Vec<u8> = Vec::new();
    let mut ends = heapless::Vec::<usize, MAX_MESSAGES>::new();
    for msg in msgs {
        if encode_one(msg, &mut parts)? {
            ends.push(parts.len()).map_err(|_| EncodeError::TooManyParts)?;
        }
    }
    match ends.len() {
        0 => Ok(()),
        1 => {
            out.extend_from_slice(&parts);
            Ok(())
        }
        _ => {
            let mut slices = Vec::with_capacity(ends.len());
            let mut start = 0;
            for &end in &ends {
                slices.push(parts.get(start..end).unwrap_or_default());
                start = end;
            }
            encode_compound(&slices, out)
        }
    }
}
