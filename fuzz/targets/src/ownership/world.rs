//! A machine for the ownership record to run on, the same shape as stage2's own test world
//! (`stage2/src/ownership/tests.rs`, whose helpers are private to that crate): fake RAM that
//! is never dereferenced, real heap RAM for page-table pools, QEMU's MMIO map, and an EL2
//! carve-out. [`World::step`] runs one call and checks I1-I7 around it.

use stage2::{
    Ownership, OwnershipError, PAGE_SIZE, PagePool, PageSanitizer, PageState, Stage2Table,
    TlbMaintenance, metadata_entries, pages_needed_to_map, stage2_config,
};
use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::vec::Vec;

/// VM slots (VMIDs 1..=4), as in stage2's tests.
pub const MAX_VMS: usize = 4;
/// Fake RAM: its pages are never read or written (zeroing is recorded, not done), so they
/// may only ever be given to the host, EL2's record, or guests, never to a table pool.
pub const FAKE_BASE: usize = 0x4000_0000;
/// 8 MiB of fake RAM: 2 MiB blocks on both sides of the carve-out, few enough pages that
/// the full check after every call stays cheap.
pub const FAKE_BYTES: usize = 8 << 20;
/// EL2's carve-out inside the fake RAM (2..6 MiB).
pub const CARVE_OUT: (usize, usize) = (0x4020_0000, 0x4060_0000);
/// Real RAM (heap), the only pages that may become page-table pools: one 2 MiB block.
pub const REAL_BYTES: usize = 2 << 20;
const MIB2: usize = 2 << 20;
/// QEMU virt MMIO: GICD, GICR, UART, RTC, fw-cfg, virtio-mmio, PCIe window.
pub const QEMU_MMIO: [(usize, usize); 7] = [
    (0x0800_0000, 0x0801_0000),
    (0x080a_0000, 0x0900_0000),
    (0x0900_0000, 0x0900_1000),
    (0x0901_0000, 0x0901_1000),
    (0x0902_0000, 0x0902_1000),
    (0x0a00_0000, 0x0a00_4000),
    (0x1000_0000, 0x3eff_0000),
];
/// PARange 5: 48-bit IPA space (the heap lies below 2^47).
const PA_RANGE: u64 = 5;

/// Aligned, zeroed heap memory standing in for identity-mapped RAM; freed on drop.
pub struct Arena {
    ptr: *mut u8,
    layout: Layout,
}

impl Arena {
    /// `bytes` (non-zero) aligned to `align` (at least a page).
    pub fn new(bytes: usize, align: usize) -> Self {
        let layout = Layout::from_size_align(bytes, align.max(PAGE_SIZE))
            .expect("arena size and alignment form a layout");
        assert!(bytes > 0, "arenas are never empty");
        // SAFETY: the layout has a non-zero size (checked above).
        let ptr = unsafe { alloc_zeroed(layout) };
        assert!(!ptr.is_null(), "out of memory for a {bytes}-byte arena");
        Self { ptr, layout }
    }

    /// First byte.
    pub fn base(&self) -> usize {
        self.ptr as usize
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.layout.size()
    }

    /// Whether the arena is empty (never: `new` refuses 0 bytes).
    pub fn is_empty(&self) -> bool {
        self.layout.size() == 0
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { dealloc(self.ptr, self.layout) };
    }
}

/// One recorded TLB operation.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum TlbOp {
    /// `invalidate_ipa(vmid, ipa, level)`.
    Ipa { vmid: u16, ipa: usize, level: usize },
    /// `invalidate_stage1_for_vmid(vmid)`.
    Stage1 { vmid: u16 },
    /// `invalidate_vmid(vmid)`.
    Vmid { vmid: u16 },
}

/// A [`TlbMaintenance`] that records what it is asked to do.
#[derive(Debug, Default)]
pub struct RecordingTlb {
    /// Every operation, in order.
    pub ops: Vec<TlbOp>,
}

impl TlbMaintenance for RecordingTlb {
    fn invalidate_ipa(&mut self, vmid: u16, ipa: usize, level: usize) {
        self.ops.push(TlbOp::Ipa { vmid, ipa, level });
    }

    fn invalidate_stage1_for_vmid(&mut self, vmid: u16) {
        self.ops.push(TlbOp::Stage1 { vmid });
    }

