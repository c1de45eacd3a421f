//! The PL011 console: the first thing the payload sets up, before the MMU, the heap or any
//! other CPU. It writes straight to the UART registers, allocates nothing, and does not
//! reprogram the UART (the loader or QEMU already configured it; baud rate and clock are not
//! ours to change).

mod logger;

use core::fmt;
use core::ptr::NonNull;

use arm_pl011_uart::{PL011Registers, Uart, UniqueMmioPointer};

pub use logger::{AnotherLoggerInstalled, Logger, init, print};

/// A PL011 UART used as a write-only text console.
pub struct Console {
    uart: Uart<'static>,
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
            uart: Uart::new(regs),
        })
    }

    /// Waits until the transmit FIFO has drained, so that the last line is out before the
    /// machine is powered off.
    pub fn flush(&self) {
        while !self.uart.is_tx_fifo_empty() {
            core::hint::spin_loop();
        }
    }
}

impl fmt::Write for Console {
    /// Writes the bytes as they are (no newline translation), waiting for FIFO space.
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.uart.write_str(s)
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
