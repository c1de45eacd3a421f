//! What EL2 takes for itself at boot, and where.
//!
//! Two carve-outs, sized to the page:
//! - the static one is the image itself (`layout::image`: code, data, .bss, stacks; the
//!   Image header's `image_size` covers it, so loaders keep clear of it);
//! - the dynamic one is sized from the RAM the DTB describes: the ownership record (2 bytes
//!   per 4 KiB page, first), the host stage-2 page-table pool, EL2's own stage-1 tables and a
//!   per-CPU part (each CPU the DTB lists but the boot CPU gets a stack with a guard page,
//!   and every CPU its state, [`per_cpu_bytes`]), a small boot heap (the DTB writer needs
//!   one), and with an SMMUv3 its structures and the host's DMA tables (worst case). It goes right after the image when that
//!   memory is free, else as high in RAM as it fits, never over anything the loader left
//!   there (DTB, modules, reserved memory).
//!
//! Below the dynamic carve-out, a host-owned 2 MiB-aligned window receives the DTB handed to
//! the host (the Linux boot protocol wants it 8-byte aligned, under 2 MiB, in one 2 MiB
//! block).

use core::ops::Range;

pub const BLOCK_2M: u64 = 2 << 20;
const PAGE: u64 = 4096;

/// Capacity of a [`RangeList`]: no allocator exists when the plan is made. The busy list
/// holds the DTB, the kernel and ramdisk modules and every reserved range discovery
/// accepts (`platform::fdt_discovery::MAX_RESERVED_RANGES`, 32; the payload checks the sum
/// at build time), so none is ever left out of the plan.
pub const MAX_RANGES: usize = 40;

#[derive(Clone, Copy, Debug)]
pub struct RangeList {
    items: [(u64, u64); MAX_RANGES],
    len: usize,
}

impl Default for RangeList {
    fn default() -> Self {
        Self::new()
    }
}

impl RangeList {
    pub const fn new() -> Self {
        Self {
            items: [(0, 0); MAX_RANGES],
            len: 0,
        }
    }

    /// Adds `[start, end)`; false if the list is full (the caller reports it).
    pub fn push(&mut self, range: Range<u64>) -> bool {
        if self.len == MAX_RANGES {
            return false;
        }
        self.items[self.len] = (range.start, range.end);
        self.len += 1;
        true
    }

    pub fn iter(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        self.items[..self.len].iter().map(|&(s, e)| s..e)
    }

    fn first_overlap(&self, range: &Range<u64>) -> Option<Range<u64>> {
        self.iter()
            .find(|r| r.start < range.end && range.start < r.end)
    }
}

/// What the planner needs to know.
pub struct PlanInput<'a> {
    /// RAM banks, sorted, non-overlapping.
    pub ram: &'a RangeList,
    /// Memory the loader already uses (DTB, modules, reserved memory, the image).
    pub busy: &'a RangeList,
    /// The static carve-out.
    pub image: Range<u64>,
    /// The MMIO regions the host stage-2 maps.
    pub mmio: &'a [Range<u64>],
    /// Level of the root of the host stage-2's table tree (`Stage2Config::tree_root_level`).
    pub root_level: usize,
    /// Pool pages the root takes (`Stage2Config::root_pages_worst_case`: 1, or with
    /// concatenated roots the directory, the run and its alignment slack).
    pub root_pages: u64,
    /// Size of the DTB as received.
    pub dtb_size: u64,
    /// The board has an SMMUv3 that EL2 drives: reserve its structures and the host's DMA
    /// tables ([`smmu_bytes`]).
    pub smmu: bool,
    /// The CPUs and what each takes ([`per_cpu_bytes`]).
    pub per_cpu: PerCpuNeeds,
    /// MMIO regions the host stage-2 maps in page-sized pieces, counted page by page like
    /// RAM: the GICv3 redistributor regions, whose SGI_base frames (one per CPU) are mapped
    /// and RD_base frames are not.
    pub fine_mmio: &'a [Range<u64>],
    /// How many MMIO ranges the host's list will hold (its storage comes from the heap:
    /// 16 bytes each, one per CPU with a GICv3).
    pub host_mmio_ranges: u64,
}

/// What the payload's per-CPU state takes: sized from the DTB's CPU count at boot, so
/// nothing caps the count below what RAM allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PerCpuNeeds {
    /// Logical CPUs (the DTB's, with the boot CPU).
    pub cpus: u64,
    /// One CPU's stack with the unmapped guard page below it (whole pages). The boot CPU's
    /// stack is in the image (it needs one before any plan exists), so `cpus - 1` of these.
    pub stack_bytes: u64,
    /// One CPU's other state (saved host registers, power state, ...), packed.
    pub state_bytes: u64,
}

impl PerCpuNeeds {
    /// What one more CPU costs, in bytes (the state part before rounding to pages).
    pub fn bytes_per_cpu(&self) -> u64 {
        align_up(self.stack_bytes, PAGE) + self.state_bytes
    }
}

