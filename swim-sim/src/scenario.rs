//! The benchmark scenarios S1–S5, exactly as `docs/scenarios.md`
//! defines them, each producing JSON lines.

use lapswim_core::internals::Random;
use lapswim_core::{Config, Event, Machine, Swim};
use serde_json::{Map, Value, json};

use crate::chart::{Chart, cdf};
use crate::net::{Command, Flow, NetConfig, Sim, SimError, SimRng, mix, name_index};
use crate::process::{Meter, peak_rss_mib};
use crate::views::Views;

/// A scenario's JSON line and, for those that draw one, its chart.
#[derive(Clone, Debug)]
pub struct Report {
    /// The line.
    pub line: Value,
    /// What `--plot` draws.
    pub chart: Option<Chart>,
}

/// Width of S3's time bins for its chart, ms.
pub const S3_BIN_MS: u64 = 10_000;

/// Parameters shared by every scenario.
#[derive(Clone, Debug)]
pub struct Params {
    /// Cluster size.
    pub n: usize,
    /// Base seed.
    pub seed: u64,
    /// One-way latency in ms.
    pub latency_ms: u64,
    /// Extra one-way latency per datagram, uniform in `0..=jitter_ms`.
    pub jitter_ms: u64,
    /// Protocol configuration.
    pub config: Config,
    /// Nodes spread over regions (latency by region, metadata naming the
    /// region, optionally the topology-aware selector); `None`: one flat
    /// network.
    pub regions: Option<Regions>,
    /// How one-way latencies are chosen ([`crate::geo`]): `latency_ms`
    /// everywhere, or members on the globe.
    pub latency_model: crate::geo::LatencyModel,
}

impl Params {
    /// The network every implementation's cluster runs on: one place, so
    /// that the compared implementations meet the same latencies, jitter
    /// and loss.
    pub fn net(&self, seed: u64, loss: f64) -> NetConfig {
        NetConfig {
            seed,
            latency_ms: self.latency_ms,
            loss,
            jitter_ms: self.jitter_ms,
            latency_model: self.latency_model,
            ..NetConfig::default()
        }
    }
}

/// A cluster spread over regions: node `i` is in region `i % count`,
/// announces `region=<r>` as its metadata, and reaches nodes of its own
/// region in `near_ms` and others in `far_ms` (one way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Regions {
    /// How many regions.
    pub count: usize,
    /// One-way latency within a region, ms.
    pub near_ms: u64,
    /// One-way latency between regions, ms.
    pub far_ms: u64,
    /// How nodes choose whom to probe.
    pub selector: Selector,
    /// Virtual ms run after the warm-up before anything is measured, so
    /// that a selector that learns the network (by round trip) has learnt
    /// it: the same for every selector.
    pub learn_ms: u64,
}

/// How the nodes of a [`Regions`] cluster choose whom to probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selector {
    /// SWIM's uniform randomized round-robin.
    Default,
    /// [`lapswim_core::Topology::new`] over the region in the metadata
    /// (near: the same region; far helpers).
    Topology,
    /// [`lapswim_core::Topology::by_round_trip`]: near from the network
    /// coordinates, helpers near the target.
    Coords,
}

impl Selector {
    /// Its key in the scenario's line.
    pub fn key(self) -> &'static str {
        match self {
            Selector::Default => "default",
            Selector::Topology => "topology",
            Selector::Coords => "coords",
        }
    }
}

impl Regions {
    /// The region of node `i`.
    pub fn of(&self, i: usize) -> usize {
        i % self.count.max(1)
    }
}

/// Cap on the warm-up's wait for convergence, virtual ms.
pub const WARMUP_CAP_MS: u64 = 600_000;
/// Time run after convergence before a measurement window starts.
pub const SETTLE_MS: u64 = 30_000;
/// Cap on S2's wait for every live node to see the crash.
pub const DETECT_CAP_MS: u64 = 120_000;
/// S3's measurement window.
pub const S3_WINDOW_MS: u64 = 300_000;
/// S5's simulated span.
pub const S5_SPAN_MS: u64 = 100_000;

