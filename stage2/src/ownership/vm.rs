//! A VM's life: creation and top-up of its page-table pool, teardown, and the host's
//! reclaim of what the VM left behind.

use super::{
    MAX_PAGES_PER_CALL, Owner, Ownership, OwnershipError, PageSanitizer, PageState, VmId,
    commit_error,
};
use crate::pgtable::Stage2Table;
use crate::pool::{PAGE_SIZE, PagePool};
use crate::tlb::TlbMaintenance;

/// Most record entries one [`Ownership::vm_teardown_step`] changes: as many as one call may
/// move (`MAX_PAGES_PER_CALL`), so a teardown step holds the memory lock no longer than a
/// VM_RECLAIM of 512 pages.
pub const TEARDOWN_PAGES_PER_STEP: usize = MAX_PAGES_PER_CALL;
/// Most descriptor lookups (a descent of at most four loads from the root) one
/// [`Ownership::vm_teardown_step`] makes in the VM's stage-2: bounds the step's walk over
/// unmapped IPA space, which the guest can make large (relinquished pages leave empty
/// tables behind).
pub const TEARDOWN_LOOKUPS_PER_STEP: usize = 512;

/// Where a VM's teardown has got to (a dying VM's slot holds one).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Teardown {
    /// The library's root page has been moved.
    pub(super) started: bool,
    /// Next IPA of the VM's stage-2 to visit: every page mapped below it is pending
    /// reclaim, every page mapped at or above it still the VM's (checked by `check`).
    pub(super) cursor: usize,
    /// The whole stage-2 has been visited: the free pool pages are left.
    pub(super) walked: bool,
    /// The first stage-2 error met (none is expected), returned by the last step.
    error: Option<OwnershipError>,
}

