//! The stateless part of `docs/abi.md`, written down a second time, independently of
//! `hvc-abi`: for a register set, the first error row of the call's table that applies
//! (only the rows that need no VM, vCPU or page state), or `Ok`.
//!
//! Ids and limits are spelled as numbers from the document on purpose, not taken from the
//! crate under test, so that a wrong constant there shows up as a disagreement here.

use hvc_abi::Error;

const PFN_LIMIT: u128 = 1 << 36;
const GFN_LIMIT: u128 = 1 << 28;
const IPA_LIMIT: u128 = 1 << 40;
const MAX_NR: u64 = 512;
const PAGE: u64 = 4096;

/// W0 with the SVE hint (bit 16) cleared: the function id as section 1.1 defines it.
pub fn function_id(x0: u64) -> u32 {
    x0 as u32 & !(1 << 16)
}

/// Section 1.3: x`first`..=x7 must be zero.
fn mbz(regs: &[u64; 8], first: usize) -> Result<(), Error> {
    if regs[first..].iter().all(|&r| r == 0) {
        Ok(())
    } else {
        Err(Error::InvalidParameter)
    }
}

/// Section 1.4, `nr`: 0 is INVALID_PARAMETER, above 512 is RANGE. Returns the two phases
/// separately because other INVALID_PARAMETER rows come between them in some tables.
fn nr_zero(nr: u64) -> Result<(), Error> {
    if nr == 0 {
        Err(Error::InvalidParameter)
    } else {
        Ok(())
    }
}

fn nr_limit(nr: u64) -> Result<(), Error> {
    if nr > MAX_NR {
        Err(Error::Range)
    } else {
        Ok(())
    }
}

/// `first + nr` must not pass `limit` (exact arithmetic: no wrap is possible in u128).
fn below(first: u64, nr: u64, limit: u128) -> Result<(), Error> {
    if u128::from(first) + u128::from(nr) > limit {
        Err(Error::Range)
    } else {
        Ok(())
    }
}

/// The host call tables of section 4 (and FEATURES, UID of section 2).
pub fn host_call(regs: &[u64; 8]) -> Result<(), Error> {
    let [_, x1, x2, x3, x4, _, _, _] = *regs;
    match function_id(regs[0]) {
        0x8600_FF01 => Ok(()),
        0xC600_0000 => mbz(regs, 1),
        // 4.1, 4.2
        0xC600_0001 | 0xC600_0002 => {
            mbz(regs, 2)?;
            below(x1, 1, PFN_LIMIT)
        }
        // 4.3
        0xC600_0003 => {
            mbz(regs, 3)?;
            if x1 == 0 || !(32..=40).contains(&x2) {
                return Err(Error::InvalidParameter);
            }
            if x1 > 8 {
                return Err(Error::Range);
            }
            Ok(())
        }
        // 4.4
        0xC600_0004 => {
            mbz(regs, 4)?;
            nr_zero(x3)?;
            nr_limit(x3)?;
            below(x2, x3, PFN_LIMIT)
        }
        // 4.5 (4.6 and 4.7, 0x06 and 0x07, are retired: NOT_SUPPORTED)
        0xC600_0005 => {
            mbz(regs, 5)?;
            nr_zero(x4)?;
            nr_limit(x4)?;
            below(x2, x4, PFN_LIMIT)?;
            below(x3, x4, GFN_LIMIT)
        }
        // 4.8
        0xC600_0008 => {
            mbz(regs, 5)?;
            if x3 % 4 != 0 {
                return Err(Error::InvalidParameter);
            }
            // Only vCPU 0 takes an entry point and x0.
            if x2 != 0 && (x3 != 0 || x4 != 0) {
                return Err(Error::InvalidParameter);
            }
            if x2 >= 8 || u128::from(x3) >= IPA_LIMIT {
                return Err(Error::Range);
            }
            Ok(())
        }
        // 4.9
        0xC600_0009 => {
            mbz(regs, 4)?;
            if x2 >= 8 {
                return Err(Error::Range);
            }
            Ok(())
        }
        // 4.10
        0xC600_000A => mbz(regs, 2),
        // 4.11
        0xC600_000B => {
            mbz(regs, 3)?;
            nr_zero(x2)?;
            nr_limit(x2)?;
            below(x1, x2, PFN_LIMIT)
        }
        _ => Err(Error::NotSupported),
    }
}

