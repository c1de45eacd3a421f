//! A physical interrupt that arrives while a guest runs ends the run with an IRQ exit, and
//! the interrupt is still pending for the host (docs/abi.md 6: "IRQ"). And the host's
//! *virtual* timer, which the world switch swaps out for the guest's, still ends a guest
//! run when its deadline passes (the payload stands in for it with its own timer).
//!
//! The host arms its EL1 physical timer (PPI 30): the payload does not switch that timer
//! (guests cannot reach it: CNTHCTL_EL2.EL1PCEN is clear while they run), so it keeps
//! counting down while the spinning test guest runs and fires during a run. The test enables
//! just that PPI in this CPU's GICv3 redistributor and the group-1 CPU interface; the host
//! keeps its IRQs masked in PSTATE, so nothing is taken at EL1 and the pending state can be
//! read back. Everything is switched off again at the end.

use crate::runner::{Ctx, TestResult, bail};
use el1_rt::cpus;
use el1_rt::host_calls;
use el1_rt::timeout::Deadline;
use hvc_abi::Exit;
use test_guest::Command;

const TIMER_PPI: u32 = 30;
const VIRTUAL_TIMER_PPI: u32 = 27;
const HYP_TIMER_PPI: u32 = 26;
/// A GICv3 redistributor: RD frame then SGI/PPI frame, 64 KiB each.
const GICR_STRIDE: usize = 0x2_0000;
const GICR_TYPER: usize = 0x8;
const GICR_WAKER: usize = 0x14;
const SGI_BASE: usize = 0x1_0000;
const GICR_IGROUPR0: usize = SGI_BASE + 0x80;
const GICR_ISENABLER0: usize = SGI_BASE + 0x100;
const GICR_ICENABLER0: usize = SGI_BASE + 0x180;
const GICR_ISPENDR0: usize = SGI_BASE + 0x200;
const GICR_IPRIORITYR: usize = SGI_BASE + 0x400;
const GICD_CTLR_ARE_NS_GRP1: u32 = (1 << 4) | (1 << 1);
const RUN_TIMEOUT_MS: u64 = 10_000;

fn read32(addr: usize) -> u32 {
    // SAFETY: a register of the GIC the DTB describes, identity-mapped as device memory
    // by el1-rt's MMU set-up (every direct child of / is).
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

fn write32(addr: usize, value: u32) {
    // SAFETY: as in `read32`.
    unsafe { core::ptr::write_volatile(addr as *mut u32, value) }
}

/// GICD and GICR bases of the `arm,gic-v3` node.
fn gic_v3(ctx: &Ctx) -> Option<(usize, usize)> {
    // SAFETY: the payload handed over this DTB and nothing changes it.
    let fdt = unsafe { fdt::Fdt::from_ptr(ctx.platform.dtb.base as *const u8) }.ok()?;
    let node = fdt.find_compatible(&["arm,gic-v3"])?;
    let mut reg = node.reg()?;
    let gicd = reg.next()?.starting_address as usize;
    let gicr = reg.next()?.starting_address as usize;
    Some((gicd, gicr))
}

/// This CPU's redistributor frame: the one whose GICR_TYPER affinity is our MPIDR's.
fn own_redistributor(gicr: usize) -> Option<usize> {
    let mpidr = cpus::own_mpidr();
    let affinity = (mpidr & 0xff_ffff) | ((mpidr >> 32) & 0xff) << 24;
    let mut frame = gicr;
    for _ in 0..64 {
        let typer =
            read32(frame + GICR_TYPER) as u64 | (read32(frame + GICR_TYPER + 4) as u64) << 32;
        if typer >> 32 == affinity {
            return Some(frame);
        }
        if typer & (1 << 4) != 0 {
            return None; // the last frame
        }
        frame += GICR_STRIDE;
    }
    None
}

fn set_timer(enabled: bool, ticks_from_now: u64) {
    // SAFETY: the host's EL1 physical timer (CNTHCTL_EL2.EL1PCEN is set for the host).
    unsafe {
        if enabled {
            let now: u64;
            core::arch::asm!("isb", "mrs {}, cntpct_el0", out(reg) now);
            core::arch::asm!("msr cntp_cval_el0, {}", in(reg) now + ticks_from_now);
            core::arch::asm!("msr cntp_ctl_el0, {}", "isb", in(reg) 1u64);
        } else {
            core::arch::asm!("msr cntp_ctl_el0, {}", "isb", in(reg) 0u64);
        }
    }
}

fn set_virtual_timer(enabled: bool, ticks_from_now: u64) {
    // SAFETY: the host's EL1 virtual timer, the one a Linux host keeps its tick in.
    unsafe {
        if enabled {
            let now: u64;
            core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) now);
            core::arch::asm!("msr cntv_cval_el0, {}", in(reg) now + ticks_from_now);
            core::arch::asm!("msr cntv_ctl_el0, {}", "isb", in(reg) 1u64);
        } else {
            core::arch::asm!("msr cntv_ctl_el0, {}", "isb", in(reg) 0u64);
        }
    }
}

