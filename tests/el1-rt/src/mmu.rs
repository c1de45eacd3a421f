//! The EL1 stage-1 identity map: RAM as Normal write-back cacheable memory, device MMIO
//! from the DTB as Device-nGnRE, everything else unmapped.
//!
//! Rust code needs Normal memory (atomics use exclusives, which Device memory does not
//! reliably support), so the boot CPU turns the MMU on right after reading the DTB, and
//! each secondary CPU turns it on (same tables) before its first Rust instruction.
//!
//! The payload's carve-out lies in RAM and is deliberately mapped like the rest of RAM, and
//! so are pages given to guests: the point of the abort checks is that stage 2, not this
//! table, stops the access.

use crate::board::Board;
use crate::region::Region;
use aarch64_cpu::registers::{CurrentEL, ID_AA64MMFR0_EL1, Readable, SCTLR_EL1, TCR_EL1};
use aarch64_paging::MapError;
use aarch64_paging::descriptor::{El1Attributes, PhysicalAddress};
use aarch64_paging::mair::{Mair, MairAttribute, NormalMemory};
use aarch64_paging::paging::{
    Constraints, El1And0, MemoryRegion, PageTable, RootTable, Translation, VaRange,
};
use core::cell::UnsafeCell;
use core::ptr::NonNull;

/// Page-table pages available. QEMU virt with 1 GiB of RAM needs about ten (root, a level-2
/// table per mapped GiB, a level-3 table per partly used 2 MiB of MMIO).
const POOL_PAGES: usize = 32;

/// Root table level: level 1 covers 512 GiB with 4 KiB pages, i.e. T0SZ = 25.
const ROOT_LEVEL: usize = 1;
const VA_BITS: u64 = 39;

/// MAIR_EL1 index 0: Device-nGnRE; index 1: Normal, inner and outer write-back.
const MAIR: Mair = Mair::EMPTY
    .with_attribute(0, MairAttribute::DEVICE_NGNRE)
    .with_attribute(
        1,
        MairAttribute::normal(
            NormalMemory::WriteBackNonTransientReadWriteAllocate,
            NormalMemory::WriteBackNonTransientReadWriteAllocate,
        ),
    );

const DEVICE: El1Attributes = El1Attributes::VALID
    .union(El1Attributes::ATTRIBUTE_INDEX_0)
    .union(El1Attributes::ACCESSED)
    .union(El1Attributes::PXN)
    .union(El1Attributes::UXN);

const NORMAL: El1Attributes = El1Attributes::VALID
    .union(El1Attributes::ATTRIBUTE_INDEX_1)
    .union(El1Attributes::INNER_SHAREABLE)
    .union(El1Attributes::ACCESSED)
    .union(El1Attributes::UXN);

/// The register values that turn the MMU on; every CPU uses the same ones.
#[derive(Clone, Copy, Debug)]
pub struct MmuConfig {
    pub mair: u64,
    pub tcr: u64,
    pub ttbr0: u64,
    pub sctlr: u64,
}

/// What [`build`] mapped, for the log.
#[derive(Clone, Copy, Debug)]
pub struct MapSummary {
    pub tables_used: usize,
    /// Device regions that lie beyond the 39-bit address space and were left unmapped.
    pub devices_skipped: usize,
}

/// Why the identity map could not be built.
#[derive(Clone, Debug)]
pub enum MmuError {
    Map(Region, MapError),
    /// The image is not inside any RAM region and could not be mapped.
    OutOfRange(Region),
}

impl core::fmt::Display for MmuError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            Self::Map(region, error) => write!(
                f,
                "cannot map {:#x}+{:#x}: {error}",
                region.base, region.size
            ),
            Self::OutOfRange(region) => write!(
                f,
                "{:#x}+{:#x} lies beyond the {VA_BITS}-bit identity map",
                region.base, region.size
            ),
        }
    }
}

#[repr(transparent)]
struct TablePool(UnsafeCell<[PageTable<El1Attributes>; POOL_PAGES]>);

// SAFETY: the pool is handed out once, by `build` on the boot CPU (see `PoolTranslation`);
// afterwards only the MMU reads it.
unsafe impl Sync for TablePool {}

static POOL: TablePool = TablePool(UnsafeCell::new([PageTable::EMPTY; POOL_PAGES]));

/// Hands out the pages of [`POOL`] in order and never takes them back. Table pages are
/// identity-mapped, so a table's physical address is its address.
struct PoolTranslation {
    next: usize,
}

impl Translation<El1Attributes> for PoolTranslation {
    fn allocate_table(&mut self) -> (NonNull<PageTable<El1Attributes>>, PhysicalAddress) {
        // The trait cannot report failure; POOL_PAGES is sized well above what any
        // DTB with MAX_REGIONS regions under 39 bits needs on QEMU virt.
        assert!(self.next < POOL_PAGES, "page-table pool exhausted");
        let table = POOL.0.get().cast::<PageTable<El1Attributes>>();
        // SAFETY: `next < POOL_PAGES`, so the pointer stays inside POOL; every page is
        // handed out at most once, and only while the table is being built.
        let table = unsafe { table.add(self.next) };
        self.next += 1;
        let table = NonNull::new(table).expect("static pool is not at address 0");
        (table, PhysicalAddress(table.as_ptr() as usize))
    }

