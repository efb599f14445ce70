//! The harness of the `scenario` fuzz target (`fuzz/`): bytes drive a
//! small simulated cluster through faults, junk injection and API calls,
//! and the cluster's invariants are checked after every step. Also run by
//! the test suite on every committed input under `fuzz/regressions/`.
//! Not a stable API.

use core::net::SocketAddr;

use lapswim_core::internals::wire::{self, Message, PacketWriter};
use lapswim_core::{Config, MemberState, OwnedInput};

use crate::net::{Command, Flow, NetConfig, Sim};

const N: usize = 6;

/// Reads the script one byte at a time; zeros once it runs out.
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn bytes(&mut self) -> &[u8] {
        let len = usize::from(self.byte().unwrap_or(0)).min(self.0.len());
        let (b, rest) = self.0.split_at(len);
        self.0 = rest;
        b
    }
}

fn config() -> Config {
    let nz = |v| core::num::NonZeroU32::new(v).unwrap_or(core::num::NonZeroU32::MIN);
    Config::lan()
        .with_max_members(nz(32))
        .with_max_queued_updates(nz(64))
        .with_max_queued_broadcasts(nz(16))
        .with_max_streams(nz(8))
}

/// Drives the cluster with `data`; panics when an invariant breaks: a
/// member table, queue or stream count over its bound, a node that holds
/// itself anything but alive (or leaving).
pub fn scenario(data: &[u8]) {
    let mut s = Script(data);
    let seed = (0..8).fold(0u64, |acc, _| acc << 8 | u64::from(s.byte().unwrap_or(0)));
    let Ok(mut sim) = Sim::new(N, config(), NetConfig { seed, ..NetConfig::default() }) else { return };
    sim.set_invariant(Box::new(move |sim: &Sim| {
        for i in 0..N {
            if sim.is_crashed(i).unwrap_or(true) {
                continue;
            }
            let Ok(node) = sim.node(i) else { continue };
            let c = node.config();
            if node.members().count() > c.max_members.get() as usize + 1 {
                return Err(format!("node {i}: member table over its bound"));
            }
            if node.queued_updates() > c.max_queued_updates.get() as usize + 1 {
                return Err(format!("node {i}: update queue over its bound"));
            }
            if node.queued_broadcasts() > c.max_queued_broadcasts.get() as usize {
                return Err(format!("node {i}: broadcast queue over its bound"));
            }
            if node.open_streams() > 2 * c.max_streams.get() as usize {
                return Err(format!("node {i}: streams over their bound"));
            }
            let me = node.members().next().map(|m| m.state);
            if !node.has_left() && me != Some(MemberState::Alive) && me != Some(MemberState::Left) {
                return Err(format!("node {i} holds itself {me:?}"));
            }
        }
        Ok(())
    }));
    for i in 1..N {
        let _ = sim.schedule(0, Command::Join { node: i, seeds: vec![0] });
    }
    let mut crashed = [false; N];
    let mut t = 0u64;
    let mut buf = Vec::new();
    while let Some(op) = s.byte() {
        let node = usize::from(op >> 4) % N;
        let arg = s.byte().unwrap_or(0);
        let cmd = match op % 12 {
            0 if crashed.iter().filter(|c| **c).count() < N / 2 => {
                crashed[node] = true;
                if arg & 2 == 0 { Command::Crash(node) } else { Command::CrashHost(node) }
            }
            1 if crashed[node] => {
                crashed[node] = false;
                let seed = (node + 1) % N;
                Command::Restart { node, seeds: vec![seed], new_addr: arg & 1 == 1 }
            }
            2 => Command::Partition {
                id: u32::from(arg & 3),
                from: (0..N).filter(|i| arg >> (i % 8) & 1 == 1).collect(),
                to: (0..N).filter(|i| arg >> (i % 8) & 1 == 0).collect(),
                both: op & 0x80 != 0,
            },
            3 => Command::Heal,
            4 => Command::SetLoss(f64::from(arg % 40) / 100.0),
            5 => Command::SetSlow { node, ms: u64::from(arg) * 4 },
            6 | 7 => {
                // Junk, most of it in a valid envelope, from a member's
                // address or a stranger's.
                let body = s.bytes();
                if arg & 1 == 0 {
                    wire::plain_packet(body, &mut buf);
                } else {
                    buf.clear();
                    buf.extend_from_slice(body);
                }
                let from = if arg & 2 == 0 {
                    sim.addr(usize::from(arg >> 2) % N).unwrap_or_else(|_| stranger())
                } else {
                    stranger()
                };
                Command::Input { node, input: OwnedInput::Packet { from, bytes: buf.clone() } }
            }
            8 => {
                // A forged rumour about a member, at any incarnation.
                let name = crate::net::node_name(usize::from(arg) % N);
                let incarnation = u32::from(arg).wrapping_mul(0x0101_0101).rotate_left(u32::from(op));
                let msg = match arg % 3 {
                    0 => Message::Suspect { incarnation, name: &name, from: "n0" },
                    1 => Message::Dead { incarnation, name: &name, from: "n1" },
                    _ => Message::Alive { incarnation, name: &name, addr: stranger(), meta: b"" },
                };
                let mut w = PacketWriter::new(1400);
                let _ = w.push(&msg);
                Command::Input { node, input: OwnedInput::Packet { from: stranger(), bytes: w.finish().to_vec() } }
            }
            9 => {
                let payload = s.bytes().to_vec();
                match arg % 4 {
                    0 => Command::Input {
                        node,
                        input: OwnedInput::UserEvent { name: "e".into(), payload, coalesce: arg & 0x80 != 0 },
                    },
                    1 => Command::Input { node, input: OwnedInput::SetMeta { meta: payload } },
                    2 => Command::Input {
                        node,
                        input: OwnedInput::Message {
                            to: crate::net::node_name(usize::from(arg >> 2) % N),
                            payload,
                            reliable: arg & 0x80 != 0,
                        },
                    },
                    _ => Command::Input { node, input: OwnedInput::SetAppState { state: payload } },
                }
            }
            10 if arg == 0xff => Command::Leave(node),
            _ => {
                t += u64::from(arg) * 100;
                sim.run_until(t, &mut |_, _, _: &lapswim_core::Event| Flow::Continue);
                check(&sim);
                continue;
            }
        };
        let _ = sim.schedule(t, cmd);
        t += 10;
        sim.run_until(t, &mut |_, _, _: &lapswim_core::Event| Flow::Continue);
        check(&sim);
        if t > 600_000 {
            break;
        }
    }
    let _ = sim.schedule(t, Command::Heal);
    let _ = sim.schedule(t, Command::SetLoss(0.0));
    sim.run_until(t + 30_000, &mut |_, _, _: &lapswim_core::Event| Flow::Continue);
    check(&sim);
}

fn check(sim: &Sim) {
    if let Some(v) = sim.violation() {
        panic!("invariant broken: {v}");
    }
}

fn stranger() -> SocketAddr {
    SocketAddr::from(([203, 0, 113, 9], 4444))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_script_runs() {
        scenario(&[0, 0, 0, 0, 0, 0, 0, 1, 11, 50, 0x10, 0, 6, 2, 3, 9, 4, 2, 11, 100, 8, 1, 11, 200]);
    }
}
