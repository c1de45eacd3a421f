//! Shared argument checks for the call decoders.

use crate::Error;

/// Argument registers x`first`..=x7 must be zero (MBZ), else INVALID_PARAMETER.
pub(crate) fn check_mbz(regs: &[u64; 8], first: usize) -> Result<(), Error> {
    match regs.get(first..) {
        Some(rest) if rest.iter().any(|&r| r != 0) => Err(Error::InvalidParameter),
        _ => Ok(()),
    }
}

/// Registers as a caller passes them: `x0 = id`, the arguments, zero in the rest.
pub(crate) fn pack(id: crate::FunctionId, args: &[u64]) -> [u64; 8] {
    let mut regs = [0; 8];
    regs[0] = id.to_x0();
    for (slot, arg) in regs[1..].iter_mut().zip(args) {
        *slot = *arg;
    }
    regs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbz_checks_every_register_from_first() {
        for first in 1..8 {
            for set in first..8 {
                let mut regs = [0; 8];
                regs[set] = 1 << 63;
                assert_eq!(check_mbz(&regs, first), Err(Error::InvalidParameter));
            }
            let mut regs = [u64::MAX; 8];
            regs[first..].fill(0);
            assert_eq!(check_mbz(&regs, first), Ok(()));
        }
        assert_eq!(check_mbz(&[u64::MAX; 8], 8), Ok(()));
    }
}