/// A membership implementation the scenarios can run: swim, or another
/// wrapped as a [`Machine`] (foca, in `swim-lab`, for the comparison).
pub trait ScenarioNode: Machine + Sized + 'static {
    /// The `impl` field of its lines.
    const IMPL: &'static str;
    /// Whether its events report suspicions and tell a failure it declared
    /// from one it heard of; the fields that need these are `null` if not.
    const REPORTS_SUSPICIONS: bool;
    /// The cluster a scenario runs on: `p.n` nodes, each alone until told
    /// to join.
    fn cluster(p: &Params, seed: u64, loss: f64) -> Result<Sim<Self>, SimError>;
    /// The configuration the nodes run, as a line's `config` field.
    fn describe(p: &Params) -> Value;
    /// Suspicions of itself it refuted so far, if it counts them.
    fn refutations(&self) -> Option<u64>;
    /// Last-chance checks of its suspicions so far, if it makes them.
    fn last_chance_checks(&self) -> Option<u64>;
    /// The interval of its periodic gossip, ms: a gossip round.
    fn gossip_interval_ms(p: &Params) -> u64;
}

impl ScenarioNode for Swim<SimRng> {
    const IMPL: &'static str = "swim";
    const REPORTS_SUSPICIONS: bool = true;
    fn cluster(p: &Params, seed: u64, loss: f64) -> Result<Sim<Self>, SimError> {
        sim(p, seed, loss)
    }
    fn describe(p: &Params) -> Value {
        effective_config(&p.config, p.n)
    }
    fn refutations(&self) -> Option<u64> {
        Some(self.stats().refutations)
    }
    fn last_chance_checks(&self) -> Option<u64> {
        Some(self.stats().last_chance_checks)
    }
    fn gossip_interval_ms(p: &Params) -> u64 {
        p.config.gossip_interval.as_millis()
    }
}

/// swim's cluster a scenario runs on: `p.n` nodes, every one alone until
/// told to join, on a flat network or spread over `p.regions`.
pub fn sim(p: &Params, seed: u64, loss: f64) -> Result<Sim, SimError> {
    let net = p.net(seed, loss);
    let Some(r) = p.regions else { return Sim::new(p.n, p.config.clone(), net) };
    let config = p.config.clone();
    let factory = move |spec: crate::net::NodeSpec| {
        let mut id = lapswim_core::Identity::new(spec.name, spec.addr);
        id.meta = format!("region={}", r.of(spec.index)).into_bytes();
        let ours = id.meta.clone();
        let mut swim = lapswim_core::Swim::new(config.clone(), id, spec.rng)?;
        match r.selector {
            Selector::Default => {}
            Selector::Topology => {
                let far = move |m: &lapswim_core::MemberView<'_>| u32::from(m.meta != ours.as_slice());
                swim.set_probe_selector(Box::new(lapswim_core::Topology::new(far, 0)));
            }
            Selector::Coords => swim.set_probe_selector(Box::new(lapswim_core::Topology::by_round_trip())),
        }
        Ok(swim)
    };
    let mut sim = Sim::with_nodes(p.n, NetConfig { latency_ms: r.near_ms, ..net }, Box::new(factory))?;
    for from in 0..p.n {
        for to in (0..p.n).filter(|&to| r.of(to) != r.of(from)) {
            sim.schedule(0, Command::SetLink { from, to, latency_ms: Some(r.far_ms), loss: None })?;
        }
    }
    Ok(sim)
}

/// The fields every scenario line of swim starts with.
pub fn header(scenario: &str, p: &Params, seed: u64, loss: f64) -> Map<String, Value> {
    header_of::<Swim<SimRng>>(scenario, p, seed, loss)
}

/// The fields every scenario line of implementation `N` starts with.
pub fn header_of<N: ScenarioNode>(scenario: &str, p: &Params, seed: u64, loss: f64) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("scenario".into(), json!(scenario));
    m.insert("impl".into(), json!(N::IMPL));
    m.insert("n".into(), json!(p.n));
    m.insert("seed".into(), json!(seed));
    m.insert("latency_ms".into(), json!(p.latency_ms));
    m.insert("latency_model".into(), json!(p.latency_model.name()));
    m.insert("loss".into(), json!(loss));
    m.insert("config".into(), N::describe(p));
    m
}

