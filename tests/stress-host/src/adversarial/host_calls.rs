//! Typed forms of the page-sharing host calls that el1-rt's `host_calls` does not have.

use el1_rt::host_calls::{CallError, make};
use hvc_abi::HostCall;

pub fn share_hyp(pfn: u64) -> Result<(), CallError> {
    make(HostCall::HostShareHyp { pfn }).map(drop)
}

pub fn unshare_hyp(pfn: u64) -> Result<(), CallError> {
    make(HostCall::HostUnshareHyp { pfn }).map(drop)
}
