//! Transitions between the host and EL2: sharing and donating pages.

use super::{Borrower, Owner, Ownership, OwnershipError, PageState};
use crate::tlb::TlbMaintenance;

impl<const MAX_VMS: usize> Ownership<'_, MAX_VMS> {
    /// The host shares pages it owns exclusively with EL2: the host keeps them mapped, EL2 may
    /// use them ([`is_shared_with_hyp`](Self::is_shared_with_hyp)).
    ///
    /// # Errors
    ///
    /// `InvalidParameter` (nr), `Range` (not inside one RAM bank), `Denied` (a page is not
    /// owned exclusively by the host).
    pub fn host_share_hyp(&mut self, pfn: usize, nr: usize) -> Result<(), OwnershipError> {
        let (start, end) = self.ram_range(pfn, nr)?;
        self.require_pages(start, end, |s| s == PageState::Owned(Owner::Host))?;
        self.set_range(start, end, PageState::HostSharedWith(Borrower::Hyp));
        Ok(())
    }

    /// The host takes back pages it shared with EL2.
    ///
    /// # Errors
    ///
    /// `InvalidParameter`, `Range`, `Denied` (a page is not shared by the host with EL2).
    pub fn host_unshare_hyp(&mut self, pfn: usize, nr: usize) -> Result<(), OwnershipError> {
        let (start, end) = self.ram_range(pfn, nr)?;
        self.require_pages(start, end, |s| {
            s == PageState::HostSharedWith(Borrower::Hyp)
        })?;
        self.set_range(start, end, PageState::Owned(Owner::Host));
        Ok(())
    }

    /// The host gives pages it owns exclusively to EL2 (for VM state, pools): they leave the
    /// host stage-2 (I6 sequence, VMID 0) and its DMA view.
    ///
    /// # Errors
    ///
    /// `InvalidParameter`, `Range`, `Denied` (a page is not owned exclusively by the host).
    pub fn host_donate_hyp(
        &mut self,
        pfn: usize,
        nr: usize,
        tlb: &mut impl TlbMaintenance,
    ) -> Result<(), OwnershipError> {
        let (start, end) = self.ram_range(pfn, nr)?;
        self.require_pages(start, end, |s| s == PageState::Owned(Owner::Host))?;
        self.host_unmap(start, end, tlb)?;
        self.set_range(start, end, PageState::Owned(Owner::Hyp));
        Ok(())
    }

    /// EL2 gives pages it owns back to the host, which maps them on its next access. EL2 must
    /// have wiped anything secret first. Never for pages of EL2's fixed ranges, VM pools or
    /// pages pending reclaim.
    ///
    /// # Errors
    ///
    /// `InvalidParameter`, `Range`, `Denied` (a page is not owned by EL2 outright: it belongs
    /// to someone else, a VM's pool, is held for reclaim, or lies in EL2's fixed ranges).
    pub fn hyp_donate_host(&mut self, pfn: usize, nr: usize) -> Result<(), OwnershipError> {
        let (start, end) = self.ram_range(pfn, nr)?;
        if self.in_hyp_ranges(start, end) {
            return Err(OwnershipError::Denied);
        }
        self.require_pages(start, end, |s| s == PageState::Owned(Owner::Hyp))?;
        self.set_range(start, end, PageState::Owned(Owner::Host));
        self.dma_grant(start, end);
        Ok(())
    }
}
