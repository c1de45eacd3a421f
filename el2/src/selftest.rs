//! Debug hypercalls of test builds (`--features selftest`), never in the release payload.
//!
//! - `DEBUG_CHECK_INVARIANTS` (0xC600_3F00): walks the ownership record, the host stage-2
//!   and every guest stage-2 and checks invariants I1-I4 (`stage2::Ownership::
//!   check_invariants`). x0 = 0 if they hold; otherwise x0 = DENIED (-4), x1 = the
//!   invariant's number (1-4), x2 = the address concerned, and EL2 logs the violation.
//!
//! - `DEBUG_RECORD_ENTRY_ADDRESS` (0xC600_3F01, x1 = a physical address): x0 = 0 and
//!   x1 = the address of the ownership-record entry of that page, or x0 = RANGE outside
//!   RAM. It stands in for the oracle with which an attacker found the record (the DMA
//!   tests aim fw_cfg at it).
//!
//! The id lies in the vendor-hypervisor range but outside the ABI's numbers, so a release
//! payload answers it NOT_SUPPORTED like any unknown call.

use crate::record;
use crate::traps::TrapFrame;
use hvc_abi::Error;

pub const DEBUG_CHECK_INVARIANTS: u32 = 0xC600_3F00;
pub const DEBUG_RECORD_ENTRY_ADDRESS: u32 = 0xC600_3F01;

pub fn debug_call(frame: &TrapFrame) -> Option<[u64; 4]> {
    if frame.x[0] as u32 == DEBUG_RECORD_ENTRY_ADDRESS {
        let record = record::lock()?;
        return Some(match record.entry_address(frame.x[1] as usize) {
            Some(address) => [0, address as u64, 0, 0],
            None => [Error::Range.as_x0(), 0, 0, 0],
        });
    }
    if frame.x[0] as u32 != DEBUG_CHECK_INVARIANTS {
        return None;
    }
    let record = record::lock()?;
    Some(match record.check_invariants() {
        Ok(()) => [0, 0, 0, 0],
        Err(v) => {
            log::error!("self-test: {v}");
            let number = v.invariant.trim_start_matches('I').parse().unwrap_or(0);
            [Error::Denied.as_x0(), number, v.address as u64, 0]
        }
    })
}
