use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec;
use core::net::SocketAddr;
use std::sync::Mutex;

use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus as Rng64;

use super::*;
use crate::MemberName;
use crate::api::Driver;
use crate::trace::reader::TraceReader;
use crate::trace::replay::Keep;
use crate::trace::writer::to_bytes;

fn addr(i: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], 7000 + i))
}

/// A key whose bytes all differ, so that no stretch of it turns up in
/// a trace by chance.
fn key() -> Key {
    Key::new(core::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11)))
}

/// The trace of a sealed member's first seconds: keys installed and
/// made primary through the driver, a join, wake-ups.
fn recorded() -> Vec<u8> {
    let bytes = Arc::new(Mutex::new(Vec::new()));
    let sink = {
        let bytes = bytes.clone();
        move |b: &[u8]| bytes.lock().unwrap().extend_from_slice(b)
    };
    let id = Identity::new(MemberName::new("a").unwrap(), addr(1));
    let mut swim = Swim::new(Config::lan(), id, Rng64::seed_from_u64(5)).unwrap();
    swim.set_nonce_prefix([9; 12]);
    let mut driver = Driver::new();
    driver.record(TraceWriter::new(&TraceHeader::of(5, &swim), Box::new(sink)));
    let mut io = Keep(Vec::new());
    let other = Key::new([0xee; 32]);
    for op in [KeyringOp::Install(key()), KeyringOp::Install(other), KeyringOp::Use(other), KeyringOp::Use(key())] {
        driver.handle(&mut swim, Instant::ZERO, Input::Keyring(op), &mut io).unwrap();
    }
    driver.handle(&mut swim, Instant::ZERO, Input::Join { seeds: &[addr(2)] }, &mut io).unwrap();
    for t in (100..5000).step_by(100) {
        let _ = driver.handle(&mut swim, Instant::from_millis(t), Input::Timeout, &mut io);
    }
    assert!(io.0.iter().any(|a| matches!(a, Action::SendFrame { .. } | Action::Send { .. })), "it sealed something");
    drop(driver);
    core::mem::take(&mut *bytes.lock().unwrap())
}

#[test]
fn a_trace_holds_no_key_and_replays_with_the_keys_given() {
    let bytes = recorded();
    let k = key();
    for w in k.as_bytes().windows(8) {
        assert!(!bytes.windows(8).any(|b| b == w), "a stretch of the key is in the trace");
    }
    let records: Vec<_> = TraceReader::new(&bytes).unwrap().map(Result::unwrap).collect();
    assert_eq!(records[0].input, TraceInput::Keyring(KeyringChange::Install(k.fingerprint())));

    let rng = Rng64::seed_from_u64;
    let r = replay(&bytes, &[Key::new([0xee; 32]), k], rng, None, false).unwrap();
    assert_eq!(r.divergence, None);
    assert_eq!(r.inputs, records.len());
    assert_eq!(r.swim.keys(), [k, Key::new([0xee; 32])]);

    let Err(e) = replay(&bytes, &[Key::new([0xee; 32])], rng, None, false) else {
        panic!("replayed without the key")
    };
    assert_eq!(e, TraceError::MissingKey { fingerprint: k.fingerprint(), record: 0 });
    let text = alloc::format!("{e}");
    assert!(text.contains(&alloc::format!("{:08x}", k.fingerprint())), "{text}");
}

#[test]
fn a_keyring_change_held_as_an_owned_input_is_written_by_fingerprint() {
    let k = key();
    let record = TraceRecord {
        at: Instant::ZERO,
        input: TraceInput::Input(OwnedInput::Keyring(KeyringOp::Install(k))),
        digest: 0,
        actions: vec![],
    };
    let header = TraceHeader::of(
        1,
        &Swim::new(Config::lan(), Identity::new(MemberName::new("a").unwrap(), addr(1)), Rng64::seed_from_u64(1))
            .unwrap(),
    );
    let bytes = to_bytes(&header, [&record]);
    assert!(!bytes.windows(32).any(|b| b == k.as_bytes()));
    let read: Vec<_> = TraceReader::new(&bytes).unwrap().map(Result::unwrap).collect();
    assert_eq!(read[0].input, TraceInput::Keyring(KeyringChange::Install(k.fingerprint())));
}

#[test]
fn an_older_trace_is_refused_with_its_version() {
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&4u16.to_le_bytes());
    bytes.extend_from_slice(&[0; 8]);
    let e = TraceReader::new(&bytes).unwrap_err();
    assert_eq!(e, TraceError::Version(4));
    assert!(alloc::format!("{e}").contains("older"), "{e}");
}
