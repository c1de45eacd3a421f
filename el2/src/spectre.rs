//! Branch-predictor hardening on guest exit (Spectre-v2, CVE-2017-5715, and Spectre-BHB,
//! CVE-2022-23960): on an affected CPU a guest could train the branch predictors so that
//! EL2's first indirect branches after its exit go where the guest wants, speculatively.
//! pKVM installs `__bp_harden_hyp_vecs`, whose entries run a mitigation before anything
//! else; here the guest exit path (`guest_exit_common` in asm/vectors.S) runs the one
//! chosen below, before its first branch back into Rust:
//! - the firmware's SMCCC_ARCH_WORKAROUND_3 (which covers Spectre-v2 as well) or
//!   SMCCC_ARCH_WORKAROUND_1, when the firmware (SMCCC 1.1) says this CPU needs it
//!   (ARCH_FEATURES returns 0), and EL2 reaches the firmware by SMC;
//! - otherwise CLRBHB (FEAT_CLRBHB) on a CPU that is not BHB-safe by its ID registers
//!   (CSV2_3, ECBHB).
//!
//! Each CPU decides at bring-up and the strongest choice of any CPU is used on all of them
//! (a mitigation on a CPU that does not need it costs time, never safety). What this does
//! not do (pKVM does): the per-MIDR branch-loop counts for cores whose firmware has no
//! SMCCC 1.1, and hardening of host exceptions into EL2.

use crate::{firmware_smccc, psci_relay, sysreg};
use aarch64_cpu::registers::{ID_AA64MMFR1_EL1, ID_AA64PFR0_EL1, Readable};
use core::sync::atomic::{AtomicU64, Ordering};
use platform::id_regs::field;
use platform::psci::Conduit;
use smccc::arch::{SMCCC_ARCH_WORKAROUND_1, SMCCC_ARCH_WORKAROUND_3};

/// What `guest_exit_common` runs (read from asm by name): 0 nothing, 1 CLRBHB, 2 an SMC
/// to SMCCC_ARCH_WORKAROUND_1, 3 an SMC to SMCCC_ARCH_WORKAROUND_3.
#[unsafe(no_mangle)]
static GUEST_EXIT_MITIGATION: AtomicU64 = AtomicU64::new(0);

const NONE: u64 = 0;
const CLRBHB: u64 = 1;
const SMC_WORKAROUND_1: u64 = 2;
const SMC_WORKAROUND_3: u64 = 3;

/// Decides this CPU's guest-exit mitigation (once per CPU bring-up, after the PSCI relay
/// knows the firmware's conduit).
pub fn choose_for_this_cpu() {
    let needed = |workaround| firmware_smccc::workaround_features(workaround) == Some(0);
    let by_smc = psci_relay::firmware_conduit() == Conduit::Smc;
    let bhb_safe = field(ID_AA64PFR0_EL1.get(), 56) >= 3 || field(ID_AA64MMFR1_EL1.get(), 60) != 0;
    let has_clrbhb = field(sysreg::id_aa64isar2_el1(), 28) != 0;
    let choice = if by_smc && needed(SMCCC_ARCH_WORKAROUND_3) {
        SMC_WORKAROUND_3
    } else if by_smc && needed(SMCCC_ARCH_WORKAROUND_1) {
        SMC_WORKAROUND_1
    } else if has_clrbhb && !bhb_safe {
        CLRBHB
    } else {
        NONE
    };
    let before = GUEST_EXIT_MITIGATION.fetch_max(choice, Ordering::AcqRel);
    if choice > before {
        log::info!(
            "guest exits harden the branch predictors with {}",
            match choice {
                SMC_WORKAROUND_3 => "SMCCC_ARCH_WORKAROUND_3",
                SMC_WORKAROUND_1 => "SMCCC_ARCH_WORKAROUND_1",
                _ => "CLRBHB",
            }
        );
    }
}
