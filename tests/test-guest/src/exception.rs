//! Exceptions in the guest are bugs (of the guest or of the payload's guest entry): each
//! vector (entry.S) lands here, the exception is reported and the VM stopped.

use crate::commands::{self, Failure};
use crate::hvc;
use test_guest::EXCEPTION_CHECK;

/// Any exception: report `EXCEPTION_CHECK + vector` with ESR_EL1 and stop the VM.
#[unsafe(no_mangle)]
extern "C" fn guest_exception(vector: u64) -> ! {
    commands::report_failure(&Failure {
        check: EXCEPTION_CHECK + (vector as u16 & 0xF),
        value: esr_el1() as u32,
        what: "unexpected exception in the guest",
    });
    hvc::system_off()
}

fn esr_el1() -> u64 {
    let esr: u64;
    // SAFETY: reading ESR_EL1 at EL1 has no side effects.
    unsafe {
        core::arch::asm!("mrs {}, esr_el1", out(reg) esr, options(nomem, nostack, preserves_flags))
    };
    esr
}
