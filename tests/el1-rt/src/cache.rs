//! Data cache maintenance for memory that is read or written with caches off: by a CPU
//! whose MMU is still off, or by a protected guest (it runs with its MMU off, so its
//! accesses are non-cacheable).

use core::arch::asm;

/// Cleans `[start, start + len)` to the point of coherency, so that non-cacheable reads
/// (a CPU whose MMU is still off) see what this CPU wrote through its caches.
pub fn clean_to_poc(start: usize, len: usize) {
    for_each_line(start, len, |address| {
        // SAFETY: cleaning a line writes back dirty data and changes no values.
        unsafe { asm!("dc cvac, {}", in(reg) address, options(nostack, preserves_flags)) };
    });
}

/// Cleans and invalidates `[start, start + len)` to the point of coherency: what this CPU
/// wrote reaches memory, and no line is left that could later shadow what a non-cacheable
/// writer (a guest with its MMU off) puts there.
pub fn clean_invalidate_to_poc(start: usize, len: usize) {
    for_each_line(start, len, |address| {
        // SAFETY: clean+invalidate writes back dirty data first, so no value changes.
        unsafe { asm!("dc civac, {}", in(reg) address, options(nostack, preserves_flags)) };
    });
}

fn for_each_line(start: usize, len: usize, mut maintain: impl FnMut(usize)) {
    let line = dcache_line_size();
    let end = start.saturating_add(len);
    let mut address = start & !(line - 1);
    while address < end {
        maintain(address);
        address += line;
    }
    // SAFETY: a barrier only orders memory accesses; the maintenance is complete after it.
    unsafe { asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// The smallest data cache line size, from CTR_EL0.DminLine (log2 of words per line).
fn dcache_line_size() -> usize {
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effects (and is allowed at EL1).
    unsafe { asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack, preserves_flags)) };
    4 << ((ctr >> 16) & 0xf)
}
