//! The DMA test host: a bare-metal EL1 image the payload starts as its host (loaded at
//! 0x48400000, x0 = DTB) on QEMU virt, that tries what a hostile host does with the DMA
//! masters and GIC tables EL2 cannot confine (issue 9, "DMA cannot reach what the host does
//! not own"): fw_cfg's DMA engine aimed at a guest's private page, at the ownership record
//! and at EL2's image; the virtio-mmio transports; the GIC ITS; GICR_PROPBASER/PENDBASER
//! aimed at a guest's private page.
//!
//! On QEMU xlnx-zcu102 (a DTB whose root is `xlnx,zynqmp`) the same attacks use that SoC's
//! own DMA engine, a ZDMA channel (`zynqmp_attacks`); the GICv3-only checks report
//! `ignored` there (GICv2).
//!
//! Booted with the payload's boot option `/chosen/el2,unconfined-dma` (which the payload
//! leaves in the host's DTB) it instead checks that the devices were handed over and that
//! VM_CREATE is DENIED; on zcu102 it also shows, as the attacks' positive control, that the
//! ZDMA channel then really moves data, EL2's image included.
//!
//! It needs the payload's selftest build (`el2-selftest.bin`): DEBUG_RECORD_ENTRY_ADDRESS
//! tells it where the ownership record keeps a page's entry (an attacker finds it with the
//! oracle the issue describes) and DEBUG_CHECK_INVARIANTS proves the record intact.
//!
//! Output: libtest-style lines, `N passed, M failed`, semihosting exit 0 or 1.

#![no_std]
#![no_main]
#![allow(clippy::result_large_err)]

mod attacks;
mod debug_calls;
mod fw_cfg;
mod gicr;
mod option;
mod virt;
mod zdma;
mod zynqmp;
mod zynqmp_attacks;
mod zynqmp_option;

use el1_rt::free_pages::TEST_HOST_PAGES_FLOOR;
use el1_rt::region::Region;
use el1_rt::testing::{Test, TestCtx, run_all};
use el1_rt::{fail, say};

/// The protected test guest (tests/test-guest), embedded raw (xtask sets the path).
static TEST_GUEST: &[u8] = include_bytes!(env!("TEST_GUEST_BIN"));

/// QEMU virt without the boot option: every attack must fail.
const WITHHELD: &[Test] = &[
    Test {
        name: "host_cannot_dma_zeros_over_a_guest_private_page_with_fw_cfg",
        run: attacks::fw_cfg_dma_over_a_guest_private_page,
    },
    Test {
        name: "host_cannot_dma_zeros_over_the_ownership_record_with_fw_cfg",
        run: attacks::fw_cfg_dma_over_the_ownership_record,
    },
    Test {
        name: "host_cannot_dma_zeros_over_el2_image_with_fw_cfg",
        run: attacks::fw_cfg_dma_over_el2_image,
    },
    Test {
        name: "host_cannot_reach_the_virtio_mmio_transports",
        run: attacks::virtio_mmio_unreachable,
    },
    Test {
        name: "host_cannot_reach_the_gic_its",
        run: attacks::its_unreachable,
    },
    Test {
        name: "host_reads_its_redistributor_through_el2",
        run: attacks::redistributor_reads_are_emulated,
    },
    Test {
        name: "host_gicr_propbaser_and_pendbaser_aimed_at_a_guest_private_page_have_no_effect",
        run: attacks::gicr_tables_aimed_at_a_guest_private_page,
    },
    Test {
        name: "withheld_devices_are_not_in_the_host_dtb",
        run: attacks::withheld_devices_not_in_the_dtb,
    },
];

/// QEMU virt with the boot option: the devices are the host's, protected VMs are not.
const HANDED_OVER: &[Test] = &[
    Test {
        name: "boot_option_hands_fw_cfg_to_the_host",
        run: option::fw_cfg_reachable,
    },
    Test {
        name: "boot_option_keeps_the_devices_in_the_host_dtb",
        run: option::devices_in_the_dtb,
    },
    Test {
        name: "vm_create_is_denied_after_a_boot_with_unconfined_dma",
        run: option::vm_create_denied,
    },
];

