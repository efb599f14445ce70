//! The msgpack layer: go-msgpack's width choices, and the reader's bounds.

use alloc::vec::Vec;

use crate::wire::memberlist::error::Error;
use crate::wire::memberlist::msgpack::read::Reader;
use crate::wire::memberlist::msgpack::write;

fn uint_bytes(v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    write::uint(&mut out, v);
    out
}

fn int_bytes(v: i64) -> Vec<u8> {
    let mut out = Vec::new();
    write::int(&mut out, v);
    out
}

#[test]
fn unsigned_integers_take_the_smallest_encoding() {
    // go-msgpack's encodeUint: fixint up to 127, then uint8/16/32/64.
    let cases: [(u64, &[u8]); 9] = [
        (0, &[0x00]),
        (0x7f, &[0x7f]),
        (0x80, &[0xcc, 0x80]),
        (0xff, &[0xcc, 0xff]),
        (0x100, &[0xcd, 0x01, 0x00]),
        (0xffff, &[0xcd, 0xff, 0xff]),
        (0x1_0000, &[0xce, 0x00, 0x01, 0x00, 0x00]),
        (0xffff_ffff, &[0xce, 0xff, 0xff, 0xff, 0xff]),
        (0x1_0000_0000, &[0xcf, 0, 0, 0, 1, 0, 0, 0, 0]),
    ];
    for (v, bytes) in cases {
        assert_eq!(uint_bytes(v), bytes, "{v}");
        assert_eq!(Reader::new(bytes).uint::<u64>(), Ok(v));
    }
}

#[test]
fn signed_integers_take_the_smallest_encoding() {
    // go-msgpack's encodeInt: non-negative as unsigned; negative fixint
    // down to -32, then int8/16/32/64.
    let cases: [(i64, &[u8]); 8] = [
        (5, &[0x05]),
        (200, &[0xcc, 0xc8]),
        (-1, &[0xff]),
        (-32, &[0xe0]),
        (-33, &[0xd0, 0xdf]),
        (-129, &[0xd1, 0xff, 0x7f]),
        (-32_769, &[0xd2, 0xff, 0xff, 0x7f, 0xff]),
        (i64::MIN, &[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]),
    ];
    for (v, bytes) in cases {
        assert_eq!(int_bytes(v), bytes, "{v}");
        assert_eq!(Reader::new(bytes).int(), Ok(v));
    }
}

#[test]
fn raw_strings_skip_str8() {
    for (len, head) in [
        (0usize, &[0xa0u8][..]),
        (31, &[0xbf]),
        (32, &[0xda, 0x00, 0x20]),
        (255, &[0xda, 0x00, 0xff]),
        (65_535, &[0xda, 0xff, 0xff]),
        (65_536, &[0xdb, 0x00, 0x01, 0x00, 0x00]),
    ] {
        let data = alloc::vec![7u8; len];
        let mut out = Vec::new();
        write::raw(&mut out, &data).unwrap();
        assert_eq!(out.get(..head.len()), Some(head), "{len}");
        assert_eq!(out.len(), head.len() + len);
        assert_eq!(Reader::new(&out).bytes(), Ok(Some(&data[..])));
    }
}

#[test]
fn lengths_beyond_the_input_fail_before_taking_anything() {
    // A str32, bin32, map32 and array32 claiming 4 GiB in a few bytes.
    assert_eq!(Reader::new(&[0xdb, 0xff, 0xff, 0xff, 0xff, 1]).bytes(), Err(Error::Truncated));
    assert_eq!(Reader::new(&[0xc6, 0xff, 0xff, 0xff, 0xff, 1]).bytes(), Err(Error::Truncated));
    assert_eq!(Reader::new(&[0xdf, 0xff, 0xff, 0xff, 0xff, 1]).read_struct(|_, _| Ok(false)), Err(Error::Truncated));
    assert_eq!(Reader::new(&[0xdd, 0xff, 0xff, 0xff, 0xff, 1]).skip(), Err(Error::Truncated));
}

#[test]
fn skipping_is_iterative_and_bounded() {
    // 10 000 nested one-element arrays, then a nil: no recursion, so no
    // stack to exhaust.
    let mut deep = alloc::vec![0x91u8; 10_000];
    deep.push(0xc0);
    let mut r = Reader::new(&deep);
    assert_eq!(r.skip(), Ok(()));
    assert!(r.rest().is_empty());
    deep.pop();
    assert_eq!(Reader::new(&deep).skip(), Err(Error::Truncated));
    // Every ext and fixext form is skipped whole.
    let exts: [&[u8]; 8] = [
        &[0xd4, 1, 0],
        &[0xd5, 1, 0, 0],
        &[0xd6, 1, 0, 0, 0, 0],
        &[0xd7, 1, 0, 0, 0, 0, 0, 0, 0, 0],
        &[0xd8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        &[0xc7, 1, 9, 0],
        &[0xc8, 0, 1, 9, 0],
        &[0xc9, 0, 0, 0, 1, 9, 0],
    ];
    for ext in exts {
        let mut r = Reader::new(ext);
        assert_eq!(r.skip(), Ok(()), "{ext:x?}");
        assert!(r.rest().is_empty(), "{ext:x?}");
    }
    // 0xc1 is reserved.
    assert_eq!(Reader::new(&[0xc1]).skip(), Err(Error::Malformed));
}

#[test]
fn failed_encodes_roll_back() {
    let mut out = alloc::vec![1, 2, 3];
    let r = write::atomically(&mut out, |out| {
        out.extend_from_slice(&[9, 9]);
        Err(crate::wire::memberlist::error::EncodeError::TooLong)
    });
    assert!(r.is_err());
    assert_eq!(out, [1, 2, 3]);
}
