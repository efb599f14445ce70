//! Fails to build (E0152, duplicate `panic_impl`) as soon as `std` leaks
//! into lapswim-core's dependency graph. Built by `.ci/run` with
//! `cargo rustc -p nostd-guard -- -C panic=abort`.
#![no_std]

extern crate alloc;

use core::alloc::{GlobalAlloc, Layout};

struct NoAlloc;

// SAFETY-free stub: this library is only ever built, never run.
unsafe impl GlobalAlloc for NoAlloc {
    unsafe fn alloc(&self, _: Layout) -> *mut u8 {
        core::ptr::null_mut()
    }
    unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
}

#[global_allocator]
static ALLOC: NoAlloc = NoAlloc;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

/// Forces lapswim-core's state machine into the link.
#[unsafe(no_mangle)]
pub extern "C" fn swim_nostd_guard() -> usize {
    core::mem::size_of::<lapswim_core::Swim<NeverRng>>() + lapswim_core::Datagram::MAX_LEN
}

/// A generator type to instantiate `Swim` with.
pub struct NeverRng;
