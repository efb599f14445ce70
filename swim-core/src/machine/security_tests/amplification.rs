//! No datagram draws more than it holds, from anyone.

use super::*;

/// The amplification bound: whatever a stranger sends (with a forged
/// source address), the bytes the node sends because of it, to anyone,
/// are no more than the bytes it received.
#[test]
pub(super) fn strangers_with_forged_sources_never_draw_more_bytes_than_they_send() {
    let mut a = {
        let id = Identity::new(MemberName::new("a").unwrap(), addr(1));
        Swim::new(Config::lan(), id, Rng64::seed_from_u64(1)).unwrap()
    };
    // A cluster with a long queue of news to piggyback, and long metadata
    // on our own alive (what a refutation would carry).
    let names: Vec<_> = (0..40).map(|i| alloc::format!("member-with-a-long-name-{i:03}")).collect();
    for (i, n) in names.iter().enumerate() {
        let p = close(
            envelope(Label::EMPTY, None),
            1400,
            &[Message::Alive { incarnation: 1, name: n, addr: addr(100 + i as u16), meta: &[1; 64] }],
        );
        let mut out = a.handle_packet(at(0), addr(100 + i as u16), &p).unwrap();
        answer_checks(&mut a, at(0), &mut out, &mut envelope(Label::EMPTY, None));
    }
    a.handle(at(0), Input::SetMeta { meta: &[0xaa; 400] }, &mut Vec::new()).unwrap();
    let victim = SocketAddr::from(([192, 0, 2, 1], 53));
    let target = names[0].as_str();
    let probes: Vec<Vec<Message<'_>>> = alloc::vec![
        alloc::vec![Message::Ping { seq: 1, target: "a" }],
        alloc::vec![Message::Ping { seq: 2, target: "a" }, Message::Suspect { incarnation: 0, name: "a", from: "zz" }],
        alloc::vec![Message::PingReq { seq: 3, target, addr: addr(100) }],
        alloc::vec![Message::PingReq { seq: 4, target: "a", addr: addr(1) }],
        alloc::vec![Message::PingReq { seq: 5, target, addr: victim }],
        alloc::vec![Message::Query { name: "a" }],
        alloc::vec![Message::Query { name: target }],
        alloc::vec![Message::SyncRequest { join: true }],
        alloc::vec![Message::Direct { from: "zz", payload: b"hi" }],
        alloc::vec![Message::User { ltime: 1, from: "zz", name: "n", payload: b"hi", coalesce: false }],
    ];
    let (mut received, mut sent) = (0usize, 0usize);
    let mut t = 1;
    for round in 0..50u16 {
        for msgs in &probes {
            let p = close(envelope(Label::EMPTY, None), 1400, msgs);
            let from = SocketAddr::from(([198, 51, 100, (round % 250) as u8], 4000 + round));
            received += p.len();
            let mut out = Vec::new();
            let _ = a.handle(at(t), Input::Packet { from, bytes: &p }, &mut out);
            // Answers that come later (a relay's nack) are counted too: wake
            // the node within the same protocol period.
            let _ = a.handle(at(t + 1), Input::Timeout, &mut out);
            t += 2;
            for act in out {
                if let Action::Send { to, packet } = act {
                    // Probes of our own members follow the protocol's clock,
                    // not the stranger: count only what went elsewhere or
                    // was an answer.
                    if !names.iter().enumerate().any(|(i, _)| to == addr(100 + i as u16)) {
                        sent += packet.len();
                    }
                }
            }
        }
    }
    std::println!("strangers sent {received} bytes and drew {sent}");
    assert!(sent <= received, "sent {sent} bytes for {received} received from strangers");
    assert!(a.stats().strangers_refused >= 150);
    assert_eq!(a.stats().relays, 0, "no probe on a stranger's behalf");
}

