//! The CPU's ID registers: decoding the feature fields EL2 acts on, and the sanitised
//! values a protected guest reads instead of the real ones (HCR_EL2.TID3 traps its reads,
//! EL2 answers with [`guest_id_register`]).
//!
//! Pure logic, tested on the development machine. Field positions are those of the Arm
//! ARM (DDI 0487), section D19 "AArch64 System Register Descriptions"; every ID field is a
//! 4-bit unsigned value unless said otherwise.
//!
//! The guest sees only what it is given: FP/AdvSIMD, the instructions EL1/EL0 can run
//! without EL2 help, pointer authentication (its keys are switched), stage-1 MMU features.
//! It sees no SVE, SME, PMU, SPE, trace, AMU, MTE, RAS, LOR, GIC system registers, MPAM,
//! EL2 or EL3, and an IPA (PARange) no larger than its VM's: the payload traps every one of
//! those (CPTR_EL2, MDCR_EL2, HCR_EL2, ICH_HCR_EL2), so a guest that believed the real
//! registers would take an UNDEF where it expected a feature.

/// A 4-bit ID field at `shift`.
pub const fn field(value: u64, shift: u32) -> u64 {
    (value >> shift) & 0xf
}

/// `value` with the 4-bit field at `shift` replaced by `new`.
const fn with_field(value: u64, shift: u32, new: u64) -> u64 {
    (value & !(0xf << shift)) | ((new & 0xf) << shift)
}

/// The fields (by shift) of `value` that are kept; every other field reads as zero.
const fn keep_fields(value: u64, shifts: &[u32]) -> u64 {
    let mut out = 0;
    let mut i = 0;
    while i < shifts.len() {
        out |= value & (0xf << shifts[i]);
        i += 1;
    }
    out
}

/// ID_AA64ISAR1_EL1 fields APA [7:4], API [11:8], GPA [27:24], GPI [31:28] and
/// ID_AA64ISAR2_EL1 fields GPA3 [11:8], APA3 [15:12]: any non-zero one means the CPU has
/// FEAT_PAuth (address and/or generic authentication, QARMA5, QARMA3 or IMPDEF).
pub const fn has_pointer_auth(isar1: u64, isar2: u64) -> bool {
    const ISAR1_PAUTH: u64 = (0xff << 4) | (0xff << 24);
    const ISAR2_PAUTH: u64 = 0xff << 8;
    isar1 & ISAR1_PAUTH != 0 || isar2 & ISAR2_PAUTH != 0
}

/// What EL2 needs to know about the CPU to set up a guest's traps (decoded once from the
/// ID registers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuFeatures {
    pub sve: bool,
    pub sme: bool,
    pub ras: bool,
    pub amu: bool,
    pub gic_sysregs: bool,
    pub lor: bool,
    /// FEAT_PMUv3 (any version, IMPDEF excluded).
    pub pmu: bool,
    /// FEAT_PMUv3p1: MDCR_EL2.HPMD exists.
    pub pmu_v3p1: bool,
    /// FEAT_PMUv3p5: MDCR_EL2.HCCD exists.
    pub pmu_v3p5: bool,
    /// FEAT_SPE: MDCR_EL2.TPMS exists.
    pub spe: bool,
    /// System-register trace unit (ETM): CPTR_EL2.TTA traps it.
    pub trace_sysregs: bool,
    /// FEAT_TRF: TRFCR_EL1 and MDCR_EL2.TTRF exist.
    pub trace_filter: bool,
    /// FEAT_S2FWB.
    pub fwb: bool,
}

/// The ID registers [`CpuFeatures::decode`] reads.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdRegs {
    pub pfr0: u64,
    pub pfr1: u64,
    pub dfr0: u64,
    pub mmfr1: u64,
    pub mmfr2: u64,
}

/// ID_AA64DFR0_EL1.PMUVer values.
const PMUVER_V3P1: u64 = 0b0100;
const PMUVER_V3P5: u64 = 0b0110;
const PMUVER_IMPDEF: u64 = 0b1111;