/// The configuration plus the figures it implies at this `n`.
pub fn effective_config(c: &Config, n: usize) -> Value {
    let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        let min = lapswim_core::internals::suspicion_min(c.suspicion_mult.get(), n, c.probe_interval);
        m.insert("suspicion_min_ms".into(), json!(min.as_millis()));
        m.insert("suspicion_max_ms".into(), json!(min.as_millis() * u64::from(c.suspicion_max_timeout_mult.get())));
        m.insert(
            "retransmit_limit".into(),
            json!(lapswim_core::internals::retransmit_limit(c.retransmit_mult.get(), n)),
        );
    }
    v
}

/// Closes a scenario line with its outcome and cost.
pub fn finish(mut m: Map<String, Value>, outcome: &str, meter: &Meter) -> Value {
    m.insert("outcome".into(), json!(outcome));
    m.insert("wall_s".into(), json!(round3(meter.wall_s())));
    m.insert("cpu_s".into(), json!(round3(meter.cpu_s())));
    m.insert("peak_rss_mib".into(), json!(round3(peak_rss_mib())));
    Value::Object(m)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `{"median", "min", "max", "per_run"}` over per-run figures; a run that
/// never reached the event is `null`, and makes the median null when it is
/// one of the middle values.
pub fn summary(runs: &[Option<u64>]) -> Value {
    let mut sorted: Vec<Option<u64>> = runs.to_vec();
    // None sorts as "never": after every value.
    sorted.sort_by_key(|v| v.unwrap_or(u64::MAX));
    let len = sorted.len();
    let median = if len == 0 {
        None
    } else if len % 2 == 1 {
        sorted[len / 2].map(|v| v as f64)
    } else {
        match (sorted[len / 2 - 1], sorted[len / 2]) {
            (Some(a), Some(b)) => Some((a + b) as f64 / 2.0),
            _ => None,
        }
    };
    let present: Vec<u64> = runs.iter().flatten().copied().collect();
    json!({
        "median": median,
        "min": present.iter().min(),
        "max": present.iter().max(),
        "per_run": runs,
    })
}

/// Runs to `until`, keeping `views` up to date.
pub fn observe<N: Machine + 'static>(sim: &mut Sim<N>, views: &mut Views, until: u64) {
    sim.run_until(until, &mut |_, node, e: &Event| {
        views.apply(node, e);
        Flow::Continue
    });
}

/// Runs until every node sees every other alive, or until `cap`; returns
/// whether it got there.
pub fn converge<N: Machine + 'static>(sim: &mut Sim<N>, views: &mut Views, cap: u64) -> bool {
    let all = views.all_pairs();
    if views.alive_pairs() != all {
        sim.run_until(cap, &mut |_, node, e: &Event| {
            views.apply(node, e);
            if views.alive_pairs() == all { Flow::Stop } else { Flow::Continue }
        });
    }
    views.alive_pairs() == all
}

/// Brings up a cluster as S2 and S3 expect: node i ≥ 1 joins node 0 at a
/// uniform time in [0, 1000 ms); runs until every node sees all n alive
/// (cap 600 s), then 30 s more. Returns the window start, or `None` when
/// the cluster never converged.
pub fn warm_up<N: Machine + 'static>(sim: &mut Sim<N>, views: &mut Views) -> Result<Option<u64>, SimError> {
    let n = sim.len();
    for i in 1..n {
        let t = Random::below(sim.rng(), 1000) as u64;
        sim.schedule(t, Command::Join { node: i, seeds: vec![0] })?;
    }
    let converged = converge(sim, views, WARMUP_CAP_MS);
    let start = sim.now() + SETTLE_MS;
    observe(sim, views, start);
    Ok(converged.then_some(start))
}

/// [`warm_up`], then the regions' learning time if any: when measuring
/// starts.
pub fn warm_up_for<N: Machine + 'static>(
    p: &Params,
    sim: &mut Sim<N>,
    views: &mut Views,
) -> Result<Option<u64>, SimError> {
    let Some(start) = warm_up(sim, views)? else { return Ok(None) };
    let learn = p.regions.map_or(0, |r| r.learn_ms);
    if learn == 0 {
        return Ok(Some(start));
    }
    observe(sim, views, start + learn);
    Ok(Some(start + learn))
}

/// S1 bootstrap: every node i ≥ 1 joins node 0 at t = 0. The chart is the
/// convergence curve: the fraction of ordered pairs that see each other
/// alive, over time.
pub fn s1(p: &Params) -> Result<Report, SimError> {
    s1_of::<Swim<SimRng>>(p, false)
}

