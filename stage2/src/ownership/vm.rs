//! A VM's life: creation and top-up of its page-table pool, teardown, and the host's
//! reclaim of what the VM left behind.

use super::{Owner, Ownership, OwnershipError, PageSanitizer, PageState, VmId, commit_error};
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
    /// Work, all under the memory lock: one visit per leaf of the VM's own stage-2 and per
    /// page it maps (by I2 every page the VM owns or borrows is mapped there exactly once),
    /// plus one per page of its pool; never a pass over the whole record. So the call is
    /// bounded by the VM's size (pages donated or lent to it plus pool pages; at most 512 per
    /// earlier call that gave it memory), not by the machine's RAM.
    ///
    /// # Errors
    ///
    /// `NotFound` (no such VM), `Busy` (its stage-2 is marked active: a vCPU is loaded; or
    /// a donation to it is between [`host_donate_guest_begin`](Self::host_donate_guest_begin)
    /// and its finish: EL2 is still zeroing those pages).
    pub fn vm_teardown(
        &mut self,
        vm: VmId,
        tlb: &mut impl TlbMaintenance,
    ) -> Result<(), OwnershipError> {
        let slot = self.slot(vm)?;
        if self.zeroing[slot] != 0 && self.guests[slot].is_some() {
            return Err(OwnershipError::Busy);
        }
        let Some(table) = self.guests[slot].take() else {
            return Err(OwnershipError::NotFound);
        };
        if table.active() {
            // A vCPU of the VM is loaded somewhere: keep the VM, change nothing.
            self.guests[slot] = Some(table);
            return Err(OwnershipError::Busy);
        }
        let banks = &self.banks[..self.n_banks];
        let entry_of = |pa: usize| {
            banks
                .iter()
                .find(|b| b.start <= pa && pa < b.end)
                .map(|b| b.first_entry + (pa - b.start) / PAGE_SIZE)
        };
        let meta = &mut *self.meta;
        let mut dma = self.dma.as_deref_mut();
        let mut dma_run: Option<(usize, usize)> = None;
        let pending = PageState::PendingReclaim(vm).encode();
        let mut result = Ok(());
        // The VM's pages, from its own stage-2. The host loses what the guest shared with
        // it, in one batch: one stage-1 invalidation.
        {
            let mut batch = self.host.unmap_batch(tlb);
            table.for_each_leaf(0, table.ipa_size(), |leaf| {
                for pa in (leaf.block_pa..leaf.block_pa + leaf.size()).step_by(PAGE_SIZE) {
                    let Some(i) = entry_of(pa) else { continue };
                    match PageState::decode(meta[i]) {
                        Some(PageState::Owned(Owner::Guest(g))) if g == vm => meta[i] = pending,
                        Some(PageState::SharedWithHost(g)) if g == vm => {
                            if let Err(e) = batch.remove_covering(pa, pa + PAGE_SIZE) {
                                result = Err(commit_error(e));
                            }
                            // The host's devices lose it too, in runs of contiguous pages
                            // (one IOMMU invalidation and sync per run).
                            dma_run = match dma_run {
                                Some((s, e)) if e == pa => Some((s, pa + PAGE_SIZE)),
                                Some((s, e)) => {
                                    if let Some(dma) = dma.as_deref_mut() {
                                        dma.revoke(s, e);
                                    }
                                    Some((pa, pa + PAGE_SIZE))
                                }
                                None => Some((pa, pa + PAGE_SIZE)),
                            };
                            meta[i] = pending;
                        }
                        _ => {}
                    }
                }
            });
            if let (Some((s, e)), Some(dma)) = (dma_run, dma.as_mut()) {
                dma.revoke(s, e);
            }
            batch.finish();
        }
        // Its pool (tables in use and free pages alike); dropping the table frees nothing
        // else.
        let released = table.release_pages(|pa| {
            if let Some(i) = entry_of(pa) {
                meta[i] = pending;
            }
        });
        debug_assert!(released.is_ok(), "checked inactive above");
        tlb.invalidate_vmid(vm.get());
        result
    }

    /// The host takes back pages of a torn-down VM: each is zeroed and cleaned to PoC (I5),
    /// then owned by the host, which maps it on its next access. With a deferring `san` the
    /// pages stay `Sanitizing` until [`sanitized_to_host`](Self::sanitized_to_host).
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
            self.zeroed_to_host(pa, san);
        }
        Ok(())
    }
}
