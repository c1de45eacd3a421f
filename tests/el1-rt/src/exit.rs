//! Ending a run: `<prefix>PASS` and PSCI SYSTEM_OFF (QEMU exits 0), `<prefix>FAIL: <reason>`
//! and a semihosting exit with status 1, or a semihosting exit with any status (QEMU runs
//! with `-semihosting`).

use crate::console;
use crate::mmu;
use crate::psci;
use core::arch::asm;
use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

/// Semihosting operation SYS_EXIT.
const SYS_EXIT: u32 = 0x18;
/// SYS_EXIT reason ADP_Stopped_ApplicationExit: the second word is the exit status.
const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x20026;

/// Set by the first CPU that fails: an exception taken while exiting (for example `hlt`
/// being undefined because QEMU runs without `-semihosting`) must not report again.
static EXITING: AtomicBool = AtomicBool::new(false);

/// Reports `<prefix>FAIL: <reason>` and stops QEMU with exit status 1.
///
/// Safe to call with the MMU off (the boot CPU before the MMU is on, a secondary CPU that
/// arrived at the wrong EL): then it uses no atomic read-modify-write and no lock, which
/// Device memory does not reliably support.
pub fn fail_with(reason: fmt::Arguments) -> ! {
    if mmu::is_on() {
        if EXITING.swap(true, Ordering::AcqRel) {
            park();
        }
        console::emergency_line(format_args!("FAIL: {reason}"));
    } else {
        if EXITING.load(Ordering::Acquire) {
            park();
        }
        EXITING.store(true, Ordering::Release);
        console::unlocked_line(format_args!("FAIL: {reason}"));
    }
    semihosting_exit(1)
}

/// Whether some CPU is already failing (the exception handler uses this to stay quiet).
pub fn exiting() -> bool {
    EXITING.load(Ordering::Acquire)
}

/// Reports `<prefix>PASS` and powers the machine off through PSCI SYSTEM_OFF.
pub fn pass() -> ! {
    console::line(format_args!("PASS"));
    let ret = psci::system_off();
    fail_with(format_args!("PSCI SYSTEM_OFF returned {ret}"))
}

/// Waits for events forever; used once there is nothing left for this CPU to do.
pub fn park() -> ! {
    loop {
        // SAFETY: `wfe` only waits; it touches no memory or registers.
        unsafe { asm!("wfe", options(nomem, nostack, preserves_flags)) };
    }
}

/// Stops QEMU with exit status `status` through semihosting SYS_EXIT. If QEMU runs
/// without `-semihosting`, `hlt` is undefined and this CPU parks in the exception handler.
pub fn semihosting_exit(status: u64) -> ! {
    EXITING.store(true, Ordering::Release);
    let block: [u64; 2] = [ADP_STOPPED_APPLICATION_EXIT, status];
    // SAFETY: the semihosting SYS_EXIT call reads the two-word block that x1 points to and
    // does not return; if semihosting is off, `hlt` is undefined and the exception handler
    // parks this CPU because EXITING is set.
    unsafe {
        asm!(
            "hlt #0xf000",
            inout("x0") u64::from(SYS_EXIT) => _,
            in("x1") block.as_ptr(),
            options(nostack),
        );
    }
    park()
}

/// Reports a failure (see [`fail_with`]) with `format!`-style arguments.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => {
        $crate::exit::fail_with(format_args!($($arg)*))
    };
}
