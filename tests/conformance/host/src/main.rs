//! The conformance host: a bare-metal EL1 image that the payload starts like a Linux
//! kernel (loaded at 0x48400000) and that runs every case of the `conformance` library's
//! matrix against the payload underneath, as its host. It prints TAP 14 (`TAP version
//! 14`, `1..N`, one `ok`/`not ok` line per case) and, as the very last line, `N passed,
//! N failed`, then exits QEMU through semihosting with status 0 if every case passed,
//! else 1.
//!
//! The cases are those of the boot the payload had (`conformance::Boot`): with
//! `/chosen/el2,unconfined-dma` in the DTB it hands over, only the VM_CREATE cases of that
//! boot; otherwise every other case.
//!
//! Pages come from the DTB the payload hands over: fresh host pages from free RAM, the
//! payload's carve-out from `/reserved-memory/el2@*`, MMIO = the console UART's page,
//! outside RAM = a page above the end of RAM that no device occupies.

#![no_std]
#![no_main]

mod device_probe;
mod guest_code;
mod guest_driver;
mod payload_backend;
mod spinner;

use conformance::tap::{CaseLine, PlanLine, Totals, VERSION_LINE};
use conformance::{Boot, boot_cases, run_case};
use el1_rt::boot::Platform;
use el1_rt::console::bare_line;
use el1_rt::free_pages::{PAGE_SIZE, TEST_HOST_PAGES_FLOOR};
use el1_rt::region::Region;
use el1_rt::{fail, host_calls, say};
use payload_backend::{PayloadBackend, SpecialPages};
use spinner::Spinner;

el1_rt::entry!(main);

/// 1 GiB: the outside-RAM page is taken a gigabyte above the end of RAM, rounded up.
const GIB: usize = 1 << 30;

fn main(dtb_address: usize) -> ! {
    let platform = el1_rt::boot::start(dtb_address, "conformance: ");
    check_payload();
    let special = special_pages(&platform);
    let pages = match platform.free_pages(TEST_HOST_PAGES_FLOOR) {
        Ok(pages) => pages,
        Err(_) => fail!("too many regions in use to search for free pages"),
    };
    let spinner = match Spinner::start(&platform) {
        Ok(spinner) => spinner,
        Err(why) => fail!("{why}"),
    };
    say!(
        "carve-out page {:#x}, MMIO page {:#x}, outside-RAM page {:#x}, worker cpu {}",
        special.hyp * PAGE_SIZE as u64,
        special.mmio * PAGE_SIZE as u64,
        special.no_ram * PAGE_SIZE as u64,
        spinner.cpu
    );
    let boot = boot_of(platform.dtb.base);
    say!("boot: {boot:?}");
    let mut backend = PayloadBackend::new(pages, special, spinner);

    bare_line(format_args!("{VERSION_LINE}"));
    bare_line(format_args!("{}", PlanLine(boot_cases(boot).count())));
    let mut totals = Totals::default();
    for (index, case) in boot_cases(boot).enumerate() {
        let result = run_case(&mut backend, &case);
        totals.count(&result);
        bare_line(format_args!(
            "{}",
            CaseLine {
                number: index + 1,
                case: &case,
                result: &result,
            }
        ));
    }
    bare_line(format_args!("{totals}"));
    el1_rt::exit::semihosting_exit(u64::from(totals.failed != 0))
}

/// The `/chosen` property of the payload's boot option that hands unconfined DMA masters
/// to the host (docs/abi.md 4.3; the payload leaves it in the host's DTB).
const UNCONFINED_DMA_OPTION: &str = "el2,unconfined-dma";

/// Which boot this is, from the DTB the payload handed over.
fn boot_of(dtb: usize) -> Boot {
    // SAFETY: the payload passed `dtb` as the host's DTB (boot protocol); it lies in RAM
    // that this image maps and nothing writes while the host runs. `from_ptr` reads the
    // header's totalsize and stays inside it.
    let Ok(fdt) = (unsafe { fdt::Fdt::from_ptr(dtb as *const u8) }) else {
        fail!("the DTB the payload handed over does not parse");
    };
    // Not `fdt.chosen()`: it panics on a DTB without `/chosen`.
    let option = fdt
        .find_node("/chosen")
        .is_some_and(|chosen| chosen.property(UNCONFINED_DMA_OPTION).is_some());
    if option {
        Boot::UnconfinedDma
    } else {
        Boot::Plain
    }
}

/// The suite speaks ABI 2.x only: the UID and FEATURES must say so.
fn check_payload() {
    if !host_calls::uid_matches() {
        fail!("VENDOR_HYP_CALL_UID does not name the payload: not the ABI this suite tests");
    }
    match host_calls::features() {
        Ok((version, _)) if version.major == 2 => {
            say!("ABI version {}.{}", version.major, version.minor)
        }
        Ok((version, _)) => fail!(
            "ABI version {}.{}: this suite tests 2.x",
            version.major,
            version.minor
        ),
        Err(error) => fail!("FEATURES: {error}"),
    }
}

/// The carve-out, UART and outside-RAM pages from the DTB.
fn special_pages(platform: &Platform) -> SpecialPages {
    let board = &platform.board;
    let Some(carve_out) = board.carve_outs.iter().next() else {
        fail!("the DTB has no /reserved-memory/el2@... node: no carve-out to test");
    };
    let ram_end = board
        .memory
        .iter()
        .filter_map(Region::end)
        .max()
        .unwrap_or(0);
    let mut no_ram = ram_end.div_ceil(GIB).saturating_add(1).saturating_mul(GIB);
    // Step over any device the DTB places there.
    while let Some(device) = board.devices.iter().find(|d| {
        d.overlaps(&Region {
            base: no_ram,
            size: PAGE_SIZE,
        })
    }) {
        no_ram = device.end().unwrap_or(usize::MAX).next_multiple_of(GIB);
    }
    SpecialPages {
        hyp: (carve_out.base / PAGE_SIZE) as u64,
        mmio: (board.uart / PAGE_SIZE) as u64,
        no_ram: (no_ram / PAGE_SIZE) as u64,
    }
}
