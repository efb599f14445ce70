//! Query filters on the wire, and whether one selects us.
//!
//! Encoding (docs/protocol.md): empty for "every member"; otherwise the
//! postcard encoding of the node names (a sequence of strings) followed by
//! the tag pairs (a sequence of pairs of strings).

use alloc::string::String;
use alloc::vec::Vec;

use regex_automata::meta::Regex;

use crate::api::{QueryFilter, Tags};
use crate::util::name::MemberName;

/// The largest compiled tag expression, in bytes of automaton: a hostile
/// pattern is refused rather than let grow without bound.
const MAX_REGEX_SIZE: usize = 256 * 1024;

/// A filter's wire bytes.
pub(crate) fn encode(filter: &QueryFilter) -> Vec<u8> {
    let nodes: Vec<&str> = filter.nodes.iter().map(MemberName::as_str).collect();
    let tags: Vec<(&str, &str)> = filter.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    encode_parts(&nodes, &tags)
}

/// The wire bytes of a filter on these names and tag expressions (no
/// name: any member; no tag: any tags).
pub(crate) fn encode_parts(nodes: &[&str], tags: &[(&str, &str)]) -> Vec<u8> {
    if nodes.is_empty() && tags.is_empty() {
        return Vec::new();
    }
    postcard::to_allocvec(&(nodes, tags)).unwrap_or_default()
}

/// A filter's parts as the wire has them: the names, then each tag with
/// its expression.
pub(crate) type Parts<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>);

/// A filter's names and tag expressions, not compiled; `None` when the
/// bytes do not decode.
pub(crate) fn decode_parts(bytes: &[u8]) -> Option<Parts<'_>> {
    if bytes.is_empty() {
        return Some((Vec::new(), Vec::new()));
    }
    postcard::from_bytes(bytes).ok()
}

/// A decoded filter, its expressions compiled.
#[derive(Debug)]
pub(crate) struct Filter {
    nodes: Vec<String>,
    tags: Vec<(String, Regex)>,
}

impl Filter {
    /// The filter in `bytes`; `None` when they do not decode or an
    /// expression does not compile (within its size limit).
    pub(crate) fn decode(bytes: &[u8]) -> Option<Filter> {
        if bytes.is_empty() {
            return Some(Filter { nodes: Vec::new(), tags: Vec::new() });
        }
        let (nodes, tags): (Vec<String>, Vec<(String, String)>) = postcard::from_bytes(bytes).ok()?;
        let tags = tags.into_iter().map(|(k, re)| Some((k, compile(&re)?))).collect::<Option<Vec<_>>>()?;
        Some(Filter { nodes, tags })
    }

    /// Whether the member `me` with metadata `meta` is selected (its tags
    /// are decoded only when the filter asks about tags).
    pub(crate) fn selects(&self, me: &str, meta: &[u8]) -> bool {
        if !self.nodes.is_empty() && !self.nodes.iter().any(|n| n == me) {
            return false;
        }
        if self.tags.is_empty() {
            return true;
        }
        let tags = Tags::decode(meta).unwrap_or_default();
        self.tags.iter().all(|(k, re)| re.is_match(tags.get(k).unwrap_or("")))
    }
}

/// Checks a filter the application gave: every expression compiles.
pub(crate) fn check(filter: &QueryFilter) -> bool {
    filter.tags.iter().all(|(_, re)| compile(re).is_some())
}

fn compile(pattern: &str) -> Option<Regex> {
    let config = Regex::config().nfa_size_limit(Some(MAX_REGEX_SIZE)).onepass_size_limit(Some(MAX_REGEX_SIZE));
    Regex::builder().configure(config).build(pattern).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> MemberName {
        MemberName::new(s).unwrap()
    }

    #[test]
    fn filters_round_trip_and_select() {
        let web = [("role", "web"), ("dc", "eu-1")].into_iter().collect::<Tags>().encode();
        let db = [("role", "db")].into_iter().collect::<Tags>().encode();
        assert!(encode(&QueryFilter::all()).is_empty());
        let all = Filter::decode(&[]).unwrap();
        assert!(all.selects("a", &db));

        let f = Filter::decode(&encode(&QueryFilter::all().tag("role", "^we"))).unwrap();
        assert!(f.selects("a", &web));
        assert!(!f.selects("a", &db));
        let f = Filter::decode(&encode(&QueryFilter::all().tag("dc", "eu"))).unwrap();
        assert!(!f.selects("a", &db), "a missing tag is matched as empty");
        let f = Filter::decode(&encode(&QueryFilter::all().node(name("a")).node(name("b")).tag("role", "db"))).unwrap();
        assert!(f.selects("b", &db));
        assert!(!f.selects("c", &db));
        assert!(!f.selects("a", &web));
    }

    #[test]
    fn bad_filters_are_refused() {
        assert!(!check(&QueryFilter::all().tag("role", "(")));
        assert!(Filter::decode(&encode(&QueryFilter::all().tag("role", "("))).is_none());
        assert!(Filter::decode(&[0xFF, 0xFF]).is_none());
        // An expression whose automaton would be huge.
        assert!(!check(&QueryFilter::all().tag("k", r"\w{1000}{1000}")));
    }
}
