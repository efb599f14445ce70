//! What a member speaking memberlist's format keeps of what it heard, to
//! say it back as memberlist and serf expect: each member's version range
//! (memberlist refutes an alive about itself that announces other versions
//! than its own, so a record we pass on must carry the member's), and the
//! IDs of serf's queries (serf drops an answer that carries another ID than
//! its query's). Both bounded, in entries and (names of at most
//! [`MAX_NAME_LEN`] bytes) in bytes.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;

use crate::util::name::MAX_NAME_LEN;

/// Versions and query IDs heard.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Heard {
    /// Our own name: what others claim of it is not taken.
    me: String,
    /// Each member's six version bytes, as its alive announced them.
    versions: BTreeMap<String, [u8; 6]>,
    /// serf queries heard lately: time, origin, ID; the oldest first.
    queries: VecDeque<(u64, String, u32)>,
    /// serf's member clock: the latest time of a join or leave intent, or
    /// of a push-pull's state, heard (ours must go past it).
    member_time: u64,
}

impl Heard {
    /// Members whose versions are kept, at most (beyond, the dialect's
    /// own range is announced for them).
    const MAX_VERSIONS: usize = 65_536;
    /// serf queries whose IDs are kept, at most.
    const MAX_QUERIES: usize = 256;

    /// Nothing heard yet, for the member `me`.
    pub(crate) fn new(me: &str) -> Self {
        Heard { me: String::from(me), ..Heard::default() }
    }

    /// `name`'s alive announced `vsn` (kept when it is six bytes).
    pub(crate) fn note_versions(&mut self, name: &str, vsn: &[u8]) {
        let Ok(vsn) = <[u8; 6]>::try_from(vsn) else { return };
        // Not one of our names (memberlist checks none): not kept, so what
        // is kept stays within its bytes.
        if name == self.me || name.is_empty() || name.len() > MAX_NAME_LEN {
            return;
        }
        if let Some(v) = self.versions.get_mut(name) {
            *v = vsn;
        } else if self.versions.len() < Self::MAX_VERSIONS {
            self.versions.insert(String::from(name), vsn);
        }
    }

    /// Takes in what `other` heard (noted as it was, in its order).
    pub(crate) fn absorb(&mut self, other: Heard) {
        for (name, vsn) in other.versions {
            self.note_versions(&name, &vsn);
        }
        for (ltime, origin, id) in other.queries {
            self.note_query(ltime, &origin, id);
        }
        self.note_member_time(other.member_time);
    }

    /// The versions `name` announced, if heard.
    pub(crate) fn versions_of(&self, name: &str) -> Option<[u8; 6]> {
        self.versions.get(name).copied()
    }

    /// The serf query `origin` asked at `ltime` has `id`.
    pub(crate) fn note_query(&mut self, ltime: u64, origin: &str, id: u32) {
        if origin.len() > MAX_NAME_LEN || self.query_id(ltime, origin).is_some() {
            return;
        }
        if self.queries.len() == Self::MAX_QUERIES {
            self.queries.pop_front();
        }
        self.queries.push_back((ltime, String::from(origin), id));
    }

    /// The ID of the query `origin` asked at `ltime`, if heard.
    pub(crate) fn query_id(&self, ltime: u64, origin: &str) -> Option<u32> {
        self.queries.iter().rev().find(|(t, o, _)| *t == ltime && o == origin).map(|&(_, _, id)| id)
    }

    /// serf's member clock went to `ltime` somewhere.
    pub(crate) fn note_member_time(&mut self, ltime: u64) {
        self.member_time = self.member_time.max(ltime);
    }

    /// The time our next join or leave intent carries: past every one
    /// heard (as serf's `clock.Time()` after witnessing them).
    pub(crate) fn next_member_time(&self) -> u64 {
        self.member_time.saturating_add(1)
    }

    /// The ID of the latest query heard at `ltime`, whoever asked: an
    /// answer names its query by time alone.
    pub(crate) fn latest_query_id(&self, ltime: u64) -> Option<u32> {
        self.queries.iter().rev().find(|(t, _, _)| *t == ltime).map(|&(_, _, id)| id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_query_ids_are_kept_within_bounds_and_ours_are_not_taken() {
        let mut h = Heard::new("me");
        h.note_versions("a", &[1, 5, 2, 2, 5, 5]);
        h.note_versions("me", &[1, 5, 2, 0, 0, 0]);
        h.note_versions("b", &[1, 5]);
        h.note_versions(&"x".repeat(MAX_NAME_LEN + 1), &[1, 5, 2, 2, 5, 5]);
        assert_eq!(h.versions.len(), 1, "a name too long is not kept");
        assert_eq!(h.versions_of("a"), Some([1, 5, 2, 2, 5, 5]));
        assert_eq!(h.versions_of("me"), None);
        assert_eq!(h.versions_of("b"), None);
        for i in 0..300u64 {
            h.note_query(i, "o", u32::try_from(i).unwrap());
        }
        assert_eq!(h.query_id(299, "o"), Some(299));
        assert_eq!(h.query_id(10, "o"), None, "the oldest went first");
        h.note_query(299, "p", 7);
        assert_eq!(h.latest_query_id(299), Some(7));
        assert_eq!(h.query_id(299, "o"), Some(299));
    }
}
