//! The EL2 controls the host runs under, as functions of the CPU's ID registers: the host
//! keeps every feature the CPU gives it, the way Linux's own nVHE host does
//! (`init_el2_state`/`finalise_el2_state` in `arch/arm64/include/asm/el2_setup.h`,
//! `HCR_HOST_NVHE_FLAGS` in `kvm_arm.h`), unless a row below says the payload withholds it.
//!
//! The rule: a feature the host's ID registers advertise works at EL1 (no trap, or a trap
//! EL2 handles), because the host does not trap its ID registers (HCR_EL2.TID3 clear) and so
//! always reads the real ones. A feature whose state a guest run could leak or corrupt is
//! stopped or switched around VCPU_RUN (`el2_regs::enter_guest`), never taken away from the
//! host. Checked at EL1 by abi-host's `host_features_in_its_id_registers_work_at_el1`.
//!
//! | Feature | Control | Linux nVHE host | Payload's host | Around a guest run |
//! |---|---|---|---|---|
//! | Pointer auth | HCR_EL2.API, APK | 1, 1 | 1, 1 (with PAuth) | kept; keys switched |
//! | MTE | HCR_EL2.ATA | 1 | 1 with MTE2 | cleared (guests: no MTE) |
//! | SCXTNUM (CSV2_2, CSV2_1p2) | HCR_EL2.EnSCXT | 0 (Linux traps EL0 itself) | 1 | cleared |
//! | FP/AdvSIMD | CPTR_EL2.TFP | 0 | 0 | 0 (V regs switched) |
//! | SVE | CPTR_EL2.TZ, ZCR_EL2.LEN | 0, 0x1ff | 0, 0x1ff | TZ=1; host Z/P/FFR saved (`host_sve`) |
//! | SME | CPTR_EL2.TSM, SMCR_EL2 | 0, LEN+FA64+EZT0 | 0, LEN 0x1ff, FA64 and EZT0 where present | TSM=1; streaming state saved |
//! | SME priority | SMPRIMAP_EL2 | 0 where SMPS | 0 where SMPS | unchanged |
//! | TPIDR2_EL0, SMPRI_EL1 | HFGxTR_EL2.nTPIDR2_EL0, nSMPRI_EL1 | 1, 1 with SME+FGT | 1, 1 | FGT 0 (trap); TPIDR2_EL0 switched |
//! | AMU | CPTR_EL2.TAM; HAFGRTR_EL2 | 0; 0 | 0; 0 with FGT | TAM=1 |
//! | Trace unit (ETM/ETE) | CPTR_EL2.TTA | 0 | 0 | TTA=1 |
//! | Trace filter | MDCR_EL2.TTRF; TRFCR_EL2 | 0; untouched | 0; 0 (EL2 never traced) | TTRF=1; TRFCR_EL1=0, drained |
//! | TRBE | MDCR_EL2.E2TB | 0b11 unless TRBIDR.P | 0b11 unless TRBIDR.P | 0b00 (trace prohibited first) |
//! | SPE | MDCR_EL2.E2PB, TPMS; PMSCR_EL2 | 0b11, 0; PCT+PA unless PMBIDR.P | same | E2PB 0b00, TPMS=1; PMSCR_EL1=0, drained |
//! | SPEv1p2 | HDFGxTR_EL2.nPMSNEVFR_EL1 | 1 | 1 | FGT 0 |
//! | PMUv3 | MDCR_EL2.HPMN, TPM, TPMCR | PMCR.N, 0, 0 | PMCR.N, 0, 0 | TPM, TPMCR, HPMD/HCCD; counters stopped |
//! | PMUv3p9 | HDFGxTR2_EL2.nPMICNTR/nPMICFILTR/nPMUACR | 1 with FGT2 | 1 with FGT2 | TPM traps them |
//! | Debug | MDCR_EL2.TDA, TDOSA, TDRA, TDE | 0 | 0 | TDA, TDOSA, TDRA |
//! | BRBE | HDFGxTR_EL2/HFGITR_EL2 nBRB*; BRBCR_EL2 | 1; CC+MPRED | 1; CC+MPRED (no EL2 recording) | FGT 0; BRBCR_EL1=0 |
//! | MOPS | HCRX_EL2.MSCEn | 1 | 1 with MOPS | HCRX 0 |
//! | TCR2, SCTLR2 | HCRX_EL2.TCR2En, SCTLR2En | 1, 0 | 1 with TCR2, 1 with SCTLR2 | HCRX 0 |
//! | S1PIE | HFGxTR_EL2.nPIR_EL1, nPIRE0_EL1 | 1 | 1 | FGT 0 |
//! | S1POE | HFGxTR_EL2.nPOR_EL0 (nPOR_EL1) | 1 (0) | 1 (1) | FGT 0 |
//! | GCS | HCRX_EL2.GCSEn; HFGxTR_EL2.nGCS_EL0/1; HFGITR_EL2.nGCS* | 1; 1; 0 | 1; 1; 1 | HCRX 0, FGT 0 |
//! | FPMR | HCRX_EL2.EnFPM | 1 | 1 with FPMR | HCRX 0 |
//! | LS64 | HCRX_EL2.EnALS, EnASR, EnAS0; nACCDATA_EL1 | by LS64 level (not EnAS0) | by LS64 level | HCRX 0, FGT 0 |
//! | LORegions | HCR_EL2.TLOR | 0 | 0 | TLOR=1 |
//! | RAS | HCR_EL2.TERR, TEA | 0 | 0 | TERR, TEA |
//! | GICv3 | ICC_SRE_EL2.Enable | 1 | 1 | ICH_HCR traps |
//! | MPAM | MPAM2_EL2, MPAMHCR_EL2 | 0, 0 (traps cleared) | 0, 0 | TRAPMPAM0EL1+TRAPMPAM1EL1, MPAMHCR.TRAP_MPAMIDR_EL1 (or MPAM2.TIDR) |
//!
//! MPAM follows Linux's `__init_el2_mpam` and KVM's `__activate_traps_mpam`: TF-A sets
//! MPAM2_EL2's traps when EL2 is used, so without this a host that uses MPAM1_EL1 takes an
//! UNDEF although its ID registers advertise MPAM. Firmware that keeps MPAM closed to
//! lower levels (MPAM3_EL3.TRAPLOWER) traps EL2's write to EL3, as it does Linux's own.
//!
//! Not granted, with the reason: HCRX_EL2's D128En, PTTWI, EnIDCP128, RASv2 and
//! PACMEn controls and FGT2's other negative bits (no CPU or Linux to test them with;
//! Linux's nVHE set-up does not grant them either). QEMU 7.2 has none of AMU, SPE, TRBE,
//! BRBE, FGT or HCX: those rows are checked by the unit tests here, not on a CPU.