    fn invalidate_vmid(&mut self, vmid: u16) {
        self.ops.push(TlbOp::Vmid { vmid });
    }
}

/// A [`PageSanitizer`] that records the pages it is asked to zero (fake RAM cannot be
/// written).
#[derive(Debug, Default)]
pub struct RecordingSanitizer {
    /// Every page, in order.
    pub pages: Vec<usize>,
}

impl PageSanitizer for RecordingSanitizer {
    fn zero_and_clean(&mut self, pa: usize) {
        self.pages.push(pa);
    }
}

/// Memory that outlives a [`World`]: the record, real RAM, the host's table pool.
pub struct Memory {
    meta: Vec<u16>,
    real: Arena,
    host_pool: Arena,
}

impl Default for Memory {
    fn default() -> Self {
        Self::new()
    }
}

impl Memory {
    /// Memory for one world. The host pool can map all RAM and MMIO with 4 KiB pages, so
    /// host faults never find it empty.
    pub fn new() -> Self {
        let fake = (FAKE_BASE, FAKE_BASE + FAKE_BYTES);
        let real = Arena::new(REAL_BYTES, MIB2);
        let real_range = (real.base(), real.base() + REAL_BYTES);
        // The decoder names pages up to 32 past the real bank (to reach RANGE); those must
        // not be fake RAM either.
        assert!(
            (real_range.1 + (1 << 20) <= fake.0 || fake.1 <= real_range.0)
                && real_range.1 < 1 << 48,
            "the heap lies next to the fake RAM or above 2^48"
        );
        let root_level = stage2_config(PA_RANGE).root_level;
        let pool_pages = 1 + [fake, real_range]
            .iter()
            .chain(&QEMU_MMIO)
            .map(|&(s, e)| pages_needed_to_map(s, e, root_level))
            .sum::<usize>();
        Memory {
            // Garbage: `Ownership::new` must initialise every entry it uses.
            meta: std::vec![0xffff; metadata_entries(&[fake, real_range])],
            host_pool: Arena::new(pool_pages * PAGE_SIZE, PAGE_SIZE),
            real,
        }
    }
}

/// Everything that an all-or-nothing call must leave as it was when it fails.
#[derive(Debug, PartialEq)]
struct Snapshot {
    record: Vec<Option<PageState>>,
    /// VMID 0 (the host) first, then each live VM's.
    tables: Vec<TableDump>,
    tlb_ops: usize,
    san_pages: usize,
}

/// A stage-2 table as its pages hold it, with its pool's counts.
#[derive(Debug, PartialEq)]
pub struct TableDump {
    /// 0 for the host, else the VM.
    pub vmid: u16,
    root: usize,
    root_level: usize,
    /// Every table page: (address, level, descriptors), sorted by address.
    pages: Vec<(usize, usize, Vec<u64>)>,
    pool_free: usize,
    pool_total: usize,
    active: bool,
}

/// A valid leaf as (IPA, level, descriptor).
pub type LeafKey = (usize, usize, u64);

/// Output-address bits of a descriptor (48-bit PA, 4 KiB granule).
const DESC_ADDR: u64 = 0x0000_ffff_ffff_f000;

/// Bytes an entry at `level` maps (level 0: 512 GiB .. level 3: 4 KiB).
fn span(level: usize) -> usize {
    1 << (12 + 9 * (3 - level))
}

impl TableDump {
    fn new(vmid: u16, t: &Stage2Table) -> Self {
        let mut pages = Vec::new();
        t.for_each_table(|pa, level, e| pages.push((pa, level, e.to_vec())));
        pages.sort_unstable_by_key(|p| p.0);
        TableDump {
            vmid,
            root: t.root_pa(),
            root_level: t.root_level(),
            pages,
            pool_free: t.pool_free_pages(),
            pool_total: t.pool_total_pages(),
            active: t.active(),
        }
    }

    /// Every valid leaf, in IPA order, read from the descriptors themselves (independent of
    /// `Stage2Table`'s own walk, and one pass instead of a walk per leaf).
    pub fn leaves(&self) -> Vec<LeafKey> {
        let mut out = Vec::new();
        self.collect(self.root, self.root_level, 0, &mut out);
        out
    }

