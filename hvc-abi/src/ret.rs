//! What a call returns: x0 = 0 or a negative error (sign-extended 64-bit), results in
//! x1..x3, and zero in every result register a call does not define.

use crate::exit::Exit;
use crate::function_id::{UID, Version};
use crate::{Error, VmHandle};

/// x0..x3 of a return.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Return {
    /// 0 for success, else `Error::as_x0` (the UID call is the one exception).
    pub x0: u64,
    /// First result.
    pub x1: u64,
    /// Second result.
    pub x2: u64,
    /// Third result.
    pub x3: u64,
}

/// Why a return was not a success, as seen by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReturnError {
    /// x0 held one of this ABI's errors.
    Abi(Error),
    /// x0 held a value this ABI never returns (a protocol violation).
    Unknown(u64),
}

impl Return {
    /// Success with results x1..x3.
    pub const fn ok(x1: u64, x2: u64, x3: u64) -> Self {
        Self { x0: 0, x1, x2, x3 }
    }

    /// Failure: x0 = the error, x1..x3 = 0.
    pub const fn err(error: Error) -> Self {
        Self {
            x0: error.as_x0(),
            x1: 0,
            x2: 0,
            x3: 0,
        }
    }

    /// The success or failure of `result`, results in x1..x3.
    pub const fn from_result(result: Result<[u64; 3], Error>) -> Self {
        match result {
            Ok([x1, x2, x3]) => Self::ok(x1, x2, x3),
            Err(e) => Self::err(e),
        }
    }

    /// The VENDOR_HYP_CALL_UID return: w0..w3 = our UID, zero-extended.
    pub const fn uid() -> Self {
        Self {
            x0: UID[0] as u64,
            x1: UID[1] as u64,
            x2: UID[2] as u64,
            x3: UID[3] as u64,
        }
    }

    /// The FEATURES return: x1 = version, x2 = call bitmap, x3 = 0.
    pub const fn features(version: Version, bitmap: u64) -> Self {
        Self::ok(version.to_x1(), bitmap, 0)
    }

    /// The VM_CREATE return: x1 = handle.
    pub const fn handle(handle: VmHandle) -> Self {
        Self::ok(handle.raw(), 0, 0)
    }

    /// The VCPU_RUN return: x1..x3 = the exit.
    pub const fn exit(exit: Exit) -> Self {
        let [x1, x2, x3] = exit.encode();
        Self::ok(x1, x2, x3)
    }

    /// x0..x3 in order.
    pub const fn to_regs(self) -> [u64; 4] {
        [self.x0, self.x1, self.x2, self.x3]
    }

    /// From x0..x3 as the caller finds them after the HVC.
    pub const fn from_regs(regs: [u64; 4]) -> Self {
        Self {
            x0: regs[0],
            x1: regs[1],
            x2: regs[2],
            x3: regs[3],
        }
    }

    /// The caller's view: `Ok([x1, x2, x3])` if x0 = 0, else the error. Not for the UID
    /// call, whose x0 is not a status (use `function_id::is_our_uid`).
    pub const fn into_result(self) -> Result<[u64; 3], ReturnError> {
        if self.x0 == 0 {
            return Ok([self.x1, self.x2, self.x3]);
        }
        match Error::from_i64(self.x0 as i64) {
            Some(e) => Err(ReturnError::Abi(e)),
            None => Err(ReturnError::Unknown(self.x0)),
        }
    }
}

impl From<Error> for Return {
    fn from(error: Error) -> Self {
        Self::err(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_clear_the_result_registers() {
        for e in Error::ALL {
            let r = Return::err(e);
            assert_eq!(r.to_regs(), [e.as_i64() as u64, 0, 0, 0]);
            assert_eq!(r.into_result(), Err(ReturnError::Abi(e)));
        }
    }

    #[test]
    fn success_round_trips() {
        let r = Return::ok(1, 2, 3);
        assert_eq!(Return::from_regs(r.to_regs()), r);
        assert_eq!(r.into_result(), Ok([1, 2, 3]));
    }

    #[test]
    fn a_32_bit_minus_one_is_a_protocol_violation() {
        let r = Return::from_regs([0xFFFF_FFFF, 0, 0, 0]);
        assert_eq!(r.into_result(), Err(ReturnError::Unknown(0xFFFF_FFFF)));
    }

    #[test]
    fn uid_return_is_zero_extended() {
        assert_eq!(
            Return::uid().to_regs(),
            [0x6b7b_1d6b, 0x0842_d5e4, 0x59bd_d294, 0xdaf2_397c]
        );
        assert!(crate::function_id::is_our_uid(Return::uid().to_regs()));
    }

    #[test]
    fn features_carries_version_and_bitmap() {
        let r = Return::features(Version::CURRENT, 0xFFF);
        assert_eq!(r.to_regs(), [0, 0x2_0000, 0xFFF, 0]);
    }

    #[test]
    fn exit_return_carries_the_encoding() {
        let r = Return::exit(Exit::MemFault { ipa: 0x8000_0000 });
        assert_eq!(r.to_regs(), [0, 7, 0x8000_0000, 0]);
    }
}
