//! Benchmarks live in `benches/`; run them with `cargo bench -p swim-benches`.
//! This library holds what several of them share.

use core::net::SocketAddr;

/// A foca identity: an address, and a counter bumped on renewal (foca's
/// way of rejoining under the same address).
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct FocaId {
    /// Where the member is.
    pub addr: SocketAddr,
    /// Renewals so far.
    pub bump: u64,
}

impl FocaId {
    /// The identity of a member first seen at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        FocaId { addr, bump: 0 }
    }
}

impl foca::Identity for FocaId {
    type Addr = SocketAddr;
    fn renew(&self) -> Option<Self> {
        Some(FocaId { addr: self.addr, bump: self.bump.wrapping_add(1) })
    }
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.bump > adversary.bump
    }
}
