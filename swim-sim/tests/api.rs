//! The simulator as a test API: typed errors, custom node types, faults
//! one link or one partition at a time, the invariant hook.

use core::cell::Cell;
use std::rc::Rc;

use lapswim_core::Datagram;
use lapswim_core::{Action, Config, Error, Event, Identity, Input, Instant, Machine, OwnedInput, Swim};
use lapswim_sim::net::{Command, Flow, NetConfig, NodeSpec, Sim, SimError, SimRng, Stopped, node_addr};
use lapswim_sim::scenario;
use lapswim_sim::views::Views;

#[test]
fn bad_node_indices_and_losses_are_typed_errors() {
    let mut sim = Sim::new(3, Config::lan(), NetConfig::default()).unwrap();
    assert_eq!(sim.schedule(0, Command::Crash(3)), Err(SimError::NoSuchNode(3)));
    assert_eq!(sim.schedule(0, Command::Join { node: 1, seeds: vec![7] }), Err(SimError::NoSuchNode(7)));
    assert_eq!(sim.schedule(0, Command::SetLoss(1.5)), Err(SimError::BadLoss(1.5)));
    assert!(matches!(sim.node(9), Err(SimError::NoSuchNode(9))));
    assert_eq!(sim.is_crashed(9), Err(SimError::NoSuchNode(9)));
    assert!(sim.schedule(0, Command::Crash(2)).is_ok());
}

/// An application's wrapper around `Swim`: counts what it sends.
struct Counting {
    swim: Swim<SimRng>,
    sent: Rc<Cell<u64>>,
}

impl Machine for Counting {
    fn handle(&mut self, now: Instant, input: Input<'_>, out: &mut Vec<Action>) -> Result<(), Error> {
        let before = out.len();
        let r = self.swim.handle(now, input, out);
        let sends = out[before..].iter().filter(|a| matches!(a, Action::Send { .. })).count();
        self.sent.set(self.sent.get() + sends as u64);
        r
    }
    fn recycle(&mut self, packet: Datagram) {
        self.swim.recycle(packet);
    }
}

#[test]
fn custom_node_types_run_in_the_simulator() {
    let sent = Rc::new(Cell::new(0));
    let counter = sent.clone();
    let factory = Box::new(move |spec: NodeSpec| {
        let swim = Swim::new(Config::lan(), Identity::new(spec.name, spec.addr), spec.rng)?;
        Ok(Counting { swim, sent: counter.clone() })
    });
    let mut sim = Sim::with_nodes(5, NetConfig::default(), factory).unwrap();
    for i in 1..5 {
        sim.schedule(0, Command::Join { node: i, seeds: vec![0] }).unwrap();
    }
    sim.run_until(20_000, &mut |_, _, _: &Event| Flow::Continue);
    assert_eq!(sent.get(), sim.stats().msgs_sent);
    assert!(sim.node(4).unwrap().swim.num_live() == 5);
}

#[test]
fn partitions_heal_one_at_a_time() {
    let (n, seed) = (6, 41);
    let mut sim = Sim::new(n, Config::lan(), NetConfig { seed, ..NetConfig::default() }).unwrap();
    let mut views = Views::new(n);
    for i in 1..n {
        sim.schedule(0, Command::Join { node: i, seeds: vec![0] }).unwrap();
    }
    assert!(scenario::converge(&mut sim, &mut views, 60_000));
    let t = sim.now();
    // Node 4 and node 5 are each cut off; only 4's cut heals in time.
    sim.schedule(t, Command::Partition { id: 4, from: vec![4], to: vec![0, 1, 2, 3, 5], both: true }).unwrap();
    sim.schedule(t, Command::Partition { id: 5, from: vec![5], to: vec![0, 1, 2, 3, 4], both: true }).unwrap();
    sim.schedule(t + 2_000, Command::HealPartition(4)).unwrap();
    scenario::observe(&mut sim, &mut views, t + 60_000);
    assert_eq!(views.get(0, 4), lapswim_sim::views::Belief::Alive);
    assert_eq!(views.get(0, 5), lapswim_sim::views::Belief::Dead);
}

#[test]
fn links_have_their_own_latency_and_loss_and_inputs_can_be_injected() {
    let mut sim = Sim::new(2, Config::lan(), NetConfig::default()).unwrap();
    sim.schedule(0, Command::SetLink { from: 1, to: 0, latency_ms: Some(40), loss: None }).unwrap();
    sim.schedule(0, Command::Join { node: 1, seeds: vec![0] }).unwrap();
    let mut joined_at = None;
    sim.run_until(5_000, &mut |t, node, e: &Event| {
        if node == 0 && matches!(e, Event::Joined { .. }) {
            joined_at.get_or_insert(t);
        }
        Flow::Continue
    });
    // The sync stream's handshake takes the slow link (40 ms), its answer
    // the fast one (1 ms), then its first frame the slow one again (81 ms);
    // node 0 then checks node 1 at its address before it admits it: a ping
    // over the fast link, the ack over the slow one.
    assert_eq!(joined_at, Some(122), "the join request took the slow link");
    // A lossy link drops everything one way; raw junk is injected as is.
    sim.schedule(5_000, Command::SetLink { from: 0, to: 1, latency_ms: None, loss: Some(1.0) }).unwrap();
    let junk = OwnedInput::Packet { from: node_addr(1), bytes: vec![0xff, 1, 2] };
    sim.schedule(5_000, Command::Input { node: 0, input: junk }).unwrap();
    sim.run_until(6_000, &mut |_, _, _: &Event| Flow::Continue);
    assert_eq!(sim.node(0).unwrap().stats().rejected_total(), 1);
    assert!(sim.stats().lost > 0);
}

#[test]
fn the_invariant_hook_stops_the_run_with_its_reason() {
    let mut sim = Sim::new(3, Config::lan(), NetConfig::default()).unwrap();
    sim.schedule(0, Command::Join { node: 1, seeds: vec![0] }).unwrap();
    sim.set_invariant(Box::new(|s: &Sim| {
        if s.node(0).map_err(|e| e.to_string())?.num_live() > 1 { Err("node 0 learnt a member".into()) } else { Ok(()) }
    }));
    let stopped = sim.run_until(10_000, &mut |_, _, _: &Event| Flow::Continue);
    assert_eq!(stopped, Stopped::Invariant);
    assert!(sim.violation().is_some_and(|v| v.ends_with("node 0 learnt a member")), "{:?}", sim.violation());
}

#[test]
fn owned_inputs_serialize_and_turn_back_into_inputs() {
    let bytes = vec![1, 2, 3];
    let inputs = [
        Input::Packet { from: node_addr(3), bytes: &bytes },
        Input::Timeout,
        Input::Join { seeds: &[node_addr(1), node_addr(2)] },
        Input::Leave,
    ];
    for input in inputs {
        let owned = OwnedInput::from(input);
        let json = serde_json::to_string(&owned).unwrap();
        let back: OwnedInput = serde_json::from_str(&json).unwrap();
        assert_eq!(back, owned, "{json}");
        assert_eq!(back.as_input(), input);
    }
}
