//! Transition tests. Every step runs through [`World::step`], which checks after the call:
//! invariants I1-I4 on the real tables (plus "mapped once" for guests), I5 (pages that left a
//! guest for the host were sanitised in that call), I6 (every leaf that disappeared from a
//! table was invalidated for that table's VMID, followed by a stage-1 invalidation), and I7
//! (a failed call left record, tables, pools and logs exactly as they were).

extern crate std;

use super::*;
use crate::host_dma::HostDma;
use crate::pgtable::{AttrEncoding, Leaf, MemKind, stage2_config};
use crate::pool::pages_needed_to_map;
use crate::pool::test_memory::Arena;
use crate::tlb::{RecordingTlb, TlbOp};
use std::collections::HashSet;
use std::vec::Vec;

pub(super) const MAX_VMS: usize = 4;
const MIB2: usize = 2 << 20;
const GIB: usize = 1 << 30;
/// Fake RAM starts here; its pages are never dereferenced (zeroing is recorded, not done).
pub(super) const FAKE_BASE: usize = 0x4000_0000;
/// EL2's carve-out inside the fake RAM.
pub(super) const CARVE_OUT: (usize, usize) = (0x4020_0000, 0x4060_0000);
/// Real RAM (heap) for pages that become page tables: VM creation and top-ups.
const REAL_BYTES: usize = 16 << 20;
/// Typical QEMU virt MMIO: GICD, GICR, UART, RTC, fw-cfg, virtio-mmio, PCIe window.
const QEMU_MMIO: [(usize, usize); 7] = [
    (0x0800_0000, 0x0801_0000),
    (0x080a_0000, 0x0900_0000),
    (0x0900_0000, 0x0900_1000),
    (0x0901_0000, 0x0901_1000),
    (0x0902_0000, 0x0902_1000),
    (0x0a00_0000, 0x0a00_4000),
    (0x1000_0000, 0x3eff_0000),
];

pub(super) fn pfn(pa: usize) -> usize {
    pa / PAGE_SIZE
}

pub(super) fn vm(n: u16) -> VmId {
    VmId::new(n).unwrap()
}

#[derive(Debug, Default)]
pub(crate) struct RecordingSanitizer {
    pub pages: Vec<usize>,
}

impl PageSanitizer for RecordingSanitizer {
    fn zero_and_clean(&mut self, pa: usize) {
        self.pages.push(pa);
    }
}

/// A [`HostDma`] that keeps its own table (one flag per page of each bank) and logs every
/// call, standing in for the SMMU: every World has one attached, so the invariant checks
/// after each step cover DMA (I1 exactly; I6: the log shows what was revoked, in the call).
/// Every change also goes to a real SMMU stage-2 table, which each check walks as the SMMU
/// would and compares with the flags ([`super::dma_tests::SmmuShadow`]).
#[derive(Debug, Default)]
pub(super) struct FakeDma {
    banks: Vec<(usize, Vec<bool>)>,
    /// Every call: (grant?, start, end).
    pub log: Vec<(bool, usize, usize)>,
    smmu: Option<super::dma_tests::SmmuShadow>,
}

impl FakeDma {
    fn new(banks: &[(usize, usize)], smmu: super::dma_tests::SmmuShadow) -> Self {
        FakeDma {
            banks: banks
                .iter()
                .map(|&(s, e)| (s, std::vec![false; (e - s) / PAGE_SIZE]))
                .collect(),
            log: Vec::new(),
            smmu: Some(smmu),
        }
    }

    fn set(&mut self, start: usize, end: usize, granted: bool) {
        let bank = self
            .banks
            .iter_mut()
            .find(|(s, pages)| *s <= start && end <= s + pages.len() * PAGE_SIZE)
            .unwrap_or_else(|| std::panic!("DMA change {start:#x}..{end:#x} spans banks"));
        let first = (start - bank.0) / PAGE_SIZE;
        bank.1[first..first + (end - start) / PAGE_SIZE].fill(granted);
        self.log.push((granted, start, end));
        if let Some(smmu) = &mut self.smmu {
            smmu.set(start, end, granted);
        }
    }
}

impl HostDma for FakeDma {
    fn grant(&mut self, start: usize, end: usize) {
        self.set(start, end, true);
    }

    fn revoke(&mut self, start: usize, end: usize) {
        self.set(start, end, false);
    }

    fn is_granted(&self, pa: usize) -> bool {
        let granted = self.banks.iter().any(|(s, pages)| {
            pa >= *s && pages.get((pa - s) / PAGE_SIZE).copied().unwrap_or(false)
        });
        if let Some(smmu) = &self.smmu {
            assert_eq!(
                smmu.reaches(pa),
                granted,
                "the SMMU stage-2 table disagrees with the DMA view at {pa:#x}"
            );
        }
        granted
    }
}

/// Memory that outlives a [`World`]: the record, real RAM, the host pool, the fake DMA view.
pub(super) struct Memory {
    meta: Vec<u16>,
    real: Arena,
    host_pool: Arena,
    fake: (usize, usize),
    dma: FakeDma,
    /// The SMMU shadow table's pages; dropped after `dma` (fields drop in order).
    _smmu_pool: Arena,
}

impl Memory {
    pub(super) fn new(fake_bytes: usize) -> Self {
        Self::for_pa_range(fake_bytes, 5)
    }

    /// Memory for a world on a CPU whose `ID_AA64MMFR0_EL1.PARange` is `pa_range`.
    pub(super) fn for_pa_range(fake_bytes: usize, pa_range: u64) -> Self {
        let fake = (FAKE_BASE, FAKE_BASE + fake_bytes);
        let real = if pa_range <= 2 {
            Arena::below_40_bits(REAL_BYTES)
        } else {
            Arena::new(REAL_BYTES, MIB2)
        };
        let real_range = (real.base(), real.base() + REAL_BYTES);
        assert!(!overlaps(real_range, fake) && real_range.1 < 1 << 48);
        let config = stage2_config(pa_range);
        let root_level = config.tree_root_level();
        let pool_pages = config.root_pages_worst_case()
            + [fake, real_range]
                .iter()
                .chain(&QEMU_MMIO)
                .map(|&(s, e)| pages_needed_to_map(s, e, root_level))
                .sum::<usize>();
        let (smmu, smmu_pool) = super::dma_tests::SmmuShadow::new(&[fake, real_range]);
        Memory {
            meta: std::vec![0xffff; metadata_entries(&[fake, real_range])],
            host_pool: Arena::new(pool_pages * PAGE_SIZE, PAGE_SIZE),
            real,
            fake,
            dma: FakeDma::new(&[fake, real_range], smmu),
            _smmu_pool: smmu_pool,
        }
    }
}

pub(super) struct World<'m> {
    pub own: Ownership<'m, MAX_VMS>,
    pub tlb: RecordingTlb,
    pub san: RecordingSanitizer,
    /// Real RAM bank (heap), page-aligned to 2 MiB.
    pub real: (usize, usize),
    pub fake: (usize, usize),
}

