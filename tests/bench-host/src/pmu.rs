//! The PMU as the bench uses it: event counter 0 counts INST_RETIRED at EL2 only, counter 1
//! INST_RETIRED at EL1 only (the host's and, while a vCPU runs, the guest's EL1).
//!
//! EL1 may do this because the payload gives the host every counter and lets it count EL2
//! (MDCR_EL2.HPMN = PMCR_EL0.N, HPMD = 0; floor.rs does the same). QEMU implements
//! INST_RETIRED only with `-icount`; at `shift=0` it counts exactly.

use core::arch::asm;

/// Common event 0x08: instruction architecturally executed.
const INST_RETIRED: u64 = 0x08;
/// PMEVTYPER<n>_EL0.P: do not count at EL1.
const FILTER_NOT_EL1: u64 = 1 << 31;
/// PMEVTYPER<n>_EL0.U: do not count at EL0.
const FILTER_NOT_EL0: u64 = 1 << 30;
/// PMEVTYPER<n>_EL0.NSH: count at (non-secure) EL2.
const FILTER_EL2: u64 = 1 << 27;
/// PMCR_EL0.E: counters enabled; .P: reset the event counters.
const PMCR_ENABLE: u64 = 1 << 0;
const PMCR_RESET_EVENTS: u64 = 1 << 1;

/// Counter 0: EL2 only.
pub const EL2_EVENT: u64 = INST_RETIRED | FILTER_NOT_EL1 | FILTER_NOT_EL0 | FILTER_EL2;
/// Counter 1: EL1 only.
pub const EL1_EVENT: u64 = INST_RETIRED | FILTER_NOT_EL0;

/// Programs counters 0 and 1 and starts them; `Err` says why the bench cannot count.
pub fn init() -> Result<(), &'static str> {
    let (pmceid0, pmcr): (u64, u64);
    // SAFETY: reading the PMU's identification and control registers has no side effect;
    // the payload does not trap them for the host (MDCR_EL2.TPM and TPMCR are clear).
    unsafe {
        asm!(
            "mrs {0}, pmceid0_el0",
            "mrs {1}, pmcr_el0",
            out(reg) pmceid0,
            out(reg) pmcr,
            options(nomem, nostack, preserves_flags),
        );
    }
    if pmceid0 & (1 << INST_RETIRED) == 0 {
        return Err("the PMU does not count INST_RETIRED: QEMU must run with -icount shift=0");
    }
    if (pmcr >> 11) & 0x1f < 2 {
        return Err("the PMU has fewer than 2 event counters for EL1");
    }
    // SAFETY: only the PMU's own state changes: counters 0 and 1 are stopped, given their
    // events, reset, and started. Nothing else in this image uses the PMU.
    unsafe {
        asm!(
            "msr pmcntenclr_el0, {all}",
            "msr pmevtyper0_el0, {el2}",
            "msr pmevtyper1_el0, {el1}",
            "msr pmcr_el0, {pmcr}",
            "msr pmcntenset_el0, {both}",
            "isb",
            all = in(reg) u64::from(u32::MAX),
            el2 = in(reg) EL2_EVENT,
            el1 = in(reg) EL1_EVENT,
            pmcr = in(reg) pmcr | PMCR_ENABLE | PMCR_RESET_EVENTS,
            both = in(reg) 0b11u64,
            options(nomem, nostack, preserves_flags),
        );
    }
    Ok(())
}
