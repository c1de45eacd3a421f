//! The host calls of docs/abi.md as typed functions: each encodes its call with `hvc_abi`,
//! makes it and decodes the result. Errors are returned as the ABI reports them, so that
//! tests can compare them with the document's tables.

use crate::hvc::host_call;
use core::fmt;
use hvc_abi::function_id::{Version, is_our_uid};
use hvc_abi::{Exit, FunctionId, HostCall, Return, ReturnError, VmHandle};

/// Why a host call did not give the result it should have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError {
    /// x0 held an error (or a value the ABI never returns).
    Returned(FunctionId, ReturnError),
    /// VCPU_RUN succeeded but x1..x3 are not an exit of docs/abi.md section 6.
    BadExit([u64; 3]),
}

impl CallError {
    /// The ABI error, if x0 held one.
    pub fn abi_error(&self) -> Option<hvc_abi::Error> {
        match self {
            Self::Returned(_, ReturnError::Abi(error)) => Some(*error),
            _ => None,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::Returned(id, ReturnError::Abi(error)) => {
                write!(f, "{} returned {error}", id.name().unwrap_or("call"))
            }
            Self::Returned(id, ReturnError::Unknown(x0)) => write!(
                f,
                "{} returned x0 = {x0:#x}, which the ABI never returns",
                id.name().unwrap_or("call")
            ),
            Self::BadExit([x1, x2, x3]) => write!(
                f,
                "VCPU_RUN returned an exit the ABI does not define: x1={x1:#x} x2={x2:#x} x3={x3:#x}"
            ),
        }
    }
}

/// Makes `call` and returns x1..x3 on success.
pub fn make(call: HostCall) -> Result<[u64; 3], CallError> {
    let id = call.function_id();
    host_call(call)
        .into_result()
        .map_err(|error| CallError::Returned(id, error))
}

/// VENDOR_HYP_CALL_UID names this payload (W0..W3 = our UID).
pub fn uid_matches() -> bool {
    is_our_uid(host_call(HostCall::CallUid).to_regs())
}

/// FEATURES: the ABI version and the call bitmap.
pub fn features() -> Result<(Version, u64), CallError> {
    let [x1, x2, _] = make(HostCall::Features)?;
    // A version with bits [63:32] set is reported as 0.0, which no caller accepts.
    let version = Version::from_x1(x1).unwrap_or(Version { major: 0, minor: 0 });
    Ok((version, x2))
}

/// VM_CREATE: a new VM's handle.
pub fn vm_create(nr_vcpus: u32, ipa_bits: u32) -> Result<VmHandle, CallError> {
    let [x1, _, _] = make(HostCall::VmCreate { nr_vcpus, ipa_bits })?;
    Ok(VmHandle(x1))
}

/// VM_TOPUP: `nr` pages from `pfn` into the VM's pool.
pub fn vm_topup(handle: VmHandle, pfn: u64, nr: u32) -> Result<(), CallError> {
    make(HostCall::VmTopup { handle, pfn, nr }).map(drop)
}

/// VM_DONATE: `nr` pages from `pfn` become the guest's, mapped at `gfn`.
pub fn vm_donate(handle: VmHandle, pfn: u64, gfn: u64, nr: u32) -> Result<(), CallError> {
    make(HostCall::VmDonate {
        handle,
        pfn,
        gfn,
        nr,
    })
    .map(drop)
}

/// VCPU_CREATE: vCPU `vcpu` will start at `entry_ipa` with x0 = `x0`.
pub fn vcpu_create(handle: VmHandle, vcpu: u32, entry_ipa: u64, x0: u64) -> Result<(), CallError> {
    make(HostCall::VcpuCreate {
        handle,
        vcpu,
        entry_ipa,
        x0,
    })
    .map(drop)
}

/// VCPU_RUN: runs vCPU `vcpu` until it exits; `completion` completes the previous exit.
pub fn vcpu_run(handle: VmHandle, vcpu: u32, completion: u64) -> Result<Exit, CallError> {
    let regs = make(HostCall::VcpuRun {
        handle,
        vcpu,
        completion,
    })?;
    Exit::decode(regs).map_err(|_| CallError::BadExit(regs))
}

/// VM_DESTROY.
pub fn vm_destroy(handle: VmHandle) -> Result<(), CallError> {
    make(HostCall::VmDestroy { handle }).map(drop)
}

/// VM_RECLAIM: `nr` pages from `pfn` come back to the host, zeroed.
pub fn vm_reclaim(pfn: u64, nr: u32) -> Result<(), CallError> {
    make(HostCall::VmReclaim { pfn, nr }).map(drop)
}

/// The raw x0..x3 of `call`, for checks of error returns (x1..x3 must be 0).
pub fn raw(call: HostCall) -> Return {
    host_call(call)
}
