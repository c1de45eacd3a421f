//! The console: the PL011 named by `/chosen/stdout-path`, one line at a time, each line
//! starting with the image's prefix (`demo: `, `abi-host: `), except the bare lines a test
//! runner prints.
//!
//! Until the MMU is on, memory is Device memory and exclusive accesses (spin locks) are not
//! guaranteed to work, so lines are written without the lock; only the boot CPU runs then.
//! [`enable_locking`] is called once the MMU is on and before any secondary CPU starts.

use arm_pl011_uart::{PL011Registers, Uart, UniqueMmioPointer};
use core::fmt::{self, Write};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use spin::mutex::SpinMutex;

/// The PL011 of QEMU's `virt` board, used until the DTB has named the real one (and when
/// there is no DTB at all, so that the failure can still be reported).
pub const FALLBACK_UART: usize = 0x0900_0000;

static UART_BASE: AtomicUsize = AtomicUsize::new(FALLBACK_UART);
static LOCKING: AtomicBool = AtomicBool::new(false);
static LOCK: SpinMutex<()> = SpinMutex::new(());
/// The prefix, as the pointer and length of a `&'static str` (two plain stores: this is
/// set with the MMU off, where atomic read-modify-write is unreliable).
static PREFIX_PTR: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());
static PREFIX_LEN: AtomicUsize = AtomicUsize::new(0);

/// How many times [`emergency_line`] tries the lock before writing without it.
const EMERGENCY_LOCK_TRIES: usize = 100_000;

/// Sets the text that starts every prefixed line. Called once by the boot CPU, first.
pub fn set_prefix(prefix: &'static str) {
    PREFIX_LEN.store(prefix.len(), Ordering::Relaxed);
    PREFIX_PTR.store(prefix.as_ptr().cast_mut(), Ordering::Release);
}

fn prefix() -> &'static str {
    let ptr = PREFIX_PTR.load(Ordering::Acquire);
    if ptr.is_null() {
        return "";
    }
    let len = PREFIX_LEN.load(Ordering::Relaxed);
    // SAFETY: `set_prefix` stored the pointer and length of a `&'static str`, the length
    // first; it runs once on the boot CPU before any other CPU or any reader exists.
    let bytes = unsafe { core::slice::from_raw_parts(ptr, len) };
    core::str::from_utf8(bytes).unwrap_or("")
}

/// Sets the console's PL011 base address. Called by the boot CPU before the MMU is on.
pub fn set_uart(base: usize) {
    UART_BASE.store(base, Ordering::Release);
}

/// From now on lines are written under a lock: the MMU is on, memory is Normal memory.
pub fn enable_locking() {
    LOCKING.store(true, Ordering::Release);
}

/// Writes `<prefix><args>` and a newline as one unit.
pub fn line(args: fmt::Arguments) {
    locked(|| write_line(prefix(), args));
}

/// Writes `<args>` and a newline as one unit, without the prefix (test-runner lines).
pub fn bare_line(args: fmt::Arguments) {
    locked(|| write_line("", args));
}

fn locked(write: impl FnOnce()) {
    if LOCKING.load(Ordering::Acquire) {
        let _guard = LOCK.lock();
        write();
    } else {
        // Only the boot CPU runs before locking is enabled (see the module comment).
        write();
    }
}

/// Like [`line`], for failure paths that may interrupt a CPU holding the lock: waits a
/// bounded time for the lock and then writes anyway (bytes may interleave, but the
/// failure is reported instead of deadlocking). Needs the MMU on.
pub fn emergency_line(args: fmt::Arguments) {
    if LOCKING.load(Ordering::Acquire) {
        for _ in 0..EMERGENCY_LOCK_TRIES {
            if let Some(_guard) = LOCK.try_lock() {
                write_line(prefix(), args);
                return;
            }
            core::hint::spin_loop();
        }
    }
    write_line(prefix(), args);
}

/// Writes a line without the lock, for a CPU running with the MMU off, where the lock's
/// exclusive accesses are not reliable. Bytes may interleave with other CPUs' lines.
pub fn unlocked_line(args: fmt::Arguments) {
    write_line(prefix(), args);
}

fn write_line(prefix: &str, args: fmt::Arguments) {
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
    let _ = writeln!(uart, "{prefix}{args}");
}

/// Prints one console line, prefixed with the image's prefix.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::console::line(format_args!($($arg)*))
    };
}
