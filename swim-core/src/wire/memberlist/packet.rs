//! A memberlist datagram's layers, outside in: the optional
//! `hasCrcMsg` checksum (protocol 5), then a command that is a message, a
//! `compoundMsg` of commands, or a `compressMsg` around a command
//! (`ingestPacket`, `handleCommand` in `net.go` of 0.2.2). Encryption, if
//! any, wraps all of it without a type byte (see `encrypt`).
//!
//! [`Unpacked`] takes the layers apart once, up front, within
//! [`Limits`]; the messages inside are then decoded one by one, each on
//! its own, as Go handles each part of a compound on its own.

use alloc::vec::Vec;

use super::Limits;
use super::compress::Compress;
use super::error::{EncodeError, Error};
use super::message::{Body, Message, MessageType};

/// The CRC wrapper's length: the type byte and a 4-byte checksum.
pub(crate) const CRC_HEADER_LEN: usize = 5;

/// Appends `msg` behind a `hasCrcMsg` header: the type byte, then the
/// big-endian CRC32 (IEEE) of `msg`. Memberlist adds it for peers whose
/// maximum protocol is 5 or more.
pub(crate) fn encode_with_crc(msg: &[u8], out: &mut Vec<u8>) {
    out.push(MessageType::HasCrc as u8);
    out.extend_from_slice(&crc32fast::hash(msg).to_be_bytes());
    out.extend_from_slice(msg);
}

/// Checks and strips a `hasCrcMsg` header if the datagram has one, as
/// Go does: only a datagram of 5 bytes or more whose first byte is
/// `hasCrcMsg` carries one; anything else is returned unchanged.
pub(crate) fn strip_crc(packet: &[u8]) -> Result<&[u8], Error> {
    let Some((&[ty, a, b, c, d], rest)) = packet.split_first_chunk::<CRC_HEADER_LEN>() else {
        return Ok(packet);
    };
    if ty != MessageType::HasCrc as u8 {
        return Ok(packet);
    }
    if crc32fast::hash(rest) != u32::from_be_bytes([a, b, c, d]) {
        return Err(Error::BadCrc);
    }
    Ok(rest)
}

/// Appends a `compoundMsg` of `parts` (each a whole message, type byte
/// included): the type byte, the count in one byte, each part's length
/// as a big-endian `u16`, then the parts. Go would silently wrap a count
/// over 255 or a length over 65 535; we refuse, appending nothing.
pub(crate) fn encode_compound(parts: &[&[u8]], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let count = u8::try_from(parts.len()).map_err(|_| EncodeError::TooManyParts)?;
    let start = out.len();
    out.push(MessageType::Compound as u8);
    out.push(count);
    for part in parts {
        let Ok(len) = u16::try_from(part.len()) else {
            out.truncate(start);
            return Err(EncodeError::TooManyParts);
        };
        out.extend_from_slice(&len.to_be_bytes());
    }
    for part in parts {
        out.extend_from_slice(part);
    }
    Ok(())
}

/// The body of a `compoundMsg` (after its type byte), checked and split
/// lazily, without allocating.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Compound<'a> {
    /// The big-endian `u16` lengths, two bytes per part.
    lengths: &'a [u8],
    /// The parts, back to back.
    data: &'a [u8],
}

impl<'a> Compound<'a> {
    /// Reads the count and the length table. A body too short for its
    /// own length table is an error; parts that the data does not cover
    /// are not (Go handles the parts that fit and logs the rest as
    /// truncated): see [`Compound::truncated`].
    pub(crate) fn parse(body: &'a [u8]) -> Result<Self, Error> {
        let (&count, rest) = body.split_first().ok_or(Error::Truncated)?;
        // Unlike Go, which computes `numParts*2` in a byte and so wraps
        // for more than 127 parts, the table is 2 bytes per part.
        let (lengths, data) = rest.split_at_checked(2 * usize::from(count)).ok_or(Error::Truncated)?;
        Ok(Compound { lengths, data })
    }

    /// The parts that fit, in order; the first that does not ends them.
    pub(crate) fn parts(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        let mut data = self.data;
        self.lengths.chunks_exact(2).map_while(move |len| {
            let len = usize::from(u16::from_be_bytes([*len.first()?, *len.last()?]));
            let (part, rest) = data.split_at_checked(len)?;
            data = rest;
            Some(part)
        })
    }

    /// How many parts the table lists but the data does not hold.
    pub(crate) fn truncated(&self) -> usize {
        self.lengths.len() / 2 - self.parts().count()
    }
}

/// Where a leaf message's bytes lie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// In the datagram itself.
    Input,
    /// In [`Unpacked`]'s buffer of decompressed bytes.
    Inflated,
}

/// A leaf message found while taking the layers apart: its bytes, type
/// byte included, as a range of one of the two buffers.
#[derive(Clone, Copy, Debug)]
struct Leaf {
    source: Source,
    start: usize,
    end: usize,
}

/// A datagram with its layers taken apart: its leaf messages, borrowed
/// from the datagram or from the decompressed bytes this owns.
#[derive(Debug)]
pub(crate) struct Unpacked<'a> {
    input: &'a [u8],
    /// Every decompressed layer, back to back; never longer (nor
    /// allocated larger) than [`Limits::max_inflated`].
    inflated: Vec<u8>,
    leaves: Vec<Leaf>,
    truncated: usize,
}

