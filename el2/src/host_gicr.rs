//! The GICv3 redistributors' RD_base frames: kept out of the host's stage-2 and emulated here.
//!
//! Why: a redistributor with GICR_CTLR.EnableLPIs = 1 reads its LPI configuration table at
//! GICR_PROPBASER and reads and writes its LPI pending table at GICR_PENDBASER (GICv3
//! architecture specification, 5.1 "LPIs" and 12.11.x). Those registers take any physical
//! address, so a host that could program them could aim the GIC's writes at a guest's
//! private page, at the ownership record or at EL2's image, exactly like a DMA engine.
//!
//! Design: the host never gets LPIs. No ITS is given to it (the ITS is an unconfined DMA
//! master and leaves its DTB), so LPIs would be of no use to it anyway, and the Linux GICv3
//! driver does not touch PROPBASER/PENDBASER without an ITS. The RD_base frame of every
//! redistributor is left out of the host stage-2 (the SGI_base frame, which holds no
//! memory pointer, stays mapped, and EL2's host-timer stand-in keeps using it), so each
//! host access to it traps here as a stage-2 data abort and is emulated from the syndrome
//! (ESR_EL2.ISS: SAS, SRT, WnR, SSE, SF; the PC advances by ESR_EL2.IL) under the rule of
//! `platform::gicr_rd`: GICR_CTLR passes with EnableLPIs forced to 0 both ways; the
//! identification, WAKER, STATUSR and SYNCR registers pass (WAKER is how each CPU wakes its
//! redistributor at boot); PROPBASER, PENDBASER, the direct-LPI registers and everything
//! else read as zero and drop writes. The VLPI frames of a GICv4 redistributor read as zero
//! too.
//!
//! With EnableLPIs never 1 the redistributor never accesses either table, so no page, the
//! host's included, is ever written by it: there is nothing to pin in the ownership record.
//! An access to the GICR regions past the last redistributor, one EL2 cannot decode
//! (ISV = 0), a byte or halfword access or a misaligned one is answered with an external
//! abort, as any other refused host access.
//!
//! If the firmware left EnableLPIs set and it cannot be cleared (GICv3 allows that), the
//! tables point where the firmware put them: the boot then disables protected VMs (see
//! `unconfined_dma`), saying which redistributor. With the boot option that hands the
//! unconfined DMA masters to the host (protected VMs off), none of this is set up: the
//! host gets the whole redistributors, as it gets the ITS.

use crate::host_abort;
use aarch64_cpu::registers::{ELR_EL2, Readable, Writeable};
use core::sync::atomic::{AtomicBool, Ordering};
use platform::fixed_list::{FixedList, MemRange};
use platform::gicr_rd::{self, CTLR, CTLR_ENABLE_LPIS, Read, TYPER, Write};
use spin::Once;

/// Each redistributor's frames are 64 KiB: RD_base, SGI_base, then VLPI_base and a
/// reserved frame on GICv4 (GICR_TYPER.VLPIS).
const FRAME: usize = 0x1_0000;
const TYPER_VLPIS: u64 = 1 << 1;
const TYPER_LAST: u64 = 1 << 4;
/// GICR_CTLR.RWP: a write to EnableLPIs has not taken effect yet.
const CTLR_RWP: u32 = 1 << 3;
/// How often the boot reads GICR_CTLR for RWP to clear before it gives up (and turns
/// protected VMs off). A redistributor finishes in microseconds; this is generous.
const RWP_POLLS: usize = 1_000_000;

/// The redistributors the GIC reports: one per CPU, as many as the machine has, so no
/// list of them is kept; [`Layout::frames`] walks the GICR regions each time (a few
/// register reads per redistributor, only on the rare trapped RD_base access and at boot).
pub struct Layout {
    /// The GICR regions of the DTB.
    regions: FixedList<MemRange, 4>,
    count: usize,
}

static LAYOUT: Once<Layout> = Once::new();
static REFUSAL_LOGGED: AtomicBool = AtomicBool::new(false);

fn read32(addr: usize) -> u32 {
    // SAFETY: `addr` is a register of a redistributor the DTB describes; EL2 accesses it as
    // device memory (identity, `mmu`, or with the MMU off before that); reading the
    // registers this module reads has no side effect.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

fn read64(addr: usize) -> u64 {
    // SAFETY: as in `read32`; only GICR_TYPER is read this way (8-byte aligned, 64-bit
    // access allowed by the GICv3 specification).
    unsafe { core::ptr::read_volatile(addr as *const u64) }
}

fn write32(addr: usize, value: u32) {
    // SAFETY: as in `read32`; only GICR_CTLR (with EnableLPIs clear), GICR_STATUSR and
    // GICR_WAKER are written, none of which makes the GIC access memory.
    unsafe { core::ptr::write_volatile(addr as *mut u32, value) }
}

/// Records the GICR regions and counts their redistributors. Call once, before the host
/// runs.
pub fn discover(regions: &[MemRange]) -> &'static Layout {
    let mut layout = Layout {
        regions: FixedList::new(),
        count: 0,
    };
    for region in regions.iter().take(4) {
        let _ = layout.regions.push(*region);
    }
    layout.count = layout.frames().count();
    LAYOUT.call_once(|| layout)
}

