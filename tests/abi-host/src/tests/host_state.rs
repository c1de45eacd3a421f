//! The host's EL1 state is the same after a guest ran as before (docs/abi.md 4.9 returns
//! the host to its HVC with its own registers): MMU and caches on, its own vectors, page
//! tables and thread pointer.

use crate::runner::{Ctx, TestResult, bail};
use el1_rt::host_calls;
use test_guest::Command;

fn el1_state() -> [u64; 4] {
    let (sctlr, vbar, ttbr0, tpidr): (u64, u64, u64, u64);
    // SAFETY: reading the host's own EL1 registers has no side effect.
    unsafe {
        core::arch::asm!(
            "mrs {0}, sctlr_el1", "mrs {1}, vbar_el1", "mrs {2}, ttbr0_el1", "mrs {3}, tpidr_el1",
            out(reg) sctlr, out(reg) vbar, out(reg) ttbr0, out(reg) tpidr,
        );
    }
    [sctlr, vbar, ttbr0, tpidr]
}

pub fn host_el1_state_survives_a_guest_run(ctx: &mut Ctx) -> TestResult {
    let guest = ctx.guest(Command::Spin, 1)?;
    let before = el1_state();
    // The spinning guest ends each run with a report (an MMIO exit).
    host_calls::vcpu_run(guest.vm().handle(), 0, 0)?;
    let after = el1_state();
    // el1-rt turned the MMU on at boot; every earlier test ran guests too.
    if before[0] & 1 == 0 || after[0] & 1 == 0 {
        bail!(
            "the host's MMU is off (SCTLR_EL1 {:#x} before, {:#x} after VCPU_RUN)",
            before[0],
            after[0]
        );
    }
    let names = ["SCTLR_EL1", "VBAR_EL1", "TTBR0_EL1", "TPIDR_EL1"];
    for ((name, b), a) in names.iter().zip(before).zip(after) {
        if a != b {
            bail!("{name} was {b:#x} before VCPU_RUN and is {a:#x} after");
        }
    }
    Ok(())
}