/// Bytes of the per-CPU part ([`MemoryPlan::per_cpu`]): the secondary CPUs' stacks (each a
/// whole number of pages, guard page first), then every CPU's state, rounded up to a page.
/// `None` if the sum does not fit in 64 bits.
pub fn per_cpu_bytes(needs: &PerCpuNeeds) -> Option<u64> {
    let stacks = needs
        .cpus
        .saturating_sub(1)
        .checked_mul(align_up(needs.stack_bytes, PAGE))?;
    let state = needs.cpus.checked_mul(needs.state_bytes)?;
    stacks.checked_add(state.checked_add(PAGE - 1)? / PAGE * PAGE)
}

/// Where everything went.
#[derive(Clone, Debug)]
pub struct MemoryPlan {
    pub image: Range<u64>,
    pub dynamic: Range<u64>,
    pub host_dtb: Range<u64>,
    pub stage2_pool: Range<u64>,
    pub el2_tables: Range<u64>,
    pub ownership: Range<u64>,
    pub heap: Range<u64>,
    /// Per-CPU stacks (for CPUs 1.., each guard page first) then per-CPU state.
    pub per_cpu: Range<u64>,
    /// The SMMUv3's structures, then its DMA table pool; empty without an SMMU.
    pub smmu: Range<u64>,
}

#[derive(Debug)]
pub enum PlanError {
    NoRam,
    NoRoom {
        needed: u64,
    },
    /// The per-CPU part does not fit in 64 bits (an absurd CPU count).
    TooManyCpus {
        cpus: u64,
    },
}

impl core::fmt::Display for PlanError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            Self::NoRam => write!(f, "the DTB describes no RAM"),
            Self::NoRoom { needed } => write!(
                f,
                "no free 2 MiB-aligned RAM window of {needed:#x} bytes for EL2's pools and the host DTB"
            ),
            Self::TooManyCpus { cpus } => {
                write!(f, "per-CPU state for {cpus} CPUs does not fit in memory")
            }
        }
    }
}

fn align_up(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
}

/// Page-table pages the host stage-2 may ever need, so that neither a host fault nor a
/// hypercall can find the pool empty (pKVM sizes its host pool the same way):
/// - RAM may end up mapped page by page (pages given to EL2 or guests split the blocks around
///   them), so each bank counts `crate::pool::pages_needed_to_map`, its worst case;
/// - MMIO is mapped once at boot in the largest blocks and never split: it needs a table
///   below the root for every root entry it spans, and deeper only where a region's edge
///   cuts a block. Those tables are counted once each, however many regions share them.
/// - The root takes `root_pages` (more than one with concatenated roots).
pub fn host_stage2_pool_pages(
    ram: &RangeList,
    mmio: &[Range<u64>],
    root_level: usize,
    root_pages: u64,
) -> u64 {
    let ram_pages: usize = ram
        .iter()
        .map(|r| crate::pool::pages_needed_to_map(r.start as usize, r.end as usize, root_level))
        .sum();
    root_pages + ram_pages as u64 + mmio_table_pages(mmio, root_level)
}

/// Distinct tables (level, first address) that mapping `mmio` with the largest blocks needs.
fn mmio_table_pages(mmio: &[Range<u64>], root_level: usize) -> u64 {
    const MAX_TABLES: usize = 256;
    let mut seen = [(0usize, 0u64); MAX_TABLES];
    let mut count = 0usize;
    let mut overflow = 0u64;
    let mut add = |level: usize, base: u64| {
        if seen[..count].contains(&(level, base)) {
            return;
        }
        if count < MAX_TABLES {
            seen[count] = (level, base);
            count += 1;
        } else {
            overflow += 1;
        }
    };
    for r in mmio.iter().filter(|r| r.end > r.start) {
        for level in root_level + 1..=3 {
            // A table at `level` covers one entry of the level above.
            let span = crate::pool::granule_at_level(level - 1) as u64;
            if level == root_level + 1 {
                let mut base = r.start / span * span;
                while base < r.end {
                    add(level, base);
                    base += span;
                }
            } else {
                for edge in [r.start, r.end - 1] {
                    let base = edge / span * span;
                    if r.start > base || r.end < base + span {
                        add(level, base);
                    }
                }
            }
        }
    }
    count as u64 + overflow
}

/// Bytes of the ownership record: 2 per 4 KiB page of RAM (512 KiB per GiB).
pub fn ownership_bytes(ram_bytes: u64) -> u64 {
    align_up(ram_bytes / PAGE * 2, PAGE)
}

/// Pages for EL2's own stage-1: root, a level-1 table, a level-2 table for the GiB holding
/// the image and one for the console, level-3 tables for the image's sections and the boot
/// stack's guard and for the console: about 8; twice that, fixed. The secondary CPUs' stack
/// guards add [`stack_guard_table_pages`].
const EL2_TABLE_PAGES: u64 = 16;