/// What one [`Ownership::vm_teardown_step`] did.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct TeardownProgress {
    /// Record entries it changed (at most [`TEARDOWN_PAGES_PER_STEP`]).
    pub pages: usize,
    /// Descriptor lookups it made (at most [`TEARDOWN_LOOKUPS_PER_STEP`]).
    pub lookups: usize,
    /// The teardown is complete: the slot is free, every page of the VM is pending reclaim.
    pub finished: bool,
}

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

    /// Tears `vm` down in one go: [`vm_teardown_begin`](Self::vm_teardown_begin), then one
    /// step with no bound (work grows with the VM). The result is the same as EL2's
    /// chunked teardown, which releases the memory lock between bounded steps; this form
    /// is for callers that hold the record alone (tests, the fuzzer's model).
    ///
    /// # Errors
    ///
    /// As the two calls: `NotFound`, `Busy`.
    pub fn vm_teardown(
        &mut self,
        vm: VmId,
        tlb: &mut impl TlbMaintenance,
    ) -> Result<(), OwnershipError> {
        self.vm_teardown_begin(vm)?;
        // One step with no bound: one host stage-1 invalidation, as one call.
        let progress = self.teardown_step_within(vm, tlb, usize::MAX / 2, usize::MAX / 2)?;
        debug_assert!(progress.finished);
        Ok(())
    }

    /// Starts tearing `vm` down: from now on the VM is *dying*. No transition accepts it any
    /// more (they say `NotFound`, as for a VM that does not exist), its slot and VMID stay
    /// taken, and nothing else changes: [`vm_teardown_step`](Self::vm_teardown_step) then
    /// moves its pages to pending reclaim, a bounded number per step, and frees the slot
    /// with the last step.
    ///
    /// While a VM is dying, a page whose state names it (its own pages, its pool, and pages
    /// already pending reclaim for it) is neither handed back by
    /// [`host_reclaim`](Self::host_reclaim) (`Busy`: retry once the teardown has finished)
    /// nor mapped for the host, so a caller that releases the lock between steps still
    /// presents the whole teardown as one change to every other call.
    ///
    /// # Errors
    ///
    /// `NotFound` (no such VM, or it is dying already), `Busy` (its stage-2 is marked
    /// active: a vCPU is loaded; or a donation to it is between
    /// [`host_donate_guest_begin`](Self::host_donate_guest_begin) and its finish: EL2 is
    /// still zeroing those pages). Nothing is changed then.
    pub fn vm_teardown_begin(&mut self, vm: VmId) -> Result<(), OwnershipError> {
        let slot = self.slot(vm)?;
        if self.zeroing[slot] != 0 {
            return Err(OwnershipError::Busy);
        }
        if self.guests[slot].as_ref().is_none_or(Stage2Table::active) {
            return Err(OwnershipError::Busy);
        }
        self.dying[slot] = Some(Teardown::default());
        self.n_dying += 1;
        Ok(())
    }

    /// Whether `vm` is being torn down (between
    /// [`vm_teardown_begin`](Self::vm_teardown_begin) and the step that finishes it).
    pub fn vm_dying(&self, vm: VmId) -> bool {
        self.n_dying != 0
            && self
                .dying
                .get(usize::from(vm.get()) - 1)
                .is_some_and(Option::is_some)
    }

    /// Whether `state` names a VM that is dying: its pages, its pool, and pages pending
    /// reclaim with its id.
    fn names_dying_vm(&self, state: PageState) -> bool {
        match state {
            PageState::Owned(Owner::Guest(vm))
            | PageState::SharedWithHost(vm)
            | PageState::HypPool(vm)
            | PageState::PendingReclaim(vm)
            | PageState::ZeroingForGuest(vm) => self.vm_dying(vm),
            _ => false,
        }
    }

    /// One step of `vm`'s teardown: at most [`TEARDOWN_LOOKUPS_PER_STEP`] descriptor lookups
    /// in the VM's own stage-2 and at most [`TEARDOWN_PAGES_PER_STEP`] record entries changed
    /// (the pages the VM owned, shared with the host or kept as page tables and free pool
    /// pages, each → pending reclaim), whatever the VM's size. The host loses what the guest
    /// had shared with it in this step's pages, with one stage-1 invalidation for the step
    /// (I6) and one DMA revocation per run of contiguous pages. The step that finds nothing
    /// left invalidates the VMID's TLB entries (`invalidate_vmid`) and frees the slot (the
    /// VMID can be reused): it reports `finished`.
    ///
    /// Order: the VM's stage-2 is walked in IPA order from a cursor; each table page is
    /// moved when the walk first enters it (it stays readable: pending-reclaim pages are
    /// EL2's, and `host_reclaim` waits for the teardown); the free pool pages last. Nothing
    /// in the VM's stage-2 is changed (no vCPU can load it: it is dying and inactive), so
    /// the walk needs no page-table memory and cannot fail.
    ///
    /// # Errors
    ///
    /// `NotFound` if `vm` is not dying. A stage-2 error while the host loses a shared page
    /// (which cannot happen: removing whole leaves needs no memory) is kept and returned by
    /// the finishing step, after everything else was done.
    pub fn vm_teardown_step(
        &mut self,
        vm: VmId,
        tlb: &mut impl TlbMaintenance,
    ) -> Result<TeardownProgress, OwnershipError> {
        self.teardown_step_within(vm, tlb, TEARDOWN_PAGES_PER_STEP, TEARDOWN_LOOKUPS_PER_STEP)
    }

    /// [`vm_teardown_step`](Self::vm_teardown_step) with other bounds (tests use small ones
    /// to interleave calls between many steps of small VMs). `max_pages` is raised to 8 at
    /// least, which a step always needs to make progress (the root, then a descent through
    /// up to three tables to a page).
    pub(super) fn teardown_step_within(
        &mut self,
        vm: VmId,
        tlb: &mut impl TlbMaintenance,
        max_pages: usize,
        max_lookups: usize,
    ) -> Result<TeardownProgress, OwnershipError> {
        let max_pages = max_pages.max(8);
        let max_lookups = max_lookups.max(1);
        let slot = usize::from(vm.get()) - 1;
        let Some(mut td) = self.dying.get(slot).copied().flatten() else {
            return Err(OwnershipError::NotFound);
        };
        let Some(table) = self.guests[slot].take() else {
            return Err(OwnershipError::NotFound);
        };
        let banks = &self.banks[..self.n_banks];
        let entry_of = |pa: usize| {
            banks
                .iter()
                .find(|b| b.start <= pa && pa < b.end)
                .map(|b| b.first_entry + (pa - b.start) / PAGE_SIZE)
        };
        let meta = &mut *self.meta;
        let mut dma = self.dma.as_deref_mut();
        let pending = PageState::PendingReclaim(vm).encode();
        let mut progress = TeardownProgress::default();
        if !td.walked {
            let mut dma_run: Option<(usize, usize)> = None;
            let mut batch = self.host.unmap_batch(tlb);
            let mut to_pending = |pa: usize| {
                let Some(i) = entry_of(pa) else { return };
                match PageState::decode(meta[i]) {
                    Some(PageState::Owned(Owner::Guest(g)) | PageState::HypPool(g)) if g == vm => {
                        meta[i] = pending;
                    }
                    Some(PageState::SharedWithHost(g)) if g == vm => {
                        if let Err(e) = batch.remove_covering(pa, pa + PAGE_SIZE) {
                            td.error.get_or_insert(commit_error(e));
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
            };
            if !td.started {
                // The library's root page (the directory, with concatenated roots).
                to_pending(table.tree_root_pa());
                progress.pages += 1;
                td.started = true;
            }
            let walk = table.walk_for_teardown(
                &mut td.cursor,
                max_lookups,
                max_pages - progress.pages,
                &mut to_pending,
            );
            progress.pages += walk.pages;
            progress.lookups += walk.lookups;
            td.walked = walk.finished;
            if let (Some((s, e)), Some(dma)) = (dma_run, dma.as_mut()) {
                dma.revoke(s, e);
            }
            batch.finish();
        }
        if td.walked {
            // Free pool pages: off the pool's list, one by one.
            table.take_free_pool_pages(max_pages - progress.pages, |pa| {
                if let Some(i) = entry_of(pa) {
                    meta[i] = pending;
                }
                progress.pages += 1;
            });
            if table.pool_free_pages() == 0 {
                tlb.invalidate_vmid(vm.get());
                // Every page of the table's pool is pending reclaim now, so the table is not
                // dropped (that would walk the whole tree again and push every table page
                // onto a pool nobody keeps): forgetting it frees nothing and leaks nothing,
                // its memory is those pages.
                core::mem::forget(table);
                self.dying[slot] = None;
                self.n_dying -= 1;
                progress.finished = true;
                return td.error.map_or(Ok(progress), Err);
            }
        }
        self.guests[slot] = Some(table);
        self.dying[slot] = Some(td);
        Ok(progress)
    }

    /// The host takes back pages of a torn-down VM: each is zeroed and cleaned to PoC (I5),
    /// then owned by the host, which maps it on its next access. With a deferring `san` the
    /// pages stay `Sanitizing` until [`sanitized_to_host`](Self::sanitized_to_host).
    ///
    /// # Errors
    ///
    /// `InvalidParameter`, `Range`, `Denied` (a page is not pending reclaim, e.g. it belongs
    /// to a live VM), `Busy` (every page is pending reclaim or belongs to a dying VM, and
    /// some page names a VM whose teardown has begun and not finished: retry after it;
    /// nothing is changed).
    pub fn host_reclaim(
        &mut self,
        pfn: usize,
        nr: usize,
        san: &mut impl PageSanitizer,
    ) -> Result<(), OwnershipError> {
        let (start, end) = self.ram_range(pfn, nr)?;
        if self.n_dying == 0 {
            self.require_pages(start, end, |s| matches!(s, PageState::PendingReclaim(_)))?;
        } else {
            self.require_pages(start, end, |s| {
                matches!(s, PageState::PendingReclaim(_)) || self.names_dying_vm(s)
            })?;
            // A page of a VM whose teardown is under way: the teardown is one change for
            // every other call, so this call waits for it rather than see it half done.
            if !self.all_pages(start, end, |s| !self.names_dying_vm(s)) {
                return Err(OwnershipError::Busy);
            }
        }
        for pa in (start..end).step_by(PAGE_SIZE) {
            self.zeroed_to_host(pa, san);
        }
        Ok(())
    }
}