/// [`s1`] on implementation `N`; with `heap` (and a heap meter, see
/// [`crate::heap`]) also the heap bytes per member entry at convergence
/// and [`SETTLE_MS`] later, once the news has spread.
pub fn s1_of<N: ScenarioNode>(p: &Params, heap: bool) -> Result<Report, SimError> {
    let meter = Meter::start();
    let mut sim = N::cluster(p, p.seed, 0.0)?;
    let heap0 = crate::heap::held().filter(|_| heap);
    let mut views = Views::new(p.n);
    for i in 1..p.n {
        sim.schedule(0, Command::Join { node: i, seeds: vec![0] })?;
    }
    let all = views.all_pairs();
    let marks = [0.5, 0.9, 0.99, 1.0];
    let mut reached: [Option<u64>; 4] = [None; 4];
    fn check(reached: &mut [Option<u64>; 4], marks: &[f64; 4], t: u64, views: &Views) {
        let all = views.all_pairs() as f64;
        for (k, f) in marks.iter().enumerate() {
            if reached[k].is_none() && views.alive_pairs() as f64 >= f * all {
                reached[k] = Some(t);
            }
        }
    }
    check(&mut reached, &marks, 0, &views);
    let fraction = |views: &Views| views.alive_pairs() as f64 / all.max(1) as f64;
    let mut curve = vec![(0.0, fraction(&views))];
    if reached[3].is_none() {
        sim.run_until(WARMUP_CAP_MS, &mut |t, node, e: &Event| {
            views.apply(node, e);
            check(&mut reached, &marks, t, &views);
            // A point per 0.2 % of the pairs keeps big runs' charts small.
            let f = fraction(&views);
            if curve.last().is_some_and(|&(_, last)| f - last >= 0.002 || (f == 1.0 && last < 1.0)) {
                curve.push((t as f64 / 1000.0, f));
            }
            if views.alive_pairs() == all { Flow::Stop } else { Flow::Continue }
        });
    }
    let st = sim.stats();
    let mut m = header_of::<N>("S1", p, p.seed, 0.0);
    m.insert("convergence_ms".into(), json!(reached[3]));
    m.insert("t50_pairs_ms".into(), json!(reached[0]));
    m.insert("t90_pairs_ms".into(), json!(reached[1]));
    m.insert("t99_pairs_ms".into(), json!(reached[2]));
    m.insert("msgs_sent".into(), json!(st.msgs_sent));
    m.insert("bytes_sent".into(), json!(st.bytes_sent));
    m.insert("msgs_per_node".into(), json!(round3(st.msgs_sent as f64 / p.n as f64)));
    m.insert("bytes_per_node".into(), json!(round3(st.bytes_sent as f64 / p.n as f64)));
    m.insert("digest".into(), json!(sim.digest().to_string()));
    if let (Some(before), Some(t)) = (heap0, reached[3]) {
        // The heap that n(n-1) member entries took, with everything else
        // the nodes and the network hold for them (queues, datagrams in
        // flight): an upper bound per entry, measured as for memberlist
        // in compare/memberlist.
        let entries = (p.n * p.n.saturating_sub(1)).max(1) as f64;
        let per_entry = || crate::heap::held().map(|h| round3(h.saturating_sub(before) as f64 / entries));
        m.insert("heap_bytes_per_member_entry".into(), json!(per_entry()));
        sim.run_until(t + SETTLE_MS, &mut |_, _, _: &Event| Flow::Continue);
        m.insert("settled_heap_bytes_per_member_entry".into(), json!(per_entry()));
    }
    let chart = Chart::new(format!("S1 bootstrap, n = {}", p.n), "virtual seconds", "fraction of pairs alive")
        .line("pairs that see each other alive", curve);
    Ok(Report {
        line: finish(m, if reached[3].is_some() { "converged" } else { "timeout" }, &meter),
        chart: Some(chart),
    })
}

