//! Step 7: the payload's carve-out is out of the host's reach. A read of the first word of
//! each of its regions must not return data: EL2 injects a synchronous external abort,
//! which the exception handler records and steps over.

use crate::board::RegionList;
use crate::console::say;
use crate::exceptions::{self, EC_DATA_ABORT_SAME_EL};
use crate::exit::fail;
use core::arch::asm;

/// ESR_ELx.ISS.DFSC for a synchronous external abort (not on a translation table walk).
const DFSC_SYNC_EXTERNAL_ABORT: u64 = 0x10;
/// Left in the destination register when the load is stepped over; only for messages.
const NOT_READ: u64 = 0xdead_beef_dead_beef;

pub fn check_carve_out(carve_outs: &RegionList) {
    if carve_outs.is_empty() {
        fail!("DTB has no /reserved-memory/el2@... node for the payload's carve-out");
    }
    for region in carve_outs.iter() {
        check_read_aborts(region.base);
    }
}

fn check_read_aborts(address: usize) {
    exceptions::expect_data_abort();
    let value = read_u64(address);
    let Some(abort) = exceptions::take_data_abort() else {
        fail!("read EL2 carve-out at {address:#x}: got {value:#x}");
    };
    let ec = (abort.esr >> 26) & 0x3f;
    let dfsc = abort.esr & 0x3f;
    if ec != EC_DATA_ABORT_SAME_EL
        || dfsc != DFSC_SYNC_EXTERNAL_ABORT
        || abort.far != address as u64
    {
        fail!(
            "read EL2 carve-out at {address:#x} took the wrong fault: ESR_EL1={:#x} (EC {ec:#x}, DFSC {dfsc:#x}), FAR_EL1={:#x}; expected EC {EC_DATA_ABORT_SAME_EL:#x}, DFSC {DFSC_SYNC_EXTERNAL_ABORT:#x}, FAR_EL1={address:#x}",
            abort.esr,
            abort.far
        );
    }
    say!(
        "carve-out read aborted (ESR_EL1={:#x}, FAR_EL1={:#x})",
        abort.esr,
        abort.far
    );
}

/// Reads the u64 at `address` with exactly one `ldr`, which the compiler can neither move
/// nor drop. If the load aborts, the handler skips it and `NOT_READ` is returned.
fn read_u64(address: usize) -> u64 {
    let value: u64;
    // SAFETY: `address` is identity-mapped Normal memory (the carve-out lies in RAM, see
    // mmu.rs), so the load itself cannot corrupt anything; if stage 2 refuses it, the
    // armed exception handler steps over it. The handler is an ordinary Rust call that does
    // not save FP/SIMD registers, hence clobber_abi("C").
    unsafe {
        asm!(
            "ldr x1, [x0]",
            in("x0") address,
            inout("x1") NOT_READ => value,
            clobber_abi("C"),
            options(nostack),
        );
    }
    value
}
