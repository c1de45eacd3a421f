//! Pages the host never owned: the payload's carve-out (HYP), device MMIO and addresses
//! with no RAM. Every call that names a host page refuses them with DENIED (docs/abi.md
//! 7.1), and a refused call changes nothing (1.7).

use super::host_calls::{share_hyp, unshare_hyp};
use super::{GFN, expect_err, retire};
use crate::msg::{TestResult, bail};
use crate::pages::{address, expect_host_page, expect_read_aborts, pfn};
use crate::runner::Ctx;
use el1_rt::free_pages::PAGE_SIZE;
use el1_rt::guest_vm::GuestVm;
use el1_rt::host_calls::{vm_donate, vm_reclaim, vm_topup};
use el1_rt::region::Region;
use el1_rt::say;
use hvc_abi::limits::MAX_PAGES_PER_CALL;

/// Every page call on `pfn` is DENIED.
fn expect_all_refused(vm: &GuestVm, pfn: u64, what: &str) -> TestResult {
    let handle = vm.handle();
    let at = address(pfn);
    expect_err!(share_hyp(pfn), Denied, "HOST_SHARE_HYP of {what} {at:#x}");
    expect_err!(
        unshare_hyp(pfn),
        Denied,
        "HOST_UNSHARE_HYP of {what} {at:#x}"
    );
    expect_err!(
        vm_topup(handle, pfn, 1),
        Denied,
        "VM_TOPUP of {what} {at:#x}"
    );
    expect_err!(
        vm_donate(handle, pfn, GFN, 1),
        Denied,
        "VM_DONATE of {what} {at:#x}"
    );
    expect_err!(vm_reclaim(pfn, 1), Denied, "VM_RECLAIM of {what} {at:#x}");
    Ok(())
}

/// Whether the page at `address` is host RAM that nothing (image, DTB, reservations)
/// uses, so a test may borrow it.
fn is_spare_host_page(ctx: &Ctx, address: usize) -> bool {
    let page = Region {
        base: address,
        size: PAGE_SIZE,
    };
    let board = &ctx.platform.board;
    board.memory.iter().any(|ram| ram.contains(&page))
        && !board.in_use.iter().any(|r| r.overlaps(&page))
        && !ctx.platform.image.overlaps(&page)
        && !ctx.platform.dtb.overlaps(&page)
}

/// Donating, sharing, topping up and reclaiming the carve-out: DENIED, for its first, a
/// middle and its last page and for ranges over it; host reads abort.
pub fn carve_out_refused(ctx: &mut Ctx) -> TestResult {
    let Some(carve) = ctx.platform.board.carve_outs.iter().next().copied() else {
        bail!("the DTB has no /reserved-memory/el2@... carve-out");
    };
    let mut vm = ctx.vm_with_pool()?;
    let pages = carve.size / PAGE_SIZE;
    let first = pfn(carve.base);
    for page in [first, first + pages as u64 / 2, first + pages as u64 - 1] {
        expect_all_refused(&vm, page, "carve-out page")?;
        expect_read_aborts(address(page), "the carve-out")?;
    }
    let nr = pages.min(MAX_PAGES_PER_CALL as usize) as u32;
    let handle = vm.handle();
    expect_err!(
        vm_donate(handle, first, GFN, nr),
        Denied,
        "VM_DONATE of {nr} carve-out pages"
    );
    expect_err!(
        vm_topup(handle, first, nr),
        Denied,
        "VM_TOPUP of {nr} carve-out pages"
    );
    expect_err!(
        vm_reclaim(first, nr),
        Denied,
        "VM_RECLAIM of {nr} carve-out pages"
    );
    // A range that starts on a host page and runs into the carve-out: refused as a whole,
    // the host page stays the host's.
    let before = carve.base - PAGE_SIZE;
    if is_spare_host_page(ctx, before) {
        expect_host_page(pfn(before))?;
        expect_err!(
            vm_donate(handle, pfn(before), GFN, 2),
            Denied,
            "VM_DONATE of a host page and the carve-out's first"
        );
        expect_err!(
            vm_topup(handle, pfn(before), 2),
            Denied,
            "VM_TOPUP of a host page and the carve-out's first"
        );
        expect_host_page(pfn(before))?;
    } else {
        say!("the page below the carve-out is not spare host RAM: range case skipped");
    }
    retire(&mut vm)
}

/// The same calls on device MMIO (the console UART and the first page of other device
/// regions) and on an address with no RAM: DENIED.
pub fn mmio_and_no_ram_refused(ctx: &mut Ctx) -> TestResult {
    let mut vm = ctx.vm_with_pool()?;
    let board = ctx.platform.board;
    expect_all_refused(&vm, pfn(board.uart), "console UART page")?;
    let pfn_limit = 1u64 << (hvc_abi::limits::PA_BITS - hvc_abi::limits::PAGE_SHIFT);
    for device in board.devices.iter().take(8) {
        let page = pfn(device.base);
        if page < pfn_limit {
            expect_all_refused(&vm, page, "device MMIO page")?;
        }
    }
    let ram_end = board
        .memory
        .iter()
        .filter_map(|ram| ram.end())
        .max()
        .unwrap_or(0);
    let hole = Region {
        base: ram_end,
        size: PAGE_SIZE,
    };
    if board.devices.iter().any(|d| d.overlaps(&hole)) {
        bail!("the page after RAM ({ram_end:#x}) is a device: pick another NO_RAM page");
    }
    expect_all_refused(&vm, pfn(ram_end), "page after RAM")?;
    retire(&mut vm)
}
