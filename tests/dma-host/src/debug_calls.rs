//! The payload's test-build calls (el2 `--features selftest`, `el2/src/selftest.rs`). A
//! release payload answers them NOT_SUPPORTED, reported as a wrong payload.

use el1_rt::bail;
use el1_rt::hvc;
use el1_rt::testing::{Failure, TestResult};
use hvc_abi::Error;

const DEBUG_CHECK_INVARIANTS: u64 = 0xC600_3F00;
const DEBUG_RECORD_ENTRY_ADDRESS: u64 = 0xC600_3F01;

/// EL2 proves invariants I1-I4 of its ownership record and stage-2 tables now.
pub fn check_invariants() -> TestResult {
    let ret = hvc::call([DEBUG_CHECK_INVARIANTS, 0, 0, 0, 0, 0, 0, 0]);
    match ret.x0 {
        0 => Ok(()),
        x0 if x0 == Error::NotSupported.as_x0() => {
            bail!("DEBUG_CHECK_INVARIANTS: NOT_SUPPORTED (boot target/images/el2-selftest.bin)")
        }
        x0 => bail!(
            "DEBUG_CHECK_INVARIANTS: x0={x0:#x}: invariant I{} violated at {:#x}",
            ret.x1,
            ret.x2
        ),
    }
}

/// Where the ownership record keeps the entry of the page at `pa`.
pub fn record_entry_address(pa: usize) -> Result<usize, Failure> {
    let ret = hvc::call([DEBUG_RECORD_ENTRY_ADDRESS, pa as u64, 0, 0, 0, 0, 0, 0]);
    if ret.x0 != 0 {
        bail!(
            "DEBUG_RECORD_ENTRY_ADDRESS({pa:#x}) returned x0={:#x} (a selftest payload answers it)",
            ret.x0
        );
    }
    Ok(ret.x1 as usize)
}