use crate::id_regs::field;

/// The ID registers the host's controls depend on. `pmbidr`, `trbidr`, `smidr` are read
/// only where SPE, TRBE and SME exist (zero otherwise: they are UNDEFINED without them).
#[derive(Clone, Copy, Debug, Default)]
pub struct HostIdRegs {
    pub pfr0: u64,
    pub pfr1: u64,
    pub pfr2: u64,
    pub dfr0: u64,
    pub isar1: u64,
    pub isar2: u64,
    pub mmfr0: u64,
    pub mmfr1: u64,
    pub mmfr3: u64,
    pub smfr0: u64,
    pub pmbidr: u64,
    pub trbidr: u64,
    pub smidr: u64,
    /// MPAMIDR_EL1, read only where MPAM exists.
    pub mpamidr: u64,
}

impl HostIdRegs {
    pub const fn sve(&self) -> bool {
        field(self.pfr0, 32) != 0
    }
    pub const fn sme(&self) -> bool {
        field(self.pfr1, 24) != 0
    }
    /// FEAT_SPE (PMSVer).
    pub const fn spe(&self) -> bool {
        field(self.dfr0, 32) != 0
    }
    /// FEAT_TRBE (TraceBuffer).
    pub const fn trbe(&self) -> bool {
        field(self.dfr0, 44) != 0
    }
    /// FEAT_TRF (TraceFilt).
    pub const fn trace_filter(&self) -> bool {
        field(self.dfr0, 40) != 0
    }
    pub const fn brbe(&self) -> bool {
        field(self.dfr0, 52) != 0
    }
    /// FEAT_MPAM (ID_AA64PFR0_EL1.MPAM or ID_AA64PFR1_EL1.MPAM_frac).
    pub const fn mpam(&self) -> bool {
        field(self.pfr0, 40) != 0 || field(self.pfr1, 16) != 0
    }
    pub const fn amu(&self) -> bool {
        field(self.pfr0, 44) != 0
    }
    /// FEAT_FGT (1) and FEAT_FGT2 (2).
    pub const fn fgt(&self) -> u64 {
        field(self.mmfr0, 56)
    }
    pub const fn hcx(&self) -> bool {
        field(self.mmfr1, 40) != 0
    }
    const fn gcs(&self) -> bool {
        field(self.pfr1, 44) != 0
    }
    const fn ls64(&self) -> u64 {
        field(self.isar1, 60)
    }
    /// SCXTNUM_ELx exist: FEAT_CSV2_2 (CSV2 >= 2) or FEAT_CSV2_1p2 (CSV2 = 1, CSV2_frac >= 2).
    pub const fn scxtnum(&self) -> bool {
        let csv2 = field(self.pfr0, 56);
        csv2 >= 2 || (csv2 == 1 && field(self.pfr1, 32) >= 2)
    }
}