impl CpuFeatures {
    pub const fn decode(r: &IdRegs) -> Self {
        let pmuver = field(r.dfr0, 8);
        let pmu = pmuver != 0 && pmuver != PMUVER_IMPDEF;
        Self {
            sve: field(r.pfr0, 32) != 0,
            sme: field(r.pfr1, 24) != 0,
            ras: field(r.pfr0, 28) != 0,
            amu: field(r.pfr0, 44) != 0,
            gic_sysregs: field(r.pfr0, 24) != 0,
            lor: field(r.mmfr1, 16) != 0,
            pmu,
            pmu_v3p1: pmu && pmuver >= PMUVER_V3P1,
            pmu_v3p5: pmu && pmuver >= PMUVER_V3P5,
            spe: field(r.dfr0, 32) != 0,
            trace_sysregs: field(r.dfr0, 4) != 0,
            trace_filter: field(r.dfr0, 40) != 0,
            fwb: field(r.mmfr2, 40) != 0,
        }
    }
}

/// A system register named by its encoding (Arm ARM C5.3: op0, op1, CRn, CRm, op2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysRegEncoding {
    pub op0: u8,
    pub op1: u8,
    pub crn: u8,
    pub crm: u8,
    pub op2: u8,
}

impl SysRegEncoding {
    pub const fn new(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> Self {
        Self {
            op0,
            op1,
            crn,
            crm,
            op2,
        }
    }
}

/// A trapped MSR/MRS (ESR_ELx.EC = 0x18), decoded from its ISS (Arm ARM D19, "ISS encoding
/// for an exception from MSR, MRS, or System instruction execution in AArch64 state").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysRegAccess {
    pub reg: SysRegEncoding,
    /// The general register transferred (31 = XZR).
    pub rt: u8,
    /// MRS (a read into Rt); otherwise MSR (a write from Rt).
    pub read: bool,
}

impl SysRegAccess {
    pub const fn from_iss(iss: u64) -> Self {
        Self {
            reg: SysRegEncoding {
                op0: ((iss >> 20) & 0x3) as u8,
                op2: ((iss >> 17) & 0x7) as u8,
                op1: ((iss >> 14) & 0x7) as u8,
                crn: ((iss >> 10) & 0xf) as u8,
                crm: ((iss >> 1) & 0xf) as u8,
            },
            rt: ((iss >> 5) & 0x1f) as u8,
            read: iss & 1 != 0,
        }
    }
}

/// The ID registers whose real value a guest's sanitised one is derived from. Every other
/// register of the ID space reads as zero for a guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdReg {
    Pfr0,
    Pfr1,
    Dfr0,
    Isar0,
    Isar1,
    Isar2,
    Mmfr0,
    Mmfr1,
    Mmfr2,
}

/// What a guest read of a trapped ID-space register returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestIdRead {
    /// Read the real `IdReg` and pass it through [`sanitise`].
    Sanitised(IdReg),
    /// Reads as zero (AArch32 ID registers of an AArch64-only guest, SVE/SME/AMU/PMU
    /// feature registers, unallocated encodings, REVIDR and AIDR).
    Zero,
}

