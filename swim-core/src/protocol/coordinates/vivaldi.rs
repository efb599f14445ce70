//! Vivaldi (Dabek et al., SIGCOMM 2004) with height vectors and the
//! refinements serf documents (Ledlie et al., NSDI 2007): an adjustment
//! term from a window of residuals and gravity toward the origin. The
//! latency filter (the median of a peer's last round trips) is applied by
//! the caller, which keeps the samples with the peer's record.
//!
//! All distances are in seconds, in `f64` (with `libm`: no `std`).

use alloc::vec::Vec;

use crate::api::config::Config;
use crate::util::rng::Random;

/// Dimensions of the Euclidean part: serf's default, and what the wire
/// carries.
pub(crate) const DIMS: usize = 8;

/// The update rule's parameters, in floating point.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    pub(crate) error_max: f64,
    pub(crate) ce: f64,
    pub(crate) cc: f64,
    pub(crate) window: usize,
    pub(crate) height_min: f64,
    pub(crate) rho: f64,
}

impl Params {
    pub(crate) fn new(config: &Config) -> Params {
        Params {
            error_max: f64::from(config.vivaldi_error_max_percent) / 100.0,
            ce: f64::from(config.vivaldi_ce_percent) / 100.0,
            cc: f64::from(config.vivaldi_cc_percent) / 100.0,
            window: config.vivaldi_adjustment_window as usize,
            height_min: f64::from(config.vivaldi_height_min_us) / 1e6,
            rho: (config.vivaldi_gravity_rho.as_millis() as f64 / 1000.0).max(1e-3),
        }
    }
}

/// A point in the coordinate space, with its error estimate and
/// adjustment term.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Point {
    pub(crate) vec: [f64; DIMS],
    pub(crate) height: f64,
    pub(crate) error: f64,
    pub(crate) adjustment: f64,
}

impl Point {
    pub(crate) fn origin(p: &Params) -> Point {
        Point { vec: [0.0; DIMS], height: p.height_min, error: p.error_max, adjustment: 0.0 }
    }

    /// The distance the coordinates alone give.
    pub(crate) fn raw_distance(&self, other: &Point) -> f64 {
        norm(&diff(&self.vec, &other.vec)) + self.height + other.height
    }

    /// The estimated round trip: the distance with both adjustments,
    /// unless they would make it negative.
    pub(crate) fn estimate(&self, other: &Point) -> f64 {
        let raw = self.raw_distance(other);
        let adjusted = raw + self.adjustment + other.adjustment;
        if adjusted > 0.0 { adjusted } else { raw }
    }

    fn is_finite(&self) -> bool {
        self.vec.iter().all(|x| x.is_finite())
            && self.height.is_finite()
            && self.error.is_finite()
            && self.adjustment.is_finite()
    }
}

fn diff(a: &[f64; DIMS], b: &[f64; DIMS]) -> [f64; DIMS] {
    let mut d = [0.0; DIMS];
    for ((d, x), y) in d.iter_mut().zip(a).zip(b) {
        *d = x - y;
    }
    d
}

fn norm(v: &[f64; DIMS]) -> f64 {
    libm::sqrt(v.iter().map(|x| x * x).sum::<f64>())
}

/// A round trip longer than this is not a network's: ignored.
pub(crate) const MAX_RTT_S: f64 = 10.0;

/// The local member's Vivaldi state.
#[derive(Clone, Debug)]
pub(crate) struct Vivaldi {
    params: Params,
    pub(crate) point: Point,
    /// Recent residuals, for the adjustment term (a ring of `window`).
    residuals: Vec<f64>,
    next_residual: usize,
}

impl Vivaldi {
    pub(crate) fn new(params: Params) -> Vivaldi {
        Vivaldi { point: Point::origin(&params), params, residuals: Vec::new(), next_residual: 0 }
    }

