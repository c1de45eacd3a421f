//! A physical interrupt that arrives while a guest runs ends the run with an IRQ exit, and
//! the interrupt is still pending for the host (docs/abi.md 6: "IRQ"). And the host's
//! *virtual* timer, which the world switch swaps out for the guest's, still ends a guest
//! run when its deadline passes (the payload stands in for it with its own timer).
//!
//! The host arms its EL1 physical timer (PPI 30): the payload does not switch that timer
//! (guests cannot reach it: CNTHCTL_EL2.EL1PCEN is clear while they run), so it keeps
//! counting down while the spinning test guest runs and fires during a run. The test enables
//! just that PPI for this CPU and the CPU interface, as a Linux host would on that GIC:
//! - GICv3: in this CPU's redistributor, group 1 at priority 0x80, the CPU interface
//!   through its system registers (ICC_*), group 1 enabled;
//! - GICv2 (GIC-400, zcu102): in the distributor's banked per-CPU PPI registers, at
//!   Linux's default priority 0xa0 and in the group it resets to (group 0: a GIC without
//!   the Security Extensions signals it as an IRQ, and Linux's GICv2 driver enables only
//!   that group), the memory-mapped CPU interface (GICC) enabled with Linux's mask 0xf0.
//!
//! The host keeps its IRQs masked in PSTATE, so nothing is taken at EL1 and the pending
//! state can be read back. Everything is switched off again at the end.

use crate::runner::{Ctx, Failure, TestResult, bail};
use core::sync::atomic::{AtomicU64, Ordering};
use el1_rt::board::{Gic, GicVersion};
use el1_rt::host_calls;
use el1_rt::timeout::{Deadline, wait_until};
use el1_rt::{cpus, psci};
use hvc_abi::{Exit, VmHandle};
use spin::mutex::SpinMutex;
use test_guest::Command;

const TIMER_PPI: u32 = 30;
const VIRTUAL_TIMER_PPI: u32 = 27;
const HYP_TIMER_PPI: u32 = 26;
/// A GICv3 redistributor: RD frame then SGI/PPI frame, 64 KiB each.
const GICR_STRIDE: usize = 0x2_0000;
const GICR_TYPER: usize = 0x8;
const GICR_WAKER: usize = 0x14;
const SGI_BASE: usize = 0x1_0000;
/// The PPI registers, at the same offsets in a GICv3 SGI/PPI frame and (banked per CPU)
/// in a GICv2 distributor: GICR_/GICD_IGROUPR0, ISENABLER0, ICENABLER0, ISPENDR0,
/// IPRIORITYR<n>.
const IGROUPR0: usize = 0x80;
const ISENABLER0: usize = 0x100;
const ICENABLER0: usize = 0x180;
const ISPENDR0: usize = 0x200;
const IPRIORITYR: usize = 0x400;
const GICD_CTLR_ARE_NS_GRP1: u32 = (1 << 4) | (1 << 1);
/// GICv2 GICD_CTLR / GICC_CTLR bit 0: forwarding (of group 0, without the Security
/// Extensions) enabled.
const GICV2_ENABLE_GRP0: u32 = 1;
const GICC_CTLR: usize = 0x0;
const GICC_PMR: usize = 0x4;
/// Linux's GICv2 values: GICD_INT_DEF_PRI and GICC_INT_PRI_THRESHOLD.
const GICV2_DEFAULT_PRIORITY: u8 = 0xa0;
const GICV2_PMR: u32 = 0xf0;
const RUN_TIMEOUT_MS: u64 = 10_000;

