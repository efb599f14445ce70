//! The scenario runner's command line, `swim sim`'s: its
//! flags, and the scenarios' reports as one JSON object per line.

use clap::{Args, Subcommand, ValueEnum};
use lapswim_core::Config;
use lapswim_sim::resilience;
use lapswim_sim::scenario::{self, CrashKind, Params, Report, ScenarioNode};

/// Runs the benchmark scenarios of `docs/scenarios.md` on the simulator.
#[derive(Args, Debug, Clone)]
pub struct SimArgs {
    /// Which scenario.
    #[command(subcommand)]
    pub scenario: Scenario,
    /// Cluster size.
    #[arg(long, global = true, default_value_t = 100)]
    pub nodes: usize,
    /// Base seed; the same arguments give the same output (wall-clock and
    /// memory figures aside).
    #[arg(long, global = true, default_value_t = 1)]
    pub seed: u64,
    /// One-way packet latency in virtual ms.
    #[arg(long, global = true, default_value_t = 1)]
    pub latency_ms: u64,
    /// Record every node's trace under DIR (`run0/n0.trace`, ... one
    /// directory per simulated run), for `swim replay`.
    #[arg(long, global = true, value_name = "DIR")]
    pub record: Option<std::path::PathBuf>,
    /// Protocol preset: lan (memberlist's DefaultLANConfig, the reference
    /// of docs/scenarios.md), fast, local or wan.
    #[arg(long, global = true, default_value = "lan", value_parser = ["lan", "fast", "local", "wan"])]
    pub preset: String,
    /// Override the preset's suspicion multiplier (1..=100).
    #[arg(long, global = true, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub suspicion_mult: Option<u32>,
    /// Override the preset's probe interval, ms (the probe timeout is kept
    /// at the same fraction of it).
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub probe_interval_ms: Option<u64>,
    /// Probe timeouts from measured round trips, never below this floor
    /// (ms) nor above the preset's probe timeout.
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub rtt_floor_ms: Option<u64>,
    /// Extra one-way latency per datagram, uniform in 0..=MS (reordering).
    #[arg(long, global = true, default_value_t = 0)]
    pub jitter_ms: u64,
    /// How one-way latencies are chosen: flat (--latency-ms between every
    /// two members) or geo (members in six regions on the globe: fibre
    /// distance, access delays, a few slow paths; at most 5000 nodes).
    #[arg(long, global = true, default_value = "flat", value_parser = ["flat", "geo"])]
    pub latency_model: String,
    /// Network coordinates (docs/protocol.md §6.13): on (the default) or
    /// off, to measure what they cost.
    #[arg(long, global = true, default_value = "on", value_parser = ["on", "off"])]
    pub coordinates: String,
    /// Anti-entropy by difference (docs/protocol.md §6.5): on (the
    /// default) or off, for whole tables at every periodic sync.
    #[arg(long, global = true, default_value = "on", value_parser = ["on", "off"])]
    pub delta_sync: String,
    /// The implementation to run: swim, or foca (with foca's LAN
    /// configuration; s1, s2, s3, s4 and spread) for the comparison.
    #[arg(long = "impl", global = true, default_value = "swim", value_parser = ["swim", "foca"])]
    pub implementation: String,
}

