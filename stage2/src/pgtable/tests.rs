extern crate std;

use super::*;
use crate::pool::test_memory::Arena;
use crate::tlb::{RecordingTlb, TlbOp};
use std::vec::Vec;

const KIB4: usize = 4 << 10;

/// A table and the heap memory of its pool. Fields drop in order: the table (whose drop
/// writes free-list links into its pages) before the memory.
struct TestTable {
    t: Stage2Table,
    arenas: Vec<Arena>,
}

impl core::ops::Deref for TestTable {
    type Target = Stage2Table;
    fn deref(&self) -> &Stage2Table {
        &self.t
    }
}

impl core::ops::DerefMut for TestTable {
    fn deref_mut(&mut self) -> &mut Stage2Table {
        &mut self.t
    }
}

/// A table for VMID `vmid` with a pool of `pages` heap pages.
fn table(pa_range: u64, pages: usize, vmid: u16) -> (TestTable, usize) {
    let arena = Arena::new(pages * PAGE_SIZE, PAGE_SIZE);
    let base = arena.base();
    // SAFETY: the arena is page-aligned heap memory that the TestTable keeps alive for as long
    // as the table.
    let pool = unsafe { PagePool::new(arena.base(), arena.len()) };
    let t = Stage2Table::with_vmid(pool, &stage2_config(pa_range), vmid);
    (
        TestTable {
            t,
            arenas: std::vec![arena],
        },
        base,
    )
}

type Snapshot = Vec<(usize, usize, Vec<u64>)>;

fn snapshot(t: &Stage2Table) -> Snapshot {
    let mut s = Vec::new();
    t.for_each_table(|pa, level, e| s.push((pa, level, e.to_vec())));
    s
}

/// The typical QEMU virt MMIO regions (GIC distributor and redistributors, UART, RTC, fw-cfg,
/// virtio-mmio, PCIe MMIO window).
const QEMU_MMIO: [(usize, usize); 7] = [
    (0x0800_0000, 0x0801_0000),
    (0x080a_0000, 0x0900_0000),
    (0x0900_0000, 0x0900_1000),
    (0x0901_0000, 0x0901_1000),
    (0x0902_0000, 0x0902_1000),
    (0x0a00_0000, 0x0a00_4000),
    (0x1000_0000, 0x3eff_0000),
];

fn map_all(t: &mut Stage2Table, ram: &[(usize, usize)]) {
    for &(s, e) in ram {
        t.map_identity(s, e, MemKind::Normal).unwrap();
    }
    for &(s, e) in &QEMU_MMIO {
        t.map_identity(s, e, MemKind::Device).unwrap();
    }
}

/// The Arm ARM's rules for a stage-2 `VTCR_EL2` with a 4 KiB granule, written from the
/// architecture (and QEMU's `check_s2_mmu_setup`, which faults every access otherwise), not
/// from `stage2_config`: returns the start level and the number of concatenated root tables,
/// or why the combination is illegal on a CPU whose `PARange` is `pa_range`.
fn legal_stage2_walk(vtcr: u64, pa_range: u64) -> Result<(usize, usize), &'static str> {
    let pa_bits = [32, 36, 40, 42, 44, 48, 52][pa_range.min(6) as usize];
    let t0sz = (vtcr & 0x3f) as u32;
    let input_bits = 64 - t0sz;
    let level = match (vtcr >> 6) & 3 {
        0 => 2,
        1 => 1,
        2 => 0,
        _ => return Err("SL0 = 3 is reserved without FEAT_TTST"),
    };
    if (vtcr >> 14) & 3 != 0 {
        return Err("TG0 is not 4 KiB");
    }
    if vtcr & (1 << 31) == 0 {
        return Err("bit 31 is RES1");
    }
    let ps = (vtcr >> 16) & 7;
    let output_bits = match ps {
        0..=6 => [32, 36, 40, 42, 44, 48, 52][ps as usize],
        _ => return Err("PS reserved"),
    };
    if output_bits > pa_bits {
        return Err("PS is larger than the CPU's PARange");
    }
    if output_bits == 52 || input_bits > 48 {
        return Err("52-bit sizes need FEAT_LPA2 descriptors");
    }
    // Bits the start level resolves: 1..=9 in one table, up to 13 with 16 concatenated.
    let start_bits = input_bits as i64 - ((3 - level as i64) * 9 + 12);
    if !(1..=13).contains(&start_bits) {
        return Err("the start level does not fit the input size");
    }
    if level == 0 && output_bits <= 42 {
        return Err("a level-0 start needs an output size above 42 bits");
    }
    if input_bits > output_bits {
        return Err("the input size exceeds the output size");
    }
    Ok((level, 1 << (start_bits - 9).max(0)))
}

