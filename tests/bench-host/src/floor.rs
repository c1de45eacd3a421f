//! The floor EL2 (asm/floor_el2.S): when QEMU starts the image at EL2, it installs a
//! minimal EL2 whose only handler answers a host HVC with NOT_SUPPORTED in 8 instructions,
//! and re-enters the image at EL1. The bench then measures the cheapest possible HVC round
//! trip with the same loop it uses for the payload's calls (ops::calls::floor).

use core::arch::global_asm;

global_asm!(include_str!("asm/floor_el2.S"));

/// QEMU's generic loader starts a CPU with x0 = 0 and its DTB at the base of RAM (where it
/// puts it for firmware).
const QEMU_FIRMWARE_DTB: usize = 0x4000_0000;

unsafe extern "C" {
    fn bench_floor_enter_el1(dtb: usize) -> !;
}

/// Whether this CPU runs at EL2: QEMU started the image itself, with no payload.
pub fn started_at_el2() -> bool {
    let current_el: u64;
    // SAFETY: reading CurrentEL has no side effect.
    unsafe {
        core::arch::asm!("mrs {}, CurrentEL", out(reg) current_el, options(nomem, nostack, preserves_flags));
    }
    (current_el >> 2) & 3 == 2
}

/// Installs the floor EL2 and re-enters the image at EL1 with x0 = the DTB.
///
/// # Safety
///
/// Call only at EL2, on the boot CPU, before anything else has run: the image starts over
/// at EL1 (`.bss` zeroed again) and this call never returns.
pub unsafe fn enter_el1(dtb: usize) -> ! {
    let dtb = if dtb == 0 { QEMU_FIRMWARE_DTB } else { dtb };
    // SAFETY: the caller's promise; the routine only writes EL2 and EL1 system registers
    // and SP_EL2 (its own stack in .bss) and ERETs to the image's entry.
    unsafe { bench_floor_enter_el1(dtb) }
}
