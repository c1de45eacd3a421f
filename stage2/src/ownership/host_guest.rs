//! Transitions between the host and a guest: donating, lending, sharing back, giving back.

use super::{
    Borrower, Owner, Ownership, OwnershipError, PageSanitizer, PageState, VmId, commit_error,
};
use crate::pgtable::MemKind;
use crate::pool::PAGE_SIZE;
use crate::tlb::TlbMaintenance;

impl<const MAX_VMS: usize> Ownership<'_, MAX_VMS> {
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
        let needed = guest
            .tables_needed_to_map(ipa, ipa_end, pa, MemKind::Normal)
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
        let (start, end) = self.ram_range(pfn, nr)?;
        let (ipa, ipa_end) = self.ipa_range(gfn, nr)?;
        let slot = self.slot(vm)?;
        self.require_pages(start, end, |s| s == PageState::Owned(Owner::Host))?;
        self.check_guest_map(slot, ipa, ipa_end, start)?;
        self.host_unmap(start, end, tlb)?;
        self.set_range(start, end, PageState::Owned(Owner::Guest(vm)));
        self.guest(slot)?
            .map(ipa, ipa_end, start, MemKind::Normal)
            .map_err(commit_error)
    }

    /// The host lends pages it owns exclusively to `vm` at guest frames `gfn..gfn + nr`; the
    /// host keeps its mapping.
    ///
    /// # Errors
    ///
    /// As [`host_donate_guest`](Self::host_donate_guest).
    pub fn host_share_guest(
        &mut self,
        vm: VmId,
        pfn: usize,
        gfn: usize,
        nr: usize,
    ) -> Result<(), OwnershipError> {
        let (start, end) = self.ram_range(pfn, nr)?;
        let (ipa, ipa_end) = self.ipa_range(gfn, nr)?;
        let slot = self.slot(vm)?;
        self.require_pages(start, end, |s| s == PageState::Owned(Owner::Host))?;
        self.check_guest_map(slot, ipa, ipa_end, start)?;
        self.set_range(start, end, PageState::HostSharedWith(Borrower::Guest(vm)));
        self.guest(slot)?
            .map(ipa, ipa_end, start, MemKind::Normal)
            .map_err(commit_error)
    }

    /// Translates guest frames `gfn..gfn + nr` of the VM in `slot` into `self.scratch`,
    /// checking each page's state with `allowed`.
    fn gather_guest_pages(
        &mut self,
        slot: usize,
        ipa: usize,
        nr: usize,
        allowed: impl Fn(PageState) -> bool,
    ) -> Result<(), OwnershipError> {
        for i in 0..nr {
            let guest = self.guests[slot].as_ref().ok_or(OwnershipError::NotFound)?;
            let leaf = guest
                .translate(ipa + i * PAGE_SIZE)
                .ok_or(OwnershipError::NotFound)?;
            let state = self.page_state(leaf.pa).ok_or(OwnershipError::Denied)?;
            if !allowed(state) {
                return Err(OwnershipError::Denied);
            }
            self.scratch[i] = leaf.pa & !(PAGE_SIZE - 1);
        }
        Ok(())
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

    /// The host takes back pages it lent to `vm` at guest frames `gfn..gfn + nr`: they leave
    /// the guest's stage-2 (I6, VMID `vm`).
    ///
    /// # Errors
    ///
    /// `InvalidParameter`, `Range`, `NotFound` (no such VM, or a frame is not mapped),
    /// `Denied` (a frame maps a page that is not lent by the host to this VM), `NoMemory`
    /// (splitting a guest block needs table pages the VM's pool lacks).
    pub fn host_unshare_guest(
        &mut self,
        vm: VmId,
        gfn: usize,
        nr: usize,
        tlb: &mut impl TlbMaintenance,
    ) -> Result<(), OwnershipError> {
        let (ipa, ipa_end) = self.ipa_range(gfn, nr)?;
        let slot = self.slot(vm)?;
        self.gather_guest_pages(slot, ipa, nr, |s| {
            s == PageState::HostSharedWith(Borrower::Guest(vm))
        })?;
        self.check_guest_unmap(slot, ipa, ipa_end)?;
        self.guest(slot)?
            .unmap(ipa, ipa_end, tlb)
            .map_err(commit_error)?;
        for i in 0..nr {
            self.set_page(self.scratch[i], PageState::Owned(Owner::Host));
        }
        Ok(())
    }

    /// Guest `vm` shares its pages at frames `gfn..gfn + nr` with the host, which maps them on
    /// its next access. The guest keeps its mapping.
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
        self.gather_guest_pages(slot, ipa, nr, |s| s == PageState::Owned(Owner::Guest(vm)))?;
        for i in 0..nr {
            self.set_page(self.scratch[i], PageState::SharedWithHost(vm));
        }
        Ok(())
    }

    /// Guest `vm` stops sharing its pages at frames `gfn..gfn + nr`: they leave the host
    /// stage-2 (I6, VMID 0).
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
        self.gather_guest_pages(slot, ipa, nr, |s| s == PageState::SharedWithHost(vm))?;
        {
            let mut batch = self.host.unmap_batch(tlb);
            let mut i = 0;
            while i < nr {
                // Coalesce runs of contiguous pages into one removal.
                let start = self.scratch[i];
                let mut j = i + 1;
                while j < nr && self.scratch[j] == start + (j - i) * PAGE_SIZE {
                    j += 1;
                }
                batch
                    .remove_covering(start, start + (j - i) * PAGE_SIZE)
                    .map_err(commit_error)?;
                i = j;
            }
            batch.finish();
        }
        for i in 0..nr {
            self.set_page(self.scratch[i], PageState::Owned(Owner::Guest(vm)));
        }
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
        self.gather_guest_pages(slot, ipa, nr, |s| s == PageState::Owned(Owner::Guest(vm)))?;
        self.check_guest_unmap(slot, ipa, ipa_end)?;
        self.guest(slot)?
            .unmap(ipa, ipa_end, tlb)
            .map_err(commit_error)?;
        for i in 0..nr {
            san.zero_and_clean(self.scratch[i]);
        }
        for i in 0..nr {
            self.set_page(self.scratch[i], PageState::Owned(Owner::Host));
        }
        Ok(())
    }
}
