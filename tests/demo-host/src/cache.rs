//! Data cache maintenance for memory that a CPU with its MMU off will read.

use core::arch::asm;

/// Cleans `[start, start + len)` to the point of coherency, so that non-cacheable reads
/// (a CPU whose MMU is still off) see what this CPU wrote through its caches.
pub fn clean_to_poc(start: usize, len: usize) {
    let line = dcache_line_size();
    let end = start + len;
    let mut address = start & !(line - 1);
    while address < end {
        // SAFETY: cleaning a line writes back dirty data and changes no values.
        unsafe { asm!("dc cvac, {}", in(reg) address, options(nostack, preserves_flags)) };
        address += line;
    }
    // SAFETY: a barrier only orders memory accesses.
    unsafe { asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// The smallest data cache line size, from CTR_EL0.DminLine (log2 of words per line).
fn dcache_line_size() -> usize {
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effects (and is allowed at EL1).
    unsafe { asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack, preserves_flags)) };
    4 << ((ctr >> 16) & 0xf)
}
