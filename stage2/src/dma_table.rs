//! The host's DMA translation, identity-mapped, in the format the SMMU walks: a VMSAv8-64
//! stage-1 table (4 KiB granule, 48-bit input, level-0 root) that a context descriptor
//! points at, or a VMSAv8-64 stage-2 table (4 KiB granule, the CPU's start-level and
//! concatenation rules for the SMMU's output size: `pgtable::stage2_config`) that a
//! stage-2-only STE points at. Both built with `aarch64-paging`.
//!
//! Stage 2 where the SMMU has it, stage 1 where it has only that (QEMU 7.2's: `IDR0.S1P`
//! without `S2P`; `smmuv3::mode`); with EL2 owning the tables and the host never seeing the
//! SMMU, stage 1 confines DMA as well.
//!
//! Only 4 KiB pages, never blocks: a page that leaves the host must go without taking its
//! neighbours with it, and splitting a live block would need break-before-make, during which
//! the host's devices would fault (they cannot retry). With pages only, every change is an
//! invalid <-> valid flip of one leaf, and once the RAM banks are mapped the tables never
//! need more than [`table_pages`] (stage 1) or [`table_pages_stage2`] pages, the worst case
//! (every RAM page mapped), which the pool holds: a change can never run out of memory.
//!
//! The table is never marked active in `aarch64-paging`'s sense, so the library issues no CPU
//! TLB maintenance for it; the SMMU's invalidation is the owner's job (`HostDma::revoke`).

use crate::pgtable::{AttrEncoding, MemKind, Stage2Config, stage2_config, stage2_mapping};
use crate::pool::{PAGE_SIZE, PagePool, PoolTranslation, pages_needed_to_map};
use aarch64_paging::Mapping;
use aarch64_paging::descriptor::{El1Attributes, PhysicalAddress, Stage2Attributes};
use aarch64_paging::paging::{Constraints, El1And0, MemoryRegion, Stage2, VaRange};

/// Root level: 4 KiB granule, 48-bit input addresses (`CD.T0SZ` = 16).
const ROOT_LEVEL: usize = 0;
/// Input-address bits the table covers.
pub const INPUT_BITS: u32 = 48;
/// `CD.T0SZ`.
pub const T0SZ: u64 = 64 - INPUT_BITS as u64;
/// `CD.MAIR`: index 0 Device-nGnRE, index 1 Normal write-back read/write-allocate (inner
/// and outer).
pub const MAIR: u64 = 0x04 | (0xff << 8);

/// A DMA page: normal write-back memory, inner shareable, read-write at every privilege
/// (the SMMU presents PCIe requests as unprivileged unless told otherwise), never executable,
/// access flag set (no access-flag faults).
const DMA_PAGE: El1Attributes = El1Attributes::VALID
    .union(El1Attributes::ATTRIBUTE_INDEX_1)
    .union(El1Attributes::INNER_SHAREABLE)
    .union(El1Attributes::ACCESSED)
    .union(El1Attributes::USER)
    .union(El1Attributes::PXN)
    .union(El1Attributes::UXN);

/// A stage-2 DMA page: what the host's own stage 2 maps RAM as (normal write-back inner and
/// outer, inner shareable, S2AP read-write, access flag set; combined with the device's
/// attributes, the stricter wins), plus execute-never.
fn s2_dma_page() -> Stage2Attributes {
    MemKind::Normal.attributes(AttrEncoding::Combined) | Stage2Attributes::XN
}

/// Stage-2 changes are cut at 1 GiB boundaries: the library frees a table whose whole range
/// is unmapped in one call, and a whole 512 GiB would free one of the concatenated roots the
/// SMMU walks (they sit under the library's directory page, `pgtable::stage2_mapping`).
const S2_CHUNK: usize = 1 << 30;

/// Table pages (the root included) that a stage-1 [`DmaTable`] over `banks` needs, ever.
pub fn table_pages(banks: &[(usize, usize)]) -> usize {
    1 + banks
        .iter()
        .map(|&(s, e)| pages_needed_to_map(s, e, ROOT_LEVEL))
        .sum::<usize>()
}

