//! The EL2 trap controls a protected guest runs under, as functions of the CPU's features
//! ([`CpuFeatures`]); EL2 writes them on every guest entry and puts the host's back on exit.
//!
//! Compared with pKVM (`arch/arm64/kvm/hyp/nvhe/pkvm.c`: `pvm_init_traps_hcr`,
//! `pvm_init_traps_mdcr`, and `HCR_GUEST_FLAGS` in `kvm_arm.h`). Bit positions: Arm ARM D19
//! (HCR_EL2, MDCR_EL2, CPTR_EL2 with HCR_EL2.E2H = 0, HSTR_EL2, ICH_HCR_EL2).

use crate::id_regs::CpuFeatures;

pub mod hcr {
    pub const VM: u64 = 1 << 0;
    pub const SWIO: u64 = 1 << 1;
    pub const PTW: u64 = 1 << 2;
    pub const FMO: u64 = 1 << 3;
    pub const IMO: u64 = 1 << 4;
    pub const AMO: u64 = 1 << 5;
    pub const VSE: u64 = 1 << 8;
    pub const FB: u64 = 1 << 9;
    pub const BSU_IS: u64 = 1 << 10;
    pub const TID1: u64 = 1 << 16;
    pub const TID3: u64 = 1 << 18;
    pub const TSC: u64 = 1 << 19;
    pub const TIDCP: u64 = 1 << 20;
    pub const TACR: u64 = 1 << 21;
    pub const TSW: u64 = 1 << 22;
    pub const RW: u64 = 1 << 31;
    pub const TLOR: u64 = 1 << 35;
    pub const TERR: u64 = 1 << 36;
    pub const TEA: u64 = 1 << 37;
    pub const APK: u64 = 1 << 40;
    pub const API: u64 = 1 << 41;
    pub const FWB: u64 = 1 << 46;
}

pub mod mdcr {
    pub const HPMN_MASK: u64 = 0x1f;
    pub const TPMCR: u64 = 1 << 5;
    pub const TPM: u64 = 1 << 6;
    pub const TDA: u64 = 1 << 9;
    pub const TDOSA: u64 = 1 << 10;
    pub const TDRA: u64 = 1 << 11;
    pub const TPMS: u64 = 1 << 14;
    pub const HPMD: u64 = 1 << 17;
    pub const TTRF: u64 = 1 << 19;
    pub const HCCD: u64 = 1 << 23;
}

pub mod cptr {
    /// No trap enabled: TCPAC, TAM, TTA, TSM, TFP and TZ clear; bits 13, 9 and 7:0 RES1.
    pub const NO_TRAPS: u64 = 0x22ff;
    pub const TZ: u64 = 1 << 8;
    pub const TSM: u64 = 1 << 12;
    pub const TTA: u64 = 1 << 20;
    pub const TAM: u64 = 1 << 30;
}

/// HCR_EL2 for a guest, on top of the host's `host_hcr` (VM, RW, TSC and the
/// pointer-authentication enables):
/// - every physical interrupt (IMO, FMO, AMO) goes to EL2, so the host gets its CPU back;
/// - FB and BSU = inner shareable: the guest's TLB maintenance and barriers reach every
///   CPU it may later run on; SWIO and TSW: set/way cache maintenance is never the guest's
///   to do on physical caches (TSW traps it, the payload answers with an UNDEF);
/// - PTW: a stage-1 walk that lands on stage-2 Device memory faults;
/// - TID1, TID3: REVIDR/AIDR and the ID registers trap and EL2 answers with sanitised
///   values (`id_regs::sanitise`); TIDCP, TACR: IMPLEMENTATION DEFINED registers and
///   ACTLR_EL1 trap, so a guest can never program an auxiliary control that outlives its
///   run (ACTLR_EL1 is not part of the switched state);
/// - TLOR (where FEAT_LOR exists): the LORegion registers trap;
/// - TERR, TEA (where FEAT_RAS exists): error records trap and synchronous external aborts
///   come to EL2;
/// - FWB (where FEAT_S2FWB exists): guests' stage-2 tables then use the forced Write-Back
///   encoding (`stage2::AttrEncoding`, chosen by `Stage2Config::guest_fwb` from the same
///   feature bit), so every guest access to its memory is cacheable whatever its stage 1
///   says and VM_DONATE need not clean the pages to PoC. The host's HCR never has it.
pub const fn guest_hcr(host_hcr: u64, f: &CpuFeatures) -> u64 {
    let mut v = host_hcr
        | hcr::SWIO
        | hcr::PTW
        | hcr::FMO
        | hcr::IMO
        | hcr::AMO
        | hcr::FB
        | hcr::BSU_IS
        | hcr::TID1
        | hcr::TID3
        | hcr::TIDCP
        | hcr::TACR
        | hcr::TSW;
    if f.lor {
        v |= hcr::TLOR;
    }
    if f.ras {
        v |= hcr::TERR | hcr::TEA;
    }
    if f.fwb {
        v |= hcr::FWB;
    }
    v
}

