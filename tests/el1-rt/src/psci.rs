//! PSCI calls over the conduit the DTB names (`/psci/method`).
//!
//! Results are returned raw (the PSCI status in W0, sign-extended), so that callers can
//! check for specific codes such as ALREADY_ON and print anything unexpected as is.

use crate::board::Conduit;
use core::sync::atomic::{AtomicU8, Ordering};
use smccc::psci::{
    PSCI_AFFINITY_INFO_64, PSCI_CPU_OFF, PSCI_CPU_ON_64, PSCI_SYSTEM_OFF, PSCI_VERSION,
};

/// PSCI AFFINITY_INFO result: all CPUs of the affinity instance are off.
pub const AFFINITY_OFF: i32 = 1;

const NO_CONDUIT: u8 = 0;
const SMC: u8 = 1;
const HVC: u8 = 2;

static CONDUIT: AtomicU8 = AtomicU8::new(NO_CONDUIT);

/// Selects the conduit for all later PSCI calls, on every CPU.
pub fn set_conduit(conduit: Conduit) {
    let value = match conduit {
        Conduit::Smc => SMC,
        Conduit::Hvc => HVC,
    };
    CONDUIT.store(value, Ordering::Release);
}

/// PSCI_VERSION: `(major << 16) | minor`, or a negative error.
pub fn version() -> i32 {
    call(PSCI_VERSION, 0, 0, 0)
}

/// CPU_ON (SMC64): start the CPU `mpidr` at `entry` with x0 = `context_id`.
pub fn cpu_on(mpidr: u64, entry: u64, context_id: u64) -> i32 {
    call(PSCI_CPU_ON_64, mpidr, entry, context_id)
}

/// CPU_OFF: only returns on failure, with the error.
pub fn cpu_off() -> i32 {
    call(PSCI_CPU_OFF, 0, 0, 0)
}

/// AFFINITY_INFO (SMC64) of the single CPU `mpidr` (lowest affinity level 0).
pub fn affinity_info(mpidr: u64) -> i32 {
    call(PSCI_AFFINITY_INFO_64, mpidr, 0, 0)
}

/// SYSTEM_OFF: only returns on failure, with the error.
pub fn system_off() -> i32 {
    call(PSCI_SYSTEM_OFF, 0, 0, 0)
}

fn call(function: u32, arg1: u64, arg2: u64, arg3: u64) -> i32 {
    let mut args = [0u64; 17];
    args[0] = arg1;
    args[1] = arg2;
    args[2] = arg3;
    let result = match CONDUIT.load(Ordering::Acquire) {
        SMC => smccc::smc64(function, args),
        HVC => smccc::hvc64(function, args),
        _ => return smccc::psci::error::NOT_SUPPORTED,
    };
    // PSCI returns an int32 in W0, also for the SMC64 functions.
    result[0] as u32 as i32
}

/// Any PSCI function by its id (SMC32 forms included), for tests of how the payload's relay
/// answers them. The status is W0, sign-extended.
pub fn call_function(function: u32, arg1: u64, arg2: u64, arg3: u64) -> i32 {
    call(function, arg1, arg2, arg3)
}