#[test]
fn every_pa_range_gets_a_legal_stage2_start_level_and_root() {
    // (PARange, PA bits, IPA bits, start level, concatenated root tables)
    let expected = [
        (0, 32, 32, 1, 1),
        (1, 36, 36, 1, 1),
        (2, 40, 40, 1, 2), // Cortex-A53/A35/A76, A64FX: level 0 is illegal here
        (3, 42, 42, 1, 8),
        (4, 44, 44, 0, 1),
        (5, 48, 48, 0, 1),
        (6, 52, 48, 0, 1), // 52-bit PA: IPA and PS capped at 48 bits (no LPA2)
    ];
    for (pa_range, pa_bits, ipa_bits, level, tables) in expected {
        let c = stage2_config(pa_range);
        assert_eq!(
            legal_stage2_walk(c.vtcr, pa_range),
            Ok((level, tables)),
            "PARange {pa_range} ({pa_bits}-bit PA): VTCR_EL2 {:#x}",
            c.vtcr
        );
        assert_eq!(
            (c.ipa_bits, c.root_level, c.root_tables),
            (ipa_bits, level, tables),
            "PARange {pa_range}"
        );
        assert_eq!(c.vtcr & 0x3f, u64::from(64 - ipa_bits), "T0SZ");
        assert_eq!((c.vtcr >> 16) & 7, pa_range.min(5), "PS");
        assert_eq!(
            c.vtcr & !(0x3f | (3 << 6) | (7 << 16)),
            (1 << 8) | (1 << 10) | (3 << 12) | (1 << 31),
            "walk attributes and RES1"
        );
    }
    assert_eq!(stage2_config(15), stage2_config(6));
    assert_eq!(stage2_config(6).ipa_size(), 1 << 48);
    assert_eq!(Stage2Config::vttbr(0x1234_5000, 7), 0x0007_0000_1234_5000);
}

#[test]
fn vm_ipa_sizes_above_the_cpus_are_refused() {
    let allowed = |pa_range| {
        (32..=40)
            .filter(|&b| stage2_config(pa_range).allows_vm_ipa_bits(b))
            .collect::<Vec<u32>>()
    };
    assert_eq!(allowed(0), std::vec![32]);
    assert_eq!(allowed(1), (32..=36).collect::<Vec<_>>());
    for pa_range in 2..=6 {
        assert_eq!(allowed(pa_range), (32..=40).collect::<Vec<_>>());
    }
}

#[test]
fn the_legality_check_rejects_what_the_architecture_rejects() {
    let vtcr = |t0sz: u64, sl0: u64, ps: u64| t0sz | (sl0 << 6) | (ps << 16) | (1 << 31);
    // 40-bit IPA from level 0 with a 40-bit output size: what the payload did on Cortex-A53.
    assert!(legal_stage2_walk(vtcr(24, 2, 2), 2).is_err());
    // 40-bit IPA on a 36-bit output size.
    assert!(legal_stage2_walk(vtcr(24, 1, 1), 1).is_err());
    // 44-bit IPA from level 1 would need 32 concatenated tables.
    assert!(legal_stage2_walk(vtcr(20, 1, 4), 4).is_err());
    // PS above PARange.
    assert!(legal_stage2_walk(vtcr(24, 1, 5), 2).is_err());
    assert_eq!(legal_stage2_walk(vtcr(24, 1, 2), 2), Ok((1, 2)));
    assert_eq!(legal_stage2_walk(vtcr(24, 2, 5), 5), Ok((0, 1)));
}

