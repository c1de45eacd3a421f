//! The host's timer while a guest runs.
//!
//! A host at EL1 (Linux included) keeps its tick in the EL1 virtual timer, and a world
//! switch loads the guest's virtual timer in its place: without help the host's deadline
//! could pass unnoticed until the guest exits for another reason. So while a guest runs, EL2
//! copies an armed host deadline into its own physical timer (CNTHP, PPI 26) and enables
//! that PPI for this CPU; HCR_EL2.IMO/FMO make it exit the guest with an IRQ exit. On the
//! way back EL2 disarms the timer and disables the PPI again: the timer's output is
//! level-sensitive, so the PPI is no longer pending and the host never sees it, only its
//! own virtual timer, which is due by then. The host's Linux does not use PPI 26 at EL1.
//!
//! Where the PPI's controls are depends on the GIC, as the DTB says:
//! - GICv3: in this CPU's redistributor (SGI/PPI frame). The PPI goes in group 1 at a
//!   middle priority (0x80), like every PPI a Linux host configures, so the host's own
//!   CPU-interface settings (group 1 enabled, ICC_PMR_EL1) let it through.
//! - GICv2 (GIC-400, e.g. zcu102): in the distributor, whose GICD_ISENABLER0,
//!   GICD_ICENABLER0 and GICD_IPRIORITYR0..7 are banked per CPU (GICv2 spec 4.3.5, 4.3.6,
//!   4.3.11): the same address reaches the calling CPU's own copy. Its group (GICD_IGROUPR0)
//!   is left as the host has it: Linux's GICv2 driver on a GIC without the Security
//!   Extensions enables only group 0, which PPIs reset to, and a GIC with them makes that
//!   register Secure-only. The priority is Linux's default 0xa0 (GICD_INT_DEF_PRI), which
//!   its GICC_PMR of 0xf0 lets through. There are no GIC system registers to touch.

use crate::per_cpu::CpuState;
use crate::sysreg;
use aarch64_cpu::registers::{MPIDR_EL1, Readable};
use core::ops::Range;
use core::sync::atomic::{AtomicUsize, Ordering};
use spin::Once;

const HYP_TIMER_PPI: u32 = 26;
/// A GICv3 redistributor: RD frame then SGI/PPI frame, 64 KiB each (no VLPI frames).
const GICR_STRIDE: usize = 0x2_0000;
const GICR_TYPER: usize = 0x8;
const SGI_BASE: usize = 0x1_0000;
const GICR_IGROUPR0: usize = SGI_BASE + 0x80;
const GICR_ISENABLER0: usize = SGI_BASE + 0x100;
const GICR_ICENABLER0: usize = SGI_BASE + 0x180;
const GICR_IPRIORITYR: usize = SGI_BASE + 0x400;
/// GICv2 distributor registers banked per CPU for SGIs and PPIs.
const GICD_ISENABLER0: usize = 0x100;
const GICD_ICENABLER0: usize = 0x180;
const GICD_IPRIORITYR: usize = 0x400;
/// Linux's GICv2 default interrupt priority (GICD_INT_DEF_PRI).
const GICV2_PRIORITY: u8 = 0xa0;
/// CNTV_CTL_EL0 / CNTHP_CTL_EL2: ENABLE set, IMASK clear.
const TIMER_ARMED: u64 = 0b01;
const TIMER_CTL_MASK: u64 = 0b11;

struct Redistributors {
    ranges: [(usize, usize); 4],
    count: usize,
}

static REDISTRIBUTORS: Once<Redistributors> = Once::new();
// Each CPU's redistributor frame is found once and kept in `per_cpu::CpuState::timer_frame`
// (0: not looked up yet; 1: none).
/// GICv2: the distributor's base (0: not a GICv2).
static GICV2_DISTRIBUTOR: AtomicUsize = AtomicUsize::new(0);

/// Records the redistributor regions the DTB describes (EL2 maps them as device memory).
pub fn init(ranges: impl Iterator<Item = Range<usize>>) {
    let mut r = Redistributors {
        ranges: [(0, 0); 4],
        count: 0,
    };
    for range in ranges.take(4) {
        r.ranges[r.count] = (range.start, range.end);
        r.count += 1;
    }
    REDISTRIBUTORS.call_once(|| r);
}

/// Records a GICv2 distributor the DTB describes (EL2 maps it as device memory); its
/// banked PPI registers stand in for the redistributors of a GICv3.
pub fn init_gicv2(distributor: usize) {
    GICV2_DISTRIBUTOR.store(distributor, Ordering::Relaxed);
}

