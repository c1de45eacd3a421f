//! Transitions between the host and a guest: donating, sharing back, giving back. (The host
//! never lends its own pages to a guest: docs/abi.md 4.6.)

use super::{Owner, Ownership, OwnershipError, PageSanitizer, PageState, VmId, commit_error};
use crate::pgtable::MemKind;
use crate::pool::PAGE_SIZE;
use crate::tlb::TlbMaintenance;

/// Guest memory is only ever mapped with 4 KiB pages: a block would have to be split when
/// part of it is later unshared or relinquished, and those calls must never need memory
/// (docs/abi.md 7.3). A call maps at most 512 pages, so the only range that could become a
/// block is exactly one aligned 2 MiB chunk; it is mapped as 511 pages, then one. The second
/// part lands in the level-3 table the first one created, so it needs no table page.
fn guest_map_parts(ipa: usize, ipa_end: usize) -> [(usize, usize); 2] {
    const BLOCK: usize = 2 << 20;
    if ipa.is_multiple_of(BLOCK) && ipa_end - ipa == BLOCK {
        [(ipa, ipa_end - PAGE_SIZE), (ipa_end - PAGE_SIZE, ipa_end)]
    } else {
        [(ipa, ipa_end), (ipa_end, ipa_end)]
    }
}

impl<const MAX_VMS: usize> Ownership<'_, MAX_VMS> {
    /// Maps guest IPAs `[ipa, ipa_end)` to `pa..` with pages only (see `guest_map_parts`).
    fn guest_map(
        &mut self,
        slot: usize,
        ipa: usize,
        ipa_end: usize,
        pa: usize,
    ) -> Result<(), OwnershipError> {
        let guest = self.guest(slot)?;
        for (s, e) in guest_map_parts(ipa, ipa_end) {
            if s < e {
                guest
                    .map(s, e, pa + (s - ipa), MemKind::Normal)
                    .map_err(commit_error)?;
            }
        }
        Ok(())
    }

    /// Checks that guest IPAs `[ipa, ipa_end)` are unmapped and that mapping them to `pa` fits
    /// in the VM's pool.
    fn check_guest_map(
        &self,
        slot: usize,
        ipa: usize,
        ipa_end: usize,
        pa: usize,
    ) -> Result<(), OwnershipError> {
        let guest = self.guests[slot].as_ref().ok_or(OwnershipError::NotFound)?;
        let mut used = false;
        guest.for_each_leaf(ipa, ipa_end, |_| used = true);
        if used {
            return Err(OwnershipError::Busy);
        }
        let [(s, e), _] = guest_map_parts(ipa, ipa_end);
        let needed = guest
            .tables_needed_to_map(s, e, pa, MemKind::Normal)
            .map_err(|_| OwnershipError::Range)?;
        if needed > guest.pool_free_pages() {
            return Err(OwnershipError::NoMemory);
        }
        Ok(())
    }

    /// The host gives pages it owns exclusively to `vm`, at guest frames `gfn..gfn + nr`: they
    /// leave the host stage-2 (I6, VMID 0) before they enter the guest's.
    ///
    /// # Errors
    ///
    /// `InvalidParameter`, `Range` (pages or guest frames), `NotFound` (no such VM), `Denied`
    /// (a page is not owned exclusively by the host), `Busy` (a guest frame is mapped already),
    /// `NoMemory` (the VM's pool lacks table pages: top it up).
    pub fn host_donate_guest(
        &mut self,
        vm: VmId,
        pfn: usize,
        gfn: usize,
        nr: usize,
        tlb: &mut impl TlbMaintenance,
    ) -> Result<(), OwnershipError> {
        self.donate_to_guest(vm, pfn, gfn, nr, tlb, |_| {})
    }

    /// As [`host_donate_guest`](Self::host_donate_guest), but every page is zeroed and
    /// cleaned to the point of coherency after it has left the host stage-2 and before it
    /// enters the guest's: the guest only ever sees fresh memory, never what the host put
    /// there (docs/abi.md 4.5: memory a launched VM gets is fresh). Same errors; a refused
    /// call zeroes nothing. All under the caller's lock: EL2 uses the split form
    /// ([`host_donate_guest_begin`](Self::host_donate_guest_begin), zeroing with the lock
    /// released, [`host_donate_guest_finish`](Self::host_donate_guest_finish)); this one is
    /// the reference the fuzzer's model and the tests compare with.
    pub fn host_donate_guest_zeroed(
        &mut self,
        vm: VmId,
        pfn: usize,
        gfn: usize,
        nr: usize,
        tlb: &mut impl TlbMaintenance,
        sanitizer: &mut impl PageSanitizer,
    ) -> Result<(), OwnershipError> {
        self.donate_to_guest(vm, pfn, gfn, nr, tlb, |pa| sanitizer.zero_and_clean(pa))
    }

    /// First half of a donation whose zeroing happens outside the memory lock (VM_DONATE
    /// after launch). Everything that can refuse is decided here, before anything changes
    /// (same errors as [`host_donate_guest`](Self::host_donate_guest); `NoMemory` included):
    /// then the pages leave the host stage-2 and its DMA view (I6), become
    /// [`PageState::ZeroingForGuest`], which no call accepts and neither the host nor any
    /// guest may map, and are mapped at the guest frames with *no access* (the leaves hold
    /// the IPAs and the table pages, so the finish cannot fail for want of either, and a
    /// guest vCPU that touches them on another CPU takes a permission fault and sees
    /// nothing). The VM cannot be torn down until the finish (`vm_teardown` says `Busy`).
    ///
    /// The caller then zeroes and cleans every page `pfn..pfn + nr`, with the lock
    /// released, and calls [`host_donate_guest_finish`](Self::host_donate_guest_finish)
    /// with the same arguments.
    pub fn host_donate_guest_begin(
        &mut self,
        vm: VmId,
        pfn: usize,
        gfn: usize,
        nr: usize,
        tlb: &mut impl TlbMaintenance,
    ) -> Result<(), OwnershipError> {
        let (start, end) = self.ram_range(pfn, nr)?;
        let (ipa, ipa_end) = self.ipa_range(gfn, nr)?;
        let slot = self.slot(vm)?;
        self.require_pages(start, end, |s| s == PageState::Owned(Owner::Host))?;
        self.check_guest_map(slot, ipa, ipa_end, start)?;
        self.host_unmap(start, end, tlb)?;
        self.set_range(start, end, PageState::ZeroingForGuest(vm));
        let guest = self.guest(slot)?;
        for (s, e) in guest_map_parts(ipa, ipa_end) {
            if s < e {
                guest
                    .map_inaccessible(s, e, start + (s - ipa), MemKind::Normal)
                    .map_err(commit_error)?;
            }
        }
        self.zeroing[slot] += nr;
        Ok(())
    }

    /// Second half of a donation begun with
    /// [`host_donate_guest_begin`](Self::host_donate_guest_begin), once the caller has
    /// zeroed and cleaned the pages: the guest's leaves give it access, its TLB entries for
    /// them go (a TLB may hold the faulting ones), and the pages are the guest's.
    ///
    /// # Errors
    ///
    /// `InvalidParameter`, `Range`, `NotFound` (no such VM), `Denied` (the arguments are not
    /// those of a begun donation: a page is not `ZeroingForGuest(vm)` or its guest frame
    /// does not hold it with no access). Nothing is changed then.
    pub fn host_donate_guest_finish(
        &mut self,
        vm: VmId,
        pfn: usize,
        gfn: usize,
        nr: usize,
        tlb: &mut impl TlbMaintenance,
    ) -> Result<(), OwnershipError> {
        let (start, end) = self.ram_range(pfn, nr)?;
        let (ipa, ipa_end) = self.ipa_range(gfn, nr)?;
        let slot = self.slot(vm)?;
        self.require_pages(start, end, |s| s == PageState::ZeroingForGuest(vm))?;
        let guest = self.guests[slot].as_ref().ok_or(OwnershipError::NotFound)?;
        let encoding = guest.encoding();
        let mut held = 0;
        guest.for_each_leaf(ipa, ipa_end, |leaf| {
            if leaf.is_inaccessible(MemKind::Normal, encoding)
                && leaf.block_pa == start + (leaf.block_ipa - ipa)
                && leaf.size() == PAGE_SIZE
            {
                held += 1;
            }
        });
        if held != nr {
            return Err(OwnershipError::Denied);
        }
        // Same output, same kind: only S2AP changes, no table page is needed.
        self.guest_map(slot, ipa, ipa_end, start)?;
        // A TLB may hold the faulting entries (a vCPU touched the frames meanwhile): the
        // usual sequence for changed leaves (crate::tlb), or that vCPU would keep faulting.
        for page in (ipa..ipa_end).step_by(PAGE_SIZE) {
            tlb.invalidate_ipa(vm.get(), page, 3);
        }
        tlb.invalidate_stage1_for_vmid(vm.get());
        self.set_range(start, end, PageState::Owned(Owner::Guest(vm)));
        self.zeroing[slot] -= nr;
        Ok(())
    }

    fn donate_to_guest(
        &mut self,
        vm: VmId,
        pfn: usize,
        gfn: usize,
        nr: usize,
        tlb: &mut impl TlbMaintenance,
        mut sanitize: impl FnMut(usize),
    ) -> Result<(), OwnershipError> {
        let (start, end) = self.ram_range(pfn, nr)?;
        let (ipa, ipa_end) = self.ipa_range(gfn, nr)?;
        let slot = self.slot(vm)?;
        self.require_pages(start, end, |s| s == PageState::Owned(Owner::Host))?;
        self.check_guest_map(slot, ipa, ipa_end, start)?;
        self.host_unmap(start, end, tlb)?;
        // The host can no longer write the pages (its TLB entries are gone) and the guest
        // cannot read them yet: the only moment to sanitise them for the guest.
        for pa in (start..end).step_by(PAGE_SIZE) {
            sanitize(pa);
        }
        self.set_range(start, end, PageState::Owned(Owner::Guest(vm)));
        self.guest_map(slot, ipa, ipa_end, start)
    }

    /// Translates guest frames `gfn..gfn + nr` of the VM in `slot` into `self.scratch`,
    /// checking that each page is in state `allowed`.
    // Inlined into each transition so that `allowed` is a constant there and its encoding
    // folds away (a match over every state otherwise, on every guest MEM_SHARE/UNSHARE);
    // the loop itself stays out of line, where it compiles tighter.
    #[inline(always)]
    fn gather_guest_pages(
        &mut self,
        slot: usize,
        ipa: usize,
        nr: usize,
        allowed: PageState,
    ) -> Result<(), OwnershipError> {
        self.gather_guest_pages_in(slot, ipa, nr, allowed.encode())
    }

    /// [`Self::gather_guest_pages`] with the allowed state's record encoding.
    #[inline(never)]
    fn gather_guest_pages_in(
        &mut self,
        slot: usize,
        ipa: usize,
        nr: usize,
        code: u16,
    ) -> Result<(), OwnershipError> {
        // Every frame must have a page (NOT_FOUND) before any page's state is judged
        // (DENIED): docs/abi.md 1.6 orders the two over the whole range.
        let guest = self.guests[slot].as_ref().ok_or(OwnershipError::NotFound)?;
        guest
            .translate_pages(ipa, &mut self.scratch[..nr])
            .map_err(|_| OwnershipError::NotFound)?;
        // Compare raw record entries with the allowed state's encoding: no decoding on this
        // per-page path. The fields are borrowed apart (not through `entry_index(&self)`)
        // so that the bank list and the record stay in registers while the indices are
        // written: about a dozen instructions less per page (the bench's guest MEM_SHARE
        // and MEM_UNSHARE rows).
        let banks = &self.banks[..self.n_banks];
        let meta = &*self.meta;
        // The bank of the previous page, kept in registers: a guest's pages mostly come
        // from one bank, so the search runs only when a page is outside it.
        let mut bank = banks.first().copied().unwrap_or_default();
        let pages = self.scratch[..nr].iter();
        let mut allowed = 0;
        for (&pa, index_out) in pages.zip(&mut self.scratch_index[..nr]) {
            if !(bank.start <= pa && pa < bank.end) {
                match banks.iter().find(|b| b.start <= pa && pa < b.end) {
                    Some(b) => bank = *b,
                    None => break,
                }
            }
            let index = bank.first_entry + (pa - bank.start) / PAGE_SIZE;
            if meta.get(index) != Some(&code) {
                break;
            }
            *index_out = index;
            allowed += 1;
        }
        // A page outside RAM or in another state stopped the loop early.
        if allowed == nr {
            Ok(())
        } else {
            Err(OwnershipError::Denied)
        }
    }

    /// Sets the record entry of every page `gather_guest_pages` found to `state`.
    #[inline(always)] // as `gather_guest_pages`: `state` is a constant at each caller
    fn set_gathered(&mut self, nr: usize, state: PageState) {
        self.set_gathered_to(nr, state.encode());
    }

    /// [`Self::set_gathered`] with the state's record encoding.
    #[inline(never)]
    fn set_gathered_to(&mut self, nr: usize, code: u16) {
        for &index in &self.scratch_index[..nr] {
            // Every index was checked against the record by `gather_guest_pages`.
            if let Some(entry) = self.meta.get_mut(index) {
                *entry = code;
            }
        }
    }

    /// Checks that unmapping guest IPAs `[ipa, ipa_end)` exactly fits in the VM's pool.
    fn check_guest_unmap(
        &self,
        slot: usize,
        ipa: usize,
        ipa_end: usize,
    ) -> Result<(), OwnershipError> {
        let guest = self.guests[slot].as_ref().ok_or(OwnershipError::NotFound)?;
        let needed = guest
            .tables_needed_to_unmap(ipa, ipa_end)
            .map_err(|_| OwnershipError::Range)?;
        if needed > guest.pool_free_pages() {
            return Err(OwnershipError::NoMemory);
        }
        Ok(())
    }

    /// Guest `vm` shares its pages at frames `gfn..gfn + nr` with the host, which maps them on
    /// its next access (its devices at once). The guest keeps its mapping.
    ///
    /// # Errors
    ///
    /// `InvalidParameter`, `Range`, `NotFound` (no such VM, or a frame is not mapped),
    /// `Denied` (a frame maps a page the guest does not own exclusively).
    pub fn guest_share_host(
        &mut self,
        vm: VmId,
        gfn: usize,
        nr: usize,
    ) -> Result<(), OwnershipError> {
        let (ipa, _) = self.ipa_range(gfn, nr)?;
        let slot = self.slot(vm)?;
        self.gather_guest_pages(slot, ipa, nr, PageState::Owned(Owner::Guest(vm)))?;
        self.set_gathered(nr, PageState::SharedWithHost(vm));
        self.dma_scratch(nr, true);
        Ok(())
    }

    /// Guest `vm` stops sharing its pages at frames `gfn..gfn + nr`: they leave the host
    /// stage-2 (I6, VMID 0) and its DMA view.
    ///
    /// # Errors
    ///
    /// `InvalidParameter`, `Range`, `NotFound` (no such VM, or a frame is not mapped),
    /// `Denied` (a frame maps a page the guest has not shared with the host).
    pub fn guest_unshare_host(
        &mut self,
        vm: VmId,
        gfn: usize,
        nr: usize,
        tlb: &mut impl TlbMaintenance,
    ) -> Result<(), OwnershipError> {
        let (ipa, _) = self.ipa_range(gfn, nr)?;
        let slot = self.slot(vm)?;
        self.gather_guest_pages(slot, ipa, nr, PageState::SharedWithHost(vm))?;
        {
            let mut batch = self.host.unmap_batch(tlb);
            // A slice of exactly `nr`, so the run search below needs no other bound.
            let pages = &self.scratch[..nr];
            let mut i = 0;
            while i < nr {
                // Coalesce runs of contiguous pages into one removal.
                let start = pages[i];
                let contiguous = pages[i + 1..]
                    .iter()
                    .zip(1..)
                    .take_while(|&(&pa, k)| pa == start + k * PAGE_SIZE)
                    .count();
                let j = i + 1 + contiguous;
                batch
                    .remove_covering(start, start + (j - i) * PAGE_SIZE)
                    .map_err(commit_error)?;
                i = j;
            }
            batch.finish();
        }
        self.dma_scratch(nr, false);
        self.set_gathered(nr, PageState::Owned(Owner::Guest(vm)));
        Ok(())
    }

    /// Guest `vm` gives its pages at frames `gfn..gfn + nr` back: they leave its stage-2 (I6,
    /// VMID `vm`), are zeroed and cleaned (I5), and are the host's again (mapped on its next
    /// access).
    ///
    /// # Errors
    ///
    /// `InvalidParameter`, `Range`, `NotFound` (no such VM, or a frame is not mapped),
    /// `Denied` (a frame maps a page the guest does not own exclusively; unshare first),
    /// `NoMemory` (splitting a guest block needs table pages the VM's pool lacks).
    pub fn guest_relinquish(
        &mut self,
        vm: VmId,
        gfn: usize,
        nr: usize,
        tlb: &mut impl TlbMaintenance,
        san: &mut impl PageSanitizer,
    ) -> Result<(), OwnershipError> {
        let (ipa, ipa_end) = self.ipa_range(gfn, nr)?;
        let slot = self.slot(vm)?;
        self.gather_guest_pages(slot, ipa, nr, PageState::Owned(Owner::Guest(vm)))?;
        self.check_guest_unmap(slot, ipa, ipa_end)?;
        self.guest(slot)?
            .unmap(ipa, ipa_end, tlb)
            .map_err(commit_error)?;
        // Every page is zeroed before the host gets it (I5).
        for i in 0..nr {
            let pa = self.scratch[i];
            self.zeroed_to_host(pa, san);
        }
        Ok(())
    }
}