    /// A (filtered) round trip of `rtt` seconds to a peer at `theirs`.
    /// Returns whether the coordinate moved; a state that would turn
    /// non-finite is not taken (it cannot, from checked inputs, but the
    /// coordinate is what every estimate rests on).
    pub(crate) fn observe(&mut self, theirs: &Point, rtt: f64, rng: &mut dyn Random) -> bool {
        let p = self.params;
        if !(rtt.is_finite() && rtt > 0.0 && rtt < MAX_RTT_S && theirs.is_finite()) {
            return false;
        }
        let mut me = self.point;
        let dist = me.raw_distance(theirs);
        let wrongness = (dist - rtt).abs() / rtt;
        let total = (me.error + theirs.error).max(1e-6);
        let weight = me.error / total;
        me.error = (p.ce * weight * wrongness + me.error * (1.0 - p.ce * weight)).min(p.error_max);
        let force = p.cc * weight * (rtt - dist);
        apply_force(&mut me, theirs, force, p.height_min, rng);

        // The adjustment: the mean residual over the window, halved since
        // both ends of an estimate add theirs.
        let residual = rtt - me.raw_distance(theirs);
        // The window as it would be with this residual, summed in the
        // window's order; it changes only if the observation is kept.
        let grows = self.residuals.len() < p.window;
        if p.window > 0 {
            let next = self.next_residual;
            let sum: f64 = if grows {
                self.residuals.iter().copied().chain(core::iter::once(residual)).sum()
            } else {
                self.residuals.iter().enumerate().map(|(i, &x)| if i == next { residual } else { x }).sum()
            };
            me.adjustment = sum / (2.0 * p.window as f64);
        }

        // Gravity: a pull toward the origin growing with the square of the
        // distance from it, so the system as a whole does not drift.
        let origin = Point::origin(&p);
        let pull = -libm::pow(me.raw_distance(&origin) / p.rho, 2.0);
        apply_force(&mut me, &origin, pull, p.height_min, rng);

        if !me.is_finite() {
            return false;
        }
        self.point = me;
        if p.window > 0 {
            if grows {
                self.residuals.push(residual);
            } else if let Some(slot) = self.residuals.get_mut(self.next_residual) {
                *slot = residual;
            }
            self.next_residual = (self.next_residual + 1) % p.window.max(1);
        }
        true
    }
}

/// Moves `me` by `force` seconds along the direction from `other` to `me`
/// in the height-vector space (away when positive).
fn apply_force(me: &mut Point, other: &Point, force: f64, height_min: f64, rng: &mut dyn Random) {
    let mut d = diff(&me.vec, &other.vec);
    let mut len = norm(&d);
    if len < 1e-6 {
        // On top of each other: any direction will do.
        for x in d.iter_mut() {
            *x = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
        }
        len = norm(&d).max(1e-12);
    }
    let span = len + me.height + other.height;
    for (x, dx) in me.vec.iter_mut().zip(&d) {
        *x += force * dx / span;
    }
    me.height = (me.height + force * (me.height + other.height) / span).max(height_min);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::rng::tests::rng;

    fn params() -> Params {
        Params::new(&Config::lan())
    }

    #[test]
    fn two_members_learn_their_distance() {
        let (mut a, mut b) = (Vivaldi::new(params()), Vivaldi::new(params()));
        let mut r = rng(1);
        for _ in 0..200 {
            let pb = b.point;
            a.observe(&pb, 0.080, &mut r);
            let pa = a.point;
            b.observe(&pa, 0.080, &mut r);
        }
        let estimate = a.point.estimate(&b.point);
        assert!((estimate - 0.080).abs() < 0.008, "{estimate}");
        assert!(a.point.error < 0.3, "confident now: {}", a.point.error);
    }

    #[test]
    fn absurd_round_trips_and_peers_change_nothing() {
        let mut a = Vivaldi::new(params());
        let before = a.point;
        let mut r = rng(2);
        let origin = Point::origin(&params());
        for rtt in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0, 0.0, 11.0] {
            assert!(!a.observe(&origin, rtt, &mut r));
        }
        for bad in [f64::NAN, f64::INFINITY, 1e308] {
            let mut theirs = origin;
            theirs.vec[3] = bad;
            theirs.height = if bad == 1e308 { 1e308 } else { theirs.height };
            assert!(!a.observe(&theirs, 0.05, &mut r), "{bad}");
        }
        assert_eq!(a.point, before);
    }
}
