//! `swim loopback`: N nodes in this process on loopback sockets join one
//! seed, run a steady window, then lose K nodes to a crash. One JSON line.

use core::time::Duration;
use std::collections::BTreeMap;
use std::time::Instant;

use crate::cluster::LocalCluster;
use clap::Args;
use lapswim_core::{Event, MemberName, MemberState};
use lapswim_node::{Clock, Node, NodeBuilder, Runtime};
use serde_json::json;

use crate::lab::procstat::{process_cpu_ms, rss_kb};

pub use crate::presets::{Preset, RuntimeKind};

/// `swim loopback` flags.
#[derive(Args, Debug)]
pub struct LoopbackArgs {
    /// How many nodes.
    #[arg(long, default_value_t = 64)]
    nodes: usize,
    /// Which async runtime runs them.
    #[arg(long, value_enum, default_value_t)]
    runtime: RuntimeKind,
    /// How many nodes to kill after the steady window (the last started).
    #[arg(long, default_value_t = 1)]
    kill: usize,
    /// Length of the steady window CPU and traffic are measured over, in s.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Configuration preset.
    #[arg(long, value_enum, default_value_t)]
    config: Preset,
    /// Record every node's trace under DIR (`node-<i>.trace`), to measure
    /// what recording costs or to replay the run.
    #[arg(long, value_name = "DIR")]
    record: Option<std::path::PathBuf>,
}

/// Time between convergence and the steady window.
const SETTLE: Duration = Duration::from_secs(5);

/// Longest wait for convergence and for detection.
const LIMIT: Duration = Duration::from_secs(180);

/// Runs the measurement and prints its JSON line; `Err` when the cluster
/// did not converge or detect the crash (the line is printed first).
pub fn run(args: LoopbackArgs) -> Result<(), String> {
    if args.nodes < 2 || args.kill == 0 || args.kill >= args.nodes || args.seconds == 0 {
        return Err("need --nodes >= 2, 1 <= --kill < --nodes and --seconds >= 1".into());
    }
    match args.runtime {
        RuntimeKind::Tokio => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start tokio: {e}"))?
            .block_on(measure(lapswim_tokio::Tokio, &args)),
        RuntimeKind::Smol => {
            let ex = std::sync::Arc::new(smol::Executor::new());
            smol::block_on(ex.run(measure(lapswim_smol::Smol::on(ex.clone()), &args)))
        }
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

async fn traffic(nodes: &[Node]) -> (u64, u64) {
    let mut sums = (0, 0);
    for node in nodes {
        if let Ok(s) = node.stats().await {
            sums.0 += s.protocol.packets_sent;
            sums.1 += s.protocol.bytes_sent;
        }
    }
    sums
}

async fn measure<R: Runtime + Clone>(runtime: R, args: &LoopbackArgs) -> Result<(), String> {
    let n = args.nodes;
    let rss_base = rss_kb();
    let mut cluster = LocalCluster::new(runtime.clone());
    if let Some(dir) = &args.record {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    for i in 0..n {
        let mut builder = NodeBuilder::new(format!("node-{i}"), "127.0.0.1:0".parse().expect("literal address"))
            .config(args.config.config())
            .event_capacity(4 * n + 64);
        if let Some(dir) = &args.record {
            builder = builder.record(dir.join(format!("node-{i}.trace")));
        }
        cluster.add(|| builder.start(&runtime)).map_err(|e| e.to_string())?;
    }
    let victims: Vec<MemberName> = (n - args.kill..n).map(|i| cluster.node(i).name().clone()).collect();
    let joined_at = Clock::read();
    cluster.join_all().await.map_err(|e| format!("join: {e}"))?;
    let converged = cluster.wait_until(LIMIT, LocalCluster::converged, |_, _| {}).await;
    let convergence_ms = converged.then(|| ms(joined_at.elapsed()));

    let mut line = json!({
        "recording": args.record.is_some(),
        "nodes": n,
        "runtime": args.runtime.name(),
        "convergence_ms": convergence_ms,
        "first_suspect_ms": null,
        "all_failed_ms": null,
        "false_failures": null,
        "cpu_ms_per_node_s": null,
        "rss_kb_per_node": null,
        "datagrams_per_node_s": null,
        "bytes_per_node_s": null,
    });
    let mut detected = false;
    if converged {
        // Let the join's updates finish spreading: the window measures the
        // steady state.
        cluster.sleep(SETTLE, |_, _| {}).await;
        let (p0, b0) = traffic(cluster.nodes()).await;
        let (cpu0, w0) = (process_cpu_ms(), Clock::read());
        cluster.sleep(Duration::from_secs(args.seconds), |_, _| {}).await;
        let (cpu1, window) = (process_cpu_ms(), w0.elapsed().as_secs_f64());
        let (p1, b1) = traffic(cluster.nodes()).await;
        let rss = rss_kb();
        let node_s = n as f64 * window;
        line["cpu_ms_per_node_s"] = json!(round3((cpu1 - cpu0) / node_s));
        line["rss_kb_per_node"] = json!(round3(rss.saturating_sub(rss_base) as f64 / n as f64));
        line["datagrams_per_node_s"] = json!(round3((p1 - p0) as f64 / node_s));
        line["bytes_per_node_s"] = json!(round3((b1 - b0) as f64 / node_s));

        for i in n - args.kill..n {
            cluster.kill(i).await;
        }
        let killed_at = Clock::read();
        let mut first_suspect: Option<Instant> = None;
        let mut failed_at: BTreeMap<(usize, MemberName), Instant> = BTreeMap::new();
        detected = cluster
            .wait_until(
                LIMIT,
                |c| victims.iter().all(|v| c.all_see(v, MemberState::Dead)),
                |_, s| match &s.event {
                    Event::Suspected { name, .. } if victims.contains(name) => {
                        first_suspect = Some(first_suspect.map_or(s.at, |f| f.min(s.at)));
                    }
                    Event::Failed { name, .. } if victims.contains(name) => {
                        failed_at.entry((s.observer, name.clone())).or_insert(s.at);
                    }
                    _ => {}
                },
            )
            .await;
        line["first_suspect_ms"] = json!(first_suspect.map(|t| ms(t.saturating_duration_since(killed_at))));
        if detected {
            let last = failed_at.values().max().copied().unwrap_or(killed_at);
            line["all_failed_ms"] = json!(ms(last.saturating_duration_since(killed_at)));
        }
    }
    line["false_failures"] = json!(cluster.false_failures().len());
    line["events_lost"] = json!(cluster.lagged());
    crate::lab::print_lines(&[line.to_string()]);
    for i in cluster.running().collect::<Vec<_>>() {
        cluster.node(i).shutdown().await;
    }
    match (converged, detected) {
        (false, _) => Err(format!("{n} nodes did not converge within {} s", LIMIT.as_secs())),
        (true, false) => Err(format!("the crash was not detected everywhere within {} s", LIMIT.as_secs())),
        (true, true) => Ok(()),
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}