type Tables = Vec<(usize, usize, Vec<u64>)>;

#[derive(Debug, PartialEq)]
struct Snapshot {
    meta: Vec<u16>,
    host: Tables,
    host_free: usize,
    guests: Vec<(u16, Tables, usize, usize, bool)>,
    tlb_ops: usize,
    san_pages: usize,
}

fn tables(t: &Stage2Table) -> Tables {
    let mut v = Vec::new();
    t.for_each_table(|pa, level, e| v.push((pa, level, e.to_vec())));
    v
}

type LeafKey = (usize, usize, usize, usize);

fn leaves(t: &Stage2Table) -> HashSet<LeafKey> {
    let mut v = HashSet::new();
    t.for_each_leaf(0, t.ipa_size(), |l: &Leaf| {
        v.insert((l.block_ipa, l.level, l.block_pa, l.attrs.bits()));
    });
    v
}

impl<'m> World<'m> {
    pub(super) fn new(mem: &'m mut Memory) -> Self {
        Self::for_pa_range(mem, 5)
    }

    /// A world whose tables are configured for `PARange = pa_range` (as its `Memory`).
    pub(super) fn for_pa_range(mem: &'m mut Memory, pa_range: u64) -> Self {
        Self::with_config(mem, stage2_config(pa_range))
    }

    /// A world whose tables use `config` (its PARange must be the `Memory`'s).
    pub(super) fn with_config(mem: &'m mut Memory, config: Stage2Config) -> Self {
        let real = (mem.real.base(), mem.real.base() + REAL_BYTES);
        // SAFETY: the host pool arena is ours, page-aligned, and outlives the world.
        let pool = unsafe { PagePool::new(mem.host_pool.base(), mem.host_pool.len()) };
        // SAFETY: the real RAM bank is heap memory we own for the world's lifetime; the fake
        // bank is never written (the tests only give real pages to pools, and sanitising is
        // recorded, not done).
        let mut own = unsafe {
            Ownership::new(
                &config,
                pool,
                &[mem.fake, real],
                &QEMU_MMIO,
                &[CARVE_OUT],
                &mut mem.meta,
            )
        }
        .unwrap();
        own.attach_host_dma(&mut mem.dma);
        World {
            own,
            tlb: RecordingTlb::default(),
            san: RecordingSanitizer::default(),
            real,
            fake: mem.fake,
        }
    }

    /// Marks every table inactive so that dropping the world (also while a failed assertion
    /// unwinds) does not trip aarch64-paging's "dropping an active table" check.
    fn deactivate_all(&self) {
        while self.own.host.active() {
            self.own.host.mark_inactive();
        }
        for vm in self.own.vms() {
            let g = self.own.guest_stage2(vm).unwrap();
            while g.active() {
                g.mark_inactive();
            }
        }
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            meta: self.own.meta.to_vec(),
            host: tables(&self.own.host),
            host_free: self.own.host.pool_free_pages(),
            guests: self
                .own
                .vms()
                .map(|vm| {
                    let g = self.own.guest_stage2(vm).unwrap();
                    (
                        vm.get(),
                        tables(g),
                        g.pool_free_pages(),
                        g.pool_total_pages(),
                        g.active(),
                    )
                })
                .collect(),
            tlb_ops: self.tlb.ops.len(),
            san_pages: self.san.pages.len(),
        }
    }

    fn all_leaves(&self) -> Vec<(u16, HashSet<LeafKey>)> {
        let mut v = std::vec![(0, leaves(&self.own.host))];
        for vm in self.own.vms() {
            v.push((vm.get(), leaves(self.own.guest_stage2(vm).unwrap())));
        }
        v
    }

    /// Runs one call and checks I1-I7 around it.
    pub(super) fn step<T>(
        &mut self,
        op: impl FnOnce(&mut Self) -> Result<T, OwnershipError>,
    ) -> Result<T, OwnershipError> {
        let before = self.snapshot();
        let before_leaves = self.all_leaves();
        // Every leaf may be in the TLB when the call starts.
        for (vmid, leaves) in &before_leaves {
            for &(ipa, level, pa, attrs) in leaves {
                self.tlb
                    .fill(*vmid, ipa, crate::granule_at_level(level), pa, attrs as u64);
            }
        }
        let result = op(self);
        self.check_no_stale_translation();
        match &result {
            Err(e) => {
                // I7: nothing changed, not even the TLB or the caches.
                assert_eq!(
                    self.snapshot(),
                    before,
                    "failed call ({e}) changed something"
                );
            }
            Ok(_) => {
                self.check_tlb_sequence(&before_leaves, before.tlb_ops);
                self.check_sanitised(&before.meta, before.san_pages);
            }
        }
        self.check_all();
        result
    }

    /// I6 on the TLB model: every entry still cached is a leaf of its VMID's table now.
    fn check_no_stale_translation(&self) {
        let after = self.all_leaves();
        for c in &self.tlb.cached {
            let level = (1..=3).find(|&l| crate::granule_at_level(l) == c.size);
            let still = after.iter().any(|(v, leaves)| {
                *v == c.vmid
                    && level.is_some_and(|l| leaves.contains(&(c.ipa, l, c.pa, c.attrs as _)))
            });
            assert!(
                still,
                "after the call returned, VMID {} still translates IPA {:#x} -> {:#x} ({} bytes) \
                 through a {} TLB entry that its table no longer has: {:?}",
                c.vmid,
                c.ipa,
                c.pa,
                c.size,
                if c.combined {
                    "combined stage-1+2"
                } else {
                    "stage-2 (or walk-cache)"
                },
                self.tlb.ops
            );
        }
    }

    /// I6: each leaf that is gone was invalidated for its VMID; each VMID's invalidations end
    /// with a stage-1 (or whole-VMID) invalidation.
    fn check_tlb_sequence(&self, before: &[(u16, HashSet<LeafKey>)], first_op: usize) {
        let ops = &self.tlb.ops[first_op..];
        let after = self.all_leaves();
        for (vmid, old) in before {
            let now = after.iter().find(|(v, _)| v == vmid).map(|(_, l)| l);
            for leaf in old {
                if now.is_some_and(|n| n.contains(leaf)) {
                    continue;
                }
                let (ipa, level, _, _) = *leaf;
                let by_ipa = ops.contains(&TlbOp::Ipa {
                    vmid: *vmid,
                    ipa,
                    level,
                });
                let by_vmid = now.is_none() && ops.contains(&TlbOp::Vmid { vmid: *vmid });
                assert!(
                    by_ipa || by_vmid,
                    "leaf {leaf:x?} of VMID {vmid} removed without TLB invalidation: {ops:?}"
                );
            }
        }
        let rec = RecordingTlb {
            ops: ops.to_vec(),
            ..RecordingTlb::default()
        };
        rec.assert_complete();
        // One stage-1 invalidation per VMID per call.
        for vmid in 0..=MAX_VMS as u16 {
            let n = ops.iter().filter(|o| **o == TlbOp::Stage1 { vmid }).count();
            assert!(
                n <= 1,
                "{n} stage-1 invalidations for VMID {vmid} in one call: {ops:?}"
            );
        }
    }

    /// I5: every page whose owner went from a guest (or pending reclaim) to the host was
    /// zeroed and cleaned in this call.
    fn check_sanitised(&self, before: &[u16], first_page: usize) {
        let cleaned: HashSet<usize> = self.san.pages[first_page..].iter().copied().collect();
        for (start, end) in self.own.ram_banks() {
            for pa in (start..end).step_by(PAGE_SIZE) {
                let i = self.own.entry_index(pa).unwrap();
                let old = PageState::decode(before[i]).unwrap();
                let new = self.own.state_at(i);
                let left_guest = matches!(old.owner(), Owner::Guest(_))
                    || matches!(old, PageState::PendingReclaim(_));
                if left_guest && new.owner() == Owner::Host {
                    assert!(
                        cleaned.contains(&pa),
                        "page {pa:#x} went {old:?} -> {new:?} without being zeroed"
                    );
                }
            }
        }
    }

    /// I1-I4, and no guest maps a page twice.
    pub(super) fn check_all(&self) {
        if let Err(v) = self.own.check_invariants() {
            std::panic!("{v}");
        }
        for vm in self.own.vms() {
            let g = self.own.guest_stage2(vm).unwrap();
            let mut seen = HashSet::new();
            g.for_each_leaf(0, g.ipa_size(), |l| {
                for off in (0..l.size()).step_by(PAGE_SIZE) {
                    assert!(
                        seen.insert(l.block_pa + off),
                        "VM {vm:?} maps {:#x} twice",
                        l.block_pa + off
                    );
                }
            });
        }
    }

    pub(super) fn host_level(&self, pa: usize) -> Option<usize> {
        self.own.host.translate(pa).map(|l| l.level)
    }

    pub(super) fn guest_pa(&self, vm: VmId, gfn: usize) -> Option<usize> {
        self.own
            .guest_stage2(vm)?
            .translate(gfn * PAGE_SIZE)
            .map(|l| l.pa)
    }

    pub(super) fn real_pfn(&self, i: usize) -> usize {
        pfn(self.real.0) + i
    }

    /// Creates a VM with `pool_pages` pages of real RAM starting at real page `first`.
    pub(super) fn create_vm(&mut self, first: usize, pool_pages: usize) -> VmId {
        let p = self.real_pfn(first);
        self.step(|w| w.own.vm_create(p, pool_pages, &mut w.tlb))
            .unwrap()
    }
}

