//! The guest conduit of docs/abi.md: `HVC #0` with x0..x7 in, x0..x3 out.

use core::arch::asm;
use hvc_abi::{FunctionId, GuestCall};

/// Makes one HVC with x0..x7 = `regs` and returns x0..x3, exactly as the payload left
/// them (tests compare them with the document).
pub fn call(regs: [u64; 8]) -> [u64; 4] {
    let [mut x0, mut x1, mut x2, mut x3, x4, x5, x6, x7] = regs;
    // SAFETY: HVC #0 enters the payload, which answers in x0..x3 and preserves the rest
    // (docs/abi.md 1.2), or exits to the host and resumes after the HVC. x4..x17 are also
    // declared clobbered, so a payload breaking that rule cannot corrupt the guest. (Not
    // clobber_abi("C"): that would make the compiler save FP registers, and the guest
    // must not execute FP/SIMD instructions, see main.rs.) No guest memory is passed by
    // address.
    unsafe {
        asm!(
            "hvc #0",
            inout("x0") x0,
            inout("x1") x1,
            inout("x2") x2,
            inout("x3") x3,
            inout("x4") x4 => _,
            inout("x5") x5 => _,
            inout("x6") x6 => _,
            inout("x7") x7 => _,
            out("x8") _,
            out("x9") _,
            out("x10") _,
            out("x11") _,
            out("x12") _,
            out("x13") _,
            out("x14") _,
            out("x15") _,
            out("x16") _,
            out("x17") _,
            options(nostack),
        );
    }
    [x0, x1, x2, x3]
}

/// Makes the guest call `guest_call` (encoded by `hvc_abi`).
pub fn guest_call(guest_call: GuestCall) -> [u64; 4] {
    call(guest_call.encode())
}

/// PSCI SYSTEM_OFF over HVC: the vCPU exits with SYSTEM_OFF and never runs again.
pub fn system_off() -> ! {
    let mut regs = [0; 8];
    regs[0] = FunctionId::PSCI_SYSTEM_OFF.to_x0();
    call(regs);
    // Only a broken payload returns here; keep the vCPU busy-waiting without touching
    // anything (it has no interrupts to wait for).
    loop {
        core::hint::spin_loop();
    }
}
