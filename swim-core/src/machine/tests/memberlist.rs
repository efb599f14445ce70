//! Datagrams in memberlist's format (`Config::memberlist_wire`): what real
//! memberlist 0.2.2 nodes sent (recorded under `tests/data/memberlist/`)
//! is taken, answered in memberlist's format, and a cluster of ours that
//! speaks it still detects a crash.

use super::incarnations::{all_alive, failed_events, mesh_of};
use super::*;
use crate::wire::memberlist::Limits;
use crate::wire::memberlist::message::Message as Ml;
use crate::wire::memberlist::packet::Unpacked;
use alloc::collections::BTreeSet;

pub(super) fn recording(path: &str) -> Vec<u8> {
    let full = alloc::format!("{}/tests/data/memberlist/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// The recorded datagrams: file, sender, receiver, key (hex, or `-`).
fn datagrams() -> Vec<(String, String, String, String)> {
    let manifest = String::from_utf8(recording("manifest.txt")).unwrap();
    manifest
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (Some("file"), Some(path), Some("datagram"), Some(key)) = (f.next(), f.next(), f.next(), f.next())
            else {
                return None;
            };
            // `.../NNN-dgram-FROM-TO.bin`
            let stem = path.rsplit('/').next()?.strip_suffix(".bin")?;
            let mut parts = stem.rsplitn(3, '-');
            let (to, from) = (parts.next()?.to_string(), parts.next()?.to_string());
            Some((path.to_string(), from, to, key.trim_start_matches("key=").to_string()))
        })
        .collect()
}

/// Node `name` speaking memberlist's datagrams.
pub(super) fn ml_node(name: &str, i: u16) -> Swim<Rng64> {
    let id = Identity::new(MemberName::new(name).unwrap(), addr(i));
    Swim::new(Config::lan().with_memberlist_wire(true), id, Rng64::seed_from_u64(u64::from(i))).unwrap()
}

/// Every message of a plain memberlist datagram, as owned debug strings
/// and the pings' and acks' sequence numbers.
fn ml_messages(packet: &[u8]) -> Vec<(u8, u32, String)> {
    let unpacked = Unpacked::parse(packet, &Limits::PACKET).expect("a memberlist datagram");
    unpacked
        .messages()
        .map(|m| {
            let m = m.expect("a message memberlist decodes");
            let seq = match &m {
                Ml::Ping(p) => p.seq_no,
                Ml::Ack(a) => a.seq_no,
                _ => 0,
            };
            (m.message_type() as u8, seq, alloc::format!("{m:?}"))
        })
        .collect()
}

use crate::wire::memberlist::message::MessageType;

const PING: u8 = MessageType::Ping as u8;
const ACK: u8 = MessageType::AckResp as u8;
const ALIVE: u8 = MessageType::Alive as u8;

#[test]
fn a_recorded_memberlist_ping_is_answered_with_an_ack_memberlist_reads() {
    // n3 pings n4 with its own alive beside it.
    let go = recording("plain/007-dgram-n3-n4.bin");
    let seq = ml_messages(&go).iter().find(|m| m.0 == PING).expect("the recording holds a ping").1;
    let mut n4 = ml_node("n4", 4);
    // From where n3's alive says it lives.
    let unpacked = Unpacked::parse(&go, &Limits::PACKET).unwrap();
    let from = unpacked
        .messages()
        .find_map(|m| match m {
            Ok(Ml::Alive(a)) => {
                let ip = crate::wire::memberlist::gossip::ip_from_wire(a.addr?)?;
                Some(SocketAddr::new(ip, a.port))
            }
            _ => None,
        })
        .expect("n3's alive");
    let out = n4.handle_packet(at(1), from, &go).unwrap();
    let answers: Vec<Vec<(u8, u32, String)>> =
        sent(&out).into_iter().filter(|(to, _)| *to == from).map(|(_, p)| ml_messages(&p)).collect();
    assert!(answers.iter().flatten().any(|m| m.0 == ACK && m.1 == seq), "an ack of seq {seq}: {answers:?}");
    // Whatever else it sent (the check of the stranger's alive) is in
    // memberlist's format too.
    let mut all = out.clone();
    all.extend(run(&mut n4, 2, 3_000));
    for (_, p) in sent(&all) {
        assert!(!ml_messages(&p).is_empty());
    }
}

#[test]
fn every_recorded_plain_memberlist_datagram_is_taken_without_a_rejection() {
    let mut taken = 0;
    for (path, from, to, key) in datagrams() {
        if key != "-" {
            continue;
        }
        let mut node = ml_node(&to, 9);
        let sender = SocketAddr::from(([127, 0, 0, 1], 7946));
        let bytes = recording(&path);
        assert_eq!(rejected_as(&mut node, at(1), sender, &bytes), None, "{path} from {from}");
        taken += 1;
    }
    assert!(taken >= 15, "{taken} recordings");
}