/// HSTR_EL2 for a guest: T15 traps AArch32 EL0 accesses to the IMPLEMENTATION DEFINED
/// CP15 c15 registers (the AArch32 side of TIDCP). The host gets 0.
pub const HSTR_GUEST: u64 = 1 << 15;

/// ICH_HCR_EL2 for a guest: TC, TALL0 and TALL1 trap every GIC CPU-interface register a
/// guest could reach (with IMO/FMO set it would reach the virtual ICV_* ones, whose state
/// lives in ICH_VMCR_EL2, which is not switched): the guest has no GIC, and no
/// ICH_VMCR_EL2 value can pass from one guest to the next. En stays clear.
pub const ICH_HCR_GUEST: u64 = (1 << 10) | (1 << 11) | (1 << 12);

/// MDCR_EL2 for a guest with the host's `hpmn` (the counters that belong to EL1):
/// PMU (TPM, TPMCR), debug (TDA, TDOSA, TDRA), SPE (TPMS) and trace filter (TTRF)
/// registers trap, so a guest neither reads the host's counters, breakpoints or trace
/// settings nor changes them; and no counter of the host's counts at EL2 while it runs
/// (HPMD for the event counters with FEAT_PMUv3p1, HCCD for the cycle counter with
/// FEAT_PMUv3p5; EL2 also stops every counter for the run, see `el2_regs`).
pub const fn guest_mdcr(hpmn: u64, f: &CpuFeatures) -> u64 {
    let mut v =
        (hpmn & mdcr::HPMN_MASK) | mdcr::TPM | mdcr::TPMCR | mdcr::TDA | mdcr::TDOSA | mdcr::TDRA;
    if f.spe {
        v |= mdcr::TPMS;
    }
    if f.trace_filter {
        v |= mdcr::TTRF;
    }
    if f.pmu_v3p1 {
        v |= mdcr::HPMD;
    }
    if f.pmu_v3p5 {
        v |= mdcr::HCCD;
    }
    v
}

/// CPTR_EL2 for a guest: SVE (TZ) and SME (TSM) trap (their state is not switched), trace
/// registers (TTA) and activity monitors (TAM) trap. FP/SIMD does not (V0-V31 are switched).
pub const fn guest_cptr(f: &CpuFeatures) -> u64 {
    let mut v = cptr::NO_TRAPS;
    if f.sve {
        v |= cptr::TZ;
    }
    if f.sme {
        v |= cptr::TSM;
    }
    if f.trace_sysregs {
        v |= cptr::TTA;
    }
    if f.amu {
        v |= cptr::TAM;
    }
    v
}

