//! The demo host: a bare-metal EL1 image that the EL2 payload starts like a Linux kernel
//! (arm64 boot protocol, loaded at 0x50000000) and that checks, in order, what a host sees
//! of the payload: it runs at EL1, SMCCC calls and the vendor hypervisor UID work, unknown
//! calls return NOT_SUPPORTED, PSCI works through the payload's relay, and the payload's
//! carve-out cannot be read. It prints `demo: ` lines, then `demo: PASS` and powers off,
//! or `demo: FAIL: <reason>` and exits QEMU with status 1.

#![no_std]
#![no_main]

mod board;
mod cache;
mod carve_out;
mod console;
mod cpus;
mod dtb_copy;
mod exceptions;
mod exit;
mod hypervisor;
mod mmu;
mod psci;
mod timeout;

use board::{Board, Region};
use console::say;
use core::panic::PanicInfo;
use exit::fail;

core::arch::global_asm!(include_str!("entry.S"));
core::arch::global_asm!(include_str!("vectors.S"));

unsafe extern "C" {
    static __image_start: u8;
    static __image_end: u8;
}

/// Rust entry of the boot CPU (entry.S): EL1h, MMU off, `.bss` zeroed, FP on, VBAR set.
#[unsafe(no_mangle)]
extern "C" fn boot_main(dtb_address: usize) -> ! {
    let board = read_board(dtb_address);
    console::set_uart(board.uart);
    check_el1();

    // SAFETY: called once, here, before any other CPU runs.
    let (mmu_config, summary) = match unsafe { mmu::build(&board, image()) } {
        Ok(built) => built,
        Err(error) => fail!("cannot build the EL1 identity map: {error}"),
    };
    // SAFETY: the table maps all RAM and the image (code, data, stacks, the DTB copy) and
    // the devices, the console's included, at their own addresses.
    unsafe { mmu::enable(&mmu_config) };
    console::enable_locking();
    say!(
        "MMU on ({} page-table pages, {} device regions beyond 39 bits left unmapped)",
        summary.tables_used,
        summary.devices_skipped
    );

    hypervisor::check_smccc_version();
    hypervisor::check_vendor_uid();
    hypervisor::check_unknown_calls();
    check_psci_version(&board);
    cpus::check_secondaries(&board.cpus, &mmu_config);
    carve_out::check_carve_out(&board.carve_outs);
    exit::pass()
}

/// Reads the DTB at `dtb_address` into a `Board` (MMU off: this only reads the DTB and
/// writes the image's own memory).
fn read_board(dtb_address: usize) -> Board {
    if dtb_address == 0 {
        fail!("no DTB (x0 = 0)");
    }
    let image = image();
    let dtb_start = Region {
        base: dtb_address,
        size: 1,
    };
    if image.contains(&dtb_start) {
        // .bss and the stacks were zeroed over it before we got here.
        fail!(
            "DTB at {dtb_address:#x} lies inside the demo image {:#x}..{:#x} (image_size in its header)",
            image.base,
            image.base + image.size
        );
    }
    // SAFETY: the boot protocol makes x0 the address of a DTB in memory that nothing else
    // uses while we run; this is the only call.
    let dtb = match unsafe { dtb_copy::copy_without_nops(dtb_address) } {
        Ok(dtb) => dtb,
        Err(error) => fail!("cannot read the DTB at {dtb_address:#x}: {error}"),
    };
    let fdt = match fdt::Fdt::new(dtb) {
        Ok(fdt) => fdt,
        Err(error) => fail!("cannot parse the DTB at {dtb_address:#x}: {error:?}"),
    };
    match Board::from_fdt(&fdt) {
        Ok(board) => board,
        Err(error) => fail!("{error}"),
    }
}

/// Step 1: the payload must have dropped us to EL1.
fn check_el1() {
    use aarch64_cpu::registers::{CurrentEL, Readable};
    let el = CurrentEL.read(CurrentEL::EL);
    if el != 1 {
        fail!("running at EL{el}, expected EL1");
    }
    say!("running at EL1");
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

/// The memory the image occupies, including .bss and the boot stack.
fn image() -> Region {
    // Only the addresses of the linker-script symbols are taken, never their values.
    let start = &raw const __image_start as usize;
    let end = &raw const __image_end as usize;
    Region {
        base: start,
        size: end - start,
    }
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    // One line, so that the whole reason follows `demo: FAIL: `.
    match info.location() {
        Some(location) => fail!("panic at {location}: {}", info.message()),
        None => fail!("panic: {}", info.message()),
    }
}
