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
