//! VM_DONATE and VM_RECLAIM, of one page and of 512: a VM with a page-table pool gets runs
//! of pages donated one call at a time at consecutive guest frames, then it is destroyed
//! (VM_DESTROY measured, one call) and the same pages are reclaimed (each zeroed by EL2)
//! with the same call sizes.
//!
//! The 512-page ranges are 2 MiB aligned on both sides (host pages and guest frames), as a
//! guest's RAM normally is. The first one-page donation in each 2 MiB of guest frames also
//! builds that range's last-level table; its cost is spread over the 512 calls that share
//! the table (`el2_max` shows it).

use crate::config::Counts;
use crate::measured_loop::{Calls, measure};
use crate::pages::{BLOCK_PAGES, Pages};
use el1_rt::fail;
use el1_rt::host_calls;
use hvc_abi::{HostCall, VmHandle};

/// Pool pages topped up before the donations: the VM's stage-2 tables for the ranges below
/// and what a later split of each block needs, with room to spare.
const POOL_PAGES: u64 = 128;
/// Guest frames of the one-page donations (IPA 4 GiB) and of the 512-page ones (8 GiB).
const SINGLE_GFN: u64 = 0x10_0000;
const BLOCK_GFN: u64 = 0x20_0000;
/// The VM's IPA size: room for both ranges.
const IPA_BITS: u32 = 40;

pub fn run(counts: &Counts, pages: &mut Pages) {
    let handle = match host_calls::vm_create(1, IPA_BITS) {
        Ok(handle) => handle,
        Err(e) => fail!("VM_CREATE for the donations: {e}"),
    };
    let pool = pages.alloc(POOL_PAGES, 1);
    if let Err(e) = host_calls::vm_topup(handle, pool, POOL_PAGES as u32) {
        fail!("VM_TOPUP of {POOL_PAGES} pages: {e}");
    }
    let singles = pages.alloc(counts.vm_pages, 1);
    let blocks = pages.alloc(counts.vm_blocks * BLOCK_PAGES, BLOCK_PAGES);
    donate(
        "vm_donate_1",
        handle,
        singles,
        SINGLE_GFN,
        1,
        counts.vm_pages,
    );
    donate(
        "vm_donate_512",
        handle,
        blocks,
        BLOCK_GFN,
        BLOCK_PAGES,
        counts.vm_blocks,
    );
    // One call: its cost grows with what the VM holds (and, before teardown walked only
    // the VM's own stage-2 and pool, with all of RAM).
    measure(
        "vm_destroy",
        &Calls::repeat(HostCall::VmDestroy { handle }.encode(), 1, [0, 0]),
    );
    reclaim("vm_reclaim_1", singles, 1, counts.vm_pages);
    reclaim("vm_reclaim_512", blocks, BLOCK_PAGES, counts.vm_blocks);
    if let Err(e) = host_calls::vm_reclaim(pool, POOL_PAGES as u32) {
        fail!("VM_RECLAIM of the pool: {e}");
    }
}

fn donate(op: &str, handle: VmHandle, pfn: u64, gfn: u64, nr: u64, calls: u64) {
    let call = HostCall::VmDonate {
        handle,
        pfn,
        gfn,
        nr: nr as u32,
    };
    measure(
        op,
        &Calls::repeat(call.encode(), calls, [0, 0])
            .stepping(2, nr)
            .stepping(3, nr),
    );
}

fn reclaim(op: &str, pfn: u64, nr: u64, calls: u64) {
    let call = HostCall::VmReclaim { pfn, nr: nr as u32 };
    measure(
        op,
        &Calls::repeat(call.encode(), calls, [0, 0]).stepping(1, nr),
    );
}