/// Tables EL2's stage-1 needs to leave a guard page unmapped in every stack of a per-CPU
/// stack area of `bytes`: one level-3 table per 2 MiB it touches and one level-2 table per
/// GiB (the area need not be aligned, so each count is one more than its length needs).
pub fn stack_guard_table_pages(bytes: u64) -> u64 {
    if bytes == 0 {
        return 0;
    }
    bytes.div_ceil(BLOCK_2M) + 1 + bytes.div_ceil(1 << 30) + 1
}
const HEAP_BASE: u64 = 32 << 10;

/// Bytes of the SMMUv3's own structures, at the start of [`MemoryPlan::smmu`]: a level-2
/// stream table of 256 STEs (16 KiB, which every level-1 descriptor shares, or a linear
/// table of up to 256 STEs), the level-1 table (up to 4 KiB: 2^17 streams), one context
/// descriptor, a 4 KiB command queue and a 4 KiB event queue, each aligned to its size
/// inside this block (el2's `smmu::layout`).
pub const SMMU_STRUCTURE_BYTES: u64 = 64 << 10;

/// Bytes for the SMMUv3: its structures and the worst case of the host's DMA table (every
/// RAM page mapped with 4 KiB pages, in whichever format the SMMU's ID registers will
/// choose: `dma_table::worst_case_table_pages`), so no change can run out.
pub fn smmu_bytes(ram: &RangeList) -> u64 {
    let mut banks = [(0usize, 0usize); MAX_RANGES];
    let mut n = 0;
    for r in ram.iter() {
        banks[n] = (r.start as usize, r.end as usize);
        n += 1;
    }
    SMMU_STRUCTURE_BYTES + crate::dma_table::worst_case_table_pages(&banks[..n]) as u64 * PAGE
}

pub fn plan(input: &PlanInput) -> Result<MemoryPlan, PlanError> {
    let ram_bytes: u64 = input.ram.iter().map(|r| r.end - r.start).sum();
    if ram_bytes == 0 {
        return Err(PlanError::NoRam);
    }
    let fine_mmio_pages: usize = input
        .fine_mmio
        .iter()
        .map(|r| {
            crate::pool::pages_needed_to_map(r.start as usize, r.end as usize, input.root_level)
        })
        .sum();
    let pool = (host_stage2_pool_pages(input.ram, input.mmio, input.root_level, input.root_pages)
        + fine_mmio_pages as u64)
        * PAGE;
    let ownership = ownership_bytes(ram_bytes);
    let heap = align_up(
        HEAP_BASE + 2 * input.dtb_size + 16 * input.host_mmio_ranges,
        PAGE,
    );
    let smmu = if input.smmu { smmu_bytes(input.ram) } else { 0 };
    let per_cpu = per_cpu_bytes(&input.per_cpu).ok_or(PlanError::TooManyCpus {
        cpus: input.per_cpu.cpus,
    })?;
    let stacks = input
        .per_cpu
        .cpus
        .saturating_sub(1)
        .saturating_mul(align_up(input.per_cpu.stack_bytes, PAGE));
    let el2_tables = (EL2_TABLE_PAGES + stack_guard_table_pages(stacks)) * PAGE;
    // Only what is needed, in pages (no rounding to 2 MiB, which would cost up to 2 MiB).
    let dynamic = (pool + ownership + heap + smmu)
        .checked_add(el2_tables)
        .and_then(|d| d.checked_add(per_cpu))
        .filter(|d| d.checked_add(BLOCK_2M).is_some())
        .ok_or(PlanError::TooManyCpus {
            cpus: input.per_cpu.cpus,
        })?;

    // Preferably right after the image: the two carve-outs then form one range whose start
    // is the (2 MiB-aligned) load address, so the host stage-2 around them needs a single
    // level-3 table. Otherwise as high in RAM as it fits.
    let after_image = input.image.end..input.image.end + dynamic;
    let dyn_start = if is_free(input, &after_image, None) {
        after_image.start
    } else {
        let end = find_window(input, align_up(dynamic, BLOCK_2M), None)
            .ok_or(PlanError::NoRoom { needed: dynamic })?
            + align_up(dynamic, BLOCK_2M);
        end - dynamic
    };
    let dynamic_range = dyn_start..dyn_start + dynamic;
    let host_dtb = find_window(input, BLOCK_2M, Some(&dynamic_range))
        .ok_or(PlanError::NoRoom { needed: BLOCK_2M })?;

    let mut cursor = dyn_start;
    let mut take = |size: u64| {
        let r = cursor..cursor + size;
        cursor += size;
        r
    };
    // The record first: its place is then a fact of the layout (the start of the dynamic
    // carve-out, which the host DTB's /reserved-memory shows). Hiding it would be no
    // defence; the DMA attack tests aim at it there.
    let ownership = take(ownership);
    let stage2_pool = take(pool);
    let el2_tables = take(el2_tables);
    let per_cpu = take(per_cpu);
    let heap = take(heap);
    let smmu = take(smmu);
    Ok(MemoryPlan {
        image: input.image.clone(),
        dynamic: dynamic_range,
        host_dtb: host_dtb..host_dtb + BLOCK_2M,
        stage2_pool,
        el2_tables,
        ownership,
        heap,
        per_cpu,
        smmu,
    })
}