/// Table pages a stage-2 [`DmaTable`] for `config` over `banks` needs, ever: the root (the
/// directory, the concatenated tables and the pages an aligned run may leave before it, with
/// concatenation), then the tables below the hardware root.
pub fn table_pages_stage2(banks: &[(usize, usize)], config: &Stage2Config) -> usize {
    config.root_pages_worst_case()
        + banks
            .iter()
            .map(|&(s, e)| pages_needed_to_map(s, e, config.root_level))
            .sum::<usize>()
}

/// The most table pages any format EL2 may choose needs over `banks` (the memory plan is made
/// before the SMMU's ID registers are read).
pub fn worst_case_table_pages(banks: &[(usize, usize)]) -> usize {
    (0..=6)
        .map(|pa_range| table_pages_stage2(banks, &stage2_config(pa_range)))
        .fold(table_pages(banks), usize::max)
}

/// A range the table was asked to change is not inside the RAM banks it was built for, or
/// not page-aligned.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct OutsideRam {
    pub start: usize,
    pub end: usize,
}

impl core::fmt::Display for OutsideRam {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "DMA range {:#x}..{:#x} is not page-aligned RAM",
            self.start, self.end
        )
    }
}

enum Tree {
    Stage1(Mapping<PoolTranslation, El1And0>),
    Stage2 {
        mapping: Mapping<PoolTranslation, Stage2>,
        /// What the STE's S2TTB names: the root, or the first concatenated table.
        hw_root: usize,
    },
}

/// The identity table for the host's DMA.
pub struct DmaTable {
    tree: Tree,
    banks: [(usize, usize); crate::ownership::MAX_RAM_BANKS],
    n_banks: usize,
}

/// Whether `banks` can be mapped by a table whose input addresses end at `limit`.
fn banks_fit(banks: &[(usize, usize)], limit: usize) -> bool {
    banks.len() <= crate::ownership::MAX_RAM_BANKS
        && banks.iter().all(|&(s, e)| {
            s < e && s.is_multiple_of(PAGE_SIZE) && e.is_multiple_of(PAGE_SIZE) && e <= limit
        })
}

impl DmaTable {
    fn with_tree(tree: Tree, banks: &[(usize, usize)]) -> Self {
        let mut table = DmaTable {
            tree,
            banks: [(0, 0); crate::ownership::MAX_RAM_BANKS],
            n_banks: banks.len(),
        };
        table.banks[..banks.len()].copy_from_slice(banks);
        table
    }

    /// An empty stage-1 table over `banks`, whose tables come from `pool`. Tables are
    /// created as pages are mapped (and the library may free a table whose entries all go
    /// invalid), so at no time does the table hold more than [`table_pages`] pages: a pool of
    /// that size never runs dry.
    ///
    /// Returns `None` if there are more banks than the record allows, a bank is not
    /// page-aligned or lies beyond 48 bits, or `pool` has fewer than [`table_pages`] pages.
    pub fn new(pool: PagePool, banks: &[(usize, usize)]) -> Option<Self> {
        if !banks_fit(banks, 1 << INPUT_BITS) || pool.free_pages() < table_pages(banks) {
            return None;
        }
        let mapping = Mapping::with_asid_and_va_range(
            PoolTranslation::new(pool),
            0,
            ROOT_LEVEL,
            El1And0,
            VaRange::Lower,
        );
        Some(Self::with_tree(Tree::Stage1(mapping), banks))
    }

    /// An empty stage-2 table for `config` over `banks` (input address = output address), as
    /// [`new`](Self::new) with [`table_pages_stage2`] pages.
    ///
    /// Returns `None` as [`new`](Self::new), or if a bank ends beyond the configuration's
    /// input size.
    pub fn new_stage2(
        pool: PagePool,
        banks: &[(usize, usize)],
        config: &Stage2Config,
    ) -> Option<Self> {
        Self::build_stage2(pool, banks, config, table_pages_stage2(banks, config))
    }

    fn build_stage2(
        pool: PagePool,
        banks: &[(usize, usize)],
        config: &Stage2Config,
        pages: usize,
    ) -> Option<Self> {
        if !banks_fit(banks, config.ipa_size()) || pool.free_pages() < pages {
            return None;
        }
        let (mapping, hw_root) = stage2_mapping(pool, config).ok()?;
        Some(Self::with_tree(Tree::Stage2 { mapping, hw_root }, banks))
    }

