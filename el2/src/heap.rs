//! The boot heap: only the host-DTB writer (`vm-fdt`) allocates, at boot, before the host
//! runs. Its memory is a slice of the dynamic carve-out (`stage2::memory_plan`). No hypercall path
//! allocates, so the host can never make EL2's memory use grow.

use buddy_system_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

/// Hands `[start, end)` to the allocator.
///
/// # Safety
/// The range must be mapped read-write at EL2, unused by anything else, forever.
pub unsafe fn init(start: usize, end: usize) {
    // SAFETY: the caller guarantees exclusive, mapped memory.
    unsafe { HEAP.lock().init(start, end - start) };
}
