//! Why VCPU_RUN returned: the exit, encoded in x1..x3 of a successful VCPU_RUN.
//!
//! x1 bits [7:0] hold the reason; only MMIO uses x1 bits above it. Every bit this encoding
//! does not define is zero, and `Exit::decode` rejects an exit where one is set.

use crate::Error;
use crate::limits::{
    MAX_IPA_BITS, MAX_VCPUS, check_ipa, check_ipa_range, check_nr_limit, check_nr_nonzero,
    check_page_aligned,
};

/// x1 bits [7:0] of a successful VCPU_RUN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ExitReason {
    /// A physical interrupt arrived while the guest ran.
    Irq = 1,
    /// A data access with a valid syndrome to an IPA with no page.
    Mmio = 2,
    /// A guest HVC the payload does not answer.
    GuestHvc = 3,
    /// The guest shared pages with the host (MEM_SHARE succeeded).
    MemShared = 4,
    /// The guest ended a share (MEM_UNSHARE succeeded).
    MemUnshared = 5,
    /// The guest gave pages back (MEM_RELINQUISH succeeded).
    MemRelinquished = 6,
    /// Any other stage-2 fault on an IPA with no page.
    MemFault = 7,
    /// The guest called PSCI SYSTEM_OFF.
    SystemOff = 8,
    /// The guest called PSCI SYSTEM_RESET.
    SystemReset = 9,
    /// The guest started another of its vCPUs with PSCI CPU_ON.
    VcpuStarted = 10,
    /// The vCPU is powered off (never started by the guest, or its PSCI CPU_OFF).
    VcpuOff = 11,
}

impl ExitReason {
    /// Every reason, in value order.
    pub const ALL: [ExitReason; 11] = [
        ExitReason::Irq,
        ExitReason::Mmio,
        ExitReason::GuestHvc,
        ExitReason::MemShared,
        ExitReason::MemUnshared,
        ExitReason::MemRelinquished,
        ExitReason::MemFault,
        ExitReason::SystemOff,
        ExitReason::SystemReset,
        ExitReason::VcpuStarted,
        ExitReason::VcpuOff,
    ];

    /// The reason with value `v`, if there is one.
    pub const fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Irq,
            2 => Self::Mmio,
            3 => Self::GuestHvc,
            4 => Self::MemShared,
            5 => Self::MemUnshared,
            6 => Self::MemRelinquished,
            7 => Self::MemFault,
            8 => Self::SystemOff,
            9 => Self::SystemReset,
            10 => Self::VcpuStarted,
            11 => Self::VcpuOff,
            _ => return None,
        })
    }

    /// The name `docs/abi.md` uses.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Irq => "IRQ",
            Self::Mmio => "MMIO",
            Self::GuestHvc => "GUEST_HVC",
            Self::MemShared => "MEM_SHARED",
            Self::MemUnshared => "MEM_UNSHARED",
            Self::MemRelinquished => "MEM_RELINQUISHED",
            Self::MemFault => "MEM_FAULT",
            Self::SystemOff => "SYSTEM_OFF",
            Self::SystemReset => "SYSTEM_RESET",
            Self::VcpuStarted => "VCPU_STARTED",
            Self::VcpuOff => "VCPU_OFF",
        }
    }
}

/// The size of an MMIO access, x1 bits [9:8] = log2 of the byte count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum AccessSize {
    /// 1 byte.
    B1 = 0,
    /// 2 bytes.
    B2 = 1,
    /// 4 bytes.
    B4 = 2,
    /// 8 bytes.
    B8 = 3,
}

impl AccessSize {
    /// Every size.
    pub const ALL: [AccessSize; 4] = [Self::B1, Self::B2, Self::B4, Self::B8];

    /// The size from its log2.
    pub const fn from_log2(log2: u8) -> Option<Self> {
        Some(match log2 {
            0 => Self::B1,
            1 => Self::B2,
            2 => Self::B4,
            3 => Self::B8,
            _ => return None,
        })
    }

    /// log2 of the byte count.
    pub const fn log2(self) -> u8 {
        self as u8
    }

    /// The byte count: 1, 2, 4 or 8.
    pub const fn bytes(self) -> u64 {
        1 << self.log2()
    }

    /// The bits of a 64-bit value the access carries.
    pub const fn mask(self) -> u64 {
        match self {
            Self::B8 => u64::MAX,
            _ => (1 << (8 * self.bytes())) - 1,
        }
    }
}