/// xlnx-zcu102 without the boot option: the ZDMA attacks must fail; the GIC checks apply
/// to a GICv3 only.
const ZYNQMP_WITHHELD: &[Test] = &[
    Test {
        name: "host_cannot_program_the_zynqmp_dma_engine_over_a_guest_private_page",
        run: zynqmp_attacks::zdma_over_a_guest_private_page,
    },
    Test {
        name: "host_cannot_program_the_zynqmp_dma_engine_over_the_ownership_record",
        run: zynqmp_attacks::zdma_over_the_ownership_record,
    },
    Test {
        name: "host_cannot_program_the_zynqmp_dma_engine_over_el2_image",
        run: zynqmp_attacks::zdma_over_el2_image,
    },
    Test {
        name: "host_cannot_reach_any_zynqmp_dma_channel",
        run: zynqmp_attacks::no_zdma_channel_reachable,
    },
    Test {
        name: "host_reads_its_redistributor_through_el2",
        run: attacks::redistributor_reads_are_emulated,
    },
    Test {
        name: "host_gicr_propbaser_and_pendbaser_aimed_at_a_guest_private_page_have_no_effect",
        run: attacks::gicr_tables_aimed_at_a_guest_private_page,
    },
    Test {
        name: "withheld_zynqmp_dma_engines_and_smmu_are_not_in_the_host_dtb",
        run: zynqmp_attacks::withheld_zynqmp_devices_not_in_the_dtb,
    },
];

/// xlnx-zcu102 with the boot option: the positive control of the ZDMA attacks (the engine
/// really writes what the host names), and protected VMs are refused.
const ZYNQMP_HANDED_OVER: &[Test] = &[
    Test {
        name: "boot_option_hands_the_zynqmp_dma_engine_to_the_host",
        run: zynqmp_option::zdma_copies_between_host_pages,
    },
    Test {
        name: "unconfined_zynqmp_dma_engine_reads_and_writes_el2_image_past_stage_2",
        run: zynqmp_option::zdma_reaches_el2_image,
    },
    Test {
        name: "boot_option_keeps_the_zynqmp_dma_engines_in_the_host_dtb",
        run: zynqmp_option::zynqmp_devices_in_the_dtb,
    },
    Test {
        name: "vm_create_is_denied_after_a_boot_with_unconfined_dma",
        run: option::vm_create_denied,
    },
];

el1_rt::entry!(main);

fn main(dtb_address: usize) -> ! {
    // The withheld devices are gone from the DTB: map them at stage 1 anyway, so that each
    // probe reaches stage 2, where EL2 must refuse it.
    // Which SoC decides which withheld devices to map (virt's fw_cfg address is RAM on
    // zcu102): read before the MMU is on, as el1-rt reads the DTB.
    let zynqmp = zynqmp::is_zynqmp(dtb_address);
    let probed: &[Region] = if zynqmp {
        &zynqmp::PROBED
    } else {
        &virt::PROBED
    };
    let platform = el1_rt::boot::start_mapping(dtb_address, "dma-host: ", probed);
    let option = virt::unconfined_dma_option(platform.dtb.base);
    let Ok(pages) = platform.free_pages(TEST_HOST_PAGES_FLOOR) else {
        fail!("too many reserved regions in the DTB to find free pages");
    };
    let mut ctx = TestCtx::new(platform, pages, TEST_GUEST);
    if zynqmp {
        say!("a ZynqMP board (xlnx,zynqmp): attacking with its ZDMA engine");
    }
    let tests = match (zynqmp, option) {
        (false, false) => WITHHELD,
        (true, false) => ZYNQMP_WITHHELD,
        (_, true) => {
            say!("the DTB has /chosen/el2,unconfined-dma: checking the handed-over devices");
            if zynqmp {
                ZYNQMP_HANDED_OVER
            } else {
                HANDED_OVER
            }
        }
    };
    let summary = run_all(&mut ctx, tests);
    el1_rt::exit::semihosting_exit(u64::from(summary.failed != 0))
}
