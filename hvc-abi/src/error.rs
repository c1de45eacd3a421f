//! The error codes every call of this ABI returns in x0.
//!
//! Each code has exactly one meaning; the words below are the words of `docs/abi.md`
//! (section "Errors"), and a test checks that the two agree.

use core::fmt;

/// An error returned in x0 as a sign-extended 64-bit value (never a 32-bit value).
///
/// The numbering follows SMCCC where SMCCC defines the code (-1, -3); -2 (SMCCC
/// `NOT_REQUIRED`) is never returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i64)]
pub enum Error {
    /// Unknown function id for this caller (SMCCC NOT_SUPPORTED).
    NotSupported = -1,
    /// Malformed argument: misaligned address, reserved or MBZ bits set, zero count where not allowed, or a bad enumerated value.
    InvalidParameter = -3,
    /// Wrong owner or page state.
    Denied = -4,
    /// In use: the vCPU is running, the VM has running vCPUs, the vCPU already exists, every VM slot is taken, or every MMIO-guard slot of the VM is taken.
    Busy = -5,
    /// The VM's page-table memory is used up; top it up and retry.
    NoMemory = -6,
    /// No such VM, vCPU or mapping.
    NotFound = -7,
    /// Address, count or index out of range, or pfn + nr wraps.
    Range = -8,
}

impl Error {
    /// Every error, in the order of the table in `docs/abi.md`.
    pub const ALL: [Error; 7] = [
        Error::NotSupported,
        Error::InvalidParameter,
        Error::Denied,
        Error::Busy,
        Error::NoMemory,
        Error::NotFound,
        Error::Range,
    ];

    /// The value of x0 as a signed 64-bit integer.
    pub const fn as_i64(self) -> i64 {
        self as i64
    }

    /// The value of x0 as the register holds it (the two's complement of the code).
    pub const fn as_x0(self) -> u64 {
        self.as_i64() as u64
    }

    /// The error a signed x0 value stands for, or `None` for 0 and for values this ABI
    /// never returns.
    pub const fn from_i64(value: i64) -> Option<Self> {
        match value {
            -1 => Some(Error::NotSupported),
            -3 => Some(Error::InvalidParameter),
            -4 => Some(Error::Denied),
            -5 => Some(Error::Busy),
            -6 => Some(Error::NoMemory),
            -7 => Some(Error::NotFound),
            -8 => Some(Error::Range),
            _ => None,
        }
    }

    /// The name `docs/abi.md` uses.
    pub const fn name(self) -> &'static str {
        match self {
            Error::NotSupported => "NOT_SUPPORTED",
            Error::InvalidParameter => "INVALID_PARAMETER",
            Error::Denied => "DENIED",
            Error::Busy => "BUSY",
            Error::NoMemory => "NO_MEMORY",
            Error::NotFound => "NOT_FOUND",
            Error::Range => "RANGE",
        }
    }

    /// The meaning, word for word as in `docs/abi.md` and the variant's doc comment.
    pub const fn meaning(self) -> &'static str {
        match self {
            Error::NotSupported => "Unknown function id for this caller (SMCCC NOT_SUPPORTED).",
            Error::InvalidParameter => {
                "Malformed argument: misaligned address, reserved or MBZ bits set, zero count \
                 where not allowed, or a bad enumerated value."
            }
            Error::Denied => "Wrong owner or page state.",
            Error::Busy => {
                "In use: the vCPU is running, the VM has running vCPUs, the vCPU already \
                 exists, every VM slot is taken, or every MMIO-guard slot of the VM is taken."
            }
            Error::NoMemory => "The VM's page-table memory is used up; top it up and retry.",
            Error::NotFound => "No such VM, vCPU or mapping.",
            Error::Range => "Address, count or index out of range, or pfn + nr wraps.",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.as_i64())
    }
}

impl core::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_round_trips_through_i64() {
        for e in Error::ALL {
            assert_eq!(Error::from_i64(e.as_i64()), Some(e));
        }
    }

    #[test]
    fn x0_is_the_sign_extended_64_bit_value() {
        assert_eq!(Error::NotSupported.as_x0(), 0xFFFF_FFFF_FFFF_FFFF);
        assert_eq!(Error::Range.as_x0(), 0xFFFF_FFFF_FFFF_FFF8);
    }

    #[test]
    fn zero_and_unused_codes_are_not_errors() {
        for v in [0, -2, -9, 1, i64::MIN, i64::MAX, 0xFFFF_FFFF] {
            assert_eq!(Error::from_i64(v), None, "{v}");
        }
    }

    #[test]
    fn a_32_bit_error_value_is_not_an_error() {
        // The pinned width: 0x0000_0000_FFFF_FFFF is not -1.
        assert_eq!(Error::from_i64(0xFFFF_FFFF_i64), None);
    }
}
