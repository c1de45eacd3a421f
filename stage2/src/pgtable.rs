//! Stage-2 translation tables: configuration (`VTCR_EL2`), mapping with the largest blocks
//! that fit, unmapping with the TLB sequence, lookups and statistics.
//!
//! A [`Stage2Table`] wraps `aarch64_paging::Mapping<PoolTranslation, Stage2>` with a 4 KiB
//! granule. Where the architecture needs a concatenated root (40- and 42-bit IPA spaces start
//! at level 1 in 2 or 8 contiguous tables; see [`stage2_config`]), the library still manages a
//! tree with a one-page root, one level higher: see [`Stage2Table`] for how the two agree.
//!
//! Rules this module keeps:
//! - **Check before you map.** A change that needs new table pages counts them first by
//!   walking the tree ([`Stage2Table::tables_needed_to_map`]) and fails with
//!   [`Stage2Error::NoMemory`] before touching anything; the pool can then never run dry in
//!   the library's `allocate_table`.
//! - **Break-before-make on live tables.** Once [`Stage2Table::mark_active`] was called the
//!   library refuses in-place changes of live entries. Removing part of a block is done as
//!   break (the whole block becomes invalid), TLB maintenance, make (what should stay mapped is
//!   mapped again into the now-invalid range): [`Stage2Table::unmap`]. The host stage-2 uses
//!   [`Stage2Table::unmap_covering`] instead, which only breaks and leaves the rest to be
//!   faulted back in lazily.
//! - **TLB sequence.** Every removal calls `invalidate_ipa` for each removed leaf and then
//!   `invalidate_stage1_for_vmid` once, with this table's VMID, before returning. (On an
//!   active table aarch64-paging also issues its own `tlbi ipas2e1is` for entries it changes,
//!   with whatever VMID `VTTBR_EL2` holds at the time: redundant, harmless, and not relied on.)

use crate::pool::{PAGE_SIZE, PagePool, PoolTranslation, granule_at_level};
use crate::tlb::TlbMaintenance;
use aarch64_paging::descriptor::{PhysicalAddress, Stage2Attributes};
use aarch64_paging::paging::{Constraints, MemoryRegion, Stage2};
use aarch64_paging::{MapError, Mapping};
use core::fmt;

/// Entries per table with a 4 KiB granule.
const ENTRIES: usize = 512;
/// Output-address bits of a descriptor (48-bit PA, 4 KiB granule).
const DESC_ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;
/// Descriptor bits read by the direct walks (`lookup_entry`, `translate_pages`).
const VALID: u64 = 1 << 0;
const TABLE_OR_PAGE: u64 = 1 << 1;
const LEAF_LEVEL: usize = 3;
/// Largest IPA size used: 52-bit sizes need LPA2 descriptors, which aarch64-paging lacks.
const MAX_IPA_BITS: u32 = 48;
/// Table descriptor bits of a stage-2 descriptor pointing to the next-level table.
const TABLE_DESC: u64 = VALID | TABLE_OR_PAGE;

/// How stage-2 translation is set up on this CPU.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct Stage2Config {
    /// Size of the IPA space in bits (`64 - VTCR_EL2.T0SZ`).
    pub ipa_bits: u32,
    /// Level at which the hardware walk starts (`VTCR_EL2.SL0`): 0 or 1.
    pub root_level: usize,
    /// Number of concatenated tables the hardware root is made of (1, 2 or 8): the root
    /// level resolves `ipa_bits - 30` bits at level 1, more than one table's 9.
    pub root_tables: usize,
    /// Value for `VTCR_EL2`.
    pub vtcr: u64,
    /// Whether guests run with `HCR_EL2.FWB` set (the CPU has FEAT_S2FWB): their tables then
    /// use the FWB encoding of normal memory, which makes every guest access to it Normal
    /// Write-Back whatever the guest's stage 1 says ([`AttrEncoding::ForcedWriteBack`]).
    /// The host never does (see [`encoding_for_vmid`](Self::encoding_for_vmid)).
    pub guest_fwb: bool,
}

impl Stage2Config {
    /// The same configuration with guests using FEAT_S2FWB or not: pass the CPU's
    /// `ID_AA64MMFR2_EL1.FWB != 0`, and set `HCR_EL2.FWB` for guests exactly when this is on.
    pub fn with_guest_fwb(mut self, fwb: bool) -> Self {
        self.guest_fwb = fwb;
        self
    }

    /// How the table of VMID `vmid` encodes memory attributes. VMID 0 is the host's, which
    /// runs with `HCR_EL2.FWB` clear on every CPU, as pKVM's host does (its host stage-2 is
    /// `KVM_PGTABLE_S2_NOFWB`): forcing Write-Back would turn the host's own Non-cacheable
    /// mappings (buffers shared with non-coherent devices, frame buffers) cacheable behind
    /// its back, and nothing of anyone else's is at stake in how the host caches its own
    /// pages (pages leave the host cleaned and invalidated or zeroed by EL2). Guests use the
    /// FWB encoding where the CPU has it.
    pub fn encoding_for_vmid(&self, vmid: u16) -> AttrEncoding {
        if self.guest_fwb && vmid != 0 {
            AttrEncoding::ForcedWriteBack
        } else {
            AttrEncoding::Combined
        }
    }

    /// Bytes of IPA space the tables can map.
    pub fn ipa_size(&self) -> usize {
        1usize << self.ipa_bits
    }

    /// Value for `VTTBR_EL2` with a table rooted at `root_pa` and VMID `vmid` (8-bit VMIDs:
    /// `VTCR_EL2.VS` is 0).
    pub fn vttbr(root_pa: usize, vmid: u16) -> u64 {
        (root_pa as u64 & DESC_ADDR_MASK) | (u64::from(vmid & 0xff) << 48)
    }

    /// Whether a VM asking for an IPA space of `ipa_bits` bits can have one: guests' tables
    /// use this configuration too, so no more than [`ipa_bits`](Self::ipa_bits) (a larger
    /// input than output size is CONSTRAINED UNPREDICTABLE in the Arm ARM). Only CPUs with
    /// a 32- or 36-bit PARange refuse part of the ABI's 32..=40.
    pub fn allows_vm_ipa_bits(&self, ipa_bits: u32) -> bool {
        ipa_bits <= self.ipa_bits
    }

    /// Level of the root of the tree aarch64-paging manages. With concatenated hardware
    /// roots it is one level above them: a directory page whose first `root_tables`
    /// entries point to the concatenated tables (see [`Stage2Table`]).
    pub fn tree_root_level(&self) -> usize {
        if self.root_tables > 1 {
            self.root_level - 1
        } else {
            self.root_level
        }
    }

    /// Pool pages that creating a table takes (directory and concatenated roots included).
    pub fn root_pages(&self) -> usize {
        if self.root_tables > 1 {
            1 + self.root_tables
        } else {
            1
        }
    }

