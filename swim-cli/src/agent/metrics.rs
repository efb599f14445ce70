//! `GET /metrics`: the node's and the agent's counters in the Prometheus
//! text format, read at each scrape.
//!
//! Every counter of the state machine's `Stats` is exported under its own
//! name (`swim_probes_sent_total`, ...), so a counter added there shows up
//! here without a change; rejections carry their reason as a label.

use core::sync::atomic::Ordering;

use lapswim_core::MemberState;
use lapswim_node::{Member, NodeStats};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::shared::Counters;

type Labels = Vec<(String, String)>;

/// The text exposition of everything counted so far.
pub(crate) fn render(stats: &NodeStats, members: &[Member], agent: &Counters) -> Result<String, String> {
    let mut r = Registry::with_prefix("swim");
    let by_state = Family::<Labels, Gauge>::default();
    for state in [MemberState::Alive, MemberState::Suspect, MemberState::Dead, MemberState::Left] {
        let n = members.iter().filter(|m| m.state == state).count();
        gauge_in(&by_state, "state", super::shared::status(state), n as u64);
    }
    r.register("members", "Members in this agent's table, itself included, by state", by_state);

    // The state machine's counters, by their names in `Stats`.
    let protocol = serde_json::to_value(&stats.protocol).map_err(|e| e.to_string())?;
    let rejected = Family::<Labels, Counter>::default();
    for (name, value) in protocol.as_object().into_iter().flatten() {
        if let Some(n) = value.as_u64() {
            counter(&mut r, name, &format!("lapswim_core::Stats::{name}"), n);
        } else if let Some(reasons) = value.as_object() {
            for (reason, n) in reasons {
                rejected.get_or_create(&vec![("reason".into(), reason.clone())]).inc_by(n.as_u64().unwrap_or(0));
            }
        }
    }
    r.register("datagrams_rejected", "Datagrams and frames rejected, by reason", rejected);

    let io = &stats.io;
    for (name, help, n) in [
        ("udp_datagrams_sent", "Datagrams handed to the socket", io.datagrams_sent),
        ("udp_datagrams_received", "Datagrams taken from the socket", io.datagrams_received),
        ("udp_send_buffer_full", "Sends dropped for a full socket buffer", io.send_buffer_full),
        ("udp_send_errors", "Other send errors", io.send_errors),
        ("udp_recv_errors", "Receive errors", io.recv_errors),
        ("udp_unreachable", "ICMP unreachable reports", io.unreachable),
        ("node_events_dropped", "Events dropped because the agent fell behind", io.events_dropped),
        ("tcp_streams_opened", "Outbound TCP streams started", io.streams.opened),
        ("tcp_streams_accepted", "Inbound TCP streams accepted", io.streams.accepted),
        ("tcp_streams_over_cap", "TCP streams refused for the cap", io.streams.over_cap),
        ("tcp_streams_failed", "TCP streams that broke", io.streams.failed),
        ("tcp_streams_timed_out", "TCP streams that ran out of time", io.streams.timed_out),
        ("tcp_bytes_sent", "TCP stream bytes written", io.streams.bytes_sent),
        ("tcp_bytes_received", "TCP stream bytes read", io.streams.bytes_received),
    ] {
        counter(&mut r, name, help, n);
    }
    for (name, help, n) in [
        ("queued_updates", "Membership updates waiting to be piggybacked", stats.queued_updates),
        ("queued_broadcasts", "Events and queries waiting for retransmission", stats.queued_broadcasts),
        ("open_queries", "Queries of ours still open", stats.open_queries.0),
        ("answerable_queries", "Queries we may still answer", stats.open_queries.1),
    ] {
        gauge(&mut r, name, help, n as u64);
    }
    gauge(&mut r, "event_time", "The event Lamport clock", stats.event_time);
    gauge(&mut r, "query_time", "The query Lamport clock", stats.query_time);

    let load = |c: &core::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    for (name, help, n) in [
        (
            "suspicions_refuted",
            "Suspected members heard alive again (false suspicions)",
            load(&agent.suspicions_refuted),
        ),
        ("handler_runs", "Event handler runs", load(&agent.handler_runs)),
        (
            "handler_failures",
            "Event handler runs that failed (exit not 0, killed, or not started)",
            load(&agent.handler_failures),
        ),
        ("handler_timeouts", "Event handler runs killed at the timeout", load(&agent.handler_timeouts)),
        ("api_requests", "Control API requests", load(&agent.api_requests)),
        ("api_refused", "Control API requests refused (token, size, input)", load(&agent.api_refused)),
        ("snapshot_writes", "Snapshots written", load(&agent.snapshot_writes)),
        ("snapshot_failures", "Snapshots that could not be written", load(&agent.snapshot_failures)),
        ("join_attempts", "Join attempts (--join, --retry-join, snapshot, API)", load(&agent.join_attempts)),
    ] {
        counter(&mut r, name, help, n);
    }
    let mut text = String::new();
    encode(&mut text, &r).map_err(|e| e.to_string())?;
    Ok(text)
}

fn counter(r: &mut Registry, name: &str, help: &str, n: u64) {
    let c: Counter = Counter::default();
    c.inc_by(n);
    r.register(name, help, c);
}

fn gauge(r: &mut Registry, name: &str, help: &str, n: u64) {
    let g: Gauge = Gauge::default();
    g.set(i64::try_from(n).unwrap_or(i64::MAX));
    r.register(name, help, g);
}

fn gauge_in(family: &Family<Labels, Gauge>, label: &str, value: &str, n: u64) {
    family.get_or_create(&vec![(label.into(), value.into())]).set(i64::try_from(n).unwrap_or(i64::MAX));
}
