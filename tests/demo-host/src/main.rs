//! The demo host: a bare-metal EL1 image that the EL2 payload starts like a Linux kernel
//! (arm64 boot protocol, loaded at 0x48400000) and that checks, in order, what a host sees
//! of the payload: it runs at EL1, SMCCC calls and the vendor hypervisor UID work, unknown
//! calls return NOT_SUPPORTED, PSCI works through the payload's relay, the payload's
//! carve-out cannot be read, and a protected guest keeps its private memory private
//! (guest_story.rs). It prints `demo: ` lines, then `demo: PASS` and powers off, or
//! `demo: FAIL: <reason>` and exits QEMU with status 1.
//!
//! Entry, vectors, console, identity map, DTB reading, PSCI and the host calls come from
//! `el1-rt`; this crate holds the demo's checks.

#![no_std]
#![no_main]

mod carve_out;
mod cpus;
mod guest_story;
mod hypervisor;

use el1_rt::board::Board;
use el1_rt::{fail, psci, say};

el1_rt::entry!(main);

/// Boot CPU: EL1h, MMU off, `.bss` zeroed, FP on, VBAR set (el1-rt's entry code).
fn main(dtb_address: usize) -> ! {
    let platform = el1_rt::boot::start(dtb_address, "demo: ");
    hypervisor::check_smccc_version();
    hypervisor::check_vendor_uid();
    hypervisor::check_unknown_calls();
    check_psci_version(&platform.board);
    cpus::check_secondaries(&platform.board.cpus, &platform.mmu);
    carve_out::check_carve_out(&platform.board.carve_outs);
    guest_story::tell(&platform);
    el1_rt::exit::pass()
}

/// Step 5: PSCI_VERSION over the DTB's conduit; the relay must offer PSCI 1.x.
fn check_psci_version(board: &Board) {
    let Some(conduit) = board.psci else {
        fail!("DTB has no /psci node with method \"smc\" or \"hvc\"");
    };
    psci::set_conduit(conduit);
    let version = psci::version();
    if version < 0 {
        fail!("PSCI_VERSION over {conduit} returned {version}");
    }
    let (major, minor) = (version >> 16, version & 0xffff);
    say!("PSCI version {major}.{minor} (over {conduit})");
    if major < 1 {
        fail!("PSCI version {major}.{minor} is older than 1.0");
    }
}