    /// Pool pages a freshly filled pool must hold so that [`Stage2Table::try_new`] finds its
    /// root in it whatever the pool's alignment: [`root_pages`](Self::root_pages) plus the
    /// pages that may lie before the first `root_tables`-aligned run (they stay in the pool).
    pub fn root_pages_worst_case(&self) -> usize {
        self.root_pages() + (self.root_tables - 1)
    }

    /// Whether a table can take its root from a pool filled with the pages `[start, end)` in
    /// order (as `PagePool::add_pages` does): the concatenated roots need `root_tables`
    /// contiguous pages aligned to their total size (the `VTTBR_EL2.BADDR` alignment rule),
    /// plus one page for the directory.
    pub fn root_fits_in(&self, start: usize, end: usize) -> bool {
        if self.root_tables <= 1 {
            return end > start;
        }
        let run = self.root_tables * PAGE_SIZE;
        let first = start.next_multiple_of(run);
        first
            .checked_add(run)
            .is_some_and(|run_end| run_end <= end && (end - start) / PAGE_SIZE > self.root_tables)
    }
}

/// Builds the stage-2 configuration for a CPU whose `ID_AA64MMFR0_EL1.PARange` is `pa_range`
/// (values above 6 are treated as 6).
///
/// 4 KiB granule. The IPA size is the PA size capped at 48 bits, and `PS` is the PA size
/// capped the same way (a 52-bit output size needs LPA2 descriptors); the input size then
/// never exceeds the output size, which the Arm ARM makes CONSTRAINED UNPREDICTABLE.
/// The start level follows the Arm ARM's rules for `VTCR_EL2` (4 KiB granule; QEMU applies
/// them in `check_s2_mmu_setup`): the start level must resolve 1 to 13 bits (13 = 16
/// concatenated tables), and a level-0 start is allowed only with an output size above 42
/// bits. So 32..=39 bits start at level 1 with one table, 40 and 42 bits (Cortex-A53, A35,
/// A76, A64FX; PARange 2 and 3) at level 1 with 2 and 8 concatenated tables, 44 and 48 bits
/// at level 0. Table walks are inner-shareable, write-back cacheable. Bit 31 is RES1.
pub fn stage2_config(pa_range: u64) -> Stage2Config {
    let pa_range = pa_range.min(6);
    let pa_bits: u32 = match pa_range {
        0 => 32,
        1 => 36,
        2 => 40,
        3 => 42,
        4 => 44,
        5 => 48,
        _ => 52,
    };
    let ipa_bits = pa_bits.min(MAX_IPA_BITS);
    let root_level = if ipa_bits <= 39 || pa_bits <= 42 {
        1
    } else {
        0
    };
    // Bits the start level resolves beyond one table's 9 select the concatenated table.
    let root_tables = if root_level == 1 && ipa_bits > 39 {
        1 << (ipa_bits - 39)
    } else {
        1
    };
    let t0sz = u64::from(64 - ipa_bits);
    let sl0: u64 = if root_level == 0 { 2 } else { 1 };
    let ps = pa_range.min(5);
    let vtcr = t0sz
        | (sl0 << 6)
        | (1 << 8) // IRGN0: write-back read-allocate write-allocate
        | (1 << 10) // ORGN0: same
        | (3 << 12) // SH0: inner shareable
        // TG0 = 0b00: 4 KiB granule
        | (ps << 16)
        | (1 << 31); // RES1
    Stage2Config {
        ipa_bits,
        root_level,
        root_tables,
        vtcr,
        guest_fwb: false,
    }
}

/// How a table's descriptors encode the stage-2 memory type (`MemAttr[3:0]`, descriptor
/// bits [5:2]); which one the hardware uses is `HCR_EL2.FWB` while the table is loaded.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum AttrEncoding {
    /// `HCR_EL2.FWB` = 0 (Arm ARM D8.6.4, "Combining stage 1 and stage 2 attributes"): the
    /// stage-2 type is combined with stage 1's and the stricter wins; normal memory is
    /// mapped Inner and Outer Write-Back (0b1111) so stage 1 decides.
    Combined,
    /// `HCR_EL2.FWB` = 1 (FEAT_S2FWB, Arm ARM D8.6.5): `MemAttr[2]` = 1 with
    /// `MemAttr[1:0]` = 0b10 (0b0110) makes the access Normal Write-Back whatever stage 1
    /// says, so a guest with its MMU or caches off still reads and writes through the
    /// caches and can never see DRAM under a line another world left dirty. Device
    /// encodings (`MemAttr[2]` = 0) are the same in both.
    ForcedWriteBack,
}

/// `MemAttr` = 0b0110 with FWB: Normal Write-Back regardless of stage 1 (Linux's
/// `MT_S2_FWB_NORMAL`). Without FWB the same bits would mean Outer Non-cacheable, Inner
/// Write-Through, which no table here uses.
const MEMATTR_FWB_NORMAL_WB: Stage2Attributes = Stage2Attributes::from_bits_retain(0b0110 << 2);

/// What a mapping is.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum MemKind {
    /// Normal memory, write-back inner and outer, inner shareable, read-write, executable.
    Normal,
    /// Device-nGnRE, execute-never, read-write.
    Device,
}

impl MemKind {
    /// The stage-2 descriptor attributes of a valid leaf of this kind in a table that uses
    /// `encoding`.
    pub fn attributes(self, encoding: AttrEncoding) -> Stage2Attributes {
        let common = Stage2Attributes::VALID
            | Stage2Attributes::ACCESS_FLAG
            | Stage2Attributes::S2AP_ACCESS_RW;
        match (self, encoding) {
            (MemKind::Normal, AttrEncoding::Combined) => {
                common
                    | Stage2Attributes::MEMATTR_NORMAL_INNER_WB
                    | Stage2Attributes::MEMATTR_NORMAL_OUTER_WB
                    | Stage2Attributes::SH_INNER
            }
            (MemKind::Normal, AttrEncoding::ForcedWriteBack) => {
                common | MEMATTR_FWB_NORMAL_WB | Stage2Attributes::SH_INNER
            }
            (MemKind::Device, _) => {
                common | Stage2Attributes::MEMATTR_DEVICE_nGnRE | Stage2Attributes::XN
            }
        }
    }

    /// The kind whose attributes `attrs` are (ignoring the page/table bit) in either
    /// encoding, if any.
    pub fn from_attributes(attrs: Stage2Attributes) -> Option<MemKind> {
        let attrs = attrs - Stage2Attributes::TABLE_OR_PAGE;
        [MemKind::Normal, MemKind::Device].into_iter().find(|k| {
            [AttrEncoding::Combined, AttrEncoding::ForcedWriteBack]
                .into_iter()
                .any(|e| k.attributes(e) == attrs)
        })
    }
}

