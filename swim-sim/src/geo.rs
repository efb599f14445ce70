//! A latency model with the shape of a real wide-area network, for
//! `--latency-model geo`: members sit in a handful of regions on the
//! globe, a datagram's one-way latency is the great-circle distance
//! through fibre (with the usual detour of real routes) plus each end's
//! access delay, and a few paths are much slower than the geometry says,
//! as real ones are (routing policy, congested peering): the triangle
//! inequality does not always hold.
//!
//! Everything is drawn from the run's seed, so a run replays exactly. The
//! one-way latencies are computed once, into a matrix of whole
//! milliseconds (the simulator's clock tick).

use crate::net::{SimRng, mix};
use rand_core::{Rng, SeedableRng};

/// How one-way latencies are chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LatencyModel {
    /// The same latency between every two members (`latency_ms`), unless
    /// a link says otherwise.
    #[default]
    Flat,
    /// Regions on the globe ([`Geo`]).
    Geo,
}

impl LatencyModel {
    /// The flag's spelling.
    pub fn name(self) -> &'static str {
        match self {
            LatencyModel::Flat => "flat",
            LatencyModel::Geo => "geo",
        }
    }
}

/// Region centres, latitude and longitude in degrees: six cities on five
/// continents.
const REGIONS: [(f64, f64); 6] = [
    (39.0, -77.5),  // Virginia
    (50.1, 8.7),    // Frankfurt
    (35.7, 139.7),  // Tokyo
    (-33.9, 151.2), // Sydney
    (-23.5, -46.6), // São Paulo
    (1.35, 103.8),  // Singapore
];

/// How far a member sits from its region's centre, at most, in km.
const SPREAD_KM: f64 = 600.0;
/// Light in fibre covers about 200 km per ms.
const FIBRE_KM_PER_MS: f64 = 200.0;
/// Real routes are longer than the great circle.
const ROUTE_DETOUR: f64 = 1.4;
/// A member's access delay (its last mile and host), one way, ms.
const ACCESS_MS: (f64, f64) = (0.3, 4.0);
/// The share of paths much slower than their geometry.
const SLOW_PATHS: f64 = 0.03;
/// How much slower such a path is.
const SLOW_FACTOR: (f64, f64) = (1.5, 3.0);
/// Earth's mean radius, km.
const EARTH_KM: f64 = 6371.0;
/// The largest cluster the model is built for: its matrix holds n² entries.
pub const MAX_NODES: usize = 5_000;

/// The members' places and the one-way latency between every two.
#[derive(Clone, Debug)]
pub struct Geo {
    n: usize,
    /// Each member's region.
    region: Vec<usize>,
    /// One-way latency from `i` to `j` at `i * n + j`, ms (at least 1).
    one_way: Vec<u16>,
}