    unsafe fn deallocate_table(&mut self, _table: NonNull<PageTable<El1Attributes>>) {
        // Pages are never reused: the pool only has to outlast one table build.
    }

    fn physical_to_virtual(&self, pa: PhysicalAddress) -> NonNull<PageTable<El1Attributes>> {
        NonNull::new(pa.0 as *mut PageTable<El1Attributes>).expect("page-table address is not 0")
    }
}

/// Builds the identity map for `board` plus the running image (`image`).
///
/// # Safety
///
/// Call once, on the boot CPU, before any CPU uses the table (it is built in place in a
/// static pool that is not otherwise synchronised).
pub unsafe fn build(board: &Board, image: Region) -> Result<(MmuConfig, MapSummary), MmuError> {
    let mut table = RootTable::with_va_range(
        PoolTranslation { next: 0 },
        ROOT_LEVEL,
        El1And0,
        VaRange::Lower,
    );
    let limit = 1usize << VA_BITS;
    let fits = |region: &Region| region.end().is_some_and(|end| end <= limit);
    let mut map = |region: &Region, flags| {
        table
            .map_range(
                &MemoryRegion::new(region.base, region.base + region.size),
                PhysicalAddress(region.base),
                flags,
                Constraints::empty(),
            )
            .map_err(|error| MmuError::Map(*region, error))
    };

    for region in board.memory.iter().filter(|r| fits(r)) {
        map(region, NORMAL)?;
    }
    // The image normally lies in RAM; map it too if the DTB says otherwise.
    if !board.memory.iter().any(|ram| ram.contains(&image)) {
        if !fits(&image) {
            return Err(MmuError::OutOfRange(image));
        }
        map(&image, NORMAL)?;
    }
    let mut devices_skipped = 0;
    for region in board.devices.iter() {
        if fits(region) {
            map(region, DEVICE)?;
        } else {
            devices_skipped += 1;
        }
    }

    let config = MmuConfig {
        mair: MAIR.0,
        tcr: tcr_value(),
        ttbr0: table.to_physical().0 as u64,
        sctlr: sctlr_value(),
    };
    let summary = MapSummary {
        tables_used: table.translation().next,
        devices_skipped,
    };
    // Every CPU walks this table until the machine powers off, so it is never torn down
    // (its pages live in POOL; forgetting the handle keeps them from being given back).
    core::mem::forget(table);
    Ok((config, summary))
}

unsafe extern "C" {
    /// entry.S: loads MAIR/TCR/TTBR0, invalidates TLB and I-cache, then writes SCTLR_EL1.
    fn el1_rt_enable_mmu(mair: u64, tcr: u64, ttbr0: u64, sctlr: u64);
}

/// Turns the MMU on for the calling CPU.
///
/// # Safety
///
/// `config` must come from [`build`], whose table identity-maps everything the caller uses
/// (its code, stack, data and devices).
pub unsafe fn enable(config: &MmuConfig) {
    // SAFETY: enable_mmu is a leaf that only writes the MMU registers; the caller promises
    // that the table maps everything in use at the same addresses.
    unsafe { el1_rt_enable_mmu(config.mair, config.tcr, config.ttbr0, config.sctlr) }
}

/// Whether this CPU runs at EL1 with its stage-1 MMU on (so Normal memory rules apply).
pub fn is_on() -> bool {
    CurrentEL.read(CurrentEL::EL) == 1 && SCTLR_EL1.is_set(SCTLR_EL1::M)
}

fn tcr_value() -> u64 {
    // The output size: what the CPU implements, capped at 48 bits (52 needs TCR.DS).
    let pa_range = ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange).min(0b101);
    (TCR_EL1::T0SZ.val(64 - VA_BITS)
        + TCR_EL1::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
        + TCR_EL1::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
        + TCR_EL1::SH0::Inner
        + TCR_EL1::TG0::KiB_4
        + TCR_EL1::EPD1::DisableTTBR1Walks
        + TCR_EL1::IPS.val(pa_range))
    .value
}

fn sctlr_value() -> u64 {
    // Bits 29, 28, 23, 22, 20 and 11 are RES1 in ARMv8.0 (the value QEMU resets to).
    const RES1: u64 = 0x30d0_0800;
    RES1 | (SCTLR_EL1::M::Enable
        + SCTLR_EL1::C::Cacheable
        + SCTLR_EL1::I::Cacheable
        + SCTLR_EL1::SA::Enable
        + SCTLR_EL1::SA0::Enable)
        .value
}