/// Why a stage-2 change was refused. Nothing was changed when one of these is returned.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Stage2Error {
    /// The range is empty, backwards, wraps, or is not 4 KiB-aligned.
    InvalidRange { start: usize, end: usize },
    /// The range reaches past the IPA size.
    OutOfRange {
        start: usize,
        end: usize,
        ipa_size: usize,
    },
    /// The table pool has fewer free pages than the change needs.
    NoMemory { needed: usize, free: usize },
    /// The change would modify a live entry in place (break-before-make).
    BreakBeforeMake { start: usize, end: usize },
    /// Any other refusal from aarch64-paging.
    Map(MapError),
}

impl fmt::Display for Stage2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage2Error::InvalidRange { start, end } => {
                write!(f, "invalid stage-2 range {start:#x}..{end:#x}")
            }
            Stage2Error::OutOfRange {
                start,
                end,
                ipa_size,
            } => write!(
                f,
                "stage-2 range {start:#x}..{end:#x} is outside the IPA space (size {ipa_size:#x})"
            ),
            Stage2Error::NoMemory { needed, free } => write!(
                f,
                "stage-2 change needs {needed} table pages, the pool has {free} free"
            ),
            Stage2Error::BreakBeforeMake { start, end } => write!(
                f,
                "stage-2 change of {start:#x}..{end:#x} would modify live entries in place"
            ),
            Stage2Error::Map(e) => write!(f, "stage-2 mapping refused: {e}"),
        }
    }
}

impl From<MapError> for Stage2Error {
    fn from(e: MapError) -> Self {
        match e {
            MapError::BreakBeforeMakeViolation(r) => Stage2Error::BreakBeforeMake {
                start: r.start().0,
                end: r.end().0,
            },
            other => Stage2Error::Map(other),
        }
    }
}

/// A valid leaf found by [`Stage2Table::translate`].
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct Leaf {
    /// The output address the looked-up IPA translates to.
    pub pa: usize,
    /// Level of the leaf: 1 = 1 GiB block, 2 = 2 MiB block, 3 = 4 KiB page.
    pub level: usize,
    /// The leaf's attributes (level-3 pages include `TABLE_OR_PAGE`).
    pub attrs: Stage2Attributes,
    /// First IPA the leaf maps.
    pub block_ipa: usize,
    /// Output address of `block_ipa`.
    pub block_pa: usize,
}

impl Leaf {
    /// Bytes the leaf maps.
    pub fn size(&self) -> usize {
        granule_at_level(self.level)
    }

    /// The kind of mapping, if the attributes are one of [`MemKind`]'s (in either encoding).
    pub fn kind(&self) -> Option<MemKind> {
        MemKind::from_attributes(self.attrs)
    }

    /// Whether the leaf maps `kind` exactly as a table using `encoding` writes it.
    pub fn is(&self, kind: MemKind, encoding: AttrEncoding) -> bool {
        self.attrs - Stage2Attributes::TABLE_OR_PAGE == kind.attributes(encoding)
    }

    /// Whether the leaf is one [`Stage2Table::map_inaccessible`] wrote for `kind`.
    pub fn is_inaccessible(&self, kind: MemKind, encoding: AttrEncoding) -> bool {
        self.attrs - Stage2Attributes::TABLE_OR_PAGE
            == kind.attributes(encoding) - Stage2Attributes::S2AP_ACCESS_RW
    }
}

/// Counts of valid leaves by size, and of table pages.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct BlockStats {
    /// 1 GiB blocks (level 1).
    pub gib: usize,
    /// 2 MiB blocks (level 2).
    pub mib2: usize,
    /// 4 KiB pages (level 3).
    pub kib4: usize,
    /// Table pages reachable from the root, the root included.
    pub tables: usize,
}

impl fmt::Display for BlockStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} x 1 GiB, {} x 2 MiB, {} x 4 KiB blocks, {} table pages",
            self.gib, self.mib2, self.kib4, self.tables
        )
    }
}

/// Tables that a fully covered entry at `level`, holding no table yet, needs when its range is
/// mapped with output addresses at offset `delta` from the input: none if it can be one block,
/// else a table whose 512 entries each need the same at the next level.
fn tables_for_full_entry(level: usize, delta: usize) -> usize {
    if level >= 3 || (level > 0 && delta.is_multiple_of(granule_at_level(level))) {
        return 0;
    }
    1 + ENTRIES * tables_for_full_entry(level + 1, delta)
}

/// Tables that mapping `parts` needs below one entry at `level` starting at `entry_base` that
/// holds no table yet (it is invalid, or a block that has to be split). `parts` are sorted,
/// disjoint, page-aligned, non-empty and inside the entry; at most two are ever passed (the
/// pieces of a split block left on either side of an unmapped hole).
fn tables_for_parts(
    level: usize,
    entry_base: usize,
    parts: &[(usize, usize)],
    delta: usize,
) -> usize {
    let size = granule_at_level(level);
    if let [(s, e)] = parts
        && *s == entry_base
        && *e == entry_base + size
    {
        return tables_for_full_entry(level, delta);
    }
    if level >= 3 || parts.is_empty() {
        return 0;
    }
    // The entry becomes a table at `level + 1`; inside it, sub-entries covered completely cost
    // what a full entry costs, and the (at most two per part) partly covered ones recurse.
    let sub = granule_at_level(level + 1);
    let mut tables = 1;
    let mut edges: [(usize, usize, usize); 4] = [(0, 0, 0); 4];
    let mut n_edges = 0;
    for &(s, e) in parts {
        let first = s / sub;
        let last = (e - 1) / sub;
        edges[n_edges] = (first, s, e.min((first + 1) * sub));
        n_edges += 1;
        if last > first {
            edges[n_edges] = (last, last * sub, e);
            n_edges += 1;
            tables += (last - first - 1) * tables_for_full_entry(level + 1, delta);
        }
    }
    let mut i = 0;
    while i < n_edges {
        // Pieces of different parts may share one sub-entry; they share its tables too.
        let idx = edges[i].0;
        let mut group: [(usize, usize); 2] = [(0, 0); 2];
        let mut n = 0;
        while i < n_edges && edges[i].0 == idx && n < 2 {
            group[n] = (edges[i].1, edges[i].2);
            n += 1;
            i += 1;
        }
        tables += tables_for_parts(level + 1, idx * sub, &group[..n], delta);
    }
    tables
}

