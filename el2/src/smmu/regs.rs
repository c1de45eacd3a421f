//! SMMUv3 registers (Arm IHI 0070, chapter 6): offsets, the fields EL2 uses, and 32/64-bit
//! volatile access to the register frame.

use core::ptr::{read_volatile, write_volatile};

pub const IDR0: usize = 0x00;
pub const IDR1: usize = 0x04;
pub const IDR5: usize = 0x14;
pub const CR0: usize = 0x20;
pub const CR0ACK: usize = 0x24;
pub const CR1: usize = 0x28;
pub const CR2: usize = 0x2c;
pub const GBPA: usize = 0x44;
pub const GERROR: usize = 0x60;
pub const GERRORN: usize = 0x64;
pub const STRTAB_BASE: usize = 0x80;
pub const STRTAB_BASE_CFG: usize = 0x88;
pub const CMDQ_BASE: usize = 0x90;
pub const CMDQ_PROD: usize = 0x98;
pub const CMDQ_CONS: usize = 0x9c;
pub const EVENTQ_BASE: usize = 0xa0;
/// The event queue's index registers live in page 1 (offset 0x10000).
pub const EVENTQ_PROD: usize = 0x1_00a8;
pub const EVENTQ_CONS: usize = 0x1_00ac;

pub const CR0_SMMUEN: u32 = 1 << 0;
pub const CR0_EVENTQEN: u32 = 1 << 2;
pub const CR0_CMDQEN: u32 = 1 << 3;
/// CR1: queues and tables inner-shareable (0b11), inner and outer write-back (0b01).
pub const CR1_WB_ISH: u32 =
    0b01 | (0b01 << 2) | (0b11 << 4) | (0b01 << 6) | (0b01 << 8) | (0b11 << 10);
/// CR2: record C_BAD_STREAMID events (RECINVSID), private TLB maintenance (PTM: broadcast
/// TLBIs from the CPUs, the host's included, do not touch the SMMU's TLB).
pub const CR2_RECINVSID_PTM: u32 = (1 << 1) | (1 << 2);
pub const GBPA_ABORT: u32 = 1 << 20;
pub const GBPA_UPDATE: u32 = 1 << 31;
pub const GERROR_CMDQ_ERR: u32 = 1 << 0;
/// Queue base registers: read/write-allocate hint (bit 62), address bits [51:5].
pub const QUEUE_BASE_ALLOCATE: u64 = 1 << 62;
pub const ADDR_MASK_51_5: u64 = ((1 << 52) - 1) & !0x1f;
/// Overflow flag of EVENTQ_PROD and its acknowledgement in EVENTQ_CONS.
pub const QUEUE_OVERFLOW: u32 = 1 << 31;

/// The register frame (page 0 and page 1), mapped as device memory at EL2 only.
#[derive(Clone, Copy, Debug)]
pub struct Regs {
    base: usize,
}

impl Regs {
    /// # Safety
    ///
    /// `base` is an SMMUv3 register frame of 128 KiB, identity-mapped as device memory at
    /// EL2, that nothing else drives (it is in no host stage-2 and not in the host's DTB).
    pub const unsafe fn new(base: usize) -> Self {
        Self { base }
    }

    pub fn read32(&self, offset: usize) -> u32 {
        // SAFETY: `new`'s contract; every offset used is a register of the frame.
        unsafe { read_volatile((self.base + offset) as *const u32) }
    }

    pub fn write32(&self, offset: usize, value: u32) {
        // SAFETY: as in `read32`.
        unsafe { write_volatile((self.base + offset) as *mut u32, value) }
    }

    pub fn write64(&self, offset: usize, value: u64) {
        // SAFETY: as in `read32`; the 64-bit registers (bases) take 64-bit accesses.
        unsafe { write_volatile((self.base + offset) as *mut u64, value) }
    }
}

/// What IDR0, IDR1 and IDR5 say, as far as EL2 cares (which stage and table format it uses
/// is `stage2::smmuv3::mode::choose`, from the raw IDR0 and IDR5).
#[derive(Clone, Copy, Debug)]
pub struct Features {
    pub stage1: bool,
    pub stage2: bool,
    pub two_level_streams: bool,
    pub sid_bits: u32,
    pub cmdq_log2: u32,
    pub eventq_log2: u32,
    /// IDR5.OAS, the output-size encoding (PARange's).
    pub oas: u64,
    pub idr0: u32,
    pub idr5: u32,
}

impl Features {
    pub fn read(regs: &Regs) -> Self {
        let idr0 = regs.read32(IDR0);
        let idr1 = regs.read32(IDR1);
        let idr5 = regs.read32(IDR5);
        Self {
            stage1: idr0 & (1 << 1) != 0,
            stage2: idr0 & 1 != 0,
            two_level_streams: (idr0 >> 27) & 3 == 1,
            sid_bits: idr1 & 0x3f,
            cmdq_log2: (idr1 >> 21) & 0x1f,
            eventq_log2: (idr1 >> 16) & 0x1f,
            oas: u64::from(idr5 & 7),
            idr0,
            idr5,
        }
    }

    /// Output address bits for an IDR5.OAS encoding.
    pub fn oas_bits(&self) -> u32 {
        [32, 36, 40, 42, 44, 48, 52, 52][self.oas as usize]
    }
}
