//! Branch-predictor hardening on every entry into EL2 from a lower EL (Spectre-v2,
//! CVE-2017-5715, and Spectre-BHB, CVE-2022-23960): on an affected CPU the host or a guest
//! could train the branch predictors so that EL2's first indirect branches after the entry
//! go where it wants, speculatively. pKVM installs `__bp_harden_hyp_vecs` for the host's
//! and the guests' entries alike (the host is not trusted either); here `el2_vectors` (every
//! synchronous exception from the host: HVCs, SMC and system-register traps, aborts) and
//! `guest_vectors` (every guest exit, in `guest_exit_common`) run `run_branch_hardening`
//! (asm/vectors.S) before their first indirect branch. What it runs is the word
//! [`BRANCH_HARDENING`].
//!
//! Each CPU chooses at bring-up, in Linux's order (`platform::branch_hardening`, from
//! arch/arm64/kernel/proton-pack.c): nothing with CSV2_3, a safe-list core or ECBHB; else
//! CLRBHB; else Linux's branch loop with the core's k (8 for Cortex-A57/A72, 24 for
//! A76/A77/N1, ...); else the firmware's SMCCC_ARCH_WORKAROUND_3; a CPU whose firmware
//! offers SMCCC_ARCH_WORKAROUND_1 for Spectre-v2 makes that SMC instead (WORKAROUND_3 when
//! the BHB choice is the firmware). The vectors are shared, so the word holds the union of
//! every CPU's choice and the largest k (a mitigation a CPU does not need costs time, never
//! safety). The firmware is asked only through EL2's SMC conduit and only if it implements
//! SMCCC 1.1 (`firmware_smccc`).

use crate::{firmware_smccc, psci_relay, sysreg};
use aarch64_cpu::registers::{ID_AA64MMFR1_EL1, ID_AA64PFR0_EL1, MIDR_EL1, Readable};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use platform::branch_hardening::{self, CpuSpeculation, Firmware, Mitigation, word};
use platform::midr::Midr;
use platform::psci::Conduit;
use smccc::arch::{SMCCC_ARCH_WORKAROUND_1, SMCCC_ARCH_WORKAROUND_3};

/// What `run_branch_hardening` runs (read from asm by name): `platform::branch_hardening::word`.
#[unsafe(no_mangle)]
static BRANCH_HARDENING: AtomicU64 = AtomicU64::new(0);

/// A CPU left exposed has been reported (once, not per CPU).
static EXPOSURE_REPORTED: AtomicBool = AtomicBool::new(false);

/// Decides this CPU's hardening (once per CPU bring-up, after the PSCI relay knows the
/// firmware's conduit), and notes whether it needs the speculative-AT sequences.
pub fn choose_for_this_cpu() {
    let midr = Midr(MIDR_EL1.get());
    let by_smc = psci_relay::firmware_conduit() == Conduit::Smc;
    let firmware = |workaround| match firmware_smccc::workaround_features(workaround) {
        Some(x0) if by_smc => Firmware::from_features(x0),
        _ => Firmware::NoMitigation,
    };
    let cpu = CpuSpeculation {
        midr,
        id_aa64pfr0: ID_AA64PFR0_EL1.get(),
        id_aa64mmfr1: ID_AA64MMFR1_EL1.get(),
        id_aa64isar2: sysreg::id_aa64isar2_el1(),
        workaround_1: firmware(SMCCC_ARCH_WORKAROUND_1),
        workaround_3: firmware(SMCCC_ARCH_WORKAROUND_3),
    };
    let choice = branch_hardening::choose(&cpu);
    let mine = word::encode(choice.mitigation);
    let before = BRANCH_HARDENING
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
            Some(word::union(w, mine))
        })
        .unwrap_or_else(|w| w);
    if word::union(before, mine) != before {
        match choice.mitigation {
            Mitigation::None => {}
            Mitigation::ClearBhb => log::info!("lower-EL entries run CLRBHB (MIDR {:#x})", midr.0),
            Mitigation::BranchLoop { k } => log::info!(
                "lower-EL entries run the branch loop (k = {k}) for Spectre-BHB (MIDR {:#x})",
                midr.0
            ),
            Mitigation::FirmwareWorkaround1 => log::info!(
                "lower-EL entries run SMCCC_ARCH_WORKAROUND_1 (MIDR {:#x})",
                midr.0
            ),
            Mitigation::FirmwareWorkaround3 => log::info!(
                "lower-EL entries run SMCCC_ARCH_WORKAROUND_3 (MIDR {:#x})",
                midr.0
            ),
        }
    }
    if (choice.spectre_v2_exposed || choice.spectre_bhb_exposed)
        && !EXPOSURE_REPORTED.swap(true, Ordering::Relaxed)
    {
        log::warn!(
            "CPU MIDR {:#x} stays exposed to{}{}: no ID-register or per-core mitigation applies and the firmware offers no SMCCC 1.1 workaround for it",
            midr.0,
            if choice.spectre_v2_exposed {
                " Spectre-v2 (branch target injection)"
            } else {
                ""
            },
            if choice.spectre_bhb_exposed {
                " Spectre-BHB"
            } else {
                ""
            },
        );
    }
    crate::speculative_at::note_this_cpu(midr);
}