/// An empty stage-2 tree for `config` whose pages come from `pool`, and the address of the
/// root the hardware walks (`VTTBR_EL2.BADDR`, or an SMMU STE's `S2TTB`): with concatenated
/// roots, the library's root is a directory page one level up whose first
/// `config.root_tables` entries point to the concatenated tables (see [`Stage2Table`]).
///
/// # Errors
///
/// As [`Stage2Table::try_new`].
pub(crate) fn stage2_mapping(
    mut pool: PagePool,
    config: &Stage2Config,
) -> Result<(Mapping<PoolTranslation, Stage2>, usize), Stage2Error> {
    let needed = config.root_pages();
    let free = pool.free_pages();
    if free < needed {
        return Err(Stage2Error::NoMemory { needed, free });
    }
    // The run first: the directory page must not be taken from the middle of it.
    let run = if config.root_tables > 1 {
        Some(
            pool.take_aligned_run(config.root_tables)
                .ok_or(Stage2Error::NoMemory { needed, free })?,
        )
    } else {
        None
    };
    let mapping = Mapping::new(PoolTranslation::new(pool), config.tree_root_level(), Stage2);
    let directory = mapping.root_address().0;
    if let Some(run) = run {
        for i in 0..config.root_tables {
            let desc = (run + i * PAGE_SIZE) as u64 | TABLE_DESC;
            // SAFETY: `directory` is the zeroed root page the library just took from our
            // pool (identity-mapped, 512 descriptors, `i` < 16); the table is not live and
            // the library holds no reference into the page between calls. The entry points
            // to a zeroed pool page of the run, which the library then owns like any table
            // it allocated (it frees it into the same pool).
            unsafe { core::ptr::write_volatile((directory as *mut u64).add(i), desc) };
        }
    }
    Ok((mapping, run.unwrap_or(directory)))
}

/// A stage-2 translation table whose table pages come from its own [`PagePool`].
///
/// # Concatenated roots
///
/// aarch64-paging's root is always one 512-entry table, while a 40- or 42-bit IPA space on a
/// CPU whose output size is at most 42 bits must start at level 1 with 2 or 8 concatenated
/// tables (a level-0 start is not allowed there). The smallest sound arrangement that keeps
/// the library in charge of every table: the library's tree starts one level higher (level 0)
/// at a *directory* page that the hardware never sees, whose entries `0..root_tables` are table
/// descriptors pointing to `root_tables` level-1 tables taken from the pool as one contiguous
/// run aligned to its size (`VTTBR_EL2.BADDR` rule). Level-1 entry `i` of the concatenation is
/// then entry `i % 512` of table `i / 512`, exactly where the library puts the mapping of an IPA
/// of that 512 GiB slot, so the hardware walk from the run and the library's walk from the
/// directory read the same descriptors. The directory entries are never changed afterwards:
/// the library replaces a table entry only to unmap the whole range it covers (512 GiB here),
/// and this type only ever unmaps single leaves (at most 1 GiB); IPAs at or above `ipa_size`
/// are refused before they reach the library, so directory entries past the run stay invalid.
/// The cost is one page per table, and nothing on CPUs that need no concatenation.
pub struct Stage2Table {
    mapping: Mapping<PoolTranslation, Stage2>,
    vmid: u16,
    ipa_size: usize,
    /// Where the hardware walk starts: `VTTBR_EL2.BADDR`.
    hw_root_pa: usize,
    /// Level of the hardware root.
    root_level: usize,
    /// Level of the library's root (`root_level - 1` with a directory).
    tree_root_level: usize,
    /// How this table's leaves encode memory types.
    encoding: AttrEncoding,
}

impl fmt::Debug for Stage2Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stage2Table")
            .field("root_pa", &format_args!("{:#x}", self.root_pa()))
            .field("vmid", &self.vmid)
            .field("ipa_size", &format_args!("{:#x}", self.ipa_size))
            .field("active", &self.active())
            .finish()
    }
}

/// A piece of a block that [`Stage2Table::unmap`] has to map again after breaking the block.
#[derive(Clone, Copy)]
struct Remnant {
    start: usize,
    end: usize,
    pa: usize,
    attrs: Stage2Attributes,
}

impl Stage2Table {
    /// Creates an empty table for VMID 0 (the host), its root taken from `pool`.
    ///
    /// Panics if `pool` has no free page: a boot-time sizing bug. Use
    /// [`try_new`](Self::try_new) where the pool comes from elsewhere.
    pub fn new(pool: PagePool, config: &Stage2Config) -> Self {
        Self::with_vmid(pool, config, 0)
    }

    /// Creates an empty table for VMID `vmid`; panics like [`new`](Self::new).
    pub fn with_vmid(pool: PagePool, config: &Stage2Config, vmid: u16) -> Self {
        match Self::try_new(pool, config, vmid) {
            Ok(t) => t,
            Err(e) => panic!("cannot create stage-2 table: {e}"),
        }
    }

    /// Creates an empty table for VMID `vmid`.
    ///
    /// # Errors
    ///
    /// [`Stage2Error::NoMemory`] if `pool` has no free page for the root (the pool is dropped),
    /// or, with concatenated roots, fewer than `config.root_pages()` free pages or no run of
    /// `config.root_tables` contiguous free pages aligned to their size that come one after
    /// the other on its free list (always found in a pool filled from one range that
    /// [`Stage2Config::root_fits_in`]).
    pub fn try_new(pool: PagePool, config: &Stage2Config, vmid: u16) -> Result<Self, Stage2Error> {
        let (mapping, hw_root_pa) = stage2_mapping(pool, config)?;
        Ok(Self {
            mapping,
            vmid,
            ipa_size: config.ipa_size(),
            hw_root_pa,
            root_level: config.root_level,
            tree_root_level: config.tree_root_level(),
            encoding: config.encoding_for_vmid(vmid),
        })
    }

    /// Physical address of the root table the hardware walks (the first of the concatenated
    /// tables, if any).
    pub fn root_pa(&self) -> usize {
        self.hw_root_pa
    }

    /// Physical address of the library's root page (the directory, with concatenated roots).
    pub(crate) fn tree_root_pa(&self) -> usize {
        self.mapping.root_address().0
    }

    /// The VMID this table is used with.
    pub fn vmid(&self) -> u16 {
        self.vmid
    }

    /// How this table encodes memory types: `HCR_EL2.FWB` must be set exactly when it is
    /// [`AttrEncoding::ForcedWriteBack`] while the table is loaded.
    pub fn encoding(&self) -> AttrEncoding {
        self.encoding
    }

    /// `VTTBR_EL2` value for this table.
    pub fn vttbr(&self) -> u64 {
        Stage2Config::vttbr(self.root_pa(), self.vmid)
    }

    /// Level of the root table the hardware walks.
    pub fn root_level(&self) -> usize {
        self.root_level
    }

    /// Bytes of IPA space.
    pub fn ipa_size(&self) -> usize {
        self.ipa_size
    }

    /// Free pages left in the table's pool.
    pub fn pool_free_pages(&self) -> usize {
        self.mapping.translation().free_pages()
    }

    /// Pages the table's pool manages (tables in use plus free pages).
    pub fn pool_total_pages(&self) -> usize {
        self.mapping.translation().total_pages()
    }

