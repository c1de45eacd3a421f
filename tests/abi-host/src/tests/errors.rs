//! Error rows of docs/abi.md's host-call tables, one argument class per test.

use crate::checks::{expect_error, expect_error_regs, expect_read_aborts};
use crate::runner::{Ctx, TestResult, bail};
use el1_rt::free_pages::PAGE_SIZE;
use el1_rt::host_calls;
use hvc_abi::limits::MAX_POOL_PAGES_PER_CALL;
use hvc_abi::{Error, HostCall, VmHandle};
use test_guest::DATA_GFN;

/// `nr = 0` is INVALID_PARAMETER for VM_TOPUP, VM_DONATE and VM_RECLAIM (1.4).
pub fn zero_page_count_is_invalid_parameter(ctx: &mut Ctx) -> TestResult {
    let vm = ctx.vm()?;
    let handle = vm.handle();
    let pfn = pfn(ctx.page()?);
    let error = Error::InvalidParameter;
    expect_error(
        HostCall::VmTopup { handle, pfn, nr: 0 },
        error,
        "VM_TOPUP nr = 0",
    )?;
    let donate = HostCall::VmDonate {
        handle,
        pfn,
        gfn: DATA_GFN,
        nr: 0,
    };
    expect_error(donate, error, "VM_DONATE nr = 0")?;
    expect_error(
        HostCall::VmReclaim { pfn, nr: 0 },
        error,
        "VM_RECLAIM nr = 0",
    )
}

/// `nr = 513` (one more than MAX_PAGES_PER_CALL) is RANGE (1.4).
pub fn page_count_513_is_range(ctx: &mut Ctx) -> TestResult {
    let vm = ctx.vm()?;
    let handle = vm.handle();
    let pfn = pfn(ctx.page()?);
    let error = Error::Range;
    expect_error(
        HostCall::VmTopup {
            handle,
            pfn,
            nr: 513,
        },
        error,
        "VM_TOPUP nr = 513",
    )?;
    let donate = HostCall::VmDonate {
        handle,
        pfn,
        gfn: DATA_GFN,
        nr: 513,
    };
    expect_error(donate, error, "VM_DONATE nr = 513")?;
    expect_error(
        HostCall::VmReclaim { pfn, nr: 513 },
        error,
        "VM_RECLAIM nr = 513",
    )
}

/// A nonzero MBZ register is INVALID_PARAMETER (1.3): FEATURES x1 and x7, VM_CREATE x3,
/// VM_TOPUP x4 (on an otherwise valid call).
pub fn nonzero_mbz_register_is_invalid_parameter(ctx: &mut Ctx) -> TestResult {
    let error = Error::InvalidParameter;
    for register in [1, 7] {
        let mut regs = HostCall::Features.encode();
        regs[register] = 1;
        expect_error_regs(regs, error, "FEATURES with an MBZ register set")?;
    }
    let mut create = HostCall::VmCreate {
        nr_vcpus: 1,
        ipa_bits: 32,
    }
    .encode();
    create[3] = 1;
    expect_error_regs(create, error, "VM_CREATE with x3 set")?;
    let vm = ctx.vm()?;
    let mut topup = HostCall::VmTopup {
        handle: vm.handle(),
        pfn: pfn(ctx.page()?),
        nr: 1,
    }
    .encode();
    topup[4] = 1 << 63;
    expect_error_regs(topup, error, "VM_TOPUP with x4 set")
}

/// A page of the payload's carve-out (HYP) cannot be donated or topped up: DENIED.
pub fn donating_el2_carve_out_page_is_denied(ctx: &mut Ctx) -> TestResult {
    let carve_outs = ctx.platform.board.carve_outs;
    if carve_outs.is_empty() {
        bail!("the DTB names no /reserved-memory/el2@... carve-out");
    }
    let vm = ctx.vm()?;
    let handle = vm.handle();
    for region in carve_outs.iter() {
        let pfn = pfn(region.base);
        let donate = HostCall::VmDonate {
            handle,
            pfn,
            gfn: DATA_GFN,
            nr: 1,
        };
        expect_error(donate, Error::Denied, "VM_DONATE of a carve-out page")?;
        expect_error(
            HostCall::VmTopup { handle, pfn, nr: 1 },
            Error::Denied,
            "VM_TOPUP of a carve-out page",
        )?;
    }
    Ok(())
}

/// Handles the payload never issued, or issued to a VM now destroyed, are NOT_FOUND.
pub fn unknown_handle_is_not_found(ctx: &mut Ctx) -> TestResult {
    let live = ctx.vm()?.handle();
    let pfn = pfn(ctx.page()?);
    // Another generation of the live VM's slot (informative layout, bits [47:16]), zero
    // and all ones: none can name a live VM.
    let bogus = [
        VmHandle(0),
        VmHandle(live.raw() ^ (0x8000 << 16)),
        VmHandle(u64::MAX),
    ];
    for handle in bogus {
        if handle == live {
            continue;
        }
        expect_error(
            HostCall::VmTopup { handle, pfn, nr: 1 },
            Error::NotFound,
            "VM_TOPUP of an unknown handle",
        )?;
        expect_error(
            HostCall::VcpuRun {
                handle,
                vcpu: 0,
                completion: 0,
            },
            Error::NotFound,
            "VCPU_RUN of an unknown handle",
        )?;
        expect_error(
            HostCall::VmDestroy { handle },
            Error::NotFound,
            "VM_DESTROY of an unknown handle",
        )?;
    }
    Ok(())
}

fn pfn(address: usize) -> u64 {
    (address / PAGE_SIZE) as u64
}

/// A VM whose pool is empty cannot map a donated page: VM_DONATE is NO_MEMORY and changes
/// nothing (the page stays the host's, 1.7); after a VM_TOPUP of 8 pages (7.3) the same
/// donation succeeds and the page leaves the host's reach.
pub fn donate_without_pool_is_no_memory_until_topped_up(ctx: &mut Ctx) -> TestResult {
    let vm = ctx.vm()?;
    let handle = vm.handle();
    let page = ctx.page()?;
    let donate = HostCall::VmDonate {
        handle,
        pfn: pfn(page),
        gfn: DATA_GFN,
        nr: 1,
    };
    expect_error(donate, Error::NoMemory, "VM_DONATE into an empty pool")?;
    if let Err(abort) = el1_rt::probe::write_u64(page, 0x600d) {
        bail!("the page of a refused VM_DONATE is no longer the host's: {abort}");
    }
    let Some(pool) = ctx.pages.alloc(MAX_POOL_PAGES_PER_CALL as usize) else {
        bail!("no free host pages for the pool");
    };
    host_calls::vm_topup(handle, pfn(pool), MAX_POOL_PAGES_PER_CALL)?;
    host_calls::make(donate)?;
    expect_read_aborts(page, "host read of a page donated after the top-up")?;
    Ok(())
}
