//! The bench host: counts, per hypercall of docs/abi.md, the instructions EL2 and EL1
//! execute, with the PMU (INST_RETIRED filtered by exception level) and the virtual counter
//! (one tick per 16 instructions under QEMU's `-icount shift=0`). `cargo xtask bench` boots
//! it and turns its `bench: result ...` lines into the table of docs/performance.md.
//!
//! Two ways to run, chosen by how it was started:
//! - under the payload (the normal case): every operation of the bench, see `ops`; the
//!   bootargs word `quick` runs each one fewer times, `memory` only reports what the DTB
//!   says about RAM and the payload's carve-out;
//! - started at EL2 by QEMU itself: it becomes its own minimal EL2 (`floor`), drops to EL1
//!   and measures the cheapest possible HVC round trip, the floor every call is compared
//!   with.
//!
//! Every number is printed as raw sums (`report`); xtask divides and subtracts.

#![no_std]
#![no_main]

mod config;
mod floor;
mod guest_blob;
mod measured_loop;
mod ops;
mod pages;
mod pmu;
mod report;

use config::{Config, Mode};
use el1_rt::{fail, say};

el1_rt::entry!(main);

fn main(dtb: usize) -> ! {
    // How long the payload took to boot, in virtual time: read before anything else.
    let entry_ticks = report::virtual_ticks();
    if floor::started_at_el2() {
        // SAFETY: the boot CPU, first thing after entry.S, at EL2 with nothing else running;
        // the image re-enters itself at EL1 and never comes back here.
        unsafe { floor::enter_el1(dtb) }
    }
    let platform = el1_rt::boot::start(dtb, "bench: ");
    // PSCI (for SYSTEM_OFF at the end) goes wherever the DTB says: to the payload's relay,
    // or under the floor EL2 straight to QEMU.
    match platform.board.psci {
        Some(conduit) => el1_rt::psci::set_conduit(conduit),
        None => fail!("the DTB has no usable /psci node"),
    }
    if let Err(why) = pmu::init() {
        fail!("{why}");
    }
    if !el1_rt::host_calls::uid_matches() {
        // No payload answers: we are under our own floor EL2 (floor.rs).
        ops::calls::floor();
        el1_rt::exit::pass();
    }
    let config = Config::from_dtb(platform.dtb.base);
    report::memory(&platform.board, entry_ticks);
    if config.mode == Mode::Memory {
        el1_rt::exit::pass();
    }
    say!(
        "measuring ({} run)",
        if config.mode == Mode::Quick {
            "quick"
        } else {
            "full"
        }
    );
    let counts = config.counts();
    let mut pages = pages::Pages::new(&platform);
    ops::run_all(&counts, &mut pages);
    el1_rt::exit::pass()
}
