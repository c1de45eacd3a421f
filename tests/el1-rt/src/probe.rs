//! Single memory accesses that may be refused: a load or store that EL2 answers with a
//! synchronous external abort comes back as `Err(Abort)` instead of stopping the image.

use crate::exceptions::{self, Abort};
use core::arch::asm;

/// Left in the destination register when a load is stepped over; never returned as data.
const NOT_READ: u64 = 0xdead_beef_dead_beef;

/// Reads the u64 at `address` (8-byte aligned, identity-mapped) with exactly one `ldr`.
pub fn read_u64(address: usize) -> Result<u64, Abort> {
    exceptions::expect_data_abort();
    let value: u64;
    // SAFETY: `address` is identity-mapped Normal memory (mmu.rs maps all RAM), so the
    // load itself cannot corrupt anything; if stage 2 refuses it, the armed exception
    // handler steps over it. The handler is an ordinary Rust call that does not save
    // FP/SIMD registers, hence clobber_abi("C"). The compiler can neither move nor drop
    // an asm! block with memory effects.
    unsafe {
        asm!(
            "ldr x1, [x0]",
            in("x0") address,
            inout("x1") NOT_READ => value,
            clobber_abi("C"),
            options(nostack),
        );
    }
    match exceptions::take_data_abort() {
        Some(abort) => Err(abort),
        None => Ok(value),
    }
}

/// Writes the u64 `value` at `address` (8-byte aligned, identity-mapped) with exactly one
/// `str`.
///
/// The caller must own the memory at `address` or be testing that the write is refused:
/// if it is not refused, the value lands there.
pub fn write_u64(address: usize, value: u64) -> Result<(), Abort> {
    exceptions::expect_data_abort();
    // SAFETY: as in `read_u64`; the caller names memory that no Rust object of this image
    // lives in (a page given away to the payload or a guest), so a write that lands
    // changes nothing the compiler knows about.
    unsafe {
        asm!(
            "str x1, [x0]",
            in("x0") address,
            in("x1") value,
            clobber_abi("C"),
            options(nostack),
        );
    }
    match exceptions::take_data_abort() {
        Some(abort) => Err(abort),
        None => Ok(()),
    }
}

/// Reads the u32 at `address` (4-byte aligned, identity-mapped) with exactly one `ldr w`:
/// device registers that only take 32-bit accesses.
pub fn read_u32(address: usize) -> Result<u32, Abort> {
    exceptions::expect_data_abort();
    let value: u64;
    // SAFETY: as in `read_u64`; a 32-bit load into w1 zero-extends into x1.
    unsafe {
        asm!(
            "ldr w1, [x0]",
            in("x0") address,
            inout("x1") NOT_READ => value,
            clobber_abi("C"),
            options(nostack),
        );
    }
    match exceptions::take_data_abort() {
        Some(abort) => Err(abort),
        None => Ok(value as u32),
    }
}

/// Writes the u32 `value` at `address` (4-byte aligned, identity-mapped) with exactly one
/// `str w`. The same rules as [`write_u64`].
pub fn write_u32(address: usize, value: u32) -> Result<(), Abort> {
    exceptions::expect_data_abort();
    // SAFETY: as in `write_u64`.
    unsafe {
        asm!(
            "str w1, [x0]",
            in("x0") address,
            in("x1") u64::from(value),
            clobber_abi("C"),
            options(nostack),
        );
    }
    match exceptions::take_data_abort() {
        Some(abort) => Err(abort),
        None => Ok(()),
    }
}

/// The offset of the first nonzero byte in `[address, address + len)` (8-byte aligned
/// address and length), or `None` if all are zero. The first word of every page is read
/// with [`read_u64`], so a page the host may not access gives `Err` instead of stopping
/// the image; the rest of a page that answered is read normally.
pub fn first_nonzero(address: usize, len: usize) -> Result<Option<usize>, Abort> {
    const PAGE: usize = 4096;
    let mut offset = 0;
    while offset < len {
        let page_end = ((address + offset) / PAGE + 1) * PAGE - address;
        let chunk_end = page_end.min(len);
        if read_u64(address + offset)? != 0 {
            return Ok(Some(offset));
        }
        let mut word = offset + 8;
        while word < chunk_end {
            let pointer = (address + word) as *const u64;
            // SAFETY: the first word of this page was just read without an abort, so the
            // page is host-accessible, identity-mapped Normal memory; the read is aligned
            // and volatile so that it really happens.
            if unsafe { pointer.read_volatile() } != 0 {
                return Ok(Some(word));
            }
            word += 8;
        }
        offset = chunk_end;
    }
    Ok(None)
}
