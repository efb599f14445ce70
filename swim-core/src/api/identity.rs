//! Who a member is: [`Identity`].

use alloc::vec::Vec;
use core::net::SocketAddr;

use crate::util::name::MemberName;

/// Who we are: the local member's name, address and metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Our unique name, kept across restarts.
    pub name: MemberName,
    /// The address others reach us at.
    pub addr: SocketAddr,
    /// Application metadata, at most `max_meta_len` bytes.
    pub meta: Vec<u8>,
}

impl Identity {
    /// An identity with no metadata.
    pub fn new(name: MemberName, addr: SocketAddr) -> Self {
        Identity { name, addr, meta: Vec::new() }
    }
}
