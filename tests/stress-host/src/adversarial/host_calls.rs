//! Typed forms of the page-sharing host calls that el1-rt's `host_calls` does not have.

use el1_rt::host_calls::{CallError, make};
use hvc_abi::{HostCall, VmHandle};

pub fn share_hyp(pfn: u64) -> Result<(), CallError> {
    make(HostCall::HostShareHyp { pfn }).map(drop)
}

pub fn unshare_hyp(pfn: u64) -> Result<(), CallError> {
    make(HostCall::HostUnshareHyp { pfn }).map(drop)
}

pub fn share_guest(handle: VmHandle, pfn: u64, gfn: u64, nr: u32) -> Result<(), CallError> {
    make(HostCall::HostShareGuest {
        handle,
        pfn,
        gfn,
        nr,
    })
    .map(drop)
}

pub fn unshare_guest(handle: VmHandle, gfn: u64, nr: u32) -> Result<(), CallError> {
    make(HostCall::HostUnshareGuest { handle, gfn, nr }).map(drop)
}
