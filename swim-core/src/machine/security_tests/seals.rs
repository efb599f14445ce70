//! Nonces, channels, senders and the run loop under sealed traffic.

use super::*;

/// Two members built with one seed (a copied configuration, a simulator
/// rerun) under one key share no nonce once each has its own prefix, and
/// neither repeats one of its own.
#[test]
pub(super) fn members_with_one_seed_and_their_own_prefixes_never_share_a_nonce() {
    let (mut a, mut b) = (node(), node());
    a.set_nonce_prefix([1; 12]);
    b.set_nonce_prefix([2; 12]);
    let ping = sealed(&[Message::Ping { seq: 1, target: "a" }]);
    let (na, nb) = (nonces(&run_alone(&mut a, 120_000, &ping)), nonces(&run_alone(&mut b, 120_000, &ping)));
    assert!(na.len() > 1000, "{} packets", na.len());
    let mut all = std::collections::BTreeSet::new();
    for n in na.iter().chain(&nb) {
        assert!(all.insert(*n), "nonce {n:02x?} used twice");
    }
}

/// Sealing draws nothing from the generator that orders probes: a sealed
/// member and a plain one built with one seed, given the same members,
/// probe and gossip the same members at the same times.
#[test]
pub(super) fn sealing_does_not_move_the_probe_generator() {
    let sealed_packet = sealed;
    let mut sealed = node();
    let mut plain = {
        let config = Config::lan().with_label(label());
        let mut p =
            Swim::new(config, Identity::new(MemberName::new("a").unwrap(), addr(1)), Rng64::seed_from_u64(1)).unwrap();
        for (name, i) in [("b", 2), ("c", 3)] {
            let alive = [Message::Alive { incarnation: 1, name, addr: addr(i), meta: b"" }];
            let mut out = p.handle_packet(at(0), addr(i), &close(envelope(label(), None), 1400, &alive)).unwrap();
            answer_checks(&mut p, at(0), &mut out, &mut envelope(label(), None));
        }
        p
    };
    let shape = |actions: Vec<Action>| -> Vec<(SocketAddr, Option<Instant>)> {
        actions
            .into_iter()
            .filter_map(|x| match x {
                Action::Send { to, .. } => Some((to, None)),
                Action::SetTimer(t) => Some((addr(0), Some(t))),
                _ => None,
            })
            .collect()
    };
    let ping = [Message::Ping { seq: 1, target: "a" }];
    let s = shape(run_alone(&mut sealed, 60_000, &sealed_packet(&ping)));
    let p = shape(run_alone(&mut plain, 60_000, &close(envelope(label(), None), 1400, &ping)));
    assert!(s.len() > 50, "{} actions", s.len());
    assert_eq!(s, p);
}

/// `packet` (sealed under `KEY` in cluster "prod") opened: its sender and
/// how many messages it holds.
pub(super) fn open_sent(packet: &[u8], channel: Channel) -> (Option<alloc::string::String>, usize) {
    let (mut e, mut scratch, mut msgs) = (envelope(label(), Some(KEY)), Vec::new(), crate::wire::Messages::new());
    let sender = e.decode(packet, MAX_FRAME, channel, &mut scratch, &mut msgs).unwrap().sender;
    (sender.map(alloc::string::String::from), msgs.len())
}