/// The walk the hardware does from `VTTBR_EL2` (independent of `Stage2Table`'s own walks,
/// which start at the library's root): the start level indexes all `root_tables`
/// concatenated tables at once. Returns the leaf's output address for `ipa`.
fn hardware_walk(t: &Stage2Table, c: &Stage2Config, ipa: usize) -> Option<usize> {
    let mut table = t.root_pa();
    let mut level = c.root_level;
    let mut entries = ENTRIES * c.root_tables;
    loop {
        let shift = 12 + 9 * (3 - level);
        let index = (ipa >> shift) & (entries - 1);
        // SAFETY: test tables live in heap arenas the TestTable keeps alive; `index` is inside
        // the (concatenated) table.
        let d = unsafe { *(table as *const u64).add(index) };
        if d & 1 == 0 {
            return None;
        }
        if level < 3 && d & 2 != 0 {
            table = (d & DESC_ADDR_MASK) as usize;
            level += 1;
            entries = ENTRIES;
            continue;
        }
        let size = 1usize << shift;
        return Some((d & DESC_ADDR_MASK) as usize & !(size - 1) | (ipa & (size - 1)));
    }
}

#[test]
fn a_40_and_a_42_bit_ipa_space_use_aligned_concatenated_roots_the_hardware_walk_agrees_with() {
    for (pa_range, tables) in [(2u64, 2usize), (3, 8)] {
        let c = stage2_config(pa_range);
        // A pool that does not start on the run's alignment: the run is found further in.
        let arena = Arena::new(64 * PAGE_SIZE, 64 * PAGE_SIZE);
        // SAFETY: heap memory kept alive below for as long as the table.
        let pool = unsafe { PagePool::new(arena.base() + PAGE_SIZE, 40 * PAGE_SIZE) };
        let mut t = Stage2Table::with_vmid(pool, &c, 3);
        assert_eq!(t.root_level(), 1);
        assert_eq!(
            t.root_pa() % (tables * PAGE_SIZE),
            0,
            "BADDR aligned to the root"
        );
        assert_eq!(t.vttbr() & DESC_ADDR_MASK, t.root_pa() as u64);
        // A page and a 1 GiB block in the first and the last 512 GiB slot of the space.
        let top = c.ipa_size();
        let cases = [
            (0x4000_0000, 0x4000_1000, 0x8_0000_0000),
            (0x8000_0000, 0xc000_0000, 0x40_0000_0000),
            (top - (2 << 30), top - (1 << 30), 0x1_0000_0000),
            (top - 0x1000, top, 0x9_0000_0000),
        ];
        for &(s, e, pa) in &cases {
            t.map(s, e, pa, MemKind::Normal).unwrap();
        }
        for &(s, e, pa) in &cases {
            for ipa in [s, e - 0x1000] {
                let want = pa + (ipa - s);
                assert_eq!(t.translate(ipa).map(|l| l.pa), Some(want), "{ipa:#x}");
                assert_eq!(hardware_walk(&t, &c, ipa), Some(want), "{ipa:#x}");
            }
        }
        assert_eq!(hardware_walk(&t, &c, 0x1_0000_0000), None);
        // Unmapping leaves (and a page of a block) never touches the directory.
        let mut tlb = RecordingTlb::default();
        t.unmap(top - 0x1000, top, &mut tlb).unwrap();
        t.unmap(0x8000_0000, 0x8000_1000, &mut tlb).unwrap();
        assert_eq!(hardware_walk(&t, &c, top - 0x1000), None);
        assert_eq!(hardware_walk(&t, &c, 0x8000_0000), None);
        assert_eq!(
            hardware_walk(&t, &c, 0x8000_1000),
            Some(0x40_0000_1000),
            "the rest of the broken block is mapped again"
        );
        assert_eq!(t.translate(top - (2 << 30)).map(|l| l.level), Some(1));
        assert!(t.map(top, top + 0x1000, 0, MemKind::Normal).is_err());
        // Every page (directory, run, tables, free) goes back at release.
        let total = t.pool_total_pages();
        let mut released = Vec::new();
        t.release_pages(|pa| released.push(pa)).unwrap();
        released.sort_unstable();
        released.dedup();
        assert_eq!(released.len(), total);
        drop(arena);
    }
}

