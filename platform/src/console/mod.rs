//! The console: the first thing the payload sets up, before the MMU, the heap or any other
//! CPU. It is the UART `/chosen/stdout-path` names, driven by `compatible` (PL011, Cadence,
//! 16550 family; see [`UartKind`]). It writes straight to the UART registers, allocates
//! nothing, and does not reprogram the UART beyond enabling a disabled transmitter (the
//! loader or QEMU already configured it; baud rate and clock are not ours to change).

mod cadence;
mod logger;
mod ns16550;
mod regs;

use core::fmt;
use core::ptr::NonNull;

use arm_pl011_uart::{PL011Registers, Uart, UniqueMmioPointer};

use crate::fdt_discovery::{ConsoleUart, UartKind};
pub use cadence::Cadence;
pub use logger::{AnotherLoggerInstalled, Logger, init, print};
pub use ns16550::Ns16550;
pub use regs::{MmioRegs, UartRegs};

/// A console UART other than the PL011 (which the `arm-pl011-uart` crate drives), over any
/// register access: [`MmioRegs`] on the machine, a recorder in tests.
pub enum UartDriver<R: UartRegs> {
    Cadence(Cadence<R>),
    Ns16550(Ns16550<R>),
}

impl<R: UartRegs> UartDriver<R> {
    /// The driver `kind` needs, over `regs`; `None` for [`UartKind::Pl011`].
    pub fn for_kind(kind: UartKind, regs: R) -> Option<Self> {
        match kind {
            UartKind::Pl011 => None,
            UartKind::Cadence => Some(Self::Cadence(Cadence::new(regs))),
            UartKind::Ns16550 { reg_shift, .. } => {
                Some(Self::Ns16550(Ns16550::new(regs, reg_shift)))
            }
        }
    }

    /// Sends `s` byte by byte, as it is (no newline translation).
    pub fn write_bytes(&mut self, s: &[u8]) {
        for &b in s {
            match self {
                Self::Cadence(u) => u.write_byte(b),
                Self::Ns16550(u) => u.write_byte(b),
            }
        }
    }

    /// Waits until everything sent has left the UART.
    pub fn flush(&mut self) {
        match self {
            Self::Cadence(u) => u.flush(),
            Self::Ns16550(u) => u.flush(),
        }
    }
}

enum Driver {
    Pl011(Uart<'static>),
    Other(UartDriver<MmioRegs>),
}

/// A UART used as a write-only text console.
pub struct Console {
    driver: Driver,
}

impl Console {
    /// Takes over the PL011 whose register block starts at `base`. `None` if `base` is null or
    /// not 4-byte aligned.
    ///
    /// # Safety
    ///
    /// `base` must be the address of a PL011's 4 KiB register block that stays accessible as
    /// Device memory (identity-mapped, or reachable with the MMU off) for the rest of the
    /// program, and nothing else may access those registers while this `Console` exists: no
    /// second `Console` for the same `base`, and no other code writing the UART directly.
    pub unsafe fn new(base: usize) -> Option<Self> {
        if !base.is_multiple_of(core::mem::align_of::<PL011Registers>()) {
            return None;
        }
        let regs = NonNull::new(base as *mut PL011Registers)?;
        // SAFETY: the caller guarantees `regs` is a PL011 register block, valid as Device
        // memory for 'static and accessed by nothing else; alignment and non-null were checked.
        let regs = unsafe { UniqueMmioPointer::new(regs) };
        Some(Self {
            driver: Driver::Pl011(Uart::new(regs)),
        })
    }

    /// Takes over the console UART discovery found, with the driver its `compatible` names.
    /// `None` if its address is null or misaligned for its access width.
    ///
    /// # Safety
    ///
    /// As for [`new`](Self::new), for the register block at `uart.regs`.
    pub unsafe fn for_uart(uart: &ConsoleUart) -> Option<Self> {
        let base = usize::try_from(uart.regs.base).ok()?;
        let width = match uart.kind {
            // SAFETY: our caller's promise, for a PL011.
            UartKind::Pl011 => return unsafe { Self::new(base) },
            // The Cadence UART's registers are 32 bits wide.
            UartKind::Cadence => 4,
            UartKind::Ns16550 { io_width, .. } => io_width,
        };
        // SAFETY: our caller's promise: the UART's registers, ours alone, Device memory.
        let regs = unsafe { MmioRegs::new(base, width) }?;
        Some(Self {
            driver: Driver::Other(UartDriver::for_kind(uart.kind, regs)?),
        })
    }

    /// Waits until the transmit FIFO has drained, so that the last line is out before the
    /// machine is powered off.
    pub fn flush(&mut self) {
        match &mut self.driver {
            Driver::Pl011(uart) => {
                while !uart.is_tx_fifo_empty() {
                    core::hint::spin_loop();
                }
            }
            Driver::Other(uart) => uart.flush(),
        }
    }
}

impl fmt::Write for Console {
    /// Writes the bytes as they are (no newline translation), waiting for FIFO space.
    fn write_str(&mut self, s: &str) -> fmt::Result {
        match &mut self.driver {
            Driver::Pl011(uart) => uart.write_str(s),
            Driver::Other(uart) => {
                uart.write_bytes(s.as_bytes());
                Ok(())
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! A register block in ordinary memory standing in for a PL011 in host tests.

    /// Offset of UARTDR in the register block.
    pub const DATA_REGISTER: usize = 0;
    /// Offset of UARTFR in the register block.
    pub const FLAG_REGISTER: usize = 0x18;
    /// UARTFR.TXFE: transmit FIFO empty.
    pub const TXFE: u32 = 1 << 7;

    /// Leaks a zeroed 4 KiB, 4-byte-aligned block (flags: TX FIFO not full) and returns its
    /// address, valid for the rest of the test process.
    pub fn leak_registers() -> &'static mut [u32; 1024] {
        Box::leak(Box::new([0u32; 1024]))
    }
}

#[cfg(test)]
mod tests {
    use super::fake::*;
    use super::*;
    use core::fmt::Write;

    #[test]
    fn console_rejects_null_and_misaligned_bases() {
        // SAFETY: both calls return before creating any pointer (null, misaligned).
        assert!(unsafe { Console::new(0) }.is_none());
        // SAFETY: as above.
        assert!(unsafe { Console::new(0x9000002) }.is_none());
    }

    #[test]
    fn console_writes_each_byte_to_the_data_register() {
        let regs = leak_registers();
        regs[FLAG_REGISTER / 4] = TXFE;
        let base = regs.as_mut_ptr() as usize;
        // SAFETY: `base` is a leaked, 4 KiB, aligned block used by nothing else; reads and
        // writes to it behave like a PL011 whose TX FIFO never fills.
        let mut console = unsafe { Console::new(base) }.unwrap();
        console.write_str("ok").unwrap();
        console.flush();
        // SAFETY: the block is still alive (leaked); volatile read of the register the UART
        // driver wrote last.
        let last = unsafe { core::ptr::read_volatile((base + DATA_REGISTER) as *const u32) };
        assert_eq!(last, u32::from(b'k'));
    }
}
