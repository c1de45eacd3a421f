//! The host's CPU features at EL2: the controls of `platform::host_controls` (which holds
//! the audit against Linux's nVHE host set-up), written on every CPU before it first
//! enters the host, and the feature state a guest run must not see or change, stopped or
//! switched around each run.
//!
//! Around a guest run (pKVM's `__debug_save_spe`/`__debug_save_brbe` order): the host's
//! statistical profiling and branch recording are stopped and drained before the guest's
//! stage 2 is loaded (their buffers are written through the host's translation, which is
//! about to change, and must never hold a guest record); HCRX_EL2 and the fine-grained
//! traps go to the guest's values, so the registers the host was given through them
//! (TCR2_EL1, PIR_EL1, POR_EL0, GCS, FPMR, TPIDR2_EL0...) are not the guest's; and
//! TPIDR2_EL0, which no trap covers on a CPU with SME but no FEAT_FGT, is saved and zeroed.

use crate::per_cpu::CpuState;
use aarch64_cpu::registers::{
    HDFGRTR_EL2, HDFGWTR_EL2, HFGITR_EL2, HFGRTR_EL2, HFGWTR_EL2, ID_AA64DFR0_EL1,
    ID_AA64ISAR1_EL1, ID_AA64MMFR0_EL1, ID_AA64MMFR1_EL1, ID_AA64PFR0_EL1, ID_AA64PFR1_EL1,
    Readable, Writeable,
};
use core::sync::atomic::Ordering;
use platform::host_controls::{FineGrainedTraps, GUEST_FGT, GUEST_HCRX, HostControls, HostIdRegs};
use spin::Once;

/// Reads a register by its encoding (for registers `aarch64-cpu` does not model, and so
/// that no target feature is needed to assemble them).
macro_rules! mrs {
    ($reg:literal) => {{
        let value: u64;
        // SAFETY: reading this register has no side effect; every caller reads it only
        // where the feature that defines it exists.
        unsafe {
            core::arch::asm!(concat!("mrs {}, ", $reg), out(reg) value, options(nomem, nostack, preserves_flags))
        };
        value
    }};
}

/// Writes a register by its encoding.
macro_rules! msr {
    ($reg:literal, $value:expr) => {{
        let value: u64 = $value;
        // SAFETY: each caller writes an EL2 control of the host's feature set (or an EL1
        // register of the host it saved and puts back) only where the feature exists;
        // none of them changes memory the compiler knows about.
        unsafe {
            core::arch::asm!(concat!("msr ", $reg, ", {}"), in(reg) value, options(nostack, preserves_flags))
        };
    }};
}

static CONTROLS: Once<HostControls> = Once::new();

/// The host's controls on this machine's CPUs (read once, on the boot CPU: the payload
/// assumes identical CPUs, as for the stage-2 configuration).
pub fn controls() -> &'static HostControls {
    CONTROLS.call_once(|| {
        let pfr0 = ID_AA64PFR0_EL1.get();
        let pfr1 = ID_AA64PFR1_EL1.get();
        let dfr0 = ID_AA64DFR0_EL1.get();
        let mut id = HostIdRegs {
            pfr0,
            pfr1,
            pfr2: mrs!("s3_0_c0_c4_2"),
            dfr0,
            isar1: ID_AA64ISAR1_EL1.get(),
            isar2: crate::sysreg::id_aa64isar2_el1(),
            mmfr0: ID_AA64MMFR0_EL1.get(),
            mmfr1: ID_AA64MMFR1_EL1.get(),
            mmfr3: mrs!("s3_0_c0_c7_3"),
            smfr0: mrs!("s3_0_c0_c4_5"),
            ..HostIdRegs::default()
        };
        // PMBIDR_EL1, TRBIDR_EL1 and SMIDR_EL1 are UNDEFINED without their feature.
        if id.spe() {
            id.pmbidr = mrs!("s3_0_c9_c10_7");
        }
        if id.trbe() {
            id.trbidr = mrs!("s3_0_c9_c11_7");
        }
        if id.sme() {
            id.smidr = mrs!("s3_1_c0_c0_6");
        }
        if id.mpam() {
            id.mpamidr = mrs!("s3_0_c10_c4_4"); // MPAMIDR_EL1
        }
        let c = HostControls::for_cpu(&id, crate::guest_sysregs::has_pointer_auth());
        log::info!(
            "host controls (every CPU feature is the host's): HCR_EL2 {:#x}, MDCR_EL2 {:#x} + HPMN, HCRX_EL2 {}, SMCR_EL2 {}, fine-grained traps {}",
            c.hcr,
            c.mdcr,
            Hex(c.hcrx),
            Hex(c.smcr),
            if c.fgt.is_some() { "set" } else { "absent" },
        );
        if let Some(m) = &c.mpam {
            log::info!(
                "MPAM: the host's (MPAM2_EL2 {:#x}); guest runs trap it (MPAM2_EL2 {:#x}{})",
                m.host_mpam2,
                m.guest_mpam2,
                if m.hcr.is_some() {
                    ", MPAMHCR_EL2.TRAP_MPAMIDR_EL1"
                } else {
                    ""
                }
            );
        }
        c
    })
}

