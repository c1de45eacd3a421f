//! Calls the host makes (HVC #0 from EL1): decode on the payload side, encode on the host.
//!
//! `decode` performs every check that needs no state, in the documented order:
//! the function id (NOT_SUPPORTED), then INVALID_PARAMETER (MBZ registers, zero counts,
//! alignment, enumerated values), then RANGE (count limits, address limits, wraps).
//! Checks against a VM, a vCPU or page states are the payload's.

use crate::args::{check_mbz, pack};
use crate::limits::{
    MAX_IPA_BITS, MAX_VCPUS, MIN_IPA_BITS, check_gfn_range, check_ipa, check_nr_limit,
    check_nr_nonzero, check_pfn_range,
};
use crate::{Error, FunctionId, VmHandle};

/// A decoded host call. Field names are the argument names of `docs/abi.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostCall {
    /// SMCCC `VENDOR_HYP_CALL_UID`: x0..x3 = our UID. Arguments ignored.
    CallUid,
    /// FEATURES: x1 = version, x2 = call bitmap.
    Features,
    /// HOST_SHARE_HYP(pfn).
    HostShareHyp {
        /// Page frame number (PA >> 12).
        pfn: u64,
    },
    /// HOST_UNSHARE_HYP(pfn).
    HostUnshareHyp {
        /// Page frame number.
        pfn: u64,
    },
    /// VM_CREATE(nr_vcpus, ipa_bits) -> x1 = handle.
    VmCreate {
        /// 1..=MAX_VCPUS.
        nr_vcpus: u32,
        /// MIN_IPA_BITS..=MAX_IPA_BITS.
        ipa_bits: u32,
    },
    /// VM_TOPUP(handle, pfn, nr).
    VmTopup {
        /// The VM.
        handle: VmHandle,
        /// First page.
        pfn: u64,
        /// Page count, 1..=MAX_PAGES_PER_CALL.
        nr: u32,
    },
    /// VM_DONATE(handle, pfn, gfn, nr).
    VmDonate {
        /// The VM.
        handle: VmHandle,
        /// First host page.
        pfn: u64,
        /// First guest frame (IPA >> 12).
        gfn: u64,
        /// Page count.
        nr: u32,
    },
    /// VCPU_CREATE(handle, vcpu, entry_ipa, x0); `entry_ipa` and `x0` are 0 for every
    /// vCPU but 0 (the others start powered off).
    VcpuCreate {
        /// The VM.
        handle: VmHandle,
        /// vCPU index, below MAX_VCPUS.
        vcpu: u32,
        /// Where the vCPU starts; 4-byte aligned.
        entry_ipa: u64,
        /// The vCPU's x0 at entry.
        x0: u64,
    },
    /// VCPU_RUN(handle, vcpu, completion) -> x1..x3 = exit.
    VcpuRun {
        /// The VM.
        handle: VmHandle,
        /// vCPU index.
        vcpu: u32,
        /// MMIO read data or GUEST_HVC result for the previous exit; otherwise 0.
        completion: u64,
    },
    /// VM_DESTROY(handle).
    VmDestroy {
        /// The VM.
        handle: VmHandle,
    },
    /// VM_RECLAIM(pfn, nr).
    VmReclaim {
        /// First page.
        pfn: u64,
        /// Page count.
        nr: u32,
    },
}

