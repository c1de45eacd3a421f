//! The payload's test-build debug call `DEBUG_CHECK_INVARIANTS` (0xC600_3F00, el2
//! `--features selftest`): EL2 walks its ownership record, the host stage-2 and every
//! guest stage-2 and checks invariants I1-I4. x0 = 0 if they hold; x0 = DENIED (-4),
//! x1 = the invariant's number, x2 = the address concerned if not. A release payload
//! answers NOT_SUPPORTED, which this image reports as a wrong payload, not as a pass.

use crate::msg::{Msg, bail};
use el1_rt::hvc;
use hvc_abi::Error;

pub const DEBUG_CHECK_INVARIANTS: u64 = 0xC600_3F00;

/// Asks EL2 to prove I1-I4 now.
pub fn check() -> Result<(), Msg> {
    let ret = hvc::call([DEBUG_CHECK_INVARIANTS, 0, 0, 0, 0, 0, 0, 0]);
    match ret.x0 {
        0 => Ok(()),
        x0 if x0 == Error::Denied.as_x0() => bail!(
            "DEBUG_CHECK_INVARIANTS: invariant I{} violated at {:#x}",
            ret.x1,
            ret.x2
        ),
        x0 if x0 == Error::NotSupported.as_x0() => bail!(
            "DEBUG_CHECK_INVARIANTS returned NOT_SUPPORTED: the payload is not a selftest \
             build (boot target/images/el2-selftest.bin)"
        ),
        x0 => bail!(
            "DEBUG_CHECK_INVARIANTS returned x0={x0:#x} x1={:#x} x2={:#x}",
            ret.x1,
            ret.x2
        ),
    }
}
