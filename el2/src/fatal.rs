//! The end of the line: unexpected exceptions at EL2, panics, and boot-time refusals all
//! come here, print what is known and stop every CPU.
//!
//! Halting "every CPU": the CPU that fails sets `HALTING` and stops; every other CPU stops
//! at its next entry to EL2 (`traps::handle_lower_sync` checks the flag first). EL2 has no
//! interrupt of its own to pull a CPU out of the host sooner (the host owns the GIC), so a
//! CPU spinning in the host without trapping keeps running host code, which is harmless:
//! it can no longer reach EL2 state.

use aarch64_cpu::registers::{ELR_EL2, ESR_EL2, FAR_EL2, Readable, SPSR_EL2};
use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

/// Per-CPU emergency stacks for the fatal vectors, indexed by MPIDR.Aff0 modulo the slot
/// count (see `asm/vectors.S`): a stack overflow into a guard page must still be reported.
pub const EMERGENCY_SLOTS: usize = 8;
pub const EMERGENCY_STACK_SHIFT: usize = 12;
pub const EMERGENCY_STACK_SIZE: usize = 1 << EMERGENCY_STACK_SHIFT;

#[repr(C, align(16))]
pub struct EmergencyStacks([[u8; EMERGENCY_STACK_SIZE]; EMERGENCY_SLOTS]);

#[unsafe(no_mangle)]
pub static mut EMERGENCY_STACKS: EmergencyStacks =
    EmergencyStacks([[0; EMERGENCY_STACK_SIZE]; EMERGENCY_SLOTS]);

static HALTING: AtomicBool = AtomicBool::new(false);

/// Whether some CPU has hit a fatal error; every CPU that sees this stops.
pub fn halting() -> bool {
    HALTING.load(Ordering::Acquire)
}

/// Makes every other CPU stop at its next entry to EL2 from the host, as after a fatal
/// error, without stopping this one (`system_reset` takes the system down this way).
pub fn stop_other_cpus() {
    HALTING.store(true, Ordering::SeqCst);
}

/// Prints `[el2] FATAL: <reason>` and stops this CPU for good; others stop at their next
/// entry to EL2.
pub fn halt_system(reason: fmt::Arguments) -> ! {
    HALTING.store(true, Ordering::Release);
    log::error!("FATAL: {reason}");
    park_this_cpu()
}

/// Stops this CPU without touching anything else.
pub fn park_this_cpu() -> ! {
    loop {
        aarch64_cpu::asm::wfe();
    }
}

/// The registers of the context that took a fatal exception (`asm/vectors.S`).
#[repr(C)]
pub struct FatalFrame {
    x: [u64; 31],
}

const VECTOR_NAMES: [&str; 16] = [
    "synchronous exception at EL2 (SP_EL0)",
    "IRQ at EL2 (SP_EL0)",
    "FIQ at EL2 (SP_EL0)",
    "SError at EL2 (SP_EL0)",
    "synchronous exception at EL2",
    "IRQ at EL2",
    "FIQ at EL2",
    "SError at EL2",
    "synchronous exception from a lower EL",
    "IRQ from a lower EL",
    "FIQ from a lower EL",
    "SError from a lower EL",
    "synchronous exception from AArch32",
    "IRQ from AArch32",
    "FIQ from AArch32",
    "SError from AArch32",
];

/// Names of the exception classes (ESR_ELx.EC) the payload can plausibly meet.
pub fn exception_class_name(ec: u64) -> &'static str {
    match ec {
        0x00 => "unknown reason",
        0x01 => "WFI/WFE",
        0x07 => "FP/SIMD access trapped",
        0x0e => "illegal execution state",
        0x15 => "SVC (AArch64)",
        0x16 => "HVC (AArch64)",
        0x17 => "SMC (AArch64)",
        0x18 => "MSR/MRS/system instruction trapped",
        0x19 => "SVE access trapped",
        0x20 => "instruction abort from a lower EL",
        0x21 => "instruction abort at the same EL",
        0x22 => "PC alignment fault",
        0x24 => "data abort from a lower EL",
        0x25 => "data abort at the same EL",
        0x26 => "SP alignment fault",
        0x2f => "SError",
        0x3c => "BRK",
        _ => "other",
    }
}

#[unsafe(no_mangle)]
extern "C" fn handle_fatal_exception(kind: u64, frame: &FatalFrame) -> ! {
    let esr = ESR_EL2.get();
    let ec = (esr >> 26) & 0x3f;
    let name = VECTOR_NAMES.get(kind as usize).copied().unwrap_or("?");
    halt_system(format_args!(
        "{name}: ESR_EL2={esr:#x} (EC {ec:#x}: {}), FAR_EL2={:#x}, ELR_EL2={:#x}, SPSR_EL2={:#x}, x30={:#x}",
        exception_class_name(ec),
        FAR_EL2.get(),
        ELR_EL2.get(),
        SPSR_EL2.get(),
        frame.x[30],
    ))
}
