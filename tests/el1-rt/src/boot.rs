//! What every image does first on the boot CPU: read the DTB, find the console, check it
//! runs at EL1 and turn the MMU on. Prints `<prefix>running at EL1` and `<prefix>MMU on
//! (...)`; any problem is a `<prefix>FAIL: ...`.

use crate::board::Board;
use crate::console;
use crate::dtb_copy;
use crate::exit::fail_with;
use crate::free_pages::FreePages;
use crate::mmu::{self, MmuConfig};
use crate::region::{ListFull, Region};
use crate::say;
use aarch64_cpu::registers::{CurrentEL, Readable};

unsafe extern "C" {
    static __image_start: u8;
    static __image_end: u8;
}

/// What the boot CPU knows once [`start`] returns.
#[derive(Clone, Copy, Debug)]
pub struct Platform {
    pub board: Board,
    /// The MMU registers every CPU loads (secondaries reuse them).
    pub mmu: MmuConfig,
    /// The memory the image occupies, .bss and boot stack included.
    pub image: Region,
    /// The DTB as the payload handed it over (address and `totalsize`).
    pub dtb: Region,
}

impl Platform {
    /// Free host pages at or above `floor`: RAM that is not the image, the DTB or
    /// anything the DTB reserves (the payload's carve-out included). `Err` if the list of
    /// regions in use is full.
    pub fn free_pages(&self, floor: usize) -> Result<FreePages, ListFull> {
        let mut in_use = self.board.in_use;
        in_use.push(self.image)?;
        in_use.push(self.dtb)?;
        Ok(FreePages::new(&self.board.memory, &in_use, floor))
    }
}

/// Boot-CPU start-up; `prefix` starts every console line of the image (e.g. `"demo: "`).
pub fn start(dtb_address: usize, prefix: &'static str) -> Platform {
    start_mapping(dtb_address, prefix, &[])
}

/// [`start`], with `extra_devices` mapped as device memory besides the DTB's own devices:
/// for tests that probe devices the payload took out of the host's DTB (the probe must
/// reach stage 2 for EL2 to refuse it, not stop at this image's stage 1).
pub fn start_mapping(
    dtb_address: usize,
    prefix: &'static str,
    extra_devices: &[Region],
) -> Platform {
    console::set_prefix(prefix);
    let image = image();
    let (mut board, dtb) = read_board(dtb_address, image);
    for device in extra_devices {
        if board.devices.push(*device).is_err() {
            fail_with(format_args!(
                "too many device regions to map {:#x}",
                device.base
            ));
        }
    }
    console::set_uart(board.console);
    check_el1();

    // SAFETY: called once, here, before any other CPU runs.
    let (mmu_config, summary) = match unsafe { mmu::build(&board, image) } {
        Ok(built) => built,
        Err(error) => fail_with(format_args!("cannot build the EL1 identity map: {error}")),
    };
    // SAFETY: the table maps all RAM and the image (code, data, stacks, the DTB copy) and
    // the devices, the console's included, at their own addresses.
    unsafe { mmu::enable(&mmu_config) };
    console::enable_locking();
    say!(
        "MMU on ({} page-table pages, {} device regions beyond 39 bits left unmapped)",
        summary.tables_used,
        summary.devices_skipped
    );
    Platform {
        board,
        mmu: mmu_config,
        image,
        dtb,
    }
}

/// Reads the DTB at `dtb_address` into a `Board` (MMU off: this only reads the DTB and
/// writes the image's own memory).
fn read_board(dtb_address: usize, image: Region) -> (Board, Region) {
    if dtb_address == 0 {
        fail_with(format_args!("no DTB (x0 = 0)"));
    }
    let dtb_start = Region {
        base: dtb_address,
        size: 1,
    };
    if image.contains(&dtb_start) {
        // .bss and the stacks were zeroed over it before we got here.
        fail_with(format_args!(
            "DTB at {dtb_address:#x} lies inside the image {:#x}..{:#x} (image_size in its header)",
            image.base,
            image.base + image.size
        ));
    }
    // SAFETY: the boot protocol makes x0 the address of a DTB in memory that nothing else
    // uses while we run; this is the only call.
    let copy = match unsafe { dtb_copy::copy_without_nops(dtb_address) } {
        Ok(copy) => copy,
        Err(error) => fail_with(format_args!(
            "cannot read the DTB at {dtb_address:#x}: {error}"
        )),
    };
    let fdt = match fdt::Fdt::new(copy.blob) {
        Ok(fdt) => fdt,
        Err(error) => fail_with(format_args!(
            "cannot parse the DTB at {dtb_address:#x}: {error:?}"
        )),
    };
    let board = match Board::from_fdt(&fdt) {
        Ok(board) => board,
        Err(error) => fail_with(format_args!("{error}")),
    };
    let dtb = Region {
        base: dtb_address,
        size: copy.original_size,
    };
    (board, dtb)
}

/// The payload must have dropped us to EL1.
fn check_el1() {
    let el = CurrentEL.read(CurrentEL::EL);
    if el != 1 {
        fail_with(format_args!("running at EL{el}, expected EL1"));
    }
    say!("running at EL1");
}

/// The memory the image occupies, including .bss and the boot stack.
pub fn image() -> Region {
    // Only the addresses of the linker-script symbols are taken, never their values.
    let start = &raw const __image_start as usize;
    let end = &raw const __image_end as usize;
    Region {
        base: start,
        size: end - start,
    }
}

/// Declares the image's main function: `fn(dtb_address: usize) -> !`, called by the boot
/// CPU's entry code (asm/entry.S) at EL1 with the MMU off, `.bss` zeroed, FP on and the
/// vectors installed. It normally calls [`start`] first.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[unsafe(no_mangle)]
        extern "C" fn el1_rt_main(dtb_address: usize) -> ! {
            let main: fn(usize) -> ! = $main;
            main(dtb_address)
        }
    };
}
