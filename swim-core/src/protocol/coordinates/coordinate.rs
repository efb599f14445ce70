//! The public [`Coordinate`] and its fixed-point form on the wire.

use crate::protocol::coordinates::vivaldi::{DIMS, Point};
use crate::wire::Message;

/// The wire's unit for every distance in a coordinate, in seconds: 25 µs.
/// A component is an `i16` of these (±819 ms), which covers the planet's
/// round trips with room to spare.
const UNIT: f64 = 25e-6;

/// The largest height or adjustment a peer may announce, in units: 10 s.
/// Anything beyond is no network's, and is rejected.
const MAX_PLAUSIBLE: u32 = 400_000;

/// A member's network coordinate: a point in an 8-dimensional Euclidean
/// space plus a height (the member's own access delay), with the member's
/// estimate of its relative error and an adjustment term (Vivaldi with
/// serf's refinements, docs/protocol.md §6.13). The estimated round trip
/// between two members is the distance between their coordinates.
///
/// Held in the fixed-point form the wire carries (25 µs units), so a
/// coordinate can never be NaN or infinite; every accessor returns
/// seconds.
///
/// ```
/// use lapswim_core::Coordinate;
/// let a = Coordinate::new([0.010, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], 0.001, 0.2, 0.0).unwrap();
/// let b = Coordinate::new([-0.010, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], 0.001, 0.2, 0.0).unwrap();
/// // 20 ms apart, plus both heights.
/// assert_eq!(a.estimate_rtt(&b).as_micros(), 22_000);
/// assert!(Coordinate::new([f64::NAN; 8], 0.0, 0.0, 0.0).is_none());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Coordinate {
    vec: [i16; DIMS],
    height: u32,
    /// Hundredths.
    error: u8,
    adjustment: i32,
}

/// Why a peer's coordinate was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Absurd {
    /// Not [`Coordinate::DIMENSIONS`] components.
    Dimensions,
    /// A height or adjustment beyond any network's.
    Magnitude,
}

impl Coordinate {
    /// Components of the Euclidean part (serf's default dimensionality).
    pub const DIMENSIONS: usize = DIMS;

    /// A coordinate from its parts in seconds (`error` is a ratio), or
    /// `None` if any is NaN or infinite, the height or error negative, or
    /// any part too large for a network (components beyond ±0.8 s, height
    /// or adjustment beyond 10 s, error beyond 2.5).
    pub fn new(vec: [f64; DIMS], height: f64, error: f64, adjustment: f64) -> Option<Coordinate> {
        let units = |s: f64| s / UNIT;
        let mut out = [0i16; DIMS];
        for (o, x) in out.iter_mut().zip(vec) {
            let u = units(x);
            if !u.is_finite() || u.abs() > f64::from(i16::MAX) {
                return None;
            }
            *o = libm::round(u) as i16;
        }
        let (h, a) = (units(height), units(adjustment));
        let plausible = f64::from(MAX_PLAUSIBLE);
        if !(h.is_finite() && (0.0..=plausible).contains(&h) && a.is_finite() && a.abs() <= plausible) {
            return None;
        }
        if !(error.is_finite() && (0.0..=2.55).contains(&error)) {
            return None;
        }
        Some(Coordinate {
            vec: out,
            height: libm::round(h) as u32,
            error: libm::round(error * 100.0) as u8,
            adjustment: libm::round(a) as i32,
        })
    }

    /// The Euclidean part, in seconds.
    pub fn vec(&self) -> [f64; DIMS] {
        self.vec.map(|x| f64::from(x) * UNIT)
    }

    /// The height (the member's own share of every round trip), in seconds.
    pub fn height(&self) -> f64 {
        f64::from(self.height) * UNIT
    }

    /// The member's estimate of its own relative error (1.5 when it has
    /// learnt nothing yet, near 0 when its estimates are good).
    pub fn error(&self) -> f64 {
        f64::from(self.error) / 100.0
    }

    /// The adjustment term added to every estimate from this member, in
    /// seconds.
    pub fn adjustment(&self) -> f64 {
        f64::from(self.adjustment) * UNIT
    }

    /// The round trip these two coordinates predict.
    pub fn estimate_rtt(&self, other: &Coordinate) -> core::time::Duration {
        let s = self.point().estimate(&other.point());
        core::time::Duration::try_from_secs_f64(s).unwrap_or_default()
    }

