//! The SMMU test host: a bare-metal EL1 image the payload starts as its host (loaded at
//! 0x48400000, x0 = DTB) on `-M virt,iommu=smmuv3` with `-device edu,dma_mask=...`. It
//! programs the edu device's DMA engine the way a hostile host would program any bus master
//! and checks that EL2's SMMU tables let it reach host pages and nothing else:
//! - a host page (positive control: the engine works);
//! - a protected guest's private page (read and write);
//! - the ownership record (the attack of issue 9: zero a guest page's entry, then map it);
//! - EL2's image;
//! - a page right after the host donated it (the SMMU's TLB invalidation completed before
//!   the call returned);
//! - and, the other way, a page the host reclaimed is a DMA target when the call returns.
//!
//! libtest-style lines, `N passed, M failed`, semihosting exit status 0 only if all passed.
//! EL2 logs each refused transfer as an SMMU event; xtask's case expects those lines.

#![no_std]
#![no_main]
#![allow(clippy::result_large_err)]

mod edu;
mod tests;

use el1_rt::fail;
use el1_rt::free_pages::TEST_HOST_PAGES_FLOOR;
use el1_rt::testing::{Test, TestCtx, run_all};

/// The protected test guest (tests/test-guest), embedded raw (xtask sets the path).
static TEST_GUEST: &[u8] = include_bytes!(env!("TEST_GUEST_BIN"));

const TESTS: &[Test] = &[
    Test {
        name: "a_device_can_dma_into_and_out_of_a_host_page",
        run: tests::a_device_can_dma_into_and_out_of_a_host_page,
    },
    Test {
        name: "a_device_can_neither_read_nor_write_a_guest_private_page",
        run: tests::a_device_can_neither_read_nor_write_a_guest_private_page,
    },
    Test {
        name: "a_device_cannot_zero_a_page_entry_of_the_ownership_record",
        run: tests::a_device_cannot_zero_a_page_entry_of_the_ownership_record,
    },
    Test {
        name: "a_page_the_host_donates_is_out_of_dma_reach_when_the_call_returns",
        run: tests::a_page_the_host_donates_is_out_of_dma_reach_when_the_call_returns,
    },
    Test {
        name: "a_page_the_host_reclaims_is_dma_reachable_when_the_call_returns",
        run: tests::a_page_the_host_reclaims_is_dma_reachable_when_the_call_returns,
    },
    // Last: before EL2 confined DMA this overwrote EL2's code and stopped the machine.
    Test {
        name: "a_device_cannot_overwrite_el2s_image",
        run: tests::a_device_cannot_overwrite_el2s_image,
    },
];

el1_rt::entry!(main);

fn main(dtb_address: usize) -> ! {
    let platform = el1_rt::boot::start(dtb_address, "smmu-host: ");
    let Ok(pages) = platform.free_pages(TEST_HOST_PAGES_FLOOR) else {
        fail!("too many reserved regions in the DTB to find free pages");
    };
    let Some(pci) = platform.board.pci else {
        fail!("the DTB has no PCI host bridge (QEMU virt has pcie@10000000)");
    };
    let Some(edu) = edu::Edu::find(&pci) else {
        fail!("no edu device on PCI bus 0 (QEMU: -device edu,dma_mask=0xffffffffffff)");
    };
    el1_rt::say!(
        "edu at requester ID {:#x}, BAR0 {:#x}",
        edu.requester_id,
        pci.mem32.base
    );
    tests::set_edu(edu);
    let mut ctx = TestCtx::new(platform, pages, TEST_GUEST);
    let summary = run_all(&mut ctx, TESTS);
    el1_rt::exit::semihosting_exit(u64::from(summary.failed != 0))
}