    /// Calls `f` with every free page of the table's pool.
    pub fn for_each_free_pool_page(&self, f: impl FnMut(usize)) {
        self.mapping.translation().for_each_free_page(f);
    }

    /// Adds `count` pages at `pa` to the table's pool (a VM top-up).
    ///
    /// # Safety
    ///
    /// As for [`PagePool::add_pages`]: the pages are identity-mapped, owned by EL2 and in no
    /// host or guest stage-2, and not in any pool.
    pub unsafe fn add_pool_pages(&self, pa: usize, count: usize) {
        self.mapping.translation().with_pool(|p| {
            // SAFETY: our caller's promise.
            unsafe { p.add_pages(pa, count) }
        });
    }

    /// Marks the table live: from now on the library refuses changes that would need
    /// break-before-make. Call it when the table is loaded in `VTTBR_EL2` on some CPU.
    pub fn mark_active(&self) {
        self.mapping.mark_active();
    }

    /// Undoes one [`mark_active`](Self::mark_active) (the table is loaded on one CPU fewer).
    pub fn mark_inactive(&self) {
        self.mapping.mark_inactive();
    }

    /// Whether some CPU may be using the table.
    pub fn active(&self) -> bool {
        self.mapping.active()
    }

    fn check_range(&self, start: usize, end: usize) -> Result<(), Stage2Error> {
        if start >= end || !start.is_multiple_of(PAGE_SIZE) || !end.is_multiple_of(PAGE_SIZE) {
            return Err(Stage2Error::InvalidRange { start, end });
        }
        if end > self.ipa_size {
            return Err(Stage2Error::OutOfRange {
                start,
                end,
                ipa_size: self.ipa_size,
            });
        }
        Ok(())
    }

    /// Maps `[start, end)` to itself (VA == PA) as `kind`, with the largest blocks alignment
    /// allows. Entries already mapping the same addresses with the same attributes are kept.
    ///
    /// # Errors
    ///
    /// As for [`map`](Self::map).
    pub fn map_identity(
        &mut self,
        start: usize,
        end: usize,
        kind: MemKind,
    ) -> Result<(), Stage2Error> {
        self.map(start, end, start, kind)
    }

    /// Maps IPAs `[start, end)` to output addresses from `pa` on, as `kind`, with the largest
    /// blocks that the alignment of both allows. All or nothing.
    ///
    /// # Errors
    ///
    /// - [`Stage2Error::InvalidRange`]: empty, unaligned or wrapping range or `pa`.
    /// - [`Stage2Error::OutOfRange`]: the range leaves the IPA space.
    /// - [`Stage2Error::NoMemory`]: the pool lacks the table pages this needs.
    /// - [`Stage2Error::BreakBeforeMake`]: the table is active and a live entry in the range
    ///   maps something else.
    pub fn map(
        &mut self,
        start: usize,
        end: usize,
        pa: usize,
        kind: MemKind,
    ) -> Result<(), Stage2Error> {
        self.check_output(start, end, pa)?;
        self.map_attrs(start, end, pa, kind.attributes(self.encoding))
    }

    /// The checks [`map`](Self::map) and [`map_inaccessible`](Self::map_inaccessible) share:
    /// the IPA range, and an output range from `pa` that is page aligned, does not wrap and
    /// fits a descriptor's address field.
    fn check_output(&self, start: usize, end: usize, pa: usize) -> Result<(), Stage2Error> {
        self.check_range(start, end)?;
        if !pa.is_multiple_of(PAGE_SIZE)
            || pa
                .checked_add(end - start)
                .is_none_or(|e| e as u64 > DESC_ADDR_MASK + 1)
        {
            return Err(Stage2Error::InvalidRange { start, end });
        }
        Ok(())
    }

    /// As [`map`](Self::map), but the leaves give no access (S2AP = 0b00): every access
    /// through them is a stage-2 permission fault. They hold the IPAs and the table pages
    /// for a later [`map`](Self::map) of the same range to the same output with the same
    /// `kind`, which then only changes S2AP and takes no table page (a permission-only
    /// change needs no break-before-make in the Arm ARM's rules, and aarch64-paging's
    /// `is_bbm_safe` allows it on a live table). The caller must then
    /// invalidate the IPAs' TLB entries: a TLB may hold an entry that faults.
    ///
    /// # Errors
    ///
    /// As for [`map`](Self::map).
    pub fn map_inaccessible(
        &mut self,
        start: usize,
        end: usize,
        pa: usize,
        kind: MemKind,
    ) -> Result<(), Stage2Error> {
        self.check_output(start, end, pa)?;
        let attrs = kind.attributes(self.encoding) - Stage2Attributes::S2AP_ACCESS_RW;
        self.map_attrs(start, end, pa, attrs)
    }

    fn map_attrs(
        &mut self,
        start: usize,
        end: usize,
        pa: usize,
        attrs: Stage2Attributes,
    ) -> Result<(), Stage2Error> {
        let needed = self.tables_needed_attrs(start, end, pa, attrs)?;
        let free = self.pool_free_pages();
        if needed > free {
            return Err(Stage2Error::NoMemory { needed, free });
        }
        // aarch64-paging checks break-before-make before it writes anything, and with the
        // pages counted above it cannot run out midway: this is all or nothing.
        self.mapping
            .map_range(
                &MemoryRegion::new(start, end),
                PhysicalAddress(pa),
                attrs,
                Constraints::empty(),
            )
            .map_err(Stage2Error::from)
    }

    /// Exact number of table pages that mapping IPAs `[start, end)` to `pa..` as `kind` would
    /// take from the pool now.
    ///
    /// # Errors
    ///
    /// [`Stage2Error::InvalidRange`] or [`Stage2Error::OutOfRange`] for a bad range.
    pub fn tables_needed_to_map(
        &self,
        start: usize,
        end: usize,
        pa: usize,
        kind: MemKind,
    ) -> Result<usize, Stage2Error> {
        self.check_range(start, end)?;
        self.tables_needed_attrs(start, end, pa, kind.attributes(self.encoding))
    }

    fn tables_needed_attrs(
        &self,
        start: usize,
        end: usize,
        pa: usize,
        attrs: Stage2Attributes,
    ) -> Result<usize, Stage2Error> {
        let delta = pa.wrapping_sub(start);
        let mut needed = 0;
        // The walk reports every entry in the range that is not a table (invalid entries and
        // leaves), clipped to the range, with its level. This mirrors aarch64-paging's
        // `map_range`: an entry already mapping the same output with the same attributes is
        // kept; an entry the range covers whole becomes a block where alignment allows; any
        // other entry becomes a table (a new one, or a split block).
        self.mapping
            .walk_range(&MemoryRegion::new(start, end), &mut |chunk, desc, level| {
                if level >= 3 {
                    return Ok(());
                }
                let size = granule_at_level(level);
                let (s, e) = (chunk.start().0, chunk.end().0);
                let entry_base = s & !(size - 1);
                let entry_pa = s.wrapping_add(delta).wrapping_sub(s - entry_base);
                let same = desc.is_valid()
                    && !desc.is_table_or_page()
                    && desc.flags() == attrs
                    && desc.output_address().0 == entry_pa;
                if !same {
                    needed += tables_for_parts(level, entry_base, &[(s, e)], delta);
                }
                Ok(())
            })?;
        Ok(needed)
    }