/// An optional register value in hex, or "absent" (its feature is).
struct Hex(Option<u64>);

impl core::fmt::Display for Hex {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self.0 {
            Some(v) => write!(f, "{v:#x}"),
            None => f.write_str("absent"),
        }
    }
}

fn write_fgt(f: &FineGrainedTraps) {
    HFGRTR_EL2.set(f.hfgrtr);
    HFGWTR_EL2.set(f.hfgwtr);
    HFGITR_EL2.set(f.hfgitr);
    HDFGRTR_EL2.set(f.hdfgrtr);
    HDFGWTR_EL2.set(f.hdfgwtr);
}

/// Writes this CPU's feature controls for the host (all but HCR_EL2, MDCR_EL2 and
/// CPTR_EL2, which `el2_regs` writes). Many of them reset to UNKNOWN values.
pub fn configure_this_cpu() {
    let c = controls();
    if let Some(zcr) = c.zcr {
        // SAFETY: ZCR_EL2.LEN only caps the vector length EL1 may choose.
        unsafe { crate::sysreg::set_zcr_el2(zcr) };
    }
    if let Some(smcr) = c.smcr {
        // SAFETY: SMCR_EL2 caps the streaming vector length and enables FA64/ZT0 for EL1.
        unsafe { crate::sysreg::set_smcr_el2(smcr) };
    }
    if let Some(map) = c.smprimap {
        msr!("s3_4_c1_c2_5", map); // SMPRIMAP_EL2
    }
    if let Some(hcrx) = c.hcrx {
        // SAFETY: HCRX_EL2 only enables features for EL1/EL0 (host_controls::host_hcrx).
        unsafe { crate::sysreg::set_hcrx_el2(hcrx) };
    }
    if let Some(fgt) = &c.fgt {
        write_fgt(fgt);
    }
    if let Some(hafgrtr) = c.hafgrtr {
        msr!("s3_4_c3_c1_6", hafgrtr); // HAFGRTR_EL2
    }
    if let Some(d2) = c.hdfgxtr2 {
        msr!("s3_4_c3_c1_0", d2); // HDFGRTR2_EL2
        msr!("s3_4_c3_c1_1", d2); // HDFGWTR2_EL2
        msr!("s3_4_c3_c1_2", 0); // HFGRTR2_EL2
        msr!("s3_4_c3_c1_3", 0); // HFGWTR2_EL2
        msr!("s3_4_c3_c1_7", 0); // HFGITR2_EL2
    }
    if let Some(pmscr) = c.pmscr_el2 {
        msr!("s3_4_c9_c9_0", pmscr); // PMSCR_EL2
    }
    if let Some(trfcr) = c.trfcr_el2 {
        msr!("s3_4_c1_c2_1", trfcr); // TRFCR_EL2
    }
    if let Some(brbcr) = c.brbcr_el2 {
        msr!("s2_4_c9_c0_0", brbcr); // BRBCR_EL2
    }
    if let Some(m) = &c.mpam {
        write_mpam(m.host_mpam2, m.hcr.map(|(host, _)| host));
    }
}

/// MPAM2_EL2 and, where it exists, MPAMHCR_EL2 (Linux's `__init_el2_mpam` and KVM's
/// `__activate_traps_mpam` write the same registers, in this order).
fn write_mpam(mpam2: u64, mpamhcr: Option<u64>) {
    msr!("s3_4_c10_c5_0", mpam2); // MPAM2_EL2
    if let Some(hcr) = mpamhcr {
        msr!("s3_4_c10_c4_0", hcr); // MPAMHCR_EL2
    }
}

