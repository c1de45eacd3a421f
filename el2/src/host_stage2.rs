//! The host's stage-2: an identity map of the host's RAM (all RAM minus EL2's carve-outs)
//! and of the MMIO the DTB describes, VMID 0, in the largest blocks that fit.
//!
//! Faults: the host may fault on memory it owns when a block was unmapped so that it could
//! be split (pKVM's lazy approach; see `host_abort`): `map_owned_page` maps it back.

use core::ops::Range;
use spin::{Mutex, Once};
use stage2::pgtable::{BlockStats, MemKind, Stage2Config, Stage2Table};
use stage2::pool::PagePool;

use crate::memory_plan::RangeList;

pub struct HostStage2 {
    table: Stage2Table,
    /// RAM the host owns (RAM banks minus carve-outs): the ownership record's view at boot.
    host_ram: RangeList,
}

static HOST_STAGE2: Once<Mutex<HostStage2>> = Once::new();
static REGS: Once<crate::el2_regs::HostStage2Regs> = Once::new();

#[derive(Debug)]
pub struct BuildError(pub &'static str, pub stage2::pgtable::Stage2Error);

impl core::fmt::Display for BuildError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        write!(f, "host stage-2: mapping {} failed: {}", self.0, self.1)
    }
}

/// Builds the host stage-2 from `host_ram` (normal memory) and `mmio` (device memory).
pub fn build(
    pool: PagePool,
    config: Stage2Config,
    host_ram: RangeList,
    mmio: impl Iterator<Item = Range<u64>>,
) -> Result<BlockStats, BuildError> {
    let mut table = Stage2Table::new(pool, &config);
    for r in host_ram.iter() {
        table
            .map_identity(r.start as usize, r.end as usize, MemKind::Normal)
            .map_err(|e| BuildError("RAM", e))?;
    }
    for r in mmio {
        table
            .map_identity(r.start as usize, r.end as usize, MemKind::Device)
            .map_err(|e| BuildError("MMIO", e))?;
    }
    let stats = table.stats_all();
    table.mark_active();
    REGS.call_once(|| crate::el2_regs::HostStage2Regs {
        vtcr: config.vtcr,
        vttbr: table.root_pa() as u64,
    });
    HOST_STAGE2.call_once(|| Mutex::new(HostStage2 { table, host_ram }));
    Ok(stats)
}

/// VTCR_EL2 and VTTBR_EL2 (VMID 0) for every CPU; `None` before `build`.
pub fn regs() -> Option<crate::el2_regs::HostStage2Regs> {
    REGS.get().copied()
}

/// Whether the host owns the page at `ipa` (host stage-2 is an identity map: IPA == PA).
pub fn host_owns(ipa: u64) -> bool {
    HOST_STAGE2.get().is_some_and(|s2| s2.lock().host_ram.contains(ipa))
}

/// Maps back the host-owned page at `ipa` after a fault; false if the host does not own it
/// (the caller injects an abort) or it could not be mapped.
pub fn map_owned_page(ipa: u64) -> bool {
    let Some(s2) = HOST_STAGE2.get() else { return false };
    let mut s2 = s2.lock();
    if !s2.host_ram.contains(ipa) {
        return false;
    }
    let page = (ipa & !0xfff) as usize;
    s2.table.map_identity(page, page + 0x1000, MemKind::Normal).is_ok()
}
