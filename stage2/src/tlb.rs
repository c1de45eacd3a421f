//! TLB maintenance after a stage-2 mapping is removed, behind a trait so that the sequence
//! can be recorded and checked on the development machine.
//!
//! The real implementation lives in the EL2 binary. It must, for the VMID it is given (loaded
//! in `VTTBR_EL2` while the TLBIs run), follow the sequence that platform-facts.md checked on
//! QEMU and pKVM uses on hardware:
//!
//! ```text
//! dsb ishst                       // descriptor writes visible before the first TLBI
//! tlbi ipas2e1is, <ipa >> 12>     // once per removed leaf (invalidate_ipa)
//! dsb ish
//! tlbi vmalle1is                  // combined stage-1+2 entries are tagged by VA, not IPA
//! dsb ish
//! isb                             // (invalidate_stage1_for_vmid)
//! ```
//!
//! Callers in this crate call [`TlbMaintenance::invalidate_ipa`] for every leaf they removed,
//! then [`TlbMaintenance::invalidate_stage1_for_vmid`] once, before they return.

/// Stage-2 TLB maintenance for one VMID at a time.
pub trait TlbMaintenance {
    /// Invalidates the stage-2 entries (including walk-cache entries) for the leaf at `ipa`
    /// that was mapped at `level` (the level is a TTL hint; 1 = 1 GiB block, 2 = 2 MiB block,
    /// 3 = 4 KiB page) in VMID `vmid`. Must order earlier descriptor writes before the TLBI.
    fn invalidate_ipa(&mut self, vmid: u16, ipa: usize, level: usize);

    /// Invalidates all stage-1 entries of VMID `vmid` (`tlbi vmalle1is`), completing every
    /// earlier `invalidate_ipa` first (`dsb ish`) and finishing with `dsb ish; isb`.
    fn invalidate_stage1_for_vmid(&mut self, vmid: u16);

    /// Invalidates every stage-1 and stage-2 entry of VMID `vmid` (`tlbi vmalls12e1is`,
    /// then `dsb ish; isb`). Used when a VM's whole stage-2 is dropped, so that no walk-cache
    /// entry still points into its freed tables and the VMID can be reused.
    fn invalidate_vmid(&mut self, vmid: u16);
}

/// One recorded TLB operation.
#[cfg(test)]
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum TlbOp {
    /// `invalidate_ipa(vmid, ipa, level)`.
    Ipa { vmid: u16, ipa: usize, level: usize },
    /// `invalidate_stage1_for_vmid(vmid)`.
    Stage1 { vmid: u16 },
    /// `invalidate_vmid(vmid)`.
    Vmid { vmid: u16 },
}

/// A [`TlbMaintenance`] that records what it was asked to do.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct RecordingTlb {
    pub ops: std::vec::Vec<TlbOp>,
}

#[cfg(test)]
extern crate std;

#[cfg(test)]
impl RecordingTlb {
    /// Checks that the recorded operations are well-formed sequences: for each VMID, every
    /// `Ipa` is followed (later) by a `Stage1` for that VMID, and the log ends with no pending
    /// `Ipa` left unfinished.
    pub fn assert_complete(&self) {
        let mut pending: std::vec::Vec<u16> = std::vec::Vec::new();
        for op in &self.ops {
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
            "stage-2 invalidation without a following stage-1 invalidation for VMIDs {pending:?}: {:?}",
            self.ops
        );
    }

    /// Returns true if some recorded `Ipa` for `vmid` covers `addr` at its level.
    pub fn invalidated(&self, vmid: u16, addr: usize) -> bool {
        self.ops.iter().any(|op| match *op {
            TlbOp::Ipa {
                vmid: v,
                ipa,
                level,
            } => {
                let size = crate::pool::granule_at_level(level);
                v == vmid && addr & !(size - 1) == ipa & !(size - 1)
            }
            TlbOp::Vmid { vmid: v } => v == vmid,
            TlbOp::Stage1 { .. } => false,
        })
    }
}

#[cfg(test)]
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
