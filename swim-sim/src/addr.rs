//! Who is where in a simulated cluster, and where randomness comes from.

use core::net::{Ipv4Addr, SocketAddr};

use rand_xoshiro::Xoshiro256PlusPlus;

/// The generator every simulated node and the network use.
pub type SimRng = Xoshiro256PlusPlus;

/// A `splitmix64` step: spreads `(seed, stream)` into an independent seed.
pub fn mix(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed in the `SWIM_SEED` environment variable, or `default`. Tests
/// take their seed from here and print it on failure, so any failing run
/// is replayed with `SWIM_SEED=<seed> cargo test ...`.
pub fn seed_from_env(default: u64) -> u64 {
    std::env::var("SWIM_SEED").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(default)
}

/// The address of simulated node `i`: `10.x.y.z:7946` with `i` in the
/// low 24 bits.
pub fn node_addr(i: usize) -> SocketAddr {
    node_addr_at(i, 0)
}

/// The address of simulated node `i` after it has moved `moves` times: the
/// same host, port `7946 + moves`.
pub fn node_addr_at(i: usize, moves: u16) -> SocketAddr {
    let ip = Ipv4Addr::from(0x0A00_0000 | (i as u32 & 0x00FF_FFFF));
    SocketAddr::from((ip, 7946u16.wrapping_add(moves)))
}

/// The node whose host a simulated address names (whatever its port).
pub fn node_index(addr: SocketAddr) -> Option<usize> {
    match addr {
        SocketAddr::V4(a) if a.port() >= 7946 && a.ip().octets()[0] == 10 => {
            Some((u32::from(*a.ip()) & 0x00FF_FFFF) as usize)
        }
        _ => None,
    }
}

/// The name of simulated node `i`.
pub fn node_name(i: usize) -> String {
    format!("n{i}")
}

/// The index of the simulated node called `name`.
pub fn name_index(name: &str) -> Option<usize> {
    name.strip_prefix('n')?.parse().ok()
}
