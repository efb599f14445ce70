//! `swim loopback`: N nodes in this process on loopback sockets join one
//! seed, run a steady window, then lose K nodes to a crash. One JSON line.
//!
//! The process raises its own open-file limit to what the nodes need (two
//! sockets each, and their streams), up to the hard limit; below the
//! least they need it says which limit to raise.

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

/// Least time between convergence and the steady window.
const SETTLE: Duration = Duration::from_secs(5);

/// Longest time between convergence and the steady window: the join's
/// news is sent all its times first (at 1,000 nodes every node queues
/// news of every other, and sends it for some 30 s).
const SETTLE_LIMIT: Duration = Duration::from_secs(120);

/// How often the settling checks the nodes' queues.
const SETTLE_POLL: Duration = Duration::from_secs(1);

/// Longest wait for convergence and for detection.
const LIMIT: Duration = Duration::from_secs(180);

/// Runs the measurement and prints its JSON line; `Err` when the cluster
/// did not converge or detect the crash (the line is printed first).
pub fn run(args: LoopbackArgs) -> Result<(), String> {
    if args.nodes < 2 || args.kill == 0 || args.kill >= args.nodes || args.seconds == 0 {
        return Err("need --nodes >= 2, 1 <= --kill < --nodes and --seconds >= 1".into());
    }
    raise_fd_limit(args.nodes)?;
    match args.runtime {
        RuntimeKind::Tokio => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start tokio: {e}"))?
            .block_on(measure(lapswim_tokio::Tokio, &args)),
        RuntimeKind::Smol => {
            let ex = std::sync::Arc::new(smol::Executor::new());
            // A thread per core runs the executor, as tokio's runtime runs
            // a worker per core: on one thread 1,000 nodes fall so far
            // behind that some never hear of others until a push-pull.
            let (stop, stopped) = smol::channel::bounded::<()>(1);
            let threads = std::thread::available_parallelism().map_or(1, core::num::NonZero::get);
            let helpers: Vec<_> = (1..threads)
                .map(|_| {
                    let (ex, stopped) = (ex.clone(), stopped.clone());
                    std::thread::spawn(move || smol::block_on(ex.run(stopped.recv())))
                })
                .collect();
            let result = smol::block_on(ex.run(measure(lapswim_smol::Smol::on(ex.clone()), &args)));
            drop(stop);
            for helper in helpers {
                let _ = helper.join();
            }
            result
        }
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Datagrams and bytes the nodes sent, and updates they still queue.
async fn traffic(nodes: &[Node]) -> (u64, u64, usize) {
    let mut sums = (0, 0, 0);
    for node in nodes {
        if let Ok(s) = node.stats().await {
            sums.0 += s.protocol.packets_sent;
            sums.1 += s.protocol.bytes_sent;
            sums.2 += s.queued_updates;
        }
    }
    sums
}

/// Open files `n` nodes need at the least: a UDP socket and a TCP
/// listener each, and the process's own.
fn fds_needed(n: usize) -> u64 {
    2 * n as u64 + 64
}

/// Open files `n` nodes may use: room besides for their streams, both
/// ends of which are in this process (1,000 nodes held 2,132 at most).
fn fds_wanted(n: usize) -> u64 {
    4 * n as u64 + 256
}

/// The soft open-file limit to set for `n` nodes, given the current soft
/// and hard ones (`None`: unlimited): `Ok(None)` when it is high enough,
/// `Err` when even the hard limit is below what the nodes need.
fn fd_limit_for(n: usize, soft: Option<u64>, hard: Option<u64>) -> Result<Option<u64>, String> {
    let (need, want) = (fds_needed(n), fds_wanted(n));
    let soft = soft.unwrap_or(u64::MAX);
    if soft >= want {
        return Ok(None);
    }
    let raised = hard.unwrap_or(u64::MAX).min(want).max(soft);
    if raised < need {
        return Err(format!(
            "{n} nodes need at least {need} open files, and the hard limit is {raised}: raise it to {want} \
             (ulimit -Hn as root, LimitNOFILE= under systemd, nofile in /etc/security/limits.conf)"
        ));
    }
    Ok((raised > soft).then_some(raised))
}

/// Raises the process's soft open-file limit for `n` nodes, as far as the
/// hard limit lets it (see [`fd_limit_for`]).
fn raise_fd_limit(n: usize) -> Result<(), String> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let now = getrlimit(Resource::Nofile);
    let Some(soft) = fd_limit_for(n, now.current, now.maximum)? else { return Ok(()) };
    match setrlimit(Resource::Nofile, Rlimit { current: Some(soft), maximum: now.maximum }) {
        Ok(()) => Ok(()),
        // Room for the streams only: run with what there is.
        Err(_) if now.current.is_none_or(|c| c >= fds_needed(n)) => Ok(()),
        Err(e) => Err(format!("cannot raise the open-file limit to {soft} for {n} nodes: {e}")),
    }
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
    cluster.join_all(|_, _| {}).await.map_err(|e| format!("join: {e}"))?;
    let converged = cluster.wait_until(LIMIT, LocalCluster::converged, |_, _| {}).await;
    // When the last view was completed, not when this task took the event
    // that completed it.
    let convergence_ms =
        converged.then(|| ms(cluster.last_event().unwrap_or(joined_at).saturating_duration_since(joined_at)));

    let mut line = json!({
        "recording": args.record.is_some(),
        "nodes": n,
        "runtime": args.runtime.name(),
        "convergence_ms": convergence_ms,
        "settle_ms": null,
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
        // Let the join's updates finish spreading, every node's queue
        // empty: the window measures the steady state.
        let settling = Clock::read();
        cluster.sleep(SETTLE, |_, _| {}).await;
        let (mut p0, mut b0, mut queued) = traffic(cluster.nodes()).await;
        while queued > 0 && settling.elapsed() < SETTLE_LIMIT {
            cluster.sleep(SETTLE_POLL, |_, _| {}).await;
            (p0, b0, queued) = traffic(cluster.nodes()).await;
        }
        line["settle_ms"] = json!(ms(settling.elapsed()));
        let (cpu0, w0) = (process_cpu_ms(), Clock::read());
        cluster.sleep(Duration::from_secs(args.seconds), |_, _| {}).await;
        let (cpu1, window) = (process_cpu_ms(), w0.elapsed().as_secs_f64());
        let (p1, b1, _) = traffic(cluster.nodes()).await;
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

#[cfg(test)]
mod tests {
    use super::{fd_limit_for, fds_needed, fds_wanted};

    #[test]
    fn the_open_file_limit_is_raised_as_far_as_the_hard_limit_lets_it() {
        let (need, want) = (fds_needed(1000), fds_wanted(1000));
        assert!(need > 2000 && want > need);
        // High enough, or unlimited: left alone.
        assert_eq!(fd_limit_for(1000, Some(want), Some(want)), Ok(None));
        assert_eq!(fd_limit_for(1000, None, None), Ok(None));
        // The usual 1024 soft limit: raised to what the nodes may use...
        assert_eq!(fd_limit_for(1000, Some(1024), Some(1 << 20)), Ok(Some(want)));
        assert_eq!(fd_limit_for(1000, Some(1024), None), Ok(Some(want)));
        // ...or as far as the hard limit goes, if that is enough.
        assert_eq!(fd_limit_for(1000, Some(1024), Some(need)), Ok(Some(need)));
        // Not enough: the error says what to raise, and to what.
        let e = fd_limit_for(1000, Some(1024), Some(need - 1)).unwrap_err();
        assert!(e.contains(&need.to_string()) && e.contains(&want.to_string()) && e.contains("hard limit"), "{e}");
        // Small clusters fit the usual limit.
        assert_eq!(fd_limit_for(64, Some(1024), Some(1024)), Ok(None));
    }
}