fn overlaps(a: &Range<u64>, b: &Range<u64>) -> bool {
    a.start < b.end && b.start < a.end
}

/// The first thing `range` would overwrite: loader data, the image or `also`.
fn clash(input: &PlanInput, range: &Range<u64>, also: Option<&Range<u64>>) -> Option<Range<u64>> {
    input
        .busy
        .first_overlap(range)
        .or_else(|| overlaps(&input.image, range).then(|| input.image.clone()))
        .or_else(|| also.filter(|a| overlaps(a, range)).cloned())
}

/// Whether `range` lies inside one RAM bank and overlaps nothing in use.
fn is_free(input: &PlanInput, range: &Range<u64>, also: Option<&Range<u64>>) -> bool {
    let in_ram = input
        .ram
        .iter()
        .any(|b| b.start <= range.start && range.end <= b.end);
    in_ram && clash(input, range, also).is_none()
}

/// Highest 2 MiB-aligned window of `size` bytes (a multiple of 2 MiB) inside one RAM bank
/// that overlaps nothing in use.
fn find_window(input: &PlanInput, size: u64, also: Option<&Range<u64>>) -> Option<u64> {
    let mut banks = input.ram.iter().collect::<heapless_banks::Banks>();
    banks.sort_descending();
    for bank in banks.iter() {
        let mut end = bank.end & !(BLOCK_2M - 1);
        while end >= size && end - size >= bank.start {
            let candidate = end - size..end;
            match clash(input, &candidate, also) {
                None => return Some(candidate.start),
                Some(c) => end = c.start & !(BLOCK_2M - 1),
            }
        }
    }
    None
}

/// A tiny sortable copy of the bank list (the planner runs before any allocator exists).
mod heapless_banks {
    use super::{MAX_RANGES, Range};

    pub struct Banks {
        items: [(u64, u64); MAX_RANGES],
        len: usize,
    }

    impl FromIterator<Range<u64>> for Banks {
        fn from_iter<I: IntoIterator<Item = Range<u64>>>(iter: I) -> Self {
            let mut b = Banks {
                items: [(0, 0); MAX_RANGES],
                len: 0,
            };
            for r in iter.into_iter().take(MAX_RANGES) {
                b.items[b.len] = (r.start, r.end);
                b.len += 1;
            }
            b
        }
    }

    impl Banks {
        pub fn sort_descending(&mut self) {
            self.items[..self.len].sort_unstable_by_key(|r| core::cmp::Reverse(r.0));
        }

        pub fn iter(&self) -> impl Iterator<Item = Range<u64>> + '_ {
            self.items[..self.len].iter().map(|&(s, e)| s..e)
        }
    }
}

