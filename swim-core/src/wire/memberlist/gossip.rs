//! The membership updates memberlist gossips: `suspect`, `alive` and
//! `dead` (`net.go` of 0.2.2), the six protocol versions an `alive`
//! carries, and the IP bytes its `Addr` holds.

use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::error::{EncodeError, Error};
use super::message::{Body, MessageType};
use super::msgpack::read::Reader;
use super::msgpack::write;

/// `suspect`: `from` suspects `node` at `incarnation`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Suspect<'a> {
    /// `Incarnation`.
    pub(crate) incarnation: u32,
    /// `Node`: the suspected member.
    pub(crate) node: &'a str,
    /// `From`: the accuser.
    pub(crate) from: &'a str,
}

/// `dead`: `from` declares `node` dead at `incarnation`; `from == node`
/// is a graceful leave.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Dead<'a> {
    /// `Incarnation`.
    pub(crate) incarnation: u32,
    /// `Node`: the member declared dead.
    pub(crate) node: &'a str,
    /// `From`: who declares it.
    pub(crate) from: &'a str,
}

/// Reads the shared shape of `suspect` and `dead`.
fn read_accusation<'a>(r: &mut Reader<'a>) -> Result<(u32, &'a str, &'a str), Error> {
    let (mut incarnation, mut node, mut from) = (0, "", "");
    r.read_struct(|key, r| {
        match key {
            b"Incarnation" => incarnation = r.uint()?,
            b"Node" => node = r.str()?,
            b"From" => from = r.str()?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok((incarnation, node, from))
}

/// Writes the shared shape of `suspect` and `dead`, keys sorted.
fn write_accusation(out: &mut Vec<u8>, incarnation: u32, node: &str, from: &str) -> Result<(), EncodeError> {
    write::map_header(out, 3);
    write::key(out, "From");
    write::raw(out, from.as_bytes())?;
    write::key(out, "Incarnation");
    write::uint(out, incarnation.into());
    write::key(out, "Node");
    write::raw(out, node.as_bytes())
}

impl<'a> Body<'a> for Suspect<'a> {
    const TYPE: MessageType = MessageType::Suspect;

    fn read(r: &mut Reader<'a>) -> Result<Self, Error> {
        let (incarnation, node, from) = read_accusation(r)?;
        Ok(Suspect { incarnation, node, from })
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write_accusation(out, self.incarnation, self.node, self.from)
    }
}

impl<'a> Body<'a> for Dead<'a> {
    const TYPE: MessageType = MessageType::Dead;

    fn read(r: &mut Reader<'a>) -> Result<Self, Error> {
        let (incarnation, node, from) = read_accusation(r)?;
        Ok(Dead { incarnation, node, from })
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write_accusation(out, self.incarnation, self.node, self.from)
    }
}

/// `alive`: `node` is alive at `incarnation`, at `addr:port`, with this
/// metadata and these protocol versions. Also how a member joins.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Alive<'a> {
    /// `Incarnation`.
    pub(crate) incarnation: u32,
    /// `Node`: the member's name.
    pub(crate) node: &'a str,
    /// `Addr`: its IP, 4 or 16 bytes (see [`ip_from_wire`]); `None` is
    /// Go's nil.
    pub(crate) addr: Option<&'a [u8]>,
    /// `Port`: 0 means the receiver's own bind port (protocol < 2).
    pub(crate) port: u16,
    /// `Meta`: the delegate's metadata (memberlist caps it at 512 bytes
    /// when it builds one; the wire does not); `None` is Go's nil.
    pub(crate) meta: Option<&'a [u8]>,
    /// `Vsn`: the versions, six bytes when present (see [`Versions`]).
    /// Kept as the raw bytes: memberlist accepts other lengths and
    /// ignores or drops the update later, which is a state decision.
    pub(crate) vsn: Option<&'a [u8]>,
}

