//! The PSCI relay: every SMC the host makes traps here (HCR_EL2.TSC).
//!
//! CPU_ON, CPU_SUSPEND and SYSTEM_SUSPEND name an entry point where a CPU should (re)start.
//! EL2 never passes the host's entry point to the firmware: it records it and passes its
//! own `secondary_entry`, so every CPU comes back through EL2 (vectors, MMU, host stage-2
//! installed) before it ERETs to the host's entry at EL1. A host can therefore never start
//! a CPU at EL2 or outside the payload.
//! For CPU_SUSPEND and SYSTEM_SUSPEND, if the firmware powers the CPU down it wakes at
//! EL2's entry and goes on to the host's entry from there; if the call returns (a standby
//! state, or an error) its result goes straight back to the host.
//!
//! EL2 passes its entry point to the firmware only through the SMC64 function ids. The
//! SMC32 forms of CPU_SUSPEND and SYSTEM_SUSPEND are NOT_SUPPORTED (and PSCI_FEATURES says
//! so), as pKVM's relay does: PSCI passes an SMC32 call's arguments in W registers, so the
//! firmware would keep only the low 32 bits of EL2's entry address and, with the payload
//! above 4 GiB, wake the CPU at an address the host owns, at EL2. CPU_ON_32 stays: EL2
//! always starts the target with CPU_ON_64 and its own entry; only the host's entry point
//! and context id are 32-bit, which is the host's business.
//! VERSION, FEATURES, AFFINITY_INFO, CPU_OFF and MIGRATE_INFO_TYPE are forwarded
//! unchanged. SYSTEM_OFF, SYSTEM_RESET and SYSTEM_RESET2 reach the firmware only after EL2
//! has wiped every guest's data (`system_reset`). The SMCCC discovery calls are answered as on
//! the HVC conduit. Anything else is SMCCC NOT_SUPPORTED.

use crate::cpu::{self, PowerState};
use crate::host_hvc::{self, NOT_SUPPORTED};
use crate::traps::TrapFrame;
use platform::psci::Conduit;
use smccc::psci::*;
use spin::Once;

/// PSCI return codes the relay produces itself.
const PSCI_INVALID_PARAMETERS: i64 = -2;
const PSCI_ALREADY_ON: i64 = -4;
const PSCI_ON_PENDING: i64 = -5;

static FIRMWARE: Once<Conduit> = Once::new();

/// Records how EL2 itself reaches the firmware's PSCI (the DTB's method).
pub fn init(conduit: Conduit) {
    FIRMWARE.call_once(|| conduit);
    crate::system_reset::enable_mem_protect();
}

/// How EL2 reaches the firmware (SMC unless the DTB said HVC).
pub fn firmware_conduit() -> Conduit {
    *FIRMWARE.get().unwrap_or(&Conduit::Smc)
}

/// Calls the firmware's PSCI `function` with x1-x3 = `args`; returns x0-x3.
pub fn firmware(function: u32, args: [u64; 3]) -> [u64; 4] {
    let mut regs = [0u64; 18];
    regs[0] = function.into();
    regs[1..4].copy_from_slice(&args);
    let out = platform::psci::call(*FIRMWARE.get().unwrap_or(&Conduit::Smc), regs);
    [out[0], out[1], out[2], out[3]]
}

unsafe extern "C" {
    fn secondary_entry();
}

fn el2_entry_point() -> u64 {
    secondary_entry as *const () as u64
}

pub fn handle_smc(frame: &mut TrapFrame) {
    let function = frame.x[0] as u32;
    let args = [frame.x[1], frame.x[2], frame.x[3]];
    let result: [u64; 4] = match function {
        PSCI_VERSION | PSCI_AFFINITY_INFO_32 | PSCI_AFFINITY_INFO_64 | PSCI_MIGRATE_INFO_TYPE => {
            firmware(function, args)
        }
        PSCI_SYSTEM_OFF | PSCI_SYSTEM_RESET | PSCI_SYSTEM_RESET2_32 | PSCI_SYSTEM_RESET2_64 => {
            crate::system_reset::relay(function, args)
        }
        PSCI_FEATURES => features(args[0] as u32),
        PSCI_CPU_OFF => cpu_off(),
        PSCI_CPU_ON_32 | PSCI_CPU_ON_64 => {
            let (entry, context) = if function == PSCI_CPU_ON_32 {
                (args[1] & 0xffff_ffff, args[2] & 0xffff_ffff)
            } else {
                (args[1], args[2])
            };
            [cpu_on(args[0], entry, context) as u64, 0, 0, 0]
        }
        PSCI_CPU_SUSPEND_64 => {
            let me = cpu::current();
            cpu::set_host_entry(me, args[1], args[2]);
            firmware(function, [args[0], el2_entry_point(), me as u64])
        }
        PSCI_SYSTEM_SUSPEND_64 => {
            let me = cpu::current();
            cpu::set_host_entry(me, args[0], args[1]);
            firmware(function, [el2_entry_point(), me as u64, 0])
        }
        // See the module comment: the firmware would truncate EL2's entry address.
        PSCI_CPU_SUSPEND_32 | PSCI_SYSTEM_SUSPEND_32 => [NOT_SUPPORTED, 0, 0, 0],
        _ => host_hvc::smccc_call(frame).unwrap_or([NOT_SUPPORTED, 0, 0, 0]),
    };
    frame.x[..4].copy_from_slice(&result);
}

/// PSCI_FEATURES: the firmware's answer, except for the SMCCC calls EL2 itself implements
/// and the calls the relay refuses.
fn features(queried: u32) -> [u64; 4] {
    match queried {
        smccc::arch::SMCCC_VERSION => [0, 0, 0, 0],
        PSCI_VERSION
        | PSCI_FEATURES
        | PSCI_AFFINITY_INFO_32
        | PSCI_AFFINITY_INFO_64
        | PSCI_SYSTEM_OFF
        | PSCI_SYSTEM_RESET
        | PSCI_SYSTEM_RESET2_32
        | PSCI_SYSTEM_RESET2_64
        | PSCI_MIGRATE_INFO_TYPE
        | PSCI_CPU_OFF
        | PSCI_CPU_ON_32
        | PSCI_CPU_ON_64
        | PSCI_CPU_SUSPEND_64
        | PSCI_SYSTEM_SUSPEND_64 => firmware(PSCI_FEATURES, [queried.into(), 0, 0]),
        _ => [NOT_SUPPORTED, 0, 0, 0],
    }
}

fn cpu_on(target_mpidr: u64, entry: u64, context: u64) -> i64 {
    let Some(target) = cpu::logical_id(target_mpidr) else {
        return PSCI_INVALID_PARAMETERS;
    };
    if let Err(state) = cpu::transition(target, PowerState::Off, PowerState::OnPending) {
        return match state {
            PowerState::OnPending => PSCI_ON_PENDING,
            _ => PSCI_ALREADY_ON,
        };
    }
    // The target reads these once it reaches `rust_secondary_main`.
    cpu::set_host_entry(target, entry, context);
    let result = firmware(
        PSCI_CPU_ON_64,
        [cpu::mpidr_of(target), el2_entry_point(), target as u64],
    )[0] as i64;
    if result != 0 {
        cpu::set_power(target, PowerState::Off);
    }
    result
}

fn cpu_off() -> [u64; 4] {
    let me = cpu::current();
    cpu::set_power(me, PowerState::Off);
    // Only returns on failure (DENIED): the CPU stays on.
    let result = firmware(PSCI_CPU_OFF, [0; 3]);
    cpu::set_power(me, PowerState::On);
    result
}