impl Drop for World<'_> {
    fn drop(&mut self) {
        self.deactivate_all();
    }
}

use OwnershipError::*;

#[test]
fn start_up_gives_ram_to_host_and_carve_out_to_hyp() {
    let mut mem = Memory::new(2 * GIB);
    let mut w = World::new(&mut mem);
    w.check_all();
    assert_eq!(
        w.own.page_state(FAKE_BASE),
        Some(PageState::Owned(Owner::Host))
    );
    assert_eq!(
        w.own.page_state(CARVE_OUT.0),
        Some(PageState::Owned(Owner::Hyp))
    );
    assert_eq!(
        w.own.page_state(CARVE_OUT.1 - 1),
        Some(PageState::Owned(Owner::Hyp))
    );
    assert_eq!(
        w.own.page_state(CARVE_OUT.1),
        Some(PageState::Owned(Owner::Host))
    );
    assert_eq!(w.own.page_state(0x0900_0000), None);
    assert!(w.own.host_may_access(0x0900_0000) && !w.own.host_may_access(0x0900_1000));
    assert_eq!(w.own.host_stage2().stats_all().tables, 1);
    w.step(|w| w.own.host_map_all()).unwrap();
    let fake = w.own.host_stage2().stats(&[w.fake]);
    // 2 MiB below the carve-out, 509 x 2 MiB up to 2 GiB, then a whole GiB.
    assert_eq!((fake.gib, fake.mib2, fake.kib4), (1, 1 + 509, 0));
    let real = w.own.host_stage2().stats(&[w.real]);
    assert_eq!((real.gib, real.mib2, real.kib4), (0, REAL_BYTES / MIB2, 0));
}

