//! Dropping into the host at EL1h, per the Linux arm64 boot protocol: x0 = DTB (boot CPU)
//! or the PSCI context id (other CPUs), x1-x3 = 0, MMU and caches off, DAIF masked.

use aarch64_cpu::registers::{VBAR_EL2, Writeable};

/// SPSR_EL2 for the ERET: EL1h, D, A, I and F masked.
const SPSR_EL1H_MASKED: u64 = 0x3c5;

unsafe extern "C" {
    static el2_vectors: u8;
}

/// Installs EL2's exception vectors on this CPU.
pub fn install_vectors() {
    // SAFETY: only the address of the vector table is taken.
    let vectors = unsafe { &el2_vectors as *const u8 as u64 };
    VBAR_EL2.set(vectors);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// Enters the host at `entry` with `x0`. EL2 keeps nothing on this stack: the next trap
/// starts again from its top.
pub fn enter_host(entry: u64, x0: u64, stack_top: usize) -> ! {
    // SAFETY: EL2 is fully configured for the host on this CPU (vectors, HCR_EL2, stage-2);
    // the ERET leaves EL2 and never comes back here. Every general-purpose register the
    // host could see is cleared, so no EL2 value leaks.
    unsafe {
        core::arch::asm!(
            "mov sp, {stack}",
            "msr elr_el2, {entry}",
            "msr spsr_el2, {spsr}",
            "mov x1, xzr", "mov x2, xzr", "mov x3, xzr", "mov x4, xzr", "mov x5, xzr",
            "mov x6, xzr", "mov x7, xzr", "mov x8, xzr", "mov x9, xzr", "mov x10, xzr",
            "mov x11, xzr", "mov x12, xzr", "mov x13, xzr", "mov x14, xzr", "mov x15, xzr",
            "mov x16, xzr", "mov x17, xzr", "mov x18, xzr", "mov x19, xzr", "mov x20, xzr",
            "mov x21, xzr", "mov x22, xzr", "mov x23, xzr", "mov x24, xzr", "mov x25, xzr",
            "mov x26, xzr", "mov x27, xzr", "mov x28, xzr", "mov x29, xzr", "mov x30, xzr",
            "eret",
            stack = in(reg) stack_top,
            entry = in(reg) entry,
            spsr = in(reg) SPSR_EL1H_MASKED,
            in("x0") x0,
            options(noreturn),
        );
    }
}