    /// The level and, if valid, the leaf covering `addr`.
    ///
    /// A direct walk over the descriptors (four loads at most) rather than
    /// `Mapping::walk_range`: this runs once per page of every ownership transition, and the
    /// generic range walk costs about 460 instructions per page where this takes about 30.
    /// Table pages are identity-mapped (`PoolTranslation::physical_to_virtual`), so a
    /// table descriptor's output address is where the next table can be read.
    fn lookup(&self, addr: usize) -> (usize, Option<Leaf>) {
        let (level, _, desc) = self.lookup_entry(addr);
        if desc & VALID == 0 || (level == LEAF_LEVEL && desc & TABLE_OR_PAGE == 0) {
            // Invalid, or a reserved encoding at level 3 (the hardware treats it as invalid).
            return (level, None);
        }
        let size = granule_at_level(level);
        let block_pa = (desc & DESC_ADDR_MASK) as usize & !(size - 1);
        let leaf = Leaf {
            pa: block_pa + (addr & (size - 1)),
            level,
            attrs: Stage2Attributes::from_bits_retain((desc & !DESC_ADDR_MASK) as usize),
            block_ipa: addr & !(size - 1),
            block_pa,
        };
        (level, Some(leaf))
    }

    /// The descriptor that ends the walk for `addr` (a leaf, or an invalid entry), its level
    /// and the table page it sits in.
    fn lookup_entry(&self, addr: usize) -> (usize, usize, u64) {
        let mut table = self.tree_root_pa();
        let mut level = self.tree_root_level;
        loop {
            let index = (addr >> (12 + 9 * (LEAF_LEVEL - level))) & 511;
            // SAFETY: `table` is a table page of this tree (the root, or the output address
            // of a valid table descriptor written by aarch64-paging), identity-mapped and
            // 512 descriptors long; `index` < 512. Reading a descriptor has no side effect,
            // and `&self` keeps the tree from changing meanwhile.
            let desc = unsafe { core::ptr::read_volatile((table as *const u64).add(index)) };
            if level < LEAF_LEVEL && desc & (VALID | TABLE_OR_PAGE) == VALID | TABLE_OR_PAGE {
                table = (desc & DESC_ADDR_MASK) as usize;
                level += 1;
                continue;
            }
            return (level, table, desc);
        }
    }

    /// Output addresses of the `out.len()` pages from `ipa` on (page aligned) into `out`;
    /// `Err(i)` names the first page that is not mapped.
    ///
    /// The batched form of [`translate`](Self::translate) for ownership transitions over a
    /// range: one descent per level-3 table, then consecutive descriptors are read in place,
    /// a few instructions per page.
    pub fn translate_pages(&self, ipa: usize, out: &mut [usize]) -> Result<(), usize> {
        let mut i = 0;
        while i < out.len() {
            let addr = ipa + i * PAGE_SIZE;
            if addr >= self.ipa_size {
                return Err(i);
            }
            // Descend to the level-3 table (or block) covering `addr`.
            let mut table = self.tree_root_pa();
            let mut level = self.tree_root_level;
            let desc = loop {
                let index = (addr >> (12 + 9 * (3 - level))) & 511;
                // SAFETY: as in `lookup`: an identity-mapped table page of this tree.
                let desc = unsafe { core::ptr::read_volatile((table as *const u64).add(index)) };
                if level < 3 && desc & (VALID | TABLE_OR_PAGE) == VALID | TABLE_OR_PAGE {
                    table = (desc & DESC_ADDR_MASK) as usize;
                    level += 1;
                    continue;
                }
                break desc;
            };
            if desc & VALID == 0 || (level == 3 && desc & TABLE_OR_PAGE == 0) {
                return Err(i);
            }
            if level < 3 {
                // A block: every page up to its end follows from its base.
                let size = granule_at_level(level);
                let base = (desc & DESC_ADDR_MASK) as usize & !(size - 1);
                while i < out.len() && (ipa + i * PAGE_SIZE) & !(size - 1) == addr & !(size - 1) {
                    out[i] = base + ((ipa + i * PAGE_SIZE) & (size - 1));
                    i += 1;
                }
                continue;
            }
            // A level-3 table: read its descriptors in order up to its end, or up to the
            // last page asked for (one bound per page, not two: this loop is most of a
            // guest MEM_SHARE's per-page cost).
            let first = (addr >> 12) & 511;
            let end = out.len().min(i + (512 - first));
            let mut desc = (table as *const u64).wrapping_add(first);
            while i < end {
                // SAFETY: as above; `desc` is entry `first + (i - i0)` of the table, where
                // `i0` is `i` at the loop's start, and `end - i0 <= 512 - first`.
                let d = unsafe { core::ptr::read_volatile(desc) };
                if d & (VALID | TABLE_OR_PAGE) != VALID | TABLE_OR_PAGE {
                    return Err(i);
                }
                out[i] = (d & DESC_ADDR_MASK) as usize;
                i += 1;
                desc = desc.wrapping_add(1);
            }
        }
        Ok(())
    }

    /// Translates `ipa`, or `None` if it is not mapped (or outside the IPA space).
    pub fn translate(&self, ipa: usize) -> Option<Leaf> {
        if ipa >= self.ipa_size {
            return None;
        }
        self.lookup(ipa).1
    }

    /// Calls `f` for every valid leaf that overlaps `[start, end)`, in address order.
    pub fn for_each_leaf(&self, start: usize, end: usize, mut f: impl FnMut(&Leaf)) {
        let end = end.min(self.ipa_size);
        let mut cursor = start & !(PAGE_SIZE - 1);
        while cursor < end {
            let (level, leaf) = self.lookup(cursor);
            if let Some(leaf) = &leaf {
                f(leaf);
            }
            let size = granule_at_level(level);
            cursor = (cursor & !(size - 1)).saturating_add(size);
        }
    }

