//! The `coords` scenario: how well network coordinates estimate the round
//! trip between every two members, on the geo latency model.
//!
//! The reference is serf's algorithm as published: Vivaldi (Dabek et al.,
//! SIGCOMM 2004) with height vectors, and the refinements serf documents
//! with its parameters (Ledlie et al., NSDI 2007: a per-peer latency
//! filter, an adjustment term from a window of residuals, and gravity
//! toward the origin, so the coordinates do not drift). It is written here
//! from those descriptions, as the yardstick the protocol's own
//! coordinates are measured against.
//!
//! Sampling follows SWIM: every probe interval each member probes the
//! next member of its own shuffled round and learns the round trip, with
//! the target's coordinate as the target holds it.

use rand_core::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::geo::{Geo, LatencyModel};
use lapswim_core::Event;

use crate::net::{Command, Flow, SimError, SimRng, mix};
use crate::process::Meter;
use crate::scenario::{Params, finish, header};

/// serf's documented parameters.
#[derive(Clone, Copy, Debug)]
pub struct VivaldiParams {
    /// Dimensions of the Euclidean part.
    pub dimensions: usize,
    /// The error of a member with no observation yet.
    pub error_max: f64,
    /// The most one observation moves a member's error estimate.
    pub ce: f64,
    /// The most one observation moves a member's coordinate.
    pub cc: f64,
    /// Residuals averaged into the adjustment term.
    pub adjustment_window: usize,
    /// The least height, seconds.
    pub height_min: f64,
    /// Round trips per peer whose median is used.
    pub latency_filter: usize,
    /// Gravity's length scale, seconds.
    pub gravity_rho: f64,
}

impl Default for VivaldiParams {
    fn default() -> Self {
        VivaldiParams {
            dimensions: 8,
            error_max: 1.5,
            ce: 0.25,
            cc: 0.25,
            adjustment_window: 20,
            height_min: 10.0e-6,
            latency_filter: 3,
            gravity_rho: 150.0,
        }
    }
}

/// A point in the coordinate space: a Euclidean part and a height (the
/// member's access link), in seconds, with the error estimate and the
/// adjustment term.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// The Euclidean part.
    pub vec: Vec<f64>,
    /// The height.
    pub height: f64,
    /// The member's estimate of its own relative error.
    pub error: f64,
    /// Added to every estimate from this member.
    pub adjustment: f64,
}

impl Point {
    fn origin(p: &VivaldiParams) -> Point {
        Point { vec: vec![0.0; p.dimensions], height: p.height_min, error: p.error_max, adjustment: 0.0 }
    }

    /// The distance the coordinates alone give, seconds.
    fn raw_distance(&self, other: &Point) -> f64 {
        norm(&diff(&self.vec, &other.vec)) + self.height + other.height
    }

    /// The estimated round trip, seconds: the distance with both
    /// adjustments, unless they would make it negative.
    pub fn estimate(&self, other: &Point) -> f64 {
        let raw = self.raw_distance(other);
        let adjusted = raw + self.adjustment + other.adjustment;
        if adjusted > 0.0 { adjusted } else { raw }
    }
}