/// A sealed datagram replayed as a stream frame does not open, nor a
/// frame as a datagram: a captured ping is not answered on a stream, a
/// captured reliable message is not delivered again by datagram.
#[test]
pub(super) fn a_seal_opens_only_on_the_channel_it_was_made_for() {
    // "b" knows "a": its reliable message to "a" is one sealed frame.
    let mut b = {
        let config = Config::lan().with_label(label());
        let id = Identity::new(MemberName::new("b").unwrap(), addr(2));
        let mut b = Swim::new(config, id, Rng64::seed_from_u64(2)).unwrap();
        b.install_key(KEY).unwrap();
        let alive = [Message::Alive { incarnation: 1, name: "a", addr: addr(1), meta: b"" }];
        let mut out =
            b.handle_packet(at(0), addr(1), &close(envelope_of("a", label(), Some(KEY)), 1400, &alive)).unwrap();
        answer_checks(&mut b, at(0), &mut out, &mut envelope_of("a", label(), Some(KEY)));
        b
    };
    let mut out = Vec::new();
    b.handle(at(1), Input::Message { to: "a", payload: b"once", reliable: true }, &mut out).unwrap();
    let Some(frame) = out.iter().find_map(|x| if let Action::SendFrame { frame, .. } = x { Some(frame) } else { None })
    else {
        panic!("no frame: {out:?}")
    };
    assert_eq!(open_sent(frame, Channel::Frame), (Some("b".into()), 1));

    let mut a = node();
    let before = a.state_digest();
    let r = rejected_as(&mut a, at(10), addr(2), frame);
    assert_eq!(r, Some(DecodeError::Unauthenticated), "a frame replayed as a datagram");
    assert_eq!(a.state_digest(), before);

    // A ping sealed as a datagram, replayed on a stream.
    let ping = sealed(&[Message::Ping { seq: 9, target: "a" }]);
    let id = StreamId::Inbound(1);
    let mut out = Vec::new();
    a.handle(at(11), Input::StreamAccepted { id, from: addr(2) }, &mut out).unwrap();
    out.clear();
    let r = rejected_with(&mut a, at(12), Input::StreamFrame { id, frame: &ping }, &mut out);
    assert_eq!(r, Some(DecodeError::Unauthenticated), "a datagram replayed as a frame");
    assert!(!out.iter().any(|x| matches!(x, Action::SendFrame { .. })), "answered: {out:?}");
    assert!(out.iter().any(|x| matches!(x, Action::CloseStream { id: i } if *i == id)));
    assert_eq!(a.stats().rejected(DecodeError::Unauthenticated), 2);
}

/// One stream speaks for one member: a sealed frame naming another sender
/// than the stream's first sealed frame is rejected, counted, and closes
/// the stream.
#[test]
pub(super) fn a_sealed_frame_from_another_sender_than_the_streams_first_is_rejected() {
    let frame = |sender: &str, name: &'static str, i: u16| {
        let msgs =
            [Message::SyncRequest { join: false }, Message::Alive { incarnation: 1, name, addr: addr(i), meta: b"" }];
        let mut e = envelope_of(sender, label(), Some(KEY));
        let mut w = PacketWriter::with_layout(MAX_FRAME, Vec::new(), e.layout());
        for m in &msgs {
            w.push(m).unwrap();
        }
        e.close(w, Channel::Frame)
    };
    let id = StreamId::Inbound(1);
    let mut a = node();
    let mut out = Vec::new();
    a.handle(at(10), Input::StreamAccepted { id, from: addr(2) }, &mut out).unwrap();
    a.handle(at(11), Input::StreamFrame { id, frame: &frame("b", "d", 4) }, &mut out).unwrap();
    a.handle(at(12), Input::StreamFrame { id, frame: &frame("b", "e", 5) }, &mut out).unwrap();
    // d and e answer at their addresses and are admitted.
    answer_checks(&mut a, at(12), &mut out, &mut envelope(label(), Some(KEY)));
    assert_eq!(a.open_streams(), 1);
    out.clear();
    let r = rejected_with(&mut a, at(13), Input::StreamFrame { id, frame: &frame("c", "f", 6) }, &mut out);
    assert_eq!(r, Some(DecodeError::Sender));
    assert_eq!(a.stats().rejected(DecodeError::Sender), 1);
    assert!(out.iter().any(|x| matches!(x, Action::CloseStream { id: i } if *i == id)), "{out:?}");
    assert_eq!(a.open_streams(), 0);
    assert!(a.member("e").is_some());
    assert!(a.member("f").is_none(), "nothing of the rejected frame is applied");
}