    /// The nearest coordinate to `p` the wire can carry (parts out of range
    /// are clamped).
    pub(crate) fn from_point(p: &Point) -> Coordinate {
        let clamp = |s: f64, lo: f64, hi: f64| {
            let u = s / UNIT;
            if u.is_finite() { libm::round(u).clamp(lo, hi) } else { 0.0 }
        };
        let plausible = f64::from(MAX_PLAUSIBLE);
        Coordinate {
            vec: p.vec.map(|x| clamp(x, f64::from(i16::MIN), f64::from(i16::MAX)) as i16),
            height: clamp(p.height, 0.0, plausible) as u32,
            error: if p.error.is_finite() { libm::round(p.error * 100.0).clamp(0.0, 255.0) as u8 } else { 255 },
            adjustment: clamp(p.adjustment, -plausible, plausible) as i32,
        }
    }

    pub(crate) fn point(&self) -> Point {
        Point { vec: self.vec(), height: self.height(), error: self.error(), adjustment: self.adjustment() }
    }

    /// This coordinate as a message; `buf` holds the components.
    pub(crate) fn message<'a>(&self, buf: &'a mut [u8; 2 * DIMS]) -> Message<'a> {
        for (chunk, x) in buf.chunks_exact_mut(2).zip(self.vec) {
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        Message::Coordinate { vec: buf, height: self.height, error: self.error, adjustment: self.adjustment }
    }

    /// A peer's coordinate from a message's fields, if it is one a network
    /// could have.
    pub(crate) fn from_wire(vec: &[u8], height: u32, error: u8, adjustment: i32) -> Result<Coordinate, Absurd> {
        if vec.len() != 2 * DIMS {
            return Err(Absurd::Dimensions);
        }
        if height > MAX_PLAUSIBLE || adjustment.unsigned_abs() > MAX_PLAUSIBLE {
            return Err(Absurd::Magnitude);
        }
        let mut out = [0i16; DIMS];
        for (o, chunk) in out.iter_mut().zip(vec.chunks_exact(2)) {
            *o = i16::from_le_bytes([chunk.first().copied().unwrap_or(0), chunk.get(1).copied().unwrap_or(0)]);
        }
        Ok(Coordinate { vec: out, height, error, adjustment })
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Coordinate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Coordinate", 4)?;
        st.serialize_field("vec", &self.vec())?;
        st.serialize_field("height", &self.height())?;
        st.serialize_field("error", &self.error())?;
        st.serialize_field("adjustment", &self.adjustment())?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_form_round_trips_and_rejects_the_absurd() {
        let c = Coordinate::new([0.1, -0.2, 0.0, 0.003, 0.0, 0.0, 0.0, -0.8], 0.002, 0.35, -0.001).unwrap();
        let mut buf = [0u8; 16];
        let Message::Coordinate { vec, height, error, adjustment } = c.message(&mut buf) else { panic!() };
        assert_eq!(Coordinate::from_wire(vec, height, error, adjustment), Ok(c));
        assert!((c.vec()[1] + 0.2).abs() < 1e-9 && (c.error() - 0.35).abs() < 1e-9);
        assert_eq!(Coordinate::from_wire(&buf[..14], height, error, adjustment), Err(Absurd::Dimensions));
        assert_eq!(Coordinate::from_wire(&[0; 18], height, error, adjustment), Err(Absurd::Dimensions));
        assert_eq!(Coordinate::from_wire(&buf, u32::MAX, error, adjustment), Err(Absurd::Magnitude));
        assert_eq!(Coordinate::from_wire(&buf, height, error, i32::MIN), Err(Absurd::Magnitude));
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e9] {
            assert_eq!(Coordinate::new([bad; 8], 0.0, 0.0, 0.0), None);
            assert_eq!(Coordinate::new([0.0; 8], bad, 0.0, 0.0), None);
            assert_eq!(Coordinate::new([0.0; 8], 0.0, bad, 0.0), None);
            assert_eq!(Coordinate::new([0.0; 8], 0.0, 0.0, bad), None);
        }
        assert_eq!(Coordinate::new([0.0; 8], -0.001, 0.0, 0.0), None);
    }

    #[test]
    fn points_out_of_range_are_clamped_not_wrapped() {
        let p =
            Point { vec: [5.0, -5.0, f64::NAN, 0.0, 0.0, 0.0, 0.0, 0.0], height: 99.0, error: 9.0, adjustment: -99.0 };
        let c = Coordinate::from_point(&p);
        assert_eq!(c.vec[0], i16::MAX);
        assert_eq!(c.vec[1], i16::MIN);
        assert_eq!(c.vec[2], 0);
        assert_eq!(c.height, MAX_PLAUSIBLE);
        assert_eq!(c.error, 255);
        assert!(Coordinate::from_wire(&[0; 16], c.height, c.error, c.adjustment).is_ok());
    }
}