fn diff(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// One member's Vivaldi state.
#[derive(Clone, Debug)]
pub struct Vivaldi {
    params: VivaldiParams,
    /// Its coordinate.
    pub point: Point,
    /// Recent residuals, for the adjustment term.
    residuals: Vec<f64>,
    next_residual: usize,
    /// Recent round trips per peer, for the latency filter.
    recent: std::collections::BTreeMap<usize, Vec<f64>>,
}

impl Vivaldi {
    /// A member at the origin.
    pub fn new(params: VivaldiParams) -> Vivaldi {
        Vivaldi {
            point: Point::origin(&params),
            params,
            residuals: Vec::new(),
            next_residual: 0,
            recent: std::collections::BTreeMap::new(),
        }
    }

    /// A round trip of `rtt` seconds to `peer`, whose coordinate is
    /// `theirs`; `direction` is used when the two coincide.
    pub fn observe(&mut self, peer: usize, theirs: &Point, rtt: f64, direction: &mut dyn FnMut() -> f64) {
        let p = self.params;
        if !(rtt.is_finite() && rtt > 0.0 && rtt < 10.0) {
            return;
        }
        // The latency filter: the median of the last few round trips.
        let window = self.recent.entry(peer).or_default();
        window.push(rtt);
        if window.len() > p.latency_filter {
            window.remove(0);
        }
        let mut sorted = window.clone();
        sorted.sort_by(f64::total_cmp);
        let rtt = sorted[sorted.len() / 2];

        let me = &mut self.point;
        let dist = me.raw_distance(theirs);
        let wrongness = (dist - rtt).abs() / rtt;
        let total = (me.error + theirs.error).max(1e-6);
        let weight = me.error / total;
        me.error = (p.ce * weight * wrongness + me.error * (1.0 - p.ce * weight)).min(p.error_max);
        let force = p.cc * weight * (rtt - dist);
        apply_force(me, theirs, force, p.height_min, direction);

        // The adjustment: the mean residual over the window, halved since
        // both ends add theirs.
        let residual = rtt - me.raw_distance(theirs);
        if p.adjustment_window > 0 {
            if self.residuals.len() < p.adjustment_window {
                self.residuals.push(residual);
            } else {
                self.residuals[self.next_residual] = residual;
            }
            self.next_residual = (self.next_residual + 1) % p.adjustment_window;
            me.adjustment = self.residuals.iter().sum::<f64>() / (2.0 * p.adjustment_window as f64);
        }

        // Gravity: a pull toward the origin growing with the square of the
        // distance from it, so the whole system does not drift.
        let origin = Point::origin(&p);
        let from_origin = me.raw_distance(&origin);
        let pull = -(from_origin / p.gravity_rho).powi(2);
        apply_force(me, &origin, pull, p.height_min, direction);
    }
}

/// Moves `me` by `force` seconds along the direction from `other` to
/// `me` in the height-vector space (away when positive).
fn apply_force(me: &mut Point, other: &Point, force: f64, height_min: f64, direction: &mut dyn FnMut() -> f64) {
    let mut d = diff(&me.vec, &other.vec);
    let mut len = norm(&d);
    if len < 1e-6 {
        // On top of each other: any direction will do.
        d = (0..d.len()).map(|_| direction() - 0.5).collect();
        len = norm(&d).max(1e-12);
    }
    let span = len + me.height + other.height;
    for (x, dx) in me.vec.iter_mut().zip(&d) {
        *x += force * dx / span;
    }
    me.height = (me.height + force * (me.height + other.height) / span).max(height_min);
}

/// Relative errors over every pair: (median, 95th percentile).
pub fn pair_errors(geo: &Geo, points: &[Point]) -> (f64, f64) {
    let mut errors = Vec::with_capacity(points.len() * points.len() / 2);
    for i in 0..points.len() {
        for j in (i + 1)..points.len() {
            let Some(truth) = geo.rtt_ms(i, j) else { continue };
            let truth = truth as f64 / 1000.0;
            errors.push((points[i].estimate(&points[j]) - truth).abs() / truth);
        }
    }
    if errors.is_empty() {
        return (0.0, 0.0);
    }
    errors.sort_by(f64::total_cmp);
    let at = |q: f64| errors[((errors.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.95))
}

/// How often the errors are measured, virtual ms.
const EVERY_MS: u64 = 10_000;
/// `converged_ms`: the first measurement with a median error below this.
const CONVERGED: f64 = 0.2;

/// Runs the protocol's coordinates and the reference for `seconds` of
/// virtual time on `p.n` members of the geo model (whatever
/// `p.latency_model` says: coordinates are about a network with a shape)
/// and returns their lines: the protocol's first.
pub fn coords(p: &Params, seconds: u64) -> Result<Vec<Value>, SimError> {
    Ok(vec![protocol(p, seconds)?, run(p, seconds)])
}

/// A coordinate of the protocol as the reference's point.
fn point_of(c: &lapswim_core::Coordinate) -> Point {
    Point { vec: c.vec().to_vec(), height: c.height(), error: c.error(), adjustment: c.adjustment() }
}

/// The protocol's line: a real cluster on the geo model, every member
/// joining member 0 at the start, each member's own coordinate measured
/// against the true round trips every 10 s.
fn protocol(p: &Params, seconds: u64) -> Result<Value, SimError> {
    let meter = Meter::start();
    let n = p.n.min(crate::geo::MAX_NODES);
    let p = &Params { n, latency_model: LatencyModel::Geo, regions: None, ..p.clone() };
    let mut sim = crate::scenario::sim(p, p.seed, 0.0)?;
    for i in 1..n {
        sim.schedule(0, Command::Join { node: i, seeds: vec![0] })?;
    }
    let mut converged_ms = None;
    let mut last = (1.0, 1.0);
    let mut t = 0;
    while t < seconds * 1000 {
        t = (t + EVERY_MS).min(seconds * 1000);
        sim.run_until(t, &mut |_, _, _: &Event| Flow::Continue);
        let Some(geo) = sim.geo() else { break };
        let mut points = Vec::with_capacity(n);
        for i in 0..n {
            // With coordinates off every member sits at the origin.
            let c = sim.node(i)?.coordinate();
            points.push(c.map_or_else(|| Point::origin(&VivaldiParams::default()), |c| point_of(&c)));
        }
        last = pair_errors(geo, &points);
        if converged_ms.is_none() && last.0 < CONVERGED {
            converged_ms = Some(t);
        }
    }
    let (mut sent, mut updates) = (0, 0);
    for i in 0..n {
        let s = sim.node(i)?.stats();
        sent += s.coordinates_sent;
        updates += s.coordinate_updates;
    }
    let mut m = header("coords", p, p.seed, 0.0);
    m.insert("algorithm".into(), json!("swim"));
    m.insert("seconds".into(), json!(seconds));
    m.insert("median_rel_error".into(), json!((last.0 * 1000.0).round() / 1000.0));
    m.insert("p95_rel_error".into(), json!((last.1 * 1000.0).round() / 1000.0));
    m.insert("converged_ms".into(), json!(converged_ms));
    let per_node_s = (n as f64 * seconds.max(1) as f64).max(1.0);
    m.insert("coordinates_sent_per_node_per_s".into(), json!((sent as f64 / per_node_s * 1000.0).round() / 1000.0));
    m.insert("updates_per_node_per_s".into(), json!((updates as f64 / per_node_s * 1000.0).round() / 1000.0));
    Ok(finish(m, "completed", &meter))
}

fn run(p: &Params, seconds: u64) -> Value {
    let meter = Meter::start();
    // The model holds at most MAX_NODES: members past it are left out.
    let geo = Geo::new(p.n, 6, p.seed);
    let p = &Params { n: geo.len(), ..p.clone() };
    let params = VivaldiParams::default();
    let mut rng = SimRng::seed_from_u64(mix(p.seed, 0xc00));
    let mut uniform = move || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    let mut members: Vec<Vivaldi> = (0..p.n).map(|_| Vivaldi::new(params)).collect();
    // Each member's probe round: every other member once, shuffled.
    let mut rounds: Vec<Vec<usize>> = vec![Vec::new(); p.n];
    let interval = p.config.probe_interval.as_millis().max(1);
    let mut converged_ms = None;
    let mut last = (1.0, 1.0);
    let mut t = 0;
    while t < seconds * 1000 {
        t += interval;
        for i in 0..p.n {
            if rounds[i].is_empty() {
                let mut round: Vec<usize> = (0..p.n).filter(|&j| j != i).collect();
                for k in (1..round.len()).rev() {
                    round.swap(k, (uniform() * (k + 1) as f64) as usize % (k + 1));
                }
                rounds[i] = round;
            }
            let Some(j) = rounds[i].pop() else { continue };
            let Some(truth) = geo.rtt_ms(i, j) else { continue };
            // The round trip a probe measures: the path's, plus up to 2 ms
            // of queueing at either end.
            let rtt = (truth as f64 + 2.0 * uniform()) / 1000.0;
            let theirs = members[j].point.clone();
            members[i].observe(j, &theirs, rtt, &mut uniform);
        }
        if t % EVERY_MS < interval {
            let points: Vec<Point> = members.iter().map(|m| m.point.clone()).collect();
            last = pair_errors(&geo, &points);
            if converged_ms.is_none() && last.0 < CONVERGED {
                converged_ms = Some(t);
            }
        }
    }
    let mut m = header("coords", &Params { latency_model: LatencyModel::Geo, ..p.clone() }, p.seed, 0.0);
    // Not the protocol's coordinates: the published algorithm, fed the
    // probes a SWIM member makes.
    m.insert("impl".into(), json!("reference"));
    m.insert("algorithm".into(), json!("serf"));
    m.insert("seconds".into(), json!(seconds));
    m.insert("median_rel_error".into(), json!((last.0 * 1000.0).round() / 1000.0));
    m.insert("p95_rel_error".into(), json!((last.1 * 1000.0).round() / 1000.0));
    m.insert("converged_ms".into(), json!(converged_ms));
    finish(m, "completed", &meter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_members_learn_their_distance() {
        let params = VivaldiParams::default();
        let (mut a, mut b) = (Vivaldi::new(params), Vivaldi::new(params));
        let mut r = 0.0;
        let mut direction = move || {
            r += 0.37;
            r % 1.0
        };
        for _ in 0..200 {
            let pb = b.point.clone();
            a.observe(1, &pb, 0.080, &mut direction);
            let pa = a.point.clone();
            b.observe(0, &pa, 0.080, &mut direction);
        }
        let estimate = a.point.estimate(&b.point);
        assert!((estimate - 0.080).abs() < 0.008, "{estimate}");
        assert!(a.point.error < 0.3, "confident now: {}", a.point.error);
    }

    #[test]
    fn absurd_round_trips_are_ignored() {
        let mut a = Vivaldi::new(VivaldiParams::default());
        let before = a.point.clone();
        let theirs = Point::origin(&VivaldiParams::default());
        let mut direction = || 0.5;
        for rtt in [f64::NAN, f64::INFINITY, -1.0, 0.0, 11.0] {
            a.observe(1, &theirs, rtt, &mut direction);
        }
        assert_eq!(a.point, before);
    }
}
