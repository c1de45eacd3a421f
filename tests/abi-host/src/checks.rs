//! Assertions the tests share: error returns as docs/abi.md 1.2 defines them, and host
//! accesses that EL2 must refuse.

use crate::runner::{Failure, TestResult, bail};
use el1_rt::exceptions::Abort;
use el1_rt::probe;
use hvc_abi::{Error, HostCall, Return};

/// `call` returns `error`: x0 = the sign-extended error, x1..x3 = 0.
pub fn expect_error(call: HostCall, error: Error, what: &str) -> TestResult {
    expect_error_regs(call.encode(), error, what)
}

/// Like [`expect_error`] for raw registers (malformed calls).
pub fn expect_error_regs(regs: [u64; 8], error: Error, what: &str) -> TestResult {
    let got = el1_rt::hvc::call(regs);
    let want = Return::err(error);
    if got != want {
        bail!(
            "{what}: expected {error} with x1..x3 = 0, got x0={:#x} x1={:#x} x2={:#x} x3={:#x}",
            got.x0,
            got.x1,
            got.x2,
            got.x3
        );
    }
    Ok(())
}

/// A read of `address` must be refused with the synchronous external abort EL2 injects.
pub fn expect_read_aborts(address: usize, what: &str) -> Result<Abort, Failure> {
    match probe::read_u64(address) {
        Err(abort) if abort.is_injected_abort_at(address) => Ok(abort),
        Err(abort) => bail!(
            "{what} at {address:#x}: wrong fault ESR_EL1={:#x} FAR_EL1={:#x}",
            abort.esr,
            abort.far
        ),
        Ok(value) => bail!("{what} at {address:#x}: read {value:#x} instead of aborting"),
    }
}

/// A write to `address` must be refused like a read.
pub fn expect_write_aborts(address: usize, what: &str) -> Result<Abort, Failure> {
    match probe::write_u64(address, 0xbad0_bad0_bad0_bad0) {
        Err(abort) if abort.is_injected_abort_at(address) => Ok(abort),
        Err(abort) => bail!(
            "{what} at {address:#x}: wrong fault ESR_EL1={:#x} FAR_EL1={:#x}",
            abort.esr,
            abort.far
        ),
        Ok(()) => bail!("{what} at {address:#x}: the write was not refused"),
    }
}

/// `len` bytes from `address` are readable and zero.
pub fn expect_zeroed(address: usize, len: usize, what: &str) -> TestResult {
    match probe::first_nonzero(address, len) {
        Ok(None) => Ok(()),
        Ok(Some(offset)) => bail!("{what}: nonzero word at {:#x}", address + offset),
        Err(abort) => bail!(
            "{what}: read of {:#x} aborted (ESR_EL1={:#x})",
            abort.far,
            abort.esr
        ),
    }
}