pub mod hcr {
    pub const VM: u64 = 1 << 0;
    pub const TSC: u64 = 1 << 19;
    pub const RW: u64 = 1 << 31;
    pub const APK: u64 = 1 << 40;
    pub const API: u64 = 1 << 41;
    pub const ENSCXT: u64 = 1 << 53;
    pub const ATA: u64 = 1 << 56;
    /// Bits only the host gets: the guest's HCR_EL2 is built from the host's without them
    /// (its MTE and SCXTNUM registers would be the host's, which are not switched).
    pub const HOST_ONLY: u64 = ATA | ENSCXT;
}

pub mod mdcr {
    /// E2PB = 0b11: the profiling buffer belongs to EL1&0 and its registers do not trap.
    pub const E2PB_EL1: u64 = 0b11 << 12;
    /// E2TB = 0b11: the same for the trace buffer.
    pub const E2TB_EL1: u64 = 0b11 << 24;
}

pub mod hcrx {
    pub const ENAS0: u64 = 1 << 0;
    pub const ENALS: u64 = 1 << 1;
    pub const ENASR: u64 = 1 << 2;
    pub const MSCEN: u64 = 1 << 11;
    pub const TCR2EN: u64 = 1 << 14;
    pub const SCTLR2EN: u64 = 1 << 15;
    pub const GCSEN: u64 = 1 << 22;
    pub const ENFPM: u64 = 1 << 23;
}

pub mod smcr {
    pub const LEN_MAX: u64 = 0x1ff;
    pub const EZT0: u64 = 1 << 30;
    pub const FA64: u64 = 1 << 31;
}

/// HFGRTR_EL2/HFGWTR_EL2 negative-polarity bits (a 0 traps).
pub mod hfgxtr {
    pub const NACCDATA_EL1: u64 = 1 << 50;
    pub const NGCS_EL0: u64 = 1 << 52;
    pub const NGCS_EL1: u64 = 1 << 53;
    pub const NSMPRI_EL1: u64 = 1 << 54;
    pub const NTPIDR2_EL0: u64 = 1 << 55;
    pub const NPIRE0_EL1: u64 = 1 << 57;
    pub const NPIR_EL1: u64 = 1 << 58;
    pub const NPOR_EL0: u64 = 1 << 59;
    pub const NPOR_EL1: u64 = 1 << 60;
}

/// HFGITR_EL2 negative-polarity bits.
pub mod hfgitr {
    pub const NBRBINJ: u64 = 1 << 55;
    pub const NBRBIALL: u64 = 1 << 56;
    pub const NGCSPUSHM_EL1: u64 = 1 << 57;
    pub const NGCSSTR_EL1: u64 = 1 << 58;
    pub const NGCSEPP: u64 = 1 << 59;
}

/// HDFGRTR_EL2/HDFGWTR_EL2 negative-polarity bits (nBRBIDR is read-only).
pub mod hdfgxtr {
    pub const NBRBIDR: u64 = 1 << 59;
    pub const NBRBCTL: u64 = 1 << 60;
    pub const NBRBDATA: u64 = 1 << 61;
    pub const NPMSNEVFR_EL1: u64 = 1 << 62;
}

/// HDFGRTR2_EL2/HDFGWTR2_EL2 negative-polarity bits of FEAT_PMUv3p9.
pub mod hdfgxtr2 {
    pub const NPMICNTR_EL0: u64 = 1 << 2;
    pub const NPMICFILTR_EL0: u64 = 1 << 3;
    pub const NPMUACR_EL1: u64 = 1 << 4;
}

/// PMSCR_EL2 for the host: physical timestamps (PCT = 0b01) and physical addresses (PA)
/// may be collected by EL1's profiling; E2SPE and E0HSPE clear: EL2 is never profiled.
pub const PMSCR_EL2_HOST: u64 = (1 << 6) | (1 << 4);

/// BRBCR_EL2 for the host: cycle counts and mispredicts may be recorded (CC, MPRED, which
/// EL1's BRBCR_EL1 needs set at EL2 too); E2BRE and E0HBRE clear: EL2 is never recorded.
pub const BRBCR_EL2_HOST: u64 = (1 << 5) | (1 << 4);

/// The fine-grained trap registers of FEAT_FGT.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FineGrainedTraps {
    pub hfgrtr: u64,
    pub hfgwtr: u64,
    pub hfgitr: u64,
    pub hdfgrtr: u64,
    pub hdfgwtr: u64,
}

/// Fine-grained traps while a guest runs: every positive-polarity trap off (the coarse
/// controls of `guest_traps` do the trapping) and every negative-polarity one on, so no
/// register the host was given by a negative bit (TPIDR2_EL0, PIR_EL1, POR_EL0, GCS,
/// BRBE...) is the guest's to read or write: those are not switched.
pub const GUEST_FGT: FineGrainedTraps = FineGrainedTraps {
    hfgrtr: 0,
    hfgwtr: 0,
    hfgitr: 0,
    hdfgrtr: 0,
    hdfgwtr: 0,
};