/// The guest call tables of section 5 (and UID, and the PSCI calls of 5.5, whose
/// arguments decode always; their errors are PSCI codes that depend on the VM).
pub fn guest_call(regs: &[u64; 8]) -> Result<(), Error> {
    let [_, ipa, nr, _, _, _, _, _] = *regs;
    match function_id(regs[0]) {
        0x8600_FF01 => Ok(()),
        0x8400_0000 | 0xC400_0001 | 0x8400_0002 | 0xC400_0003 | 0x8400_0004 | 0xC400_0004
        | 0x8400_0006 | 0x8400_0008 | 0x8400_0009 | 0x8400_000A => Ok(()),
        // 5.8: SMCCC architecture and TRNG calls.
        0x8000_0000 | 0x8000_0001 | 0x8000_8000 | 0x8000_7FFF | 0x8000_3FFF => Ok(()),
        0x8400_0050..=0x8400_0053 | 0xC400_0053 => Ok(()),
        0xC600_0000 | 0xC600_0020 => mbz(regs, 1),
        // 5.3
        0xC600_0021..=0xC600_0023 => {
            mbz(regs, 3)?;
            if ipa % PAGE != 0 {
                return Err(Error::InvalidParameter);
            }
            nr_zero(nr)?;
            nr_limit(nr)?;
            if u128::from(ipa) + u128::from(nr) * u128::from(PAGE) > IPA_LIMIT {
                return Err(Error::Range);
            }
            Ok(())
        }
        // 5.6, 5.7
        0xC600_0024..=0xC600_0026 => {
            mbz(regs, 2)?;
            if ipa % PAGE != 0 {
                return Err(Error::InvalidParameter);
            }
            if u128::from(ipa) >= IPA_LIMIT {
                return Err(Error::Range);
            }
            Ok(())
        }
        _ => Err(Error::NotSupported),
    }
}

/// Sections 1.1, 5.4 and 5.5: whether the payload answers a guest HVC (owner 6, or any
/// PSCI id: owner 4, functions 0x00..=0x1F, fast call, either convention); every other
/// one is forwarded as a GUEST_HVC exit.
pub fn guest_hvc_is_payloads(x0: u64) -> bool {
    let id = function_id(x0);
    let owner = (id >> 24) & 0x3F;
    let fast = id >> 31 == 1;
    let psci = fast && owner == 4 && id & 0xFF_FFE0 == 0;
    let trng = fast && owner == 4 && id & 0xFF_FFF0 == 0x50;
    let arch = fast && owner == 0;
    owner == 6 || psci || trng || arch
}

/// Section 6: whether x1..x3 are an exit a successful VCPU_RUN may return.
pub fn exit_is_valid([x1, x2, x3]: [u64; 3]) -> bool {
    let reason = x1 & 0xFF;
    let upper = x1 >> 8;
    let aligned = x2 % PAGE == 0;
    match reason {
        1 | 8 | 9 | 11 => upper == 0 && x2 == 0 && x3 == 0,
        10 => upper == 0 && x2 < 8 && x3 == 0,
        2 => {
            // Bits [9:8] size, [12] write, [20:16] register; everything else zero.
            let defined: u64 = 0xFF | (0x3 << 8) | (1 << 12) | (0x1F << 16);
            let size_bytes = 1u32 << ((x1 >> 8) & 3);
            let write = x1 & (1 << 12) != 0;
            let data_fits = size_bytes == 8 || x3 >> (8 * size_bytes) == 0;
            x1 & !defined == 0
                && u128::from(x2) < IPA_LIMIT
                && if write { data_fits } else { x3 == 0 }
        }
        3 => upper == 0 && x2 <= u64::from(u32::MAX),
        4..=6 => {
            upper == 0
                && aligned
                && (1..=MAX_NR).contains(&x3)
                && u128::from(x2) + u128::from(x3) * u128::from(PAGE) <= IPA_LIMIT
        }
        7 => upper == 0 && aligned && u128::from(x2) < IPA_LIMIT && x3 == 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_from_the_document() {
        let mut regs = [0; 8];
        regs[0] = 0xC600_0005;
        regs[1..5].copy_from_slice(&[1 << 16, 0x1000, 0, 1]);
        assert_eq!(host_call(&regs), Ok(()));
        regs[4] = 0;
        assert_eq!(host_call(&regs), Err(Error::InvalidParameter));
        regs[4] = 513;
        assert_eq!(host_call(&regs), Err(Error::Range));
        regs[0] = 0x8600_0005; // SMC32 form
        assert_eq!(host_call(&regs), Err(Error::NotSupported));
        assert!(guest_hvc_is_payloads(0x4600_0005));
        assert!(guest_hvc_is_payloads(0x8400_0000));
        assert!(guest_hvc_is_payloads(0xC400_001F));
        assert!(guest_hvc_is_payloads(0x8400_0050)); // TRNG
        assert!(guest_hvc_is_payloads(0x8000_0000)); // SMCCC_VERSION
        assert!(!guest_hvc_is_payloads(0x8400_0060));
        assert!(!guest_hvc_is_payloads(0xC200_0000));
        assert!(exit_is_valid([
            2 | (3 << 8) | (1 << 12) | (31 << 16),
            0x900_0000,
            7
        ]));
        assert!(!exit_is_valid([2 | (1 << 10), 0, 0]));
        assert!(!exit_is_valid([4, 0x1000, 0]));
    }
}
