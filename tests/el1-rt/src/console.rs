//! The console: the UART named by `/chosen/stdout-path`, one line at a time, each line
//! starting with the image's prefix (`demo: `, `abi-host: `), except the bare lines a test
//! runner prints. The UART is driven by the payload's own console drivers
//! (`platform::console`: PL011, Cadence, 16550 family), chosen by its `compatible`.
//!
//! Until the MMU is on, memory is Device memory and exclusive accesses (spin locks) are not
//! guaranteed to work, so lines are written without the lock; only the boot CPU runs then.
//! [`enable_locking`] is called once the MMU is on and before any secondary CPU starts.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicUsize, Ordering};
use platform::MemRange;
use platform::console::Console;
use platform::fdt_discovery::{ConsoleUart, UartKind};
use spin::mutex::SpinMutex;

/// The PL011 of QEMU's `virt` board, used until the DTB has named the real one (and when
/// there is no DTB at all, so that the failure can still be reported).
pub const FALLBACK_UART: usize = 0x0900_0000;

/// The console UART, as plain stores (set with the MMU off, where atomic
/// read-modify-write is unreliable): its base, its kind and, for a 16550, its register
/// shift and access width.
static UART_BASE: AtomicUsize = AtomicUsize::new(FALLBACK_UART);
static UART_KIND: AtomicU8 = AtomicU8::new(KIND_PL011);
static UART_SHIFT: AtomicU8 = AtomicU8::new(0);
static UART_WIDTH: AtomicU8 = AtomicU8::new(1);
const KIND_PL011: u8 = 0;
const KIND_CADENCE: u8 = 1;
const KIND_NS16550: u8 = 2;
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

/// Sets the console's UART. Called by the boot CPU before the MMU is on.
pub fn set_uart(uart: ConsoleUart) {
    let (kind, shift, width) = match uart.kind {
        UartKind::Pl011 => (KIND_PL011, 0, 1),
        UartKind::Cadence => (KIND_CADENCE, 0, 1),
        UartKind::Ns16550 {
            reg_shift,
            io_width,
        } => (KIND_NS16550, reg_shift, io_width),
    };
    UART_KIND.store(kind, Ordering::Relaxed);
    UART_SHIFT.store(shift, Ordering::Relaxed);
    UART_WIDTH.store(width, Ordering::Relaxed);
    // A base that does not fit the address space leaves the console silent (0).
    UART_BASE.store(
        usize::try_from(uart.regs.base).unwrap_or(0),
        Ordering::Release,
    );
}

/// The UART [`set_uart`] recorded.
fn uart() -> ConsoleUart {
    let base = UART_BASE.load(Ordering::Acquire);
    let kind = match UART_KIND.load(Ordering::Relaxed) {
        KIND_CADENCE => UartKind::Cadence,
        KIND_NS16550 => UartKind::Ns16550 {
            reg_shift: UART_SHIFT.load(Ordering::Relaxed),
            io_width: UART_WIDTH.load(Ordering::Relaxed),
        },
        _ => UartKind::Pl011,
    };
    ConsoleUart {
        kind,
        regs: MemRange {
            base: base as u64,
            size: 0x1000,
        },
    }
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
    // SAFETY: the UART is the one the DTB names (or QEMU virt's PL011, before there is a
    // DTB), identity-mapped as Device memory once the MMU is on (`Board::devices` holds
    // it). Writers are serialised by LOCK, or run alone (boot CPU before locking). The
    // exceptions, `emergency_line` after its timeout and `unlocked_line` on a failing CPU,
    // can only interleave bytes in the data register: the drivers reach the registers with
    // single MMIO accesses and no Rust memory is shared through them.
    let Some(mut console) = (unsafe { Console::for_uart(&uart()) }) else {
        return;
    };
    // The drivers' `write_str` cannot fail.
    let _ = writeln!(console, "{prefix}{args}");
}

/// Prints one console line, prefixed with the image's prefix.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::console::line(format_args!($($arg)*))
    };
}
