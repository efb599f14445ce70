//! Tags: structured metadata, string keys to string values, carried in a
//! member's metadata bytes with one encoding.
//!
//! Encoding (docs/protocol.md, "Tags"): the two bytes `0xF1 0x54`, then a
//! varint count, then each pair in ascending key order as varint length and
//! UTF-8 key, varint length and UTF-8 value (postcard's encoding of
//! strings). Metadata that does not decode this way, in full, holds no tags,
//! so raw metadata set with `Input::SetMeta` keeps working beside tags.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

/// The first two bytes of tag-encoded metadata.
const MAGIC: [u8; 2] = [0xF1, 0x54];

/// A member's tags: string keys to string values, in key order.
///
/// Set them with [`Input::SetTags`](crate::Input::SetTags); read anyone's
/// with [`MemberView::tags`](crate::MemberView::tags). They travel in the
/// member's metadata, so they share its limit
/// ([`Config::max_meta_len`](crate::Config::max_meta_len)) and spread as
/// an alive update, like any metadata change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct Tags(BTreeMap<String, String>);

impl Tags {
    /// No tags.
    pub fn new() -> Self {
        Tags(BTreeMap::new())
    }

    /// Sets `key` to `value`, returning the value it replaced.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Option<String> {
        self.0.insert(key.into(), value.into())
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.0.remove(key)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// The pairs, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many tags.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The metadata bytes that carry these tags.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&MAGIC);
        push_varint(&mut out, self.0.len());
        for (k, v) in &self.0 {
            push_varint(&mut out, k.len());
            out.extend_from_slice(k.as_bytes());
            push_varint(&mut out, v.len());
            out.extend_from_slice(v.as_bytes());
        }
        out
    }

    /// The length of [`Tags::encode`]'s output, without building it.
    pub fn encoded_len(&self) -> usize {
        let strings: usize =
            self.0.iter().map(|(k, v)| varint_len(k.len()) + k.len() + varint_len(v.len()) + v.len()).sum();
        MAGIC.len() + varint_len(self.0.len()) + strings
    }

    /// The tags carried by `meta`, or `None` when `meta` is not a whole
    /// tag encoding (keys out of order or repeated, bad UTF-8, bytes left
    /// over).
    pub fn decode(meta: &[u8]) -> Option<Tags> {
        let mut rest = meta.strip_prefix(&MAGIC)?;
        let count = take_varint(&mut rest)?;
        // Each pair takes at least two bytes: a count beyond that is a lie
        // that would only make us loop.
        if count > rest.len() / 2 {
            return None;
        }
        let mut map = BTreeMap::new();
        let mut last: Option<String> = None;
        for _ in 0..count {
            let k = take_str(&mut rest)?;
            let v = take_str(&mut rest)?;
            if last.as_deref().is_some_and(|l| l >= k) {
                return None;
            }
            last = Some(String::from(k));
            map.insert(String::from(k), String::from(v));
        }
        rest.is_empty().then_some(Tags(map))
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Tags {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Tags(iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

fn push_varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7F) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn take_varint(rest: &mut &[u8]) -> Option<usize> {
    let mut n: usize = 0;
    // Metadata is at most a few hundred bytes: three varint bytes cover
    // any length it can hold, and refusing more keeps the shift in range.
    for shift in [0u32, 7, 14] {
        let (&b, tail) = rest.split_first()?;
        *rest = tail;
        n |= usize::from(b & 0x7F) << shift;
        if b & 0x80 == 0 {
            return Some(n);
        }
    }
    None
}

fn take_str<'a>(rest: &mut &'a [u8]) -> Option<&'a str> {
    let len = take_varint(rest)?;
    let (s, tail) = (rest.get(..len)?, rest.get(len..)?);
    *rest = tail;
    core::str::from_utf8(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_know_their_length() {
        let tags: Tags =
            [("role", "web"), ("dc", "eu-1"), ("", ""), ("long", &"x".repeat(300)[..])].into_iter().collect();
        let bytes = tags.encode();
        assert_eq!(bytes.len(), tags.encoded_len());
        assert_eq!(Tags::decode(&bytes), Some(tags));
        assert_eq!(Tags::decode(&Tags::new().encode()), Some(Tags::new()));
        assert_eq!(Tags::new().encode(), [0xF1, 0x54, 0]);
    }

    #[test]
    fn anything_else_holds_no_tags() {
        let good = [("a", "1"), ("b", "2")].into_iter().collect::<Tags>().encode();
        assert_eq!(Tags::decode(b"rack=a"), None);
        assert_eq!(Tags::decode(b""), None);
        for cut in 0..good.len() {
            assert_eq!(Tags::decode(&good[..cut]), None, "cut at {cut}");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert_eq!(Tags::decode(&longer), None);
        // Keys out of order, repeated, or not UTF-8.
        assert_eq!(Tags::decode(&[0xF1, 0x54, 2, 1, b'b', 0, 1, b'a', 0]), None);
        assert_eq!(Tags::decode(&[0xF1, 0x54, 2, 1, b'a', 0, 1, b'a', 0]), None);
        assert_eq!(Tags::decode(&[0xF1, 0x54, 1, 1, 0xFF, 0]), None);
        assert_eq!(Tags::decode(&[0xF1, 0x54, 0xFF, 0xFF, 0xFF, 0xFF]), None);
    }
}
