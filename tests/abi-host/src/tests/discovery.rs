//! Discovery (docs/abi.md section 2) as the host sees it.

use crate::runner::{Ctx, TestResult, bail};
use el1_rt::host_calls;
use hvc_abi::function_id::{HOST_FEATURES_BITMAP, Version};
use hvc_abi::{HostCall, Return};

/// VENDOR_HYP_CALL_UID names the payload; FEATURES returns x0 = 0, x1 = 0x2_0000 (2.0),
/// x2 = the host bitmap, x3 = 0.
pub fn discovery_reports_abi_2_0(_ctx: &mut Ctx) -> TestResult {
    if !host_calls::uid_matches() {
        bail!("VENDOR_HYP_CALL_UID does not return the payload's UID");
    }
    let got = host_calls::raw(HostCall::Features);
    let want = Return::features(Version { major: 2, minor: 0 }, HOST_FEATURES_BITMAP);
    if got != want {
        bail!(
            "FEATURES returned x0={:#x} x1={:#x} x2={:#x} x3={:#x}, expected 0, {:#x}, {:#x}, 0",
            got.x0,
            got.x1,
            got.x2,
            got.x3,
            want.x1,
            want.x2
        );
    }
    Ok(())
}
