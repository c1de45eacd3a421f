//! Step 7: the payload's carve-out is out of the host's reach. A read of the first word of
//! each of its regions must not return data: EL2 injects a synchronous external abort,
//! which el1-rt's probe catches.

use el1_rt::exceptions::{DFSC_SYNC_EXTERNAL_ABORT, EC_DATA_ABORT_SAME_EL};
use el1_rt::region::RegionList;
use el1_rt::{fail, probe, say};

pub fn check_carve_out(carve_outs: &RegionList) {
    if carve_outs.is_empty() {
        fail!("DTB has no /reserved-memory/el2@... node for the payload's carve-out");
    }
    for region in carve_outs.iter() {
        check_read_aborts(region.base);
    }
}

fn check_read_aborts(address: usize) {
    let abort = match probe::read_u64(address) {
        Ok(value) => fail!("read EL2 carve-out at {address:#x}: got {value:#x}"),
        Err(abort) => abort,
    };
    if !abort.is_injected_abort_at(address) {
        fail!(
            "read EL2 carve-out at {address:#x} took the wrong fault: ESR_EL1={:#x} (EC {:#x}, DFSC {:#x}), FAR_EL1={:#x}; expected EC {EC_DATA_ABORT_SAME_EL:#x}, DFSC {DFSC_SYNC_EXTERNAL_ABORT:#x}, FAR_EL1={address:#x}",
            abort.esr,
            abort.ec(),
            abort.dfsc(),
            abort.far
        );
    }
    say!(
        "carve-out read aborted (ESR_EL1={:#x}, FAR_EL1={:#x})",
        abort.esr,
        abort.far
    );
}
