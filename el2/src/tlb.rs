//! TLB maintenance and page sanitising for stage-2 changes: the hardware side of the
//! ownership record's `TlbMaintenance` and `PageSanitizer` traits.
//!
//! After removing or downgrading a stage-2 entry the architecture requires: `tlbi ipas2e1is`
//! by IPA (stage-2-only and walk-cache entries), `dsb ish`, then `tlbi vmalle1is` (combined
//! stage-1+2 entries are tagged by VA, so the IPA alone cannot find them), `dsb ish`, `isb`;
//! all with the VMID of the changed table in VTTBR_EL2 (TLBIs of EL1&0 act on the current
//! VMID). QEMU does not model the walk caches, so only a host-side test catches a missing
//! `ipas2e1is`; the `vmalle1is` half is caught by the QEMU tests (see platform-facts.md).

use aarch64_cpu::registers::{ID_AA64MMFR2_EL1, Readable, VTTBR_EL2, Writeable};
use core::arch::asm;
use core::mem::MaybeUninit;
use stage2::cache_geometry::dc_zva_block;
use stage2::tlb::{has_feat_ttl, ipas2_operand, vttbr_with_vmid};
use stage2::{PageSanitizer, TlbMaintenance};

/// Runs `f` with `vmid` as the current VMID, then restores VTTBR_EL2. The `isb` after each
/// write makes the new VMID the one later TLBIs use (Arm ARM D8.13.3: TLB maintenance of the
/// EL1&0 regime acts on the VMID in VTTBR_EL2; a direct write to a system register takes
/// effect for later instructions only after a context synchronisation event).
#[inline(always)]
fn with_vmid(vmid: u16, f: impl FnOnce()) {
    let saved = VTTBR_EL2.get();
    let wanted = vttbr_with_vmid(saved, vmid);
    let mut blocked = None;
    if wanted != saved {
        // Speculative-AT cores: no stage-1 walk of the current world under the other VMID
        // (pKVM's `enter_vmid_context`, see `speculative_at`).
        blocked = crate::speculative_at::block_stage1_walks_if_needed();
        VTTBR_EL2.set(wanted);
        // SAFETY: a barrier has no other effect.
        unsafe { asm!("isb", options(nostack, preserves_flags)) };
    }
    f();
    if wanted != saved {
        VTTBR_EL2.set(saved);
        // SAFETY: as above.
        unsafe { asm!("isb", options(nostack, preserves_flags)) };
        if let Some(b) = blocked {
            // `exit_vmid_context`: the world's own SCTLR_EL1 then TCR_EL1.
            crate::speculative_at::unblock_stage1_walks(b.sctlr, b.tcr);
        }
    }
}

/// The hardware [`TlbMaintenance`]. Its methods are never inlined: `cargo xtask test`'s
/// `payload_maintenance_sequences` finds them by name in the built payload and checks their
/// instructions against the sequence above (`xtask/src/suite/maintenance.rs`).
pub struct Tlb;

impl TlbMaintenance for Tlb {
    #[inline(never)]
    fn invalidate_ipa(&mut self, vmid: u16, ipa: usize, level: usize) {
        let operand = ipas2_operand(ipa, level, has_feat_ttl(ID_AA64MMFR2_EL1.get()));
        with_vmid(vmid, || {
            // SAFETY: TLB maintenance has no effect on memory; `dsb ishst` first makes the
            // descriptor write visible to the table walkers of every CPU.
            unsafe {
                asm!("dsb ishst", "tlbi ipas2e1is, {}", in(reg) operand, options(nostack, preserves_flags));
            }
        });
    }

    #[inline(never)]
    fn invalidate_stage1_for_vmid(&mut self, vmid: u16) {
        with_vmid(vmid, || {
            // SAFETY: as above.
            unsafe {
                asm!(
                    "dsb ish",
                    "tlbi vmalle1is",
                    "dsb ish",
                    "isb",
                    options(nostack, preserves_flags)
                );
            }
        });
    }