impl<'a> Unpacked<'a> {
    /// Checks the CRC if there is one, then takes compounds and
    /// compressed layers apart, nested up to [`Limits::max_depth`] deep,
    /// finding at most [`Limits::max_messages`] leaves and decompressing
    /// at most [`Limits::max_inflated`] bytes in all.
    ///
    /// Leaves are not decoded here: a leaf of a type that cannot appear
    /// in a datagram, or an empty compound part, only fails when
    /// [`Unpacked::messages`] reaches it, as Go drops just that part.
    pub(crate) fn parse(packet: &'a [u8], limits: &Limits) -> Result<Self, Error> {
        let body = strip_crc(packet)?;
        if body.is_empty() {
            // Nothing to dispatch on (Go would index byte 0 and panic).
            return Err(Error::Truncated);
        }
        let mut unpacked = Unpacked { input: packet, inflated: Vec::new(), leaves: Vec::new(), truncated: 0 };
        // Ranges are kept relative to `input`: the body starts after the
        // CRC header, if one was stripped.
        let start = packet.len() - body.len();
        unpacked.walk(Source::Input, start, packet.len(), 0, limits)?;
        Ok(unpacked)
    }

    fn bytes(&self, source: Source, start: usize, end: usize) -> &[u8] {
        let buf = match source {
            Source::Input => self.input,
            Source::Inflated => &self.inflated,
        };
        buf.get(start..end).unwrap_or_default()
    }

    /// Takes apart the command at `start..end` of `source`.
    fn walk(&mut self, source: Source, start: usize, end: usize, depth: u8, limits: &Limits) -> Result<(), Error> {
        let command = self.bytes(source, start, end);
        let Some((&ty, body)) = command.split_first() else {
            // An empty command: Go indexes its type byte and panics. A
            // leaf, so that only this part is dropped.
            return self.leaf(source, start, end, limits);
        };
        let is_compound = ty == MessageType::Compound as u8;
        if !is_compound && ty != MessageType::Compress as u8 {
            return self.leaf(source, start, end, limits);
        }
        if depth >= limits.max_depth {
            return Err(Error::TooDeep);
        }
        if is_compound {
            let compound = Compound::parse(body)?;
            let truncated = compound.truncated();
            // Offsets first (at most 255), so that `self` is free to
            // change while the parts are walked.
            let mut parts: Vec<(usize, usize)> = Vec::with_capacity(compound.lengths.len() / 2);
            let mut at = start + 2 + compound.lengths.len();
            for part in compound.parts() {
                parts.push((at, at + part.len()));
                at += part.len();
            }
            self.truncated += truncated;
            for (s, e) in parts {
                self.walk(source, s, e, depth + 1, limits)?;
            }
            Ok(())
        } else {
            let compress = Compress::decode(body)?;
            // Decompressed into a buffer of its own: `compress` may borrow
            // from `self.inflated`, which must not grow under it. The cap
            // spans all layers, so only the room left is granted.
            let mut scratch = Vec::new();
            let room = limits.max_inflated.saturating_sub(self.inflated.len());
            compress.decompress_into(&mut scratch, room)?;
            let s = self.inflated.len();
            if self.inflated.is_empty() {
                // The usual case, one compressed layer: no copy.
                self.inflated = scratch;
            } else {
                self.inflated.try_reserve_exact(scratch.len()).map_err(|_| Error::DecompressedTooLarge)?;
                self.inflated.extend_from_slice(&scratch);
            }
            let e = self.inflated.len();
            self.walk(Source::Inflated, s, e, depth + 1, limits)
        }
    }

    fn leaf(&mut self, source: Source, start: usize, end: usize, limits: &Limits) -> Result<(), Error> {
        if self.leaves.len() >= limits.max_messages {
            return Err(Error::Oversized);
        }
        self.leaves.push(Leaf { source, start, end });
        Ok(())
    }

    /// The leaf messages in order, each decoded on its own: one that does
    /// not decode is an `Err` in its place and does not stop the rest.
    pub(crate) fn messages(&self) -> impl Iterator<Item = Result<Message<'_>, Error>> + '_ {
        self.leaves.iter().map(|leaf| Message::decode(self.bytes(leaf.source, leaf.start, leaf.end)))
    }

    /// Each leaf's bytes (type byte first), undecoded, in order.
    pub(crate) fn leaves(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.leaves.iter().map(|leaf| self.bytes(leaf.source, leaf.start, leaf.end))
    }

    /// The leaf messages, all or nothing: the first that does not decode
    /// fails the whole datagram.
    pub(crate) fn decode_all(&self) -> Result<Vec<Message<'_>>, Error> {
        self.messages().collect()
    }

    /// How many leaves were found.
    pub(crate) fn len(&self) -> usize {
        self.leaves.len()
    }

    /// How many compound parts were listed but cut off by the end of the
    /// datagram (Go logs these and handles the rest).
    pub(crate) fn truncated(&self) -> usize {
        self.truncated
    }

    /// Bytes held for decompressed layers: within
    /// [`Limits::max_inflated`].
    pub(crate) fn inflated_capacity(&self) -> usize {
        self.inflated.capacity()
    }
}