/// HCRX_EL2 while a guest runs: nothing enabled (no MOPS, TCR2, SCTLR2, GCS, FPMR or LS64
/// for guests; their ID registers say so, see `id_regs::sanitise`).
pub const GUEST_HCRX: u64 = 0;

/// Everything the host's EL2 controls are, for one CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostControls {
    /// HCR_EL2 (VM and TSC included).
    pub hcr: u64,
    /// MDCR_EL2 without HPMN (the caller adds PMCR_EL0.N).
    pub mdcr: u64,
    /// HCRX_EL2, where FEAT_HCX exists.
    pub hcrx: Option<u64>,
    /// ZCR_EL2, where SVE exists.
    pub zcr: Option<u64>,
    /// SMCR_EL2, where SME exists.
    pub smcr: Option<u64>,
    /// SMPRIMAP_EL2 = 0, where SME has priority mapping (SMIDR_EL1.SMPS).
    pub smprimap: Option<u64>,
    /// The FGT registers, where FEAT_FGT exists.
    pub fgt: Option<FineGrainedTraps>,
    /// HAFGRTR_EL2 = 0, where FEAT_FGT and AMU exist.
    pub hafgrtr: Option<u64>,
    /// HDFGRTR2_EL2/HDFGWTR2_EL2 (HFGRTR2/HFGWTR2/HFGITR2 get 0), where FEAT_FGT2 exists.
    pub hdfgxtr2: Option<u64>,
    /// PMSCR_EL2, where SPE exists and its buffer is not a higher level's.
    pub pmscr_el2: Option<u64>,
    /// TRFCR_EL2 = 0 (EL2 is never traced), where FEAT_TRF exists.
    pub trfcr_el2: Option<u64>,
    /// BRBCR_EL2, where BRBE exists.
    pub brbcr_el2: Option<u64>,
    /// MPAM2_EL2 and MPAMHCR_EL2 for the host and for guest runs, where MPAM exists.
    pub mpam: Option<MpamControls>,
}

/// MPAM2_EL2.TRAPMPAM1EL1 and TRAPMPAM0EL1: MPAM1_EL1 / MPAM0_EL1 accesses trap to EL2.
pub const MPAM2_TRAP_EL1_EL0: u64 = (1 << 48) | (1 << 49);
/// MPAM2_EL2.TIDR (MPAM v1.1): MPAMIDR_EL1 reads trap to EL2, where MPAMHCR_EL2 is absent.
pub const MPAM2_TIDR: u64 = 1 << 58;
/// MPAMHCR_EL2.TRAP_MPAMIDR_EL1.
pub const MPAMHCR_TRAP_MPAMIDR: u64 = 1 << 31;
/// MPAMIDR_EL1.HAS_HCR: MPAMHCR_EL2 exists.
const MPAMIDR_HAS_HCR: u64 = 1 << 17;

/// MPAM's EL2 controls: the host uses MPAM freely (default partition, no traps), a guest
/// run traps every MPAM register (the guest's ID registers say it has no MPAM).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MpamControls {
    pub host_mpam2: u64,
    pub guest_mpam2: u64,
    /// MPAMHCR_EL2 for the host and for a guest run, where it exists (MPAMIDR.HAS_HCR).
    pub hcr: Option<(u64, u64)>,
}

const fn mpam_controls(id: &HostIdRegs) -> Option<MpamControls> {
    if !id.mpam() {
        return None;
    }
    Some(if id.mpamidr & MPAMIDR_HAS_HCR != 0 {
        MpamControls {
            host_mpam2: 0,
            guest_mpam2: MPAM2_TRAP_EL1_EL0,
            hcr: Some((0, MPAMHCR_TRAP_MPAMIDR)),
        }
    } else {
        MpamControls {
            host_mpam2: 0,
            guest_mpam2: MPAM2_TRAP_EL1_EL0 | MPAM2_TIDR,
            hcr: None,
        }
    })
}

/// PMBIDR_EL1.P / TRBIDR_EL1.P: the buffer belongs to a higher exception level.
const BUFFER_PROHIBITED: u64 = 1 << 4;

impl HostControls {
    /// The host's controls on a CPU with ID registers `id`; `pauth` is FEAT_PAuth
    /// (`id_regs::has_pointer_auth`).
    pub const fn for_cpu(id: &HostIdRegs, pauth: bool) -> Self {
        Self {
            hcr: host_hcr(id, pauth),
            mdcr: host_mdcr(id),
            hcrx: if id.hcx() { Some(host_hcrx(id)) } else { None },
            zcr: if id.sve() { Some(0x1ff) } else { None },
            smcr: if id.sme() { Some(host_smcr(id)) } else { None },
            smprimap: if id.sme() && id.smidr & (1 << 15) != 0 {
                Some(0)
            } else {
                None
            },
            fgt: if id.fgt() != 0 {
                Some(host_fgt(id))
            } else {
                None
            },
            hafgrtr: if id.fgt() != 0 && id.amu() {
                Some(0)
            } else {
                None
            },
            hdfgxtr2: if id.fgt() >= 2 {
                Some(host_hdfgxtr2(id))
            } else {
                None
            },
            pmscr_el2: if id.spe() && id.pmbidr & BUFFER_PROHIBITED == 0 {
                Some(PMSCR_EL2_HOST)
            } else {
                None
            },
            trfcr_el2: if id.trace_filter() { Some(0) } else { None },
            brbcr_el2: if id.brbe() {
                Some(BRBCR_EL2_HOST)
            } else {
                None
            },
            mpam: mpam_controls(id),
        }
    }
}

