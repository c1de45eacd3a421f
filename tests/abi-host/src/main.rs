//! The ABI test host: a bare-metal EL1 image the payload starts like the demo host
//! (loaded at 0x48400000, x0 = DTB) that runs a protected test guest (tests/test-guest,
//! embedded from `TEST_GUEST_BIN`) through the host and guest calls of docs/abi.md.
//!
//! It prints one libtest-style line per scenario (`test <name> ... ok` or
//! `test <name> ... FAILED: <why>`), then `N passed, M failed`, and exits QEMU through
//! semihosting with status 0 if every scenario passed, 1 otherwise. Diagnostics carry the
//! prefix `abi-host: `; an unexpected exception stops the run with
//! `abi-host: FAIL: ...` (status 1).

#![no_std]
#![no_main]
// Tests return `Result<_, runner::Failure>`, a one-line message in a fixed buffer (there
// is no allocator to box it in); its size costs nothing that matters in a test host.
#![allow(clippy::result_large_err)]

mod checks;
mod remote_reader;
mod reset_test;
mod runner;
mod tests;

use el1_rt::free_pages::TEST_HOST_PAGES_FLOOR;
use el1_rt::{fail, psci};
use runner::Ctx;

/// The raw test guest (objcopy -O binary of tests/test-guest), built by xtask first.
static TEST_GUEST: &[u8] = include_bytes!(env!("TEST_GUEST_BIN"));

el1_rt::entry!(main);

fn main(dtb_address: usize) -> ! {
    let platform = el1_rt::boot::start(dtb_address, "abi-host: ");
    // The second-CPU scenario starts a CPU through the DTB's PSCI conduit.
    if let Some(conduit) = platform.board.psci {
        psci::set_conduit(conduit);
    }
    let Ok(pages) = platform.free_pages(TEST_HOST_PAGES_FLOOR) else {
        fail!("too many reserved regions in the DTB to find free pages");
    };
    let reset_test = platform
        .board
        .bootargs()
        .split(' ')
        .any(|word| word == reset_test::MODE_WORD);
    let mut ctx = Ctx::new(platform, pages, TEST_GUEST);
    if reset_test {
        reset_test::run(&mut ctx);
    }
    let summary = runner::run_all(&mut ctx, tests::ALL);
    el1_rt::exit::semihosting_exit(if summary.failed == 0 { 0 } else { 1 })
}
