//! The detection trade-off of docs/tuning.md: for probe intervals of 1 s
//! and 500 ms and suspicion multipliers 1 to 4, the S2 median time until a
//! crash is failed at every live node (n = 100, 10 runs) against the false
//! failures of the 3-hour gray scenario (n = 100), both at seed 1. Prints
//! one line per configuration and draws the curve as SVG.
//!
//! `cargo run --release -p swim-lab --example tradeoff -- docs/plots/tradeoff.svg`

use core::num::NonZeroU32;

use clap::Parser;
use lapswim_core::{Config, Duration};
use lapswim_sim::chart::Chart;
use lapswim_sim::scenario::{self, Params};

/// S2 detection time against gray-scenario false failures, for probe
/// intervals of 1 s and 500 ms and suspicion multipliers 1 to 4 (n = 100,
/// seed 1): one line per configuration, and the curve as SVG.
#[derive(Parser, Debug)]
#[command(name = "tradeoff")]
pub(crate) struct Args {
    /// Where to write the SVG chart.
    #[arg(value_name = "FILE", default_value = "tradeoff.svg")]
    pub(crate) out: std::path::PathBuf,
}

fn main() -> Result<(), String> {
    let out = Args::parse().out;
    let mut chart = Chart::new(
        "Detection against false failures (n = 100)",
        "S2: crash failed at every live node, median s",
        "gray, 3 h: false failures (log10 of 1 + count)",
    );
    for interval in [1000u64, 500] {
        let mut points = Vec::new();
        for mult in 1..=4u32 {
            let mut config = Config::lan();
            config.probe_timeout = Duration::from_millis(interval / 2);
            config.probe_interval = Duration::from_millis(interval);
            config.suspicion_mult = NonZeroU32::new(mult).ok_or("zero")?;
            let p = Params {
                n: 100,
                seed: 1,
                latency_ms: 1,
                jitter_ms: 0,
                config,
                regions: None,
                latency_model: lapswim_sim::geo::LatencyModel::Flat,
            };
            let s2 = scenario::s2(&p, 10).map_err(|e| e.to_string())?.line;
            let gray = lapswim_sim::gray::gray(&p, 3.0).map_err(|e| e.to_string())?.line;
            let detect = s2["all_live_down_ms"]["median"].as_f64().unwrap_or(f64::NAN);
            let false_failures = gray["false_failures"].as_u64().unwrap_or(u64::MAX);
            println!(
                "interval {interval} ms, suspicion_mult {mult}: detection {detect} ms, gray false failures {false_failures}"
            );
            points.push((detect / 1000.0, (1.0 + false_failures as f64).log10()));
        }
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart = chart.line(format!("probe interval {interval} ms, suspicion_mult 1..4"), points);
    }
    swim_lab::plot::svg(&chart, &out)
}
