//! Fixed limits of the ABI and the stateless range checks built on them.
//!
//! The checks live here so that the payload's decoder and any reference model return the
//! same error for the same arguments. Each is total: checked arithmetic, no panics.

use crate::Error;

/// log2 of the page (and protection) granule.
pub const PAGE_SHIFT: u32 = 12;
/// The page granule every address and count in this ABI is measured in.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// Largest `nr` a memory call accepts: one 2 MiB block of 4 KiB pages.
pub const MAX_PAGES_PER_CALL: u32 = 512;
/// Physical address bits: every page named by a pfn lies below `1 << PA_BITS`.
pub const PA_BITS: u32 = 48;
/// Smallest `ipa_bits` VM_CREATE accepts.
pub const MIN_IPA_BITS: u32 = 32;
/// Largest `ipa_bits` VM_CREATE accepts.
pub const MAX_IPA_BITS: u32 = 40;
/// Largest `nr_vcpus` VM_CREATE accepts; vCPU indices are `0..MAX_VCPUS`.
pub const MAX_VCPUS: u32 = 8;
/// How many VMs may exist at once (from VM_CREATE until VM_DESTROY).
pub const MAX_VMS: u32 = 16;
/// No single call takes more pages than this from a VM's topped-up pool.
pub const MAX_POOL_PAGES_PER_CALL: u32 = 8;
/// How many IPA pages one VM's guest may have registered as MMIO at once.
pub const MAX_MMIO_GUARD_PAGES: u32 = 32;

/// One past the highest pfn: pfns are `0..PFN_LIMIT`.
pub const PFN_LIMIT: u64 = 1 << (PA_BITS - PAGE_SHIFT);

/// Rejects a zero page count (INVALID_PARAMETER). Part of the first check phase.
pub const fn check_nr_nonzero(nr: u64) -> Result<(), Error> {
    if nr == 0 {
        Err(Error::InvalidParameter)
    } else {
        Ok(())
    }
}

/// Returns `nr` as a `u32` if it is at most [`MAX_PAGES_PER_CALL`], else RANGE.
/// Call [`check_nr_nonzero`] first: this check belongs to the RANGE phase.
pub const fn check_nr_limit(nr: u64) -> Result<u32, Error> {
    if nr > MAX_PAGES_PER_CALL as u64 {
        Err(Error::Range)
    } else {
        Ok(nr as u32)
    }
}

/// `pfn..pfn + nr` must lie below [`PFN_LIMIT`] without wrapping, else RANGE.
pub const fn check_pfn_range(pfn: u64, nr: u32) -> Result<(), Error> {
    match pfn.checked_add(nr as u64) {
        Some(end) if end <= PFN_LIMIT => Ok(()),
        _ => Err(Error::Range),
    }
}

/// One past the highest gfn of an IPA space of `ipa_bits` bits, or `None` if `ipa_bits`
/// is not in `PAGE_SHIFT..64`.
const fn gfn_limit(ipa_bits: u32) -> Option<u64> {
    if ipa_bits < PAGE_SHIFT || ipa_bits >= 64 {
        None
    } else {
        Some(1 << (ipa_bits - PAGE_SHIFT))
    }
}

/// `gfn..gfn + nr` must lie below `1 << (ipa_bits - 12)` without wrapping, else RANGE.
///
/// With `ipa_bits = MAX_IPA_BITS` this is the stateless check; with the VM's own
/// `ipa_bits` it is the check made once the VM is found.
pub const fn check_gfn_range(gfn: u64, nr: u32, ipa_bits: u32) -> Result<(), Error> {
    let Some(limit) = gfn_limit(ipa_bits) else {
        return Err(Error::Range);
    };
    match gfn.checked_add(nr as u64) {
        Some(end) if end <= limit => Ok(()),
        _ => Err(Error::Range),
    }
}

/// `ipa` must be page aligned, else INVALID_PARAMETER.
pub const fn check_page_aligned(ipa: u64) -> Result<(), Error> {
    if !ipa.is_multiple_of(PAGE_SIZE) {
        Err(Error::InvalidParameter)
    } else {
        Ok(())
    }
}

/// The byte range `ipa..ipa + nr * PAGE_SIZE` must lie below `1 << ipa_bits`, else RANGE.
/// `ipa` is page aligned (checked earlier), so this is the gfn check on `ipa >> 12`.
pub const fn check_ipa_range(ipa: u64, nr: u32, ipa_bits: u32) -> Result<(), Error> {
    check_gfn_range(ipa >> PAGE_SHIFT, nr, ipa_bits)
}

/// A single address (not a range) must lie below `1 << ipa_bits`, else RANGE.
pub const fn check_ipa(ipa: u64, ipa_bits: u32) -> Result<(), Error> {
    if ipa_bits >= 64 || ipa >> ipa_bits == 0 {
        Ok(())
    } else {
        Err(Error::Range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pfn_range_may_end_exactly_at_the_pa_limit() {
        assert_eq!(check_pfn_range(PFN_LIMIT - 512, 512), Ok(()));
        assert_eq!(check_pfn_range(PFN_LIMIT - 1, 1), Ok(()));
    }

    #[test]
    fn pfn_range_beyond_the_pa_limit_is_range() {
        assert_eq!(check_pfn_range(PFN_LIMIT - 511, 512), Err(Error::Range));
        assert_eq!(check_pfn_range(PFN_LIMIT, 1), Err(Error::Range));
    }

    #[test]
    fn pfn_range_that_wraps_is_range() {
        assert_eq!(check_pfn_range(u64::MAX, 1), Err(Error::Range));
        assert_eq!(check_pfn_range(u64::MAX - 10, 512), Err(Error::Range));
    }

    #[test]
    fn gfn_range_is_limited_by_ipa_bits() {
        assert_eq!(check_gfn_range((1 << 20) - 1, 1, 32), Ok(()));
        assert_eq!(check_gfn_range(1 << 20, 1, 32), Err(Error::Range));
        assert_eq!(check_gfn_range((1 << 28) - 512, 512, 40), Ok(()));
        assert_eq!(check_gfn_range((1 << 28) - 511, 512, 40), Err(Error::Range));
        assert_eq!(check_gfn_range(u64::MAX, 2, 40), Err(Error::Range));
    }

    #[test]
    fn nonsense_ipa_bits_never_panics() {
        for bits in [0, 11, 64, 65, u32::MAX] {
            assert_eq!(check_gfn_range(0, 1, bits), Err(Error::Range));
        }
        assert_eq!(check_ipa(u64::MAX, 64), Ok(()));
    }

    #[test]
    fn nr_zero_is_invalid_and_above_limit_is_range() {
        assert_eq!(check_nr_nonzero(0), Err(Error::InvalidParameter));
        assert_eq!(check_nr_limit(512), Ok(512));
        assert_eq!(check_nr_limit(513), Err(Error::Range));
        assert_eq!(check_nr_limit(u64::MAX), Err(Error::Range));
    }

    #[test]
    fn single_ipa_must_fit_ipa_bits() {
        assert_eq!(check_ipa((1 << 40) - 4, 40), Ok(()));
        assert_eq!(check_ipa(1 << 40, 40), Err(Error::Range));
        assert_eq!(check_ipa(1 << 32, 32), Err(Error::Range));
    }
}