/// How EL2 answers a guest's MRS of `reg`; `None` for registers outside the ID space that
/// TID1/TID3 trap (the caller answers those with an UNDEF).
pub const fn guest_id_read(reg: SysRegEncoding) -> Option<GuestIdRead> {
    use GuestIdRead::{Sanitised, Zero};
    // AIDR_EL1 (3, 1, 0, 0, 7), trapped by TID1: IMPLEMENTATION DEFINED, hidden.
    if reg.op0 == 3 && reg.op1 == 1 && reg.crn == 0 && reg.crm == 0 && reg.op2 == 7 {
        return Some(Zero);
    }
    // The ID space is (3, 0, 0, CRm, op2) with CRm = 0..7 (Arm ARM D18.3.1, "ID register
    // space"); MIDR and MPIDR come from VPIDR_EL2/VMPIDR_EL2 and never trap.
    if reg.op0 != 3 || reg.op1 != 0 || reg.crn != 0 || reg.crm > 7 {
        return None;
    }
    Some(match (reg.crm, reg.op2) {
        // REVIDR_EL1 (TID1): IMPLEMENTATION DEFINED, hidden.
        (0, 6) => Zero,
        (0, _) => return None,
        (4, 0) => Sanitised(IdReg::Pfr0),
        (4, 1) => Sanitised(IdReg::Pfr1),
        (5, 0) => Sanitised(IdReg::Dfr0),
        (6, 0) => Sanitised(IdReg::Isar0),
        (6, 1) => Sanitised(IdReg::Isar1),
        (6, 2) => Sanitised(IdReg::Isar2),
        (7, 0) => Sanitised(IdReg::Mmfr0),
        (7, 1) => Sanitised(IdReg::Mmfr1),
        (7, 2) => Sanitised(IdReg::Mmfr2),
        _ => Zero,
    })
}

const fn min(a: u64, b: u64) -> u64 {
    if a < b { a } else { b }
}

/// ID_AA64MMFR0_EL1.PARange encoding for an IPA of `bits` bits (the largest that fits).
pub const fn parange_for_bits(bits: u32) -> u64 {
    match bits {
        0..=35 => 0b0000,
        36..=39 => 0b0001,
        40..=41 => 0b0010,
        42..=43 => 0b0011,
        44..=47 => 0b0100,
        48..=51 => 0b0101,
        _ => 0b0110,
    }
}