fn set_cpu_interface(enabled: bool) {
    // SAFETY: the GICv3 CPU interface of this CPU: system-register access (ICC_SRE_EL2.Enable
    // is set by the payload), priority mask open, group 1 on or off. IRQs stay masked in
    // PSTATE, so nothing is taken at EL1.
    unsafe {
        core::arch::asm!("mrs {t}, icc_sre_el1", "orr {t}, {t}, #1", "msr icc_sre_el1, {t}", "isb", t = out(reg) _);
        core::arch::asm!("msr icc_pmr_el1, {}", in(reg) 0xffu64);
        core::arch::asm!("msr icc_igrpen1_el1, {}", "isb", in(reg) u64::from(enabled));
    }
}

/// Wakes this CPU's redistributor, puts `ppi` in group 1 at a middle priority, enables it
/// and the group-1 CPU interface (as a Linux host would); returns the redistributor.
fn enable_ppi(ctx: &Ctx, ppi: u32) -> Result<usize, crate::runner::Failure> {
    let Some((gicd, gicr)) = gic_v3(ctx) else {
        bail!("no arm,gic-v3 node with GICD and GICR regions in the DTB");
    };
    let Some(rd) = own_redistributor(gicr) else {
        bail!("no GICv3 redistributor for this CPU's MPIDR");
    };
    write32(rd + GICR_WAKER, read32(rd + GICR_WAKER) & !(1 << 1));
    let deadline = Deadline::after_ms(1_000);
    while read32(rd + GICR_WAKER) & (1 << 2) != 0 {
        if deadline.passed() {
            bail!("the redistributor did not wake up");
        }
    }
    write32(gicd, read32(gicd) | GICD_CTLR_ARE_NS_GRP1);
    write32(rd + GICR_IGROUPR0, read32(rd + GICR_IGROUPR0) | 1 << ppi);
    let prio = rd + GICR_IPRIORITYR + (ppi as usize & !3);
    let shift = 8 * (ppi % 4);
    write32(prio, (read32(prio) & !(0xff << shift)) | 0x80 << shift);
    write32(rd + GICR_ISENABLER0, 1 << ppi);
    set_cpu_interface(true);
    Ok(rd)
}

fn disable_ppi(rd: usize, ppi: u32) {
    write32(rd + GICR_ICENABLER0, 1 << ppi);
    set_cpu_interface(false);
}

pub fn irq_during_guest_run_exits_to_host(ctx: &mut Ctx) -> TestResult {
    let rd = enable_ppi(ctx, TIMER_PPI)?;
    let result = run_until_irq(ctx, rd);
    set_timer(false, 0);
    disable_ppi(rd, TIMER_PPI);
    result
}

pub fn host_virtual_timer_deadline_ends_a_guest_run(ctx: &mut Ctx) -> TestResult {
    let rd = enable_ppi(ctx, VIRTUAL_TIMER_PPI)?;
    let result = run_until_virtual_timer(ctx, rd);
    set_virtual_timer(false, 0);
    disable_ppi(rd, VIRTUAL_TIMER_PPI);
    result
}

/// ICC_PMR_EL1 of a pseudo-NMI Linux host with IRQs "off" (GIC_PRIO_IRQOFF): priority
/// 0x80 interrupts are masked, NMIs (higher priority) are not.
const PMR_IRQS_OFF: u64 = 0x60;