/// The scenarios.
#[derive(Subcommand, Debug, Clone)]
pub enum Scenario {
    /// S1 bootstrap: every node joins node 0 at t = 0; time to convergence.
    S1 {
        /// Also report the heap the member entries took, at convergence
        /// and 30 s later (needs the counting allocator the `swim` binary installs).
        #[arg(long)]
        heap: bool,
        /// Draw the convergence curve as SVG into FILE.
        #[arg(long, value_name = "FILE")]
        plot: Option<std::path::PathBuf>,
    },
    /// S2 crash detection: warm up, crash one node, time to detection.
    S2 {
        /// Independent runs (seeds derived from the base seed).
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// How the node goes down: its process (the host refuses
        /// connections at once) or its whole host (silence).
        #[arg(long, value_enum, default_value = "process")]
        crash: Crash,
        /// Draw the detection-time CDF as SVG into FILE.
        #[arg(long, value_name = "FILE")]
        plot: Option<std::path::PathBuf>,
    },
    /// S3 false positives: 300 s of packet loss on a converged cluster.
    S3 {
        /// Loss probability; without it, runs 0, 0.05, 0.10 and 0.20.
        #[arg(long)]
        loss: Option<f64>,
        /// Draw suspicions and refutations over time as SVG into FILE
        /// (every loss rate run on one chart).
        #[arg(long, value_name = "FILE")]
        plot: Option<std::path::PathBuf>,
    },
    /// S4 steady-state load: traffic of the S3 window without loss.
    S4,
    /// S5 cost: 100 virtual seconds from S1's start; CPU, memory, speed.
    S5,
    /// Heap bytes per member entry at one node learning `--nodes` members:
    /// at the bootstrap peak and once its update queue has drained.
    Memory,
    /// Regions: nodes spread over regions, the default probe choice
    /// against the hand-written topology-aware selector and the one the
    /// coordinates drive (cross-region share, S2, S3).
    Regions {
        /// How many regions (node i is in region i mod R).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=1000))]
        regions: u64,
        /// One-way latency within a region, ms.
        #[arg(long, default_value_t = 5)]
        near_ms: u64,
        /// One-way latency between regions, ms.
        #[arg(long, default_value_t = 80)]
        far_ms: u64,
        /// S2 runs per selector (a median of fewer moves by a tenth from
        /// one seed to the next).
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// S3's loss rate.
        #[arg(long, default_value_t = 0.1)]
        loss: f64,
        /// The selectors to run: all (default, topology and coords, each
        /// an object of the line), or one of them.
        #[arg(long, default_value = "all", value_parser = ["all", "default", "topology", "coords"])]
        selector: String,
    },
    /// Partition healing: halves cut apart for 120 s, then healed.
    Partition {
        /// Independent runs (seeds derived from the base seed).
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// One-way partition: the upper half cannot send to the lower half for
    /// `--seconds` while the lower half's packets reach it, then it heals.
    Oneway {
        /// How long the cut lasts, in virtual seconds.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// A flood of fresh names from an outsider, all pointing at one third
    /// party's address, while a real member crashes.
    Flood {
        /// Fresh names sent, 40 to a datagram, 25 datagrams a second.
        #[arg(long, default_value_t = 50_000)]
        fake: usize,
    },
    /// Rolling restarts of every node, half of them at a new address.
    Churn {
        /// Rolling restarts of the whole cluster.
        #[arg(long, default_value_t = 10)]
        rounds: usize,
    },
    /// Application broadcasts from random nodes under loss.
    Broadcast {
        /// Loss probability.
        #[arg(long, default_value_t = 0.05)]
        loss: f64,
        /// Broadcasts, one every 100 ms.
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// Also a metadata change every 100 ms, so membership updates
        /// compete with the broadcasts.
        #[arg(long)]
        churn: bool,
    },
    /// Gray failures: 5 % loss, 10 % of nodes pausing 0.5–5 s, one node
    /// at a time receive-deaf for 60 s.
    Gray {
        /// How long, in virtual hours.
        #[arg(long, default_value_t = 3.0)]
        hours: f64,
        /// Draw suspicions and refutations over time as SVG into FILE.
        #[arg(long, value_name = "FILE")]
        plot: Option<std::path::PathBuf>,
    },
    /// Dissemination: one update at a time from a random node; when 50 %,
    /// 99 %, 99.99 % and 100 % of the nodes have it.
    Spread {
        /// Updates injected, 15 s apart.
        #[arg(long, default_value_t = 100)]
        runs: usize,
    },
    /// Key rotation under loss: install a new key everywhere, make it the
    /// primary, remove the old one.
    Rotate {
        /// Loss probability.
        #[arg(long, default_value_t = 0.05)]
        loss: f64,
        /// Rotate from one member with three cluster-wide key queries,
        /// instead of node by node.
        #[arg(long)]
        via_queries: bool,
    },
    /// Network coordinates on the geo latency model: the round trip
    /// every member estimates to every other against the true one
    /// (serf's published algorithm, the reference).
    Coords {
        /// Virtual seconds of probing.
        #[arg(long, default_value_t = 300)]
        seconds: u64,
    },
    /// Steady state: every table built directly (no bootstrap), then
    /// `--seconds` of probing and syncing with one crash; speed, memory,
    /// detection, traffic.
    Steady {
        /// Virtual seconds to run from the converged start.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// A random member queries every member, each answers at once.
    Query {
        /// Loss probability.
        #[arg(long, default_value_t = 0.05)]
        loss: f64,
        /// Each answer also travels through this many random members.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=5))]
        relay_factor: u8,
        /// Independent runs (seeds derived from the base seed).
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// Named events from random members, the second half under churn
    /// (a crash every 2 s, back 5 s later).
    Events {
        /// Loss probability.
        #[arg(long, default_value_t = 0.05)]
        loss: f64,
        /// Events, one every 100 ms.
        #[arg(long, default_value_t = 1000)]
        count: usize,
    },
}

impl Scenario {
    /// Where to draw the scenario's chart, for those that draw one (s1,
    /// s2, s3 and gray: only they take `--plot`).
    pub fn plot(&self) -> Option<&std::path::Path> {
        match self {
            Scenario::S1 { plot, .. }
            | Scenario::S2 { plot, .. }
            | Scenario::S3 { plot, .. }
            | Scenario::Gray { plot, .. } => plot.as_deref(),
            _ => None,
        }
    }
}

/// How S2's node goes down: `--crash`'s values, each a [`CrashKind`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Crash {
    /// Its process dies and its host stays up: connections to it are
    /// refused at once.
    #[default]
    Process,
    /// Its host is lost: nothing answers for it.
    Host,
}

impl From<Crash> for CrashKind {
    fn from(c: Crash) -> Self {
        match c {
            Crash::Process => CrashKind::Process,
            Crash::Host => CrashKind::Host,
        }
    }
}

/// Another implementation the scenarios run on, for `--impl` (the
/// comparison build registers foca).
pub type Compare = dyn Fn(&SimArgs, &Params) -> Result<Vec<Report>, String>;

/// Runs the scenario and returns its JSON lines, or a one-line reason the
/// arguments were refused. The process figures (CPU time, peak memory)
/// are read from /proc ([`crate::lab::procstat::install`]). `--impl` other
/// than swim runs on `other`, if given.
pub fn run(args: &SimArgs, other: Option<&Compare>) -> Result<Vec<String>, String> {
    crate::lab::procstat::install();
    if args.nodes == 0 {
        return Err("--nodes must be at least 1".into());
    }
    let config = match args.preset.as_str() {
        "fast" => Config::fast(),
        "local" => Config::local(),
        "wan" => Config::wan(),
        _ => Config::lan(),
    };
    let mut config = config;
    if let Some(m) = args.suspicion_mult.and_then(core::num::NonZeroU32::new) {
        config.suspicion_mult = m;
    }
    if let Some(ms) = args.probe_interval_ms {
        let (interval, timeout) = (config.probe_interval.as_millis().max(1), config.probe_timeout.as_millis());
        config.probe_timeout = lapswim_core::Duration::from_millis((timeout * ms / interval).max(1));
        config.probe_interval = lapswim_core::Duration::from_millis(ms);
    }
    if let Some(ms) = args.rtt_floor_ms {
        config.rtt_probe_timeout = Some(lapswim_core::Duration::from_millis(ms));
    }
    config.coordinates = args.coordinates == "on";
    config.delta_sync = args.delta_sync == "on";
    config.validate().map_err(|e| format!("invalid configuration: {e}"))?;
    let p = Params {
        n: args.nodes,
        seed: args.seed,
        latency_ms: args.latency_ms,
        jitter_ms: args.jitter_ms,
        config,
        regions: None,
        latency_model: if args.latency_model == "geo" {
            lapswim_sim::geo::LatencyModel::Geo
        } else {
            lapswim_sim::geo::LatencyModel::Flat
        },
    };
    if p.latency_model == lapswim_sim::geo::LatencyModel::Geo && p.n > lapswim_sim::geo::MAX_NODES {
        return Err(format!("--latency-model geo models at most {} nodes", lapswim_sim::geo::MAX_NODES));
    }
    if args.implementation != "swim" {
        let Some(other) = other else {
            return Err(format!(
                "--impl {} is the comparison build's: cargo run --release -p swim-lab --bin swim-sim -- ...",
                args.implementation
            ));
        };
        return other(args, &p).map(|lines| lines.into_iter().map(|r| r.line.to_string()).collect());
    }
    if matches!(args.scenario, Scenario::Steady { .. }) && args.record.is_some() {
        // Its tables are built outside the inputs a trace holds.
        return Err("steady cannot be recorded: it builds the tables without inputs, so traces would not replay".into());
    }
    if let Some(dir) = &args.record {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        lapswim_sim::net::recording::record_to(Some(dir));
    }
    let reports: Reports = match &args.scenario {
        Scenario::S5 => vec![plain(scenario::s5(&p))],
        Scenario::Regions { regions, near_ms, far_ms, runs, loss, selector } => {
            let (regions, near_ms, far_ms, runs, loss) = (*regions, *near_ms, *far_ms, *runs, *loss);
            if !(0.0..=1.0).contains(&loss) {
                return Err("--loss must be within 0..=1".into());
            }
            use lapswim_sim::scenario::Selector;
            let selectors: &'static [Selector] = match selector.as_str() {
                "default" => &[Selector::Default],
                "topology" => &[Selector::Topology],
                "coords" => &[Selector::Coords],
                _ => lapswim_sim::regions::ALL,
            };
            let o = lapswim_sim::regions::Options {
                regions: regions as usize,
                near_ms,
                far_ms,
                runs: runs.max(1),
                loss,
                selectors,
            };
            vec![plain(lapswim_sim::regions::regions(&p, o))]
        }
        Scenario::Memory => match lapswim_sim::memory::memory(&p) {
            Some(line) => vec![Ok(Report { line, chart: None })],
            None => return Err("memory needs a counting allocator (run it with swim sim)".into()),
        },
        &Scenario::Partition { runs } => vec![plain(resilience::partition(&p, runs.max(1)))],
        &Scenario::Oneway { seconds } => vec![plain(lapswim_sim::oneway::oneway(&p, seconds))],
        &Scenario::Flood { fake } => vec![plain(lapswim_sim::flood::flood(&p, fake))],
        &Scenario::Churn { rounds } => vec![plain(resilience::churn(&p, rounds))],
        &Scenario::Broadcast { loss, count, churn } => {
            if !(0.0..=1.0).contains(&loss) {
                return Err("--loss must be within 0..=1".into());
            }
            vec![plain(resilience::broadcast(&p, loss, count.max(1), churn))]
        }
        &Scenario::Gray { hours, .. } => {
            if !(hours.is_finite() && hours >= 0.0) {
                return Err("--hours must be a number ≥ 0".into());
            }
            vec![lapswim_sim::gray::gray(&p, hours)]
        }
        &Scenario::Rotate { loss, via_queries } => {
            check_loss(loss)?;
            if via_queries {
                vec![plain(lapswim_sim::serf::rotate_via_queries(&p, loss))]
            } else {
                vec![plain(resilience::rotate(&p, loss))]
            }
        }
        &Scenario::Coords { seconds } => {
            if !(2..=lapswim_sim::geo::MAX_NODES).contains(&p.n) {
                return Err(format!("coords models 2 to {} nodes", lapswim_sim::geo::MAX_NODES));
            }
            match lapswim_sim::coords::coords(&p, seconds) {
                Ok(lines) => lines.into_iter().map(|line| Ok(Report { line, chart: None })).collect(),
                Err(e) => vec![Err(e)],
            }
        }
        &Scenario::Steady { seconds } => {
            if p.n < 2 {
                return Err("steady crashes one of the nodes: --nodes must be at least 2".into());
            }
            vec![plain(lapswim_sim::steady::steady(&p, seconds))]
        }
        &Scenario::Query { loss, relay_factor, runs } => {
            check_loss(loss)?;
            vec![plain(lapswim_sim::serf::query(&p, loss, relay_factor, runs.max(1)))]
        }
        &Scenario::Events { loss, count } => {
            check_loss(loss)?;
            vec![plain(lapswim_sim::serf::events(&p, loss, count.max(2)))]
        }
        Scenario::S1 { .. } | Scenario::S2 { .. } | Scenario::S3 { .. } | Scenario::S4 | Scenario::Spread { .. } => {
            compared::<lapswim_core::Swim<lapswim_sim::net::SimRng>>(&args.scenario, &p)?
                .ok_or("not a compared scenario")?
        }
    };
    let reports: Vec<Report> = reports.into_iter().collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    if let Some(path) = args.scenario.plot() {
        // Several lines (s3 at every loss rate) share one chart.
        let mut charts = reports.iter().filter_map(|r| r.chart.clone());
        if let Some(mut chart) = charts.next() {
            for more in charts {
                chart.series.extend(more.series);
            }
            crate::lab::plot::svg(&chart, path)?;
        }
    }
    Ok(reports.into_iter().map(|r| r.line.to_string()).collect())
}

/// A scenario's reports, each a line or why it could not run.
/// Each run's report, or why it could not run.
pub type Reports = Vec<Result<Report, lapswim_sim::net::SimError>>;

/// A line without a chart.
fn plain(v: Result<serde_json::Value, lapswim_sim::net::SimError>) -> Result<Report, lapswim_sim::net::SimError> {
    v.map(|line| Report { line, chart: None })
}

/// The scenarios every implementation runs, on implementation `N`;
/// `None` for the others.
pub fn compared<N: ScenarioNode>(scenario: &Scenario, p: &Params) -> Result<Option<Reports>, String> {
    Ok(Some(match *scenario {
        Scenario::S1 { heap, .. } => vec![scenario::s1_of::<N>(p, heap)],
        Scenario::S2 { runs, crash, .. } => vec![scenario::s2_of::<N>(p, runs.max(1), crash.into())],
        Scenario::S3 { loss, .. } => match loss {
            Some(l) if (0.0..=1.0).contains(&l) => vec![scenario::s3_of::<N>(p, l)],
            Some(_) => return Err("--loss must be within 0..=1".into()),
            None => [0.0, 0.05, 0.10, 0.20].iter().map(|&l| scenario::s3_of::<N>(p, l)).collect(),
        },
        Scenario::S4 => vec![plain(scenario::s4_of::<N>(p))],
        Scenario::Spread { runs } => vec![plain(lapswim_sim::spread::spread_of::<N>(p, runs.max(1)))],
        _ => return Ok(None),
    }))
}

fn check_loss(loss: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&loss) { Ok(()) } else { Err("--loss must be within 0..=1".into()) }
}
