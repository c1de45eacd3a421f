//! Stage-2 page tables and the per-page ownership record of the EL2 payload.
//!
//! Pure logic: builds and is tested on the development machine, and builds for
//! `aarch64-unknown-none`. Hardware operations (TLB maintenance, zeroing and cleaning pages)
//! are behind traits that the EL2 binary implements.
//!
//! - [`pool`]: page pools and the `Translation` that takes table pages from them.
//! - [`pgtable`]: stage-2 configuration and tables.
//! - [`tlb`]: the TLB-maintenance trait and the TLBI/VTTBR operand encodings;
//!   [`cache_geometry`]: cache-line and DC ZVA sizes from the ID registers.
//! - [`host_dma`]: the hook that keeps the host's DMA (IOMMU) view in step with the record;
//!   [`dma_table`]: the stage-1 identity table an SMMUv3 walks for it; [`smmuv3`]: the SMMU's
//!   descriptors, commands and queue arithmetic.
//! - [`ownership`]: the per-page ownership record and its transitions (invariants I1-I7).
//! - [`memory_plan`]: how much memory EL2 carves out for all of it, and where.

#![cfg_attr(not(test), no_std)]

pub mod cache_geometry;
pub mod dma_table;
pub mod host_dma;
pub mod memory_plan;
pub mod ownership;
pub mod pgtable;
pub mod pool;
pub mod smmuv3;
pub mod tlb;

pub use dma_table::DmaTable;
pub use host_dma::HostDma;
pub use ownership::{
    Borrower, FaultAction, MAX_PAGES_PER_CALL, Owner, OwnerState, Ownership, OwnershipError,
    PageSanitizer, PageState, TEARDOWN_LOOKUPS_PER_STEP, TEARDOWN_PAGES_PER_STEP, TeardownProgress,
    Violation, VmId, host_fault_is_fixable_by_mapping, metadata_bytes, metadata_entries,
};
pub use pgtable::{
    AttrEncoding, BlockStats, Leaf, MemKind, Stage2Config, Stage2Error, Stage2Table, TeardownWalk,
    UnmapBatch, stage2_config,
};
pub use pool::{
    NoMemory, PAGE_SIZE, PagePool, PoolTranslation, granule_at_level, pages_needed_to_map,
};
pub use tlb::TlbMaintenance;
