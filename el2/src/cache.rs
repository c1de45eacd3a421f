//! Data-cache maintenance by address range.

use crate::sysreg;

/// Smallest data-cache line size in bytes (CTR_EL0.DminLine is log2 of words).
fn dcache_line_size() -> usize {
    stage2::cache_geometry::dcache_min_line(sysreg::ctr_el0())
}

/// Cleans `[start, start + len)` to the point of coherency, so that an observer with its
/// caches off (the host entered with its MMU off) reads what EL2 wrote through its caches.
#[inline(never)]
pub fn clean_to_poc(start: usize, len: usize) {
    let line = dcache_line_size();
    let mut addr = start & !(line - 1);
    while addr < start + len {
        // SAFETY: DC CVAC only writes back a cache line; the range is mapped at EL2.
        unsafe { core::arch::asm!("dc cvac, {}", in(reg) addr, options(nostack, preserves_flags)) };
        addr += line;
    }
    // SAFETY: a barrier has no other effect.
    unsafe { core::arch::asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// Cleans and invalidates `[start, start + len)` to the point of coherency.
///
/// Every page that enters a guest goes through this (VM_DONATE) on CPUs without
/// FEAT_S2FWB: the host may have left dirty lines for it (written through its cacheable
/// mapping, or on purpose), and a guest that runs with its MMU off (Device/Non-cacheable
/// accesses) reads DRAM, not the caches, so a dirty line evicted later would overwrite what
/// the guest wrote or read. pKVM does the same where the CPU has no FEAT_S2FWB. Where it
/// has it, guests' stage 2 forces Write-Back (`stage2::AttrEncoding::ForcedWriteBack`,
/// HCR_EL2.FWB in `platform::guest_traps::guest_hcr`): the guest never bypasses the caches,
/// and VM_DONATE skips this.
#[inline(never)]
pub fn clean_invalidate_to_poc(start: usize, len: usize) {
    let line = dcache_line_size();
    let mut addr = start & !(line - 1);
    while addr < start + len {
        // SAFETY: DC CIVAC writes back and drops a cache line; EL2 maps all RAM and the
        // range is RAM the ownership record just handed to a guest.
        unsafe {
            core::arch::asm!("dc civac, {}", in(reg) addr, options(nostack, preserves_flags))
        };
        addr += line;
    }
    // SAFETY: a barrier has no other effect.
    unsafe { core::arch::asm!("dsb sy", options(nostack, preserves_flags)) };
}