#[test]
fn a_concatenated_root_is_created_exactly_when_its_pool_range_fits_it() {
    let arena = Arena::new(64 * PAGE_SIZE, 64 * PAGE_SIZE);
    for pa_range in [2u64, 3] {
        let c = stage2_config(pa_range);
        for offset in 0..16 {
            for nr in 1..20 {
                let start = arena.base() + offset * PAGE_SIZE;
                let mut pool = PagePool::empty();
                // SAFETY: inside the arena, which outlives the table; each table is dropped
                // before the next pool reuses the pages.
                unsafe { pool.add_pages(start, nr) };
                let fits = c.root_fits_in(start, start + nr * PAGE_SIZE);
                let made = Stage2Table::try_new(pool, &c, 1);
                assert_eq!(
                    made.is_ok(),
                    fits,
                    "PARange {pa_range}, +{offset} pages, {nr}"
                );
                if nr >= c.root_pages_worst_case() {
                    assert!(fits, "the worst case always fits");
                }
            }
        }
    }
    // Without concatenation, one page is enough.
    let c = stage2_config(5);
    assert!(c.root_fits_in(arena.base() + PAGE_SIZE, arena.base() + 2 * PAGE_SIZE));
    assert_eq!((c.root_pages(), c.root_pages_worst_case()), (1, 1));
}

#[test]
fn qemu_layout_with_aligned_carve_out_uses_expected_blocks() {
    let (mut t, _arena) = table(1, 64, 0);
    // 1 GiB of RAM at 0x4000_0000 minus a 4 MiB carve-out at 0x4020_0000.
    let ram = [(0x4000_0000, 0x4020_0000), (0x4060_0000, 0x8000_0000)];
    map_all(&mut t, &ram);
    let ram_stats = t.stats(&ram);
    assert_eq!(
        (ram_stats.gib, ram_stats.mib2, ram_stats.kib4),
        (0, 1 + 509, 0)
    );
    let mmio_stats = t.stats(&QEMU_MMIO);
    // GICD 16 pages; GICR 352 pages then 7 x 2 MiB; UART, RTC, fw-cfg 1 page each; virtio
    // 4 pages; PCIe window 375 x 2 MiB then 496 pages.
    assert_eq!(
        (mmio_stats.gib, mmio_stats.mib2, mmio_stats.kib4),
        (0, 7 + 375, 16 + 352 + 3 + 4 + 496)
    );
    // Root, two level-2 tables (GiB 0 and GiB 1), level-3 tables for the 2 MiB chunks at
    // 0x0800_0000 (GICD+GICR), 0x0900_0000 (UART, RTC, fw-cfg), 0x0a00_0000, 0x3ee0_0000.
    assert_eq!(mmio_stats.tables, 7);
    assert_eq!(t.pool_total_pages() - t.pool_free_pages(), 7);
    let all = t.stats_all();
    assert_eq!((all.gib, all.mib2, all.kib4), (0, 510 + 382, 871));
    assert_eq!(
        std::format!("{all}"),
        "0 x 1 GiB, 892 x 2 MiB, 871 x 4 KiB blocks, 7 table pages"
    );
}

#[test]
fn whole_gigabytes_become_1gib_blocks() {
    let (mut t, _arena) = table(6, 64, 0);
    // 3 GiB at 0x4000_0000 with the carve-out in the first GiB: two 1 GiB blocks remain.
    let ram = [(0x4000_0000, 0x4020_0000), (0x4060_0000, 0x1_0000_0000)];
    map_all(&mut t, &ram);
    let s = t.stats(&ram);
    assert_eq!((s.gib, s.mib2, s.kib4), (2, 510, 0));
    // Root at level 0, one level-1 table, level-2 tables for GiB 0 and GiB 1, and the four
    // level-3 tables of the MMIO edges.
    assert_eq!(s.tables, 1 + 1 + 2 + 4);
    let leaf = t.translate(0x8000_1234).unwrap();
    assert_eq!(
        (leaf.level, leaf.pa, leaf.block_ipa),
        (1, 0x8000_1234, 0x8000_0000)
    );
}

#[test]
fn unaligned_hole_gives_pages_at_its_edges() {
    let (mut t, _arena) = table(1, 64, 0);
    let ram = [(0x4000_0000, 0x4020_3000), (0x4040_5000, 0x8000_0000)];
    for &(s, e) in &ram {
        t.map_identity(s, e, MemKind::Normal).unwrap();
    }
    let s = t.stats(&ram);
    // 0x4000_0000 + 2 MiB block, 3 pages; then 507 pages up to 0x4060_0000 and 509 blocks.
    assert_eq!((s.gib, s.mib2, s.kib4), (0, 1 + 509, 3 + 507));
    assert_eq!(s.tables, 1 + 1 + 2);
    assert_eq!(t.translate(0x4020_2fff).map(|l| l.level), Some(3));
    assert_eq!(t.translate(0x4020_3000), None);
    assert_eq!(t.translate(0x4040_4fff), None);
    assert_eq!(t.translate(0x4040_5000).map(|l| l.level), Some(3));
}