#[cfg(test)]
// RAM lists of one bank are slices of one range on purpose.
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    extern crate std;

    use super::*;

    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;

    fn list(ranges: &[Range<u64>]) -> RangeList {
        let mut l = RangeList::new();
        for r in ranges {
            assert!(l.push(r.clone()));
        }
        l
    }

    /// QEMU virt with 1 GiB as the payload sees it with `-kernel`: image at 0x4020_0000,
    /// DTB at 0x4800_0000, the host kernel module at 0x5000_0000.
    fn qemu_1g<'a>(
        ram: &'a RangeList,
        busy: &'a RangeList,
        mmio: &'a [Range<u64>],
    ) -> PlanInput<'a> {
        PlanInput {
            ram,
            busy,
            image: 0x4020_0000..0x402c_e000,
            mmio,
            root_level: 0,
            root_pages: 1,
            dtb_size: 0x8e00,
            smmu: false,
            per_cpu: ONE_CPU,
            fine_mmio: &[],
            host_mmio_ranges: 0,
        }
    }

    /// One CPU: no stack in the plan (the boot CPU's is in the image), its state (3 pages).
    const ONE_CPU: PerCpuNeeds = PerCpuNeeds {
        cpus: 1,
        stack_bytes: 52 << 10,
        state_bytes: 9000,
    };

    const MMIO: [Range<u64>; 3] = [
        0x0800_0000..0x0801_0000,
        0x0900_0000..0x0900_1000,
        0x80_0000_0000..0x100_0000_0000,
    ];

    #[test]
    fn dynamic_carve_out_follows_the_image_and_fits_the_sizes() {
        let ram = list(&[0x4000_0000..0x4000_0000 + GIB]);
        let busy = list(&[0x4800_0000..0x4800_9000, 0x5000_0000..0x5200_0000]);
        let plan = plan(&qemu_1g(&ram, &busy, &MMIO)).unwrap();
        assert_eq!(plan.dynamic.start, plan.image.end);
        assert_eq!(plan.ownership.end - plan.ownership.start, 512 * 1024);
        // Pool + record + tables + heap exactly fill the dynamic carve-out, in that order.
        assert_eq!(plan.ownership.start, plan.dynamic.start);
        assert_eq!(plan.stage2_pool.start, plan.ownership.end);
        assert_eq!(plan.heap.end, plan.dynamic.end);
        // The host DTB window is 2 MiB aligned, in RAM, away from everything else.
        assert_eq!(plan.host_dtb.start % BLOCK_2M, 0);
        for used in busy
            .iter()
            .chain([plan.image.clone(), plan.dynamic.clone()])
        {
            assert!(!overlaps(&used, &plan.host_dtb), "{used:x?}");
        }
        // 3.5 MiB at 1 GiB: below half of pKVM's 10 MiB.
        assert!(plan.dynamic.end - plan.image.start < 4 * MIB);
        assert!(plan.smmu.is_empty());
    }

    #[test]
    fn an_smmu_gets_its_structures_and_the_worst_case_dma_table_at_the_end() {
        let ram = list(&[0x4000_0000..0x4000_0000 + GIB]);
        let busy = list(&[0x4800_0000..0x4800_9000]);
        let mut input = qemu_1g(&ram, &busy, &MMIO);
        let without = plan(&input).unwrap();
        input.smmu = true;
        let with = plan(&input).unwrap();
        // The worst format is stage 2 on a 42-bit SMMU: a directory, 8 concatenated level-1
        // roots and up to 7 pages before their aligned run, then one level-2 table and 512
        // level-3 tables for 1 GiB of pages (stage 1: root, level-1, level-2, 512).
        let table = (16 + 1 + 512) * PAGE;
        assert_eq!(smmu_bytes(&ram), SMMU_STRUCTURE_BYTES + table);
        assert_eq!(with.smmu.end - with.smmu.start, smmu_bytes(&ram));
        assert_eq!(
            (with.heap.end, with.smmu.end),
            (with.smmu.start, with.dynamic.end)
        );
        assert_eq!(
            (with.dynamic.end - with.dynamic.start) - (without.dynamic.end - without.dynamic.start),
            smmu_bytes(&ram)
        );
        // Two RAM banks: each counts its own level-2 tables (an upper bound).
        let two = list(&[0x4000_0000..0x8000_0000, 0x1_0000_0000..0x1_4000_0000]);
        assert_eq!(
            smmu_bytes(&two),
            SMMU_STRUCTURE_BYTES + (16 + 2 + 1024) * PAGE
        );
    }

    #[test]
    fn dynamic_carve_out_moves_to_the_top_when_the_image_is_followed_by_a_module() {
        let ram = list(&[0x4000_0000..0x4000_0000 + GIB]);
        let busy = list(&[0x402c_e000..0x4100_0000]);
        let plan = plan(&qemu_1g(&ram, &busy, &MMIO)).unwrap();
        assert_eq!(plan.dynamic.end, 0x8000_0000);
        assert!(!overlaps(&plan.dynamic, &(0x402c_e000..0x4100_0000)));
        assert!(!overlaps(&plan.dynamic, &plan.host_dtb));
    }

    #[test]
    fn busy_list_holds_the_dtb_both_modules_and_32_reserved_ranges_and_the_plan_avoids_them() {
        let ram = list(&[0x4000_0000..0x4000_0000 + GIB]);
        let mut busy = RangeList::new();
        assert!(busy.push(0x4800_0000..0x4800_9000));
        assert!(busy.push(0x5000_0000..0x5200_0000));
        assert!(busy.push(0x5c00_0000..0x5c10_0000));
        // 31 small reserved pages low in RAM, then one where the carve-out would go.
        for i in 0..31 {
            let base = 0x4000_0000 + i * PAGE;
            assert!(
                busy.push(base..base + PAGE),
                "reserved range {i} was refused"
            );
        }
        let last = 0x4040_0000..0x4080_0000;
        assert!(
            busy.push(last.clone()),
            "the 32nd reserved range was refused"
        );
        let plan = plan(&qemu_1g(&ram, &busy, &MMIO)).unwrap();
        for used in [&plan.dynamic, &plan.host_dtb] {
            for r in busy.iter() {
                assert!(!overlaps(used, &r), "{used:x?} overlaps busy {r:x?}");
            }
        }
        // Only then is a full list refused (the caller turns that into a fatal error).
        for _ in busy.iter().count()..MAX_RANGES {
            assert!(busy.push(0x7000_0000..0x7000_1000));
        }
        assert!(!busy.push(0x7000_1000..0x7000_2000));
    }

    #[test]
    fn no_ram_or_no_room_is_an_error_not_a_wrong_plan() {
        let empty = RangeList::new();
        let busy = RangeList::new();
        assert!(matches!(
            plan(&qemu_1g(&empty, &busy, &MMIO)),
            Err(PlanError::NoRam)
        ));
        // RAM fully taken by loader data.
        let ram = list(&[0x4000_0000..0x4000_0000 + 8 * MIB]);
        let busy = list(&[0x4000_0000..0x4000_0000 + 8 * MIB]);
        assert!(matches!(
            plan(&qemu_1g(&ram, &busy, &MMIO)),
            Err(PlanError::NoRoom { .. })
        ));
    }

    #[test]
    fn pool_covers_the_worst_case_split_of_ram_and_mmio_tables_once() {
        let ram = list(&[0x4000_0000..0x4000_0000 + GIB]);
        // Level-3 tables for every 2 MiB of RAM, a level-2 table per GiB, a level-1 table.
        let ram_only = host_stage2_pool_pages(&ram, &[], 0, 1);
        assert_eq!(ram_only, 1 + 512 + 1 + 1);
        // Two small devices in one 2 MiB block of one GiB share their tables; the 512 GiB
        // window needs only a level-1 table.
        let shared = [0x0900_0000..0x0900_1000, 0x0901_0000..0x0901_1000];
        assert_eq!(host_stage2_pool_pages(&ram, &shared, 0, 1) - ram_only, 3);
        let big = [0x80_0000_0000..0x100_0000_0000];
        assert_eq!(host_stage2_pool_pages(&ram, &big, 0, 1) - ram_only, 1);
    }

    #[test]
    fn more_mmio_tables_than_the_dedup_list_holds_are_all_counted() {
        // 300 one-page devices, each in its own GiB below 512 GiB: one level-1 table, then
        // a level-2 and a level-3 table each. Past the 256 the list remembers, the rest
        // must still be counted (undeduplicated, so over), or the pool runs dry mapping the
        // last devices.
        let mmio: std::vec::Vec<Range<u64>> = (0..300u64)
            .map(|i| (i + 1) * GIB..(i + 1) * GIB + PAGE)
            .collect();
        let counted = mmio_table_pages(&mmio, 0);
        assert!(counted >= 1 + 300 + 300, "{counted} tables counted");
    }

    #[test]
    fn an_mmio_range_covering_whole_blocks_needs_no_table_below_them() {
        // One aligned GiB: a level-1 table holds its block entry; no level-2 or level-3
        // table is needed.
        assert_eq!(mmio_table_pages(&[GIB..2 * GIB], 0), 1);
        // One aligned 2 MiB block: level-1 and level-2 tables, no level-3 table.
        assert_eq!(mmio_table_pages(&[GIB..GIB + BLOCK_2M], 0), 2);
        // A range starting inside one GiB and ending inside another: a level-2 and a
        // level-3 table at each end.
        assert_eq!(
            mmio_table_pages(&[GIB + PAGE..3 * GIB + PAGE], 0),
            1 + 2 + 2
        );
        // Empty ranges need nothing.
        assert_eq!(mmio_table_pages(&[GIB..GIB], 0), 0);
    }

    #[test]
    fn busy_ranges_that_only_touch_the_carve_out_do_not_move_it() {
        let ram = list(&[0x4000_0000..0x4000_0000 + GIB]);
        let dynamic_with = |busy: &RangeList| plan(&qemu_1g(&ram, busy, &MMIO)).unwrap().dynamic;
        let dynamic = dynamic_with(&list(&[]));
        // A range ending where the carve-out starts, one starting where it ends.
        let touching = list(&[0x4000_0000..dynamic.start, dynamic.end..dynamic.end + PAGE]);
        assert_eq!(dynamic_with(&touching), dynamic);
        // Overlapping it by one page at either end moves it.
        for busy in [
            dynamic.start..dynamic.start + PAGE,
            dynamic.end - PAGE..dynamic.end,
        ] {
            let moved = dynamic_with(&list(core::slice::from_ref(&busy)));
            assert_ne!(moved, dynamic);
            assert!(!overlaps(&moved, &busy), "{moved:x?} over {busy:x?}");
        }
    }

    #[test]
    fn plan_errors_say_what_is_missing() {
        assert_eq!(
            std::format!("{}", PlanError::NoRam),
            "the DTB describes no RAM"
        );
        assert_eq!(
            std::format!("{}", PlanError::NoRoom { needed: 0x20_0000 }),
            "no free 2 MiB-aligned RAM window of 0x200000 bytes for EL2's pools and the host DTB"
        );
    }

    #[test]
    fn every_part_of_the_plan_has_the_size_its_contents_need() {
        let ram = list(&[0x4000_0000..0x4000_0000 + GIB]);
        let busy = list(&[0x4800_0000..0x4800_9000]);
        let input = PlanInput {
            smmu: true,
            ..qemu_1g(&ram, &busy, &MMIO)
        };
        let p = plan(&input).unwrap();
        let len = |r: &Range<u64>| r.end - r.start;
        let pool_pages = host_stage2_pool_pages(&ram, &MMIO, 0, 1);
        assert_eq!(len(&p.stage2_pool), pool_pages * 4096);
        assert_eq!(len(&p.el2_tables), 16 * 4096);
        // 32 KiB and twice the DTB (0x8e00), rounded up to pages.
        assert_eq!(len(&p.heap), 0x8000 + 0x12000);
        // 64 KiB of SMMU structures, then the worst-case DMA table (stage 2 with 8
        // concatenated roots: 16 root pages), level 2 and 512 level-3 tables for 1 GiB.
        assert_eq!(SMMU_STRUCTURE_BYTES, 0x1_0000);
        assert_eq!(len(&p.smmu), 0x1_0000 + (16 + 1 + 512) * 4096);
        assert_eq!(len(&p.host_dtb), 2 << 20);
        assert_eq!(len(&p.ownership), GIB / 4096 * 2);
    }

    #[test]
    fn the_host_dtb_window_never_overlaps_the_image_or_the_carve_out() {
        // Written without `overlaps`, which this checks.
        let apart = |a: &Range<u64>, b: &Range<u64>| a.end <= b.start || b.end <= a.start;
        // RAM so tight that the 2 MiB windows left are next to the image and the dynamic
        // carve-out: 8 MiB, the image in the first or the last 2 MiB.
        let ram = list(&[0x4000_0000..0x4080_0000]);
        let busy = list(&[]);
        // The window is the highest free one: right below the image when that is at the top.
        for (image, window) in [
            (0x4000_0000..0x400c_e000, 0x4060_0000),
            (0x4060_0000..0x406c_e000, 0x4040_0000),
        ] {
            let input = PlanInput {
                image: image.clone(),
                ..qemu_1g(&ram, &busy, &[])
            };
            let p = plan(&input).unwrap();
            assert!(apart(&p.host_dtb, &image), "{p:x?}");
            assert!(apart(&p.host_dtb, &p.dynamic), "{p:x?}");
            assert!(
                apart(&p.dynamic, &image) || p.dynamic.start == image.end,
                "{p:x?}"
            );
            assert_eq!(p.host_dtb.start, window, "{p:x?}");
        }
    }

    #[test]
    fn a_carve_out_that_would_run_past_the_end_of_ram_goes_below_the_image() {
        // The image ends 64 KiB before the end of RAM: the dynamic carve-out (200 KiB)
        // cannot follow it.
        let ram = list(&[0x4000_0000..0x4080_0000]);
        let busy = list(&[]);
        let input = PlanInput {
            image: 0x4070_0000..0x407f_0000,
            ..qemu_1g(&ram, &busy, &[])
        };
        let p = plan(&input).unwrap();
        assert!(p.dynamic.end - p.dynamic.start > 0x1_0000, "{p:x?}");
        assert!(
            p.dynamic.end <= 0x4070_0000,
            "{p:x?} is not below the image"
        );
        assert!(p.dynamic.start >= 0x4000_0000, "{p:x?}");
    }

    #[test]
    fn windows_in_a_bank_that_ends_off_a_2mib_boundary_are_still_2mib_aligned() {
        // The Linux boot protocol wants the DTB in one 2 MiB block.
        let ram = list(&[0x4000_0000..0x407f_f000]);
        let busy = list(&[]);
        let p = plan(&qemu_1g(&ram, &busy, &[])).unwrap();
        assert_eq!(p.host_dtb.start % BLOCK_2M, 0, "{p:x?}");
        assert!(p.host_dtb.end <= 0x407f_f000, "{p:x?}");
        assert_eq!(p.host_dtb.start, 0x4040_0000, "the highest whole block");
    }

    #[test]
    fn below_a_busy_range_that_starts_off_a_2mib_boundary_the_window_is_still_aligned() {
        let ram = list(&[0x4000_0000..0x4080_0000]);
        let busy = list(&[0x4070_1000..0x4080_0000]);
        let p = plan(&qemu_1g(&ram, &busy, &[])).unwrap();
        assert_eq!(p.host_dtb.start, 0x4040_0000, "{p:x?}");
    }

    #[test]
    fn the_window_goes_in_the_highest_bank_whatever_their_order() {
        let ram = list(&[0x4000_0000..0x4080_0000, 0x8000_0000..0x8080_0000]);
        let busy = list(&[]);
        let p = plan(&qemu_1g(&ram, &busy, &[])).unwrap();
        assert_eq!(p.host_dtb.start, 0x8060_0000, "{p:x?}");
    }

    #[test]
    fn the_per_cpu_part_grows_by_one_stack_and_one_state_per_cpu() {
        let needs = |cpus| PerCpuNeeds { cpus, ..ONE_CPU };
        assert_eq!(
            per_cpu_bytes(&needs(1)),
            Some(3 * PAGE),
            "the boot CPU's state only"
        );
        // 255 secondary stacks (guard + 48 KiB), 256 states of 9000 bytes rounded to a page.
        assert_eq!(
            per_cpu_bytes(&needs(256)),
            Some(255 * (52 << 10) + align_up(256 * 9000, PAGE))
        );
        assert_eq!(needs(256).bytes_per_cpu(), (52 << 10) + 9000);
        // A stack size that is not whole pages is rounded up: guard pages stay page aligned.
        let odd = PerCpuNeeds {
            cpus: 3,
            stack_bytes: 5000,
            state_bytes: 0,
        };
        assert_eq!(per_cpu_bytes(&odd), Some(2 * 2 * PAGE));
        assert_eq!(per_cpu_bytes(&needs(u64::MAX)), None);
    }

    #[test]
    fn the_plan_gives_the_per_cpu_part_its_size_page_aligned_inside_the_carve_out() {
        let ram = list(&[0x4000_0000..0x4000_0000 + 4 * GIB]);
        let busy = list(&[0x4800_0000..0x4800_9000]);
        let one = plan(&qemu_1g(&ram, &busy, &MMIO)).unwrap();
        for cpus in [2, 64, 256, 512] {
            let input = PlanInput {
                per_cpu: PerCpuNeeds { cpus, ..ONE_CPU },
                ..qemu_1g(&ram, &busy, &MMIO)
            };
            let p = plan(&input).unwrap();
            let want = per_cpu_bytes(&input.per_cpu).unwrap();
            assert_eq!(p.per_cpu.end - p.per_cpu.start, want, "{cpus} CPUs");
            assert_eq!(p.per_cpu.start % PAGE, 0);
            assert!(p.dynamic.start <= p.per_cpu.start && p.per_cpu.end <= p.dynamic.end);
            assert_eq!(
                (p.el2_tables.end, p.per_cpu.end),
                (p.per_cpu.start, p.heap.start)
            );
            // Everything else is as with one CPU: the carve-out grows by the per-CPU part and
            // the EL2 tables that keep its guard pages unmapped.
            let size = |p: &MemoryPlan| p.dynamic.end - p.dynamic.start;
            let guards = stack_guard_table_pages((cpus - 1) * (52 << 10)) * PAGE;
            assert_eq!(
                size(&p) - size(&one),
                want - 3 * PAGE + guards,
                "{cpus} CPUs"
            );
        }
    }

    #[test]
    fn more_cpus_than_the_ram_can_hold_is_no_room_not_fewer_cpus() {
        // 64 MiB of RAM cannot hold 4096 CPUs' stacks (about 208 MiB).
        let ram = list(&[0x4000_0000..0x4400_0000]);
        let busy = list(&[]);
        let input = PlanInput {
            image: 0x4000_0000..0x400c_e000,
            per_cpu: PerCpuNeeds {
                cpus: 4096,
                ..ONE_CPU
            },
            ..qemu_1g(&ram, &busy, &[])
        };
        assert!(matches!(plan(&input), Err(PlanError::NoRoom { .. })));
        let absurd = PlanInput {
            per_cpu: PerCpuNeeds {
                cpus: u64::MAX / 2,
                ..ONE_CPU
            },
            ..qemu_1g(&ram, &busy, &[])
        };
        let e = plan(&absurd).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "per-CPU state for {} CPUs does not fit in memory",
                u64::MAX / 2
            )
        );
    }

    #[test]
    fn el2_tables_grow_with_the_stack_guards_they_must_leave_unmapped() {
        assert_eq!(stack_guard_table_pages(0), 0);
        // One stack: at most two 2 MiB blocks and two GiB touched.
        assert_eq!(stack_guard_table_pages(52 << 10), 4);
        // 255 stacks of 52 KiB: 12.9 MiB, 7 blocks (8 unaligned), 1 GiB (2 unaligned).
        assert_eq!(stack_guard_table_pages(255 * (52 << 10)), 7 + 1 + 1 + 1);
        let ram = list(&[0x4000_0000..0x4000_0000 + 4 * GIB]);
        let busy = list(&[]);
        let input = PlanInput {
            per_cpu: PerCpuNeeds {
                cpus: 256,
                ..ONE_CPU
            },
            ..qemu_1g(&ram, &busy, &MMIO)
        };
        let p = plan(&input).unwrap();
        assert_eq!(p.el2_tables.end - p.el2_tables.start, (16 + 10) * PAGE);
    }

    #[test]
    fn gicr_regions_mapped_frame_by_frame_and_the_mmio_list_are_counted() {
        let ram = list(&[0x4000_0000..0x4000_0000 + GIB]);
        let busy = list(&[]);
        let base = plan(&qemu_1g(&ram, &busy, &MMIO)).unwrap();
        // QEMU virt's two GICR regions (123 CPUs low, the rest high).
        let gicr = [0x080a_0000..0x0900_0000, 0x40_0000_0000..0x40_0400_0000];
        let input = PlanInput {
            fine_mmio: &gicr,
            host_mmio_ranges: 512 + 16,
            ..qemu_1g(&ram, &busy, &MMIO)
        };
        let p = plan(&input).unwrap();
        let len = |r: &Range<u64>| r.end - r.start;
        let fine: usize = gicr
            .iter()
            .map(|r| crate::pool::pages_needed_to_map(r.start as usize, r.end as usize, 0))
            .sum();
        assert!(fine >= 8 + 32, "a level-3 table per 2 MiB at least");
        assert_eq!(
            len(&p.stage2_pool) - len(&base.stage2_pool),
            fine as u64 * PAGE
        );
        assert_eq!(
            len(&p.heap),
            align_up(HEAP_BASE + 2 * 0x8e00 + 528 * 16, PAGE)
        );
    }
}