/// One S2 run's figures, in ms from the crash.
#[derive(Clone, Debug, Default)]
pub struct CrashRun {
    /// First suspicion of the crashed node raised by a live node's own probe.
    pub first_suspect_ms: Option<u64>,
    /// First failure declaration (or observation) at a live node.
    pub first_down_ms: Option<u64>,
    /// When every live node had the crashed node failed.
    pub all_live_down_ms: Option<u64>,
    /// Failures of other, live nodes meanwhile.
    pub false_failures: u64,
    /// Last-chance checks made by all nodes from the crash until every
    /// live node had it failed (each one or two datagrams).
    pub last_chance_checks: u64,
    /// Datagrams all nodes sent from the crash until every live node had
    /// it failed (or the cap).
    pub msgs: u64,
    /// Of those, the datagrams addressed to the crashed node.
    pub msgs_to_crashed: u64,
    /// Whether the warm-up converged.
    pub warmed_up: bool,
    /// Digest of every action of the run ([`Sim::digest`]).
    pub digest: u64,
}

/// How S2's node goes down.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CrashKind {
    /// Its process dies and its host stays up: connections to it are
    /// refused at once ([`Command::Crash`]).
    #[default]
    Process,
    /// Its host is lost: nothing answers for it ([`Command::CrashHost`]).
    Host,
}

impl CrashKind {
    /// The command that crashes node `x` this way.
    pub fn command(self, x: usize) -> Command {
        match self {
            CrashKind::Process => Command::Crash(x),
            CrashKind::Host => Command::CrashHost(x),
        }
    }

    /// Its name in result lines.
    pub fn name(self) -> &'static str {
        match self {
            CrashKind::Process => "process",
            CrashKind::Host => "host",
        }
    }
}

/// One S2 run with the given seed (a process crash).
pub fn s2_run(p: &Params, seed: u64) -> Result<CrashRun, SimError> {
    s2_run_of::<Swim<SimRng>>(p, seed, CrashKind::Process)
}

/// [`s2_run`] on implementation `N`, with a crash of the given kind.
pub fn s2_run_of<N: ScenarioNode>(p: &Params, seed: u64, crash: CrashKind) -> Result<CrashRun, SimError> {
    let mut sim = N::cluster(p, seed, 0.0)?;
    let mut views = Views::new(p.n);
    let Some(window) = warm_up_for(p, &mut sim, &mut views)? else { return Ok(CrashRun::default()) };
    let x = Random::below(sim.rng(), p.n);
    let crash_at = window + Random::below(sim.rng(), 1000) as u64;
    sim.schedule(crash_at, crash.command(x))?;
    let checks_before = last_chance_checks(&sim);
    let msgs_before = sim.stats().msgs_sent;
    let to_x_before = sim.stats().sent_to_node[x];
    observe(&mut sim, &mut views, crash_at.saturating_sub(1));
    let mut run = CrashRun { warmed_up: true, ..CrashRun::default() };
    let live = (p.n - 1) as u32;
    sim.run_until(crash_at + DETECT_CAP_MS, &mut |t, node, e: &Event| {
        views.apply(node, e);
        if node == x || t < crash_at {
            return Flow::Continue;
        }
        let since = t - crash_at;
        match e {
            Event::Suspected { name, local: true, .. } if name_index(name.as_str()) == Some(x) => {
                run.first_suspect_ms.get_or_insert(since);
            }
            Event::Failed { name, .. } if name_index(name.as_str()) == Some(x) => {
                run.first_down_ms.get_or_insert(since);
            }
            Event::Failed { .. } => run.false_failures += 1,
            _ => {}
        }
        if views.down_count(x) >= live {
            run.all_live_down_ms = Some(since);
            return Flow::Stop;
        }
        Flow::Continue
    });
    run.last_chance_checks = last_chance_checks(&sim) - checks_before;
    run.msgs = sim.stats().msgs_sent - msgs_before;
    run.msgs_to_crashed = sim.stats().sent_to_node[x] - to_x_before;
    run.digest = sim.digest().value();
    Ok(run)
}

/// Last-chance checks made so far, summed over the nodes (0 for an
/// implementation that makes none).
fn last_chance_checks<N: ScenarioNode>(sim: &Sim<N>) -> u64 {
    (0..sim.len()).filter_map(|i| sim.node(i).ok()).filter_map(N::last_chance_checks).sum()
}