impl<'a> Body<'a> for Alive<'a> {
    const TYPE: MessageType = MessageType::Alive;

    fn read(r: &mut Reader<'a>) -> Result<Self, Error> {
        let mut m = Alive::default();
        r.read_struct(|key, r| {
            match key {
                b"Incarnation" => m.incarnation = r.uint()?,
                b"Node" => m.node = r.str()?,
                b"Addr" => m.addr = r.bytes()?,
                b"Port" => m.port = r.uint()?,
                b"Meta" => m.meta = r.bytes()?,
                b"Vsn" => m.vsn = r.bytes()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(m)
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write::map_header(out, 6);
        write::key(out, "Addr");
        write::opt_raw(out, self.addr)?;
        write::key(out, "Incarnation");
        write::uint(out, self.incarnation.into());
        write::key(out, "Meta");
        write::opt_raw(out, self.meta)?;
        write::key(out, "Node");
        write::raw(out, self.node.as_bytes())?;
        write::key(out, "Port");
        write::uint(out, self.port.into());
        write::key(out, "Vsn");
        // `[]uint8` is `[]byte` to the codec: a raw string, not an array.
        write::opt_raw(out, self.vsn)
    }
}

/// The six versions an `alive` (and a push-pull node state) carries, in
/// their wire order: protocol min, max, current, then delegate min, max,
/// current.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Versions {
    /// The oldest memberlist protocol the member understands.
    pub(crate) protocol_min: u8,
    /// The newest memberlist protocol the member understands.
    pub(crate) protocol_max: u8,
    /// The memberlist protocol the member speaks.
    pub(crate) protocol_cur: u8,
    /// The oldest delegate protocol the member understands.
    pub(crate) delegate_min: u8,
    /// The newest delegate protocol the member understands.
    pub(crate) delegate_max: u8,
    /// The delegate protocol the member speaks.
    pub(crate) delegate_cur: u8,
}

impl Versions {
    /// The versions of a `Vsn` field, if it has all six (memberlist
    /// ignores an alive without them; extra bytes are ignored as Go
    /// indexes only the first six).
    pub(crate) fn from_vsn(vsn: &[u8]) -> Option<Self> {
        let [pmin, pmax, pcur, dmin, dmax, dcur] = *vsn.first_chunk::<6>()?;
        Some(Versions {
            protocol_min: pmin,
            protocol_max: pmax,
            protocol_cur: pcur,
            delegate_min: dmin,
            delegate_max: dmax,
            delegate_cur: dcur,
        })
    }

    /// The six bytes of the `Vsn` field.
    pub(crate) fn to_vsn(self) -> [u8; 6] {
        [
            self.protocol_min,
            self.protocol_max,
            self.protocol_cur,
            self.delegate_min,
            self.delegate_max,
            self.delegate_cur,
        ]
    }
}

/// The IP a Go `net.IP` on the wire holds: 4 bytes, or 16 (an
/// IPv4-mapped IPv6 address is the IPv4 address, as Go reads it). `None`
/// for any other length, which Go would not connect to either.
pub(crate) fn ip_from_wire(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Some(IpAddr::V4(Ipv4Addr::from(v4)));
    }
    let v6 = Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?);
    Some(match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    })
}

/// The wire bytes of an IP as memberlist sends its own: 4 for IPv4 (Go's
/// `To4()` form, what `NetTransport` advertises for a configured IPv4
/// address), 16 for IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct IpBytes {
    bytes: [u8; 16],
    len: u8,
}

impl IpBytes {
    /// The wire form of `ip`.
    pub(crate) fn new(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => {
                let mut bytes = [0; 16];
                if let Some(head) = bytes.first_chunk_mut::<4>() {
                    *head = v4.octets();
                }
                IpBytes { bytes, len: 4 }
            }
            IpAddr::V6(v6) => IpBytes { bytes: v6.octets(), len: 16 },
        }
    }

    /// The bytes to put in an `Addr`, `Target` or `SourceAddr` field.
    pub(crate) fn as_slice(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }
}
