//! The EL2 configuration each CPU gets before it first enters the host, mirroring what
//! Linux's own `init_el2_state` does when it is booted at EL2 (so that the host, now at
//! EL1, finds the same machine) plus the controls EL2 keeps for itself.

use crate::sysreg;
use aarch64_cpu::registers::{
    CNTHCTL_EL2, CNTVOFF_EL2, HCR_EL2, ICC_SRE_EL2, ICH_HCR_EL2, ID_AA64ISAR1_EL1,
    ID_AA64MMFR0_EL1, ID_AA64MMFR1_EL1, ID_AA64PFR0_EL1, ID_AA64PFR1_EL1, MDCR_EL2, MIDR_EL1,
    MPIDR_EL1, Readable, SCTLR_EL1, VMPIDR_EL2, VTCR_EL2, VTTBR_EL2, Writeable,
};

/// CPTR_EL2 (nVHE) with no trap enabled: TCPAC, TAM, TTA, TSM, TFP and TZ clear; bits 13,
/// 9 and 7:0 are RES1.
pub const CPTR_EL2_NO_TRAPS: u64 = 0x22ff;

/// HCR_EL2 for the host: stage-2 on (VM), EL1 is AArch64 (RW), SMC traps to EL2 (TSC,
/// for the PSCI relay). IMO/FMO/AMO stay clear: the host keeps the GIC and its interrupts.
const HCR_HOST: u64 = (1 << 0) | (1 << 19) | (1 << 31);
/// HCR_EL2.APK and API: pointer-authentication keys and instructions do not trap.
const HCR_PTRAUTH: u64 = (1 << 40) | (1 << 41);

/// HCR_EL2.ATA: EL1's MTE registers (GCR_EL1, RGSR_EL1, TFSR*_EL1) and allocation tags do
/// not trap. Linux's own nVHE host flags (`HCR_HOST_NVHE_FLAGS`) set it; without it Linux
/// takes UNDEF in `mte_cpu_setup` on a CPU with MTE2.
const HCR_ATA: u64 = 1 << 56;

/// SCTLR_EL1 as the Linux boot protocol wants it on entry: MMU and caches off, RES1 bits.
pub const SCTLR_EL1_BOOT: u64 = 0x30d0_0800;

/// The host stage-2 every CPU installs (VMID 0).
#[derive(Clone, Copy)]
pub struct HostStage2Regs {
    pub vtcr: u64,
    pub vttbr: u64,
}

fn has_pointer_auth() -> bool {
    // APA, API, GPA, GPI fields of ID_AA64ISAR1_EL1 (any non-zero means implemented).
    ID_AA64ISAR1_EL1.get() & 0xff_0000_0ff0 != 0
}

/// FEAT_MTE2 (ID_AA64PFR1_EL1.MTE >= 2): allocation tags in memory, for which HCR_EL2.ATA
/// exists. (MTE = 1 is instructions only: nothing for EL1 to reach.)
fn has_mte2() -> bool {
    ID_AA64PFR1_EL1.get() >> 8 & 0xf >= 2
}

