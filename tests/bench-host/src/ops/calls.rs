//! Calls that touch no memory: an unknown HVC (the dispatch floor), SMCCC_VERSION (an
//! SMCCC call answered before the payload decodes its own calls), an unknown owner-6 HVC
//! (decoded and refused), FEATURES, and the floor itself (the same unknown HVC answered by
//! floor.rs's 8-instruction EL2).

use crate::config::Counts;
use crate::measured_loop::{Calls, measure};
use hvc_abi::{HostCall, Version};

/// A function id of SMCCC owner 7 (reserved): no firmware answers it, so it measures the
/// dispatcher alone: decode the trap, see the id is not ours, NOT_SUPPORTED.
pub const UNKNOWN_ID: u64 = 0xC700_0000;
/// An owner-6 id that is not a call of docs/abi.md: the payload's own decoder refuses it.
pub const UNKNOWN_VENDOR_ID: u64 = 0xC600_00FF;
/// SMCCC NOT_SUPPORTED as x0.
const NOT_SUPPORTED: u64 = u64::MAX;
/// SMCCC_VERSION (SMCCC owner 0).
const SMCCC_VERSION_ID: u64 = 0x8000_0000;
/// Calls of the floor loop (the peer was measured with 20,000).
const FLOOR_CALLS: u64 = 20_000;

fn id_only(id: u64) -> [u64; 8] {
    let mut regs = [0; 8];
    regs[0] = id;
    regs
}

/// The floor: run under floor.rs's EL2 only.
pub fn floor() {
    measure(
        "floor",
        &Calls::repeat(id_only(UNKNOWN_ID), FLOOR_CALLS, [NOT_SUPPORTED, 0]),
    );
}

pub fn run(counts: &Counts) {
    let n = counts.trivial;
    measure(
        "unknown_hvc",
        &Calls::repeat(id_only(UNKNOWN_ID), n, [NOT_SUPPORTED, 0]),
    );
    // Whatever version the payload reports, every call must report the same.
    let version = el1_rt::hvc::call(id_only(SMCCC_VERSION_ID)).x0;
    measure(
        "smccc_version",
        &Calls::repeat(id_only(SMCCC_VERSION_ID), n, [version, 0]),
    );
    measure(
        "unknown_vendor_hvc",
        &Calls::repeat(id_only(UNKNOWN_VENDOR_ID), n, [NOT_SUPPORTED, 0]),
    );
    measure(
        "features",
        &Calls::repeat(
            HostCall::Features.encode(),
            n,
            [0, Version::CURRENT.to_x1()],
        ),
    );
}
