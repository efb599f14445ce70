//! `swim demo`: a local cluster over real loopback sockets, shown live:
//! join, a crash detected by every survivor, a graceful leave, and the
//! final table of who sees whom.

use core::time::Duration;

use clap::Args;
use lapswim_core::{Event, MemberState};
use lapswim_node::{NodeBuilder, Runtime};

use crate::cluster::{LocalCluster, Seen};
use crate::output::{describe, state_word};
use crate::{Preset, RuntimeKind};

/// `swim demo` flags.
#[derive(Args, Debug)]
pub(crate) struct DemoArgs {
    /// How many nodes (at least 3: a seed, one to crash, one to leave).
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Which async runtime runs them.
    #[arg(long, value_enum, default_value_t)]
    runtime: RuntimeKind,
    /// Configuration preset.
    #[arg(long, value_enum, default_value_t)]
    config: Preset,
}

/// How long each stage may take before the demo gives up.
const STAGE_LIMIT: Duration = Duration::from_secs(40);

/// Runs the demo; `Err` says which stage did not complete.
pub(crate) fn run(args: DemoArgs) -> Result<(), String> {
    if !(3..=64).contains(&args.nodes) {
        return Err("--nodes must be within 3..=64".into());
    }
    block_on_runtime!(args.runtime, demo(&args))
}

fn stamp<R: Runtime>(cluster: &LocalCluster<R>, at: std::time::Instant) -> String {
    format!("[{:>6.3}s]", at.saturating_duration_since(cluster.started()).as_secs_f64())
}

fn now_stamp<R: Runtime>(cluster: &LocalCluster<R>) -> String {
    stamp(cluster, lapswim_node::Clock::read())
}

fn show<R: Runtime>(cluster: &LocalCluster<R>, seen: &Seen) {
    // Join and leave completions are the API's business, not news.
    if matches!(seen.event, Event::JoinCompleted { .. } | Event::LeaveCompleted) {
        return;
    }
    say!("{}  {:<8} sees {}", stamp(cluster, seen.at), cluster.node(seen.observer).name(), describe(&seen.event));
}

async fn demo<R: Runtime + Clone>(runtime: R, args: &DemoArgs) -> Result<(), String> {
    let n = args.nodes;
    let mut cluster = LocalCluster::new(runtime.clone());
    say!("swim demo: {n} nodes on 127.0.0.1 over UDP, {} runtime, {:?} config", args.runtime.name(), args.config);
    for i in 0..n {
        let builder = NodeBuilder::new(format!("node-{i}"), "127.0.0.1:0".parse().expect("literal address"))
            .config(args.config.config());
        let index = cluster.add(|| builder.start(&runtime)).map_err(|e| e.to_string())?;
        let node = cluster.node(index);
        say!("{}  started {} on {}", now_stamp(&cluster), node.name(), node.addr());
    }

    say!("{}  -- every node joins through node-0", now_stamp(&cluster));
    cluster.join_all(show).await.map_err(|e| format!("join: {e}"))?;
    let converged = cluster.wait_until(STAGE_LIMIT, LocalCluster::converged, show).await;
    if !converged {
        return Err("the nodes did not all see each other in time".into());
    }
    say!("{}  -- all {n} nodes see each other", now_stamp(&cluster));

    let victim_index = n - 1;
    let victim = cluster.node(victim_index).name().clone();
    say!("{}  -- killing {victim} abruptly: its socket closes, no goodbye", now_stamp(&cluster));
    cluster.kill(victim_index).await;
    let killed_at = lapswim_node::Clock::read();
    let detected = cluster.wait_until(STAGE_LIMIT, |c| c.all_see(&victim, MemberState::Dead), show).await;
    if !detected {
        return Err(format!("{victim} was not declared failed by every survivor in time"));
    }
    say!(
        "{}  -- {victim} failed at all {} survivors, {:.1} s after the kill",
        now_stamp(&cluster),
        n - 1,
        killed_at.elapsed().as_secs_f64()
    );

    let leaver_index = n - 2;
    let leaver = cluster.node(leaver_index).name().clone();
    say!("{}  -- {leaver} leaves gracefully", now_stamp(&cluster));
    cluster.leave(leaver_index).await.map_err(|e| format!("leave: {e}"))?;
    let left = cluster.wait_until(STAGE_LIMIT, |c| c.all_see(&leaver, MemberState::Left), show).await;
    if !left {
        return Err(format!("{leaver}'s leave did not reach every node in time"));
    }
    say!("{}  -- {leaver} left, seen as left (not failed) by every remaining node", now_stamp(&cluster));

    table(&cluster).await?;
    for i in cluster.running().collect::<Vec<_>>() {
        cluster.node(i).shutdown().await;
    }
    if let Some(seen) = cluster.false_failures().first() {
        return Err(format!("a live or departed member was declared failed: {:?}", seen.event));
    }
    say!("done in {:.1} s", cluster.started().elapsed().as_secs_f64());
    Ok(())
}

/// Who sees whom, from each running node's own member table.
async fn table<R: Runtime>(cluster: &LocalCluster<R>) -> Result<(), String> {
    let names: Vec<_> = cluster.nodes().iter().map(|n| n.name().clone()).collect();
    let width = names.iter().map(|n| n.as_str().len()).max().unwrap_or(6).max(7) + 2;
    say!();
    let mut header = format!("{:<width$}", "sees ->");
    names.iter().for_each(|n| header.push_str(&format!("{:<width$}", n.as_str())));
    say!("{}", header.trim_end());
    for (i, node) in cluster.nodes().iter().enumerate() {
        let mut row = format!("{:<width$}", node.name().as_str());
        if cluster.is_stopped(i) {
            say!("{row}(stopped)");
            continue;
        }
        let members = node.members().await.map_err(|e| format!("members: {e}"))?;
        for name in &names {
            let cell = match members.iter().find(|m| m.name == *name) {
                Some(m) if m.is_local => "self",
                found => state_word(found.map(|m| m.state)),
            };
            row.push_str(&format!("{cell:<width$}"));
        }
        say!("{}", row.trim_end());
    }
    say!();
    Ok(())
}
