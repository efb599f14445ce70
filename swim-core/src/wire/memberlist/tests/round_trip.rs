//! Round trips of every message type over generated values, and
//! truncation of every valid vector at every offset.

use alloc::vec::Vec;

use proptest::prelude::*;

use super::vectors;
use crate::wire::memberlist::gossip::{Alive, Dead, Suspect};
use crate::wire::memberlist::message::Message;
use crate::wire::memberlist::probe::{Ack, IndirectPing, Nack, Ping};

/// Checks that `msg` survives encoding and decoding unchanged.
fn round_trip(msg: &Message<'_>) {
    let mut out = Vec::new();
    msg.encode(&mut out).unwrap();
    assert_eq!(out.first(), Some(&(msg.message_type() as u8)));
    assert_eq!(&Message::decode(&out).unwrap(), msg);
}

/// Every strict prefix of a struct message must fail to decode: a map
/// promises its entries, so no prefix is itself valid.
fn every_prefix_fails(bytes: &[u8]) {
    for cut in 0..bytes.len() {
        let prefix = bytes.get(..cut).unwrap();
        assert!(Message::decode(prefix).is_err(), "prefix of {cut} bytes of {bytes:x?} decoded");
    }
}

#[test]
fn truncation_at_every_offset_is_an_error() {
    for bytes in [
        vectors::ping_plain(),
        vectors::ping_with_source(),
        vectors::indirect_ping(),
        vectors::ack_nil_payload(),
        vectors::nack(),
        vectors::suspect(),
        vectors::alive(),
        vectors::dead(),
    ] {
        every_prefix_fails(&bytes);
    }
}

fn name() -> impl Strategy<Value = alloc::string::String> {
    // Names past 31 bytes exercise raw16.
    proptest::string::string_regex("[a-z0-9.-]{0,40}").unwrap()
}

fn blob() -> impl Strategy<Value = Option<Vec<u8>>> {
    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..70))
}

proptest! {
    #[test]
    fn probes_round_trip(
        seq_no in any::<u32>(),
        port in any::<u16>(),
        node in name(),
        source_node in name(),
        addr in blob(),
        source_addr in proptest::collection::vec(any::<u8>(), 0..17),
        nack in any::<bool>(),
    ) {
        let ping = Ping { seq_no, node: &node, source_addr: &source_addr, source_port: port, source_node: &source_node };
        round_trip(&Message::Ping(ping));
        let req = IndirectPing {
            seq_no,
            target: addr.as_deref(),
            port,
            node: &node,
            nack,
            source_addr: &source_addr,
            source_port: port,
            source_node: &source_node,
        };
        round_trip(&Message::IndirectPing(req));
        round_trip(&Message::Ack(Ack { seq_no, payload: addr.as_deref() }));
        round_trip(&Message::Nack(Nack { seq_no }));
    }

    #[test]
    fn gossip_round_trips(
        incarnation in any::<u32>(),
        port in any::<u16>(),
        node in name(),
        from in name(),
        addr in blob(),
        meta in blob(),
        vsn in blob(),
    ) {
        round_trip(&Message::Suspect(Suspect { incarnation, node: &node, from: &from }));
        round_trip(&Message::Dead(Dead { incarnation, node: &node, from: &from }));
        let alive = Alive {
            incarnation,
            node: &node,
            addr: addr.as_deref(),
            port,
            meta: meta.as_deref(),
            vsn: vsn.as_deref(),
        };
        round_trip(&Message::Alive(alive));
        round_trip(&Message::User(meta.as_deref().unwrap_or_default()));
    }
}