    fn write(&mut self, start: usize, end: usize, valid: bool) -> Result<(), OutsideRam> {
        let inside = start < end
            && start.is_multiple_of(PAGE_SIZE)
            && end.is_multiple_of(PAGE_SIZE)
            && self.banks[..self.n_banks]
                .iter()
                .any(|&(s, e)| s <= start && end <= e);
        if !inside {
            return Err(OutsideRam { start, end });
        }
        let refused = |_| OutsideRam { start, end };
        match &mut self.tree {
            Tree::Stage1(mapping) => {
                let attrs = if valid {
                    DMA_PAGE
                } else {
                    El1Attributes::empty()
                };
                mapping
                    .map_range(
                        &MemoryRegion::new(start, end),
                        PhysicalAddress(start),
                        attrs,
                        Constraints::NO_BLOCK_MAPPINGS,
                    )
                    .map_err(refused)
            }
            Tree::Stage2 { mapping, .. } => {
                // Unmaps may write invalid "blocks": an invalid entry whose whole range is
                // unmapped then stays one invalid entry instead of being split into tables
                // of invalid entries (which would take pool pages for nothing).
                let (attrs, constraints) = if valid {
                    (s2_dma_page(), Constraints::NO_BLOCK_MAPPINGS)
                } else {
                    (Stage2Attributes::empty(), Constraints::empty())
                };
                let mut at = start;
                while at < end {
                    let to = (at / S2_CHUNK + 1).saturating_mul(S2_CHUNK).min(end);
                    mapping
                        .map_range(
                            &MemoryRegion::new(at, to),
                            PhysicalAddress(at),
                            attrs,
                            constraints,
                        )
                        .map_err(refused)?;
                    at = to;
                }
                Ok(())
            }
        }
    }

    /// Maps `[start, end)` (inside one bank) identity for DMA. Takes no memory.
    ///
    /// # Errors
    ///
    /// [`OutsideRam`] if the range is not page-aligned RAM of one bank.
    pub fn map(&mut self, start: usize, end: usize) -> Result<(), OutsideRam> {
        self.write(start, end, true)
    }

    /// Makes `[start, end)` (inside one bank) invalid. The caller invalidates the IOMMU's TLB.
    ///
    /// # Errors
    ///
    /// As [`map`](Self::map).
    // Not inlined: the payload check `payload_maintenance_sequences` finds this call in
    // the SMMU revocation, before the invalidation.
    #[inline(never)]
    pub fn unmap(&mut self, start: usize, end: usize) -> Result<(), OutsideRam> {
        self.write(start, end, false)
    }

    /// Whether the page containing `pa` is mapped, and to itself.
    pub fn is_mapped(&self, pa: usize) -> bool {
        let page = pa & !(PAGE_SIZE - 1);
        let region = MemoryRegion::new(page, page + PAGE_SIZE);
        let mut mapped = false;
        // Level 3 only: the table holds no blocks, and the stage-1 and stage-2 descriptor
        // formats agree on the valid bit and the output address.
        let _ = match &self.tree {
            Tree::Stage1(mapping) => mapping.walk_range(&region, &mut |_, desc, level| {
                mapped |= level == 3 && desc.is_valid() && desc.output_address().0 == page;
                Ok(())
            }),
            Tree::Stage2 { mapping, .. } => mapping.walk_range(&region, &mut |_, desc, level| {
                mapped |= level == 3 && desc.is_valid() && desc.output_address().0 == page;
                Ok(())
            }),
        };
        mapped
    }

    /// Physical address of the root table the SMMU walks (`CD.TTB0`, or `STE.S2TTB`: the
    /// first of the concatenated tables, if any).
    pub fn root_pa(&self) -> usize {
        match &self.tree {
            Tree::Stage1(mapping) => mapping.root_address().0,
            Tree::Stage2 { hw_root, .. } => *hw_root,
        }
    }

