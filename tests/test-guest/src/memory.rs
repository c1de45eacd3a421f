//! Accesses to the guest's own pages. The MMU is off, so these are Device-nGnRnE accesses
//! at address = IPA: every access is aligned and volatile (one access each, never merged
//! into SIMD copies).

/// Stores `value` at the 8-byte aligned `ipa` of a page the guest owns.
pub fn write_u64(ipa: u64, value: u64) {
    // SAFETY: `ipa` is 8-byte aligned inside a data page the host donated to this guest
    // (test_guest::DATA_GFN..); with the MMU off the IPA is the address. No Rust object
    // lives in the data pages.
    unsafe { (ipa as *mut u64).write_volatile(value) }
}

/// Loads the u64 at the 8-byte aligned `ipa` of a page the guest owns.
pub fn read_u64(ipa: u64) -> u64 {
    // SAFETY: as in `write_u64`.
    unsafe { (ipa as *const u64).read_volatile() }
}

/// Stores `bytes` and a NUL at `ipa`.
pub fn write_c_string(ipa: u64, bytes: &[u8]) {
    for (offset, &byte) in bytes.iter().chain(&[0]).enumerate() {
        // SAFETY: as in `write_u64`; the protocol keeps strings inside their page.
        unsafe { ((ipa + offset as u64) as *mut u8).write_volatile(byte) }
    }
}

/// Whether `ipa` holds `bytes` followed by a NUL.
pub fn holds_c_string(ipa: u64, bytes: &[u8]) -> bool {
    bytes.iter().chain(&[0]).enumerate().all(|(offset, &byte)| {
        // SAFETY: as in `write_u64`.
        unsafe { ((ipa + offset as u64) as *const u8).read_volatile() == byte }
    })
}
