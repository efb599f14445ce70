//! How membership events are shown: one readable line, or one JSON object.

use lapswim_core::{Event, MemberState};
use serde_json::{Value, json};

/// A short verb and the member an event is about, for readable lines.
/// Control characters a peer chose (in a name or a payload) are escaped, so
/// no sender can end the line, forge another or drive the terminal.
pub(crate) fn describe(event: &Event) -> String {
    escape_controls(&describe_raw(event))
}

/// `s` with every control character written as its Rust escape (`\n`,
/// `\u{1b}`), everything else as is.
pub(crate) fn escape_controls(s: &str) -> String {
    s.chars().fold(String::with_capacity(s.len()), |mut out, c| {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
        out
    })
}

fn describe_raw(event: &Event) -> String {
    match event {
        Event::Joined { name, addr } => format!("{name} joined ({addr})"),
        Event::Suspected { name, incarnation, local } => {
            format!("{name} suspected (incarnation {incarnation}{})", if *local { ", by us" } else { "" })
        }
        Event::Alive { name, incarnation } => format!("{name} alive again (incarnation {incarnation})"),
        Event::Failed { name, incarnation, local } => {
            format!("{name} failed (incarnation {incarnation}{})", if *local { ", declared by us" } else { "" })
        }
        Event::Left { name } => format!("{name} left"),
        Event::Updated { name, addr } => format!("{name} updated ({addr})"),
        Event::JoinCompleted { seed } => format!("join completed through {seed}"),
        Event::JoinFailed => "join failed: no seed answered".into(),
        Event::LeaveCompleted => "leave completed".into(),
        Event::User { from, ltime, name, payload, .. } => {
            format!("broadcast {name} from {from} (time {ltime}): {}", String::from_utf8_lossy(payload))
        }
        Event::Query { id, from, name, payload, .. } => {
            format!("query {id} {name} from {from}: {}", String::from_utf8_lossy(payload))
        }
        Event::QueryAck { id, from } => format!("query {id} acknowledged by {from}"),
        Event::QueryResponse { id, from, payload } => {
            format!("query {id} answered by {from}: {}", String::from_utf8_lossy(payload))
        }
        Event::QueryDone { id } => format!("query {id} done"),
        Event::Message { from, payload, reliable } => format!(
            "{} message from {from}: {}",
            if *reliable { "reliable" } else { "best-effort" },
            String::from_utf8_lossy(payload)
        ),
        Event::MessageFailed { to } => format!("message to {to} not delivered"),
        Event::Report { id, report } => format!(
            "query {id} report: {} acked, {} failed, {} silent",
            report.acked.len(),
            report.failed.len(),
            report.silent.len()
        ),
        Event::NameConflict { other, won } => match won {
            None => format!("another member claims our name from {other}"),
            Some(true) => format!("name conflict with {other} settled: we keep the name"),
            Some(false) => format!("name conflict with {other} settled: the other keeps the name; leaving"),
        },
        Event::Rejected { from, reason, .. } => format!("datagram from {from} rejected: {reason}"),
        Event::AppState { from, join, state } => {
            format!("application state from {from} ({} bytes{})", state.len(), if *join { ", join" } else { "" })
        }
        other => format!("{other:?}"),
    }
}

