//! fw_cfg's DMA interface, as an attacker uses it (QEMU docs/specs/fw_cfg.txt, "DMA
//! interface"): the host writes the address of an `FWCfgDmaAccess` descriptor to the DMA
//! address register; QEMU reads the descriptor, performs the transfer and writes the
//! descriptor's control word back (0 on success). Selecting a key that names no item and
//! asking for a read makes it write `length` zero bytes at `address`, any physical address.

use crate::virt::FW_CFG;
use el1_rt::exceptions::Abort;
use el1_rt::probe;

/// The DMA address register (64-bit, big-endian; a 64-bit write starts the transfer).
pub const DMA_ADDRESS: usize = FW_CFG + 0x10;
const CTL_READ: u32 = 1 << 1;
const CTL_SELECT: u32 = 1 << 3;
/// Beyond every item QEMU registers (its entry mask is 0x3fff): fw_cfg then "reads" zeros.
const NO_SUCH_KEY: u32 = 0x3fff;

/// The descriptor (big-endian fields), in a host page.
#[repr(C)]
struct DmaAccess {
    control: u32,
    length: u32,
    address: u64,
}

/// What became of a DMA request.
pub enum Outcome {
    /// The write to the DMA address register was refused with this abort, and the
    /// descriptor is untouched: no DMA happened.
    Refused(Abort),
    /// fw_cfg wrote the descriptor back with this control word: the transfer happened (0)
    /// or failed in the device.
    Performed { control: u32 },
    /// Anything else (the register write went through but the descriptor was not updated,
    /// or it aborted and the descriptor changed anyway).
    Inconsistent { aborted: bool, control: u32 },
}

/// Asks fw_cfg to write `length` zero bytes at `target`, with the descriptor in the host
/// page at `descriptor` (host-owned RAM).
pub fn write_zeros(target: usize, length: u32, descriptor: usize) -> Outcome {
    let request = (NO_SUCH_KEY << 16) | CTL_SELECT | CTL_READ;
    let access = descriptor as *mut DmaAccess;
    // SAFETY: `descriptor` is a free host page this test owns, identity-mapped Normal
    // memory; no Rust object lives there.
    unsafe {
        access.write_volatile(DmaAccess {
            control: request.to_be(),
            length: length.to_be(),
            address: (target as u64).to_be(),
        });
    }
    // The device reads the descriptor from memory: the store must be complete first.
    el1_rt::cache::clean_to_poc(descriptor, core::mem::size_of::<DmaAccess>());
    // The register is big-endian: store the byte-reversed address.
    let result = probe::write_u64(DMA_ADDRESS, (descriptor as u64).swap_bytes());
    el1_rt::cache::clean_invalidate_to_poc(descriptor, core::mem::size_of::<DmaAccess>());
    // SAFETY: as above; the device may have written the control word back.
    let control = u32::from_be(unsafe { core::ptr::addr_of!((*access).control).read_volatile() });
    match result {
        Err(abort) if control == request => Outcome::Refused(abort),
        Ok(()) if control != request => Outcome::Performed { control },
        Err(_) => Outcome::Inconsistent {
            aborted: true,
            control,
        },
        Ok(()) => Outcome::Inconsistent {
            aborted: false,
            control,
        },
    }
}
