//! EL2's own stage-1 translation: an identity map with W^X.
//!
//! - image text: read-only, executable;
//! - rodata (with relocated pointers): read-only, never executable;
//! - data, .bss, stacks: read-write, never executable; the page under each stack (the boot
//!   CPU's in the image, the others' in the per-CPU region, `per_cpu`) is left unmapped so
//!   an overflow faults instead of corrupting the neighbour;
//! - RAM (including the dynamic carve-out and host memory EL2 must read or clear):
//!   read-write, never executable;
//! - the console and the GICv3 redistributors or the GICv2 distributor (for the host-timer
//!   stand-in while a guest runs, see `host_timer`): device memory.
//!
//! SCTLR_EL2.WXN backs this up: nothing writable is ever executable.

use crate::layout;
use aarch64_cpu::registers::{MAIR_EL2, Readable, SCTLR_EL2, TCR_EL2, Writeable};
use aarch64_paging::{
    Mapping,
    descriptor::El23Attributes,
    descriptor::PhysicalAddress,
    paging::{Constraints, El2, MemoryRegion},
};
use core::ops::Range;
use spin::Once;
use stage2::pool::{PagePool, PoolTranslation};

/// MAIR_EL2: index 0 device nGnRE, index 1 normal write-back read/write-allocate.
const MAIR: u64 = 0x04 | (0xff << 8);
const DEVICE: El23Attributes = El23Attributes::ATTRIBUTE_INDEX_0;
const NORMAL: El23Attributes =
    El23Attributes::ATTRIBUTE_INDEX_1.union(El23Attributes::INNER_SHAREABLE);
const COMMON: El23Attributes = El23Attributes::VALID
    .union(El23Attributes::ACCESSED)
    .union(El23Attributes::USER_RES1);

/// SCTLR_EL2: RES1 bits, M (MMU), C and I (caches), SA (stack alignment check), WXN.
const SCTLR_EL2_ON: u64 = 0x30c5_0830 | (1 << 0) | (1 << 2) | (1 << 3) | (1 << 12) | (1 << 19);

/// Register values every CPU loads to turn the same translation on.
#[derive(Clone, Copy)]
struct MmuRegs {
    ttbr0: u64,
    tcr: u64,
}

static MMU_REGS: Once<MmuRegs> = Once::new();

pub struct El2Map {
    mapping: Mapping<PoolTranslation, El2>,
}

#[derive(Debug)]
pub struct MapFailed(pub &'static str, pub aarch64_paging::MapError);

impl core::fmt::Display for MapFailed {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        write!(f, "EL2 stage-1: mapping {} failed: {}", self.0, self.1)
    }
}

fn region(r: &Range<usize>) -> MemoryRegion {
    MemoryRegion::new(r.start, r.end)
}

impl El2Map {
    /// Builds the map; `ram`, `console` and `devices` as discovered, tables from `tables`,
    /// `stack_guards` the guard pages of the secondary CPUs' stacks (in RAM; unmapped).
    pub fn build(
        tables: PagePool,
        ram: impl Iterator<Item = Range<usize>>,
        console: Option<Range<usize>>,
        devices: impl Iterator<Item = Range<usize>>,
        stack_guards: impl Iterator<Item = Range<usize>>,
    ) -> Result<Self, MapFailed> {
        let mut mapping = Mapping::new(PoolTranslation::new(tables), 0, El2);
        let mut map = |what, r: Range<usize>, attrs| {
            mapping
                .map_range(
                    &region(&r),
                    PhysicalAddress(r.start),
                    attrs,
                    Constraints::empty(),
                )
                .map_err(|e| MapFailed(what, e))
        };
        let rw = COMMON | NORMAL | El23Attributes::XN;
        for bank in ram {
            map("RAM", bank, rw)?;
        }
        if let Some(c) = console {
            map("console", c, COMMON | DEVICE | El23Attributes::XN)?;
        }
        for d in devices {
            map("device", d, COMMON | DEVICE | El23Attributes::XN)?;
        }
        // The image's sections, more strictly than the RAM around them.
        map(
            "text",
            layout::text(),
            COMMON | NORMAL | El23Attributes::READ_ONLY,
        )?;
        map(
            "rodata",
            layout::rodata(),
            COMMON | NORMAL | El23Attributes::READ_ONLY | El23Attributes::XN,
        )?;
        map("data", layout::data(), rw)?;
        let image = layout::image();
        map("image tail", layout::data().end..image.end, rw)?;
        let boot = layout::boot_stack();
        let boot_guard = boot.start - layout::PAGE_SIZE..boot.start;
        for guard in core::iter::once(boot_guard).chain(stack_guards) {
            map("stack guard", guard, El23Attributes::empty())?;
        }
        Ok(Self { mapping })
    }

    /// Turns the MMU on on the boot CPU and records the registers for the others.
    pub fn activate(&self) {
        let pa_range = aarch64_cpu::registers::ID_AA64MMFR0_EL1.get() & 0xf;
        // T0SZ = 16 (48-bit VA), 4 KiB granule, inner-shareable write-back walks,
        // PS = the CPU's physical address size, RES1 bits 31 and 23.
        let tcr = 16
            | (0b01 << 8)
            | (0b01 << 10)
            | (0b11 << 12)
            | (pa_range.min(5) << 16)
            | (1 << 23)
            | (1 << 31);
        let regs = MmuRegs {
            ttbr0: self.mapping.root_address().0 as u64,
            tcr,
        };
        MMU_REGS.call_once(|| regs);
        self.mapping.mark_active();
        enable(regs);
    }
}

/// Whether EL2's stage-1 (now active) maps `va` for reading: `AT S1E2R`, then PAR_EL1.F
/// (Arm ARM D8.13, "Address translation instructions"). For boot-time checks only: PAR_EL1
/// is the host's register, and the host has not run yet.
pub fn maps_at_boot(va: usize) -> bool {
    let par: u64;
    // SAFETY: AT only looks the address up in the active EL2 translation (no access is
    // made); it writes PAR_EL1, which holds nothing of the host's before the host starts.
    unsafe {
        core::arch::asm!(
            "at s1e2r, {va}",
            "isb",
            "mrs {par}, par_el1",
            va = in(reg) va,
            par = out(reg) par,
            options(nostack, preserves_flags),
        );
    }
    par & 1 == 0
}

/// Turns the MMU on on a secondary CPU with the boot CPU's translation.
pub fn enable_on_secondary() {
    if let Some(regs) = MMU_REGS.get() {
        enable(*regs);
    }
}

#[inline(never)] // checked by name in the built payload (payload_maintenance_sequences)
fn enable(regs: MmuRegs) {
    MAIR_EL2.set(MAIR);
    TCR_EL2.set(regs.tcr);
    // SAFETY: the table maps this code, its stack and data at their current (identity)
    // addresses with compatible attributes, so execution continues seamlessly. Stale TLB
    // entries from before are dropped first.
    unsafe {
        core::arch::asm!(
            "msr ttbr0_el2, {ttbr}",
            "tlbi alle2",
            "dsb ish",
            "isb",
            ttbr = in(reg) regs.ttbr0,
            options(nostack, preserves_flags),
        );
    }
    SCTLR_EL2.set(SCTLR_EL2_ON);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}