/// Whether an instruction or data abort syndrome (ESR_EL2, EC 0x20/0x24) is a
/// synchronous external abort: FSC 0x10 (not on a walk), 0x13-0x17 (on a walk, levels -1
/// to 3), 0x18 (parity/ECC) or 0x1c-0x1f (parity/ECC on a walk). HCR_EL2.TEA sends those
/// to EL2; they are the guest's memory system failing, not a fault the host can resolve,
/// so EL2 gives them back to the guest (as KVM's `kvm_vcpu_abt_issea` and
/// `kvm_inject_vabt` do).
pub const fn is_synchronous_external_abort(esr: u64) -> bool {
    matches!(esr & 0x3f, 0x10 | 0x13..=0x18 | 0x1c..=0x1f)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: CpuFeatures = CpuFeatures {
        sve: true,
        sme: true,
        ras: true,
        amu: true,
        gic_sysregs: true,
        lor: true,
        pmu: true,
        pmu_v3p1: true,
        pmu_v3p5: true,
        spe: true,
        trace_sysregs: true,
        trace_filter: true,
        fwb: true,
    };
    const NONE: CpuFeatures = CpuFeatures {
        sve: false,
        sme: false,
        ras: false,
        amu: false,
        gic_sysregs: false,
        lor: false,
        pmu: false,
        pmu_v3p1: false,
        pmu_v3p5: false,
        spe: false,
        trace_sysregs: false,
        trace_filter: false,
        fwb: false,
    };

    #[test]
    fn guest_hcr_traps_id_impdef_actlr_and_set_way_everywhere() {
        let host = hcr::VM | hcr::RW | hcr::TSC;
        for f in [ALL, NONE] {
            let v = guest_hcr(host, &f);
            for (name, bit) in [
                ("TACR", hcr::TACR),
                ("TIDCP", hcr::TIDCP),
                ("TID1", hcr::TID1),
                ("TID3", hcr::TID3),
                ("TSW", hcr::TSW),
                ("IMO", hcr::IMO),
                ("AMO", hcr::AMO),
                ("VM", hcr::VM),
                ("TSC", hcr::TSC),
            ] {
                assert_ne!(v & bit, 0, "{name}");
            }
        }
    }

    #[test]
    fn guest_hcr_sets_feature_bits_only_where_the_feature_exists() {
        let v = guest_hcr(0, &ALL);
        assert_eq!(
            v & (hcr::TLOR | hcr::TERR | hcr::TEA | hcr::FWB),
            hcr::TLOR | hcr::TERR | hcr::TEA | hcr::FWB
        );
        let v = guest_hcr(0, &NONE);
        assert_eq!(
            v & (hcr::TLOR | hcr::TERR | hcr::TEA),
            0,
            "RES0 without LOR/RAS"
        );
        assert_eq!(v & hcr::FWB, 0, "RES0 without FEAT_S2FWB");
    }

    #[test]
    fn guest_mdcr_traps_pmu_debug_spe_trace_and_stops_el2_counting() {
        let v = guest_mdcr(6, &ALL);
        assert_eq!(v & mdcr::HPMN_MASK, 6);
        for (name, bit) in [
            ("TPM", mdcr::TPM),
            ("TPMCR", mdcr::TPMCR),
            ("TDA", mdcr::TDA),
            ("TDOSA", mdcr::TDOSA),
            ("TDRA", mdcr::TDRA),
            ("TPMS", mdcr::TPMS),
            ("TTRF", mdcr::TTRF),
            ("HPMD", mdcr::HPMD),
            ("HCCD", mdcr::HCCD),
        ] {
            assert_ne!(v & bit, 0, "{name}");
        }
        let v = guest_mdcr(6, &NONE);
        assert_eq!(v & (mdcr::TPMS | mdcr::TTRF | mdcr::HPMD | mdcr::HCCD), 0);
        assert_ne!(v & mdcr::TPM, 0);
    }

    #[test]
    fn guest_cptr_traps_sve_sme_trace_and_amu_but_not_fp() {
        let v = guest_cptr(&ALL);
        assert_eq!(v & cptr::TZ, cptr::TZ);
        assert_eq!(v & cptr::TSM, cptr::TSM);
        assert_eq!(v & cptr::TTA, cptr::TTA);
        assert_eq!(v & cptr::TAM, cptr::TAM);
        assert_eq!(v & (1 << 10), 0, "TFP");
        assert_eq!(guest_cptr(&NONE), cptr::NO_TRAPS);
    }

    #[test]
    fn guest_gic_interface_traps_cover_common_group0_and_group1() {
        assert_eq!(ICH_HCR_GUEST & 1, 0, "En clear");
        assert_eq!(ICH_HCR_GUEST, 0x1c00);
        assert_eq!(HSTR_GUEST, 0x8000);
    }

    #[test]
    fn external_aborts_are_told_from_translation_and_permission_faults() {
        let dabt = 0x24 << 26;
        for fsc in [0x10, 0x13, 0x14, 0x17, 0x18, 0x1c, 0x1f] {
            assert!(is_synchronous_external_abort(dabt | fsc), "{fsc:#x}");
        }
        for fsc in [0x04, 0x07, 0x0b, 0x0f, 0x21, 0x11, 0x12] {
            assert!(!is_synchronous_external_abort(dabt | fsc), "{fsc:#x}");
        }
    }
}
