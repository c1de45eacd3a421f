//! The SMCCC 1.1 architecture calls that only the firmware can answer: the Spectre
//! mitigations SMCCC_ARCH_WORKAROUND_1 (branch predictor invalidation, CVE-2017-5715),
//! _2 (speculative store bypass, CVE-2018-3639) and _3 (branch history, Spectre-BHB).
//!
//! A host's ARCH_FEATURES query for one of them, and the call itself, go to the firmware
//! through EL2's own conduit, so the host learns the truth about the CPU it runs on (the
//! answer can differ between CPUs, so nothing is cached) and can ask for the mitigation.
//! EL2 first checks that the firmware implements SMCCC 1.1 at all, as Linux does
//! (PSCI_FEATURES(SMCCC_VERSION), then SMCCC_VERSION): calling an unimplemented SMC would
//! be an undefined instruction at EL2 on a machine without EL3 (QEMU's `virt`, whose
//! built-in PSCI answers PSCI_FEATURES(SMCCC_VERSION) with NOT_SUPPORTED).

use crate::psci_relay;
use smccc::arch::{
    SMCCC_ARCH_WORKAROUND_1, SMCCC_ARCH_WORKAROUND_2, SMCCC_ARCH_WORKAROUND_3, SMCCC_VERSION,
};
use spin::Once;

/// SMCCC NOT_SUPPORTED.
const NOT_SUPPORTED: u64 = -1i64 as u64;
const SMCCC_1_1: u64 = 0x1_0001;

static FIRMWARE_HAS_SMCCC_1_1: Once<bool> = Once::new();

fn firmware(function: u32, x1: u64) -> [u64; 4] {
    let mut regs = [0u64; 18];
    regs[0] = function.into();
    regs[1] = x1;
    let out = platform::psci::call(psci_relay::firmware_conduit(), regs);
    [out[0], out[1], out[2], out[3]]
}

fn firmware_has_smccc_1_1() -> bool {
    *FIRMWARE_HAS_SMCCC_1_1.call_once(|| {
        let psci_features = smccc::psci::PSCI_FEATURES;
        if firmware(psci_features, SMCCC_VERSION.into())[0] != 0 {
            return false;
        }
        let version = firmware(SMCCC_VERSION, 0)[0];
        // Negative values are errors; otherwise major in [30:16], minor in [15:0].
        (version as i64) >= 0 && version >= SMCCC_1_1
    })
}

const fn is_workaround(function: u32) -> bool {
    matches!(
        function,
        SMCCC_ARCH_WORKAROUND_1 | SMCCC_ARCH_WORKAROUND_2 | SMCCC_ARCH_WORKAROUND_3
    )
}

/// The firmware's ARCH_FEATURES answer for `queried`, if it is one of the workarounds
/// (NOT_SUPPORTED if the firmware has no SMCCC 1.1).
pub fn workaround_features(queried: u32) -> Option<u64> {
    if !is_workaround(queried) {
        return None;
    }
    Some(if firmware_has_smccc_1_1() {
        firmware(smccc::arch::SMCCC_ARCH_FEATURES, queried.into())[0]
    } else {
        NOT_SUPPORTED
    })
}

/// Makes the workaround call `function` (x1 = its argument, for _2) at the firmware, if
/// it is one and the firmware has SMCCC 1.1.
pub fn workaround_call(function: u32, x1: u64) -> Option<[u64; 4]> {
    if !is_workaround(function) {
        return None;
    }
    Some(if firmware_has_smccc_1_1() {
        firmware(function, x1)
    } else {
        [NOT_SUPPORTED, 0, 0, 0]
    })
}