/// S2 crash detection over `runs` runs with seeds derived from the base,
/// each a process crash. The chart is the detection-time CDF over the
/// runs: first suspicion, and every live node having the crashed one
/// failed.
pub fn s2(p: &Params, runs: usize) -> Result<Report, SimError> {
    s2_of::<Swim<SimRng>>(p, runs, CrashKind::Process)
}

/// [`s2`] on implementation `N`, with crashes of the given kind.
pub fn s2_of<N: ScenarioNode>(p: &Params, runs: usize, crash: CrashKind) -> Result<Report, SimError> {
    let meter = Meter::start();
    let results: Vec<CrashRun> =
        (0..runs).map(|r| s2_run_of::<N>(p, mix(p.seed, 1000 + r as u64), crash)).collect::<Result<_, _>>()?;
    let pick = |f: fn(&CrashRun) -> Option<u64>| summary(&results.iter().map(f).collect::<Vec<_>>());
    let mut m = header_of::<N>("S2", p, p.seed, 0.0);
    m.insert("runs".into(), json!(runs));
    m.insert("crash".into(), json!(crash.name()));
    m.insert("first_suspect_ms".into(), pick(|r| r.first_suspect_ms));
    m.insert("first_down_ms".into(), pick(|r| r.first_down_ms));
    m.insert("all_live_down_ms".into(), pick(|r| r.all_live_down_ms));
    m.insert("false_failures".into(), json!(results.iter().map(|r| r.false_failures).sum::<u64>()));
    let checks = if N::REPORTS_SUSPICIONS { pick(|r| Some(r.last_chance_checks)) } else { Value::Null };
    m.insert("last_chance_checks_per_crash".into(), checks);
    m.insert("msgs_per_crash".into(), pick(|r| Some(r.msgs)));
    m.insert("msgs_to_crashed_per_crash".into(), pick(|r| Some(r.msgs_to_crashed)));
    let ok = results.iter().all(|r| r.warmed_up && r.all_live_down_ms.is_some());
    let mut digest = lapswim_core::Digest::new();
    for r in &results {
        digest.write_u64(r.digest);
    }
    m.insert("digest".into(), json!(digest.to_string()));
    let secs = |f: fn(&CrashRun) -> Option<u64>| {
        let v: Vec<u64> = results.iter().filter_map(f).collect();
        cdf(&v, runs).into_iter().map(|(x, y)| (x / 1000.0, y)).collect()
    };
    let chart = Chart::new(
        format!("S2 crash detection, n = {}, {runs} runs", p.n),
        "seconds from the crash",
        "fraction of runs",
    )
    .line("first suspicion", secs(|r| r.first_suspect_ms))
    .line("failed at every live node", secs(|r| r.all_live_down_ms));
    Ok(Report { line: finish(m, if ok { "detected" } else { "timeout" }, &meter), chart: Some(chart) })
}

/// Figures of one S3 window.
#[derive(Clone, Debug, Default)]
pub struct LossWindow {
    /// Failures declared by the declarer's own suspicion timeout.
    pub false_positive_declarations: u64,
    /// Every failure event about a live node, gossip included.
    pub false_down_observations: u64,
    /// Suspicions raised by own failed probes.
    pub suspicions_raised: u64,
    /// Every live node sees every live node alive or suspect at the end.
    pub whole_at_end: bool,
    /// Pairs in the suspect state at the end.
    pub suspect_pairs_at_end: u64,
    /// Datagrams and bytes sent in the window.
    pub msgs: u64,
    /// Bytes sent in the window.
    pub bytes: u64,
    /// Stream bytes (full-state syncs, stream pings) sent in the window.
    pub stream_bytes: u64,
    /// Whether the warm-up converged.
    pub warmed_up: bool,
    /// Suspicions raised and refutations made, per [`S3_BIN_MS`] bin.
    pub bins: Vec<(u64, u64)>,
    /// Digest of every action of the run ([`Sim::digest`]).
    pub digest: String,
}

/// One S3 window at loss `loss`.
pub fn s3_run(p: &Params, loss: f64, window_ms: u64) -> Result<LossWindow, SimError> {
    s3_run_of::<Swim<SimRng>>(p, loss, window_ms)
}

