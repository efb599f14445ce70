//! serf's payload in memberlist's acks (`serf/ping_delegate.go` at serf
//! 0.9.4): a version byte, then the acking member's network coordinate
//! (`coordinate.Coordinate`) as go-msgpack writes it. serf puts it in
//! every ack it sends and takes it from every ack to a direct ping of
//! its own: that is all `serf rtt` estimates from.

use alloc::vec::Vec;

use super::error::Error;
use super::msgpack::read::Reader;
use super::msgpack::write;

/// `PingVersion`: the payload's first byte.
pub(crate) const PING_VERSION: u8 = 1;

/// The dimensions serf's coordinates have by default, and the only ones
/// ours have.
pub(crate) const DIMENSIONS: usize = 8;

/// Past this many components a coordinate is no serf agent's: the
/// payload is refused rather than read on.
const MAX_DIMENSIONS: usize = 64;

/// serf's coordinate: every distance in seconds, the error a ratio.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct SerfCoordinate {
    /// `Vec`: the first [`DIMENSIONS`] components.
    pub(crate) vec: [f64; DIMENSIONS],
    /// How many components `Vec` had: a coordinate of another
    /// dimensionality is not comparable with ours.
    pub(crate) dims: usize,
    /// `Error`.
    pub(crate) error: f64,
    /// `Adjustment`.
    pub(crate) adjustment: f64,
    /// `Height`.
    pub(crate) height: f64,
}

impl SerfCoordinate {
    /// Reads an ack's payload: the version byte, then the coordinate.
    pub(crate) fn decode(payload: &[u8]) -> Result<Self, Error> {
        let (&version, body) = payload.split_first().ok_or(Error::Truncated)?;
        if version != PING_VERSION {
            return Err(Error::UnknownType(version));
        }
        let mut c = SerfCoordinate::default();
        Reader::new(body).read_struct(|key, r| {
            match key {
                b"Vec" => {
                    let n = r.array_len()?.unwrap_or(0);
                    if n > MAX_DIMENSIONS {
                        return Err(Error::Oversized);
                    }
                    c.dims = n;
                    for i in 0..n {
                        let x = r.float()?;
                        if let Some(slot) = c.vec.get_mut(i) {
                            *slot = x;
                        }
                    }
                }
                b"Error" => c.error = r.float()?,
                b"Adjustment" => c.adjustment = r.float()?,
                b"Height" => c.height = r.float()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(c)
    }

    /// Appends the payload serf puts in an ack: the version byte, then
    /// the struct with its fields in the order go-msgpack writes them
    /// (sorted by name).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(PING_VERSION);
        write::map_header(out, 4);
        write::key(out, "Adjustment");
        write::float64(out, self.adjustment);
        write::key(out, "Error");
        write::float64(out, self.error);
        write::key(out, "Height");
        write::float64(out, self.height);
        write::key(out, "Vec");
        write::array_header(out, DIMENSIONS);
        for x in self.vec {
            write::float64(out, x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a serf 0.9.4 agent that has learnt nothing yet puts in its
    /// acks (`NewCoordinate` of the default config: the origin, error
    /// 1.5, height 10 µs), as go-msgpack 0.5.3 writes it.
    fn fresh_serf_payload() -> Vec<u8> {
        let mut want = alloc::vec![1, 0x84];
        let mut field = |name: &str, v: f64| {
            want.push(0xa0 | name.len() as u8);
            want.extend_from_slice(name.as_bytes());
            want.push(0xcb);
            want.extend_from_slice(&v.to_bits().to_be_bytes());
        };
        field("Adjustment", 0.0);
        field("Error", 1.5);
        field("Height", 10e-6);
        want.extend_from_slice(&[0xa3, b'V', b'e', b'c', 0x98]);
        for _ in 0..8 {
            want.push(0xcb);
            want.extend_from_slice(&0f64.to_bits().to_be_bytes());
        }
        want
    }

    #[test]
    fn a_fresh_serf_coordinate_reads_and_writes_as_serf_does() {
        let bytes = fresh_serf_payload();
        let c = SerfCoordinate::decode(&bytes).unwrap();
        assert_eq!(c, SerfCoordinate { vec: [0.0; 8], dims: 8, error: 1.5, adjustment: 0.0, height: 10e-6 });
        let mut out = Vec::new();
        c.encode(&mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn other_versions_dimensions_and_junk_are_told_apart() {
        let mut bytes = fresh_serf_payload();
        bytes[0] = 2;
        assert_eq!(SerfCoordinate::decode(&bytes), Err(Error::UnknownType(2)));
        assert_eq!(SerfCoordinate::decode(&[]), Err(Error::Truncated));
        // Four components, one of them an integer (Go takes it as a float).
        let short = [1, 0x81, 0xa3, b'V', b'e', b'c', 0x94, 0x01, 0xc0, 0xca, 0x3f, 0x80, 0, 0, 0xff];
        let c = SerfCoordinate::decode(&short).unwrap();
        assert_eq!((c.dims, c.vec[0], c.vec[1], c.vec[2], c.vec[3]), (4, 1.0, 0.0, 1.0, -1.0));
        // A length past what is there, and a string where a float goes.
        assert_eq!(SerfCoordinate::decode(&[1, 0x81, 0xa3, b'V', b'e', b'c', 0xdd, 0, 0, 1, 0]), Err(Error::Truncated));
        assert_eq!(
            SerfCoordinate::decode(&[1, 0x81, 0xa5, b'E', b'r', b'r', b'o', b'r', 0xa1, b'x']),
            Err(Error::Malformed)
        );
    }
}