impl Layout {
    /// RD_base of each redistributor with its size (two or four frames): each GICR region
    /// walked from its start through GICR_TYPER.Last (GICv3 9.10), reading VLPIS for each
    /// redistributor's size.
    fn frames(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.regions.as_slice().iter().flat_map(|region| {
            let end = region.end() as usize;
            let mut next = Some(region.base as usize);
            core::iter::from_fn(move || {
                let rd = next.filter(|&rd| rd + 2 * FRAME <= end)?;
                let typer = read64(rd + TYPER);
                let size = if typer & TYPER_VLPIS != 0 { 4 } else { 2 } * FRAME;
                next = (typer & TYPER_LAST == 0).then_some(rd + size);
                Some((rd, size))
            })
        })
    }

    /// The SGI_base frames: the only part of the GICR regions the host stage-2 maps.
    pub fn sgi_frames(&self) -> impl Iterator<Item = MemRange> + '_ {
        self.frames().map(|(rd, _)| MemRange {
            base: (rd + FRAME) as u64,
            size: FRAME as u64,
        })
    }

    pub fn regions(&self) -> &[MemRange] {
        self.regions.as_slice()
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// Clears EnableLPIs wherever the firmware left it set; the RD_base of the first
    /// redistributor where it stays set (GICv3 lets an implementation refuse to clear it,
    /// GICR_CTLR.CES) or where the disable does not complete: clearing EnableLPIs is done
    /// only once GICR_CTLR.RWP reads 0 (GICv3 12.11.2), and until then the redistributor
    /// may still write its pending table.
    pub fn disable_lpis(&self) -> Option<usize> {
        self.frames().find_map(|(rd, _)| {
            let ctlr = read32(rd + CTLR);
            if ctlr & CTLR_ENABLE_LPIS == 0 {
                return None;
            }
            write32(rd + CTLR, ctlr & !CTLR_ENABLE_LPIS);
            let settled = (0..RWP_POLLS).any(|_| read32(rd + CTLR) & CTLR_RWP == 0);
            let cleared = read32(rd + CTLR) & CTLR_ENABLE_LPIS == 0;
            if settled && cleared {
                log::info!(
                    "the firmware left LPIs enabled in the redistributor at {rd:#x}: disabled"
                );
                None
            } else {
                Some(rd)
            }
        })
    }
}

/// Emulates the host data abort described by `esr` if it hit a redistributor frame the host
/// does not map; `x` is the host's x0-x30. False: not such an access, or one to refuse
/// with an abort (the caller injects it).
pub fn emulate(esr: u64, x: &mut [u64; 31]) -> bool {
    let Some(layout) = LAYOUT.get() else {
        return false;
    };
    let ipa = host_abort::fault_ipa() as usize;
    if !layout
        .regions()
        .iter()
        .any(|r| (r.base as usize..r.end() as usize).contains(&ipa))
    {
        return false;
    }
    let Some((rd, size)) = layout
        .frames()
        .find(|&(rd, size)| (rd..rd + size).contains(&ipa))
    else {
        return false;
    };
    let offset = ipa - rd;
    let in_rd = offset < FRAME;
    let in_vlpi = offset >= 2 * FRAME && offset < size;
    if !(in_rd || in_vlpi) {
        return false; // the SGI_base frame is mapped: a fault there is not EL2's to emulate
    }
    let Some(access) = gicr_rd::decode(esr) else {
        return false;
    };
    if access.width < 4 || !offset.is_multiple_of(access.width) {
        return false;
    }
    if access.write {
        let value = x.get(access.register).copied().unwrap_or(0); // 31: XZR
        if in_rd {
            write_rd(rd, offset, access.width, value);
        }
    } else {
        let raw = if in_rd {
            read_rd(rd, offset, access.width)
        } else {
            0
        };
        if let Some(reg) = x.get_mut(access.register) {
            *reg = access.loaded(raw);
        }
    }
    ELR_EL2.set(ELR_EL2.get() + access.length);
    true
}

fn read_rd(rd: usize, offset: usize, width: usize) -> u64 {
    match gicr_rd::read(offset, width) {
        Read::Register { clear } if width == 8 => read64(rd + offset) & !u64::from(clear),
        Read::Register { clear } => u64::from(read32(rd + offset) & !clear),
        Read::Zero => 0,
    }
}

fn write_rd(rd: usize, offset: usize, width: usize, value: u64) {
    match gicr_rd::write(offset, width, value) {
        Write::Register(v) => write32(rd + offset, v),
        Write::RegisterRefusing(v, what) => {
            note_refusal(rd, what);
            write32(rd + offset, v);
        }
        Write::Refused(what) => note_refusal(rd, what),
        Write::Ignored => {}
    }
}

/// Says once per boot that the host tried to use LPIs (the write itself is dropped).
fn note_refusal(rd: usize, what: &str) {
    if !REFUSAL_LOGGED.swap(true, Ordering::Relaxed) {
        log::warn!(
            "host write to {what} of the redistributor at {rd:#x} ignored: the host gets no LPIs (logged once)"
        );
    }
}