    /// Removes every valid leaf overlapping `[start, end)` whole and calls `invalidate_ipa`
    /// for each; the caller owes one `invalidate_stage1_for_vmid`. Never allocates.
    fn remove_leaves(
        &mut self,
        start: usize,
        end: usize,
        tlb: &mut impl TlbMaintenance,
    ) -> Result<usize, Stage2Error> {
        let mut removed = 0;
        let mut cursor = start;
        while cursor < end {
            let (level, table, desc) = self.lookup_entry(cursor);
            if level == LEAF_LEVEL && desc & VALID == 0 {
                // Skip the run of invalid entries in this level-3 table in place.
                let mut index = (cursor >> 12) & 511;
                while cursor < end && index < 512 {
                    // SAFETY: as in `lookup_entry`; `index` < 512.
                    let d = unsafe { core::ptr::read_volatile((table as *const u64).add(index)) };
                    if d & VALID != 0 {
                        break;
                    }
                    cursor += PAGE_SIZE;
                    index += 1;
                }
                continue;
            }
            let size = granule_at_level(level);
            let base = cursor & !(size - 1);
            let is_leaf = desc & VALID != 0 && (level < LEAF_LEVEL || desc & TABLE_OR_PAGE != 0);
            if is_leaf {
                // The range is exactly one leaf, so the library invalidates that entry in
                // place: no split, no allocation, no break-before-make problem.
                self.mapping.map_range(
                    &MemoryRegion::new(base, base + size),
                    PhysicalAddress(base),
                    Stage2Attributes::empty(),
                    Constraints::empty(),
                )?;
                tlb.invalidate_ipa(self.vmid, base, level);
                removed += 1;
            }
            cursor = base.saturating_add(size);
        }
        Ok(removed)
    }

    /// Exact number of table pages [`unmap`](Self::unmap) of `[start, end)` would take from the
    /// pool now (to map back the parts of blocks that straddle the range's ends).
    ///
    /// # Errors
    ///
    /// [`Stage2Error::InvalidRange`] or [`Stage2Error::OutOfRange`] for a bad range.
    pub fn tables_needed_to_unmap(&self, start: usize, end: usize) -> Result<usize, Stage2Error> {
        self.check_range(start, end)?;
        Ok(self.plan_unmap(start, end).1)
    }

    /// The parts of straddling blocks that unmapping `[start, end)` must map again, and the
    /// table pages that takes.
    fn plan_unmap(&self, start: usize, end: usize) -> ([Option<Remnant>; 2], usize) {
        // The blocks straddling the two ends (possibly one and the same block) lose only the
        // part inside the range; the parts outside are mapped again after the break.
        let head = self.lookup(start).1.filter(|l| l.block_ipa < start);
        let tail = self
            .lookup(end - 1)
            .1
            .filter(|l| l.block_ipa + l.size() > end);
        let remnants = [
            head.map(|l| Remnant {
                start: l.block_ipa,
                end: start,
                pa: l.block_pa,
                attrs: l.attrs,
            }),
            tail.map(|l| Remnant {
                start: end,
                end: l.block_ipa + l.size(),
                pa: l.block_pa + (end - l.block_ipa),
                attrs: l.attrs,
            }),
        ];
        let delta = |l: &Leaf| l.block_pa.wrapping_sub(l.block_ipa);
        let needed = match (head, tail) {
            (Some(h), Some(t)) if h.block_ipa == t.block_ipa => {
                let parts = [(h.block_ipa, start), (end, h.block_ipa + h.size())];
                tables_for_parts(h.level, h.block_ipa, &parts, delta(&h))
            }
            _ => {
                let h = head.map_or(0, |h| {
                    tables_for_parts(h.level, h.block_ipa, &[(h.block_ipa, start)], delta(&h))
                });
                let t = tail.map_or(0, |t| {
                    tables_for_parts(
                        t.level,
                        t.block_ipa,
                        &[(end, t.block_ipa + t.size())],
                        delta(&t),
                    )
                });
                h + t
            }
        };
        (remnants, needed)
    }

    /// Unmaps exactly `[start, end)`. A block that reaches outside the range is broken (made
    /// invalid), invalidated, and its parts outside the range are mapped again, so nothing
    /// outside the range loses its mapping even on a live table. Calls `invalidate_ipa` for
    /// every removed leaf, then `invalidate_stage1_for_vmid` once. All or nothing.
    ///
    /// # Errors
    ///
    /// - [`Stage2Error::InvalidRange`] / [`Stage2Error::OutOfRange`]: bad range.
    /// - [`Stage2Error::NoMemory`]: re-mapping the parts of split blocks needs more table pages
    ///   than the pool has.
    pub fn unmap(
        &mut self,
        start: usize,
        end: usize,
        tlb: &mut impl TlbMaintenance,
    ) -> Result<(), Stage2Error> {
        self.check_range(start, end)?;
        let (remnants, needed) = self.plan_unmap(start, end);
        let free = self.pool_free_pages();
        if needed > free {
            return Err(Stage2Error::NoMemory { needed, free });
        }
        // Break: remove every leaf overlapping the range whole, then the TLB sequence.
        let removed = self.remove_leaves(start, end, tlb)?;
        if removed > 0 {
            tlb.invalidate_stage1_for_vmid(self.vmid);
        }
        // Make: map back what lay outside the range in the broken blocks. The entries are
        // invalid now and the pages were counted, so this cannot fail.
        for r in remnants.into_iter().flatten() {
            self.map_attrs(r.start, r.end, r.pa, r.attrs)?;
        }
        Ok(())
    }

    /// Unmaps every leaf that overlaps `[start, end)`, whole: a block reaching outside the
    /// range is removed entirely (its other pages must be faulted back in, which is what the
    /// host stage-2 does). Calls `invalidate_ipa` per removed leaf, then
    /// `invalidate_stage1_for_vmid` once. Never allocates. Returns the number of leaves
    /// removed.
    ///
    /// # Errors
    ///
    /// [`Stage2Error::InvalidRange`] / [`Stage2Error::OutOfRange`] for a bad range.
    pub fn unmap_covering(
        &mut self,
        start: usize,
        end: usize,
        tlb: &mut impl TlbMaintenance,
    ) -> Result<usize, Stage2Error> {
        let mut batch = self.unmap_batch(tlb);
        batch.remove_covering(start, end)
    }

    /// Starts a batch of [`unmap_covering`](Self::unmap_covering)-style removals that share one
    /// `invalidate_stage1_for_vmid`, issued when the batch is finished or dropped.
    pub fn unmap_batch<'t, T: TlbMaintenance>(&'t mut self, tlb: &'t mut T) -> UnmapBatch<'t, T> {
        UnmapBatch {
            table: self,
            tlb,
            removed: 0,
        }
    }

    /// Counts valid leaves by size in each of `ranges` (which should not overlap; a leaf
    /// reaching into two ranges counts in both), and the table pages of the whole tree.
    pub fn stats(&self, ranges: &[(usize, usize)]) -> BlockStats {
        let mut stats = BlockStats::default();
        for &(start, end) in ranges {
            self.for_each_leaf(start, end, |leaf| match leaf.level {
                1 => stats.gib += 1,
                2 => stats.mib2 += 1,
                _ => stats.kib4 += 1,
            });
        }
        stats.tables = self.table_pages();
        stats
    }

    /// [`stats`](Self::stats) over the whole IPA space.
    pub fn stats_all(&self) -> BlockStats {
        self.stats(&[(0, self.ipa_size)])
    }

