//! The raw host conduit of docs/abi.md: `HVC #0` with x0..x7 in, x0..x3 out.

use core::arch::asm;
use hvc_abi::{HostCall, Return};

/// Makes one HVC with x0..x7 = `regs` and returns x0..x3. Registers are passed exactly as
/// given, so tests can send malformed calls (MBZ registers set, unknown ids).
pub fn call(regs: [u64; 8]) -> Return {
    let [mut x0, mut x1, mut x2, mut x3, x4, x5, x6, x7] = regs;
    // SAFETY: HVC #0 enters the payload, which returns to the next instruction with results
    // in x0..x3 and (per docs/abi.md 1.2) everything else preserved. clobber_abi("C")
    // additionally treats x4..x17 and the FP/SIMD caller-saved registers as clobbered, so
    // a payload that broke that rule could not corrupt this image's state. No memory of
    // this image is passed by address.
    unsafe {
        asm!(
            "hvc #0",
            inout("x0") x0,
            inout("x1") x1,
            inout("x2") x2,
            inout("x3") x3,
            in("x4") x4,
            in("x5") x5,
            in("x6") x6,
            in("x7") x7,
            clobber_abi("C"),
            options(nostack),
        );
    }
    Return::from_regs([x0, x1, x2, x3])
}

/// Makes the host call `host_call` (encoded by `hvc_abi`).
pub fn host_call(host_call: HostCall) -> Return {
    call(host_call.encode())
}
