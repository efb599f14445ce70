#[test]
fn a_table_slot_stays_within_96_bytes() {
    assert!(core::mem::size_of::<super::Slot>() <= 96, "{}", core::mem::size_of::<super::Slot>());
}
