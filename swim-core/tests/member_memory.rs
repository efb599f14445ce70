//! What one member entry costs a node, as `Config::max_members` documents:
//! a table filled with 20,000 members learned by gossip (each with a
//! 16-byte name and no metadata), measured with a counting allocator.
//! The update queue holds one entry per member as well, as it does while
//! news of them spreads.

use core::net::SocketAddr;
use std::alloc::System;

use lapswim_core::internals::wire::{Message, Messages, PacketWriter, decode};
use lapswim_core::{Action, Config, Identity, Input, Instant, MemberName, Swim};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes per member entry the documentation of `max_members` states.
const STATED_BYTES_PER_MEMBER: usize = 192;

#[test]
fn a_member_entry_costs_what_the_documentation_states() {
    let n = 20_000usize;
    let config = Config::lan()
        .with_member_admission_rate(core::num::NonZeroU32::new(1_000_000).unwrap())
        .with_max_queued_updates(core::num::NonZeroU32::new(1_000_000).unwrap());
    let me = Identity::new(MemberName::new("me").unwrap(), SocketAddr::from(([10, 0, 0, 1], 7946)));
    let names: Vec<String> = (0..n).map(|i| format!("member-{i:09}")).collect();
    let packets: Vec<Vec<u8>> = names
        .chunks(40)
        .enumerate()
        .map(|(c, chunk)| {
            let mut w = PacketWriter::new(1400);
            for (k, name) in chunk.iter().enumerate() {
                let addr = SocketAddr::from(([10, 1, (c % 250) as u8, k as u8], 7946));
                w.push(&Message::Alive { incarnation: 1, name, addr, meta: b"" }).unwrap();
            }
            w.finish().to_vec()
        })
        .collect();
    let from = SocketAddr::from(([10, 0, 0, 2], 7946));
    let region = Region::new(GLOBAL);
    let mut swim = Swim::new(config, me, Xoshiro256PlusPlus::seed_from_u64(1)).unwrap();
    let mut out = Vec::new();
    let mut answers = Vec::new();
    for p in &packets {
        swim.handle(Instant::from_millis(0), Input::Packet { from, bytes: p }, &mut out).unwrap();
        // Each new member answers the ping that checks it at its address.
        for a in out.drain(..) {
            if let Action::Send { to, packet } = a {
                let mut m = Messages::new();
                if decode(&packet, &mut m).is_ok()
                    && let [Message::Ping { seq, .. }] = m.as_slice()
                {
                    let mut w = PacketWriter::new(1400);
                    w.push(&Message::Ack { seq: *seq }).unwrap();
                    answers.push((to, w.finish().to_vec()));
                }
            }
        }
        for (to, ack) in answers.drain(..) {
            swim.handle(Instant::from_millis(0), Input::Packet { from: to, bytes: &ack }, &mut out).unwrap();
            out.clear();
        }
    }
    let stats = region.change();
    // The byte counts include what reallocations grew and shrank.
    let held = stats.bytes_allocated.saturating_sub(stats.bytes_deallocated);
    assert_eq!(swim.members().count(), n + 1);
    let per_member = held / n;
    println!("{per_member} bytes per member entry ({n} members, queue included)");
    assert!(per_member <= STATED_BYTES_PER_MEMBER, "{per_member} bytes per member");
}
