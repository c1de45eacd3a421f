//! The EL2 payload.
//!
//! Entered at EL2 with x0 = DTB on the boot CPU (Linux arm64 boot protocol), it carves out
//! its own memory, builds the host's stage-2, rewrites the DTB for the host and drops the
//! host kernel it finds among the `/chosen` multiboot modules to EL1. From then on it only
//! runs when the host traps to it: HVCs, SMCs (PSCI relay) and stage-2 faults.
//!
//! Where to look: `entry`/`asm` (reset and exception entry), `boot` (the boot sequence),
//! `stage2::memory_plan` (what is carved out), `mmu` (EL2 stage-1), `host_stage2` (host stage-2),
//! `el2_regs` (per-CPU EL2 configuration), `traps` (dispatch of host traps), `host_hvc`,
//! `psci_relay`, `host_abort`, `fatal`, `smmu` (the SMMUv3 that confines the host's DMA),
//! `unconfined_dma` (DMA masters withheld or handed over), `host_gicr` (the redistributors'
//! RD_base frames, emulated without LPIs).

#![no_std]
#![no_main]
#![deny(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

mod boot;
mod cache;
mod cpu;
mod el1_state;
mod el2_regs;
mod fatal;
mod firmware_smccc;
mod guest_psci;
mod guest_serror;
mod guest_smccc;
mod guest_sysregs;
mod heap;
mod host_abort;
mod host_entry;
mod host_features;
mod host_gicr;
mod host_hvc;
mod host_sve;
mod host_timer;
mod layout;
mod mmio_guard;
mod mmu;
mod per_cpu;
mod psci_relay;
mod record;
#[cfg(feature = "selftest")]
mod selftest;
mod smmu;
mod spectre;
mod speculative_at;
mod sysreg;
mod system_reset;
mod tlb;

mod traps;
mod unconfined_dma;
mod vcpu;
mod vm;

use core::arch::global_asm;
use platform::branch_hardening::word;

global_asm!(
    include_str!("asm/entry.S"),
    stack_stride = const layout::STACK_STRIDE,
    cptr_el2_no_traps = const el2_regs::CPTR_EL2_NO_TRAPS,
);

global_asm!(include_str!("asm/fpsimd.S"));
global_asm!(include_str!("asm/sve.S"));

global_asm!(
    include_str!("asm/vectors.S"),
    emergency_slots_mask = const fatal::EMERGENCY_SLOTS - 1,
    emergency_stack_shift = const fatal::EMERGENCY_STACK_SHIFT,
    emergency_stack_size = const fatal::EMERGENCY_STACK_SIZE,
    abi_version = const hvc_abi::function_id::Version::CURRENT.to_x1(),
    host_features = const hvc_abi::function_id::HOST_FEATURES_BITMAP,
    hardening_clrbhb_bit = const word::CLRBHB.trailing_zeros(),
    hardening_loop_bit = const word::LOOP.trailing_zeros(),
    hardening_k_shift = const word::K_SHIFT,
    hardening_smc_mask = const word::SMC_WORKAROUND_1 | word::SMC_WORKAROUND_3,
    hardening_wa3_mask = const word::SMC_WORKAROUND_3,
);

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    fatal::halt_system(format_args!("panic: {info}"))
}
