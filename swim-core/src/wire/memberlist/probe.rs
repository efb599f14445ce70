//! The failure detector's messages: `ping`, `indirectPingReq`, `ackResp`
//! and `nackResp` of memberlist 0.2.2 (`net.go`).
//!
//! Each `write` lists its keys in the order Go emits them: sorted by field
//! name, not in declaration order.

use alloc::vec::Vec;

use super::error::{EncodeError, Error};
use super::message::{Body, MessageType};
use super::msgpack::read::Reader;
use super::msgpack::write;

/// `ping`: a direct probe of `node`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ping<'a> {
    /// `SeqNo`: matched by the ack.
    pub(crate) seq_no: u32,
    /// `Node`: the name the sender thinks it probes, so that a restarted
    /// agent under a new name at the same address does not answer. Empty
    /// for "whoever is there".
    pub(crate) node: &'a str,
    /// `SourceAddr` (`omitempty`): the IP to answer to, 4 or 16 bytes;
    /// empty means "the datagram's source".
    pub(crate) source_addr: &'a [u8],
    /// `SourcePort` (`omitempty`): the port to answer to, 0 for none.
    pub(crate) source_port: u16,
    /// `SourceNode` (`omitempty`): the sender's name, empty for none.
    pub(crate) source_node: &'a str,
}

impl<'a> Body<'a> for Ping<'a> {
    const TYPE: MessageType = MessageType::Ping;

    fn read(r: &mut Reader<'a>) -> Result<Self, Error> {
        let mut m = Ping::default();
        r.read_struct(|key, r| {
            match key {
                b"SeqNo" => m.seq_no = r.uint()?,
                b"Node" => m.node = r.str()?,
                b"SourceAddr" => m.source_addr = r.bytes_or_empty()?,
                b"SourcePort" => m.source_port = r.uint()?,
                b"SourceNode" => m.source_node = r.str()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(m)
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let optional = [!self.source_addr.is_empty(), self.source_port != 0, !self.source_node.is_empty()];
        write::map_header(out, 2 + optional.iter().filter(|&&present| present).count());
        write::key(out, "Node");
        write::raw(out, self.node.as_bytes())?;
        write::key(out, "SeqNo");
        write::uint(out, self.seq_no.into());
        if !self.source_addr.is_empty() {
            write::key(out, "SourceAddr");
            write::raw(out, self.source_addr)?;
        }
        if !self.source_node.is_empty() {
            write::key(out, "SourceNode");
            write::raw(out, self.source_node.as_bytes())?;
        }
        if self.source_port != 0 {
            write::key(out, "SourcePort");
            write::uint(out, self.source_port.into());
        }
        Ok(())
    }
}

/// `indirectPingReq`: asks the receiver to ping `node` at `target:port`
/// for us.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct IndirectPing<'a> {
    /// `SeqNo`: the sequence number the relayed ack (or nack) carries.
    pub(crate) seq_no: u32,
    /// `Target`: the IP to probe, 4 or 16 bytes (`nil` in Go when unset).
    pub(crate) target: Option<&'a [u8]>,
    /// `Port`: the port to probe; 0 means the receiver's own bind port.
    pub(crate) port: u16,
    /// `Node`: the name of the member to probe.
    pub(crate) node: &'a str,
    /// `Nack`: whether the sender wants a nack if the target stays silent
    /// (set for peers that speak protocol 4 or later).
    pub(crate) nack: bool,
    /// `SourceAddr` (`omitempty`): where to send the ack; empty means the
    /// datagram's source.
    pub(crate) source_addr: &'a [u8],
    /// `SourcePort` (`omitempty`).
    pub(crate) source_port: u16,
    /// `SourceNode` (`omitempty`).
    pub(crate) source_node: &'a str,
}

impl<'a> Body<'a> for IndirectPing<'a> {
    const TYPE: MessageType = MessageType::IndirectPing;

    fn read(r: &mut Reader<'a>) -> Result<Self, Error> {
        let mut m = IndirectPing::default();
        r.read_struct(|key, r| {
            match key {
                b"SeqNo" => m.seq_no = r.uint()?,
                b"Target" => m.target = r.bytes()?,
                b"Port" => m.port = r.uint()?,
                b"Node" => m.node = r.str()?,
                b"Nack" => m.nack = r.boolean()?,
                b"SourceAddr" => m.source_addr = r.bytes_or_empty()?,
                b"SourcePort" => m.source_port = r.uint()?,
                b"SourceNode" => m.source_node = r.str()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(m)
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let optional = [!self.source_addr.is_empty(), self.source_port != 0, !self.source_node.is_empty()];
        write::map_header(out, 5 + optional.iter().filter(|&&present| present).count());
        // Sorted: Nack < Node < Port < SeqNo < SourceAddr < SourceNode <
        // SourcePort < Target.
        write::key(out, "Nack");
        write::boolean(out, self.nack);
        write::key(out, "Node");
        write::raw(out, self.node.as_bytes())?;
        write::key(out, "Port");
        write::uint(out, self.port.into());
        write::key(out, "SeqNo");
        write::uint(out, self.seq_no.into());
        if !self.source_addr.is_empty() {
            write::key(out, "SourceAddr");
            write::raw(out, self.source_addr)?;
        }
        if !self.source_node.is_empty() {
            write::key(out, "SourceNode");
            write::raw(out, self.source_node.as_bytes())?;
        }
        if self.source_port != 0 {
            write::key(out, "SourcePort");
            write::uint(out, self.source_port.into());
        }
        write::key(out, "Target");
        write::opt_raw(out, self.target)
    }
}

/// `ackResp`: the answer to a ping, direct or relayed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ack<'a> {
    /// `SeqNo`: the ping's.
    pub(crate) seq_no: u32,
    /// `Payload`: the ping delegate's ack payload; `None` is Go's nil
    /// (what memberlist sends without a ping delegate, on relays, and in
    /// answer to the fallback ping over a stream).
    pub(crate) payload: Option<&'a [u8]>,
}

impl<'a> Body<'a> for Ack<'a> {
    const TYPE: MessageType = MessageType::AckResp;

    fn read(r: &mut Reader<'a>) -> Result<Self, Error> {
        let mut m = Ack::default();
        r.read_struct(|key, r| {
            match key {
                b"SeqNo" => m.seq_no = r.uint()?,
                b"Payload" => m.payload = r.bytes()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(m)
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write::map_header(out, 2);
        write::key(out, "Payload");
        write::opt_raw(out, self.payload)?;
        write::key(out, "SeqNo");
        write::uint(out, self.seq_no.into());
        Ok(())
    }
}

/// `nackResp`: an indirect probe whose target did not answer the relay in
/// time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Nack {
    /// `SeqNo`: the indirect ping's.
    pub(crate) seq_no: u32,
}

impl<'a> Body<'a> for Nack {
    const TYPE: MessageType = MessageType::NackResp;

    fn read(r: &mut Reader<'a>) -> Result<Self, Error> {
        let mut m = Nack::default();
        r.read_struct(|key, r| {
            match key {
                b"SeqNo" => m.seq_no = r.uint()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(m)
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write::map_header(out, 1);
        write::key(out, "SeqNo");
        write::uint(out, self.seq_no.into());
        Ok(())
    }
}