    /// Number of table pages reachable from the root, the root included.
    pub fn table_pages(&self) -> usize {
        let mut n = 0;
        self.for_each_table(|_, _, _| n += 1);
        n
    }

    /// Calls `f(pa, level, entries)` for every table page, root first, depth first (with
    /// concatenated roots: the directory at level `root_level - 1` first, then each of them).
    pub fn for_each_table(&self, mut f: impl FnMut(usize, usize, &[u64; ENTRIES])) {
        self.visit_table(self.tree_root_pa(), self.tree_root_level, &mut f);
    }

    fn visit_table(
        &self,
        pa: usize,
        level: usize,
        f: &mut impl FnMut(usize, usize, &[u64; ENTRIES]),
    ) {
        // SAFETY: `pa` is the root or was read from a table descriptor of this tree; every table
        // page came from our pool, is identity-mapped, and is not written while we hold `&self`
        // (aarch64-paging changes tables only through `&mut Mapping`).
        let entries = unsafe { &*(pa as *const [u64; ENTRIES]) };
        f(pa, level, entries);
        if level >= 3 {
            return;
        }
        for &d in entries {
            if d & 0b11 == 0b11 {
                self.visit_table((d & DESC_ADDR_MASK) as usize, level + 1, f);
            }
        }
    }

    /// One bounded piece of a teardown's walk: visits the IPA space from `*cursor` on, in
    /// address order, making at most `max_lookups` descents from the root and reporting at
    /// most `max_pages` pages, and leaves `*cursor` where the next piece starts (possibly
    /// inside a block, whose remaining pages the next piece reports).
    ///
    /// `page(pa)` is called for every table page the walk enters for the first time (a
    /// table is entered first at the start of the range it covers: the cursor only moves
    /// forward, from one entry's end to the next) and for every page a leaf maps. The root
    /// page itself is not reported. The table is only read: the pages `page` is given stay
    /// readable at their addresses for the walk (the caller keeps them EL2's).
    pub fn walk_for_teardown(
        &self,
        cursor: &mut usize,
        max_lookups: usize,
        max_pages: usize,
        mut page: impl FnMut(usize),
    ) -> TeardownWalk {
        let mut walk = TeardownWalk::default();
        // A descent may enter up to three tables before it reaches its leaf: stop while the
        // budget still holds them, so `pages` never exceeds `max_pages`.
        let deepest = LEAF_LEVEL - self.tree_root_level;
        while *cursor < self.ipa_size
            && walk.lookups < max_lookups
            && walk.pages + deepest < max_pages
        {
            let addr = *cursor;
            let mut table = self.tree_root_pa();
            let mut level = self.tree_root_level;
            let desc = loop {
                let index = (addr >> (12 + 9 * (LEAF_LEVEL - level))) & 511;
                // SAFETY: as in `lookup_entry`: `table` is a table page of this tree,
                // identity-mapped and 512 descriptors long, and `index` < 512.
                let desc = unsafe { core::ptr::read_volatile((table as *const u64).add(index)) };
                if level < LEAF_LEVEL && desc & (VALID | TABLE_OR_PAGE) == VALID | TABLE_OR_PAGE {
                    table = (desc & DESC_ADDR_MASK) as usize;
                    if addr & (granule_at_level(level) - 1) == 0 {
                        page(table);
                        walk.pages += 1;
                    }
                    level += 1;
                    continue;
                }
                break desc;
            };
            walk.lookups += 1;
            let size = granule_at_level(level);
            let end = (addr & !(size - 1)).saturating_add(size);
            let is_leaf = desc & VALID != 0 && (level < LEAF_LEVEL || desc & TABLE_OR_PAGE != 0);
            if !is_leaf {
                *cursor = end;
                continue;
            }
            let block_pa = (desc & DESC_ADDR_MASK) as usize & !(size - 1);
            let n = ((end - addr) / PAGE_SIZE).min(max_pages - walk.pages);
            for i in 0..n {
                page(block_pa + (addr & (size - 1)) + i * PAGE_SIZE);
            }
            walk.pages += n;
            *cursor = addr + n * PAGE_SIZE;
        }
        walk.finished = *cursor >= self.ipa_size;
        walk
    }

    /// Takes up to `max` free pages out of the table's pool for good, handing each to `f`
    /// (a teardown moves them to pending reclaim).
    pub fn take_free_pool_pages(&self, max: usize, mut f: impl FnMut(usize)) {
        self.mapping.translation().with_pool(|p| {
            for _ in 0..max {
                let Some(pa) = p.remove_page() else { return };
                f(pa);
            }
        });
    }

    /// Hands every page of the table's pool (tables in use and free pages alike) to `f`, then
    /// drops the table. Used at VM teardown. Refused (the table is given back) while active.
    pub fn release_pages(self, mut f: impl FnMut(usize)) -> Result<(), Self> {
        if self.active() {
            return Err(self);
        }
        self.for_each_table(|pa, _, _| f(pa));
        self.mapping.translation().with_pool(|p| {
            while let Some(pa) = p.remove_page() {
                f(pa);
            }
        });
        // Dropping frees the tables into the (now empty) pool, which is dropped with it.
        drop(self);
        Ok(())
    }
}

/// What one [`Stage2Table::walk_for_teardown`] did.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct TeardownWalk {
    /// Descents from the root.
    pub lookups: usize,
    /// Pages reported (tables entered and pages mapped).
    pub pages: usize,
    /// The cursor reached the end of the IPA space.
    pub finished: bool,
}

/// Removals from one table sharing one stage-1 invalidation; see
/// [`Stage2Table::unmap_batch`]. Dropping it finishes it.
pub struct UnmapBatch<'t, T: TlbMaintenance> {
    table: &'t mut Stage2Table,
    tlb: &'t mut T,
    removed: usize,
}

impl<T: TlbMaintenance> UnmapBatch<'_, T> {
    /// Removes every leaf overlapping `[start, end)` whole (calling `invalidate_ipa` for each).
    /// Returns the number removed.
    ///
    /// # Errors
    ///
    /// [`Stage2Error::InvalidRange`] / [`Stage2Error::OutOfRange`] for a bad range.
    pub fn remove_covering(&mut self, start: usize, end: usize) -> Result<usize, Stage2Error> {
        self.table.check_range(start, end)?;
        let n = self.table.remove_leaves(start, end, self.tlb)?;
        self.removed += n;
        Ok(n)
    }

    /// Issues the stage-1 invalidation if anything was removed.
    pub fn finish(self) {}
}

impl<T: TlbMaintenance> Drop for UnmapBatch<'_, T> {
    fn drop(&mut self) {
        if self.removed > 0 {
            self.tlb.invalidate_stage1_for_vmid(self.table.vmid);
        }
    }
}

#[cfg(test)]
mod tests;
