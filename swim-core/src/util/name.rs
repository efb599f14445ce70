//! Member names: the identity of a member across restarts and address changes.

use alloc::boxed::Box;
use core::fmt;

/// The longest member name accepted, in bytes. Longer names are rejected on
/// the wire and by [`MemberName::new`]; a bound keeps a peer from growing our
/// table without limit.
pub const MAX_NAME_LEN: usize = 128;

const INLINE: usize = 22;

/// A member's unique name: 1 to [`MAX_NAME_LEN`] bytes of UTF-8.
///
/// Names of up to 22 bytes are stored inline, so the member table of a large
/// cluster does not allocate once per member.
#[derive(Clone)]
pub struct MemberName(Repr);

#[derive(Clone)]
enum Repr {
    Inline(heapless::String<INLINE, u8>),
    Heap(Box<str>),
}

/// Why a string cannot be a [`MemberName`]; no name was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    Empty,
    /// The name is longer than [`MAX_NAME_LEN`] bytes.
    TooLong,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => f.write_str("member name is empty"),
            NameError::TooLong => write!(f, "member name is longer than {MAX_NAME_LEN} bytes"),
        }
    }
}

impl core::error::Error for NameError {}

impl MemberName {
    /// Checks and copies `name`.
    pub fn new(name: &str) -> Result<Self, NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong);
        }
        match heapless::String::try_from(name) {
            Ok(inline) => Ok(MemberName(Repr::Inline(inline))),
            Err(_) => Ok(MemberName(Repr::Heap(name.into()))),
        }
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline(s) => s.as_str(),
            Repr::Heap(s) => s,
        }
    }
}

impl PartialEq for MemberName {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}
impl Eq for MemberName {}
impl PartialOrd for MemberName {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for MemberName {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}
impl core::hash::Hash for MemberName {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialEq<str> for MemberName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl core::borrow::Borrow<str> for MemberName {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for MemberName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for MemberName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for MemberName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for MemberName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <alloc::string::String as serde::Deserialize>::deserialize(d)?;
        MemberName::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    #[test]
    fn short_and_long_names_behave_alike() {
        let short = MemberName::new("node-1").unwrap();
        let long = MemberName::new("a-rather-long-member-name-that-spills").unwrap();
        assert_eq!(short.as_str(), "node-1");
        assert_eq!(long.as_str(), "a-rather-long-member-name-that-spills");
        assert!(long < short);
        assert_eq!(MemberName::new(""), Err(NameError::Empty));
        let too_long: String = core::iter::repeat_n('x', MAX_NAME_LEN + 1).collect();
        assert_eq!(MemberName::new(&too_long), Err(NameError::TooLong));
        let max: String = core::iter::repeat_n('é', MAX_NAME_LEN / 2).collect();
        assert_eq!(MemberName::new(&max).unwrap().as_str(), max);
    }

    #[test]
    fn borrow_matches_order_of_str() {
        let mut names: alloc::vec::Vec<MemberName> =
            ["b", "a", "a-very-long-name-beyond-inline", "c"].iter().map(|s| MemberName::new(s).unwrap()).collect();
        names.sort();
        let strs: alloc::vec::Vec<&str> = names.iter().map(MemberName::as_str).collect();
        assert_eq!(strs, ["a", "a-very-long-name-beyond-inline", "b", "c"]);
    }
}