    #[inline(never)]
    fn invalidate_vmid(&mut self, vmid: u16) {
        with_vmid(vmid, || {
            // SAFETY: as above.
            unsafe {
                asm!(
                    "dsb ishst",
                    "tlbi vmalls12e1is",
                    "dsb ish",
                    "isb",
                    options(nostack, preserves_flags)
                );
            }
        });
    }
}

/// Zeroes pages and cleans them to the point of coherency (EL2 maps all RAM read-write).
pub struct Sanitizer;

impl PageSanitizer for Sanitizer {
    #[inline(never)]
    fn zero_and_clean(&mut self, pa: usize) {
        // DC ZVA zeroes a whole block (DCZID_EL0.BS words) per instruction; EL2 is built
        // soft-float, so a plain memset would store 8 bytes at a time.
        match dc_zva_block(crate::sysreg::dczid_el0(), stage2::PAGE_SIZE) {
            None => {
                // SAFETY: as below, through ordinary stores.
                unsafe { core::ptr::write_bytes(pa as *mut u8, 0, stage2::PAGE_SIZE) };
            }
            Some(block) => {
                for addr in (pa..pa + stage2::PAGE_SIZE).step_by(block) {
                    // SAFETY: the ownership record hands over only pages EL2 owns at this
                    // point (nobody else maps them), and EL2 maps all RAM read-write (normal
                    // memory) at its physical address.
                    unsafe { asm!("dc zva, {}", in(reg) addr, options(nostack, preserves_flags)) };
                }
            }
        }
        // The zeroes must reach the point of coherency before the page changes hands: the
        // next owner may read it with its caches off (Arm ARM D7.5.9, data cache maintenance
        // to the PoC), and a dirty line of the old contents would otherwise win.
        crate::cache::clean_to_poc(pa, stage2::PAGE_SIZE);
    }
}

/// A [`PageSanitizer`] that only notes the pages while the memory lock is held; `finish`
/// zeroes and cleans them after the lock is released and then hands them to the host.
/// The pages are `Sanitizing` meanwhile: in no stage-2, accepted by no call, so EL2 has them
/// to itself without the lock. This keeps the lock's hold time for VM_RECLAIM and a guest's
/// MEM_RELINQUISH to the bookkeeping (tens of instructions per page) instead of up to 2 MiB
/// of zeroing (about 550 instructions per page).
pub struct DeferredSanitizer {
    /// `pages[..len]` are written; the rest is never read (no 4 KiB of stores to set up a
    /// call that may note one page).
    pages: [MaybeUninit<usize>; stage2::MAX_PAGES_PER_CALL],
    len: usize,
}

impl DeferredSanitizer {
    pub const fn new() -> Self {
        Self {
            pages: [const { MaybeUninit::uninit() }; stage2::MAX_PAGES_PER_CALL],
            len: 0,
        }
    }

    fn pages(&self) -> &[usize] {
        let noted = &self.pages[..self.len];
        // SAFETY: `zero_and_clean` wrote every element below `len` before raising it, and
        // `MaybeUninit<usize>` has the layout of `usize`.
        unsafe { core::slice::from_raw_parts(noted.as_ptr().cast::<usize>(), noted.len()) }
    }

    /// Call with the memory lock released, after the transition returned `Ok`: zeroes and
    /// cleans every noted page, then takes the lock again to give them to the host.
    pub fn finish(&self) -> Result<(), stage2::OwnershipError> {
        let pages = self.pages();
        for &pa in pages {
            Sanitizer.zero_and_clean(pa);
        }
        let mut record = crate::record::lock().ok_or(stage2::OwnershipError::Denied)?;
        record.sanitized_to_host(pages)
    }
}

impl PageSanitizer for DeferredSanitizer {
    fn zero_and_clean(&mut self, pa: usize) {
        // A transition moves at most MAX_PAGES_PER_CALL pages. A page beyond that (which
        // cannot happen) is zeroed at once and stays EL2's (`Sanitizing`): lost to the
        // host, never leaked.
        match self.pages.get_mut(self.len) {
            Some(slot) => {
                slot.write(pa);
                self.len += 1;
            }
            None => Sanitizer.zero_and_clean(pa),
        }
    }

    fn defers(&self) -> bool {
        true
    }
}