/// A host that masks IRQs by priority (as a pseudo-NMI Linux does around VCPU_RUN) still
/// gets its CPU back when one arrives during a guest run: the payload opens the mask for
/// the run, and gives the host its own mask back.
pub fn host_priority_mask_does_not_keep_an_irq_from_ending_a_guest_run(
    ctx: &mut Ctx,
) -> TestResult {
    let rd = enable_ppi(ctx, TIMER_PPI)?;
    let result = run_with_priority_mask(ctx);
    set_timer(false, 0);
    disable_ppi(rd, TIMER_PPI);
    result
}

fn set_pmr(value: u64) {
    // SAFETY: the host's own GICv3 priority mask; IRQs stay masked in PSTATE.
    unsafe { core::arch::asm!("msr icc_pmr_el1, {}", "isb", in(reg) value) };
}

fn pmr() -> u64 {
    let value: u64;
    // SAFETY: reading the priority mask has no side effect.
    unsafe { core::arch::asm!("mrs {}, icc_pmr_el1", out(reg) value) };
    value
}

fn run_with_priority_mask(ctx: &mut Ctx) -> TestResult {
    let guest = ctx.guest(Command::Spin, 1)?;
    let handle = guest.vm().handle();
    set_pmr(PMR_IRQS_OFF);
    // Due in a few microseconds, long before the spinning guest's first tick.
    set_timer(true, 100);
    let exit = host_calls::vcpu_run(handle, 0, 0);
    let mask_after = pmr();
    set_pmr(0xff);
    match exit? {
        Exit::Irq => {}
        other => bail!(
            "with ICC_PMR_EL1 = {PMR_IRQS_OFF:#x} a pending interrupt did not end the run: got {other:?}"
        ),
    }
    if mask_after != PMR_IRQS_OFF {
        bail!("the host's ICC_PMR_EL1 was {PMR_IRQS_OFF:#x} and is {mask_after:#x} after VCPU_RUN");
    }
    Ok(())
}

fn run_until_virtual_timer(ctx: &mut Ctx, rd: usize) -> TestResult {
    let guest = ctx.guest(Command::Spin, 1)?;
    let handle = guest.vm().handle();
    // Due in a few microseconds, long before the spinning guest's first tick.
    set_virtual_timer(true, 100);
    match host_calls::vcpu_run(handle, 0, 0)? {
        Exit::Irq => {}
        other => bail!("the host's virtual-timer deadline did not end the run: got {other:?}"),
    }
    let pending = read32(rd + GICR_ISPENDR0);
    if pending & (1 << VIRTUAL_TIMER_PPI) == 0 {
        bail!("IRQ exit, but the host's virtual timer interrupt is not pending for it");
    }
    if pending & (1 << HYP_TIMER_PPI) != 0 {
        bail!("the payload's stand-in timer interrupt (PPI 26) is still pending for the host");
    }
    Ok(())
}

fn run_until_irq(ctx: &mut Ctx, rd: usize) -> TestResult {
    let guest = ctx.guest(Command::Spin, 1)?;
    let handle = guest.vm().handle();
    // A few microseconds: it expires during the first run or between two.
    set_timer(true, 100);
    let deadline = Deadline::after_ms(RUN_TIMEOUT_MS);
    let mut ticks = 0u32;
    loop {
        match host_calls::vcpu_run(handle, 0, 0)? {
            Exit::Irq => break,
            Exit::Mmio { .. } => ticks += 1, // the spinning guest's periodic report
            other => bail!("expected an IRQ exit or the guest's tick, got {other:?}"),
        }
        if deadline.passed() {
            bail!("no IRQ exit within {RUN_TIMEOUT_MS} ms ({ticks} ticks seen)");
        }
    }
    if read32(rd + GICR_ISPENDR0) & (1 << TIMER_PPI) == 0 {
        bail!("IRQ exit, but the timer interrupt is not pending for the host");
    }
    // Level-sensitive: once the host turns its timer off, the interrupt is no longer pending.
    set_timer(false, 0);
    let deadline = Deadline::after_ms(1_000);
    while read32(rd + GICR_ISPENDR0) & (1 << TIMER_PPI) != 0 {
        if deadline.passed() {
            bail!("the timer interrupt stayed pending after the host disabled the timer");
        }
    }
    Ok(())
}
