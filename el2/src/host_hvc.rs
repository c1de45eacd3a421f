//! Host HVCs: the SMCCC discovery calls, the vendor-hypervisor UID, and the payload's own
//! calls (docs/abi.md section 4), decoded by `hvc_abi::HostCall`. Everything else is SMCCC
//! NOT_SUPPORTED (-1).

use crate::traps::TrapFrame;
use crate::vm;
use hvc_abi::{Error, FunctionId, HostCall, Return, Version};
use smccc::arch::{SMCCC_ARCH_FEATURES, SMCCC_VERSION};

/// SMCCC version the payload implements: 1.1 (results in x0-x3, x4-x17 preserved).
pub const SMCCC_VERSION_1_1: u64 = 0x1_0001;
/// SMCCC NOT_SUPPORTED as a 64-bit return value.
pub const NOT_SUPPORTED: u64 = -1i64 as u64;

pub fn handle(frame: &mut TrapFrame) {
    let result = match smccc_call(frame) {
        Some(r) => r,
        #[cfg(feature = "selftest")]
        None if let Some(r) = crate::selftest::debug_call(frame) => r,
        None if FunctionId::from_x0(frame.x[0]).is_vendor_hyp_service() => {
            // EL2 takes no interrupts: the SMMU's fault events are collected when the host
            // makes one of the payload's own calls (the ones that change what DMA may
            // reach), not on the SMCCC discovery or foreign-owner paths.
            crate::smmu::poll_events();
            let mut regs = [0u64; 8];
            regs.copy_from_slice(&frame.x[..8]);
            host_call(&regs).to_regs()
        }
        None => [NOT_SUPPORTED, 0, 0, 0],
    };
    frame.x[..4].copy_from_slice(&result);
}

fn host_call(regs: &[u64; 8]) -> Return {
    let call = match HostCall::decode(regs) {
        Ok(call) => call,
        Err(e) => return Return::err(e),
    };
    let done = |r: Result<(), Error>| Return::from_result(r.map(|()| [0; 3]));
    match call {
        HostCall::CallUid => Return::uid(),
        HostCall::Features => {
            Return::features(Version::CURRENT, hvc_abi::function_id::HOST_FEATURES_BITMAP)
        }
        HostCall::HostShareHyp { pfn } => done(vm::host_share_hyp(pfn, true)),
        HostCall::HostUnshareHyp { pfn } => done(vm::host_share_hyp(pfn, false)),
        HostCall::VmCreate { nr_vcpus, ipa_bits } => match vm::vm_create(nr_vcpus, ipa_bits) {
            Ok(handle) => Return::handle(handle),
            Err(e) => Return::err(e),
        },
        HostCall::VmTopup { handle, pfn, nr } => done(vm::vm_topup(handle, pfn, nr)),
        HostCall::VmDonate {
            handle,
            pfn,
            gfn,
            nr,
        } => done(vm::vm_donate(handle, pfn, gfn, nr)),
        HostCall::VcpuCreate {
            handle,
            vcpu,
            entry_ipa,
            x0,
        } => done(vm::vcpu_create(handle, vcpu, entry_ipa, x0)),
        HostCall::VcpuRun {
            handle,
            vcpu,
            completion,
        } => match vm::vcpu_run(handle, vcpu, completion) {
            Ok(exit) => Return::exit(exit),
            Err(e) => Return::err(e),
        },
        HostCall::VmDestroy { handle } => done(vm::vm_destroy(handle)),
        HostCall::VmReclaim { pfn, nr } => done(vm::vm_reclaim(pfn, nr)),
    }
}

/// The SMCCC calls EL2 answers on either conduit (HVC, or SMC through the PSCI relay):
/// `Some([x0..x3])`, or `None` for "not ours".
pub fn smccc_call(frame: &TrapFrame) -> Option<[u64; 4]> {
    let function = frame.x[0] as u32;
    match function {
        SMCCC_VERSION => Some([SMCCC_VERSION_1_1, 0, 0, 0]),
        SMCCC_ARCH_FEATURES => {
            let queried = frame.x[1] as u32;
            let supported = matches!(queried, SMCCC_VERSION | SMCCC_ARCH_FEATURES);
            let answer = crate::firmware_smccc::workaround_features(queried)
                .unwrap_or(if supported { 0 } else { NOT_SUPPORTED });
            Some([answer, 0, 0, 0])
        }
        hvc_abi::VENDOR_HYP_CALL_UID => {
            let uid = hvc_abi::VENDOR_HYP_UID_REGS;
            Some([uid[0].into(), uid[1].into(), uid[2].into(), uid[3].into()])
        }
        // The Spectre workarounds: the firmware's to answer and perform.
        _ => crate::firmware_smccc::workaround_call(function, frame.x[1]),
    }
}
