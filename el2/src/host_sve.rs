//! The host's SVE (and SME streaming-mode) registers across a guest run.
//!
//! The world switch saves and restores the 128-bit V registers of each world
//! (`el1_state`). On a CPU with SVE that is not enough for the host: every write of a V
//! register zeroes the upper bits of its Z register, and P0-P15/FFR hold host state too.
//! So on such a CPU EL2 saves the host's whole SVE register file before the guest's state
//! goes in, and puts it back after the host's V registers are back (asm/sve.S).
//!
//! A host in SME streaming mode (PSTATE.SM = 1) at its VCPU_RUN: AdvSIMD instructions are
//! illegal in streaming mode (without FEAT_SME_FA64), so EL2 could not even save the V
//! registers; EL2 saves the streaming Z/P registers, leaves streaming mode for the run
//! (`smstop sm`), and enters it again before restoring them (`smstart sm` zeroes them).
//! ZA (PSTATE.ZA) is untouched: neither the guest (CPTR_EL2.TSM) nor EL2 can touch it.
//! Guests themselves get no SVE or SME (CPTR_EL2.TZ/TSM) and see none in their ID
//! registers.

use crate::per_cpu::CpuState;
use crate::{guest_sysregs, sysreg};

/// The largest vector length the architecture allows: 2048 bits.
const MAX_VL_BYTES: usize = 256;
/// Z0-Z31, P0-P15 and FFR at the largest vector length.
const STATE_BYTES: usize = 32 * MAX_VL_BYTES + 17 * (MAX_VL_BYTES / 8);

#[repr(C, align(16))]
pub struct SveState {
    bytes: [u8; STATE_BYTES],
    /// The host was in streaming mode (SVCR.SM) at its VCPU_RUN.
    streaming: bool,
    /// The host's FPSR, which entering and leaving streaming mode overwrite.
    fpsr: u64,
}

impl SveState {
    /// One save area per CPU (`per_cpu::CpuState::host_sve`); each CPU uses only its own,
    /// inside its own VCPU_RUN.
    pub const INIT: Self = Self {
        bytes: [0; STATE_BYTES],
        streaming: false,
        fpsr: 0,
    };
}

unsafe extern "C" {
    fn sve_save(buffer: *mut u8, with_ffr: u64);
    fn sve_load(buffer: *const u8, with_ffr: u64);
    fn sve_vector_bytes() -> u64;
}

/// SVCR.SM: streaming mode.
const SVCR_SM: u64 = 1 << 0;

/// FPSR, by encoding (S3_3_C4_C4_1): EL2 is built without the FP extension.
fn fpsr() -> u64 {
    let value: u64;
    // SAFETY: reading FPSR has no side effect.
    unsafe {
        core::arch::asm!("mrs {}, s3_3_c4_c4_1", out(reg) value, options(nomem, nostack, preserves_flags))
    };
    value
}

fn set_fpsr(value: u64) {
    // SAFETY: FPSR holds only floating-point status flags, the host's own.
    unsafe {
        core::arch::asm!("msr s3_3_c4_c4_1, {}", in(reg) value, options(nostack, preserves_flags))
    };
}

/// Saves the host's SVE state (call before any V register changes) into `this_cpu`, the
/// calling CPU's own state.
pub fn save_host(this_cpu: &CpuState) {
    let f = guest_sysregs::cpu_features();
    if !f.sve && !f.sme {
        return;
    }
    let streaming = f.sme && sysreg::svcr() & SVCR_SM != 0;
    if !streaming && !f.sve {
        return;
    }
    // SAFETY: EL2 runs with CPTR_EL2.TZ/TSM clear for the host here (the guest's traps are
    // not loaded yet); `sve_vector_bytes` only reads the vector length.
    let vl = unsafe { sve_vector_bytes() } as usize;
    let slot = this_cpu.host_sve.get();
    // SAFETY: this CPU's slot, used by nothing else while this VCPU_RUN lasts; the buffer
    // holds STATE_BYTES, which covers 32 * VL + 17 * VL / 8 for every VL up to the maximum
    // (checked here, so a CPU with a larger VL than the architecture allows stops EL2
    // from writing past the buffer).
    unsafe {
        (*slot).streaming = streaming;
        if vl > MAX_VL_BYTES {
            return;
        }
        sve_save((&raw mut (*slot).bytes).cast(), u64::from(!streaming));
        if streaming {
            (*slot).fpsr = fpsr();
            // SMSTOP SM (MSR SVCRSM, #0): leave streaming mode for the run.
            core::arch::asm!(".inst 0xd503427f", options(nostack, preserves_flags));
        }
    }
}

/// Puts the host's SVE state back (call after the host's V registers are back) from
/// `this_cpu`, the calling CPU's own state.
pub fn restore_host(this_cpu: &CpuState) {
    let f = guest_sysregs::cpu_features();
    if !f.sve && !f.sme {
        return;
    }
    let slot = this_cpu.host_sve.get();
    // SAFETY: as in `save_host`: this CPU's slot, filled by `save_host` in this VCPU_RUN.
    unsafe {
        let streaming = (*slot).streaming;
        if streaming {
            // SMSTART SM (MSR SVCRSM, #1): back into streaming mode (zeroes Z/P/FFR).
            core::arch::asm!(".inst 0xd503437f", options(nostack, preserves_flags));
        } else if !f.sve {
            return;
        }
        if sve_vector_bytes() as usize > MAX_VL_BYTES {
            return;
        }
        sve_load((&raw const (*slot).bytes).cast(), u64::from(!streaming));
        if streaming {
            set_fpsr((*slot).fpsr);
        }
    }
}