impl Geo {
    /// `n` members (at most [`MAX_NODES`]) in `regions` regions (at most
    /// six; member `i` is in region `i % regions`), placed from `seed`.
    pub fn new(n: usize, regions: usize, seed: u64) -> Geo {
        let n = n.min(MAX_NODES);
        let regions = regions.clamp(1, REGIONS.len());
        let mut rng = SimRng::seed_from_u64(mix(seed, 0x6e0));
        let mut uniform =
            move |lo: f64, hi: f64| lo + (hi - lo) * ((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64);
        let region: Vec<usize> = (0..n).map(|i| i % regions).collect();
        let place: Vec<(f64, f64)> = region
            .iter()
            .map(|&r| {
                let (lat, lon) = REGIONS[r];
                // A point within SPREAD_KM of the centre, uniform over the disc.
                let d = SPREAD_KM * uniform(0.0, 1.0).sqrt() / EARTH_KM;
                let bearing = uniform(0.0, core::f64::consts::TAU);
                offset(lat, lon, d, bearing)
            })
            .collect();
        let access: Vec<f64> = (0..n).map(|_| uniform(ACCESS_MS.0, ACCESS_MS.1)).collect();
        let mut one_way = vec![0u16; n * n];
        for i in 0..n {
            for j in (i + 1)..n {
                let km = great_circle_km(place[i], place[j]);
                let mut ms = km * ROUTE_DETOUR / FIBRE_KM_PER_MS + access[i] + access[j];
                if uniform(0.0, 1.0) < SLOW_PATHS {
                    ms *= uniform(SLOW_FACTOR.0, SLOW_FACTOR.1);
                }
                let ms = ms.round().clamp(1.0, f64::from(u16::MAX)) as u16;
                one_way[i * n + j] = ms;
                one_way[j * n + i] = ms;
            }
        }
        Geo { n, region, one_way }
    }

    /// Members modelled.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether no member is modelled.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The one-way latency from `i` to `j`, ms (`None` for a member the
    /// model does not hold).
    pub fn one_way_ms(&self, i: usize, j: usize) -> Option<u64> {
        if i >= self.n || j >= self.n {
            return None;
        }
        if i == j {
            return Some(0);
        }
        self.one_way.get(i * self.n + j).map(|&ms| u64::from(ms))
    }

    /// The true round trip between `i` and `j`, ms.
    pub fn rtt_ms(&self, i: usize, j: usize) -> Option<u64> {
        Some(self.one_way_ms(i, j)? + self.one_way_ms(j, i)?)
    }

    /// Member `i`'s region.
    pub fn region(&self, i: usize) -> Option<usize> {
        self.region.get(i).copied()
    }
}

/// The point `d` radians from (`lat`, `lon`) along `bearing`.
fn offset(lat: f64, lon: f64, d: f64, bearing: f64) -> (f64, f64) {
    let (phi, lambda) = (lat.to_radians(), lon.to_radians());
    let phi2 = (phi.sin() * d.cos() + phi.cos() * d.sin() * bearing.cos()).asin();
    let lambda2 = lambda + (bearing.sin() * d.sin() * phi.cos()).atan2(d.cos() - phi.sin() * phi2.sin());
    (phi2.to_degrees(), lambda2.to_degrees())
}

/// The great-circle distance between two points, km (haversine).
fn great_circle_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (p1, p2) = (a.0.to_radians(), b.0.to_radians());
    let (dp, dl) = (p2 - p1, (b.1 - a.1).to_radians());
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_KM * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_are_those_of_the_globe() {
        // Frankfurt to Tokyo is about 9,350 km.
        let km = great_circle_km(REGIONS[1], REGIONS[2]);
        assert!((9_200.0..9_500.0).contains(&km), "{km}");
        assert!(great_circle_km(REGIONS[0], REGIONS[0]) < 1e-9);
    }

    #[test]
    fn the_model_has_the_network_s_shape() {
        let g = Geo::new(300, 6, 7);
        let mut near = Vec::new();
        let mut far = Vec::new();
        let mut violations = 0;
        for i in 0..g.len() {
            for j in 0..g.len() {
                let ms = g.one_way_ms(i, j).unwrap();
                assert_eq!(Some(ms), g.one_way_ms(j, i), "symmetric");
                if i == j {
                    continue;
                }
                assert!(ms >= 1);
                if g.region(i) == g.region(j) { near.push(ms) } else { far.push(ms) }
            }
        }
        near.sort_unstable();
        far.sort_unstable();
        let (near_mid, far_mid) = (near[near.len() / 2], far[far.len() / 2]);
        assert!((2..=12).contains(&near_mid), "within a region: {near_mid} ms one way");
        assert!((40..=150).contains(&far_mid), "across regions: {far_mid} ms one way");
        // Some detours through a third member beat the direct path.
        for (i, j, k) in (0..60).flat_map(|i| (60..120).map(move |j| (i, j, (i * 7 + j) % 300))) {
            let direct = g.one_way_ms(i, j).unwrap();
            if g.one_way_ms(i, k).unwrap() + g.one_way_ms(k, j).unwrap() < direct {
                violations += 1;
            }
        }
        assert!(violations > 0, "the triangle inequality is violated somewhere");
        assert_eq!(Geo::new(300, 6, 7).one_way, g.one_way, "a seed places members the same way");
        assert_ne!(Geo::new(300, 6, 8).one_way, g.one_way);
        assert_eq!(g.one_way_ms(0, 300), None);
    }
}
