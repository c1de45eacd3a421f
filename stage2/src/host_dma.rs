//! The host's DMA view, kept in step with the ownership record: the hook through which every
//! change of what the host may access reaches the IOMMU.
//!
//! Devices cannot take a fault and retry the way a CPU does on a stage-2 fault, so unlike the
//! host stage-2 (filled lazily) the DMA tables are eager: a page is mapped for DMA exactly
//! while the host may access it (it owns it, or borrows it: `PageState::host_may_access`).
//! [`crate::Ownership`] calls [`HostDma::revoke`] for pages that leave the host, before the
//! call that takes them returns and before anyone else can use them, and [`HostDma::grant`]
//! for pages that come back, before the call returns.

/// An IOMMU translation for every DMA master the host controls, identity-mapped.
pub trait HostDma {
    /// The host's devices may reach `[start, end)` (page-aligned RAM). Must not fail: table
    /// memory is reserved for the worst case at boot (`memory_plan`).
    fn grant(&mut self, start: usize, end: usize);

    /// The host's devices lose `[start, end)`. When this returns, no device can reach the
    /// pages any more: the entries are gone and the IOMMU's TLB invalidation has completed
    /// (on an SMMUv3: TLBI commands then `CMD_SYNC`, waited for). An implementation that
    /// cannot finish that stops the system rather than return.
    fn revoke(&mut self, start: usize, end: usize);

    /// Whether the page containing `pa` is mapped for DMA now (a table walk: for invariant
    /// checks).
    fn is_granted(&self, pa: usize) -> bool;
}
