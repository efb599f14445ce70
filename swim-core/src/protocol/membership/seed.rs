//! Seeding: members put straight into the table, as a converged cluster
//! holds them, without the join and the gossip that would have brought
//! them. It lets the simulator start a large cluster in its steady state:
//! a bootstrap of n² table entries by gossip and syncs costs far more than
//! the steady state it leads to, which is what such a run measures.

use core::net::SocketAddr;

use super::Membership;
use crate::protocol::table::record::{Member, MemberState};
use crate::util::name::MemberName;
use crate::util::rng::Random;
use crate::util::time::Instant;

impl Membership {
    /// Adds each of `members` (name, address, incarnation, metadata)
    /// alive, as [`merge`](super::merge)'s `add` would on learning it:
    /// into the live list and the probe order, at a random place of the
    /// current round. Unlike `add` it emits no event and queues nothing
    /// for gossip (in a converged cluster every member already holds the
    /// same table: there is no news to spread), and it skips the
    /// admission checks (the caller vouches for every member).
    ///
    /// Skipped: our own name, a name already in the table, metadata
    /// longer than `max_meta_len`. The table stays within `max_members`:
    /// the members beyond it are refused. Returns how many were added.
    pub(crate) fn seed<'a>(
        &mut self,
        now: Instant,
        members: impl Iterator<Item = (MemberName, SocketAddr, u32, &'a [u8])>,
        rng: &mut dyn Random,
    ) -> usize {
        let cap = self.config.max_members.get() as usize;
        // Sized once: a table of thousands grown one by one would rehash
        // its indexes a dozen times and keep up to twice its lists' room.
        let room = cap.saturating_sub(self.table.len());
        self.table.reserve(members.size_hint().0.min(room));
        let mut added = 0;
        for (name, addr, incarnation, meta) in members {
            if self.table.len() >= cap {
                break;
            }
            if name == self.local.name
                || meta.len() > self.config.max_meta_len
                || self.table.id_of(name.as_str()).is_some()
            {
                continue;
            }
            let member = Member {
                name,
                addr: addr.into(),
                incarnation,
                state: MemberState::Alive,
                since: now,
                meta: meta.into(),
                data_incarnation: incarnation,
                live_pos: None,
            };
            self.table.insert(member, rng);
            added += 1;
        }
        added
    }
}