/// A sealed datagram names its sender: one from a live member's address
/// that names another member is a stranger's (a bare ack, no relayed
/// probe), even though the address is a member's.
#[test]
pub(super) fn a_sealed_datagram_naming_another_sender_than_the_member_at_its_address_is_a_strangers() {
    // Padded, as members' pings are when they carry news: room for news
    // piggybacked on the ack.
    let ping = [Message::Ping { seq: 4, target: "a" }, Message::Padding { bytes: &[0; 200] }];
    let acks = |sender: &str| {
        let mut a = node();
        let out =
            a.handle_packet(at(10), addr(2), &close(envelope_of(sender, label(), Some(KEY)), 1400, &ping)).unwrap();
        let sent: Vec<_> = out
            .iter()
            .filter_map(|x| {
                if let Action::Send { to, packet } = x {
                    Some((*to, open_sent(packet, Channel::Datagram)))
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(sent.len(), 1, "one ack: {sent:?}");
        assert_eq!(sent[0].0, addr(2));
        assert_eq!(sent[0].1.0.as_deref(), Some("a"));
        sent[0].1.1
    };
    assert!(acks("b") > 1, "b, at its own address, gets news piggybacked");
    assert_eq!(acks("c"), 1, "a packet naming c from b's address gets a bare ack");

    let req = [Message::PingReq { seq: 5, target: "c", addr: addr(3) }, Message::Padding { bytes: &[0; 200] }];
    for (sender, relayed) in [("b", true), ("c", false)] {
        let mut a = node();
        let refused = a.stats().strangers_refused;
        let p = close(envelope_of(sender, label(), Some(KEY)), 1400, &req);
        let out = a.handle_packet(at(10), addr(2), &p).unwrap();
        let probed = out.iter().any(|x| matches!(x, Action::Send { to, .. } if *to == addr(3)));
        assert_eq!(probed, relayed, "ping-req sealed by {sender}: {out:?}");
        assert_eq!(a.stats().strangers_refused, refused + u64::from(!relayed));
    }
}

/// The budget holds a seal by a member with the longest name: its own
/// alive record, with the most metadata, still fits the datagram that
/// refutes a suspicion of it.
#[test]
pub(super) fn the_longest_name_with_the_most_metadata_fits_a_sealed_datagram() {
    let long = "n".repeat(crate::util::name::MAX_NAME_LEN);
    let config = Config::lan().with_label(label());
    assert_eq!(config.validate(), Ok(()));
    let mut id = Identity::new(MemberName::new(&long).unwrap(), addr(1));
    id.meta = alloc::vec![7; config.max_meta_len];
    let mut a = Swim::new(config, id, Rng64::seed_from_u64(1)).unwrap();
    a.install_key(KEY).unwrap();
    let alive = [Message::Alive { incarnation: 1, name: "b", addr: addr(2), meta: b"" }];
    let mut out = a.handle_packet(at(0), addr(2), &sealed(&alive)).unwrap();
    answer_checks(&mut a, at(0), &mut out, &mut envelope(label(), Some(KEY)));
    // Padded as a member pads its ping to a suspect: room for the ack and
    // the refutation.
    let accusation = [
        Message::Ping { seq: 1, target: &long },
        Message::Suspect { incarnation: 0, name: &long, from: "b" },
        Message::Padding { bytes: &[0; 1000] },
    ];
    let out = a.handle_packet(at(10), addr(2), &sealed(&accusation)).unwrap();
    let (mut e, mut scratch, mut msgs) = (envelope(label(), Some(KEY)), Vec::new(), crate::wire::Messages::new());
    let Some(Action::Send { packet, .. }) = out.iter().find(|x| matches!(x, Action::Send { .. })) else {
        panic!("no answer: {out:?}")
    };
    assert!(packet.len() <= 1400, "{}", packet.len());
    let sender = e.decode(packet, MAX_DATAGRAM, Channel::Datagram, &mut scratch, &mut msgs).unwrap().sender;
    assert_eq!(sender, Some(long.as_str()));
    assert!(msgs.iter().any(|m| matches!(m, Message::Alive { name, meta, .. } if *name == long && meta.len() == 512)));
}

/// The run loop of the README and the crate docs, as written there: `?`
/// on every call. Junk from the network must never stop it.
pub(super) fn readme_loop(
    swim: &mut Swim<Rng64>,
    now: Instant,
    from: SocketAddr,
    datagram: &[u8],
) -> Result<(), Error> {
    let mut out = Vec::new();
    swim.handle(now, Input::Packet { from, bytes: datagram }, &mut out)?;
    swim.handle(now, Input::Timeout, &mut out)?;
    for action in out.drain(..) {
        match action {
            Action::Send { packet, .. } => swim.recycle(packet),
            Action::SetTimer(_) | Action::Event(_) => {}
            _ => {}
        }
    }
    Ok(())
}

/// Every rejection reason, fed through the README's loop: each returns
/// `Ok`, is counted once under its reason, and (when asked for) reported
/// as an event naming its source. A reason added later without a case
/// here fails the test.
#[test]
pub(super) fn every_rejection_passes_through_the_readme_loop() {
    let plain_body = |body: &[u8]| {
        let mut v = Vec::new();
        crate::wire::frame::plain_packet(body, &mut v);
        v
    };
    let many: Vec<u8> = core::iter::repeat_n([2u8, 1], crate::wire::MAX_MESSAGES + 1).flatten().collect();
    let mut long_meta = alloc::vec![4, 1, 1, b'a', 0, 127, 0, 0, 1, 1, 0x81, 0x04];
    long_meta.extend_from_slice(&[0; 513]);
    let mut bad_sum = plain_body(&[2, 1]);
    if let Some(b) = bad_sum.last_mut() {
        *b ^= 1;
    }
    let version = crate::wire::VERSION;
    // To a member with no key and no label.
    let to_plain: Vec<(Vec<u8>, DecodeError)> = alloc::vec![
        (Vec::new(), DecodeError::Empty),
        (alloc::vec![version.wrapping_add(7), 0, 2, 1, 0, 0, 0, 0], DecodeError::Version),
        (alloc::vec![version; MAX_DATAGRAM + 1], DecodeError::Oversized),
        (alloc::vec![version], DecodeError::Truncated),
        (plain_body(&[99]), DecodeError::UnknownKind),
        (plain_body(&[2, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), DecodeError::Malformed),
        (plain_body(&[0, 1, 2, 0xff, 0xfe]), DecodeError::BadUtf8),
        (plain_body(&[0, 1, 0]), DecodeError::BadName),
        (plain_body(&long_meta), DecodeError::MetaTooLong),
        (plain_body(&many), DecodeError::TooManyMessages),
        (bad_sum, DecodeError::Checksum),
        (close(envelope(label(), None), 1400, &news()), DecodeError::Label),
        (close(envelope(Label::EMPTY, Some(KEY)), 1400, &news()), DecodeError::Sealed),
    ];
    // To "a", labelled and sealed.
    let to_sealed: Vec<(Vec<u8>, DecodeError)> = alloc::vec![
        (close(envelope(label(), None), 1400, &news()), DecodeError::Plaintext),
        (close(envelope(label(), Some(OTHER_KEY)), 1400, &news()), DecodeError::Unauthenticated),
    ];
    let config = Config::lan().with_report_rejections(true);
    let mut plain =
        Swim::new(config, Identity::new(MemberName::new("p").unwrap(), addr(1)), Rng64::seed_from_u64(3)).unwrap();
    let mut sealed_node = node();
    let mut seen = Vec::new();
    for (swim, cases) in [(&mut plain, to_plain), (&mut sealed_node, to_sealed)] {
        for (bytes, want) in cases {
            let before = swim.stats();
            let mut out = Vec::new();
            // The loop itself: it must not stop.
            readme_loop(swim, at(20), addr(9), &bytes).expect("junk never stops the loop");
            swim.handle(at(20), Input::Packet { from: addr(9), bytes: &bytes }, &mut out).unwrap();
            let after = swim.stats();
            assert_eq!(after.rejected(want), before.rejected(want) + 2, "{want:?}");
            assert_eq!(after.rejected_total(), before.rejected_total() + 2, "{want:?} counted under another reason");
            seen.push(want);
        }
    }
    // Reported as events by the member that asked for them, not by the other.
    let mut out = Vec::new();
    plain.handle(at(21), Input::Packet { from: addr(9), bytes: &[] }, &mut out).unwrap();
    let reported = out.iter().find_map(|a| match a {
        Action::Event(crate::Event::Rejected { from, stream, reason }) => Some((*from, *stream, *reason)),
        _ => None,
    });
    assert_eq!(reported, Some((addr(9), None, DecodeError::Empty)));
    out.clear();
    sealed_node.handle(at(21), Input::Packet { from: addr(9), bytes: &[] }, &mut out).unwrap();
    assert!(!out.iter().any(|a| matches!(a, Action::Event(_))), "{out:?}");
    // The one frame-only reason, through the same `?`.
    let frame = |sender: &str| {
        let msgs = [Message::SyncRequest { join: false }];
        let mut e = envelope_of(sender, label(), Some(KEY));
        let mut w = PacketWriter::with_layout(MAX_FRAME, Vec::new(), e.layout());
        for m in &msgs {
            w.push(m).unwrap();
        }
        e.close(w, Channel::Frame)
    };
    let stream = |a: &mut Swim<Rng64>| -> Result<(), Error> {
        let id = StreamId::Inbound(4);
        let mut out = Vec::new();
        a.handle(at(30), Input::StreamAccepted { id, from: addr(2) }, &mut out)?;
        a.handle(at(30), Input::StreamFrame { id, frame: &frame("b") }, &mut out)?;
        a.handle(at(31), Input::StreamFrame { id, frame: &frame("c") }, &mut out)?;
        Ok(())
    };
    stream(&mut sealed_node).expect("a frame from another sender is not an Err");
    assert_eq!(sealed_node.stats().rejected(DecodeError::Sender), 1);
    seen.push(DecodeError::Sender);
    seen.sort();
    assert_eq!(seen, DecodeError::ALL, "every reason has a case");
}