    fn collect(&self, table: usize, level: usize, base: usize, out: &mut Vec<LeafKey>) {
        let Ok(i) = self.pages.binary_search_by_key(&table, |p| p.0) else {
            panic!(
                "VMID {}: a descriptor points to {table:#x}, not a table of this stage-2",
                self.vmid
            );
        };
        let (_, at, entries) = &self.pages[i];
        assert_eq!(*at, level, "VMID {}: table {table:#x} level", self.vmid);
        for (idx, &d) in entries.iter().enumerate() {
            if d & 1 == 0 {
                continue;
            }
            let ipa = base + idx * span(level);
            if level < 3 && d & 2 != 0 {
                self.collect((d & DESC_ADDR) as usize, level + 1, ipa, out);
            } else {
                out.push((ipa, level, d));
            }
        }
    }

    /// Every mapped page as (IPA, PA), in IPA order.
    pub fn pages(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for (ipa, level, d) in self.leaves() {
            let pa = (d & DESC_ADDR) as usize;
            out.extend(
                (0..span(level))
                    .step_by(PAGE_SIZE)
                    .map(|off| (ipa + off, pa + off)),
            );
        }
        out
    }

    /// Whether a vCPU may be using the table.
    pub fn active(&self) -> bool {
        self.active
    }

    /// Pages the table's pool manages.
    pub fn pool_total(&self) -> usize {
        self.pool_total
    }
}

/// The ownership record on [`Memory`], with recording TLB and sanitiser.
pub struct World<'m> {
    /// The record under test.
    pub own: Ownership<'m, MAX_VMS>,
    /// Every TLB operation so far.
    pub tlb: RecordingTlb,
    /// Every page zeroed so far.
    pub san: RecordingSanitizer,
    /// The real RAM bank (2 MiB aligned).
    pub real: (usize, usize),
    /// The fake RAM bank.
    pub fake: (usize, usize),
}

impl<'m> World<'m> {
    /// All RAM the host's but the carve-out; no VM; nothing mapped yet.
    pub fn new(mem: &'m mut Memory) -> Self {
        let real = (mem.real.base(), mem.real.base() + REAL_BYTES);
        let fake = (FAKE_BASE, FAKE_BASE + FAKE_BYTES);
        // SAFETY: the host pool arena is ours, page-aligned, identity "mapped" (heap
        // addresses are used as physical ones throughout) and outlives the world.
        let pool = unsafe { PagePool::new(mem.host_pool.base(), mem.host_pool.len()) };
        // SAFETY: the real bank is heap memory owned by `mem` for the world's lifetime; the
        // fake bank is never written because the harness only gives real pages to pools and
        // the sanitiser records instead of zeroing.
        let own = unsafe {
            Ownership::new(
                &stage2_config(PA_RANGE),
                pool,
                &[fake, real],
                &QEMU_MMIO,
                &[CARVE_OUT],
                &mut mem.meta,
            )
        }
        .expect("the fuzz world's start-up ranges are valid");
        World {
            own,
            tlb: RecordingTlb::default(),
            san: RecordingSanitizer::default(),
            real,
            fake,
        }
    }

