//! PSCI for protected guests (docs/abi.md 5.5): the payload is the guest's PSCI
//! implementation. The host never sees these calls, so it cannot start a vCPU the guest
//! did not start, choose its entry point, or lie to the guest about its vCPUs' power
//! state (issue 9, attack 2).

use crate::vm;
use hvc_abi::Exit;
use hvc_abi::psci::{
    AFFINITY_OFF, AFFINITY_ON, GUEST_PSCI_VERSION, GuestPsci, MIGRATE_INFO_NO_TRUSTED_OS, PsciError,
};

/// What a guest PSCI call does: the guest's x0 (x1..x3 are 0), and the exit the vCPU
/// takes before it executes another instruction, if any.
pub struct Outcome {
    pub x0: u64,
    pub exit: Option<Exit>,
}

const fn answer(x0: u64) -> Outcome {
    Outcome { x0, exit: None }
}

/// Serves `call` for a vCPU of the VM in table slot `vm_slot`.
pub fn handle(call: GuestPsci, vm_slot: usize) -> Outcome {
    match call {
        GuestPsci::Version => answer(GUEST_PSCI_VERSION.into()),
        // As KVM does: a suspend is a wait that ends at once (PSCI lets the implementation
        // enter a shallower state than the one asked for; from a standby state the call
        // returns SUCCESS).
        GuestPsci::CpuSuspend => answer(0),
        GuestPsci::CpuOff => Outcome {
            x0: 0,
            exit: Some(Exit::VcpuOff),
        },
        GuestPsci::CpuOn {
            target_cpu,
            entry,
            context_id,
        } => match vm::guest_cpu_on(vm_slot, target_cpu, entry, context_id) {
            Ok(vcpu) => Outcome {
                x0: 0,
                exit: Some(Exit::VcpuStarted { vcpu }),
            },
            Err(e) => answer(e.as_x0()),
        },
        GuestPsci::AffinityInfo {
            target_affinity,
            lowest_level,
        } => {
            if lowest_level != 0 {
                return answer(PsciError::InvalidParameters.as_x0());
            }
            match vm::guest_affinity_info(vm_slot, target_affinity) {
                Ok(true) => answer(AFFINITY_ON),
                Ok(false) => answer(AFFINITY_OFF),
                Err(e) => answer(e.as_x0()),
            }
        }
        GuestPsci::MigrateInfoType => answer(MIGRATE_INFO_NO_TRUSTED_OS),
        GuestPsci::Features { function_id } => answer(GuestPsci::features(function_id)),
    }
}
