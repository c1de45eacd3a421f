//! The 16550 family (`ns16550a`, `snps,dw-apb-uart`: most Rockchip, Allwinner, TI and NVIDIA
//! boards), transmit only, with the DTB's `reg-shift` (register stride) and `reg-io-width`
//! (access width, in [`MmioRegs`](super::regs::MmioRegs)).
//!
//! Hand-written: the `uart_16550` crate has no register shift (DesignWare UARTs put
//! registers 4 bytes apart) and no choice of access width. Register map from the TI
//! PC16550D data sheet; the loader has programmed the baud rate and framing (LCR.DLAB = 0,
//! so offset 0 is the transmit holding register).

use super::regs::UartRegs;

/// Transmit holding register (register 0, DLAB = 0).
const THR: usize = 0;
/// Line status register (register 5).
const LSR: usize = 5;
/// LSR.THRE: the transmit holding register (or FIFO) can take a byte.
const LSR_THRE: u32 = 1 << 5;
/// LSR.TEMT: transmitter empty (holding register and shift register).
const LSR_TEMT: u32 = 1 << 6;

/// A 16550-compatible UART used as a write-only console.
pub struct Ns16550<R: UartRegs> {
    regs: R,
    reg_shift: u8,
}

impl<R: UartRegs> Ns16550<R> {
    /// Takes over the UART; register `n` is at byte offset `n << reg_shift`. Writes nothing.
    pub fn new(regs: R, reg_shift: u8) -> Self {
        Self { regs, reg_shift }
    }

    fn offset(&self, register: usize) -> usize {
        register << self.reg_shift
    }

    /// Sends `byte` once the transmit holding register is empty.
    pub fn write_byte(&mut self, byte: u8) {
        let lsr = self.offset(LSR);
        while self.regs.read(lsr) & LSR_THRE == 0 {
            core::hint::spin_loop();
        }
        let thr = self.offset(THR);
        self.regs.write(thr, u32::from(byte));
    }

    /// Waits until the transmitter is empty.
    pub fn flush(&mut self) {
        let lsr = self.offset(LSR);
        while self.regs.read(lsr) & LSR_TEMT == 0 {
            core::hint::spin_loop();
        }
    }
}
