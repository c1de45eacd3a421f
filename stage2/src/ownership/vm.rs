//! A VM's life: creation and top-up of its page-table pool, teardown, and the host's
//! reclaim of what the VM left behind.

use super::{
    Borrower, Owner, Ownership, OwnershipError, PageSanitizer, PageState, VmId, commit_error,
};
use crate::pgtable::Stage2Table;
use crate::pool::{PAGE_SIZE, PagePool};
use crate::tlb::TlbMaintenance;

impl<const MAX_VMS: usize> Ownership<'_, MAX_VMS> {
    /// Creates a VM whose stage-2 tables come from `nr` host pages at `pfn`, which the host
    /// donates to EL2 (they leave the host stage-2 and become `HypPool(vm)`). Returns the VM's
    /// id, also its VMID.
    ///
    /// # Errors
    ///
    /// `InvalidParameter`, `Range`, `Denied` (a page is not owned exclusively by the host),
    /// `NoMemory` (all `MAX_VMS` slots are in use, or the pages cannot hold the root: with
    /// concatenated roots, `Stage2Config::root_fits_in` says what they must hold).
    pub fn vm_create(
        &mut self,
        pfn: usize,
        nr: usize,
        tlb: &mut impl TlbMaintenance,
    ) -> Result<VmId, OwnershipError> {
        let (start, end) = self.ram_range(pfn, nr)?;
        self.require_pages(start, end, |s| s == PageState::Owned(Owner::Host))?;
        let slot = self
            .guests
            .iter()
            .position(Option::is_none)
            .ok_or(OwnershipError::NoMemory)?;
        let vm = VmId::new(slot as u16 + 1).ok_or(OwnershipError::NoMemory)?;
        // Checked before anything changes: `try_new` below must not fail once the pages left
        // the host.
        if !self.config.root_fits_in(start, end) {
            return Err(OwnershipError::NoMemory);
        }
        self.host_unmap(start, end, tlb)?;
        self.set_range(start, end, PageState::HypPool(vm));
        let mut pool = PagePool::empty();
        // SAFETY: the pages are RAM, mapped read-write at EL2 at their address (`new`'s
        // contract), owned by EL2 from now on and gone from the host stage-2 (TLBs included).
        unsafe { pool.add_pages(start, nr) };
        let table = Stage2Table::try_new(pool, &self.config, vm.get()).map_err(commit_error)?;
        self.guests[slot] = Some(table);
        Ok(vm)
    }

    /// The host donates `nr` pages at `pfn` to EL2 for `vm`'s page-table pool.
    ///
    /// # Errors
    ///
    /// `InvalidParameter`, `Range`, `NotFound` (no such VM), `Denied` (a page is not owned
    /// exclusively by the host).
    pub fn vm_topup(
        &mut self,
        vm: VmId,
        pfn: usize,
        nr: usize,
        tlb: &mut impl TlbMaintenance,
    ) -> Result<(), OwnershipError> {
        let (start, end) = self.ram_range(pfn, nr)?;
        let slot = self.slot(vm)?;
        self.require_pages(start, end, |s| s == PageState::Owned(Owner::Host))?;
        self.host_unmap(start, end, tlb)?;
        self.set_range(start, end, PageState::HypPool(vm));
        // SAFETY: as in `vm_create`.
        unsafe { self.guest(slot)?.add_pool_pages(start, nr) };
        Ok(())
    }

    /// Tears `vm` down: every page it owned (shared with the host or not) and every page of
    /// its table pool (`HypPool(vm)`) becomes pending reclaim (EL2's until [`host_reclaim`](Self::host_reclaim)
    /// zeroes it); pages the host had lent it return to the host; the host loses its mappings
    /// of pages the guest had shared (I6, VMID 0); all TLB entries of the VMID are invalidated
    /// (`invalidate_vmid`), so the VMID can be reused.
    ///
    /// # Errors
    ///
    /// `NotFound` (no such VM), `Busy` (its stage-2 is marked active: a vCPU is loaded).
    pub fn vm_teardown(
        &mut self,
        vm: VmId,
        tlb: &mut impl TlbMaintenance,
    ) -> Result<(), OwnershipError> {
        let slot = self.slot(vm)?;
        let Some(table) = self.guests[slot].take() else {
            return Err(OwnershipError::NotFound);
        };
        // Dropping the table frees its pages into its pool, which is dropped with it; they are
        // marked `HypPool(vm)` and become pending reclaim with the scan below.
        if let Err(table) = table.release_pages(|_| {}) {
            // A vCPU of the VM is loaded somewhere: keep the VM, change nothing.
            self.guests[slot] = Some(table);
            return Err(OwnershipError::Busy);
        }
        // The host loses what the guest shared with it, in runs, one stage-1 invalidation.
        {
            let mut batch = self.host.unmap_batch(tlb);
            for bank in &self.banks[..self.n_banks] {
                let mut run: Option<usize> = None;
                let pages = (bank.end - bank.start) / PAGE_SIZE;
                for i in 0..=pages {
                    let pa = bank.start + i * PAGE_SIZE;
                    let shared = i < pages
                        && PageState::decode(self.meta[bank.first_entry + i])
                            == Some(PageState::SharedWithHost(vm));
                    match (shared, run) {
                        (true, None) => run = Some(pa),
                        (false, Some(s)) => {
                            batch.remove_covering(s, pa).map_err(commit_error)?;
                            run = None;
                        }
                        _ => {}
                    }
                }
            }
            batch.finish();
        }
        for entry in self.meta.iter_mut() {
            match PageState::decode(*entry) {
                Some(
                    PageState::Owned(Owner::Guest(g))
                    | PageState::SharedWithHost(g)
                    | PageState::HypPool(g),
                ) if g == vm => {
                    *entry = PageState::PendingReclaim(vm).encode();
                }
                Some(PageState::HostSharedWith(Borrower::Guest(g))) if g == vm => {
                    *entry = PageState::Owned(Owner::Host).encode();
                }
                _ => {}
            }
        }
        tlb.invalidate_vmid(vm.get());
        Ok(())
    }

    /// The host takes back pages of a torn-down VM: each is zeroed and cleaned to PoC (I5),
    /// then owned by the host, which maps it on its next access.
    ///
    /// # Errors
    ///
    /// `InvalidParameter`, `Range`, `Denied` (a page is not pending reclaim, e.g. it belongs
    /// to a live VM).
    pub fn host_reclaim(
        &mut self,
        pfn: usize,
        nr: usize,
        san: &mut impl PageSanitizer,
    ) -> Result<(), OwnershipError> {
        let (start, end) = self.ram_range(pfn, nr)?;
        self.require_pages(start, end, |s| matches!(s, PageState::PendingReclaim(_)))?;
        for pa in (start..end).step_by(PAGE_SIZE) {
            san.zero_and_clean(pa);
        }
        self.set_range(start, end, PageState::Owned(Owner::Host));
        Ok(())
    }
}
