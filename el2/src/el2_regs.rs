//! The EL2 configuration each CPU gets before it first enters the host, mirroring what
//! Linux's own `init_el2_state` does when it is booted at EL2 (so that the host, now at
//! EL1, finds the same machine) plus the controls EL2 keeps for itself.

use crate::per_cpu::CpuState;
use crate::{guest_sysregs, host_features, sysreg};
use aarch64_cpu::registers::{
    CNTHCTL_EL2, CNTVOFF_EL2, HCR_EL2, ICC_SRE_EL2, ICH_HCR_EL2, ID_AA64PFR0_EL1, MDCR_EL2,
    MIDR_EL1, MPIDR_EL1, Readable, SCTLR_EL1, VMPIDR_EL2, VTCR_EL2, VTTBR_EL2, Writeable,
};
use core::sync::atomic::Ordering;
use platform::guest_traps;
use platform::host_controls::{HostControls, hcr};

/// CPTR_EL2 (nVHE) with no trap enabled: TCPAC, TAM, TTA, TSM, TFP and TZ clear; bits 13,
/// 9 and 7:0 are RES1.
pub const CPTR_EL2_NO_TRAPS: u64 = guest_traps::cptr::NO_TRAPS;

/// SCTLR_EL1 as the Linux boot protocol wants it on entry: MMU and caches off, RES1 bits.
pub const SCTLR_EL1_BOOT: u64 = 0x30d0_0800;

/// The host stage-2 every CPU installs (VMID 0).
#[derive(Clone, Copy)]
pub struct HostStage2Regs {
    pub vtcr: u64,
    pub vttbr: u64,
}

/// HCR_EL2 for the host on this CPU: Linux's nVHE host flags plus stage 2 and SMC traps,
/// with every feature enable the CPU has (`platform::host_controls`, which holds the
/// audit against Linux's host set-up). `c` is `host_features::controls()`, which a guest
/// run reads once for all its steps.
fn host_hcr(c: &HostControls) -> u64 {
    c.hcr
}

/// MDCR_EL2 for the host: every PMU counter (HPMN = PMCR_EL0.N) and, where they exist,
/// the SPE and trace buffers (E2PB, E2TB) belong to EL1; nothing traps.
fn host_mdcr(c: &HostControls) -> u64 {
    pmu_counters() | c.mdcr
}

/// MDCR_EL2.HPMN: every PMU counter (PMCR_EL0.N) belongs to EL1.
fn pmu_counters() -> u64 {
    (sysreg::pmcr_el0() >> 11) & 0x1f
}

/// CNTHCTL_EL2 for the host: EL1 may use the physical counter and timer.
const CNTHCTL_HOST: u64 = 0b11;