    /// Every RAM page, in bank order.
    pub fn ram_pages(&self) -> impl Iterator<Item = usize> + '_ {
        self.own
            .ram_banks()
            .flat_map(|(s, e)| (s..e).step_by(PAGE_SIZE))
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            record: self.ram_pages().map(|pa| self.own.page_state(pa)).collect(),
            tables: self.dumps(),
            tlb_ops: self.tlb.ops.len(),
            san_pages: self.san.pages.len(),
        }
    }

    /// The host's stage-2, then each live VM's.
    pub fn dumps(&self) -> Vec<TableDump> {
        let mut v = std::vec![TableDump::new(0, self.own.host_stage2())];
        for vm in self.own.vms() {
            if let Some(g) = self.own.guest_stage2(vm) {
                v.push(TableDump::new(vm.get(), g));
            }
        }
        v
    }

    /// Runs one call and checks around it: I7 (a failed call changed nothing: record,
    /// tables, pools, TLB and sanitiser logs), I6 and I5 (after a successful call), then
    /// I1-I4 on the real tables and "each guest maps a page at most once".
    pub fn step<T>(
        &mut self,
        call: impl FnOnce(&mut Self) -> Result<T, OwnershipError>,
    ) -> Result<T, OwnershipError> {
        let before = self.snapshot();
        let result = call(self);
        let after = self.snapshot();
        match &result {
            Err(e) => assert!(
                after == before,
                "I7: a failed call ({e:?}) changed something"
            ),
            Ok(_) => {
                self.check_tlb_sequence(&before.tables, &after.tables, before.tlb_ops);
                self.check_sanitised(&before.record, before.san_pages);
            }
        }
        self.check_all();
        result
    }

    /// I6: every leaf that disappeared was invalidated for its VMID (or the whole VMID was,
    /// for a table that is gone); each VMID's IPA invalidations are followed by a stage-1 or
    /// whole-VMID one; at most one stage-1 invalidation per VMID per call.
    fn check_tlb_sequence(&self, before: &[TableDump], after: &[TableDump], first_op: usize) {
        let ops = &self.tlb.ops[first_op..];
        for table in before {
            let vmid = &table.vmid;
            let now = after
                .iter()
                .find(|t| t.vmid == *vmid)
                .map(TableDump::leaves);
            for leaf in table.leaves() {
                if now.as_ref().is_some_and(|n| n.binary_search(&leaf).is_ok()) {
                    continue;
                }
                let (ipa, level, _) = leaf;
                let by_ipa = ops.contains(&TlbOp::Ipa {
                    vmid: *vmid,
                    ipa,
                    level,
                });
                let by_vmid = now.is_none() && ops.contains(&TlbOp::Vmid { vmid: *vmid });
                assert!(
                    by_ipa || by_vmid,
                    "I6: leaf {leaf:x?} of VMID {vmid} removed without TLB invalidation: {ops:?}"
                );
            }
        }
        let mut pending: Vec<u16> = Vec::new();
        for op in ops {
            match *op {
                TlbOp::Ipa { vmid, .. } => {
                    if !pending.contains(&vmid) {
                        pending.push(vmid);
                    }
                }
                TlbOp::Stage1 { vmid } | TlbOp::Vmid { vmid } => pending.retain(|&v| v != vmid),
            }
        }
        assert!(
            pending.is_empty(),
            "I6: stage-2 invalidation without a following stage-1 one for VMIDs {pending:?}: {ops:?}"
        );
        for vmid in 0..=MAX_VMS as u16 {
            let n = ops.iter().filter(|o| **o == TlbOp::Stage1 { vmid }).count();
            assert!(
                n <= 1,
                "I6: {n} stage-1 invalidations for VMID {vmid} in one call: {ops:?}"
            );
        }
    }

    /// I5: every page that went from a guest (or pending reclaim) to the host was zeroed and
    /// cleaned in this call.
    fn check_sanitised(&self, before: &[Option<PageState>], first_page: usize) {
        let mut cleaned = self.san.pages[first_page..].to_vec();
        cleaned.sort_unstable();
        for (pa, old) in self.ram_pages().zip(before) {
            let (Some(old), Some(new)) = (*old, self.own.page_state(pa)) else {
                continue;
            };
            let left_guest = matches!(old.owner(), stage2::Owner::Guest(_))
                || matches!(old, PageState::PendingReclaim(_));
            if left_guest && new.owner() == stage2::Owner::Host {
                assert!(
                    cleaned.binary_search(&pa).is_ok(),
                    "I5: page {pa:#x} went {old:?} -> {new:?} without being zeroed"
                );
            }
        }
    }

    /// I1-I4 on the real tables ([`Ownership::check_invariants`]). ("A guest maps a page at
    /// most once" is checked by the model comparison, which walks the guest tables anyway.)
    pub fn check_all(&self) {
        if let Err(v) = self.own.check_invariants() {
            panic!("{v}");
        }
    }

    /// Marks every table inactive, so that dropping the world (also while a failed check
    /// unwinds in a replay test) does not trip aarch64-paging's "dropping an active table".
    fn deactivate_all(&self) {
        while self.own.host_stage2().active() {
            self.own.host_stage2().mark_inactive();
        }
        for vm in self.own.vms() {
            if let Some(g) = self.own.guest_stage2(vm) {
                while g.active() {
                    g.mark_inactive();
                }
            }
        }
    }
}

impl Drop for World<'_> {
    fn drop(&mut self) {
        self.deactivate_all();
    }
}
