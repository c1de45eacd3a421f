//! QEMU's `edu` PCI device (`hw/misc/edu.c`, `docs/specs/edu.rst`) as a DMA engine the host
//! controls: found through the host bridge's ECAM, BAR0 placed in the 32-bit window, memory
//! decoding and bus mastering on.
//!
//! BAR0 registers (64-bit accesses): 0x80 source, 0x88 destination, 0x90 count, 0x98 command
//! (bit 0 start, bit 1 direction: 0 = RAM -> device, 1 = device -> RAM). The device's buffer
//! is 4 KiB at device address 0x40000 (this host uses its first half, see [`TRANSFER`]). A transfer runs on a QEMU timer about 100 ms after the
//! command; the start bit clears when it has run. QEMU must be given
//! `-device edu,dma_mask=0xffffffffffff`: the default 28-bit mask makes QEMU clamp (and on
//! some versions abort on) addresses of this machine's RAM.

use core::ptr::{read_volatile, write_volatile};
use el1_rt::board::PciHost;
use el1_rt::timeout::wait_until;

const VENDOR_QEMU: u16 = 0x1234;
const DEVICE_EDU: u16 = 0x11e8;
/// The device's buffer in its own address space.
pub const BUFFER: u64 = 0x4_0000;
/// Bytes one transfer moves here: half the 4 KiB buffer, because QEMU 7.2's range check is
/// off by one (a transfer ending at the buffer's last byte is a fatal "hardware error").
pub const TRANSFER: usize = 2048;
const REG_SRC: usize = 0x80;
const REG_DST: usize = 0x88;
const REG_COUNT: usize = 0x90;
const REG_CMD: usize = 0x98;
const CMD_START: u64 = 1 << 0;
const CMD_TO_RAM: u64 = 1 << 1;
/// PCI configuration space offsets (PCI Local Bus 3.0, type 0 header).
const CFG_COMMAND: usize = 0x04;
const CFG_BAR0: usize = 0x10;
const COMMAND_MEMORY: u16 = 1 << 1;
const COMMAND_BUS_MASTER: u16 = 1 << 2;
/// Virtual-clock time a transfer may take before the test gives up.
const TRANSFER_MS: u64 = 3000;

pub struct Edu {
    bar0: usize,
    /// Requester ID = the stream ID the SMMU sees (bus 0).
    pub requester_id: u16,
}

fn cfg_read32(cfg: usize, offset: usize) -> u32 {
    // SAFETY: `cfg` is a function's 4 KiB ECAM window, mapped as device memory by el1-rt
    // (the host bridge's `reg` is in the board's device list); config reads have no side
    // effects.
    unsafe { read_volatile((cfg + offset) as *const u32) }
}

fn cfg_write32(cfg: usize, offset: usize, value: u32) {
    // SAFETY: as above; only the edu function's command register and BAR0 are written.
    unsafe { write_volatile((cfg + offset) as *mut u32, value) }
}

impl Edu {
    /// Finds the first edu function on bus 0 and makes it a bus master with BAR0 at the
    /// start of the 32-bit window.
    pub fn find(pci: &PciHost) -> Option<Edu> {
        (0..32usize).find_map(|device| {
            let cfg = pci.ecam.base + (device << 15);
            let id = cfg_read32(cfg, 0);
            if id as u16 != VENDOR_QEMU || (id >> 16) as u16 != DEVICE_EDU {
                return None;
            }
            let bar0 = pci.mem32.base;
            cfg_write32(cfg, CFG_BAR0, bar0 as u32);
            let command = cfg_read32(cfg, CFG_COMMAND) as u16 | COMMAND_MEMORY | COMMAND_BUS_MASTER;
            cfg_write32(cfg, CFG_COMMAND, u32::from(command));
            Some(Edu {
                bar0,
                requester_id: (device << 3) as u16,
            })
        })
    }

    fn write(&self, reg: usize, value: u64) {
        // SAFETY: BAR0 was placed in the host bridge's window, mapped as device memory.
        unsafe { write_volatile((self.bar0 + reg) as *mut u64, value) }
    }

    fn read(&self, reg: usize) -> u64 {
        // SAFETY: as in `write`; register reads have no side effects.
        unsafe { read_volatile((self.bar0 + reg) as *const u64) }
    }

    fn transfer(&self, src: u64, dst: u64, count: usize, cmd: u64) -> Result<(), &'static str> {
        if count == 0 || count > TRANSFER {
            return Err("a transfer is 1..=2048 bytes");
        }
        self.write(REG_SRC, src);
        self.write(REG_DST, dst);
        self.write(REG_COUNT, count as u64);
        self.write(REG_CMD, cmd | CMD_START);
        if wait_until(TRANSFER_MS, || self.read(REG_CMD) & CMD_START == 0) {
            Ok(())
        } else {
            Err("the edu DMA did not complete within 3 s")
        }
    }

    /// The device reads `count` bytes of RAM at `pa` into its buffer. A read the IOMMU
    /// refuses leaves zeros (QEMU's unassigned memory) in the buffer.
    pub fn read_ram(&self, pa: usize, count: usize) -> Result<(), &'static str> {
        el1_rt::cache::clean_to_poc(pa, count);
        self.transfer(pa as u64, BUFFER, count, 0)
    }

    /// The device writes `count` bytes of its buffer to RAM at `pa`.
    pub fn write_ram(&self, pa: usize, count: usize) -> Result<(), &'static str> {
        self.transfer(BUFFER, pa as u64, count, CMD_TO_RAM)
    }
}
