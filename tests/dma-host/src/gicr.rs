//! CPU 0's GICv3 redistributor, RD_base frame (GICv3 specification 12.11), as the host
//! sees it.

use crate::virt::GICR_CPU0;
use el1_rt::exceptions::Abort;
use el1_rt::probe;

pub const CTLR: usize = GICR_CPU0;
pub const IIDR: usize = GICR_CPU0 + 0x04;
pub const TYPER: usize = GICR_CPU0 + 0x08;
pub const WAKER: usize = GICR_CPU0 + 0x14;
pub const PROPBASER: usize = GICR_CPU0 + 0x70;
pub const PENDBASER: usize = GICR_CPU0 + 0x78;
pub const CTLR_ENABLE_LPIS: u32 = 1;
/// Bits [51:12] of PROPBASER/PENDBASER: the table's physical address.
pub const TABLE_ADDRESS: u64 = 0x000f_ffff_ffff_f000;
/// PROPBASER.IDbits = 13: 14 bits of INTID, so an 8 KiB property table and a 2 KiB
/// pending table.
pub const ID_BITS_13: u64 = 13;

pub fn read32(address: usize) -> Result<u32, Abort> {
    probe::read_u32(address)
}

pub fn write32(address: usize, value: u32) -> Result<(), Abort> {
    probe::write_u32(address, value)
}

pub fn read64(address: usize) -> Result<u64, Abort> {
    probe::read_u64(address)
}

pub fn write64(address: usize, value: u64) -> Result<(), Abort> {
    probe::write_u64(address, value)
}

/// Loads GICR_TYPER's low word into w20 and its whole value into x29 with every other
/// callee-saved register (x19, x21-x28) holding a marker: EL2 emulates both loads, so this
/// checks that its data-abort path writes the register the instruction names and leaves
/// the rest as they were. Returns (w20, x29, markers intact).
pub fn typer_into_high_registers() -> (u64, u64, bool) {
    const MARK: u64 = 0x5a5a_0000_0000_0000;
    let (w20, x29, bad): (u64, u64, u64);
    // SAFETY: two loads from CPU 0's GICR_TYPER (mapped Device memory, no side effects);
    // every register the block writes is declared, x29 (the frame pointer) and x19 (LLVM's
    // base pointer) are saved and restored by the block itself.
    unsafe {
        core::arch::asm!(
            "stp x19, x29, [sp, #-16]!",
            "mov x19, {mark}",
            "add x21, x19, #21", "add x22, x19, #22", "add x23, x19, #23", "add x24, x19, #24",
            "add x25, x19, #25", "add x26, x19, #26", "add x27, x19, #27", "add x28, x19, #28",
            "ldr w20, [{typer}]",
            "ldr x29, [{typer}]",
            "mov {x29}, x29",
            // bad = OR of (register - expected) over the markers
            "sub {bad}, x19, {mark}",
            "sub x9, x21, x19", "sub x9, x9, #21", "orr {bad}, {bad}, x9",
            "sub x9, x22, x19", "sub x9, x9, #22", "orr {bad}, {bad}, x9",
            "sub x9, x23, x19", "sub x9, x9, #23", "orr {bad}, {bad}, x9",
            "sub x9, x24, x19", "sub x9, x9, #24", "orr {bad}, {bad}, x9",
            "sub x9, x25, x19", "sub x9, x9, #25", "orr {bad}, {bad}, x9",
            "sub x9, x26, x19", "sub x9, x9, #26", "orr {bad}, {bad}, x9",
            "sub x9, x27, x19", "sub x9, x9, #27", "orr {bad}, {bad}, x9",
            "sub x9, x28, x19", "sub x9, x9, #28", "orr {bad}, {bad}, x9",
            "ldp x19, x29, [sp], #16",
            mark = in(reg) MARK,
            typer = in(reg) TYPER,
            x29 = out(reg) x29,
            bad = out(reg) bad,
            out("x9") _,
            out("x20") w20,
            out("x21") _, out("x22") _, out("x23") _, out("x24") _,
            out("x25") _, out("x26") _, out("x27") _, out("x28") _,
        );
    }
    (w20, x29, bad == 0)
}
