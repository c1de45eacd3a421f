//! Checks of single host pages: that a page is `HOST` (the host's alone, readable and
//! writable), and that a read of a page the host may not access is refused the way
//! docs/abi.md 7.4 says (a synchronous external abort injected at EL1).

use crate::msg::{Msg, bail};
use core::fmt;
use el1_rt::free_pages::PAGE_SIZE;
use el1_rt::host_calls::{self, CallError};
use el1_rt::probe;
use hvc_abi::Error;

/// The page frame number of a host address.
pub fn pfn(address: usize) -> u64 {
    (address / PAGE_SIZE) as u64
}

/// The host address of page frame `pfn`.
pub fn address(pfn: u64) -> usize {
    pfn as usize * PAGE_SIZE
}

/// `Err` unless `result` is the error `want`.
pub fn expect_error<T>(
    result: Result<T, CallError>,
    want: Error,
    what: fmt::Arguments,
) -> Result<(), Msg> {
    match result {
        Err(error) if error.abi_error() == Some(want) => Ok(()),
        Err(error) => bail!("{what}: {error}, expected {want}"),
        Ok(_) => bail!("{what} succeeded, expected {want}"),
    }
}

/// `Err` unless `result` is a success.
pub fn expect_ok<T>(result: Result<T, CallError>, what: fmt::Arguments) -> Result<T, Msg> {
    match result {
        Ok(value) => Ok(value),
        Err(error) => bail!("{what}: {error}"),
    }
}

/// Proves page `pfn` is `HOST`: HOST_SHARE_HYP succeeds only on a `HOST` page (docs/abi.md
/// 7.1), VM_RECLAIM of it is DENIED, and the host reads and writes it.
pub fn expect_host_page(pfn: u64) -> Result<(), Msg> {
    let address = address(pfn);
    expect_error(
        host_calls::vm_reclaim(pfn, 1),
        Error::Denied,
        format_args!("VM_RECLAIM of HOST page {address:#x}"),
    )?;
    if let Err(error) = host_calls::make(hvc_abi::HostCall::HostShareHyp { pfn }) {
        bail!("page {address:#x} is not HOST: HOST_SHARE_HYP: {error}");
    }
    if let Err(error) = host_calls::make(hvc_abi::HostCall::HostUnshareHyp { pfn }) {
        bail!("HOST_UNSHARE_HYP right after HOST_SHARE_HYP of {address:#x}: {error}");
    }
    let old = match probe::read_u64(address) {
        Ok(value) => value,
        Err(abort) => bail!(
            "HOST page {address:#x} is not readable by the host (ESR_EL1={:#x})",
            abort.esr
        ),
    };
    let pattern = !old;
    if let Err(abort) = probe::write_u64(address, pattern) {
        bail!(
            "HOST page {address:#x} is not writable by the host (ESR_EL1={:#x})",
            abort.esr
        );
    }
    match probe::read_u64(address) {
        Ok(value) if value == pattern => {}
        Ok(value) => {
            bail!("HOST page {address:#x} read back {value:#x} after writing {pattern:#x}")
        }
        Err(abort) => bail!(
            "HOST page {address:#x} aborted on re-read (ESR_EL1={:#x})",
            abort.esr
        ),
    }
    // Leave the old contents, so a caller that checks them (zeroed pages) still can.
    if let Err(abort) = probe::write_u64(address, old) {
        bail!(
            "HOST page {address:#x} refused a write (ESR_EL1={:#x})",
            abort.esr
        );
    }
    Ok(())
}

/// A host read of `address` must be refused with the abort EL2 injects.
pub fn expect_read_aborts(address: usize, what: &str) -> Result<(), Msg> {
    match probe::read_u64(address) {
        Ok(value) => bail!("host read of {what} at {address:#x} returned {value:#x}"),
        Err(abort) if abort.is_injected_abort_at(address) => Ok(()),
        Err(abort) => bail!(
            "host read of {what} at {address:#x} took the wrong fault: ESR_EL1={:#x} FAR_EL1={:#x}",
            abort.esr,
            abort.far
        ),
    }
}