#[test]
fn translate_reports_address_level_and_kind() {
    let (mut t, _arena) = table(1, 64, 0);
    map_all(&mut t, &[(0x4000_0000, 0x8000_0000)]);
    let l = t.translate(0x4123_4567).unwrap();
    assert_eq!(
        (l.pa, l.level, l.kind()),
        (0x4123_4567, 1, Some(MemKind::Normal))
    );
    assert!(!l.attrs.contains(Stage2Attributes::XN));
    let u = t.translate(0x0900_0010).unwrap();
    assert_eq!(
        (u.pa, u.level, u.kind()),
        (0x0900_0010, 3, Some(MemKind::Device))
    );
    assert!(u.attrs.contains(Stage2Attributes::XN));
    assert_eq!(t.translate(0x0900_1000), None);
    assert_eq!(t.translate(1 << 36), None);
    // Non-identity (guest) mapping: IPA 0x8000_0000 -> PA 0x4020_0000, one 2 MiB block.
    let (mut g, _garena) = table(1, 8, 3);
    g.map(0x8000_0000, 0x8020_0000, 0x4020_0000, MemKind::Normal)
        .unwrap();
    let l = g.translate(0x8000_5008).unwrap();
    assert_eq!((l.pa, l.level, l.block_pa), (0x4020_5008, 2, 0x4020_0000));
}

#[test]
fn bad_ranges_are_refused() {
    let (mut t, _arena) = table(1, 8, 0);
    assert!(matches!(
        t.map_identity(0x1000, 0x1000, MemKind::Normal),
        Err(Stage2Error::InvalidRange { .. })
    ));
    assert!(matches!(
        t.map_identity(0x1001, 0x2000, MemKind::Normal),
        Err(Stage2Error::InvalidRange { .. })
    ));
    assert!(matches!(
        t.map_identity(0x2000, 0x1000, MemKind::Normal),
        Err(Stage2Error::InvalidRange { .. })
    ));
    assert!(matches!(
        t.map_identity(0xf_ffff_f000, 0x10_0000_1000, MemKind::Normal),
        Err(Stage2Error::OutOfRange { .. })
    ));
    assert!(matches!(
        t.map(0x1000, 0x2000, 0x1800, MemKind::Normal),
        Err(Stage2Error::InvalidRange { .. })
    ));
    let mut tlb = RecordingTlb::default();
    assert!(matches!(
        t.unmap(0x3000, 0x2000, &mut tlb),
        Err(Stage2Error::InvalidRange { .. })
    ));
    assert!(tlb.ops.is_empty());
    assert_eq!(t.table_pages(), 1);
}

#[test]
fn tables_needed_is_exactly_what_mapping_takes() {
    let (mut t, _arena) = table(6, 1100, 0);
    let cases: [(usize, usize, usize); 9] = [
        (0x4000_0000, 0x8000_0000, 0x4000_0000),
        (0x4000_1000, 0x4000_2000, 0x4000_1000),
        (0x1_0000_0000, 0x1_4000_0000, 0x2_0000_1000),
        (0x3ee0_0000, 0x3eff_0000, 0x3ee0_0000),
        (0x0800_0000, 0x0801_0000, 0x0800_0000),
        (0x80_0000_0000, 0x80_0040_0000, 0x1_0000_0000),
        (0x1_0020_0000, 0x1_0020_1000, 0x9_0000_0000),
        (0x7f_ffff_f000, 0x80_0000_1000, 0x5000),
        // Already mapped the same way: nothing to do.
        (0x4000_0000, 0x4000_1000, 0x4000_0000),
    ];
    for (s, e, pa) in cases {
        let before = t.pool_free_pages();
        let needed = t.tables_needed_to_map(s, e, pa, MemKind::Normal).unwrap();
        match t.map(s, e, pa, MemKind::Normal) {
            Ok(()) => assert_eq!(
                before - t.pool_free_pages(),
                needed,
                "mapping {s:#x}..{e:#x} -> {pa:#x}"
            ),
            Err(err) => std::panic!("{err}"),
        }
    }
}

