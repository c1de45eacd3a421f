//! Host stage-2 faults, and exceptions EL2 sends back into the host.
//!
//! A stage-2 *translation* fault on a page the host owns is EL2's own doing (a block
//! unmapped so it could be split): the page is mapped again and the access retried. Any
//! other stage-2 fault (the carve-out, a guest's page, an address nothing maps) becomes a
//! synchronous external abort taken at the host's EL1, exactly as if the memory system had
//! failed the access: Linux then kills the offending process (SIGBUS) or oopses, and EL2
//! carries on.
//!
//! Only a translation fault can be fixed by mapping
//! (`stage2::host_fault_is_fixable_by_mapping`). Every other fault status (permission: an
//! instruction fetch from MMIO, which the host stage-2 maps execute-never; access flag;
//! address size; alignment; an atomic or exclusive access the memory type does not support,
//! DFSC 0x35; TLB conflict; external aborts) would fault again on the same mapping, so
//! retrying it would keep the CPU in EL2 forever: it is an abort in the host.
//!
//! EL2 emulates no MMIO access for the host (the host's devices are mapped in its stage-2
//! or not at all), so no host PC is ever advanced here; guest MMIO emulation advances the
//! guest's PC by [`instruction_len`], as ESR_EL2.IL says.

use crate::record;
use aarch64_cpu::registers::{
    ELR_EL1, ELR_EL2, ESR_EL1, FAR_EL1, FAR_EL2, HPFAR_EL2, ID_AA64MMFR1_EL1, ID_AA64PFR1_EL1,
    Readable, SCTLR_EL1, SPSR_EL1, SPSR_EL2, VBAR_EL1, Writeable,
};
use stage2::FaultAction;

const EC_UNKNOWN: u64 = 0x00;
const EC_IABT_LOW: u64 = 0x20;
const EC_IABT_CUR: u64 = 0x21;
const EC_DABT_LOW: u64 = 0x24;
const EC_DABT_CUR: u64 = 0x25;
/// ESR.IL: the trapped instruction was 32 bits wide.
const ESR_IL: u64 = 1 << 25;
/// DFSC/IFSC: synchronous external abort, not on a translation table walk.
const FSC_SEA: u64 = 0x10;
/// ESR.ISS.WnR for data aborts.
const ESR_WNR: u64 = 1 << 6;

/// IPA of the faulting access: HPFAR_EL2 holds IPA[47:12] in bits [43:4].
pub fn fault_ipa() -> u64 {
    ((HPFAR_EL2.get() >> 4) << 12) | (FAR_EL2.get() & 0xfff)
}

/// The size of the instruction that trapped, from ESR_ELx.IL: 4 bytes (A64, A32, 32-bit
/// T32), or 2 for a 16-bit T32 instruction (an AArch32 EL0). Emulating an access means
/// stepping over exactly that instruction.
pub fn instruction_len(esr: u64) -> u64 {
    if esr & ESR_IL != 0 { 4 } else { 2 }
}

pub fn handle_stage2_abort(esr: u64) {
    let ipa = fault_ipa();
    let action = if stage2::host_fault_is_fixable_by_mapping(esr) {
        record::lock().map_or(FaultAction::InjectAbort, |mut r| {
            r.host_handle_fault(ipa as usize)
        })
    } else {
        FaultAction::InjectAbort
    };
    match action {
        // RetryLater: a page of a VM whose VM_DESTROY is under way on another CPU; the host
        // faults on it again until the teardown is over (docs/abi.md 8).
        FaultAction::MapAndRetry | FaultAction::RetryLater => return,
        FaultAction::InjectAbort => {}
        FaultAction::PoolExhausted => {
            // The pool is sized for the worst case (stage2::memory_plan), so this is EL2's own bug;
            // the host still only sees an abort, never a hang.
            log::error!("host stage-2 pool exhausted at IPA {ipa:#x}: injecting an abort");
        }
    }
    let ec = esr >> 26;
    let (low, cur) = if ec == EC_IABT_LOW {
        (EC_IABT_LOW, EC_IABT_CUR)
    } else {
        (EC_DABT_LOW, EC_DABT_CUR)
    };
    let from_el0 = SPSR_EL2.get() & 0xf == 0;
    let class = if from_el0 { low } else { cur };
    let wnr = if ec == EC_DABT_LOW { esr & ESR_WNR } else { 0 };
    inject_sync(
        class << 26 | (esr & ESR_IL) | wnr | FSC_SEA,
        Some(FAR_EL2.get()),
    );
}

/// Answers an exception class EL2 does not handle with an undefined-instruction exception
/// in the host.
pub fn inject_undefined(esr: u64) {
    inject_sync(EC_UNKNOWN << 26 | (esr & ESR_IL), None);
}

/// Makes the host take a synchronous exception with syndrome `esr` at EL1, as the
/// architecture would (Arm ARM "Exception entry"; KVM's `enter_exception64` does the same):
/// the interrupted PC and PSTATE go to ELR_EL1/SPSR_EL1, and the host resumes at its
/// synchronous vector for the EL and stack it was using, in EL1h with DAIF masked.
fn inject_sync(esr: u64, far: Option<u64>) {
    let spsr = SPSR_EL2.get();
    let offset = match spsr & 0xf {
        0b0100 => 0x000,                    // EL1t: current EL with SP_EL0
        0b0101 => 0x200,                    // EL1h: current EL with SP_EL1
        _ if spsr & (1 << 4) != 0 => 0x600, // AArch32 EL0
        _ => 0x400,                         // AArch64 EL0
    };
    ESR_EL1.set(esr);
    if let Some(far) = far {
        FAR_EL1.set(far);
    }
    ELR_EL1.set(ELR_EL2.get());
    SPSR_EL1.set(spsr);
    ELR_EL2.set(VBAR_EL1.get() + offset);

    let sctlr = SCTLR_EL1.get();
    // PAN is kept, and set on exception entry unless SCTLR_EL1.SPAN says otherwise; DIT is
    // kept; SSBS comes from SCTLR_EL1.DSSBS; everything else starts clear.
    const PAN: u64 = 1 << 22;
    const DIT: u64 = 1 << 24;
    const SSBS: u64 = 1 << 12;
    let has_pan = (ID_AA64MMFR1_EL1.get() >> 20) & 0xf != 0;
    let has_ssbs = (ID_AA64PFR1_EL1.get() >> 4) & 0xf != 0;
    let mut new = (spsr & (PAN | DIT)) | 0x3c5;
    if has_pan && sctlr & (1 << 23) == 0 {
        new |= PAN;
    }
    if has_ssbs && sctlr & (1 << 44) != 0 {
        new |= SSBS;
    }
    SPSR_EL2.set(new);
}