/// Configures this CPU's EL2 for running the host at EL1 under `stage2` (once per CPU
/// bring-up; a guest run restores only what it changed, see `leave_guest`).
pub fn configure_for_host(stage2: HostStage2Regs) {
    crate::spectre::choose_for_this_cpu();
    // Read (and logged) once, here on the boot CPU, before any trap needs it.
    guest_sysregs::cpu_features();

    // The host reads its own MIDR/MPIDR through these.
    // SAFETY: VPIDR_EL2 only changes what EL1 reads as MIDR_EL1.
    unsafe { sysreg::set_vpidr_el2(MIDR_EL1.get()) };
    VMPIDR_EL2.set(MPIDR_EL1.get());

    // Timers: EL1 may use the physical counter and timer; no virtual offset.
    CNTHCTL_EL2.set(CNTHCTL_HOST);
    CNTVOFF_EL2.set(0);

    // Debug, PMU, SPE and trace buffers: EL1's, nothing traps.
    MDCR_EL2.set(host_mdcr(host_features::controls()));

    // SAFETY: HSTR_EL2 = 0 traps no AArch32 system register accesses.
    unsafe { sysreg::set_hstr_el2(0) };

    // GICv3 system-register interface for EL1 (ICC_SRE_EL2.Enable), no virtual interrupts.
    if ID_AA64PFR0_EL1.get() >> 24 & 0xf != 0 {
        ICC_SRE_EL2.set(0xf);
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
        ICH_HCR_EL2.set(0);
    }

    // SVE/SME vector lengths, FA64, HCRX_EL2, fine-grained traps, SPE/trace/BRBE at EL2:
    // every feature the CPU has is the host's (their reset values are UNKNOWN).
    host_features::configure_this_cpu();

    VTCR_EL2.set(stage2.vtcr);
    VTTBR_EL2.set(stage2.vttbr);
    SCTLR_EL1.set(SCTLR_EL1_BOOT);
    // Whatever ran at EL1 before the payload (firmware, a loader, or this CPU before a
    // power-down) may have left EL1&0 TLB entries, with and without stage 2: none of them
    // may be used under the host's stage 2 (pKVM: `tlbi vmalls12e1; dsb nsh; isb` in
    // `__pkvm_prot_finalize`). `alle1` covers every VMID; this CPU only.
    // SAFETY: TLB invalidation and barriers have no effect on memory.
    unsafe {
        core::arch::asm!(
            "tlbi alle1",
            "dsb nsh",
            "isb",
            options(nostack, preserves_flags)
        )
    };
    // Stage 2 on (HCR_EL2.VM) last, once nothing stale can be used under it.
    HCR_EL2.set(host_hcr(host_features::controls()));
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

unsafe extern "C" {
    static guest_vectors: u8;
}

// What the host had in the registers a guest run borrows is kept per CPU in
// `per_cpu::CpuState` (host_pmcnten, host_pmr, host_trfcr; see `enter_guest`).

/// ICC_PMR_EL1 with every priority unmasked.
const PMR_OPEN: u64 = 0xff;

/// Loads this CPU's EL2 state for running a guest vCPU with stage-2 `vttbr`/`vtcr`.
/// Changes exactly the registers `leave_guest` puts back. The guest's EL1 registers are
/// already loaded (pKVM's order: every EL1 register of the guest is in place before its
/// stage 2 is, so no walk can combine the guest's stage 1 with the host's stage 2).
pub fn enter_guest(this_cpu: &CpuState, vttbr: u64, vtcr: u64, vcpu_index: u64) {
    // The guest's EL1 registers take effect before its stage 2 does (pKVM's `isb` after
    // `__sysreg_restore_state_nvhe` on speculative-AT cores, done here on every core).
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    let f = guest_sysregs::cpu_features();
    let c = host_features::controls();
    // The host's PMU counts nothing of the guest, nor of EL2 on its behalf: every counter
    // the host enabled stops for the run (MDCR_EL2.HPMD/HCCD below do the same for EL2
    // where the PMU has them; stopping covers EL1 and EL0 too, and older PMUs).
    if f.pmu {
        let enabled = sysreg::pmcntenset_el0();
        this_cpu.host_pmcnten.store(enabled, Ordering::Relaxed);
        // SAFETY: stops the host's counters; `leave_guest` starts the same ones again.
        unsafe { sysreg::set_pmcntenclr_el0(enabled) };
    }
    // Host self-hosted trace never sees the guest: trace at EL1/EL0 is prohibited for the
    // run (TRFCR_EL1 = 0), then `tsb csync` drains what was traced before (pKVM's
    // `__debug_save_trace`).
    if f.trace_filter {
        this_cpu
            .host_trfcr
            .store(sysreg::trfcr_el1(), Ordering::Relaxed);
        // SAFETY: only prohibits tracing at EL1/EL0 until `leave_guest` restores it.
        unsafe { sysreg::set_trfcr_el1(0) };
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
        // SAFETY: TSB CSYNC (hint #18, FEAT_TRF) only orders trace operations.
        // `dsb nsh` then makes a trace buffer's (TRBE's) writes complete while the host's
        // stage 2 is still the one in use (pKVM's `__debug_save_trace`).
        unsafe { core::arch::asm!("hint #18", "dsb nsh", options(nostack, preserves_flags)) };
    }
    host_features::enter_guest(c, this_cpu);
    // A host that masks its IRQs by priority (a pseudo-NMI Linux calls VCPU_RUN with
    // ICC_PMR_EL1 at its "IRQs off" value) must still get its CPU back when an interrupt
    // arrives: the mask is opened for the run (interrupts go to EL2, HCR_EL2.IMO) and put
    // back on exit, so the interrupt is then pending for the host as usual. The guest's
    // own GIC register accesses trap (ICH_HCR_GUEST), so ICH_VMCR_EL2 is never used.
    if f.gic_sysregs {
        this_cpu
            .host_pmr
            .store(sysreg::icc_pmr_el1(), Ordering::Relaxed);
        // SAFETY: EL2 runs with PSTATE.I masked; opening the mask only lets interrupts
        // end the guest run. `dsb sy` makes the CPU interface see the new mask before the
        // guest runs (Linux's `pmr_sync`).
        unsafe {
            sysreg::set_icc_pmr_el1(PMR_OPEN);
            core::arch::asm!("dsb sy", options(nostack, preserves_flags));
        }
        ICH_HCR_EL2.set(guest_traps::ICH_HCR_GUEST);
    }

    // SAFETY: only the address of the guest vector table is taken.
    let vectors = unsafe { &guest_vectors as *const u8 as u64 };
    // No MTE for guests: their GCR_EL1/RGSR_EL1/TFSR*_EL1 are not switched (they are the
    // host's), so ATA stays clear and those accesses trap (UNDEF in the guest); with ATA
    // clear a guest's accesses are not tag-checked either. EnSCXT likewise: SCXTNUM_EL1 is
    // the host's.
    HCR_EL2.set(guest_traps::guest_hcr(host_hcr(c) & !hcr::HOST_ONLY, f));
    VTCR_EL2.set(vtcr);
    VTTBR_EL2.set(vttbr);
    VMPIDR_EL2.set((1 << 31) | vcpu_index);
    MDCR_EL2.set(guest_traps::guest_mdcr(pmu_counters(), f));
    CNTHCTL_EL2.set(0b01); // the counter is readable, the physical timer is not
    aarch64_cpu::registers::CPTR_EL2.set(guest_traps::guest_cptr(f));
    // SAFETY: traps the guest's AArch32 EL0 IMPLEMENTATION DEFINED CP15 c15 accesses.
    unsafe { sysreg::set_hstr_el2(guest_traps::HSTR_GUEST) };
    aarch64_cpu::registers::VBAR_EL2.set(vectors);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// Puts back the host's values of exactly the registers `enter_guest` changed. Nothing
/// else: the host's EL1 registers are put back after this, once the host's stage 2 is in
/// place again (the reverse of `enter_guest`'s order).
pub fn leave_guest(this_cpu: &CpuState, stage2: HostStage2Regs) {
    let f = guest_sysregs::cpu_features();
    let c = host_features::controls();
    HCR_EL2.set(host_hcr(c));
    VTCR_EL2.set(stage2.vtcr);
    VTTBR_EL2.set(stage2.vttbr);
    VMPIDR_EL2.set(MPIDR_EL1.get());
    MDCR_EL2.set(host_mdcr(c));
    CNTHCTL_EL2.set(CNTHCTL_HOST);
    aarch64_cpu::registers::CPTR_EL2.set(CPTR_EL2_NO_TRAPS);
    // SAFETY: as in `configure_for_host`.
    unsafe { sysreg::set_hstr_el2(0) };
    if f.gic_sysregs {
        ICH_HCR_EL2.set(0);
        // SAFETY: the host's own priority mask, saved by `enter_guest` on this CPU.
        unsafe { sysreg::set_icc_pmr_el1(this_cpu.host_pmr.load(Ordering::Relaxed)) };
    }
    if f.trace_filter {
        // SAFETY: the host's own trace filter, saved by `enter_guest` on this CPU.
        unsafe { sysreg::set_trfcr_el1(this_cpu.host_trfcr.load(Ordering::Relaxed)) };
    }
    host_features::leave_guest(c, this_cpu);
    crate::host_entry::install_vectors();
    if f.pmu {
        // SAFETY: starts exactly the counters `enter_guest` stopped on this CPU, last, so
        // that they count as little of EL2's work for the guest as possible.
        unsafe { sysreg::set_pmcntenset_el0(this_cpu.host_pmcnten.load(Ordering::Relaxed)) };
    }
}