#[test]
fn running_out_of_table_pages_changes_nothing() {
    let (mut t, _arena) = table(1, 3, 0);
    t.map_identity(0x4000_0000, 0x4000_1000, MemKind::Normal)
        .unwrap();
    assert_eq!(t.pool_free_pages(), 0);
    let before = snapshot(&t);
    let err = t
        .map_identity(0x8000_0000, 0x8000_1000, MemKind::Normal)
        .unwrap_err();
    assert_eq!(err, Stage2Error::NoMemory { needed: 2, free: 0 });
    assert_eq!(snapshot(&t), before);
    // Mapping inside the existing level-3 table needs nothing and works.
    t.map_identity(0x4000_1000, 0x4000_3000, MemKind::Normal)
        .unwrap();
    // Splitting a block during an exact unmap also needs pages: refused, unchanged.
    let (mut t, _arena) = table(1, 1, 0);
    t.map_identity(0x4000_0000, 0x8000_0000, MemKind::Normal)
        .unwrap();
    let before = snapshot(&t);
    let mut tlb = RecordingTlb::default();
    let err = t.unmap(0x4000_0000, 0x4000_1000, &mut tlb).unwrap_err();
    assert_eq!(err, Stage2Error::NoMemory { needed: 2, free: 0 });
    assert_eq!(snapshot(&t), before);
    assert!(tlb.ops.is_empty());
}

#[test]
fn unmapping_a_page_of_a_live_block_breaks_then_remakes_it() {
    let (mut t, _arena) = table(1, 8, 5);
    t.map_identity(0x4000_0000, 0x8000_0000, MemKind::Normal)
        .unwrap();
    t.mark_active();
    let mut tlb = RecordingTlb::default();
    t.unmap(0x4020_3000, 0x4020_4000, &mut tlb).unwrap();
    assert_eq!(
        tlb.ops,
        [
            TlbOp::Ipa {
                vmid: 5,
                ipa: 0x4000_0000,
                level: 1
            },
            TlbOp::Stage1 { vmid: 5 }
        ]
    );
    assert_eq!(t.translate(0x4020_3000), None);
    assert_eq!(t.translate(0x4020_2000).map(|l| l.level), Some(3));
    assert_eq!(t.translate(0x4020_4000).map(|l| l.level), Some(3));
    assert_eq!(t.translate(0x4000_0000).map(|l| l.level), Some(2));
    assert_eq!(
        t.translate(0x7fff_ffff).map(|l| (l.level, l.pa)),
        Some((2, 0x7fff_ffff))
    );
    let s = t.stats_all();
    assert_eq!((s.gib, s.mib2, s.kib4, s.tables), (0, 511, 511, 3));
    // Unmapping whole pages inside the level-3 table touches only those pages.
    let mut tlb = RecordingTlb::default();
    t.unmap(0x4020_0000, 0x4020_2000, &mut tlb).unwrap();
    assert_eq!(
        tlb.ops,
        [
            TlbOp::Ipa {
                vmid: 5,
                ipa: 0x4020_0000,
                level: 3
            },
            TlbOp::Ipa {
                vmid: 5,
                ipa: 0x4020_1000,
                level: 3
            },
            TlbOp::Stage1 { vmid: 5 }
        ]
    );
    // Unmapping something already unmapped issues no TLB maintenance at all.
    let mut tlb = RecordingTlb::default();
    t.unmap(0x4020_0000, 0x4020_2000, &mut tlb).unwrap();
    assert!(tlb.ops.is_empty());
    t.mark_inactive();
}

#[test]
fn unmap_covering_removes_the_whole_block() {
    let (mut t, _arena) = table(1, 8, 0);
    t.map_identity(0x4000_0000, 0x4040_0000, MemKind::Normal)
        .unwrap();
    t.mark_active();
    let mut tlb = RecordingTlb::default();
    let tables = t.table_pages();
    assert_eq!(t.unmap_covering(0x4020_3000, 0x4020_5000, &mut tlb), Ok(1));
    assert_eq!(
        tlb.ops,
        [
            TlbOp::Ipa {
                vmid: 0,
                ipa: 0x4020_0000,
                level: 2
            },
            TlbOp::Stage1 { vmid: 0 }
        ]
    );
    assert_eq!(t.translate(0x4020_0000), None);
    assert_eq!(t.translate(0x4000_0000).map(|l| l.level), Some(2));
    assert_eq!(t.table_pages(), tables);
    // A batch shares one stage-1 invalidation.
    let mut tlb = RecordingTlb::default();
    {
        let mut b = t.unmap_batch(&mut tlb);
        assert_eq!(b.remove_covering(0x4000_0000, 0x4000_1000), Ok(1));
        assert_eq!(b.remove_covering(0x4020_0000, 0x4040_0000), Ok(0));
        b.finish();
    }
    assert_eq!(
        tlb.ops,
        [
            TlbOp::Ipa {
                vmid: 0,
                ipa: 0x4000_0000,
                level: 2
            },
            TlbOp::Stage1 { vmid: 0 }
        ]
    );
    t.mark_inactive();
}

