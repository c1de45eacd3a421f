//! Host stage-2 faults that mapping cannot fix end in an abort in the host, never in EL2
//! retrying the access forever.
//!
//! The host stage-2 maps MMIO execute-never. A host that fetches an instruction from a
//! device page (through a stage-1 alias it is free to make Normal and executable) takes a
//! stage-2 *permission* fault; EL2 must inject an abort, since re-mapping the page as it
//! already is would only fault again.

use crate::runner::{Ctx, TestResult, bail};
use core::arch::asm;
use el1_rt::exceptions;

/// Entries of el1-rt's level-1 root table (T0SZ 25): one per GiB of VA.
const ROOT_ENTRIES: usize = 512;
/// A level-1 block (its output address, the GiB it maps, is added): Normal (MAIR index 1,
/// as el1-rt's RAM), inner shareable, access flag set, privileged-executable (PXN clear),
/// UXN set.
const ALIAS_BLOCK: u64 = 0b01 | (1 << 2) | (0b11 << 8) | (1 << 10) | (1 << 54);
const GIB: usize = 1 << 30;
/// The output-address bits of a level-1 block descriptor (48-bit OA, 4 KiB granule).
const BLOCK_OA_MASK: usize = 0x0000_ffff_c000_0000;
const IFSC_SYNC_EXTERNAL_ABORT: u64 = 0x10;

fn root_table() -> *mut u64 {
    let ttbr0: u64;
    // SAFETY: reading TTBR0_EL1 has no side effect.
    unsafe { asm!("mrs {}, ttbr0_el1", out(reg) ttbr0, options(nomem, nostack)) };
    (ttbr0 & 0x0000_ffff_ffff_f000) as *mut u64
}

/// The highest root entry el1-rt left empty (no VA there is mapped).
fn free_root_entry() -> Option<usize> {
    // SAFETY: the root table is identity-mapped RAM el1-rt owns; reading has no effect.
    (1..ROOT_ENTRIES)
        .rev()
        .find(|&i| unsafe { root_table().add(i).read_volatile() } == 0)
}

/// Writes root entry `index` (one that was empty) and drops stale translations (Arm ARM:
/// a store to a table entry is seen by the walker after `dsb`; `tlbi vmalle1` removes
/// what was cached).
fn set_root_entry(index: usize, entry: u64) {
    // SAFETY: the root table is identity-mapped RAM el1-rt owns; entry `index` was empty,
    // so no translation this image relies on changes; the test is the only user of that
    // VA range.
    unsafe {
        root_table().add(index).write_volatile(entry);
        asm!(
            "dsb ishst",
            "tlbi vmalle1",
            "dsb ish",
            "isb",
            options(nostack)
        );
    }
}

pub fn host_instruction_fetch_from_mmio_is_an_abort_not_a_retry_loop(ctx: &mut Ctx) -> TestResult {
    // The console UART, wherever the board has it (QEMU virt: 0x0900_0000; zcu102:
    // 0xff00_0000): the alias maps the GiB that holds it.
    let uart = ctx.platform.board.uart;
    if uart & !BLOCK_OA_MASK & !(GIB - 1) != 0 {
        bail!("the UART at {uart:#x} lies beyond a 48-bit output address");
    }
    let Some(index) = free_root_entry() else {
        bail!("el1-rt's stage-1 root table has no free entry for the alias");
    };
    set_root_entry(index, ALIAS_BLOCK | (uart & BLOCK_OA_MASK) as u64);
    let target = index * GIB + uart % GIB;
    exceptions::expect_data_abort();
    // SAFETY: the branch target faults before any instruction there runs (stage 2 maps
    // the UART execute-never); the armed handler returns to the instruction after the
    // `blr`. Everything the C ABI lets a call clobber is declared clobbered.
    unsafe { asm!("blr {}", in(reg) target, clobber_abi("C")) };
    let abort = exceptions::take_data_abort();
    set_root_entry(index, 0);
    let Some(abort) = abort else {
        bail!("a branch to MMIO at {target:#x} returned without an abort");
    };
    if abort.ec() != exceptions::EC_INSTRUCTION_ABORT_SAME_EL
        || abort.dfsc() != IFSC_SYNC_EXTERNAL_ABORT
        || abort.far != target as u64
    {
        bail!("expected an injected instruction abort at {target:#x}, got {abort}");
    }
    Ok(())
}