fn read32(addr: usize) -> u32 {
    // SAFETY: `addr` is a register of a redistributor (or GICv2 distributor) the DTB
    // describes, mapped at EL2 as device memory (`mmu`); reading it has no side effect.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

fn write32(addr: usize, value: u32) {
    // SAFETY: as in `read32`; the registers written are this CPU's own PPI controls, of
    // which the host does not use PPI 26.
    unsafe { core::ptr::write_volatile(addr as *mut u32, value) }
}

fn write8(addr: usize, value: u8) {
    // SAFETY: as in `write32`: PPI 26's priority byte in this CPU's banked copy of a GICv2
    // distributor's GICD_IPRIORITYR6, which is byte-accessible (GICv2 spec 4.3.11).
    unsafe { core::ptr::write_volatile(addr as *mut u8, value) }
}

/// The redistributor frame whose GICR_TYPER affinity is this CPU's MPIDR.
fn own_frame(this_cpu: &CpuState) -> Option<usize> {
    match this_cpu.timer_frame.load(Ordering::Relaxed) {
        0 => {}
        1 => return None,
        frame => return Some(frame),
    }
    let mpidr = MPIDR_EL1.get();
    let affinity = (mpidr & 0xff_ffff) | ((mpidr >> 32) & 0xff) << 24;
    let found = REDISTRIBUTORS.get().and_then(|r| {
        r.ranges[..r.count].iter().find_map(|&(start, end)| {
            let mut frame = start;
            while frame + GICR_STRIDE <= end {
                let typer = u64::from(read32(frame + GICR_TYPER))
                    | u64::from(read32(frame + GICR_TYPER + 4)) << 32;
                if typer >> 32 == affinity {
                    return Some(frame);
                }
                if typer & (1 << 4) != 0 {
                    break; // GICR_TYPER.Last
                }
                frame += GICR_STRIDE;
            }
            None
        })
    });
    this_cpu
        .timer_frame
        .store(found.unwrap_or(1), Ordering::Relaxed);
    found
}

/// Where this CPU's PPI 26 is enabled and disabled.
#[derive(Clone, Copy)]
enum PpiControls {
    /// GICv3: this CPU's redistributor frame.
    Redistributor(usize),
    /// GICv2: the distributor, whose PPI registers are banked per CPU.
    Gicv2Distributor(usize),
}

/// Armed while a guest runs: disarm with [`disarm`].
pub struct Armed {
    ppis: PpiControls,
}

/// If the host's virtual timer (`cntv_ctl`, `cntv_cval`, as saved on guest entry) is armed,
/// stands in for it with the EL2 physical timer for the guest's run.
pub fn arm_for_guest(this_cpu: &CpuState, cntv_ctl: u64, cntv_cval: u64) -> Option<Armed> {
    if cntv_ctl & TIMER_CTL_MASK != TIMER_ARMED {
        return None;
    }
    let ppis = match GICV2_DISTRIBUTOR.load(Ordering::Relaxed) {
        0 => PpiControls::Redistributor(own_frame(this_cpu)?),
        gicd => PpiControls::Gicv2Distributor(gicd),
    };
    // The host's CNTVOFF_EL2 is 0 (el2_regs), so its virtual deadline is a physical one.
    // SAFETY: the EL2 physical timer is EL2's own.
    unsafe {
        sysreg::set_cnthp_cval_el2(cntv_cval);
        sysreg::set_cnthp_ctl_el2(TIMER_ARMED);
    }
    let bit = 1 << HYP_TIMER_PPI;
    match ppis {
        PpiControls::Redistributor(frame) => {
            write32(frame + GICR_IGROUPR0, read32(frame + GICR_IGROUPR0) | bit);
            let prio = frame + GICR_IPRIORITYR + (HYP_TIMER_PPI as usize & !3);
            let shift = 8 * (HYP_TIMER_PPI % 4);
            write32(prio, (read32(prio) & !(0xff << shift)) | 0x80 << shift);
            write32(frame + GICR_ISENABLER0, bit);
        }
        PpiControls::Gicv2Distributor(gicd) => {
            write8(
                gicd + GICD_IPRIORITYR + HYP_TIMER_PPI as usize,
                GICV2_PRIORITY,
            );
            write32(gicd + GICD_ISENABLER0, bit);
        }
    }
    Some(Armed { ppis })
}

/// Stops the stand-in: the timer's output drops, so PPI 26 is no longer pending.
pub fn disarm(armed: Armed) {
    // SAFETY: as in `arm_for_guest`.
    unsafe { sysreg::set_cnthp_ctl_el2(0) };
    let icenabler0 = match armed.ppis {
        PpiControls::Redistributor(frame) => frame + GICR_ICENABLER0,
        PpiControls::Gicv2Distributor(gicd) => gicd + GICD_ICENABLER0,
    };
    write32(icenabler0, 1 << HYP_TIMER_PPI);
}