/// The direction of an MMIO access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MmioAccess {
    /// A load: the host supplies the data in the next VCPU_RUN's x3.
    Read,
    /// A store of `data` (the low `size` bytes of the guest register; 0 for XZR).
    Write {
        /// The stored value, zero-extended from the access size.
        data: u64,
    },
}

/// A decoded exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Exit {
    /// IRQ: x2 = x3 = 0.
    Irq,
    /// MMIO: x1 carries size, direction and register; x2 = IPA; x3 = write data or 0.
    Mmio {
        /// The faulting byte address.
        ipa: u64,
        /// Access size.
        size: AccessSize,
        /// The guest's transfer register Rt, 0..=31 (31 = XZR).
        register: u8,
        /// Read, or write with its data.
        access: MmioAccess,
    },
    /// GUEST_HVC: x2 = the guest's W0 (zero-extended), x3 = the guest's x1.
    GuestHvc {
        /// The guest's W0, exactly as passed.
        function_id: u32,
        /// The guest's x1.
        x1: u64,
    },
    /// MEM_SHARED: x2 = IPA, x3 = nr.
    MemShared {
        /// First byte of the range, page aligned.
        ipa: u64,
        /// Page count.
        nr: u32,
    },
    /// MEM_UNSHARED: x2 = IPA, x3 = nr.
    MemUnshared {
        /// First byte of the range, page aligned.
        ipa: u64,
        /// Page count.
        nr: u32,
    },
    /// MEM_RELINQUISHED: x2 = IPA, x3 = nr.
    MemRelinquished {
        /// First byte of the range, page aligned.
        ipa: u64,
        /// Page count.
        nr: u32,
    },
    /// MEM_FAULT: x2 = the IPA of the faulting page (page aligned), x3 = 0.
    MemFault {
        /// The faulting page's IPA.
        ipa: u64,
    },
    /// SYSTEM_OFF: x2 = x3 = 0.
    SystemOff,
    /// SYSTEM_RESET: x2 = x3 = 0.
    SystemReset,
    /// VCPU_STARTED: x2 = the index of the vCPU the guest started, x3 = 0.
    VcpuStarted {
        /// The started vCPU, below MAX_VCPUS.
        vcpu: u32,
    },
    /// VCPU_OFF: x2 = x3 = 0.
    VcpuOff,
}

/// x1 bits [7:0]: the reason.
const REASON_MASK: u64 = 0xFF;
/// MMIO x1 bits [9:8]: log2 of the access size.
const MMIO_SIZE_SHIFT: u32 = 8;
/// MMIO x1 bit 12: 1 = write, 0 = read.
const MMIO_WRITE: u64 = 1 << 12;
/// MMIO x1 bits [20:16]: the register index.
const MMIO_REGISTER_SHIFT: u32 = 16;
/// Every x1 bit an MMIO exit may set.
const MMIO_X1_DEFINED: u64 =
    REASON_MASK | (0x3 << MMIO_SIZE_SHIFT) | MMIO_WRITE | (0x1F << MMIO_REGISTER_SHIFT);

impl Exit {
    /// The reason of this exit.
    pub const fn reason(&self) -> ExitReason {
        match self {
            Self::Irq => ExitReason::Irq,
            Self::Mmio { .. } => ExitReason::Mmio,
            Self::GuestHvc { .. } => ExitReason::GuestHvc,
            Self::MemShared { .. } => ExitReason::MemShared,
            Self::MemUnshared { .. } => ExitReason::MemUnshared,
            Self::MemRelinquished { .. } => ExitReason::MemRelinquished,
            Self::MemFault { .. } => ExitReason::MemFault,
            Self::SystemOff => ExitReason::SystemOff,
            Self::SystemReset => ExitReason::SystemReset,
            Self::VcpuStarted { .. } => ExitReason::VcpuStarted,
            Self::VcpuOff => ExitReason::VcpuOff,
        }
    }