/// Every message kind that draws an answer or other work, many to a
/// datagram, from a stranger and from a forged member address, with and
/// without a long label, a key and long metadata: no datagram makes the
/// node send more bytes, to anyone, than the datagram held, and one
/// request in a datagram is answered.
#[test]
pub(super) fn no_datagram_draws_more_bytes_than_it_holds() {
    // The longest label the default budget takes beside a sealed envelope.
    let long = "l".repeat(64);
    let names: Vec<_> = (0..40).map(|i| alloc::format!("member-with-a-long-name-{i:03}")).collect();
    let fresh: Vec<_> = (0..128).map(|i| alloc::format!("n{i}")).collect();
    let victim = SocketAddr::from(([192, 0, 2, 1], 53));
    let mut worst = 0.0f64;
    for (labelled, keyed, meta_len) in
        [(false, false, 0), (true, false, 0), (false, false, 512), (true, true, 512), (false, true, 0)]
    {
        let lab = if labelled { Label::new(&long).unwrap() } else { Label::EMPTY };
        // The member at addr(101) sends what comes from its address, so a
        // sealed datagram from there names it.
        let mut e = envelope_of(&names[1], lab.clone(), keyed.then_some(KEY));
        let config = Config::lan().with_label(lab);
        let id = Identity::new(MemberName::new("a").unwrap(), addr(1));
        let mut a = Swim::new(config, id, Rng64::seed_from_u64(1)).unwrap();
        if keyed {
            a.install_key(KEY).unwrap();
        }
        let meta = alloc::vec![7u8; meta_len];
        for (i, n) in names.iter().enumerate() {
            let at_ = addr(100 + i as u16);
            let mut w = PacketWriter::with_layout(1400, Vec::new(), e.layout());
            w.push(&Message::Alive { incarnation: 1, name: n, addr: at_, meta: &meta }).unwrap();
            let p = e.close(w, Channel::Datagram);
            let mut out = a.handle_packet(at(0), at_, &p).unwrap();
            answer_checks(&mut a, at(0), &mut out, &mut e);
        }
        assert_eq!(a.num_live(), 41);
        // Our own alive with long metadata is queued as news, like the
        // members' alives: every answer could piggyback them.
        a.handle(at(0), Input::SetMeta { meta: &meta }, &mut Vec::new()).unwrap();
        let target = names[0].as_str();
        let many = |m: Message<'static>| alloc::vec![m; 128];
        let questions = |origin| -> Vec<Message<'_>> {
            (0..128)
                .map(|ltime| Message::Question {
                    ltime,
                    origin,
                    addr: victim,
                    name: "q",
                    payload: b"",
                    filter: b"",
                    ack: true,
                    relay_factor: 5,
                    timeout_ms: 1000,
                })
                .collect()
        };
        let kinds: Vec<Vec<Message<'_>>> = alloc::vec![
            (0..128).map(|seq| Message::Ping { seq, target: "a" }).collect(),
            alloc::vec![
                Message::Ping { seq: 1, target: "a" },
                Message::Suspect { incarnation: 0, name: "a", from: "zz" }
            ],
            (0..128).map(|seq| Message::PingReq { seq, target, addr: addr(100) }).collect(),
            (0..128).map(|seq| Message::PingReq { seq, target: "a", addr: addr(1) }).collect(),
            (0..128).map(|seq| Message::PingReq { seq, target, addr: victim }).collect(),
            names.iter().map(|n| Message::Query { name: n }).collect(),
            many(Message::Query { name: "a" }),
            names.iter().map(|n| Message::Dead { incarnation: 1, name: n, from: "zz" }).collect(),
            fresh.iter().map(|n| Message::Alive { incarnation: 0, name: n, addr: victim, meta: b"" }).collect(),
            fresh
                .iter()
                .enumerate()
                .map(|(i, n)| Message::Alive {
                    incarnation: 0,
                    name: n,
                    addr: SocketAddr::from(([192, 0, 2, i as u8], 53)),
                    meta: b"",
                })
                .collect(),
            names.iter().map(|n| Message::Alive { incarnation: 9, name: n, addr: victim, meta: b"" }).collect(),
            many(Message::SyncRequest { join: true }),
            many(Message::Direct { from: "zz", payload: b"hi" }),
            // Answers to relay, to a member's address and to a victim's.
            many(Message::Response { ltime: 1, from: "zz", ack: false, payload: b"answer", relay: Some(addr(102)) }),
            many(Message::Response { ltime: 1, from: "zz", ack: true, payload: b"", relay: Some(victim) }),
            // Queries whose answers would go to a victim, or to a member
            // that is not at the address they give.
            questions("zz"),
            questions(target),
        ];
        let sources = [SocketAddr::from(([198, 51, 100, 7], 4000)), addr(101)];
        let mut t = 10;
        for msgs in &kinds {
            for from in sources {
                // As many of the messages as fit one datagram.
                let mut w = PacketWriter::with_layout(crate::wire::MAX_DATAGRAM, Vec::new(), e.layout());
                for m in msgs {
                    if w.push(m).is_err() {
                        break;
                    }
                }
                let p = e.close(w, Channel::Datagram);
                let mut out = Vec::new();
                let _ = a.handle(at(t), Input::Packet { from, bytes: &p }, &mut out);
                t += 1;
                let drawn: usize =
                    out.iter().map(|x| if let Action::Send { packet, .. } = x { packet.len() } else { 0 }).sum();
                let answers = out.iter().filter(|x| matches!(x, Action::Send { to, .. } if *to == from)).count();
                assert!(
                    drawn <= p.len(),
                    "{} bytes drew {drawn} (label {labelled}, key {keyed}, meta {meta_len}, from {from}): {:?}",
                    p.len(),
                    msgs.first()
                );
                assert!(answers <= 1, "{answers} answers to one datagram: {:?}", msgs.first());
                worst = worst.max(drawn as f64 / p.len() as f64);
            }
        }
        assert!(a.stats().surplus_requests > 0);
    }
    std::println!("the most a datagram drew: {worst:.2} of its own bytes");
}

/// Everything `a` does over `ms`, given `ping` from "b" every 10 ms
/// (nothing else answers).
pub(super) fn run_alone(a: &mut Swim<Rng64>, ms: u64, ping: &[u8]) -> Vec<Action> {
    let mut all = Vec::new();
    for t in (1..ms).step_by(10) {
        if a.deadline().is_some_and(|d| d <= at(t)) {
            all.extend(a.handle_timeout(at(t)));
        }
        all.extend(a.handle_packet(at(t), addr(2), ping).unwrap());
    }
    all
}

/// The nonce of a sealed datagram of cluster "prod".
pub(super) fn nonce(packet: &[u8]) -> [u8; 12] {
    let head = 2 + 1 + label().as_bytes().len();
    packet[head..head + 12].try_into().unwrap()
}

pub(super) fn nonces(actions: &[Action]) -> Vec<[u8; 12]> {
    actions
        .iter()
        .filter_map(|x| if let Action::Send { packet, .. } = x { Some(nonce(packet)) } else { None })
        .collect()
}
