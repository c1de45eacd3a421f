//! A 32-bit read of a device register that may be refused (el1-rt's probes are 64-bit
//! loads, which a PL011 does not accept).

use core::arch::asm;
use el1_rt::exceptions::{self, Abort};

/// Left in the destination when the load is stepped over.
const NOT_READ: u32 = 0xdead_beef;

/// Reads the 32-bit register at `address` (4-byte aligned, mapped as Device memory by
/// el1-rt's identity map) with exactly one `ldr w`.
pub fn read_u32(address: usize) -> Result<u32, Abort> {
    exceptions::expect_data_abort();
    let value: u32;
    // SAFETY: `address` is a device register el1-rt maps (the console UART); reading its
    // flag register has no side effect. If stage 2 refuses the load, the armed handler
    // steps over it (ELR + 4). clobber_abi("C") because the handler is an ordinary call
    // that does not save the caller-saved registers.
    unsafe {
        asm!(
            "ldr w1, [x0]",
            in("x0") address,
            inout("w1") NOT_READ => value,
            clobber_abi("C"),
            options(nostack),
        );
    }
    match exceptions::take_data_abort() {
        Some(abort) => Err(abort),
        None => Ok(value),
    }
}