    /// x1..x3 of the VCPU_RUN return. For MMIO the register index is taken modulo 32 and
    /// write data is cut to the access size, so the result always decodes.
    pub const fn encode(&self) -> [u64; 3] {
        let reason = self.reason() as u64;
        match *self {
            Self::Irq | Self::SystemOff | Self::SystemReset | Self::VcpuOff => [reason, 0, 0],
            Self::VcpuStarted { vcpu } => [reason, vcpu as u64, 0],
            Self::Mmio {
                ipa,
                size,
                register,
                access,
            } => {
                let mut x1 = reason
                    | ((size.log2() as u64) << MMIO_SIZE_SHIFT)
                    | (((register & 0x1F) as u64) << MMIO_REGISTER_SHIFT);
                let x3 = match access {
                    MmioAccess::Read => 0,
                    MmioAccess::Write { data } => {
                        x1 |= MMIO_WRITE;
                        data & size.mask()
                    }
                };
                [x1, ipa, x3]
            }
            Self::GuestHvc { function_id, x1 } => [reason, function_id as u64, x1],
            Self::MemShared { ipa, nr }
            | Self::MemUnshared { ipa, nr }
            | Self::MemRelinquished { ipa, nr } => [reason, ipa, nr as u64],
            Self::MemFault { ipa } => [reason, ipa, 0],
        }
    }

    /// Decodes x1..x3 of a successful VCPU_RUN. INVALID_PARAMETER for an unknown reason
    /// or any bit the encoding does not define.
    pub fn decode(regs: [u64; 3]) -> Result<Self, Error> {
        let [x1, x2, x3] = regs;
        let reason =
            ExitReason::from_u8((x1 & REASON_MASK) as u8).ok_or(Error::InvalidParameter)?;
        if reason != ExitReason::Mmio && x1 & !REASON_MASK != 0 {
            return Err(Error::InvalidParameter);
        }
        match reason {
            ExitReason::Irq
            | ExitReason::SystemOff
            | ExitReason::SystemReset
            | ExitReason::VcpuOff => {
                if x2 != 0 || x3 != 0 {
                    return Err(Error::InvalidParameter);
                }
                Ok(match reason {
                    ExitReason::Irq => Self::Irq,
                    ExitReason::SystemOff => Self::SystemOff,
                    ExitReason::VcpuOff => Self::VcpuOff,
                    _ => Self::SystemReset,
                })
            }
            ExitReason::VcpuStarted => {
                if x2 >= u64::from(MAX_VCPUS) || x3 != 0 {
                    return Err(Error::InvalidParameter);
                }
                Ok(Self::VcpuStarted { vcpu: x2 as u32 })
            }
            ExitReason::Mmio => decode_mmio(x1, x2, x3),
            ExitReason::GuestHvc => {
                let function_id = u32::try_from(x2).map_err(|_| Error::InvalidParameter)?;
                Ok(Self::GuestHvc {
                    function_id,
                    x1: x3,
                })
            }
            ExitReason::MemShared | ExitReason::MemUnshared | ExitReason::MemRelinquished => {
                check_page_aligned(x2)?;
                check_nr_nonzero(x3)?;
                let nr = check_nr_limit(x3).map_err(|_| Error::InvalidParameter)?;
                check_ipa_range(x2, nr, MAX_IPA_BITS).map_err(|_| Error::InvalidParameter)?;
                Ok(match reason {
                    ExitReason::MemShared => Self::MemShared { ipa: x2, nr },
                    ExitReason::MemUnshared => Self::MemUnshared { ipa: x2, nr },
                    _ => Self::MemRelinquished { ipa: x2, nr },
                })
            }
            ExitReason::MemFault => {
                check_page_aligned(x2)?;
                check_ipa(x2, MAX_IPA_BITS).map_err(|_| Error::InvalidParameter)?;
                if x3 != 0 {
                    return Err(Error::InvalidParameter);
                }
                Ok(Self::MemFault { ipa: x2 })
            }
        }
    }
}

/// The MMIO part of [`Exit::decode`].
fn decode_mmio(x1: u64, x2: u64, x3: u64) -> Result<Exit, Error> {
    if x1 & !MMIO_X1_DEFINED != 0 {
        return Err(Error::InvalidParameter);
    }
    check_ipa(x2, MAX_IPA_BITS).map_err(|_| Error::InvalidParameter)?;
    let size = AccessSize::from_log2(((x1 >> MMIO_SIZE_SHIFT) & 0x3) as u8)
        .ok_or(Error::InvalidParameter)?;
    let register = ((x1 >> MMIO_REGISTER_SHIFT) & 0x1F) as u8;
    let access = if x1 & MMIO_WRITE != 0 {
        if x3 & !size.mask() != 0 {
            return Err(Error::InvalidParameter);
        }
        MmioAccess::Write { data: x3 }
    } else {
        if x3 != 0 {
            return Err(Error::InvalidParameter);
        }
        MmioAccess::Read
    };
    Ok(Exit::Mmio {
        ipa: x2,
        size,
        register,
        access,
    })
}