/// HCR_EL2 for the host on this CPU.
fn host_hcr() -> u64 {
    let mut hcr = HCR_HOST;
    if has_pointer_auth() {
        hcr |= HCR_PTRAUTH;
    }
    if has_mte2() {
        hcr |= HCR_ATA;
    }
    hcr
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
    HCR_EL2.set(host_hcr());

    // The host reads its own MIDR/MPIDR through these.
    // SAFETY: VPIDR_EL2 only changes what EL1 reads as MIDR_EL1.
    unsafe { sysreg::set_vpidr_el2(MIDR_EL1.get()) };
    VMPIDR_EL2.set(MPIDR_EL1.get());

    // Timers: EL1 may use the physical counter and timer; no virtual offset.
    CNTHCTL_EL2.set(CNTHCTL_HOST);
    CNTVOFF_EL2.set(0);

    // Debug and PMU: every counter belongs to EL1 (HPMN = PMCR_EL0.N), nothing traps.
    MDCR_EL2.set(pmu_counters());

    // SAFETY: HSTR_EL2 = 0 traps no AArch32 system register accesses.
    unsafe { sysreg::set_hstr_el2(0) };

    // GICv3 system-register interface for EL1 (ICC_SRE_EL2.Enable), no virtual interrupts.
    if ID_AA64PFR0_EL1.get() >> 24 & 0xf != 0 {
        ICC_SRE_EL2.set(0xf);
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
        ICH_HCR_EL2.set(0);
    }

    // SVE and SME: let EL1 use the largest vector length the CPU has.
    if ID_AA64PFR0_EL1.get() >> 32 & 0xf != 0 {
        // SAFETY: ZCR_EL2.LEN only caps the vector length EL1 may choose.
        unsafe { sysreg::set_zcr_el2(0x1ff) };
    }
    if ID_AA64PFR1_EL1.get() >> 24 & 0xf != 0 {
        // SAFETY: SMCR_EL2.LEN only caps the streaming vector length EL1 may choose.
        unsafe { sysreg::set_smcr_el2(0x1ff) };
    }
    // FEAT_HCX: no extra traps (its reset value is UNKNOWN).
    if ID_AA64MMFR1_EL1.get() >> 40 & 0xf != 0 {
        // SAFETY: zero enables no trap and no feature for EL1.
        unsafe { sysreg::set_hcrx_el2(0) };
    }
    // FEAT_FGT: fine-grained traps off (reset values are UNKNOWN).
    if ID_AA64MMFR0_EL1.get() >> 56 & 0xf != 0 {
        let has_sme = ID_AA64PFR1_EL1.get() >> 24 & 0xf != 0;
        clear_fine_grained_traps(has_sme);
    }

    VTCR_EL2.set(stage2.vtcr);
    VTTBR_EL2.set(stage2.vttbr);
    SCTLR_EL1.set(SCTLR_EL1_BOOT);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// Fine-grained traps off. Most bits trap when set; nTPIDR2_EL0 and nSMPRI_EL1 (bits 55
/// and 54, present with SME) trap when clear, so they are set where SME exists.
fn clear_fine_grained_traps(has_sme: bool) {
    use aarch64_cpu::registers::{HDFGRTR_EL2, HDFGWTR_EL2, HFGITR_EL2, HFGRTR_EL2, HFGWTR_EL2};
    let negative_bits = if has_sme { (1 << 55) | (1 << 54) } else { 0 };
    HFGRTR_EL2.set(negative_bits);
    HFGWTR_EL2.set(negative_bits);
    HFGITR_EL2.set(0);
    HDFGRTR_EL2.set(0);
    HDFGWTR_EL2.set(0);
}

/// HCR_EL2 for a protected guest: stage-2 on, EL1 AArch64, SMC traps, and every physical
/// interrupt (IRQ, FIQ, SError) goes to EL2 so that the host gets its CPU back (an IRQ
/// exit); FB and BSU=inner-shareable make the guest's TLB maintenance and barriers reach
/// every CPU it may later run on; SWIO turns set/way invalidation into clean+invalidate.
const HCR_GUEST: u64 = HCR_HOST | (1 << 1) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 9) | (1 << 10);
/// MDCR_EL2 for a guest: PMU (TPM, TPMCR) and debug (TDA, TDOSA, TDRA) accesses trap, so a
/// guest neither reads the host's counters nor its breakpoints.
const MDCR_GUEST_TRAPS: u64 = (1 << 5) | (1 << 6) | (1 << 9) | (1 << 10) | (1 << 11);

unsafe extern "C" {
    static guest_vectors: u8;
}

/// Loads this CPU's EL2 state for running a guest vCPU with stage-2 `vttbr`/`vtcr`.
/// Changes exactly the registers `leave_guest` puts back.
pub fn enter_guest(vttbr: u64, vtcr: u64, vcpu_index: u64) {
    // No MTE for guests: their GCR_EL1/RGSR_EL1/TFSR*_EL1 are not switched (they are the
    // host's), so ATA stays clear and those accesses trap (UNDEF in the guest); with ATA clear
    // a guest's accesses are not tag-checked either.
    let hcr = (host_hcr() & !HCR_ATA) | HCR_GUEST;
    let mut cptr = CPTR_EL2_NO_TRAPS;
    if ID_AA64PFR0_EL1.get() >> 32 & 0xf != 0 {
        cptr |= 1 << 8; // TZ: no SVE for guests (its state is not switched)
    }
    if ID_AA64PFR1_EL1.get() >> 24 & 0xf != 0 {
        cptr |= 1 << 12; // TSM: no SME for guests
    }
    // SAFETY: only the address of the guest vector table is taken.
    let vectors = unsafe { &guest_vectors as *const u8 as u64 };
    HCR_EL2.set(hcr);
    VTCR_EL2.set(vtcr);
    VTTBR_EL2.set(vttbr);
    VMPIDR_EL2.set((1 << 31) | vcpu_index);
    MDCR_EL2.set(MDCR_GUEST_TRAPS | pmu_counters());
    CNTHCTL_EL2.set(0b01); // the counter is readable, the physical timer is not
    aarch64_cpu::registers::CPTR_EL2.set(cptr);
    aarch64_cpu::registers::VBAR_EL2.set(vectors);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// Puts back the host's values of exactly the registers `enter_guest` changed. Nothing
/// else: the host's EL1 registers (SCTLR_EL1 among them) are already its own again.
pub fn leave_guest(stage2: HostStage2Regs) {
    HCR_EL2.set(host_hcr());
    VTCR_EL2.set(stage2.vtcr);
    VTTBR_EL2.set(stage2.vttbr);
    VMPIDR_EL2.set(MPIDR_EL1.get());
    MDCR_EL2.set(pmu_counters());
    CNTHCTL_EL2.set(CNTHCTL_HOST);
    aarch64_cpu::registers::CPTR_EL2.set(CPTR_EL2_NO_TRAPS);
    crate::host_entry::install_vectors();
}