/// An event as a flat JSON object: `{"event": kind, ...fields}`.
pub(crate) fn to_json(event: &Event) -> Value {
    match event {
        Event::Joined { name, addr } => json!({"event": "joined", "member": name.as_str(), "addr": addr}),
        Event::Suspected { name, incarnation, local } => {
            json!({"event": "suspected", "member": name.as_str(), "incarnation": incarnation, "local": local})
        }
        Event::Alive { name, incarnation } => {
            json!({"event": "alive", "member": name.as_str(), "incarnation": incarnation})
        }
        Event::Failed { name, incarnation, local } => {
            json!({"event": "failed", "member": name.as_str(), "incarnation": incarnation, "local": local})
        }
        Event::Left { name } => json!({"event": "left", "member": name.as_str()}),
        Event::Updated { name, addr } => json!({"event": "updated", "member": name.as_str(), "addr": addr}),
        Event::JoinCompleted { seed } => json!({"event": "join_completed", "seed": seed}),
        Event::JoinFailed => json!({"event": "join_failed"}),
        Event::LeaveCompleted => json!({"event": "leave_completed"}),
        Event::User { from, ltime, name, payload, coalesce } => json!({
            "event": "broadcast", "member": from.as_str(), "ltime": ltime, "name": name,
            "coalesce": coalesce, "payload": String::from_utf8_lossy(payload),
        }),
        Event::Query { id, from, ltime, name, payload } => json!({
            "event": "query", "id": id.get(), "member": from.as_str(), "ltime": ltime, "name": name,
            "payload": String::from_utf8_lossy(payload),
        }),
        Event::QueryAck { id, from } => json!({"event": "query_ack", "id": id.get(), "member": from.as_str()}),
        Event::QueryResponse { id, from, payload } => json!({
            "event": "query_response", "id": id.get(), "member": from.as_str(),
            "payload": String::from_utf8_lossy(payload),
        }),
        Event::QueryDone { id } => json!({"event": "query_done", "id": id.get()}),
        Event::Message { from, payload, reliable } => json!({
            "event": "message", "member": from.as_str(), "reliable": reliable,
            "payload": String::from_utf8_lossy(payload),
        }),
        Event::MessageFailed { to } => json!({"event": "message_failed", "member": to.as_str()}),
        Event::Report { id, report } => json!({
            "event": "report", "id": id.get(),
            "acked": report.acked.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
            "failed": report.failed.iter().map(|(m, why)| json!({"member": m.as_str(), "error": why})).collect::<Vec<_>>(),
            "silent": report.silent.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        }),
        Event::NameConflict { other, won } => json!({"event": "name_conflict", "other": other, "won": won}),
        Event::Rejected { from, stream, reason } => {
            json!({"event": "rejected", "from": from, "stream": stream.is_some(), "reason": reason.to_string()})
        }
        Event::AppState { from, join, state } => {
            json!({"event": "app_state", "member": from.as_str(), "join": join, "bytes": state.len()})
        }
        other => json!({"event": format!("{other:?}")}),
    }
}

/// A member state as a table cell.
pub(crate) fn state_word(state: Option<MemberState>) -> &'static str {
    match state {
        Some(MemberState::Alive) => "alive",
        Some(MemberState::Suspect) => "suspect",
        Some(MemberState::Dead) => "failed",
        Some(MemberState::Left) => "left",
        Some(_) => "other",
        None => "-",
    }
}

/// `k=v` from the command line.
pub(crate) fn parse_meta(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() && !k.contains('\n') && !v.contains('\n') => Ok((k.into(), v.into())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// Prints one line to stdout; a closed stdout (`swim demo | head`) ends the
/// process quietly instead of panicking.
pub(crate) fn emit(line: impl core::fmt::Display) {
    use std::io::Write;
    if writeln!(std::io::stdout().lock(), "{line}").is_err() {
        std::process::exit(0);
    }
}

/// Prints one line to stderr; a closed stderr loses it rather than
/// panicking (as `eprintln!` would).
pub(crate) fn complain(line: impl core::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_cannot_forge_a_line_or_drive_the_terminal() {
        let name = lapswim_core::MemberName::new("peer").unwrap();
        let payload = b"hi\n2026-12-02 node-0 failed\x1b[31m\r".to_vec();
        let line = describe(&Event::User { from: name, ltime: 1, name: "line".into(), payload, coalesce: false });
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert_eq!(line, "broadcast line from peer (time 1): hi\\n2026-12-02 node-0 failed\\u{1b}[31m\\r");
    }
}
