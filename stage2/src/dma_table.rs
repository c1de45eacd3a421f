//! The host's DMA translation: a VMSAv8-64 stage-1 identity map (4 KiB granule, 48-bit input,
//! level-0 root) in the format an SMMUv3 context descriptor points at, built with
//! `aarch64-paging`.
//!
//! Stage 1 and not stage 2 because some SMMUs implement only stage 1 (QEMU 7.2's does:
//! `IDR0.S1P` without `S2P`); with EL2 owning the tables and the host never seeing the SMMU,
//! stage 1 confines DMA as well.
//!
//! Only 4 KiB pages, never blocks: a page that leaves the host must go without taking its
//! neighbours with it, and splitting a live block would need break-before-make, during which
//! the host's devices would fault (they cannot retry). With pages only, every change is an
//! invalid <-> valid flip of one leaf, and once the RAM banks are mapped the tables never
//! need more than [`table_pages`] pages, the worst case (every RAM page mapped), which the
//! pool holds: a change can never run out of memory.
//!
//! The table is never marked active in `aarch64-paging`'s sense, so the library issues no CPU
//! TLB maintenance for it; the SMMU's invalidation is the owner's job (`HostDma::revoke`).

use crate::pool::{PAGE_SIZE, PagePool, PoolTranslation, pages_needed_to_map};
use aarch64_paging::Mapping;
use aarch64_paging::descriptor::{El1Attributes, PhysicalAddress};
use aarch64_paging::paging::{Constraints, El1And0, MemoryRegion, VaRange};

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

/// Table pages (the root included) that a [`DmaTable`] over `banks` needs, ever.
pub fn table_pages(banks: &[(usize, usize)]) -> usize {
    1 + banks
        .iter()
        .map(|&(s, e)| pages_needed_to_map(s, e, ROOT_LEVEL))
        .sum::<usize>()
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

/// The identity stage-1 table for the host's DMA.
pub struct DmaTable {
    mapping: Mapping<PoolTranslation, El1And0>,
    banks: [(usize, usize); crate::ownership::MAX_RAM_BANKS],
    n_banks: usize,
}

impl DmaTable {
    /// An empty table over `banks`, whose tables come from `pool`. Tables are created as
    /// pages are mapped (and the library may free a table whose entries all go invalid), so
    /// at no time does the table hold more than [`table_pages`] pages: a pool of that size
    /// never runs dry.
    ///
    /// Returns `None` if there are more banks than the record allows, a bank is not
    /// page-aligned or lies beyond 48 bits, or `pool` has fewer than [`table_pages`] pages.
    pub fn new(pool: PagePool, banks: &[(usize, usize)]) -> Option<Self> {
        if banks.len() > crate::ownership::MAX_RAM_BANKS || pool.free_pages() < table_pages(banks) {
            return None;
        }
        let mut table = DmaTable {
            mapping: Mapping::with_asid_and_va_range(
                PoolTranslation::new(pool),
                0,
                ROOT_LEVEL,
                El1And0,
                VaRange::Lower,
            ),
            banks: [(0, 0); crate::ownership::MAX_RAM_BANKS],
            n_banks: banks.len(),
        };
        table.banks[..banks.len()].copy_from_slice(banks);
        for &(s, e) in banks {
            if s >= e
                || !s.is_multiple_of(PAGE_SIZE)
                || !e.is_multiple_of(PAGE_SIZE)
                || e > 1 << INPUT_BITS
            {
                return None;
            }
        }
        Some(table)
    }

    fn write(&mut self, start: usize, end: usize, attrs: El1Attributes) -> Result<(), OutsideRam> {
        let inside = start < end
            && start.is_multiple_of(PAGE_SIZE)
            && end.is_multiple_of(PAGE_SIZE)
            && self.banks[..self.n_banks]
                .iter()
                .any(|&(s, e)| s <= start && end <= e);
        if !inside {
            return Err(OutsideRam { start, end });
        }
        self.mapping
            .map_range(
                &MemoryRegion::new(start, end),
                PhysicalAddress(start),
                attrs,
                Constraints::NO_BLOCK_MAPPINGS,
            )
            .map_err(|_| OutsideRam { start, end })
    }

    /// Maps `[start, end)` (inside one bank) identity for DMA. Takes no memory.
    ///
    /// # Errors
    ///
    /// [`OutsideRam`] if the range is not page-aligned RAM of one bank.
    pub fn map(&mut self, start: usize, end: usize) -> Result<(), OutsideRam> {
        self.write(start, end, DMA_PAGE)
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
        self.write(start, end, El1Attributes::empty())
    }

    /// Whether the page containing `pa` is mapped, and to itself.
    pub fn is_mapped(&self, pa: usize) -> bool {
        let page = pa & !(PAGE_SIZE - 1);
        let mut mapped = false;
        let _ = self.mapping.walk_range(
            &MemoryRegion::new(page, page + PAGE_SIZE),
            &mut |_, desc, level| {
                if level == 3 && desc.is_valid() && desc.output_address().0 == page {
                    mapped = true;
                }
                Ok(())
            },
        );
        mapped
    }

    /// Physical address of the root table (`CD.TTB0`).
    pub fn root_pa(&self) -> usize {
        self.mapping.root_address().0
    }

    /// Free pages left in the table pool (0 once built; kept for tests).
    pub fn pool_free_pages(&self) -> usize {
        self.mapping.translation().free_pages()
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
        use crate::smmuv3::commands::revoke_invalidation;
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
        let (cmds, n) = revoke_invalidation(1, block, block + (2 << 20));
        for c in &cmds[..n] {
            let opcode = c.0[0] & 0xff;
            let by_va_leaf_only = opcode == 0x12 && c.0[1] & 1 == 1;
            assert!(
                opcode == 0x11 || (opcode == 0x12 && !by_va_leaf_only),
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
        t.mapping
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
}