/// [`s3_run`] on implementation `N`.
pub fn s3_run_of<N: ScenarioNode>(p: &Params, loss: f64, window_ms: u64) -> Result<LossWindow, SimError> {
    let mut sim = N::cluster(p, p.seed, 0.0)?;
    let mut views = Views::new(p.n);
    let Some(start) = warm_up_for(p, &mut sim, &mut views)? else { return Ok(LossWindow::default()) };
    sim.schedule(start, Command::SetLoss(loss))?;
    let (msgs0, bytes0, frames0) = (sim.stats().msgs_sent, sim.stats().bytes_sent, sim.stats().frame_bytes);
    let mut w = LossWindow { warmed_up: true, ..LossWindow::default() };
    w.bins = run_in_bins(&mut sim, start + window_ms, S3_BIN_MS, &mut |_, node, e: &Event| {
        views.apply(node, e);
        if let Event::Failed { local, .. } = e {
            w.false_down_observations += 1;
            w.false_positive_declarations += u64::from(*local);
        }
    });
    w.suspicions_raised = w.bins.iter().map(|b| b.0).sum();
    w.whole_at_end = views.up_pairs() == views.all_pairs();
    w.suspect_pairs_at_end = views.up_pairs() - views.alive_pairs();
    w.msgs = sim.stats().msgs_sent - msgs0;
    w.bytes = sim.stats().bytes_sent - bytes0;
    w.stream_bytes = sim.stats().frame_bytes - frames0;
    w.digest = sim.digest().to_string();
    Ok(w)
}

/// Runs from now to `end` in bins of `bin_ms` (the same run as in one
/// go: items at a bin's end belong to it), handing every event to `obs`;
/// returns per bin the suspicions raised by the nodes' own probes and the
/// refutations made.
pub fn run_in_bins<N: ScenarioNode>(
    sim: &mut Sim<N>,
    end: u64,
    bin_ms: u64,
    obs: &mut dyn FnMut(u64, usize, &Event),
) -> Vec<(u64, u64)> {
    let mut bins = Vec::new();
    let mut bin_start = sim.now();
    while bin_start < end {
        let bin_end = (bin_start + bin_ms).min(end);
        let refuted = refutations(sim);
        let mut suspected = 0u64;
        sim.run_until(bin_end, &mut |t, node, e: &Event| {
            if matches!(e, Event::Suspected { local: true, .. }) {
                suspected += 1;
            }
            obs(t, node, e);
            Flow::Continue
        });
        bins.push((suspected, refutations(sim) - refuted));
        bin_start = bin_end;
    }
    bins
}

/// Refutations so far, summed over the nodes (0 for an implementation
/// that does not count them).
pub fn refutations<N: ScenarioNode>(sim: &Sim<N>) -> u64 {
    (0..sim.len()).filter_map(|i| sim.node(i).ok()).filter_map(N::refutations).sum()
}

/// S3 false positives at one loss rate. The chart has the suspicions
/// raised and the refutations made per 10 s of the window.
pub fn s3(p: &Params, loss: f64) -> Result<Report, SimError> {
    s3_of::<Swim<SimRng>>(p, loss)
}

/// [`s3`] on implementation `N`.
pub fn s3_of<N: ScenarioNode>(p: &Params, loss: f64) -> Result<Report, SimError> {
    let meter = Meter::start();
    let w = s3_run_of::<N>(p, loss, S3_WINDOW_MS)?;
    let per_node_min = |x: u64| round3(x as f64 / p.n as f64 / (S3_WINDOW_MS as f64 / 60_000.0));
    // Only an implementation that reports suspicions tells its own
    // declarations from relayed ones.
    let reported = |v: Value| if N::REPORTS_SUSPICIONS { v } else { Value::Null };
    let mut m = header_of::<N>("S3", p, p.seed, loss);
    m.insert("window_ms".into(), json!(S3_WINDOW_MS));
    m.insert("false_positive_declarations".into(), reported(json!(w.false_positive_declarations)));
    m.insert("false_down_observations".into(), json!(w.false_down_observations));
    m.insert(
        "false_positive_declarations_per_node_per_min".into(),
        reported(json!(per_node_min(w.false_positive_declarations))),
    );
    m.insert("false_down_observations_per_node_per_min".into(), json!(per_node_min(w.false_down_observations)));
    m.insert("suspicions_raised".into(), reported(json!(w.suspicions_raised)));
    m.insert("whole_at_end".into(), json!(w.whole_at_end));
    m.insert("suspect_pairs_at_end".into(), json!(w.suspect_pairs_at_end));
    m.insert("digest".into(), json!(w.digest));
    let at = |k: usize| (k + 1) as f64 * S3_BIN_MS as f64 / 1000.0;
    let pct = (loss * 100.0).round();
    let chart = Chart::new(format!("S3 under loss, n = {}", p.n), "seconds into the window", "per 10 s, whole cluster")
        .line(
            format!("suspicions raised ({pct} % loss)"),
            w.bins.iter().enumerate().map(|(k, b)| (at(k), b.0 as f64)).collect(),
        )
        .line(
            format!("refutations ({pct} % loss)"),
            w.bins.iter().enumerate().map(|(k, b)| (at(k), b.1 as f64)).collect(),
        );
    Ok(Report { line: finish(m, if w.warmed_up { "completed" } else { "timeout" }, &meter), chart: Some(chart) })
}

