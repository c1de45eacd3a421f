//! The guest's SMCCC architecture and TRNG calls (docs/abi.md 5.8): answered by EL2, or by
//! the firmware through EL2, never by the host, which could tell a guest that no Spectre
//! mitigation is needed or hand it chosen "entropy".
//!
//! EL2 asks the firmware only what the firmware says it has: an SMCCC architecture call
//! or a TRNG call reaches it only if PSCI_FEATURES(SMCCC_VERSION) succeeds and
//! SMCCC_VERSION is 1.1 or later (SMCCC v1.4 section 7.2.1: a v1.0 implementation may
//! treat those ids as undefined; QEMU's built-in PSCI is one), and TRNG calls only if
//! TRNG_VERSION answers. Otherwise the guest gets NOT_SUPPORTED.

use crate::host_hvc::{NOT_SUPPORTED, SMCCC_VERSION_1_1};
use crate::psci_relay::firmware;
use hvc_abi::GuestSmccc;
use hvc_abi::smccc::{GUEST_SMCCC_VERSION, TRNG_VERSION};
use smccc::arch::{SMCCC_ARCH_FEATURES, SMCCC_VERSION};
use smccc::psci::PSCI_FEATURES;
use spin::Once;

/// What the firmware offers, asked once.
struct Firmware {
    /// SMCCC 1.1 or later: SMCCC_ARCH_FEATURES may be asked.
    smccc_1_1: bool,
    /// TRNG_VERSION answered with a version.
    trng: bool,
}

static FIRMWARE: Once<Firmware> = Once::new();

fn firmware_offers() -> &'static Firmware {
    FIRMWARE.call_once(|| {
        let smccc_1_1 = firmware(PSCI_FEATURES, [SMCCC_VERSION.into(), 0, 0])[0] == 0
            && (firmware(SMCCC_VERSION, [0; 3])[0] as i64) >= SMCCC_VERSION_1_1 as i64;
        let trng = smccc_1_1 && (firmware(TRNG_VERSION, [0; 3])[0] as i64) > 0;
        Firmware { smccc_1_1, trng }
    })
}

/// x0..x3 for the guest.
pub fn handle(call: GuestSmccc) -> [u64; 4] {
    let not_supported = [NOT_SUPPORTED, 0, 0, 0];
    match call {
        GuestSmccc::Version => [GUEST_SMCCC_VERSION, 0, 0, 0],
        GuestSmccc::ArchFeatures { function_id } => match function_id {
            SMCCC_VERSION | SMCCC_ARCH_FEATURES => [0, 0, 0, 0],
            // The workarounds: whatever the firmware says of them (its own x0 only).
            _ if firmware_offers().smccc_1_1 => [
                firmware(SMCCC_ARCH_FEATURES, [function_id.into(), 0, 0])[0],
                0,
                0,
                0,
            ],
            _ => not_supported,
        },
        GuestSmccc::Workaround { function_id, x1 } => {
            let offered = firmware_offers().smccc_1_1
                && firmware(SMCCC_ARCH_FEATURES, [function_id.into(), 0, 0])[0] as i64 >= 0;
            if offered {
                [firmware(function_id, [x1, 0, 0])[0], 0, 0, 0]
            } else {
                not_supported
            }
        }
        GuestSmccc::Trng { regs } if firmware_offers().trng => {
            firmware(regs[0] as u32, [regs[1], regs[2], regs[3]])
        }
        GuestSmccc::Trng { .. } => not_supported,
    }
}
