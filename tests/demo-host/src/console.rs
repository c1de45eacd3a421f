//! The console: the PL011 named by `/chosen/stdout-path`, one `demo: ` line at a time.
//!
//! Until the MMU is on, memory is Device memory and exclusive accesses (spin locks) are not
//! guaranteed to work, so lines are written without the lock; only the boot CPU runs then.
//! [`enable_locking`] is called once the MMU is on and before any secondary CPU starts.

use arm_pl011_uart::{PL011Registers, Uart, UniqueMmioPointer};
use core::fmt::{self, Write};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use spin::mutex::SpinMutex;

/// The PL011 of QEMU's `virt` board, used until the DTB has named the real one (and when
/// there is no DTB at all, so that the failure can still be reported).
pub const FALLBACK_UART: usize = 0x0900_0000;

static UART_BASE: AtomicUsize = AtomicUsize::new(FALLBACK_UART);
static LOCKING: AtomicBool = AtomicBool::new(false);
static LOCK: SpinMutex<()> = SpinMutex::new(());

/// How many times [`emergency_line`] tries the lock before writing without it.
const EMERGENCY_LOCK_TRIES: usize = 100_000;

/// Sets the console's PL011 base address. Called by the boot CPU before the MMU is on.
pub fn set_uart(base: usize) {
    UART_BASE.store(base, Ordering::Release);
}

/// From now on lines are written under a lock: the MMU is on, memory is Normal memory.
pub fn enable_locking() {
    LOCKING.store(true, Ordering::Release);
}

/// Writes `demo: <args>` and a newline as one unit.
pub fn line(args: fmt::Arguments) {
    if LOCKING.load(Ordering::Acquire) {
        let _guard = LOCK.lock();
        write_line(args);
    } else {
        // Only the boot CPU runs before locking is enabled (see the module comment).
        write_line(args);
    }
}

/// Like [`line`], for failure paths that may interrupt a CPU holding the lock: waits a
/// bounded time for the lock and then writes anyway (bytes may interleave, but the
/// failure is reported instead of deadlocking). Needs the MMU on.
pub fn emergency_line(args: fmt::Arguments) {
    if LOCKING.load(Ordering::Acquire) {
        for _ in 0..EMERGENCY_LOCK_TRIES {
            if let Some(_guard) = LOCK.try_lock() {
                write_line(args);
                return;
            }
            core::hint::spin_loop();
        }
    }
    write_line(args);
}

/// Writes a line without the lock, for a CPU running with the MMU off, where the lock's
/// exclusive accesses are not reliable. Bytes may interleave with other CPUs' lines.
pub fn unlocked_line(args: fmt::Arguments) {
    write_line(args);
}

fn write_line(args: fmt::Arguments) {
    let base = UART_BASE.load(Ordering::Acquire);
    let Some(regs) = NonNull::new(base as *mut PL011Registers) else {
        return;
    };
    // SAFETY: `base` is the PL011 named by the DTB (or QEMU virt's, before there is one),
    // identity-mapped as Device memory once the MMU is on. Writers are serialised by LOCK,
    // or run alone (boot CPU before locking). The exceptions, `emergency_line` after its
    // timeout and `unlocked_line` on a failing CPU, can only interleave bytes in the data
    // register: the driver reaches the registers with single MMIO accesses and no Rust
    // memory is shared through them.
    let mut uart = Uart::new(unsafe { UniqueMmioPointer::new(regs) });
    // The PL011 driver's `write_str` cannot fail.
    let _ = writeln!(uart, "demo: {args}");
}

/// Prints one console line, prefixed with `demo: `.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::console::line(format_args!($($arg)*))
    };
}
pub(crate) use say;