    /// Free pages left in the table pool (0 once built; kept for tests).
    pub fn pool_free_pages(&self) -> usize {
        match &self.tree {
            Tree::Stage1(mapping) => mapping.translation().free_pages(),
            Tree::Stage2 { mapping, .. } => mapping.translation().free_pages(),
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::pool::test_memory::Arena;

    const BANK: (usize, usize) = (0x4000_0000, 0x4000_0000 + (64 << 20));

    fn table(arena: &Arena) -> DmaTable {
        // SAFETY: the arena is ours, page-aligned and outlives the table.
        let pool = unsafe { PagePool::new(arena.base(), arena.len()) };
        DmaTable::new(pool, &[BANK]).unwrap()
    }

    #[test]
    fn the_worst_case_pool_is_exactly_enough_for_every_page_of_ram() {
        let pages = table_pages(&[BANK]);
        // Root, one level-1, one level-2, 32 level-3 tables for 64 MiB.
        assert_eq!(pages, 1 + 1 + 1 + 32);
        let arena = Arena::new(pages * PAGE_SIZE, PAGE_SIZE);
        let mut t = table(&arena);
        t.map(BANK.0, BANK.1).unwrap();
        assert_eq!(t.pool_free_pages(), 0);
        // Churn: holes and refills never need more.
        for i in 0..64 {
            let s = BANK.0 + i * (1 << 20) % (BANK.1 - BANK.0);
            t.unmap(s, s + (2 << 20).min(BANK.1 - s)).unwrap();
            t.map(s + PAGE_SIZE, s + 2 * PAGE_SIZE).unwrap();
        }
        t.map(BANK.0, BANK.1).unwrap();
        t.unmap(BANK.0 + 0x5000, BANK.0 + 0x7000).unwrap();
        t.map(BANK.0 + 0x6000, BANK.0 + 0x7000).unwrap();
        assert!(t.is_mapped(BANK.0 + 0x4fff));
        assert!(!t.is_mapped(BANK.0 + 0x5000));
        assert!(t.is_mapped(BANK.0 + 0x6008));
        assert!(t.is_mapped(BANK.1 - 1));
    }

    /// aarch64-paging frees a level-3 table when an unmap covers its whole 2 MiB (and a
    /// level-2 table for a whole 1 GiB), so such a revocation removes a table descriptor the
    /// SMMU may hold in its walk cache. CMD_TLBI_NH_VA with Leaf = 1 leaves walk caches alone
    /// (IHI 0070 4.4.1): those revocations must invalidate the whole ASID (or by VA with
    /// Leaf = 0). A smaller unmap changes only leaves, which Leaf = 1 covers.
    #[test]
    fn an_unmap_that_frees_a_table_is_invalidated_with_the_walk_caches() {
        use crate::smmuv3::commands::{DmaContext, revoke_invalidation};
        let arena = Arena::new(table_pages(&[BANK]) * PAGE_SIZE, PAGE_SIZE);
        let mut t = table(&arena);
        t.map(BANK.0, BANK.1).unwrap();
        let free = t.pool_free_pages();
        let block = BANK.0 + (2 << 20);
        let last = block + (2 << 20) - PAGE_SIZE;
        t.unmap(block, last).unwrap();
        t.unmap(last, last + PAGE_SIZE).unwrap();
        assert_eq!(
            t.pool_free_pages(),
            free,
            "page by page: only leaves change"
        );
        t.map(block, block + (2 << 20)).unwrap();
        t.unmap(block, block + (2 << 20)).unwrap();
        assert_eq!(
            t.pool_free_pages(),
            free + 1,
            "the whole 2 MiB: its table is freed"
        );
        let (cmds, n) = revoke_invalidation(DmaContext::Stage1Asid(1), block, block + (2 << 20));
        for c in &cmds[..n] {
            let opcode = c.0[0] & 0xff;
            let by_va_leaf_only = opcode == 0x12 && c.0[1] & 1 == 1;
            assert!(
                opcode == 0x11 || (opcode == 0x12 && !by_va_leaf_only),
                "{c:x?} keeps the freed table in the SMMU's walk cache"
            );
        }
    }

    /// The same for a stage-2 table: CMD_TLBI_S2_IPA with Leaf = 1 leaves walk caches
    /// alone, so an unmap that frees a table needs CMD_TLBI_S12_VMALL (or Leaf = 0).
    #[test]
    fn a_stage_2_unmap_that_frees_a_table_is_invalidated_with_the_walk_caches() {
        use crate::smmuv3::commands::{DmaContext, revoke_invalidation};
        let config = stage2_config(5);
        let arena = Arena::new(table_pages_stage2(&[BANK], &config) * PAGE_SIZE, PAGE_SIZE);
        // SAFETY: as in `table`.
        let pool = unsafe { PagePool::new(arena.base(), arena.len()) };
        let mut t = DmaTable::new_stage2(pool, &[BANK], &config).unwrap();
        t.map(BANK.0, BANK.1).unwrap();
        let free = t.pool_free_pages();
        let block = BANK.0 + (2 << 20);
        t.unmap(block, block + 8 * PAGE_SIZE).unwrap();
        assert_eq!(t.pool_free_pages(), free, "8 pages: only leaves change");
        t.map(block, block + 8 * PAGE_SIZE).unwrap();
        t.unmap(block, block + (2 << 20)).unwrap();
        assert_eq!(
            t.pool_free_pages(),
            free + 1,
            "the whole 2 MiB: its table is freed"
        );
        let (cmds, n) = revoke_invalidation(DmaContext::Stage2Vmid(1), block, block + (2 << 20));
        for c in &cmds[..n] {
            let opcode = c.0[0] & 0xff;
            assert!(
                opcode == 0x28 || (opcode == 0x2a && c.0[1] & 1 == 0),
                "{c:x?} keeps the freed table in the SMMU's walk cache"
            );
        }
    }

    #[test]
    fn a_pool_smaller_than_the_worst_case_is_refused() {
        let pages = table_pages(&[BANK]) - 1;
        let arena = Arena::new(pages * PAGE_SIZE, PAGE_SIZE);
        // SAFETY: as in `table`.
        let pool = unsafe { PagePool::new(arena.base(), arena.len()) };
        assert!(DmaTable::new(pool, &[BANK]).is_none());
    }

    #[test]
    fn ranges_outside_ram_or_unaligned_are_refused() {
        let arena = Arena::new(table_pages(&[BANK]) * PAGE_SIZE, PAGE_SIZE);
        let mut t = table(&arena);
        assert!(t.map(BANK.1, BANK.1 + PAGE_SIZE).is_err());
        assert!(t.map(BANK.0 + 1, BANK.0 + PAGE_SIZE).is_err());
        assert!(t.unmap(BANK.0 - PAGE_SIZE, BANK.0 + PAGE_SIZE).is_err());
        assert!(!t.is_mapped(0x1000_0000));
    }

    #[test]
    fn leaves_are_pages_with_the_attributes_the_context_descriptor_expects() {
        let arena = Arena::new(table_pages(&[BANK]) * PAGE_SIZE, PAGE_SIZE);
        let mut t = table(&arena);
        t.map(BANK.0, BANK.0 + (4 << 20)).unwrap();
        let mut seen = 0;
        let Tree::Stage1(mapping) = &t.tree else {
            panic!("not a stage-1 table");
        };
        mapping
            .walk_range(
                &MemoryRegion::new(BANK.0, BANK.0 + (4 << 20)),
                &mut |_, d, level| {
                    if d.is_valid() && (level == 3 || !d.is_table_or_page()) {
                        assert_eq!(level, 3, "a block in the DMA table");
                        assert!(d.flags().contains(DMA_PAGE - El1Attributes::VALID));
                        seen += 1;
                    }
                    Ok(())
                },
            )
            .unwrap();
        assert_eq!(seen, 1024);
    }

    #[test]
    fn an_empty_range_is_refused_and_maps_nothing() {
        let arena = Arena::new(table_pages(&[BANK]) * PAGE_SIZE, PAGE_SIZE);
        let mut t = table(&arena);
        let at = BANK.0 + 0x1_0000;
        assert_eq!(t.map(at, at), Err(OutsideRam { start: at, end: at }));
        assert!(!t.is_mapped(at));
        t.map(at, at + PAGE_SIZE).unwrap();
        assert!(t.unmap(at, at).is_err());
        assert!(t.is_mapped(at), "an empty unmap removed a page");
    }

    #[test]
    fn the_mair_gives_the_leaves_attribute_index_normal_write_back_memory() {
        // MAIR Attr<n> is byte n (Arm ARM D19.2 MAIR_EL1): Attr0 Device-nGnRE (0x04) for
        // nothing mapped here, Attr1 (the leaves' AttrIndx = 1) Normal, Inner and Outer
        // Write-Back Read/Write-Allocate (0xff), as the CPU maps RAM: DMA stays coherent.
        assert!(DMA_PAGE.contains(El1Attributes::ATTRIBUTE_INDEX_1));
        let attr = |n: u64| (MAIR >> (8 * n)) & 0xff;
        assert_eq!((attr(0), attr(1)), (0x04, 0xff));
        assert_eq!(MAIR >> 16, 0, "attributes 2..7 unused");
    }

    #[test]
    fn a_refused_range_says_which_and_why() {
        let e = OutsideRam {
            start: 0x1000,
            end: 0x3000,
        };
        assert_eq!(
            std::format!("{e}"),
            "DMA range 0x1000..0x3000 is not page-aligned RAM"
        );
    }

    #[test]
    fn a_page_at_physical_address_zero_is_not_reported_mapped_once_unmapped() {
        // An invalid leaf's output address is 0: page 0 must not match it (boards with RAM
        // at 0 exist).
        const LOW: (usize, usize) = (0, 4 << 20);
        let arena = Arena::new(table_pages(&[LOW]) * PAGE_SIZE, PAGE_SIZE);
        // SAFETY: as in `table`.
        let pool = unsafe { PagePool::new(arena.base(), arena.len()) };
        let mut t = DmaTable::new(pool, &[LOW]).unwrap();
        t.map(PAGE_SIZE, 2 * PAGE_SIZE).unwrap();
        assert!(!t.is_mapped(0), "never mapped");
        t.map(0, PAGE_SIZE).unwrap();
        assert!(t.is_mapped(0));
        t.unmap(0, PAGE_SIZE).unwrap();
        assert!(!t.is_mapped(0), "unmapped");
    }

    #[test]
    fn the_root_address_is_the_level_0_table_in_the_pool() {
        // The SMMU's context descriptor points its walks here (TTB0).
        let arena = Arena::new(table_pages(&[BANK]) * PAGE_SIZE, PAGE_SIZE);
        let mut t = table(&arena);
        t.map(BANK.0, BANK.0 + PAGE_SIZE).unwrap();
        let root = t.root_pa();
        assert!(root >= arena.base() && root < arena.base() + arena.len());
        assert!(root.is_multiple_of(PAGE_SIZE));
        // Level 0 indexes VA[47:39].
        let index = BANK.0 >> 39;
        // SAFETY: `root` is a page of the arena (checked above), which the table's pool
        // owns and which outlives this read; tests translate PA = VA.
        let entry = unsafe { core::ptr::read_volatile((root as *const u64).add(index)) };
        assert_eq!(entry & 0b11, 0b11, "a valid table descriptor: {entry:#x}");
    }

    mod stage_2 {
        use super::*;
        use crate::smmuv3::s2_walk::{self, S2Config};
        use crate::smmuv3::tables::host_ste_s2;

        const MIB8: usize = 8 << 20;

        /// Two 8 MiB banks: one at 2 GiB, one at the top of the input range (in the last of
        /// the concatenated root tables, where there are several).
        fn banks(config: &Stage2Config) -> [(usize, usize); 2] {
            let top = config.ipa_size();
            [(0x8000_0000, 0x8000_0000 + MIB8), (top - MIB8, top)]
        }

        /// The table as the SMMU would see it: decoded from the STE EL2 writes for it.
        fn smmu_view(t: &DmaTable, config: &Stage2Config, oas: u64) -> S2Config {
            let ste = host_ste_s2(t.root_pa(), config);
            s2_walk::decode(&ste, oas).unwrap_or_else(|e| panic!("OAS {oas}: C_BAD_STE {e:?}"))
        }

        #[test]
        fn a_stage_2_table_walked_as_the_smmu_would_reaches_exactly_the_granted_pages() {
            for oas in 0..=6u64 {
                let config = stage2_config(oas);
                let banks = banks(&config);
                let pages = table_pages_stage2(&banks, &config);
                // Table memory below 4 GiB: S2TTB must lie inside the smallest output size.
                let arena = Arena::fixed_at(0x2000_0000, pages * PAGE_SIZE);
                // SAFETY: the arena is ours, page-aligned and outlives the table.
                let pool = unsafe { PagePool::new(arena.base(), arena.len()) };
                let mut t = DmaTable::new_stage2(pool, &banks, &config).unwrap();
                let smmu = smmu_view(&t, &config, oas);
                assert_eq!(smmu.concatenated as usize, config.root_tables, "OAS {oas}");
                let mut granted = std::collections::BTreeSet::new();
                let check = |t: &DmaTable, granted: &std::collections::BTreeSet<usize>| {
                    for &(s, e) in &banks {
                        for pa in
                            (s - 2 * PAGE_SIZE..(e + 2 * PAGE_SIZE).min(1 << 48)).step_by(PAGE_SIZE)
                        {
                            let want = granted.contains(&pa);
                            assert_eq!(
                                s2_walk::reaches_itself(&smmu, pa as u64),
                                want,
                                "OAS {oas}: page {pa:#x} as the SMMU walks it"
                            );
                            assert_eq!(t.is_mapped(pa), want, "OAS {oas}: is_mapped({pa:#x})");
                        }
                    }
                };
                check(&t, &granted);
                let mut change = |t: &mut DmaTable, s: usize, e: usize, map: bool| {
                    if map {
                        t.map(s, e).unwrap();
                        granted.extend((s..e).step_by(PAGE_SIZE));
                    } else {
                        t.unmap(s, e).unwrap();
                        (s..e).step_by(PAGE_SIZE).for_each(|p| {
                            granted.remove(&p);
                        });
                    }
                    check(t, &granted);
                };
                for (s, e) in banks {
                    change(&mut t, s, e, true);
                }
                let (lo, hi) = (banks[0].0, banks[1].0);
                change(&mut t, lo + 0x3000, lo + 0x5000, false);
                change(&mut t, hi + (2 << 20), hi + (4 << 20), false); // frees a table
                change(
                    &mut t,
                    hi + (2 << 20) + 0x1000,
                    hi + (2 << 20) + 0x2000,
                    true,
                );
                change(&mut t, hi, hi + PAGE_SIZE, false);
                change(&mut t, lo, lo + MIB8, false);
                change(&mut t, lo + 0x4000, lo + 0x6000, true);
                // Leaves: pages only, read-write, never executable, normal write-back.
                let leaf = s2_walk::walk(&smmu, (lo + 0x4000) as u64).unwrap();
                assert_eq!(leaf.level, 3, "OAS {oas}: a block in the DMA table");
                assert!(
                    t.pool_free_pages() <= pages,
                    "the pool never runs dry (worst case reserved)"
                );
            }
        }

        #[test]
        fn stage_2_leaves_are_normal_write_back_read_write_pages_that_never_execute() {
            let config = stage2_config(5);
            let bank = (0x4000_0000, 0x4000_0000 + MIB8);
            let arena = Arena::new(table_pages_stage2(&[bank], &config) * PAGE_SIZE, PAGE_SIZE);
            // SAFETY: as above.
            let pool = unsafe { PagePool::new(arena.base(), arena.len()) };
            let mut t = DmaTable::new_stage2(pool, &[bank], &config).unwrap();
            t.map(bank.0, bank.1).unwrap();
            let Tree::Stage2 { mapping, .. } = &t.tree else {
                panic!("not a stage-2 table");
            };
            let mut seen = 0;
            mapping
                .walk_range(&MemoryRegion::new(bank.0, bank.1), &mut |_, d, level| {
                    if d.is_valid() && (level == 3 || !d.is_table_or_page()) {
                        assert_eq!(level, 3);
                        let raw = d.flags().bits() as u64;
                        assert_eq!(
                            (raw >> 2) & 0xf,
                            0b1111,
                            "MemAttr: Normal WB inner and outer"
                        );
                        assert_eq!((raw >> 6) & 3, 0b11, "S2AP: read-write");
                        assert_eq!((raw >> 8) & 3, 0b11, "SH: inner shareable");
                        assert_eq!((raw >> 10) & 1, 1, "AF");
                        assert_eq!((raw >> 53) & 3, 0b10, "XN[1:0]: never executable");
                        seen += 1;
                    }
                    Ok(())
                })
                .unwrap();
            assert_eq!(seen, MIB8 / PAGE_SIZE);
        }

        /// With concatenated roots (40- and 42-bit output), the library's root is a directory
        /// whose entries point to the tables the SMMU walks. aarch64-paging frees the table
        /// under an entry whose whole range one call unmaps: a whole 512 GiB would hand one
        /// of the SMMU's root tables back to the pool, to be reused as another table while
        /// the SMMU still walks it. Changes are cut at 1 GiB so that never happens.
        #[test]
        fn unmapping_a_whole_concatenated_root_table_keeps_it_in_place() {
            let config = stage2_config(2);
            assert_eq!(config.root_tables, 2);
            const GIB512: usize = 512 << 30;
            let bank = (GIB512, 2 * GIB512);
            let arena = Arena::fixed_at(0x2800_0000, 64 * PAGE_SIZE);
            // SAFETY: as above.
            let pool = unsafe { PagePool::new(arena.base(), arena.len()) };
            // The worst-case pool of a 512 GiB bank is 1 GiB: build with what the test maps.
            let mut t = DmaTable::build_stage2(pool, &[bank], &config, 0).unwrap();
            let root = t.root_pa();
            let free = t.pool_free_pages();
            t.map(bank.0 + GIB512 / 2, bank.0 + GIB512 / 2 + PAGE_SIZE)
                .unwrap();
            t.unmap(bank.0, bank.1).unwrap();
            assert_eq!(t.root_pa(), root);
            let Tree::Stage2 { mapping, .. } = &t.tree else {
                panic!("not a stage-2 table");
            };
            // SAFETY: the directory is the library's root page in the arena (identity).
            let dir = unsafe {
                core::ptr::read_volatile((mapping.root_address().0 as *const u64).add(1))
            };
            assert_eq!(
                dir & 0x0000_ffff_ffff_f003,
                (root + PAGE_SIZE) as u64 | 0b11,
                "the second concatenated root left the directory"
            );
            assert!(
                t.pool_free_pages() <= free,
                "a root table went back to the pool ({} free, {free} before)",
                t.pool_free_pages()
            );
            let smmu = smmu_view(&t, &config, 2);
            t.map(bank.0 + PAGE_SIZE, bank.0 + 2 * PAGE_SIZE).unwrap();
            assert!(s2_walk::reaches_itself(&smmu, (bank.0 + PAGE_SIZE) as u64));
        }

        #[test]
        fn banks_beyond_the_stage_2_input_size_are_refused() {
            let config = stage2_config(0);
            let arena = Arena::new(64 * PAGE_SIZE, PAGE_SIZE);
            // SAFETY: as above.
            let pool = unsafe { PagePool::new(arena.base(), arena.len()) };
            let bank = (0xffe0_0000, 0x1_0020_0000);
            assert!(DmaTable::new_stage2(pool, &[bank], &config).is_none());
        }

        #[test]
        fn the_plan_reserves_enough_for_every_format() {
            let banks = [(0x4000_0000, 0x8000_0000), (0x80_0000_0000, 0x80_4000_0000)];
            let worst = worst_case_table_pages(&banks);
            assert!(worst >= table_pages(&banks));
            for pa_range in 0..=6 {
                assert!(worst >= table_pages_stage2(&banks, &stage2_config(pa_range)));
            }
            // 42-bit output: 8 concatenated roots (plus the directory and up to 7 pages of
            // alignment) instead of one level-0 root and a level-1 table per bank.
            assert_eq!(
                worst - table_pages(&banks),
                stage2_config(3).root_pages_worst_case() - 3
            );
        }
    }
}
