//! The Cadence UART (`cdns,uart-r1p12`, `xlnx,xuartps`: Zynq-7000 and Zynq UltraScale+, QEMU
//! `xlnx-zcu102`), transmit only.
//!
//! Hand-written: no maintained `no_std` crate drives it. Register map from the Zynq
//! UltraScale+ TRM (UG1085, UART registers) and Linux's `xilinx_uartps.c`.

use super::regs::UartRegs;

/// Control register.
const CR: usize = 0x00;
/// Channel status register.
const SR: usize = 0x2c;
/// Transmit and receive FIFO.
const FIFO: usize = 0x30;
/// CR.TXEN: transmitter enable.
const CR_TX_EN: u32 = 1 << 4;
/// CR.TXDIS: transmitter disable (wins over TXEN).
const CR_TX_DIS: u32 = 1 << 5;
/// SR.TXEMPTY: the transmit FIFO is empty.
const SR_TX_EMPTY: u32 = 1 << 3;
/// SR.TXFULL: the transmit FIFO is full.
const SR_TX_FULL: u32 = 1 << 4;

/// A Cadence UART used as a write-only console.
pub struct Cadence<R: UartRegs> {
    regs: R,
}

impl<R: UartRegs> Cadence<R> {
    /// Takes over the UART and makes sure its transmitter is on. The UART resets with the
    /// transmitter disabled (CR = 0x128 on QEMU and the TRM), and firmware that did not use
    /// it leaves it so; Linux's earlycon enables it the same way. Baud rate and framing are
    /// left as the loader set them.
    pub fn new(mut regs: R) -> Self {
        let cr = regs.read(CR);
        if cr & (CR_TX_EN | CR_TX_DIS) != CR_TX_EN {
            regs.write(CR, (cr & !CR_TX_DIS) | CR_TX_EN);
        }
        Self { regs }
    }

    /// Sends `byte` once the transmit FIFO has room.
    pub fn write_byte(&mut self, byte: u8) {
        while self.regs.read(SR) & SR_TX_FULL != 0 {
            core::hint::spin_loop();
        }
        self.regs.write(FIFO, u32::from(byte));
    }

    /// Waits until the transmit FIFO has drained.
    pub fn flush(&mut self) {
        while self.regs.read(SR) & SR_TX_EMPTY == 0 {
            core::hint::spin_loop();
        }
    }
}