/// PMBLIMITR_EL1.E: the host's profiling buffer is enabled.
const PMBLIMITR_E: u64 = 1;
/// BRBCR_EL1.E0BRE and .E1BRE: branch recording at EL0/EL1.
const BRBCR_EL1_RECORDING: u64 = 0b11;

/// Before a guest run, on the CPU whose state is `saved` (the caller's own), before the
/// guest's stage 2 is loaded. `c` is [`controls`] (the caller has it already).
pub fn enter_guest(c: &HostControls, saved: &CpuState) {
    // What this function takes from the host lives in the CPU's own state
    // (`per_cpu::CpuState::host_pmscr`, `host_brbcr`, `host_tpidr2`): every CPU has one.
    if c.pmscr_el2.is_some() {
        // The host's profiling stops for the run and what it sampled reaches memory under
        // the host's translation: PMSCR_EL1 = 0, `psb csync`, `dsb nsh`.
        let pmscr = if mrs!("s3_0_c9_c10_0") & PMBLIMITR_E != 0 {
            let pmscr = mrs!("s3_0_c9_c9_0");
            msr!("s3_0_c9_c9_0", 0);
            aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
            // SAFETY: PSB CSYNC (hint #17) and DSB only order profiling writes.
            unsafe { core::arch::asm!("hint #17", "dsb nsh", options(nostack, preserves_flags)) };
            pmscr
        } else {
            0
        };
        saved.host_pmscr.store(pmscr, Ordering::Relaxed);
    }
    if c.brbcr_el2.is_some() {
        let brbcr = mrs!("s2_1_c9_c0_0");
        if brbcr & BRBCR_EL1_RECORDING != 0 {
            msr!("s2_1_c9_c0_0", 0);
            aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
        }
        saved.host_brbcr.store(brbcr, Ordering::Relaxed);
    }
    if c.smcr.is_some() {
        saved
            .host_tpidr2
            .store(mrs!("s3_3_c13_c0_5"), Ordering::Relaxed);
        msr!("s3_3_c13_c0_5", 0);
    }
    if let Some(hcrx) = c.hcrx
        && hcrx != GUEST_HCRX
    {
        // SAFETY: the guest's HCRX_EL2 enables nothing.
        unsafe { crate::sysreg::set_hcrx_el2(GUEST_HCRX) };
    }
    if let Some(fgt) = &c.fgt
        && *fgt != GUEST_FGT
    {
        write_fgt(&GUEST_FGT);
    }
    if let Some(m) = &c.mpam {
        // Every MPAM register traps for the guest: its partition would otherwise be the
        // host's MPAM1_EL1, which is not switched.
        write_mpam(m.guest_mpam2, m.hcr.map(|(_, guest)| guest));
    }
}

/// After a guest run, on the CPU whose state is `saved`: the host's values of everything
/// `enter_guest` changed. `c` is [`controls`].
pub fn leave_guest(c: &HostControls, saved: &CpuState) {
    if let Some(m) = &c.mpam {
        write_mpam(m.host_mpam2, m.hcr.map(|(host, _)| host));
    }
    if let Some(fgt) = &c.fgt
        && *fgt != GUEST_FGT
    {
        write_fgt(fgt);
    }
    if let Some(hcrx) = c.hcrx
        && hcrx != GUEST_HCRX
    {
        // SAFETY: as in `configure_this_cpu`.
        unsafe { crate::sysreg::set_hcrx_el2(hcrx) };
    }
    if c.smcr.is_some() {
        msr!("s3_3_c13_c0_5", saved.host_tpidr2.load(Ordering::Relaxed));
    }
    if c.brbcr_el2.is_some() {
        let brbcr = saved.host_brbcr.load(Ordering::Relaxed);
        if brbcr & BRBCR_EL1_RECORDING != 0 {
            msr!("s2_1_c9_c0_0", brbcr);
        }
    }
    if c.pmscr_el2.is_some() {
        let pmscr = saved.host_pmscr.load(Ordering::Relaxed);
        if pmscr != 0 {
            msr!("s3_0_c9_c9_0", pmscr);
        }
    }
}