#[test]
fn live_block_cannot_change_kind_in_place() {
    let (mut t, _arena) = table(1, 8, 0);
    t.map_identity(0x4000_0000, 0x4020_0000, MemKind::Normal)
        .unwrap();
    t.mark_active();
    let before = snapshot(&t);
    assert!(matches!(
        t.map_identity(0x4000_0000, 0x4000_1000, MemKind::Device),
        Err(Stage2Error::BreakBeforeMake { .. })
    ));
    assert_eq!(snapshot(&t), before);
    // Re-mapping what is already mapped the same way is fine on a live table.
    t.map_identity(0x4000_0000, 0x4000_1000, MemKind::Normal)
        .unwrap();
    assert_eq!(snapshot(&t), before);
    t.mark_inactive();
}

#[test]
fn released_pages_are_every_pool_page() {
    let (mut t, base) = table(1, 10, 2);
    t.map(0x1000, 0x3000, 0x4000_0000, MemKind::Normal).unwrap();
    t.map(0x4000_0000, 0x4000_1000, 0x5000_0000, MemKind::Normal)
        .unwrap();
    t.mark_active();
    let TestTable { t, arenas } = t;
    let t = t
        .release_pages(|_| std::panic!("released while active"))
        .unwrap_err();
    t.mark_inactive();
    let mut pages = Vec::new();
    t.release_pages(|pa| pages.push(pa)).unwrap();
    drop(arenas);
    pages.sort_unstable();
    let expected: Vec<usize> = (0..10).map(|i| base + i * KIB4).collect();
    assert_eq!(pages, expected);
}

#[test]
fn pool_top_up_adds_pages() {
    let (mut t, _arena) = table(1, 1, 1);
    assert!(matches!(
        t.map(0, KIB4, 0x4000_0000, MemKind::Normal),
        Err(Stage2Error::NoMemory { .. })
    ));
    let more = Arena::new(4 * PAGE_SIZE, PAGE_SIZE);
    // SAFETY: the arena is ours and kept alive with the table.
    unsafe { t.add_pool_pages(more.base(), 4) };
    t.arenas.push(more);
    assert_eq!((t.pool_free_pages(), t.pool_total_pages()), (4, 5));
    t.map(0, KIB4, 0x4000_0000, MemKind::Normal).unwrap();
    assert_eq!(t.pool_free_pages(), 2);
}

#[test]
fn block_stats_display() {
    let s = BlockStats {
        gib: 3,
        mib2: 500,
        kib4: 12,
        tables: 7,
    };
    assert_eq!(
        std::format!("{s}"),
        "3 x 1 GiB, 500 x 2 MiB, 12 x 4 KiB blocks, 7 table pages"
    );
}

#[test]
fn translate_pages_agrees_with_translate_across_blocks_pages_and_holes() {
    let (mut t, _arena) = table(1, 64, 0);
    let ram = [(0x4000_0000, 0x4020_3000), (0x4040_5000, 0x8000_0000)];
    for &(s, e) in &ram {
        t.map_identity(s, e, MemKind::Normal).unwrap();
    }
    // From a 2 MiB block into level-3 pages, up to the hole.
    let start = 0x401f_e000;
    let mut out = [0usize; 5];
    assert_eq!(t.translate_pages(start, &mut out), Ok(()));
    for (i, &pa) in out.iter().enumerate() {
        let ipa = start + i * PAGE_SIZE;
        assert_eq!(Some(pa), t.translate(ipa).map(|l| l.pa), "page {ipa:#x}");
    }
    // The first page of the hole is reported by its index.
    let mut out = [0usize; 8];
    assert_eq!(t.translate_pages(0x4020_0000, &mut out), Err(3));
    // Across a level-3 table's end into a block.
    let mut out = [0usize; 1030];
    assert_eq!(t.translate_pages(0x4040_5000, &mut out), Ok(()));
    assert_eq!(out[1029], 0x4040_5000 + 1029 * PAGE_SIZE);
}