fn read32(addr: usize) -> u32 {
    // SAFETY: a register of the GIC the DTB describes, identity-mapped as device memory
    // by el1-rt's MMU set-up (`Board::devices` holds the GIC's regions).
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

fn write32(addr: usize, value: u32) {
    // SAFETY: as in `read32`.
    unsafe { core::ptr::write_volatile(addr as *mut u32, value) }
}

fn write8(addr: usize, value: u8) {
    // SAFETY: as in `read32`; GICD_IPRIORITYR is byte-accessible (GICv2 spec 4.3.11).
    unsafe { core::ptr::write_volatile(addr as *mut u8, value) }
}

/// This CPU's PPI controls and CPU interface, on the GIC the DTB describes.
#[derive(Clone, Copy)]
enum Ppis {
    /// GICv3: the distributor, and this CPU's redistributor's SGI/PPI frame.
    V3 { gicd: usize, ppi_frame: usize },
    /// GICv2: the distributor (its PPI registers are banked per CPU) and the CPU interface.
    V2 { gicd: usize, gicc: usize },
}

impl Ppis {
    /// The calling CPU's PPI controls on the board's GIC.
    fn find(ctx: &Ctx) -> Result<Self, Failure> {
        Self::on(ctx.platform.board.gic)
    }

    /// The calling CPU's PPI controls on `gic`.
    fn on(gic: Option<Gic>) -> Result<Self, Failure> {
        let Some(gic) = gic else {
            bail!("the DTB describes no GICv2 or GICv3");
        };
        let gicd = gic.distributor.base as usize;
        match gic.version {
            GicVersion::V3 => {
                let Some(gicr) = gic.redistributors.as_slice().first() else {
                    bail!("the GICv3 node has no redistributor region");
                };
                let Some(rd) = own_redistributor(gicr.base as usize) else {
                    bail!("no GICv3 redistributor for this CPU's MPIDR");
                };
                wake(rd)?;
                Ok(Self::V3 {
                    gicd,
                    ppi_frame: rd + SGI_BASE,
                })
            }
            GicVersion::V2 => {
                let Some(gicc) = gic.cpu_interface else {
                    bail!("the GICv2 node has no CPU interface region");
                };
                Ok(Self::V2 {
                    gicd,
                    gicc: gicc.base as usize,
                })
            }
        }
    }

    /// Where this CPU's PPI registers are.
    fn ppi_frame(self) -> usize {
        match self {
            Self::V3 { ppi_frame, .. } => ppi_frame,
            Self::V2 { gicd, .. } => gicd,
        }
    }

    /// Enables `ppi` and the CPU interface as a Linux host does on this GIC.
    fn enable(self, ppi: u32) {
        let frame = self.ppi_frame();
        match self {
            Self::V3 { gicd, .. } => {
                write32(gicd, read32(gicd) | GICD_CTLR_ARE_NS_GRP1);
                write32(frame + IGROUPR0, read32(frame + IGROUPR0) | 1 << ppi);
                write8(frame + IPRIORITYR + ppi as usize, 0x80);
                write32(frame + ISENABLER0, 1 << ppi);
                set_v3_cpu_interface(true);
            }
            Self::V2 { gicd, gicc } => {
                write32(gicd, read32(gicd) | GICV2_ENABLE_GRP0);
                write8(frame + IPRIORITYR + ppi as usize, GICV2_DEFAULT_PRIORITY);
                write32(frame + ISENABLER0, 1 << ppi);
                write32(gicc + GICC_PMR, GICV2_PMR);
                write32(
                    gicc + GICC_CTLR,
                    read32(gicc + GICC_CTLR) | GICV2_ENABLE_GRP0,
                );
            }
        }
    }

    fn disable(self, ppi: u32) {
        write32(self.ppi_frame() + ICENABLER0, 1 << ppi);
        match self {
            Self::V3 { .. } => set_v3_cpu_interface(false),
            Self::V2 { gicc, .. } => {
                write32(
                    gicc + GICC_CTLR,
                    read32(gicc + GICC_CTLR) & !GICV2_ENABLE_GRP0,
                );
            }
        }
    }

    /// This CPU's pending PPIs and SGIs (GICR_/GICD_ISPENDR0).
    fn pending(self) -> u32 {
        read32(self.ppi_frame() + ISPENDR0)
    }
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

/// Wakes a GICv3 redistributor (GICR_WAKER.ProcessorSleep, then wait for ChildrenAsleep).
fn wake(rd: usize) -> TestResult {
    write32(rd + GICR_WAKER, read32(rd + GICR_WAKER) & !(1 << 1));
    let deadline = Deadline::after_ms(1_000);
    while read32(rd + GICR_WAKER) & (1 << 2) != 0 {
        if deadline.passed() {
            bail!("the redistributor did not wake up");
        }
    }
    Ok(())
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

fn set_v3_cpu_interface(enabled: bool) {
    // SAFETY: the GICv3 CPU interface of this CPU: system-register access (ICC_SRE_EL2.Enable
    // is set by the payload), priority mask open, group 1 on or off. IRQs stay masked in
    // PSTATE, so nothing is taken at EL1. Only called on a GICv3 (`Ppis::V3`).
    unsafe {
        core::arch::asm!("mrs {t}, icc_sre_el1", "orr {t}, {t}, #1", "msr icc_sre_el1, {t}", "isb", t = out(reg) _);
        core::arch::asm!("msr icc_pmr_el1, {}", in(reg) 0xffu64);
        core::arch::asm!("msr icc_igrpen1_el1, {}", "isb", in(reg) u64::from(enabled));
    }
}

/// Enables `ppi` and the CPU interface (see the module comment).
fn enable_ppi(ctx: &Ctx, ppi: u32) -> Result<Ppis, Failure> {
    let ppis = Ppis::find(ctx)?;
    ppis.enable(ppi);
    Ok(ppis)
}

pub fn irq_during_guest_run_exits_to_host(ctx: &mut Ctx) -> TestResult {
    let ppis = enable_ppi(ctx, TIMER_PPI)?;
    let result = run_until_irq(ctx, ppis);
    set_timer(false, 0);
    ppis.disable(TIMER_PPI);
    result
}

pub fn host_virtual_timer_deadline_ends_a_guest_run(ctx: &mut Ctx) -> TestResult {
    let ppis = enable_ppi(ctx, VIRTUAL_TIMER_PPI)?;
    let result = run_until_virtual_timer(ctx, ppis);
    set_virtual_timer(false, 0);
    ppis.disable(VIRTUAL_TIMER_PPI);
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
    let ppis = Ppis::find(ctx)?;
    if let Ppis::V2 { .. } = ppis {
        return Err(Failure::not_applicable(format_args!(
            "not applicable on a GICv2: there is no ICC_PMR_EL1 and no pseudo-NMI host; the \
             host's GICC_PMR is its own MMIO register, which the payload neither reads nor \
             changes"
        )));
    }
    ppis.enable(TIMER_PPI);
    let result = run_with_priority_mask(ctx);
    set_timer(false, 0);
    ppis.disable(TIMER_PPI);
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

fn run_until_virtual_timer(ctx: &mut Ctx, ppis: Ppis) -> TestResult {
    let guest = ctx.guest(Command::Spin, 1)?;
    run_vcpu_until_virtual_timer(guest.vm().handle(), ppis)
}

fn run_vcpu_until_virtual_timer(handle: VmHandle, ppis: Ppis) -> TestResult {
    // Due in a few microseconds, long before the spinning guest's first tick.
    set_virtual_timer(true, 100);
    match host_calls::vcpu_run(handle, 0, 0)? {
        Exit::Irq => {}
        other => bail!("the host's virtual-timer deadline did not end the run: got {other:?}"),
    }
    let pending = ppis.pending();
    if pending & (1 << VIRTUAL_TIMER_PPI) == 0 {
        bail!("IRQ exit, but the host's virtual timer interrupt is not pending for it");
    }
    if pending & (1 << HYP_TIMER_PPI) != 0 {
        bail!("the payload's stand-in timer interrupt (PPI 26) is still pending for the host");
    }
    Ok(())
}

fn run_until_irq(ctx: &mut Ctx, ppis: Ppis) -> TestResult {
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
    if ppis.pending() & (1 << TIMER_PPI) == 0 {
        bail!("IRQ exit, but the timer interrupt is not pending for the host");
    }
    // Level-sensitive: once the host turns its timer off, the interrupt is no longer pending.
    set_timer(false, 0);
    let deadline = Deadline::after_ms(1_000);
    while ppis.pending() & (1 << TIMER_PPI) != 0 {
        if deadline.passed() {
            bail!("the timer interrupt stayed pending after the host disabled the timer");
        }
    }
    Ok(())
}

/// How long the other CPU may take to come up, run its check and be reported off.
const CPU_TIMEOUT_MS: u64 = 10_000;
/// What the other CPU needs (the GIC, the VM) and what it found.
static OTHER_CPU_GIC: SpinMutex<Option<Gic>> = SpinMutex::new(None);
static OTHER_CPU_VM: AtomicU64 = AtomicU64::new(0);
static OTHER_CPU_RESULT: SpinMutex<Option<TestResult>> = SpinMutex::new(None);

/// The same on a CPU other than the boot CPU: the payload finds that CPU's PPI controls
/// (its own redistributor on a GICv3; on a GICv2 its own bank of the distributor's PPI
/// registers, reached at the same address as every other CPU's).
pub fn host_virtual_timer_deadline_ends_a_guest_run_on_another_cpu(ctx: &mut Ctx) -> TestResult {
    let (index, mpidr) = crate::runner::another_cpu(ctx)?;
    let guest = ctx.guest(Command::Spin, 1)?;
    *OTHER_CPU_GIC.lock() = ctx.platform.board.gic;
    OTHER_CPU_VM.store(guest.vm().handle().raw(), Ordering::Release);
    *OTHER_CPU_RESULT.lock() = None;
    let status = cpus::start(index, mpidr, &ctx.platform.mmu, virtual_timer_on_this_cpu);
    if status != 0 {
        bail!("PSCI CPU_ON of cpu {index} returned {status}");
    }
    let finished = wait_until(CPU_TIMEOUT_MS, || OTHER_CPU_RESULT.lock().is_some());
    let off = wait_until(CPU_TIMEOUT_MS, || {
        psci::affinity_info(mpidr) == psci::AFFINITY_OFF
    });
    let Some(result) = OTHER_CPU_RESULT.lock().take() else {
        bail!("cpu {index} did not finish within {CPU_TIMEOUT_MS} ms (finished: {finished})");
    };
    if let Err(failure) = result {
        bail!("on cpu {index}: {}", failure.as_str());
    }
    if !off {
        bail!("cpu {index} was not reported off within {CPU_TIMEOUT_MS} ms");
    }
    Ok(())
}

/// The other CPU's task: the virtual-timer check with its own PPI controls.
fn virtual_timer_on_this_cpu(_index: usize) {
    let gic = *OTHER_CPU_GIC.lock();
    let handle = VmHandle(OTHER_CPU_VM.load(Ordering::Acquire));
    let result = Ppis::on(gic).and_then(|ppis| {
        ppis.enable(VIRTUAL_TIMER_PPI);
        let result = run_vcpu_until_virtual_timer(handle, ppis);
        set_virtual_timer(false, 0);
        ppis.disable(VIRTUAL_TIMER_PPI);
        result
    });
    *OTHER_CPU_RESULT.lock() = Some(result);
}
