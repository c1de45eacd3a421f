//! The guest's channels to its host (see the protocol in lib.rs): stores to IPAs that
//! have no page, which the payload turns into MMIO exits.
//!
//! Each access is one `ldr`/`str`/`strb` of a general register with a plain base
//! register address: an instruction with a valid syndrome (ISV), which docs/abi.md
//! section 6 requires for an `MMIO` exit (anything else would be a `MEM_FAULT`).

use crate::hvc::guest_call;
use core::arch::asm;
use hvc_abi::GuestCall;
use test_guest::{PRINT_IPA, REPORT_IPA, Report};

/// Registers both channel pages as MMIO (MMIO_GUARD_MAP), so that the payload turns the
/// guest's stores there into MMIO exits. A payload without the MMIO guard (ABI 1.0)
/// answers NOT_SUPPORTED and exits as MMIO anyway; a failure here shows up as a MEM_FAULT
/// at the first print or report.
pub fn register_channels() {
    for ipa in [PRINT_IPA, REPORT_IPA] {
        guest_call(GuestCall::MmioGuardMap { ipa: ipa & !0xfff });
    }
}

/// Prints `text` and a newline on the host's console (1-byte stores to PRINT_IPA).
pub fn print_line(text: &str) {
    for &byte in text.as_bytes() {
        store_u8(PRINT_IPA, byte);
    }
    store_u8(PRINT_IPA, b'\n');
}

/// Sends `report` to the host (one 8-byte store to REPORT_IPA).
pub fn report(report: Report) {
    store_u64(REPORT_IPA, report.encode());
}

/// Loads 8 bytes from `ipa`: memory if the IPA has a page, an MMIO read exit otherwise.
pub fn load_u64(ipa: u64) -> u64 {
    let value: u64;
    // SAFETY: a single aligned load from an IPA of this guest; the guest's MMU is off
    // (address = IPA). If the IPA has no page the payload exits to the host and resumes
    // here with the host's data in the register. No Rust object lives at these IPAs.
    unsafe {
        asm!("ldr {value}, [{ipa}]", ipa = in(reg) ipa, value = out(reg) value, options(nostack, readonly));
    }
    value
}

/// Stores 8 bytes at `ipa`, an IPA of this guest that has no page and is not registered
/// as MMIO: the payload must stop the vCPU with a MEM_FAULT exit that carries no data, and
/// run the store again once the host has donated a page there.
pub fn store_unbacked(ipa: u64, value: u64) {
    // SAFETY: a single aligned store with a plain base register (a valid syndrome, so a
    // payload without the MMIO guard would make it an MMIO exit: the attack the test
    // checks); the guest's MMU is off and no Rust object lives at `ipa`.
    unsafe {
        asm!("str {value}, [{ipa}]", ipa = in(reg) ipa, value = in(reg) value, options(nostack));
    }
}

fn store_u64(ipa: u64, value: u64) {
    // SAFETY: a single aligned store to an MMIO channel IPA, which has no page: the
    // payload exits to the host and resumes after it. No Rust object lives there.
    unsafe {
        asm!("str {value}, [{ipa}]", ipa = in(reg) ipa, value = in(reg) value, options(nostack));
    }
}

fn store_u8(ipa: u64, value: u8) {
    // SAFETY: as in `store_u64`, a single byte store.
    unsafe {
        asm!("strb {value:w}, [{ipa}]", ipa = in(reg) ipa, value = in(reg) u32::from(value), options(nostack));
    }
}
