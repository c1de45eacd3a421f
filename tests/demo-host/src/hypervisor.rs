//! Checks of the payload's hypervisor-call surface: SMCCC version and features, the vendor
//! hypervisor UID, and NOT_SUPPORTED for calls nobody implements (over HVC and SMC).

use el1_rt::{fail, say};
use hvc_abi::{VENDOR_HYP_CALL_UID, VENDOR_HYP_UID_REGS as PAYLOAD_UID};
use smccc::arch::{SMCCC_ARCH_FEATURES, SMCCC_VERSION};

/// A vendor-hypervisor fast call (SMC64) that the payload's ABI will never allocate.
const UNKNOWN_HVC: u32 = 0xC600_3FFF;
/// An OEM-service fast call (SMC64) that nothing on this machine implements.
const UNKNOWN_SMC: u32 = 0xC300_0001;

/// SMCCC's "unknown function" result: -1, sign-extended to all of X0.
const NOT_SUPPORTED: u64 = u64::MAX;

/// SMCCC v1.1 is the first with SMCCC_VERSION and SMCCC_ARCH_FEATURES.
const MIN_SMCCC_VERSION: u32 = 0x1_0001;

/// Step 2: SMCCC_VERSION (must be at least 1.1) and SMCCC_ARCH_FEATURES(SMCCC_VERSION).
pub fn check_smccc_version() {
    let version = hvc32_result(SMCCC_VERSION, 0);
    if version < 0 {
        fail!("HVC SMCCC_VERSION returned {version}");
    }
    let version = version as u32;
    say!("SMCCC version {}.{}", version >> 16, version & 0xffff);
    if version < MIN_SMCCC_VERSION {
        fail!("SMCCC version {:#x} is older than 1.1", version);
    }
    let features = hvc32_result(SMCCC_ARCH_FEATURES, u64::from(SMCCC_VERSION));
    say!("SMCCC_ARCH_FEATURES(SMCCC_VERSION) returned {features}");
}

/// Step 3: the vendor hypervisor UID identifies the payload.
pub fn check_vendor_uid() {
    let result = hvc(VENDOR_HYP_CALL_UID, 0);
    // A 32-bit call: the UID is in W0..W3.
    let uid = [
        result[0] as u32,
        result[1] as u32,
        result[2] as u32,
        result[3] as u32,
    ];
    if uid != PAYLOAD_UID {
        fail!(
            "vendor hypervisor UID is {:#010x} {:#010x} {:#010x} {:#010x}, expected {:#010x} {:#010x} {:#010x} {:#010x}",
            uid[0],
            uid[1],
            uid[2],
            uid[3],
            PAYLOAD_UID[0],
            PAYLOAD_UID[1],
            PAYLOAD_UID[2],
            PAYLOAD_UID[3]
        );
    }
    say!("vendor hypervisor UID matches");
}

/// Step 4: an unknown HVC and an unknown SMC both return NOT_SUPPORTED in all of X0.
pub fn check_unknown_calls() {
    let x0 = hvc(UNKNOWN_HVC, 0)[0];
    if x0 != NOT_SUPPORTED {
        fail!("unknown HVC {UNKNOWN_HVC:#x} returned {x0:#x}, expected NOT_SUPPORTED (-1)");
    }
    say!("unknown HVC returned NOT_SUPPORTED");

    // A call of another service (here OEM, owner 3) over HVC: the payload's vector
    // answers it without entering Rust.
    let x0 = hvc(UNKNOWN_SMC, 0)[0];
    if x0 != NOT_SUPPORTED {
        fail!(
            "HVC {UNKNOWN_SMC:#x} of another service returned {x0:#x}, expected NOT_SUPPORTED (-1)"
        );
    }
    say!("HVC of another service returned NOT_SUPPORTED");

    let x0 = smccc::smc64(UNKNOWN_SMC, [0; 17])[0];
    if x0 != NOT_SUPPORTED {
        fail!("unknown SMC {UNKNOWN_SMC:#x} returned {x0:#x}, expected NOT_SUPPORTED (-1)");
    }
    say!("unknown SMC returned NOT_SUPPORTED");
}

fn hvc(function: u32, arg1: u64) -> [u64; 18] {
    let mut args = [0u64; 17];
    args[0] = arg1;
    smccc::hvc64(function, args)
}

/// The W0 result of a 32-bit (SMC32-convention) call, as a signed value.
fn hvc32_result(function: u32, arg1: u64) -> i32 {
    hvc(function, arg1)[0] as u32 as i32
}