/// HCR_EL2 for the host: stage 2 on (VM), EL1 is AArch64 (RW), SMC traps (TSC, for the
/// PSCI relay): Linux's `HCR_HOST_NVHE_PROTECTED_FLAGS` plus VM. IMO/FMO/AMO clear: the
/// host keeps the GIC. API/APK with pointer authentication, ATA with MTE2, EnSCXT where
/// SCXTNUM_ELx exist.
pub const fn host_hcr(id: &HostIdRegs, pauth: bool) -> u64 {
    let mut v = hcr::VM | hcr::TSC | hcr::RW;
    if pauth {
        v |= hcr::API | hcr::APK;
    }
    if field(id.pfr1, 8) >= 2 {
        v |= hcr::ATA;
    }
    if id.scxtnum() {
        v |= hcr::ENSCXT;
    }
    v
}

/// MDCR_EL2 for the host, without HPMN: the SPE and trace buffers belong to EL1&0 (as
/// Linux's `__init_el2_debug`: E2PB whenever SPE exists; E2TB unless TRBIDR_EL1.P says
/// a higher level owns the trace buffer). Debug, PMU and trace registers do not trap.
pub const fn host_mdcr(id: &HostIdRegs) -> u64 {
    let mut v = 0;
    if id.spe() {
        v |= mdcr::E2PB_EL1;
    }
    if id.trbe() && id.trbidr & BUFFER_PROHIBITED == 0 {
        v |= mdcr::E2TB_EL1;
    }
    v
}

/// HCRX_EL2 for the host: the enables of every feature present (`__init_el2_hcrx`).
pub const fn host_hcrx(id: &HostIdRegs) -> u64 {
    let mut v = 0;
    if field(id.isar2, 16) != 0 {
        v |= hcrx::MSCEN;
    }
    if field(id.mmfr3, 0) != 0 {
        v |= hcrx::TCR2EN;
    }
    if field(id.mmfr3, 4) != 0 {
        v |= hcrx::SCTLR2EN;
    }
    if id.gcs() {
        v |= hcrx::GCSEN;
    }
    if field(id.pfr2, 32) != 0 {
        v |= hcrx::ENFPM;
    }
    let ls64 = id.ls64();
    if ls64 >= 1 {
        v |= hcrx::ENALS;
    }
    if ls64 >= 2 {
        v |= hcrx::ENASR;
    }
    if ls64 >= 3 {
        v |= hcrx::ENAS0;
    }
    v
}

/// SMCR_EL2 for the host: the largest streaming vector length, full A64 in streaming mode
/// where FEAT_SME_FA64 exists (ID_AA64SMFR0_EL1.FA64, bit 63), ZT0 where SME2 does
/// (SMEver >= 1). Without FA64 here, a host that sets SMCR_EL1.FA64 still has AdvSIMD
/// trap in streaming mode (the effective FA64 at EL1 is the AND of SMCR_EL1/EL2/EL3).
pub const fn host_smcr(id: &HostIdRegs) -> u64 {
    let mut v = smcr::LEN_MAX;
    if id.smfr0 >> 63 != 0 {
        v |= smcr::FA64;
    }
    if field(id.smfr0, 56) >= 1 {
        v |= smcr::EZT0;
    }
    v
}

