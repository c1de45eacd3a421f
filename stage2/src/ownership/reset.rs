//! Before the system resets or powers off: nothing a guest held may survive into the next
//! boot (RAM keeps its contents across a reset on QEMU and on many boards).

use super::{Ownership, OwnershipError, PageSanitizer, PageState, commit_error};
use crate::pool::PAGE_SIZE;
use crate::tlb::TlbMaintenance;

impl<const MAX_VMS: usize> Ownership<'_, MAX_VMS> {
    /// Takes every page away from every guest and zeroes (and cleans to the point of
    /// coherency) every page a guest could have written: pages guests own, pages they
    /// shared with the host, their page-table pools, pages of torn-down VMs not yet
    /// reclaimed, and pages another CPU is still zeroing for the host outside the lock
    /// (`Sanitizing`). Returns the number of pages zeroed.
    ///
    /// First every leaf of every guest stage-2 is removed, with the TLB sequence of I6 and
    /// `invalidate_vmid` for each VM: once that completes (the TLB maintenance is
    /// broadcast), a guest still running on another CPU faults on its next instruction
    /// fetch instead of writing memory, so nothing it does can refill a page after it was
    /// zeroed. The record itself is left as it was: the system is going down and runs no
    /// guest again (EL2 stops every CPU that enters it), so I2 no longer matters.
    ///
    /// Work: one pass over the record (a read per page of RAM) plus a zeroing per guest
    /// page; it runs once, on the way out.
    ///
    /// # Errors
    ///
    /// None expected: removing whole leaves needs no table memory. A stage-2 error is
    /// returned after every guest's table was still emptied as far as possible; the
    /// caller must then not let the firmware reset (it cannot vouch for the memory).
    pub fn scrub_for_reset(
        &mut self,
        tlb: &mut impl TlbMaintenance,
        san: &mut impl PageSanitizer,
    ) -> Result<usize, OwnershipError> {
        let mut result = Ok(());
        for (slot, table) in self.guests.iter_mut().enumerate() {
            let Some(table) = table else { continue };
            let size = table.ipa_size();
            {
                let mut batch = table.unmap_batch(tlb);
                if let Err(e) = batch.remove_covering(0, size) {
                    result = Err(commit_error(e));
                }
                batch.finish();
            }
            tlb.invalidate_vmid(slot as u16 + 1);
        }
        result?;
        let mut zeroed = 0;
        for bank in &self.banks[..self.n_banks] {
            let pages = (bank.end - bank.start) / PAGE_SIZE;
            for i in 0..pages {
                let held_by_a_guest = matches!(
                    PageState::decode(self.meta[bank.first_entry + i]),
                    Some(
                        PageState::Owned(super::Owner::Guest(_))
                            | PageState::SharedWithHost(_)
                            | PageState::HypPool(_)
                            | PageState::PendingReclaim(_)
                            | PageState::Sanitizing
                            | PageState::ZeroingForGuest(_)
                    )
                );
                if held_by_a_guest {
                    san.zero_and_clean(bank.start + i * PAGE_SIZE);
                    zeroed += 1;
                }
            }
        }
        Ok(zeroed)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Memory, World, pfn};
    use crate::pool::PAGE_SIZE;
    use crate::tlb::TlbOp;

    const GIB: usize = 1 << 30;

    #[test]
    fn reset_scrub_empties_every_guest_stage2_and_zeroes_exactly_the_guest_pages() {
        let mut mem = Memory::new(GIB);
        let mut w = World::new(&mut mem);
        let a = w.create_vm(0, 4);
        let b = w.create_vm(8, 4);
        let q = pfn(0x4a00_0000);
        w.step(|w| w.own.host_donate_guest(a, q, 0x200, 4, &mut w.tlb))
            .unwrap();
        w.step(|w| w.own.host_donate_guest(b, q + 4, 0x300, 2, &mut w.tlb))
            .unwrap();
        // a shares one page with the host; b dies and leaves its pages pending reclaim.
        w.step(|w| w.own.guest_share_host(a, 0x201, 1)).unwrap();
        w.step(|w| w.own.vm_teardown(b, &mut w.tlb)).unwrap();
        // A guest's table stays marked active, as while a vCPU runs on another CPU.
        w.own.guest_stage2(a).unwrap().mark_active();

        w.tlb.ops.clear();
        w.san.pages.clear();
        let zeroed = w.own.scrub_for_reset(&mut w.tlb, &mut w.san).unwrap();

        let mut leaves = 0;
        let table = w.own.guest_stage2(a).unwrap();
        table.for_each_leaf(0, table.ipa_size(), |_| leaves += 1);
        assert_eq!(leaves, 0, "a guest page is still mapped");
        assert!(
            w.tlb.ops.contains(&TlbOp::Vmid { vmid: a.get() }),
            "{:?}",
            w.tlb.ops
        );
        let mut expect: std::vec::Vec<usize> = (0..6).map(|i| (q + i) * PAGE_SIZE).collect();
        // Both pools: a's 4 pages at real page 0, b's 4 at real page 8.
        expect.extend((0..4).map(|i| w.real_pfn(i) * PAGE_SIZE));
        expect.extend((8..12).map(|i| w.real_pfn(i) * PAGE_SIZE));
        expect.sort();
        let mut got = w.san.pages.clone();
        got.sort();
        assert_eq!(got, expect);
        assert_eq!(zeroed, expect.len());
        w.own.guest_stage2(a).unwrap().mark_inactive();
    }
}
