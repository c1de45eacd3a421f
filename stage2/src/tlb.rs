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

/// Where VTTBR_EL2 keeps the VMID (Arm ARM D23.2, VTTBR_EL2.VMID, bits [63:48]; with 8-bit
/// VMIDs bits [55:48] and the rest RES0).
pub const VTTBR_VMID_SHIFT: u32 = 48;
const VTTBR_VMID_MASK: u64 = 0xffff << VTTBR_VMID_SHIFT;

/// `vttbr` with its VMID field replaced by `vmid`: what VTTBR_EL2 must hold while TLBIs of
/// the EL1&0 regime run for that VMID (they act on the current VMID, Arm ARM D8.13.3). The
/// old VMID must be cleared, not OR-ed over: from a guest's context the register holds the
/// guest's VMID, and `saved | vmid << 48` would name neither.
pub const fn vttbr_with_vmid(vttbr: u64, vmid: u16) -> u64 {
    (vttbr & !VTTBR_VMID_MASK) | ((vmid as u64) << VTTBR_VMID_SHIFT)
}

/// The operand of `tlbi ipas2e1is` for the leaf at `ipa` mapped at `level` (Arm ARM C5.5,
/// TLBI IPAS2E1IS): IPA[51:12] in bits [39:0], and with FEAT_TTL (`ttl`) the level hint in
/// TTL, bits [47:44] = 0b01 (4 KiB granule) : level. A hint the architecture reserves (level
/// 0 with a 4 KiB granule and no FEAT_LPA2) or any level outside 1..=3 is left out (TTL = 0:
/// "no information"), never guessed: a wrong hint may leave the entry in the TLB.
pub const fn ipas2_operand(ipa: usize, level: usize, ttl: bool) -> u64 {
    let address = ((ipa as u64) >> 12) & ((1 << 40) - 1);
    if ttl && level >= 1 && level <= 3 {
        address | ((0b0100 | level as u64) << 44)
    } else {
        address
    }
}

/// FEAT_TTL (ID_AA64MMFR2_EL1.TTL, bits [51:48], non-zero): TLBI by address takes a level
/// hint.
pub const fn has_feat_ttl(id_aa64mmfr2: u64) -> bool {
    (id_aa64mmfr2 >> 48) & 0xf != 0
}

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

/// One translation a model TLB holds: VMID `vmid` translates `[ipa, ipa + size)` to `pa`
/// with descriptor attributes `attrs`. `combined`: a stage-1+2 entry (tagged by VA; the
/// model's stage 1 is the identity, so VA = IPA); otherwise a stage-2-only or walk-cache
/// entry.
#[cfg(test)]
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
pub struct Cached {
    pub vmid: u16,
    pub ipa: usize,
    pub size: usize,
    pub pa: usize,
    pub attrs: u64,
    pub combined: bool,
}

/// A [`TlbMaintenance`] that records what it was asked to do and models a VMID-tagged TLB
/// with the architecture's rules (Arm ARM D8.13), which QEMU does not have:
/// - `invalidate_ipa` (TLBI IPAS2E1IS) removes the stage-2 entries of that VMID that hold the
///   IPA, at the hinted level (FEAT_TTL), and no combined entry;
/// - `invalidate_stage1_for_vmid` (TLBI VMALLE1IS) removes that VMID's combined entries,
///   and no stage-2 entry. Another CPU may walk meanwhile: every stage-2 entry still cached
///   refills a combined one (so the IPA invalidations must come first);
/// - `invalidate_vmid` (TLBI VMALLS12E1IS) removes every entry of that VMID.
///
/// The ownership tests [`fill`](Self::fill) it with every leaf before a call (each may
/// have been used) and after the call require each entry still cached to be a leaf of the
/// table now: an entry that a returned call should have removed is a CPU still reaching a
/// page it lost.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct RecordingTlb {
    pub ops: std::vec::Vec<TlbOp>,
    pub cached: std::collections::HashSet<Cached>,
}

#[cfg(test)]
extern crate std;

#[cfg(test)]
impl RecordingTlb {
    /// VMID `vmid` used the leaf `[ipa, ipa + size) -> pa`: a stage-2 and a combined entry.
    pub fn fill(&mut self, vmid: u16, ipa: usize, size: usize, pa: usize, attrs: u64) {
        for combined in [false, true] {
            self.cached.insert(Cached {
                vmid,
                ipa,
                size,
                pa,
                attrs,
                combined,
            });
        }
    }

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
        let size = crate::pool::granule_at_level(level);
        self.cached.retain(|c| {
            c.combined
                || c.vmid != vmid
                || c.size != size
                || !(c.ipa..c.ipa + c.size).contains(&ipa)
        });
    }

    fn invalidate_stage1_for_vmid(&mut self, vmid: u16) {
        self.ops.push(TlbOp::Stage1 { vmid });
        self.cached.retain(|c| !c.combined || c.vmid != vmid);
        let refilled: std::vec::Vec<Cached> = self
            .cached
            .iter()
            .filter(|c| c.vmid == vmid)
            .map(|c| Cached {
                combined: true,
                ..*c
            })
            .collect();
        self.cached.extend(refilled);
    }

    fn invalidate_vmid(&mut self, vmid: u16) {
        self.ops.push(TlbOp::Vmid { vmid });
        self.cached.retain(|c| c.vmid != vmid);
    }
}

#[cfg(test)]
mod encoding_tests {
    use super::*;

    #[test]
    fn the_vmid_replaces_the_one_already_in_vttbr() {
        let guest_vttbr = (7u64 << 48) | 0x4123_4000;
        assert_eq!(vttbr_with_vmid(guest_vttbr, 0), 0x4123_4000, "host VMID 0");
        assert_eq!(vttbr_with_vmid(guest_vttbr, 2), (2 << 48) | 0x4123_4000);
        assert_eq!(
            vttbr_with_vmid(0x4123_4001, 0xffff),
            (0xffff << 48) | 0x4123_4001
        );
        assert_eq!(
            vttbr_with_vmid(u64::MAX, 0),
            (1 << 48) - 1,
            "BADDR and CnP kept"
        );
    }

    #[test]
    fn the_ipa_operand_is_the_page_number_with_a_level_hint_only_where_feat_ttl_has_one() {
        assert_eq!(ipas2_operand(0x4800_5123, 3, false), 0x48005);
        assert_eq!(ipas2_operand(0x4800_5000, 3, true), 0x48005 | 0b0111 << 44);
        assert_eq!(ipas2_operand(0x4820_0000, 2, true), 0x48200 | 0b0110 << 44);
        assert_eq!(ipas2_operand(0x8000_0000, 1, true), 0x80000 | 0b0101 << 44);
        assert_eq!(
            ipas2_operand(0x8000_0000, 0, true),
            0x80000,
            "level 0 is reserved"
        );
        assert_eq!(ipas2_operand(0x8000_0000, 4, true), 0x80000);
        // IPA[51:12] fills bits [39:0]; nothing spills into TTL or above.
        assert_eq!(ipas2_operand(usize::MAX, 3, false), (1 << 40) - 1);
        assert!(
            has_feat_ttl(1 << 48) && !has_feat_ttl(0xffff_ffff_ffff) && has_feat_ttl(0x2 << 48)
        );
    }
}