/// `MemAttr[3:0]`: descriptor bits [5:2].
fn mem_attr(attrs: Stage2Attributes) -> usize {
    (attrs.bits() >> 2) & 0xf
}

#[test]
fn normal_memory_is_write_back_in_both_encodings_and_device_is_the_same_in_both() {
    use AttrEncoding::{Combined, ForcedWriteBack};
    // Without FWB: Outer WB (0b11) and Inner WB (0b11), so stage 1 decides (Arm ARM D8.6.4).
    assert_eq!(mem_attr(MemKind::Normal.attributes(Combined)), 0b1111);
    // With FWB: MemAttr[2] = 1, MemAttr[1:0] = 0b10: Normal Write-Back whatever stage 1
    // says (Arm ARM D8.6.5; Linux's MT_S2_FWB_NORMAL = 6).
    assert_eq!(
        mem_attr(MemKind::Normal.attributes(ForcedWriteBack)),
        0b0110
    );
    // Device-nGnRE is MemAttr 0b0001 in both (MemAttr[2] = 0 is Device with FWB too).
    for e in [Combined, ForcedWriteBack] {
        assert_eq!(mem_attr(MemKind::Device.attributes(e)), 0b0001, "{e:?}");
        let normal = MemKind::Normal.attributes(e);
        let device = MemKind::Device.attributes(e);
        assert!(!normal.contains(Stage2Attributes::XN) && device.contains(Stage2Attributes::XN));
        // Only MemAttr differs between the encodings.
        assert_eq!(
            normal.bits() & !0x3c,
            MemKind::Normal.attributes(Combined).bits() & !0x3c
        );
        // Both are recognised, with or without the page bit of a level-3 leaf.
        assert_eq!(MemKind::from_attributes(normal), Some(MemKind::Normal));
        assert_eq!(
            MemKind::from_attributes(normal | Stage2Attributes::TABLE_OR_PAGE),
            Some(MemKind::Normal)
        );
        assert_eq!(MemKind::from_attributes(device), Some(MemKind::Device));
    }
    // Any other MemAttr is neither kind.
    let odd = (MemKind::Normal.attributes(Combined) - Stage2Attributes::MEMATTR_NORMAL_INNER_WB)
        | Stage2Attributes::MEMATTR_NORMAL_INNER_NC;
    assert_eq!(MemKind::from_attributes(odd), None);
}

#[test]
fn guest_tables_use_forced_write_back_only_where_configured_and_the_host_table_never() {
    let plain = stage2_config(1);
    let fwb = plain.with_guest_fwb(true);
    assert!(!plain.guest_fwb && fwb.guest_fwb);
    assert_eq!(plain.encoding_for_vmid(3), AttrEncoding::Combined);
    assert_eq!(fwb.encoding_for_vmid(0), AttrEncoding::Combined, "host");
    assert_eq!(fwb.encoding_for_vmid(3), AttrEncoding::ForcedWriteBack);
    for (config, vmid, expected) in [
        (plain, 0, 0b1111),
        (plain, 3, 0b1111),
        (fwb, 0, 0b1111),
        (fwb, 3, 0b0110),
    ] {
        let arena = Arena::new(8 * PAGE_SIZE, PAGE_SIZE);
        // SAFETY: page-aligned heap memory that outlives the table (dropped first below).
        let pool = unsafe { PagePool::new(arena.base(), arena.len()) };
        let mut t = Stage2Table::with_vmid(pool, &config, vmid);
        assert_eq!(t.encoding(), config.encoding_for_vmid(vmid));
        t.map(0x8000_0000, 0x8000_2000, 0x4000_0000, MemKind::Normal)
            .unwrap();
        let leaf = t.translate(0x8000_1000).unwrap();
        assert_eq!(mem_attr(leaf.attrs), expected, "vmid {vmid}");
        assert_eq!(leaf.kind(), Some(MemKind::Normal));
        assert!(leaf.is(MemKind::Normal, t.encoding()));
        // Mapping the same range again in the table's own encoding is a no-op, needing
        // no table pages.
        assert_eq!(
            t.tables_needed_to_map(0x8000_0000, 0x8000_2000, 0x4000_0000, MemKind::Normal),
            Ok(0)
        );
        drop(t);
    }
}