/// The host's fine-grained traps: none of the positive ones; each negative one set where
/// its feature exists (`__init_el2_fgt`, plus POR_EL1 and GCS instructions, which the host
/// would otherwise see advertised and trapping).
pub const fn host_fgt(id: &HostIdRegs) -> FineGrainedTraps {
    let mut rw = 0;
    let mut it = 0;
    let mut drd = 0;
    let mut dwr = 0;
    if id.sme() {
        rw |= hfgxtr::NTPIDR2_EL0 | hfgxtr::NSMPRI_EL1;
    }
    if field(id.mmfr3, 8) != 0 {
        rw |= hfgxtr::NPIR_EL1 | hfgxtr::NPIRE0_EL1;
    }
    if field(id.mmfr3, 16) != 0 {
        rw |= hfgxtr::NPOR_EL0 | hfgxtr::NPOR_EL1;
    }
    if id.gcs() {
        rw |= hfgxtr::NGCS_EL0 | hfgxtr::NGCS_EL1;
        it |= hfgitr::NGCSEPP | hfgitr::NGCSSTR_EL1 | hfgitr::NGCSPUSHM_EL1;
    }
    if id.ls64() >= 3 {
        rw |= hfgxtr::NACCDATA_EL1;
    }
    if field(id.dfr0, 32) >= 3 {
        // FEAT_SPEv1p2: PMSNEVFR_EL1.
        drd |= hdfgxtr::NPMSNEVFR_EL1;
        dwr |= hdfgxtr::NPMSNEVFR_EL1;
    }
    if id.brbe() {
        drd |= hdfgxtr::NBRBDATA | hdfgxtr::NBRBCTL | hdfgxtr::NBRBIDR;
        dwr |= hdfgxtr::NBRBDATA | hdfgxtr::NBRBCTL;
        it |= hfgitr::NBRBIALL | hfgitr::NBRBINJ;
    }
    FineGrainedTraps {
        hfgrtr: rw,
        hfgwtr: rw,
        hfgitr: it,
        hdfgrtr: drd,
        hdfgwtr: dwr,
    }
}

