//! The speculative-AT erratum sequences (Linux's ARM64_WORKAROUND_SPECULATIVE_AT: Cortex-A76
//! 1165522, Cortex-A55 1530923, Cortex-A57 1319537, Cortex-A72 1319367; the cores are
//! `platform::speculative_at::AFFECTED`). On those cores a speculative address translation
//! for the EL1&0 regime, made while EL2 is half-way through changing that regime's context
//! (stage-1 registers of one world, VTTBR_EL2 of the other), can leave a TLB entry that
//! combines the two, and the next world would use it.
//!
//! pKVM's nVHE sequences, followed here on affected CPUs only (MIDR at bring-up; one
//! affected CPU turns them on for all, as Linux's `cpus_have_final_cap` does):
//! - world switch (arch/arm64/kvm/hyp/nvhe/switch.c `__kvm_vcpu_run`): before the EL1
//!   registers change, stage-1 walks are stopped: TCR_EL1.EPD0/EPD1 set, `isb`, SCTLR_EL1.M
//!   set, `isb` (`__deactivate_traps`; for the guest entry,
//!   hyp/include/hyp/sysreg-sr.h `__sysreg_restore_el1_state` writes the guest's TCR with
//!   EPD0/EPD1 set and leaves SCTLR alone); every other EL1 register and the new stage 2
//!   are loaded (`__load_stage2`'s `isb`); then `isb`, SCTLR_EL1, `isb`, TCR_EL1 of the new
//!   world (`__activate_traps` for the guest, `__sysreg_restore_el1_state` for the host).
//!   [`block_stage1_walks`] and [`unblock_stage1_walks`] are the two halves.
//! - TLB maintenance under another VMID (nvhe/tlb.c `enter_vmid_context` /
//!   `exit_vmid_context`): EPD0/EPD1 set and `isb` (SCTLR_EL1.M set if the current world
//!   has its MMU off) before VTTBR_EL2 changes; after VTTBR_EL2 is back and synchronised,
//!   SCTLR_EL1 then TCR_EL1 are restored. EL2 setting SCTLR_EL1.M where pKVM relies on the
//!   host's MMU being on covers the bare-metal hosts, which may run with it off.

use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};
use platform::midr::Midr;

static NEEDED: AtomicBool = AtomicBool::new(false);

/// TCR_EL1.EPD0 [7] and EPD1 [23]: no translation table walk for TTBR0/TTBR1 (Arm ARM
/// D19.2, TCR_EL1).
pub const TCR_EPD: u64 = (1 << 7) | (1 << 23);
/// SCTLR_EL1.M [0]: the EL1&0 stage-1 MMU is on.
const SCTLR_M: u64 = 1;

/// Notes whether this CPU needs the sequences (once per CPU bring-up).
pub fn note_this_cpu(midr: Midr) {
    if platform::speculative_at::affected(midr) && !NEEDED.swap(true, Ordering::Relaxed) {
        log::info!(
            "speculative-AT erratum sequences on (MIDR {:#x}): EL1&0 context changes stop stage-1 walks first (pKVM's nVHE order)",
            midr.0
        );
    }
}

/// Whether the sequences run.
pub fn needed() -> bool {
    NEEDED.load(Ordering::Relaxed)
}

fn tcr_el1() -> u64 {
    let v: u64;
    // SAFETY: reading an EL1 register at EL2 has no side effect.
    unsafe { asm!("mrs {}, tcr_el1", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

fn sctlr_el1() -> u64 {
    let v: u64;
    // SAFETY: as above.
    unsafe { asm!("mrs {}, sctlr_el1", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Writes TCR_EL1 then `isb`.
fn set_tcr_el1_sync(v: u64) {
    // SAFETY: EL1's translation controls only affect EL1&0, which does not run while EL2
    // does; callers restore the world's own value before it runs again.
    unsafe { asm!("msr tcr_el1, {}", "isb", in(reg) v, options(nostack, preserves_flags)) };
}

/// Writes SCTLR_EL1 then `isb`.
fn set_sctlr_el1_sync(v: u64) {
    // SAFETY: as above.
    unsafe { asm!("msr sctlr_el1, {}", "isb", in(reg) v, options(nostack, preserves_flags)) };
}

/// What [`block_stage1_walks`] changed: the world's own TCR_EL1 and SCTLR_EL1.
#[derive(Clone, Copy)]
pub struct Blocked {
    pub tcr: u64,
    pub sctlr: u64,
}

/// [`block_stage1_walks`] where the sequences run, `None` elsewhere (the check inlined:
/// unaffected CPUs pay a load and a branch).
#[inline(always)]
pub fn block_stage1_walks_if_needed() -> Option<Blocked> {
    if needed() {
        Some(block_stage1_walks())
    } else {
        None
    }
}

/// No EL1&0 stage-1 walk can start from here on: TCR_EL1.EPD0/EPD1, `isb`, then
/// SCTLR_EL1.M (if clear), `isb` (pKVM's `__deactivate_traps` / `enter_vmid_context`).
/// Returns the values it replaced.
#[inline(never)]
pub fn block_stage1_walks() -> Blocked {
    let tcr = tcr_el1();
    set_tcr_el1_sync(tcr | TCR_EPD);
    let sctlr = sctlr_el1();
    if sctlr & SCTLR_M == 0 {
        set_sctlr_el1_sync(sctlr | SCTLR_M);
    }
    Blocked { tcr, sctlr }
}

/// The world's own translation controls once its stage 2 is in VTTBR_EL2: `isb` (the
/// VTTBR write has taken effect), SCTLR_EL1, `isb`, TCR_EL1 (pKVM's `__activate_traps` and
/// `__sysreg_restore_el1_state`, `exit_vmid_context`). The ERET into the world, or the next
/// `isb`, synchronises the last write.
#[inline(never)]
pub fn unblock_stage1_walks(sctlr: u64, tcr: u64) {
    // SAFETY: a barrier only.
    unsafe { asm!("isb", options(nostack, preserves_flags)) };
    set_sctlr_el1_sync(sctlr);
    // SAFETY: as in `set_tcr_el1_sync`; this is the world's own value.
    unsafe { asm!("msr tcr_el1, {}", in(reg) tcr, options(nostack, preserves_flags)) };
}