impl HostCall {
    /// Decodes x0..x7 of a host HVC.
    ///
    /// Errors: NOT_SUPPORTED for any id that is not a host call of this ABI (including
    /// SMC32 and yielding forms of our numbers and the guest-only calls);
    /// INVALID_PARAMETER and RANGE as `docs/abi.md` lists them per call.
    pub fn decode(regs: &[u64; 8]) -> Result<Self, Error> {
        let [_, a1, a2, a3, a4, _, _, _] = *regs;
        match FunctionId::from_x0(regs[0]) {
            FunctionId::VENDOR_HYP_CALL_UID => Ok(Self::CallUid),
            FunctionId::FEATURES => {
                check_mbz(regs, 1)?;
                Ok(Self::Features)
            }
            FunctionId::HOST_SHARE_HYP => {
                check_mbz(regs, 2)?;
                check_pfn_range(a1, 1)?;
                Ok(Self::HostShareHyp { pfn: a1 })
            }
            FunctionId::HOST_UNSHARE_HYP => {
                check_mbz(regs, 2)?;
                check_pfn_range(a1, 1)?;
                Ok(Self::HostUnshareHyp { pfn: a1 })
            }
            FunctionId::VM_CREATE => {
                check_mbz(regs, 3)?;
                if a1 == 0 || !(MIN_IPA_BITS as u64..=MAX_IPA_BITS as u64).contains(&a2) {
                    return Err(Error::InvalidParameter);
                }
                if a1 > MAX_VCPUS as u64 {
                    return Err(Error::Range);
                }
                Ok(Self::VmCreate {
                    nr_vcpus: a1 as u32,
                    ipa_bits: a2 as u32,
                })
            }
            FunctionId::VM_TOPUP => {
                check_mbz(regs, 4)?;
                check_nr_nonzero(a3)?;
                let nr = check_nr_limit(a3)?;
                check_pfn_range(a2, nr)?;
                Ok(Self::VmTopup {
                    handle: VmHandle(a1),
                    pfn: a2,
                    nr,
                })
            }
            FunctionId::VM_DONATE => {
                let (handle, pfn, gfn, nr) = decode_pfn_gfn_nr(regs)?;
                Ok(Self::VmDonate {
                    handle,
                    pfn,
                    gfn,
                    nr,
                })
            }
            FunctionId::VCPU_CREATE => {
                check_mbz(regs, 5)?;
                if !a3.is_multiple_of(4) {
                    return Err(Error::InvalidParameter);
                }
                // Only the boot vCPU gets a host-chosen entry point and x0; the others are
                // created powered off and start at the guest's PSCI CPU_ON.
                if a2 != 0 && (a3 != 0 || a4 != 0) {
                    return Err(Error::InvalidParameter);
                }
                let vcpu = check_vcpu_index(a2)?;
                check_ipa(a3, MAX_IPA_BITS)?;
                Ok(Self::VcpuCreate {
                    handle: VmHandle(a1),
                    vcpu,
                    entry_ipa: a3,
                    x0: a4,
                })
            }
            FunctionId::VCPU_RUN => {
                check_mbz(regs, 4)?;
                let vcpu = check_vcpu_index(a2)?;
                Ok(Self::VcpuRun {
                    handle: VmHandle(a1),
                    vcpu,
                    completion: a3,
                })
            }
            FunctionId::VM_DESTROY => {
                check_mbz(regs, 2)?;
                Ok(Self::VmDestroy {
                    handle: VmHandle(a1),
                })
            }
            FunctionId::VM_RECLAIM => {
                check_mbz(regs, 3)?;
                check_nr_nonzero(a2)?;
                let nr = check_nr_limit(a2)?;
                check_pfn_range(a1, nr)?;
                Ok(Self::VmReclaim { pfn: a1, nr })
            }
            _ => Err(Error::NotSupported),
        }
    }

    /// The function id of this call.
    pub const fn function_id(&self) -> FunctionId {
        match self {
            Self::CallUid => FunctionId::VENDOR_HYP_CALL_UID,
            Self::Features => FunctionId::FEATURES,
            Self::HostShareHyp { .. } => FunctionId::HOST_SHARE_HYP,
            Self::HostUnshareHyp { .. } => FunctionId::HOST_UNSHARE_HYP,
            Self::VmCreate { .. } => FunctionId::VM_CREATE,
            Self::VmTopup { .. } => FunctionId::VM_TOPUP,
            Self::VmDonate { .. } => FunctionId::VM_DONATE,
            Self::VcpuCreate { .. } => FunctionId::VCPU_CREATE,
            Self::VcpuRun { .. } => FunctionId::VCPU_RUN,
            Self::VmDestroy { .. } => FunctionId::VM_DESTROY,
            Self::VmReclaim { .. } => FunctionId::VM_RECLAIM,
        }
    }

    /// x0..x7 for the HVC: id in x0, arguments from x1, every other register zero.
    /// Encodes the fields as given, valid or not, so tests can send bad calls.
    pub fn encode(&self) -> [u64; 8] {
        let id = self.function_id();
        match *self {
            Self::CallUid | Self::Features => pack(id, &[]),
            Self::HostShareHyp { pfn } | Self::HostUnshareHyp { pfn } => pack(id, &[pfn]),
            Self::VmCreate { nr_vcpus, ipa_bits } => pack(id, &[nr_vcpus.into(), ipa_bits.into()]),
            Self::VmTopup { handle, pfn, nr } => pack(id, &[handle.raw(), pfn, nr.into()]),
            Self::VmDonate {
                handle,
                pfn,
                gfn,
                nr,
            } => pack(id, &[handle.raw(), pfn, gfn, nr.into()]),
            Self::VcpuCreate {
                handle,
                vcpu,
                entry_ipa,
                x0,
            } => pack(id, &[handle.raw(), vcpu.into(), entry_ipa, x0]),
            Self::VcpuRun {
                handle,
                vcpu,
                completion,
            } => pack(id, &[handle.raw(), vcpu.into(), completion]),
            Self::VmDestroy { handle } => pack(id, &[handle.raw()]),
            Self::VmReclaim { pfn, nr } => pack(id, &[pfn, nr.into()]),
        }
    }
}

/// The arguments of VM_DONATE: (handle, pfn, gfn, nr), x5..x7 MBZ.
fn decode_pfn_gfn_nr(regs: &[u64; 8]) -> Result<(VmHandle, u64, u64, u32), Error> {
    let [_, handle, pfn, gfn, nr, _, _, _] = *regs;
    check_mbz(regs, 5)?;
    check_nr_nonzero(nr)?;
    let nr = check_nr_limit(nr)?;
    check_pfn_range(pfn, nr)?;
    check_gfn_range(gfn, nr, MAX_IPA_BITS)?;
    Ok((VmHandle(handle), pfn, gfn, nr))
}

/// A vCPU index must be below MAX_VCPUS, else RANGE.
fn check_vcpu_index(index: u64) -> Result<u32, Error> {
    if index < MAX_VCPUS as u64 {
        Ok(index as u32)
    } else {
        Err(Error::Range)
    }
}