/// HDFGRTR2_EL2/HDFGWTR2_EL2 for the host (FEAT_FGT2): the PMUv3p9 registers do not trap.
pub const fn host_hdfgxtr2(id: &HostIdRegs) -> u64 {
    const PMUVER_V3P9: u64 = 0b1001;
    let pmuver = field(id.dfr0, 8);
    if pmuver >= PMUVER_V3P9 && pmuver != 0xf {
        hdfgxtr2::NPMICNTR_EL0 | hdfgxtr2::NPMICFILTR_EL0 | hdfgxtr2::NPMUACR_EL1
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpam_is_the_hosts_without_traps_and_every_mpam_register_traps_for_guests() {
        assert_eq!(QEMU_MAX_NO_MPAM.mpam, None, "QEMU 7.2 max has no MPAM");
        let with_hcr = HostIdRegs {
            pfr0: 1 << 40,
            mpamidr: 1 << 17,
            ..HostIdRegs::default()
        };
        let c = HostControls::for_cpu(&with_hcr, false).mpam.unwrap();
        assert_eq!(
            c.host_mpam2, 0,
            "the host's MPAM1_EL1/MPAM0_EL1 do not trap"
        );
        assert_eq!(
            c.guest_mpam2,
            (1 << 48) | (1 << 49),
            "TRAPMPAM1EL1 and TRAPMPAM0EL1"
        );
        assert_eq!(
            c.hcr,
            Some((0, 1 << 31)),
            "MPAMIDR_EL1 traps through MPAMHCR_EL2"
        );
        // MPAM v0.1 (PFR1.MPAM_frac only), no MPAMHCR_EL2: TIDR traps MPAMIDR_EL1.
        let frac_only = HostIdRegs {
            pfr1: 1 << 16,
            ..HostIdRegs::default()
        };
        let c = HostControls::for_cpu(&frac_only, false).mpam.unwrap();
        assert_eq!(c.guest_mpam2, (1 << 48) | (1 << 49) | (1 << 58));
        assert_eq!(c.hcr, None);
    }

    const QEMU_MAX_NO_MPAM: HostControls = HostControls::for_cpu(&QEMU_MAX, true);

    /// QEMU 7.2's `-cpu max,pauth-impdef=on` (read by abi-host): SVE, SME with FA64,
    /// CSV2_2, PMUv3p5, no FGT, no HCX.
    const QEMU_MAX: HostIdRegs = HostIdRegs {
        pfr0: 0x1201_0011_2111_0222,
        pfr1: 0x0100_0021,
        pfr2: 0,
        dfr0: 0x1030_5609,
        isar1: 0x0011_1111_0211_1102,
        isar2: 0,
        mmfr0: 0,
        mmfr1: 0,
        mmfr3: 0,
        smfr0: 0x80f1_00fd_0000_0000,
        pmbidr: 0,
        trbidr: 0,
        smidr: 0,
        mpamidr: 0,
    };

    /// A Cortex-A53: none of the optional features.
    const A53: HostIdRegs = HostIdRegs {
        pfr0: 0x0100_0222,
        pfr1: 0,
        pfr2: 0,
        dfr0: 0x1030_5106,
        isar1: 0,
        isar2: 0,
        mmfr0: 0,
        mmfr1: 0,
        mmfr3: 0,
        smfr0: 0,
        pmbidr: 0,
        trbidr: 0,
        smidr: 0,
        mpamidr: 0,
    };

    /// A board CPU with everything this module handles: FGT2, HCX, AMU, SPEv1p2, TRBE,
    /// TRF, BRBE, SME2 with FA64 and priority mapping, MTE2, GCS, S1PIE/S1POE, TCR2,
    /// SCTLR2, MOPS, FPMR, LS64_ACCDATA, PMUv3p9.
    const EVERYTHING: HostIdRegs = HostIdRegs {
        pfr0: (1 << 44) | (1 << 32) | (2 << 56),
        pfr1: (1 << 44) | (1 << 24) | (2 << 8),
        pfr2: 1 << 32,
        dfr0: (1 << 52) | (1 << 44) | (1 << 40) | (3 << 32) | (9 << 8),
        isar1: 3 << 60,
        isar2: 1 << 16,
        mmfr0: 2 << 56,
        mmfr1: 1 << 40,
        mmfr3: (1 << 16) | (1 << 8) | (1 << 4) | 1,
        smfr0: (1 << 63) | (1 << 56),
        pmbidr: 0,
        trbidr: 0,
        smidr: 1 << 15,
        mpamidr: 1 << 17,
    };

    #[test]
    fn host_gets_full_a64_in_streaming_mode_where_the_cpu_has_fa64() {
        let c = HostControls::for_cpu(&QEMU_MAX, true);
        assert_eq!(c.smcr, Some(smcr::LEN_MAX | smcr::FA64));
        assert_eq!(
            host_smcr(&EVERYTHING),
            smcr::LEN_MAX | smcr::FA64 | smcr::EZT0
        );
        let no_fa64 = HostIdRegs {
            smfr0: 0,
            ..QEMU_MAX
        };
        assert_eq!(
            host_smcr(&no_fa64),
            smcr::LEN_MAX,
            "FA64 and EZT0 are RES0 without them"
        );
        assert_eq!(HostControls::for_cpu(&A53, false).smcr, None);
    }

    #[test]
    fn host_hcr_matches_linux_nvhe_flags_plus_stage_2_and_smc_traps() {
        let c = HostControls::for_cpu(&QEMU_MAX, true);
        assert_eq!(
            c.hcr,
            hcr::VM | hcr::TSC | hcr::RW | hcr::API | hcr::APK | hcr::ENSCXT
        );
        let mte = HostIdRegs {
            pfr1: QEMU_MAX.pfr1 | (2 << 8),
            ..QEMU_MAX
        };
        assert_ne!(host_hcr(&mte, true) & hcr::ATA, 0);
        assert_eq!(host_hcr(&A53, false), hcr::VM | hcr::TSC | hcr::RW);
        // MTE = 1 (instructions only) has no tags for EL1 to reach: ATA stays clear.
        let mte1 = HostIdRegs {
            pfr1: 1 << 8,
            ..A53
        };
        assert_eq!(host_hcr(&mte1, false) & hcr::ATA, 0);
    }

    /// el2_regs builds the guest's HCR_EL2 from the host's minus `HOST_ONLY`: whatever the
    /// CPU, a guest never gets the host's MTE tag access or SCXTNUM registers.
    #[test]
    fn guest_hcr_built_from_the_hosts_has_no_host_only_bit() {
        use crate::id_regs::{CpuFeatures, IdRegs};
        for id in [QEMU_MAX, A53, EVERYTHING] {
            let f = CpuFeatures::decode(&IdRegs {
                pfr0: id.pfr0,
                pfr1: id.pfr1,
                dfr0: id.dfr0,
                mmfr1: id.mmfr1,
                mmfr2: 0,
            });
            let host = host_hcr(&id, true);
            let guest = crate::guest_traps::guest_hcr(host & !hcr::HOST_ONLY, &f);
            assert_eq!(guest & (hcr::ATA | hcr::ENSCXT), 0, "{id:?}");
            assert_eq!(
                guest & (hcr::API | hcr::APK),
                hcr::API | hcr::APK,
                "keys switched"
            );
        }
    }

    #[test]
    fn scxtnum_is_the_hosts_with_csv2_2_or_csv2_1p2_and_never_a_guests() {
        let csv2_1p2 = HostIdRegs {
            pfr0: 1 << 56,
            pfr1: 2 << 32,
            ..A53
        };
        assert!(csv2_1p2.scxtnum());
        let csv2_1p1 = HostIdRegs {
            pfr0: 1 << 56,
            pfr1: 1 << 32,
            ..A53
        };
        assert!(!csv2_1p1.scxtnum());
        assert!(QEMU_MAX.scxtnum());
        assert_ne!(hcr::HOST_ONLY & hcr::ENSCXT, 0);
        assert_ne!(hcr::HOST_ONLY & hcr::ATA, 0);
    }

    #[test]
    fn host_owns_the_spe_and_trace_buffers_unless_a_higher_level_does() {
        let c = HostControls::for_cpu(&EVERYTHING, true);
        assert_eq!(c.mdcr, mdcr::E2PB_EL1 | mdcr::E2TB_EL1);
        assert_eq!(c.pmscr_el2, Some(PMSCR_EL2_HOST));
        assert_eq!(
            PMSCR_EL2_HOST & 0b11,
            0,
            "E2SPE and E0HSPE clear: EL2 never profiled"
        );
        assert_eq!(c.trfcr_el2, Some(0), "EL2 never traced");
        let el3_owned = HostIdRegs {
            pmbidr: 1 << 4,
            trbidr: 1 << 4,
            ..EVERYTHING
        };
        let c = HostControls::for_cpu(&el3_owned, true);
        assert_eq!(
            c.mdcr,
            mdcr::E2PB_EL1,
            "Linux sets E2PB whenever SPE exists"
        );
        assert_eq!(c.pmscr_el2, None);
        assert_eq!(HostControls::for_cpu(&QEMU_MAX, true).mdcr, 0);
        assert_eq!(HostControls::for_cpu(&A53, false).trfcr_el2, None);
    }

    #[test]
    fn host_hcrx_enables_each_present_feature_and_nothing_else() {
        assert_eq!(
            host_hcrx(&EVERYTHING),
            hcrx::MSCEN
                | hcrx::TCR2EN
                | hcrx::SCTLR2EN
                | hcrx::GCSEN
                | hcrx::ENFPM
                | hcrx::ENALS
                | hcrx::ENASR
                | hcrx::ENAS0
        );
        let hcx_only = HostIdRegs {
            mmfr1: 1 << 40,
            ..A53
        };
        assert_eq!(HostControls::for_cpu(&hcx_only, false).hcrx, Some(0));
        assert_eq!(HostControls::for_cpu(&QEMU_MAX, true).hcrx, None);
        assert_eq!(GUEST_HCRX, 0);
    }

    #[test]
    fn host_fine_grained_traps_open_each_present_features_registers() {
        let c = HostControls::for_cpu(&EVERYTHING, true);
        let fgt = c.fgt.expect("FGT");
        for (name, bit) in [
            ("nTPIDR2_EL0", hfgxtr::NTPIDR2_EL0),
            ("nSMPRI_EL1", hfgxtr::NSMPRI_EL1),
            ("nPIR_EL1", hfgxtr::NPIR_EL1),
            ("nPIRE0_EL1", hfgxtr::NPIRE0_EL1),
            ("nPOR_EL0", hfgxtr::NPOR_EL0),
            ("nPOR_EL1", hfgxtr::NPOR_EL1),
            ("nGCS_EL0", hfgxtr::NGCS_EL0),
            ("nGCS_EL1", hfgxtr::NGCS_EL1),
            ("nACCDATA_EL1", hfgxtr::NACCDATA_EL1),
        ] {
            assert_ne!(fgt.hfgrtr & bit, 0, "read {name}");
            assert_ne!(fgt.hfgwtr & bit, 0, "write {name}");
        }
        assert_eq!(
            fgt.hfgitr,
            hfgitr::NBRBIALL
                | hfgitr::NBRBINJ
                | hfgitr::NGCSEPP
                | hfgitr::NGCSSTR_EL1
                | hfgitr::NGCSPUSHM_EL1
        );
        assert_eq!(
            fgt.hdfgrtr,
            hdfgxtr::NPMSNEVFR_EL1 | hdfgxtr::NBRBDATA | hdfgxtr::NBRBCTL | hdfgxtr::NBRBIDR
        );
        assert_eq!(
            fgt.hdfgwtr,
            hdfgxtr::NPMSNEVFR_EL1 | hdfgxtr::NBRBDATA | hdfgxtr::NBRBCTL
        );
        assert_eq!(c.hafgrtr, Some(0), "AMU counters do not trap");
        assert_eq!(
            c.hdfgxtr2,
            Some(hdfgxtr2::NPMICNTR_EL0 | hdfgxtr2::NPMICFILTR_EL0 | hdfgxtr2::NPMUACR_EL1)
        );
        assert_eq!(c.brbcr_el2, Some(BRBCR_EL2_HOST));
        assert_eq!(
            BRBCR_EL2_HOST & 0b11,
            0,
            "E2BRE, E0HBRE clear: EL2 never recorded"
        );
        assert_eq!(c.smprimap, Some(0));
    }

    #[test]
    fn fgt_without_optional_features_traps_nothing_and_guests_get_every_negative_trap() {
        let fgt_only = HostIdRegs {
            mmfr0: 1 << 56,
            ..A53
        };
        let c = HostControls::for_cpu(&fgt_only, false);
        assert_eq!(c.fgt, Some(FineGrainedTraps::default()));
        assert_eq!(c.hafgrtr, None, "HAFGRTR_EL2 is UNDEFINED without AMU");
        assert_eq!(
            c.hdfgxtr2, None,
            "FGT2 registers are UNDEFINED without FEAT_FGT2"
        );
        assert_eq!(GUEST_FGT, FineGrainedTraps::default());
        assert_eq!(HostControls::for_cpu(&QEMU_MAX, true).fgt, None);
    }
}