/// The value a guest of a VM with `ipa_bits` of IPA reads for `reg` whose real value is
/// `real`.
pub const fn sanitise(reg: IdReg, real: u64, ipa_bits: u32) -> u64 {
    match reg {
        // EL0 [3:0] and EL1 [7:4]: AArch64 only (1); FP [19:16], AdvSIMD [23:20] kept;
        // DIT [51:48], CSV3 [63:60] kept, CSV2 [59:56] capped at 1 (guests rely on them
        // for mitigations; CSV2 >= 2 would promise SCXTNUM_ELx, which are the host's and
        // trap for a guest, HCR_EL2.EnSCXT clear; KVM caps it too). EL2, EL3, GIC, RAS,
        // SVE, SEL2, MPAM, AMU, RME: zero.
        IdReg::Pfr0 => with_field(
            keep_fields(real, &[16, 20, 48, 60]) | 0x11,
            56,
            min(field(real, 56), 1),
        ),
        // BT [3:0], SSBS [7:4] kept; CSV2_frac [35:32] capped at 1 (2 is FEAT_CSV2_1p2,
        // SCXTNUM again); MTE, SME, RAS_frac, MPAM_frac, RNDR_trap, NMI, GCS...: zero.
        IdReg::Pfr1 => with_field(keep_fields(real, &[0, 4]), 32, min(field(real, 32), 1)),
        // Debug architecture v8.0 (DebugVer 6) with the minimum of one breakpoint and
        // one watchpoint (BRPs, WRPs, CTX_CMPs = 0 mean one); the debug registers trap
        // (MDCR_EL2.TDA), so no more is promised. PMUVer, TraceVer, PMSVer, TraceFilt,
        // TraceBuffer, BRBE...: zero (not implemented).
        IdReg::Dfr0 => 0x6,
        // Instructions EL0/EL1 execute without EL2: AES [7:4], SHA1 [11:8], SHA2 [15:12],
        // CRC32 [19:16], Atomic [23:20], TME [27:24] (no), RDM [31:28], SHA3 [35:32],
        // SM3 [39:36], SM4 [43:40], DP [47:44], FHM [51:48], TS [55:52], TLB [59:56],
        // RNDR [63:60].
        IdReg::Isar0 => keep_fields(
            real,
            &[4, 8, 12, 16, 20, 28, 32, 36, 40, 44, 48, 52, 56, 60],
        ),
        // DPB, APA, API, JSCVT, FCMA, LRCPC, GPA, GPI, FRINTTS, SB, SPECRES, BF16, DGH,
        // I8MM kept (pointer authentication: HCR_EL2.API/APK and the keys are switched);
        // XS [59:56] and LS64 [63:60]: zero.
        IdReg::Isar1 => keep_fields(real, &[0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52]),
        // WFxT [3:0], RPRES [7:4], GPA3 [11:8], APA3 [15:12], BC [23:20], PAC_frac
        // [27:24] kept; MOPS [19:16] zero (HCRX_EL2.MSCEn is clear, so they would UNDEF),
        // CLRBHB, SYSREG_128, SYSINSTR_128, PRFMSLC, RPRFM, CSSC, LUT, ATS1A: zero.
        IdReg::Isar2 => keep_fields(real, &[0, 4, 8, 12, 20, 24]),
        // PARange [3:0] capped at the VM's IPA size; ASIDBits, BigEnd, SNSMem, BigEndEL0,
        // TGran16/64/4 kept; TGran*_2 (stage-2 granules), ExS kept; FGT [59:56] and ECV
        // [63:60] (EL2 features): zero.
        IdReg::Mmfr0 => {
            let mut v = keep_fields(real, &[4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44]);
            let hw = field(real, 0);
            let vm = parange_for_bits(ipa_bits);
            v = with_field(v, 0, if hw < vm { hw } else { vm });
            v
        }
        // HAFDBS [3:0], HPDS [15:12], PAN [23:20], SpecSEI [27:24], XNX [31:28], ETS
        // [39:36], AFP [47:44], CMOW [59:56] kept; VMIDBits, VH, LO (TLOR traps), TWED,
        // HCX, nTLBPA, TIDCP1, ECBHB: zero.
        IdReg::Mmfr1 => keep_fields(real, &[0, 12, 20, 24, 28, 36, 44, 56]),
        // CnP, UAO, LSM, IESB, VARange, CCIDX, ST, AT, IDS, TTL, BBM, E0PD kept; NV [27:24],
        // FWB [43:40] and EVT [59:56] (EL2 features): zero.
        IdReg::Mmfr2 => keep_fields(real, &[0, 4, 8, 12, 16, 20, 28, 32, 36, 48, 52, 60]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ID_AA64ISAR1_EL1 of QEMU's `-cpu max,pauth-impdef=on`-like CPU with only the
    /// generic-authentication fields set.
    #[test]
    fn pointer_auth_is_found_in_gpa_and_gpi() {
        assert!(has_pointer_auth(1 << 24, 0), "GPA");
        assert!(has_pointer_auth(1 << 28, 0), "GPI");
        assert!(has_pointer_auth(1 << 4, 0), "APA");
        assert!(has_pointer_auth(1 << 8, 0), "API");
    }

    #[test]
    fn pointer_auth_is_found_in_isar2_qarma3_fields() {
        assert!(has_pointer_auth(0, 1 << 12), "APA3");
        assert!(has_pointer_auth(0, 1 << 8), "GPA3");
        assert!(!has_pointer_auth(0, 0xf | (0xf << 4) | (0xf << 16)));
    }

    #[test]
    fn frintts_and_sb_are_not_pointer_auth() {
        // FRINTTS [35:32], SB [39:36], DPB [3:0], JSCVT [15:12]: the old mask's mistake.
        let isar1 = (1 << 32) | (1 << 36) | 1 | (1 << 12);
        assert!(!has_pointer_auth(isar1, 0));
    }

    #[test]
    fn sysreg_iss_decodes_actlr_el1_write_and_id_reg_read() {
        // MSR ACTLR_EL1, x3: op0 3, op1 0, CRn 1, CRm 0, op2 1, Rt 3, direction 0.
        let iss = (3 << 20) | (1 << 17) | (1 << 10) | (3 << 5);
        let a = SysRegAccess::from_iss(iss);
        assert_eq!(a.reg, SysRegEncoding::new(3, 0, 1, 0, 1));
        assert_eq!((a.rt, a.read), (3, false));
        // MRS x7, ID_AA64PFR0_EL1: (3, 0, 0, 4, 0), read.
        let iss = (3 << 20) | (4 << 1) | (7 << 5) | 1;
        let a = SysRegAccess::from_iss(iss);
        assert_eq!(a.reg, SysRegEncoding::new(3, 0, 0, 4, 0));
        assert_eq!((a.rt, a.read), (7, true));
    }

    #[test]
    fn id_space_reads_map_to_sanitised_or_zero() {
        let id = |crm, op2| guest_id_read(SysRegEncoding::new(3, 0, 0, crm, op2));
        assert_eq!(id(4, 0), Some(GuestIdRead::Sanitised(IdReg::Pfr0)));
        assert_eq!(id(7, 2), Some(GuestIdRead::Sanitised(IdReg::Mmfr2)));
        assert_eq!(id(4, 4), Some(GuestIdRead::Zero), "ID_AA64ZFR0_EL1");
        assert_eq!(id(4, 5), Some(GuestIdRead::Zero), "ID_AA64SMFR0_EL1");
        assert_eq!(id(1, 0), Some(GuestIdRead::Zero), "ID_PFR0_EL1 (AArch32)");
        assert_eq!(id(0, 6), Some(GuestIdRead::Zero), "REVIDR_EL1");
        assert_eq!(id(0, 0), None, "MIDR_EL1 never traps");
        let aidr = SysRegEncoding::new(3, 1, 0, 0, 7);
        assert_eq!(guest_id_read(aidr), Some(GuestIdRead::Zero));
        let actlr = SysRegEncoding::new(3, 0, 1, 0, 1);
        assert_eq!(guest_id_read(actlr), None);
    }

    /// A PFR0 with SVE, GIC, RAS and AMU (QEMU's `-cpu max` has the first three): the
    /// guest sees none of them, nor EL2 and EL3.
    #[test]
    fn guest_pfr0_has_no_sve_gic_ras_amu_el2_el3() {
        let real: u64 = 0x1201_1111_1111_2222 | (1 << 32) | (1 << 24) | (1 << 28) | (1 << 44);
        let g = sanitise(IdReg::Pfr0, real, 40);
        for (name, shift) in [
            ("SVE", 32),
            ("GIC", 24),
            ("RAS", 28),
            ("AMU", 44),
            ("EL2", 8),
            ("EL3", 12),
            ("MPAM", 40),
        ] {
            assert_eq!(field(g, shift), 0, "{name}");
        }
        assert_eq!(field(g, 0), 1, "EL0 AArch64 only");
        assert_eq!(field(g, 4), 1, "EL1 AArch64 only");
        assert_eq!(field(g, 16), field(real, 16), "FP kept");
        assert_eq!(field(g, 20), field(real, 20), "AdvSIMD kept");
        assert_eq!(field(g, 56), 1, "CSV2 kept, capped at 1 (no SCXTNUM)");
    }

    /// FEAT_CSV2_2 / CSV2_1p2 add SCXTNUM_ELx, which a guest cannot use (HCR_EL2.EnSCXT is
    /// the host's only): the guest reads CSV2 = 1, CSV2_frac <= 1.
    #[test]
    fn guest_csv2_is_capped_below_scxtnum() {
        let g = sanitise(IdReg::Pfr0, 2 << 56, 40);
        assert_eq!(field(g, 56), 1, "CSV2_2 becomes CSV2");
        assert_eq!(
            field(sanitise(IdReg::Pfr0, 0, 40), 56),
            0,
            "no CSV2 stays none"
        );
        let g1 = sanitise(IdReg::Pfr1, 2 << 32, 40);
        assert_eq!(field(g1, 32), 1, "CSV2_1p2 becomes CSV2_1p1");
        assert_eq!(field(sanitise(IdReg::Pfr1, 1 << 32, 40), 32), 1);
    }

    #[test]
    fn guest_pfr1_has_no_sme_or_mte() {
        let real = (1 << 24) | (2 << 8) | (1 << 4) | 1;
        let g = sanitise(IdReg::Pfr1, real, 40);
        assert_eq!(field(g, 24), 0, "SME");
        assert_eq!(field(g, 8), 0, "MTE");
        assert_eq!(field(g, 0), 1, "BT kept");
        assert_eq!(field(g, 4), 1, "SSBS kept");
    }

    #[test]
    fn guest_dfr0_has_no_pmu_spe_or_trace() {
        let g = sanitise(IdReg::Dfr0, u64::MAX, 40);
        assert_eq!(field(g, 8), 0, "PMUVer");
        assert_eq!(field(g, 32), 0, "PMSVer");
        assert_eq!(field(g, 4), 0, "TraceVer");
        assert_eq!(field(g, 40), 0, "TraceFilt");
        assert_eq!(field(g, 0), 6, "DebugVer v8.0");
    }

    #[test]
    fn guest_parange_is_capped_at_the_vm_ipa_size() {
        // Real PARange 48 bits (0b0101), VM of 32 bits -> 32 bits (0b0000).
        assert_eq!(field(sanitise(IdReg::Mmfr0, 0b0101, 32), 0), 0b0000);
        assert_eq!(field(sanitise(IdReg::Mmfr0, 0b0101, 40), 0), 0b0010);
        // Real PARange 40 bits, VM of 48 bits -> 40 bits: never more than the hardware.
        assert_eq!(field(sanitise(IdReg::Mmfr0, 0b0010, 48), 0), 0b0010);
        // FGT and ECV are EL2's.
        let g = sanitise(IdReg::Mmfr0, (1 << 56) | (1 << 60), 48);
        assert_eq!(g >> 56, 0);
    }

    #[test]
    fn guest_mmfr1_and_mmfr2_hide_el2_lor_and_fwb() {
        let g1 = sanitise(IdReg::Mmfr1, u64::MAX, 40);
        for (name, shift) in [("VMIDBits", 4), ("VH", 8), ("LO", 16), ("HCX", 40)] {
            assert_eq!(field(g1, shift), 0, "{name}");
        }
        assert_eq!(field(g1, 20), 0xf, "PAN kept");
        let g2 = sanitise(IdReg::Mmfr2, u64::MAX, 40);
        for (name, shift) in [("NV", 24), ("FWB", 40), ("EVT", 56)] {
            assert_eq!(field(g2, shift), 0, "{name}");
        }
    }

    #[test]
    fn guest_isar_hides_ls64_xs_and_mops() {
        assert_eq!(sanitise(IdReg::Isar1, u64::MAX, 40) >> 56, 0);
        assert_eq!(field(sanitise(IdReg::Isar2, u64::MAX, 40), 16), 0);
        assert_eq!(field(sanitise(IdReg::Isar0, u64::MAX, 40), 24), 0, "TME");
    }

    #[test]
    fn features_decode_from_their_fields() {
        let f = CpuFeatures::decode(&IdRegs {
            pfr0: (1 << 32) | (1 << 28) | (1 << 24),
            pfr1: 1 << 24,
            dfr0: (PMUVER_V3P5 << 8) | (1 << 40) | (1 << 4),
            mmfr1: 1 << 16,
            mmfr2: 1 << 40,
        });
        assert!(f.sve && f.ras && f.gic_sysregs && f.sme && f.lor && f.fwb);
        assert!(f.pmu && f.pmu_v3p1 && f.pmu_v3p5 && f.trace_filter && f.trace_sysregs);
        assert!(!f.spe && !f.amu);
        let impdef = CpuFeatures::decode(&IdRegs {
            dfr0: PMUVER_IMPDEF << 8,
            ..IdRegs::default()
        });
        assert!(!impdef.pmu && !impdef.pmu_v3p1);
    }
}
