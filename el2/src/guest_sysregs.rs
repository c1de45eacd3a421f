//! A guest's trapped system-register accesses (ESR_EL2.EC = 0x18), and the CPU features
//! the world switch decides its traps from.
//!
//! HCR_EL2.TID1/TID3 send the guest's reads of the ID registers here, and EL2 answers with
//! the sanitised values of `platform::id_regs` (so a guest never sees SVE, SME, a PMU, MTE,
//! RAS... that it cannot use); HCR_EL2.TACR sends ACTLR_EL1 here, which reads as zero and
//! ignores writes (KVM does the same with `access_actlr`, minus the real value: the
//! auxiliary control is the host's, and is IMPLEMENTATION DEFINED). Every other trapped
//! access (TIDCP's IMPLEMENTATION DEFINED registers, set/way maintenance under TSW, PMU,
//! debug, trace, GIC, LOR, error records) is an undefined-instruction exception in the
//! guest, as the architecture gives for a feature that is absent.

use crate::host_abort;
use aarch64_cpu::registers::{
    ELR_EL2, ID_AA64DFR0_EL1, ID_AA64ISAR0_EL1, ID_AA64ISAR1_EL1, ID_AA64MMFR0_EL1,
    ID_AA64MMFR1_EL1, ID_AA64PFR0_EL1, ID_AA64PFR1_EL1, Readable, Writeable,
};
use platform::id_regs::{
    self, CpuFeatures, GuestIdRead, IdReg, IdRegs, SysRegAccess, SysRegEncoding,
};
use spin::Once;

use crate::sysreg::{id_aa64isar2_el1, id_aa64mmfr2_el1};

static FEATURES: Once<CpuFeatures> = Once::new();

/// The features of this machine's CPUs (read once: the payload assumes identical CPUs,
/// as it already does for the stage-2 configuration).
pub fn cpu_features() -> &'static CpuFeatures {
    FEATURES.call_once(|| {
        let f = CpuFeatures::decode(&IdRegs {
            pfr0: ID_AA64PFR0_EL1.get(),
            pfr1: ID_AA64PFR1_EL1.get(),
            dfr0: ID_AA64DFR0_EL1.get(),
            mmfr1: ID_AA64MMFR1_EL1.get(),
            mmfr2: id_aa64mmfr2_el1(),
        });
        log::info!(
            "CPU features the guest traps follow: SVE {}, SME {}, PMUv3 {} (v3p1 {}, v3p5 {}), SPE {}, trace {} (filter {}), AMU {}, RAS {}, LOR {}, GICv3 system registers {}, S2FWB {} ({}), pointer auth {}",
            f.sve,
            f.sme,
            f.pmu,
            f.pmu_v3p1,
            f.pmu_v3p5,
            f.spe,
            f.trace_sysregs,
            f.trace_filter,
            f.amu,
            f.ras,
            f.lor,
            f.gic_sysregs,
            f.fwb,
            if f.fwb {
                "guests' stage 2 forces Write-Back"
            } else {
                "VM_DONATE cleans pages to PoC"
            },
            has_pointer_auth()
        );
        f
    })
}

/// FEAT_PAuth, from the fields that say so (ID_AA64ISAR1_EL1 APA/API/GPA/GPI,
/// ID_AA64ISAR2_EL1 APA3/GPA3).
pub fn has_pointer_auth() -> bool {
    id_regs::has_pointer_auth(ID_AA64ISAR1_EL1.get(), id_aa64isar2_el1())
}

fn real_value(reg: IdReg) -> u64 {
    match reg {
        IdReg::Pfr0 => ID_AA64PFR0_EL1.get(),
        IdReg::Pfr1 => ID_AA64PFR1_EL1.get(),
        IdReg::Dfr0 => ID_AA64DFR0_EL1.get(),
        IdReg::Isar0 => ID_AA64ISAR0_EL1.get(),
        IdReg::Isar1 => ID_AA64ISAR1_EL1.get(),
        IdReg::Isar2 => id_aa64isar2_el1(),
        IdReg::Mmfr0 => ID_AA64MMFR0_EL1.get(),
        IdReg::Mmfr1 => ID_AA64MMFR1_EL1.get(),
        IdReg::Mmfr2 => id_aa64mmfr2_el1(),
    }
}

/// ACTLR_EL1: (3, 0, 1, 0, 1).
const ACTLR_EL1: SysRegEncoding = SysRegEncoding::new(3, 0, 1, 0, 1);

/// What a guest read returns, or `None` for an access EL2 does not emulate.
fn emulated_read(reg: SysRegEncoding, ipa_bits: u32) -> Option<u64> {
    if reg == ACTLR_EL1 {
        return Some(0);
    }
    match id_regs::guest_id_read(reg)? {
        GuestIdRead::Zero => Some(0),
        GuestIdRead::Sanitised(id) => Some(id_regs::sanitise(id, real_value(id), ipa_bits)),
    }
}

/// Handles a guest's trapped MSR/MRS with syndrome `esr`: emulates it and steps over the
/// instruction, or makes it an undefined-instruction exception in the guest. `x` holds the
/// guest's x0-x30; `ipa_bits` is its VM's IPA size.
pub fn handle(esr: u64, x: &mut [u64; 31], ipa_bits: u32) {
    let access = SysRegAccess::from_iss(esr & 0x1ff_ffff);
    let handled = if access.read {
        match emulated_read(access.reg, ipa_bits) {
            Some(value) => {
                if let Some(r) = x.get_mut(usize::from(access.rt)) {
                    *r = value;
                }
                true
            }
            None => false,
        }
    } else {
        // Writes: ACTLR_EL1 ignores them; an MSR to an ID register is UNDEFINED anyway.
        access.reg == ACTLR_EL1
    };
    if handled {
        ELR_EL2.set(ELR_EL2.get() + 4);
    } else {
        host_abort::inject_undefined(esr);
    }
}