/// S4 steady-state load: the S3 window at p = 0.
pub fn s4(p: &Params) -> Result<Value, SimError> {
    s4_of::<Swim<SimRng>>(p)
}

/// [`s4`] on implementation `N`.
pub fn s4_of<N: ScenarioNode>(p: &Params) -> Result<Value, SimError> {
    let meter = Meter::start();
    let w = s3_run_of::<N>(p, 0.0, S3_WINDOW_MS)?;
    let secs = S3_WINDOW_MS as f64 / 1000.0;
    let mut m = header_of::<N>("S4", p, p.seed, 0.0);
    m.insert("window_ms".into(), json!(S3_WINDOW_MS));
    m.insert("msgs_per_node_per_s".into(), json!(round3(w.msgs as f64 / p.n as f64 / secs)));
    m.insert("bytes_per_node_per_s".into(), json!(round3(w.bytes as f64 / p.n as f64 / secs)));
    m.insert("mean_msg_bytes".into(), json!(round3(if w.msgs == 0 { 0.0 } else { w.bytes as f64 / w.msgs as f64 })));
    let stream = json!(round3(w.stream_bytes as f64 / p.n as f64 / secs));
    m.insert("stream_bytes_per_node_per_s".into(), stream.clone());
    // The same count: at p = 0 streams carry syncs, and a fallback ping
    // only if a probe missed its ack (it would count here too).
    m.insert("sync_bytes_per_node_per_s".into(), stream);
    m.insert("digest".into(), json!(w.digest));
    Ok(finish(m, if w.warmed_up { "completed" } else { "timeout" }, &meter))
}

/// S5 cost: S1's start, exactly 100 virtual seconds.
pub fn s5(p: &Params) -> Result<Value, SimError> {
    let meter = Meter::start();
    let mut sim = sim(p, p.seed, 0.0)?;
    for i in 1..p.n {
        sim.schedule(0, Command::Join { node: i, seeds: vec![0] })?;
    }
    sim.run_until(S5_SPAN_MS, &mut |_, _, _: &Event| Flow::Continue);
    let (wall, cpu) = (meter.wall_s(), meter.cpu_s());
    let delivered = sim.stats().packets_delivered;
    let mut m = header("S5", p, p.seed, 0.0);
    m.insert("virtual_ms".into(), json!(S5_SPAN_MS));
    m.insert("packets_delivered".into(), json!(delivered));
    m.insert("pkts_per_cpu_s".into(), json!(round3(if cpu > 0.0 { delivered as f64 / cpu } else { 0.0 })));
    m.insert(
        "virtual_per_wall".into(),
        json!(round3(if wall > 0.0 { S5_SPAN_MS as f64 / 1000.0 / wall } else { 0.0 })),
    );
    Ok(finish(m, "completed", &meter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_follows_the_definition() {
        let v = summary(&[Some(3), Some(1), Some(2), Some(10)]);
        assert_eq!(v["median"], json!(2.5));
        assert_eq!(v["min"], json!(1));
        assert_eq!(v["max"], json!(10));
        let v = summary(&[Some(3), None, Some(1)]);
        assert_eq!(v["median"], json!(3.0));
        assert_eq!(v["per_run"], json!([3, null, 1]));
        let v = summary(&[Some(3), None]);
        assert_eq!(v["median"], Value::Null);
    }
}
