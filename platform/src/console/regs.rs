//! How a console driver reaches its UART's registers: through [`UartRegs`], so that the
//! drivers' register sequences can be recorded and checked in host tests.

/// A UART's register block, addressed by byte offset from its base.
pub trait UartRegs {
    /// Reads the register at `offset`.
    fn read(&mut self, offset: usize) -> u32;
    /// Writes `value` to the register at `offset` (truncated to the access width).
    fn write(&mut self, offset: usize, value: u32);
}

/// Registers in MMIO, accessed `width` bytes wide (1, 2 or 4), as a DTB's `reg-io-width`
/// demands: some 16550s (Synopsys DesignWare) ignore or fault on byte accesses, others only
/// decode them.
pub struct MmioRegs {
    base: usize,
    width: u8,
}

impl MmioRegs {
    /// The register block at `base`, accessed `width` bytes wide. `None` if `width` is not 1,
    /// 2 or 4, or `base` is null or not aligned to it.
    ///
    /// # Safety
    ///
    /// `base` must be the address of a UART's register block, mapped as Device memory (or
    /// reachable with the MMU off) for as long as the `MmioRegs` lives, covering every offset
    /// the driver uses, and nothing else may access those registers meanwhile.
    pub unsafe fn new(base: usize, width: u8) -> Option<Self> {
        if !matches!(width, 1 | 2 | 4) || base == 0 || !base.is_multiple_of(usize::from(width)) {
            return None;
        }
        Some(Self { base, width })
    }
}

impl UartRegs for MmioRegs {
    fn read(&mut self, offset: usize) -> u32 {
        let addr = self.base + offset;
        // SAFETY: `new`'s contract: a register of this UART, exclusively ours, aligned to the
        // access width (drivers use offsets that are multiples of it).
        unsafe {
            match self.width {
                1 => u32::from(core::ptr::read_volatile(addr as *const u8)),
                2 => u32::from(core::ptr::read_volatile(addr as *const u16)),
                _ => core::ptr::read_volatile(addr as *const u32),
            }
        }
    }

    fn write(&mut self, offset: usize, value: u32) {
        let addr = self.base + offset;
        // SAFETY: as in `read`.
        unsafe {
            match self.width {
                1 => core::ptr::write_volatile(addr as *mut u8, value as u8),
                2 => core::ptr::write_volatile(addr as *mut u16, value as u16),
                _ => core::ptr::write_volatile(addr as *mut u32, value),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mmio_registers_are_accessed_exactly_as_wide_as_reg_io_width_says() {
        for (width, after) in [
            (1u8, [0x78, 0xff, 0xff, 0xff]),
            (2, [0x78, 0x56, 0xff, 0xff]),
            (4, [0x78, 0x56, 0x34, 0x12]),
        ] {
            let block: &'static mut [u32; 4] = Box::leak(Box::new([u32::MAX; 4]));
            let base = block.as_mut_ptr() as usize;
            // SAFETY: a leaked, aligned, 16-byte block used by nothing else.
            let mut regs = unsafe { MmioRegs::new(base, width) }.unwrap();
            regs.write(4, 0x1234_5678);
            assert_eq!(block[1].to_le_bytes(), after, "width {width}");
            assert_eq!(
                regs.read(4),
                u32::from_le_bytes(after) & (u32::MAX >> (32 - 8 * u32::from(width)))
            );
        }
    }

    #[test]
    fn bad_widths_and_misaligned_bases_are_refused() {
        // SAFETY: each call returns before any access.
        unsafe {
            assert!(MmioRegs::new(0x1000, 3).is_none());
            assert!(MmioRegs::new(0x1002, 4).is_none());
            assert!(MmioRegs::new(0, 1).is_none());
            assert!(MmioRegs::new(0x1001, 1).is_some());
        }
    }
}