#[test]
fn bad_start_up_ranges_are_refused() {
    let cfg = stage2_config(1);
    let arena = Arena::new(4 * PAGE_SIZE, PAGE_SIZE);
    let mut meta = std::vec![0u16; 1 << 18];
    let try_new = |meta: &mut [u16],
                   ram: &[(usize, usize)],
                   mmio: &[(usize, usize)],
                   hyp: &[(usize, usize)]| {
        // SAFETY: the arena outlives the attempt; the RAM is never written (no VM is made).
        let pool = unsafe { PagePool::new(arena.base(), arena.len()) };
        // SAFETY: as above.
        unsafe { Ownership::<'_, 2>::new(&cfg, pool, ram, mmio, hyp, meta) }.err()
    };
    let ram = (0x4000_0000, 0x8000_0000);
    assert_eq!(try_new(&mut meta, &[], &[], &[]), Some(InvalidParameter));
    assert_eq!(
        try_new(&mut meta, &[(0x4000_0000, 0x4000_0800)], &[], &[]),
        Some(InvalidParameter)
    );
    assert_eq!(
        try_new(&mut meta, &[ram, (0x7000_0000, 0x9000_0000)], &[], &[]),
        Some(InvalidParameter)
    );
    assert_eq!(
        try_new(&mut meta, &[ram], &[(0x7fff_f000, 0x8000_1000)], &[]),
        Some(InvalidParameter)
    );
    assert_eq!(
        try_new(
            &mut meta,
            &[ram],
            &[(0x0900_0000, 0x0900_1000)],
            &[(0x0900_0000, 0x0900_1000)]
        ),
        Some(InvalidParameter)
    );
    assert_eq!(
        try_new(&mut meta, &[(0xf_0000_0000, 0x10_0000_1000)], &[], &[]),
        Some(Range)
    );
    assert_eq!(try_new(&mut meta[..10], &[ram], &[], &[]), Some(NoMemory));
    assert_eq!(try_new(&mut meta, &[ram], &[], &[]), None);
}

#[test]
fn host_fault_maps_the_largest_block_ownership_allows() {
    let mut mem = Memory::new(2 * GIB);
    let mut w = World::new(&mut mem);
    // The second GiB is all host memory: one 1 GiB block.
    assert_eq!(
        w.step(|w| Ok(w.own.host_handle_fault(0x9234_5678))),
        Ok(FaultAction::MapAndRetry)
    );
    assert_eq!(w.host_level(0x8000_0000), Some(1));
    // The first 2 MiB lies below the carve-out in the first GiB: a 2 MiB block.
    assert_eq!(
        w.step(|w| Ok(w.own.host_handle_fault(0x4000_1000))),
        Ok(FaultAction::MapAndRetry)
    );
    assert_eq!(w.host_level(0x4000_0000), Some(2));
    assert_eq!(w.host_level(0x4020_0000), None);
    // EL2's carve-out, nothing, and beyond the IPA space: abort.
    for ipa in [
        CARVE_OUT.0,
        CARVE_OUT.1 - 8,
        0x0020_0000,
        0x3eff_0000,
        1 << 48,
    ] {
        assert_eq!(
            w.step(|w| Ok(w.own.host_handle_fault(ipa))),
            Ok(FaultAction::InjectAbort),
            "{ipa:#x}"
        );
    }
    // MMIO: device pages and blocks inside the device range only.
    assert_eq!(
        w.step(|w| Ok(w.own.host_handle_fault(0x0900_0004))),
        Ok(FaultAction::MapAndRetry)
    );
    let uart = w.own.host_stage2().translate(0x0900_0004).unwrap();
    assert_eq!((uart.level, uart.kind()), (3, Some(MemKind::Device)));
    assert_eq!(
        w.step(|w| Ok(w.own.host_handle_fault(0x0830_0000))),
        Ok(FaultAction::MapAndRetry)
    );
    assert_eq!(w.host_level(0x0820_0000), Some(2));
    assert_eq!(w.host_level(0x080a_0000), None);
    // Faulting again on a mapped address is harmless.
    assert_eq!(
        w.step(|w| Ok(w.own.host_handle_fault(0x9000_0000))),
        Ok(FaultAction::MapAndRetry)
    );
}

#[test]
fn host_share_hyp_keeps_the_host_mapping() {
    let mut mem = Memory::new(GIB);
    let mut w = World::new(&mut mem);
    w.step(|w| w.own.host_map_all()).unwrap();
    let p = pfn(0x4800_0000);
    w.step(|w| w.own.host_share_hyp(p, 3)).unwrap();
    assert_eq!(
        w.own.page_state(0x4800_2000),
        Some(PageState::HostSharedWith(Borrower::Hyp))
    );
    assert!(w.own.is_shared_with_hyp(0x4800_2000) && !w.own.is_shared_with_hyp(0x4800_3000));
    assert_eq!(w.host_level(0x4800_0000), Some(2));
    assert!(w.tlb.ops.is_empty());
    assert_eq!(w.step(|w| w.own.host_share_hyp(p + 2, 2)), Err(Denied));
    assert_eq!(w.step(|w| w.own.host_unshare_hyp(p, 4)), Err(Denied));
    w.step(|w| w.own.host_unshare_hyp(p, 3)).unwrap();
    assert_eq!(
        w.own.page_state(0x4800_2000),
        Some(PageState::Owned(Owner::Host))
    );
    assert_eq!(w.step(|w| w.own.host_unshare_hyp(p, 1)), Err(Denied));
    assert_eq!(
        w.step(|w| w.own.host_share_hyp(pfn(CARVE_OUT.0), 1)),
        Err(Denied)
    );
}

#[test]
fn host_donate_hyp_removes_the_block_and_neighbours_fault_back_in() {
    let mut mem = Memory::new(GIB);
    let mut w = World::new(&mut mem);
    w.step(|w| w.own.host_map_all()).unwrap();
    w.step(|w| w.own.host_donate_hyp(pfn(0x4800_1000), 1, &mut w.tlb))
        .unwrap();
    assert_eq!(
        w.tlb.ops,
        [
            TlbOp::Ipa {
                vmid: 0,
                ipa: 0x4800_0000,
                level: 2
            },
            TlbOp::Stage1 { vmid: 0 }
        ]
    );
    assert_eq!(
        w.own.page_state(0x4800_1000),
        Some(PageState::Owned(Owner::Hyp))
    );
    assert_eq!(w.host_level(0x4800_0000), None);
    // The host's neighbour comes back as a page (its 2 MiB block holds an EL2 page); the
    // next 2 MiB block comes back whole; the donated page stays out.
    assert_eq!(
        w.step(|w| Ok(w.own.host_handle_fault(0x4800_0000))),
        Ok(FaultAction::MapAndRetry)
    );
    assert_eq!(w.host_level(0x4800_0000), Some(3));
    assert_eq!(
        w.step(|w| Ok(w.own.host_handle_fault(0x4800_1000))),
        Ok(FaultAction::InjectAbort)
    );
    assert_eq!(
        w.step(|w| Ok(w.own.host_handle_fault(0x4800_2000))),
        Ok(FaultAction::MapAndRetry)
    );
    assert_eq!(w.host_level(0x4800_1000), None);
    // Given back, the page is the host's again and faults in.
    w.step(|w| w.own.hyp_donate_host(pfn(0x4800_1000), 1))
        .unwrap();
    assert_eq!(
        w.step(|w| Ok(w.own.host_handle_fault(0x4800_1000))),
        Ok(FaultAction::MapAndRetry)
    );
    assert_eq!(w.host_level(0x4800_1000), Some(3));
    // Errors.
    assert_eq!(
        w.step(|w| w.own.host_donate_hyp(pfn(CARVE_OUT.0), 1, &mut w.tlb)),
        Err(Denied)
    );
    assert_eq!(
        w.step(|w| w.own.host_donate_hyp(pfn(0x4800_0000), 0, &mut w.tlb)),
        Err(InvalidParameter)
    );
    assert_eq!(
        w.step(|w| w.own.host_donate_hyp(pfn(0x4800_0000), 513, &mut w.tlb)),
        Err(InvalidParameter)
    );
}

#[test]
fn hyp_donate_host_refuses_el2_fixed_ranges_and_pages_it_does_not_own() {
    let mut mem = Memory::new(GIB);
    let mut w = World::new(&mut mem);
    assert_eq!(
        w.step(|w| w.own.hyp_donate_host(pfn(CARVE_OUT.0), 1)),
        Err(Denied)
    );
    assert_eq!(
        w.step(|w| w.own.hyp_donate_host(pfn(FAKE_BASE), 1)),
        Err(Denied)
    );
    assert_eq!(
        w.own.page_state(CARVE_OUT.0),
        Some(PageState::Owned(Owner::Hyp))
    );
}

#[test]
fn ranges_that_wrap_or_leave_ram_are_refused() {
    let mut mem = Memory::new(GIB);
    let mut w = World::new(&mut mem);
    let end = pfn(FAKE_BASE + GIB);
    assert_eq!(w.step(|w| w.own.host_share_hyp(end - 1, 2)), Err(Range));
    assert_eq!(w.step(|w| w.own.host_share_hyp(end, 1)), Err(Range));
    assert_eq!(
        w.step(|w| w.own.host_share_hyp(pfn(0x0900_0000), 1)),
        Err(Range)
    );
    assert_eq!(w.step(|w| w.own.host_share_hyp(usize::MAX, 1)), Err(Range));
    assert_eq!(
        w.step(|w| w.own.host_share_hyp(usize::MAX / PAGE_SIZE, 2)),
        Err(Range)
    );
    assert_eq!(
        w.step(|w| w.own.host_reclaim(usize::MAX - 1, 5, &mut w.san)),
        Err(Range)
    );
    assert_eq!(w.step(|w| w.own.host_share_hyp(end - 1, 1)), Ok(()));
}

#[test]
fn vm_create_and_topup_take_pages_from_the_host() {
    let mut mem = Memory::new(GIB);
    let mut w = World::new(&mut mem);
    w.step(|w| w.own.host_map_all()).unwrap();
    let a = w.create_vm(0, 2);
    assert_eq!(a, vm(1));
    let g = w.own.guest_stage2(a).unwrap();
    assert_eq!(
        (g.vmid(), g.pool_total_pages(), g.pool_free_pages()),
        (1, 2, 1)
    );
    assert_eq!(w.own.page_state(w.real.0), Some(PageState::HypPool(a)));
    // EL2 cannot hand a pool page to the host.
    let r = w.real_pfn(0);
    assert_eq!(w.step(|w| w.own.hyp_donate_host(r, 1)), Err(Denied));
    assert_eq!(w.host_level(w.real.0), None);
    let p = w.real_pfn(8);
    w.step(|w| w.own.vm_topup(a, p, 3, &mut w.tlb)).unwrap();
    assert_eq!(w.own.guest_stage2(a).unwrap().pool_free_pages(), 4);
    assert_eq!(
        w.step(|w| w.own.vm_topup(vm(2), p + 3, 1, &mut w.tlb)),
        Err(NotFound)
    );
    assert_eq!(w.step(|w| w.own.vm_topup(a, p, 1, &mut w.tlb)), Err(Denied));
    assert_eq!(
        w.step(|w| w.own.vm_create(pfn(CARVE_OUT.0), 1, &mut w.tlb)),
        Err(Denied)
    );
    for i in 1..MAX_VMS {
        assert_eq!(w.create_vm(16 + i, 1), vm(i as u16 + 1));
    }
    let p = w.real_pfn(32);
    assert_eq!(w.step(|w| w.own.vm_create(p, 1, &mut w.tlb)), Err(NoMemory));
    assert_eq!(w.own.vms().count(), MAX_VMS);
}

#[test]
fn on_a_40_bit_cpu_a_vms_first_pool_pages_must_hold_its_two_concatenated_root_tables() {
    let mut mem = Memory::for_pa_range(GIB, 2);
    let mut w = World::for_pa_range(&mut mem, 2);
    w.step(|w| w.own.host_map_all()).unwrap();
    assert_eq!(w.own.host_stage2().root_level(), 1);
    assert_eq!(w.own.host_stage2().root_pa() % (2 * PAGE_SIZE), 0);
    // Two pages from an odd page: no 8 KiB-aligned pair plus a directory page. Refused with
    // nothing changed (`step` checks I7): the pages stay the host's.
    let odd = w.real_pfn(1);
    assert_eq!(
        w.step(|w| w.own.vm_create(odd, 2, &mut w.tlb)),
        Err(NoMemory)
    );
    assert_eq!(
        w.own.page_state(w.real.0 + PAGE_SIZE),
        Some(PageState::Owned(Owner::Host))
    );
    // Any three pages hold them.
    let a = w.step(|w| w.own.vm_create(odd, 3, &mut w.tlb)).unwrap();
    let g = w.own.guest_stage2(a).unwrap();
    assert_eq!((g.root_level(), g.root_pa()), (1, w.real.0 + 2 * PAGE_SIZE));
    assert_eq!(g.pool_free_pages(), 0);
    // A donation into the second 512 GiB of the guest's 40-bit IPA space lands in the second
    // root table.
    let p = w.real_pfn(16);
    w.step(|w| w.own.vm_topup(a, p, 8, &mut w.tlb)).unwrap();
    let high_gfn = (1usize << 39) / PAGE_SIZE + 0x10;
    let page = pfn(0x4800_0000);
    w.step(|w| w.own.host_donate_guest(a, page, high_gfn, 1, &mut w.tlb))
        .unwrap();
    assert_eq!(w.guest_pa(a, high_gfn), Some(0x4800_0000));
}

#[test]
fn host_donate_guest_moves_pages_from_host_to_guest() {
    let mut mem = Memory::new(GIB);
    let mut w = World::new(&mut mem);
    w.step(|w| w.own.host_map_all()).unwrap();
    let a = w.create_vm(0, 5);
    w.tlb.ops.clear();
    let p = pfn(0x4800_0000);
    w.step(|w| w.own.host_donate_guest(a, p + 5, 0x100, 1, &mut w.tlb))
        .unwrap();
    assert_eq!(
        w.own.page_state(0x4800_5000),
        Some(PageState::Owned(Owner::Guest(a)))
    );
    assert_eq!(w.guest_pa(a, 0x100), Some(0x4800_5000));
    assert_eq!(w.host_level(0x4800_5000), None);
    assert!(w.tlb.invalidated(0, 0x4800_5000));
    // 512 pages aligned on both sides are still mapped page by page (never a guest block,
    // so that removing part of them later never needs memory).
    let q = pfn(0x4a00_0000);
    w.step(|w| w.own.host_donate_guest(a, q, 0x200, 512, &mut w.tlb))
        .unwrap();
    let leaf = w.own.guest_stage2(a).unwrap().translate(0x20_1234).unwrap();
    assert_eq!((leaf.level, leaf.pa), (3, 0x4a00_1234));
    let last = w.own.guest_stage2(a).unwrap().translate(0x3f_f000).unwrap();
    assert_eq!((last.level, last.pa), (3, 0x4a1f_f000));
}

#[test]
fn host_donate_guest_zeroed_sanitises_every_page_and_only_when_it_succeeds() {
    let mut mem = Memory::new(GIB);
    let mut w = World::new(&mut mem);
    w.step(|w| w.own.host_map_all()).unwrap();
    let a = w.create_vm(0, 5);
    let p = pfn(0x4800_0000);
    w.step(|w| {
        w.own
            .host_donate_guest_zeroed(a, p, 0x100, 3, &mut w.tlb, &mut w.san)
    })
    .unwrap();
    assert_eq!(w.san.pages, [0x4800_0000, 0x4800_1000, 0x4800_2000]);
    assert_eq!(w.guest_pa(a, 0x102), Some(0x4800_2000));
    assert_eq!(w.host_level(0x4800_1000), None);
    // Refused (the frames are mapped): nothing is zeroed.
    assert_eq!(
        w.step(|w| w
            .own
            .host_donate_guest_zeroed(a, p + 8, 0x101, 1, &mut w.tlb, &mut w.san)),
        Err(Busy)
    );
    assert_eq!(w.san.pages.len(), 3);
}

#[test]
fn host_donate_guest_refusals_change_nothing() {
    let mut mem = Memory::new(GIB);
    let mut w = World::new(&mut mem);
    w.step(|w| w.own.host_map_all()).unwrap();
    let a = w.create_vm(0, 1);
    let p = pfn(0x4800_0000);
    let ipa_pages = w.own.config().ipa_size() / PAGE_SIZE;
    let cases: [(VmId, usize, usize, usize, OwnershipError); 9] = [
        (a, p, 0, 0, InvalidParameter),
        (a, p, 0, 513, InvalidParameter),
        (a, pfn(FAKE_BASE + GIB) - 1, 0, 2, Range),
        (a, usize::MAX, 0, 1, Range),
        (a, p, ipa_pages - 1, 2, Range),
        (vm(2), p, 0, 1, NotFound),
        (a, pfn(CARVE_OUT.0) - 1, 0, 2, Denied),
        // The VM's pool is only its root: a first mapping needs tables.
        (a, p, 0, 1, NoMemory),
        (a, p, usize::MAX / 2, 1, Range),
    ];
    for (v, pf, gf, nr, err) in cases {
        assert_eq!(
            w.step(|w| w.own.host_donate_guest(v, pf, gf, nr, &mut w.tlb)),
            Err(err),
            "{pf:#x} {gf:#x} {nr}"
        );
    }
    let t = w.real_pfn(1);
    w.step(|w| w.own.vm_topup(a, t, 3, &mut w.tlb)).unwrap();
    w.step(|w| w.own.host_donate_guest(a, p, 0, 1, &mut w.tlb))
        .unwrap();
    // The same guest frame again: busy; the same page again: denied.
    assert_eq!(
        w.step(|w| w.own.host_donate_guest(a, p + 1, 0, 1, &mut w.tlb)),
        Err(Busy)
    );
    assert_eq!(
        w.step(|w| w.own.host_donate_guest(a, p, 1, 1, &mut w.tlb)),
        Err(Denied)
    );
}

#[test]
fn guest_share_host_lets_the_host_fault_it_in_and_unshare_takes_it_away() {
    let mut mem = Memory::new(GIB);
    let mut w = World::new(&mut mem);
    let a = w.create_vm(0, 4);
    let p = pfn(0x4800_0000);
    w.step(|w| w.own.host_donate_guest(a, p, 0x40, 4, &mut w.tlb))
        .unwrap();
    assert_eq!(
        w.step(|w| Ok(w.own.host_handle_fault(0x4800_1000))),
        Ok(FaultAction::InjectAbort)
    );
    w.step(|w| w.own.guest_share_host(a, 0x41, 2)).unwrap();
    assert_eq!(
        w.own.page_state(0x4800_2000),
        Some(PageState::SharedWithHost(a))
    );
    assert_eq!(
        w.step(|w| Ok(w.own.host_handle_fault(0x4800_1000))),
        Ok(FaultAction::MapAndRetry)
    );
    assert_eq!(w.host_level(0x4800_1000), Some(3));
    assert_eq!(w.host_level(0x4800_0000), None);
    assert_eq!(w.guest_pa(a, 0x41), Some(0x4800_1000));
    assert_eq!(w.step(|w| w.own.guest_share_host(a, 0x41, 1)), Err(Denied));
    assert_eq!(
        w.step(|w| w.own.guest_share_host(a, 0x44, 1)),
        Err(NotFound)
    );
    assert_eq!(
        w.step(|w| w.own.guest_unshare_host(a, 0x40, 2, &mut w.tlb)),
        Err(Denied)
    );
    w.tlb.ops.clear();
    w.step(|w| w.own.guest_unshare_host(a, 0x41, 2, &mut w.tlb))
        .unwrap();
    assert_eq!(
        w.tlb.ops,
        [
            TlbOp::Ipa {
                vmid: 0,
                ipa: 0x4800_1000,
                level: 3
            },
            TlbOp::Stage1 { vmid: 0 }
        ]
    );
    assert_eq!(
        w.own.page_state(0x4800_1000),
        Some(PageState::Owned(Owner::Guest(a)))
    );
    assert_eq!(w.host_level(0x4800_1000), None);
    assert_eq!(
        w.step(|w| Ok(w.own.host_handle_fault(0x4800_1000))),
        Ok(FaultAction::InjectAbort)
    );
}

#[test]
fn guest_share_and_unshare_host_of_pages_from_two_ram_banks_change_each_pages_own_entry() {
    let mut mem = Memory::new(GIB);
    let mut w = World::new(&mut mem);
    let a = w.create_vm(0, 4);
    // Frames 0x40 and 0x42 map pages of the real bank, 0x41 one of the fake bank (the
    // first bank): every page of the range is in another bank than the one before it.
    let real = [w.real_pfn(100), w.real_pfn(101)];
    let fake = pfn(0x4800_0000);
    for (gfn, page) in [(0x40, real[0]), (0x41, fake), (0x42, real[1])] {
        w.step(|w| w.own.host_donate_guest(a, page, gfn, 1, &mut w.tlb))
            .unwrap();
    }
    let pas = [real[0], fake, real[1]].map(|p| p * PAGE_SIZE);
    w.step(|w| w.own.guest_share_host(a, 0x40, 3)).unwrap();
    for pa in pas {
        assert_eq!(
            w.own.page_state(pa),
            Some(PageState::SharedWithHost(a)),
            "{pa:#x}"
        );
    }
    assert_eq!(w.step(|w| w.own.guest_share_host(a, 0x40, 3)), Err(Denied));
    w.step(|w| w.own.guest_unshare_host(a, 0x40, 3, &mut w.tlb))
        .unwrap();
    for pa in pas {
        assert_eq!(
            w.own.page_state(pa),
            Some(PageState::Owned(Owner::Guest(a))),
            "{pa:#x}"
        );
    }
}

#[test]
fn guest_relinquish_zeroes_the_page_before_the_host_gets_it() {
    let mut mem = Memory::new(GIB);
    let mut w = World::new(&mut mem);
    let a = w.create_vm(0, 3);
    let q = pfn(0x4a00_0000);
    // An aligned 2 MiB range is still mapped page by page: it needs a level-3 table too,
    // which a pool of root + level-1 + level-2 lacks.
    assert_eq!(
        w.step(|w| w.own.host_donate_guest(a, q, 0x200, 512, &mut w.tlb)),
        Err(NoMemory)
    );
    let t = w.real_pfn(4);
    w.step(|w| w.own.vm_topup(a, t, 1, &mut w.tlb)).unwrap();
    w.step(|w| w.own.host_donate_guest(a, q, 0x200, 512, &mut w.tlb))
        .unwrap();
    assert_eq!(w.own.guest_stage2(a).unwrap().pool_free_pages(), 0);
    assert_eq!(
        w.own
            .guest_stage2(a)
            .unwrap()
            .translate(0x20_0000)
            .map(|l| l.level),
        Some(3)
    );
    // Giving one page back needs no memory: no block to split.
    w.tlb.ops.clear();
    w.step(|w| w.own.guest_relinquish(a, 0x203, 1, &mut w.tlb, &mut w.san))
        .unwrap();
    assert_eq!(
        w.tlb.ops,
        [
            TlbOp::Ipa {
                vmid: 1,
                ipa: 0x20_3000,
                level: 3
            },
            TlbOp::Stage1 { vmid: 1 }
        ]
    );
    assert_eq!(w.san.pages, [0x4a00_3000]);
    assert_eq!(
        w.own.page_state(0x4a00_3000),
        Some(PageState::Owned(Owner::Host))
    );
    assert_eq!(w.guest_pa(a, 0x203), None);
    assert_eq!(w.guest_pa(a, 0x204), Some(0x4a00_4000));
    assert_eq!(w.guest_pa(a, 0x202), Some(0x4a00_2000));
    assert_eq!(
        w.step(|w| Ok(w.own.host_handle_fault(0x4a00_3000))),
        Ok(FaultAction::MapAndRetry)
    );
    // A shared page cannot be relinquished (unshare first); a frame without a page is
    // NOT_FOUND, and within a range that beats a page in the wrong state.
    w.step(|w| w.own.guest_share_host(a, 0x204, 1)).unwrap();
    assert_eq!(
        w.step(|w| w.own.guest_relinquish(a, 0x204, 1, &mut w.tlb, &mut w.san)),
        Err(Denied)
    );
    assert_eq!(
        w.step(|w| w.own.guest_relinquish(a, 0x203, 1, &mut w.tlb, &mut w.san)),
        Err(NotFound)
    );
    assert_eq!(
        w.step(|w| w.own.guest_relinquish(a, 0x204, 2, &mut w.tlb, &mut w.san)),
        Err(Denied)
    );
    assert_eq!(
        w.step(|w| w.own.guest_relinquish(a, 0x202, 2, &mut w.tlb, &mut w.san)),
        Err(NotFound)
    );
}

#[test]
fn teardown_holds_guest_pages_until_the_host_reclaims_them_zeroed() {
    let mut mem = Memory::new(GIB);
    let mut w = World::new(&mut mem);
    w.step(|w| w.own.host_map_all()).unwrap();
    let a = w.create_vm(0, 4);
    let p = pfn(0x4800_0000);
    w.step(|w| w.own.host_donate_guest(a, p, 0x40, 4, &mut w.tlb))
        .unwrap();
    w.step(|w| w.own.guest_share_host(a, 0x41, 1)).unwrap();
    assert_eq!(
        w.step(|w| Ok(w.own.host_handle_fault(0x4800_1000))),
        Ok(FaultAction::MapAndRetry)
    );
    // Reclaiming a live VM's page is denied; tearing down a running VM is busy.
    assert_eq!(
        w.step(|w| w.own.host_reclaim(p, 1, &mut w.san)),
        Err(Denied)
    );
    w.own.guest_stage2(a).unwrap().mark_active();
    assert_eq!(w.step(|w| w.own.vm_teardown(a, &mut w.tlb)), Err(Busy));
    w.own.guest_stage2(a).unwrap().mark_inactive();
    w.tlb.ops.clear();
    w.step(|w| w.own.vm_teardown(a, &mut w.tlb)).unwrap();
    assert!(w.own.guest_stage2(a).is_none());
    assert_eq!(
        w.tlb.ops,
        [
            TlbOp::Ipa {
                vmid: 0,
                ipa: 0x4800_1000,
                level: 3
            },
            TlbOp::Stage1 { vmid: 0 },
            TlbOp::Vmid { vmid: 1 }
        ]
    );
    for pa in [
        0x4800_0000,
        0x4800_1000,
        0x4800_3000,
        w.real.0,
        w.real.0 + 3 * PAGE_SIZE,
    ] {
        assert_eq!(
            w.own.page_state(pa),
            Some(PageState::PendingReclaim(a)),
            "{pa:#x}"
        );
        assert!(!w.own.host_may_access(pa));
    }
    assert_eq!(
        w.step(|w| Ok(w.own.host_handle_fault(0x4800_1000))),
        Ok(FaultAction::InjectAbort)
    );
    assert_eq!(w.step(|w| w.own.vm_teardown(a, &mut w.tlb)), Err(NotFound));
    // Reclaim: only pending pages, zeroed first.
    assert_eq!(
        w.step(|w| w.own.host_reclaim(p, 5, &mut w.san)),
        Err(Denied)
    );
    w.step(|w| w.own.host_reclaim(p, 4, &mut w.san)).unwrap();
    assert_eq!(
        w.san.pages,
        [0x4800_0000, 0x4800_1000, 0x4800_2000, 0x4800_3000]
    );
    let r = w.real_pfn(0);
    w.step(|w| w.own.host_reclaim(r, 4, &mut w.san)).unwrap();
    assert_eq!(
        w.step(|w| Ok(w.own.host_handle_fault(0x4800_1000))),
        Ok(FaultAction::MapAndRetry)
    );
    // The VMID is free again.
    assert_eq!(w.create_vm(8, 1), a);
}

#[test]
fn guests_cannot_touch_each_others_pages() {
    let mut mem = Memory::new(GIB);
    let mut w = World::new(&mut mem);
    let a = w.create_vm(0, 4);
    let b = w.create_vm(4, 4);
    let p = pfn(0x4800_0000);
    w.step(|w| w.own.host_donate_guest(a, p, 0x10, 2, &mut w.tlb))
        .unwrap();
    w.step(|w| w.own.host_donate_guest(b, p + 2, 0x10, 2, &mut w.tlb))
        .unwrap();
    assert_eq!(w.guest_pa(a, 0x10), Some(0x4800_0000));
    assert_eq!(w.guest_pa(b, 0x10), Some(0x4800_2000));
    assert_eq!(
        w.step(|w| w.own.host_donate_guest(b, p, 0x20, 1, &mut w.tlb)),
        Err(Denied)
    );
    w.step(|w| w.own.guest_share_host(a, 0x10, 1)).unwrap();
    assert_eq!(
        w.step(|w| w.own.guest_unshare_host(b, 0x10, 1, &mut w.tlb)),
        Err(Denied)
    );
    w.step(|w| w.own.vm_teardown(b, &mut w.tlb)).unwrap();
    assert_eq!(
        w.own.page_state(0x4800_0000),
        Some(PageState::SharedWithHost(a))
    );
    assert_eq!(w.guest_pa(a, 0x11), Some(0x4800_1000));
}

#[test]
fn with_fwb_guests_get_forced_write_back_leaves_and_the_host_keeps_its_own_attributes() {
    let mut mem = Memory::new(GIB);
    let mut w = World::with_config(&mut mem, stage2_config(5).with_guest_fwb(true));
    let a = w.create_vm(0, 4);
    let q = pfn(0x4a00_0000);
    w.step(|w| w.own.host_donate_guest(a, q, 0x200, 2, &mut w.tlb))
        .unwrap();
    let g = w.own.guest_stage2(a).unwrap();
    assert_eq!(g.encoding(), AttrEncoding::ForcedWriteBack);
    let leaf = g.translate(0x200 * PAGE_SIZE).unwrap();
    assert!(leaf.is(MemKind::Normal, AttrEncoding::ForcedWriteBack));
    assert_eq!(w.own.host.encoding(), AttrEncoding::Combined);
    assert_eq!(
        w.own.host_handle_fault(0x4c00_0000),
        FaultAction::MapAndRetry
    );
    let host_leaf = w.own.host.translate(0x4c00_0000).unwrap();
    assert!(host_leaf.is(MemKind::Normal, AttrEncoding::Combined));
    // Pages back from the guest are the host's again, in the host's encoding.
    w.step(|w| w.own.guest_relinquish(a, 0x200, 2, &mut w.tlb, &mut w.san))
        .unwrap();
    assert_eq!(
        w.own.host_handle_fault(q * PAGE_SIZE),
        FaultAction::MapAndRetry
    );
    let back = w.own.host.translate(q * PAGE_SIZE).unwrap();
    assert!(back.is(MemKind::Normal, AttrEncoding::Combined));
    w.own.check_invariants().unwrap();
}

/// Unsharing removes from the host stage-2 the unshared pages and nothing else: runs of
/// contiguous pages are coalesced, a gap between them (a host page the host has mapped)
/// and what an earlier, longer call left in the scratch list stay mapped.
#[test]
fn guest_unshare_host_removes_only_the_unshared_pages_from_the_host_stage2() {
    let mut mem = Memory::new(GIB);
    let mut w = World::new(&mut mem);
    let a = w.create_vm(0, 4);
    let p = 0x4800_0000;
    let page = |i: usize| p + i * PAGE_SIZE;
    // Guest frames 0x40, 0x41, 0x42 map pages 0, 2, 3 (pages 1 and 4 stay the host's);
    // frames 0x50..0x54 map pages 5..9.
    for (i, gfn) in [(0, 0x40), (2, 0x41), (3, 0x42)] {
        w.step(|w| w.own.host_donate_guest(a, pfn(page(i)), gfn, 1, &mut w.tlb))
            .unwrap();
    }
    w.step(|w| {
        w.own
            .host_donate_guest(a, pfn(page(5)), 0x50, 4, &mut w.tlb)
    })
    .unwrap();
    // A private page in the same 2 MiB keeps the host's mappings there page-sized.
    w.step(|w| {
        w.own
            .host_donate_guest(a, pfn(page(10)), 0x60, 1, &mut w.tlb)
    })
    .unwrap();
    // A longer call first, so that the scratch list holds page 8 past the next call's end.
    w.step(|w| w.own.guest_share_host(a, 0x50, 4)).unwrap();
    w.step(|w| w.own.guest_share_host(a, 0x40, 3)).unwrap();
    for i in 0..9 {
        assert_eq!(
            w.step(|w| Ok(w.own.host_handle_fault(page(i)))),
            Ok(FaultAction::MapAndRetry),
            "page {i}"
        );
    }
    w.step(|w| w.own.guest_unshare_host(a, 0x40, 3, &mut w.tlb))
        .unwrap();
    for i in [0, 2, 3] {
        assert_eq!(w.host_level(page(i)), None, "unshared page {i}");
    }
    for i in [1, 4, 5, 6, 7, 8] {
        assert_eq!(w.host_level(page(i)), Some(3), "page {i} lost its mapping");
    }
}

/// Teardown takes from the host's devices exactly the pages the guest had shared, in runs
/// of contiguous pages: not the host's own pages between them, and not one page fewer
/// (each step checks I1 for DMA, exactly).
#[test]
fn teardown_revokes_dma_to_exactly_the_pages_the_guest_had_shared() {
    let mut mem = Memory::new(GIB);
    let mut w = World::new(&mut mem);
    let a = w.create_vm(0, 4);
    let page = |i: usize| 0x4800_0000 + i * PAGE_SIZE;
    // Guest frames 0x40..0x44 map pages 0, 2, 3 and 6; pages 1, 4 and 5 stay the host's.
    for (i, gfn) in [(0, 0x40), (2, 0x41), (3, 0x42), (6, 0x43)] {
        w.step(|w| w.own.host_donate_guest(a, pfn(page(i)), gfn, 1, &mut w.tlb))
            .unwrap();
    }
    w.step(|w| w.own.guest_share_host(a, 0x40, 4)).unwrap();
    let granted = |w: &World<'_>, i: usize| w.own.host_dma().unwrap().is_granted(page(i));
    assert!((0..7).all(|i| granted(&w, i)));
    w.step(|w| w.own.vm_teardown(a, &mut w.tlb)).unwrap();
    for i in [0, 2, 3, 6] {
        assert!(!granted(&w, i), "shared page {i} still reachable by DMA");
    }
    for i in [1, 4, 5] {
        assert!(granted(&w, i), "host page {i} lost its DMA mapping");
    }
}

/// Unsharing removes every unshared page from the host stage-2 whatever the order of their
/// addresses: descending or scattered pages are never mistaken for a run.
#[test]
fn guest_unshare_host_removes_every_page_whatever_the_order_of_their_addresses() {
    let mut mem = Memory::new(GIB);
    let mut w = World::new(&mut mem);
    let a = w.create_vm(0, 4);
    let page = |i: usize| 0x4800_0000 + i * PAGE_SIZE;
    // Guest frames 0x40..0x44 map pages 1, 0, 3 and 6; page 10 stays private, so that the
    // host's mappings in this 2 MiB are page-sized.
    for (i, gfn) in [(1, 0x40), (0, 0x41), (3, 0x42), (6, 0x43), (10, 0x60)] {
        w.step(|w| w.own.host_donate_guest(a, pfn(page(i)), gfn, 1, &mut w.tlb))
            .unwrap();
    }
    w.step(|w| w.own.guest_share_host(a, 0x40, 4)).unwrap();
    for i in [0, 1, 3, 6] {
        assert_eq!(
            w.step(|w| Ok(w.own.host_handle_fault(page(i)))),
            Ok(FaultAction::MapAndRetry)
        );
    }
    w.step(|w| w.own.guest_unshare_host(a, 0x40, 4, &mut w.tlb))
        .unwrap();
    for i in [0, 1, 3, 6] {
        assert_eq!(
            w.host_level(page(i)),
            None,
            "unshared page {i} still mapped"
        );
    }
}