#[test]
fn junk_in_memberlist_format_is_rejected_with_a_typed_error_and_changes_nothing() {
    use crate::wire::DecodeError;
    let go = recording("plain/007-dgram-n3-n4.bin");
    let mut node = ml_node("n4", 4);
    let before = node.state_digest();
    // Cut short at every length, an unknown type byte, a compound whose
    // first part is a bad string.
    for cut in 1..go.len() {
        let r = rejected_as(&mut node, at(1), addr(3), &go[..cut]);
        assert!(r.is_some(), "a datagram cut at {cut} of {} was taken", go.len());
    }
    assert_eq!(rejected_as(&mut node, at(1), addr(3), &[200, 1, 2]), Some(DecodeError::UnknownKind));
    assert_eq!(rejected_as(&mut node, at(1), addr(3), &[]), Some(DecodeError::Empty));
    assert_eq!(node.state_digest(), before);
    assert!(node.member("n3").is_none());
}

#[test]
fn what_we_send_in_memberlist_format_decodes_as_memberlist_and_announces_its_versions() {
    let mesh = mesh_of(&Config::lan().with_memberlist_wire(true), &["a", "b", "c"], 5_000);
    assert!(all_alive(&mesh));
    let mut kinds = BTreeSet::new();
    for (_, a) in &mesh.actions {
        if let Action::Send { packet, .. } = a {
            for (kind, _, text) in ml_messages(packet) {
                if kind == ALIVE {
                    assert!(text.contains("vsn: Some([1, 5, 2, 0, 0, 0])"), "{text}");
                }
                kinds.insert(kind);
            }
        }
    }
    assert!(kinds.contains(&PING) && kinds.contains(&ACK) && kinds.contains(&ALIVE), "{kinds:?}");
}

#[test]
fn members_speaking_memberlist_format_detect_a_crash() {
    let mut mesh = mesh_of(&Config::lan().with_memberlist_wire(true), &["a", "b", "c"], 5_000);
    assert!(all_alive(&mesh));
    mesh.cut = |i, j| i == 2 || j == 2;
    mesh.run(5_001, 30_000);
    let failed: BTreeSet<usize> = mesh
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Failed { name, .. } if name.as_str() == "c"))
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(failed, BTreeSet::from([0, 1]), "{} failures", failed_events(&mesh, "c"));
}

#[cfg(feature = "encryption")]
mod sealed {
    use super::*;
    use crate::wire::keyring::Key;
    use crate::wire::memberlist::encrypt::{Cipher, open_packet};

    fn key(hex: &str) -> Key {
        let bytes: Vec<u8> =
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        Key::from_slice(&bytes).expect("a 32-byte key")
    }

    #[test]
    fn a_sealed_memberlist_ping_is_answered_sealed_and_a_wrong_key_is_refused() {
        let (path, _, to, hex) = datagrams()
            .into_iter()
            .find(|(p, _, _, k)| p.starts_with("aes1/") && k.len() == 64 && p.contains("076"))
            .expect("a sealed recording with a 32-byte key");
        let go = recording(&path);
        let key = key(&hex);
        let mut node = ml_node(&to, 4);
        node.install_key(key).unwrap();
        let out = node.handle_packet(at(1), addr(3), &go).unwrap();
        let cipher = [Cipher::new(key.as_bytes()).unwrap()];
        let acks = sent(&out)
            .into_iter()
            .filter(|(to, _)| *to == addr(3))
            .flat_map(|(_, p)| ml_messages(&open_packet(&cipher, &p).expect("sealed with our key")))
            .filter(|m| m.0 == ACK)
            .count();
        assert_eq!(acks, 1);

        let mut other = ml_node(&to, 4);
        other.install_key(Key::new([9; 32])).unwrap();
        let before = other.state_digest();
        assert_eq!(rejected_as(&mut other, at(1), addr(3), &go), Some(crate::wire::DecodeError::Unauthenticated));
        assert_eq!(other.state_digest(), before);
    }
}

#[test]
fn a_best_effort_message_travels_as_a_memberlist_user_message_and_names_its_sender() {
    let mut mesh = mesh_of(&Config::lan().with_memberlist_wire(true), &["a", "b"], 5_000);
    assert!(all_alive(&mesh));
    let before = mesh.actions.len();
    mesh.input(0, 5_001, Input::Message { to: "b", payload: b"hi", reliable: false }).unwrap();
    let users = mesh.actions[before..]
        .iter()
        .filter_map(|(_, a)| if let Action::Send { packet, .. } = a { Some(ml_messages(packet)) } else { None })
        .flatten()
        .filter(|m| m.0 == MessageType::User as u8)
        .count();
    assert_eq!(users, 1, "one memberlist user message");
    let from_a = Event::Message { from: MemberName::new("a").unwrap(), payload: b"hi".to_vec(), reliable: false };
    assert!(mesh.events_of(1).any(|e| *e == from_a), "b took it as a's");
    // The same from a stranger's address is nobody's, and dropped.
    let mut b = ml_node("b", 2);
    let out = b.handle_packet(at(1), addr(9), &[8, b'h', b'i']).unwrap();
    assert!(events(&out).is_empty());
}
