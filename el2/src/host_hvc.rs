//! Host HVCs: the SMCCC discovery calls and the vendor-hypervisor UID. Everything else is
//! SMCCC NOT_SUPPORTED (-1).

use crate::traps::TrapFrame;
use smccc::arch::{SMCCC_ARCH_FEATURES, SMCCC_VERSION};

/// SMCCC version the payload implements: 1.1 (results in x0-x3, x4-x17 preserved).
pub const SMCCC_VERSION_1_1: u64 = 0x1_0001;
/// SMCCC NOT_SUPPORTED as a 64-bit return value.
pub const NOT_SUPPORTED: u64 = -1i64 as u64;

pub fn handle(frame: &mut TrapFrame) {
    frame.x[0] = match smccc_call(frame) {
        Some(results) => {
            frame.x[1] = results[1];
            frame.x[2] = results[2];
            frame.x[3] = results[3];
            results[0]
        }
        None => NOT_SUPPORTED,
    };
}

/// The SMCCC calls EL2 answers on either conduit (HVC, or SMC through the PSCI relay):
/// `Some([x0..x3])`, or `None` for "not ours".
pub fn smccc_call(frame: &TrapFrame) -> Option<[u64; 4]> {
    let function = frame.x[0] as u32;
    match function {
        SMCCC_VERSION => Some([SMCCC_VERSION_1_1, 0, 0, 0]),
        SMCCC_ARCH_FEATURES => {
            let queried = frame.x[1] as u32;
            let supported =
                matches!(queried, SMCCC_VERSION | SMCCC_ARCH_FEATURES);
            Some([if supported { 0 } else { NOT_SUPPORTED }, 0, 0, 0])
        }
        hvc_abi::VENDOR_HYP_CALL_UID => {
            let uid = hvc_abi::VENDOR_HYP_UID_REGS;
            Some([uid[0].into(), uid[1].into(), uid[2].into(), uid[3].into()])
        }
        _ => None,
    }
}
