//! Where the image's parts are, from the linker script (`linker/el2.ld`), and the boot
//! CPU's stack. All addresses are run-time addresses: the image relocates itself. The other
//! CPUs' stacks are sized from the DTB at boot (`per_cpu`).

use core::ops::Range;

/// Granule of every carve-out and mapping decision.
pub const PAGE_SIZE: usize = 4096;
const STACK_SIZE: usize = 48 * 1024;

/// One CPU's stack with an unmapped guard page below it (see `mmu`): the boot CPU's here,
/// the others' in the per-CPU region laid out the same way (`per_cpu`).
#[repr(C, align(4096))]
pub struct CpuStack {
    guard: [u8; PAGE_SIZE],
    stack: [u8; STACK_SIZE],
}

/// Distance between two CPUs' stack tops (guard page and stack); used by `asm/entry.S`.
pub const STACK_STRIDE: usize = core::mem::size_of::<CpuStack>();

/// The boot CPU's stack lives in its own NOLOAD section so that it is part of the
/// carve-out but not of the loaded file.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".stacks")]
pub static mut BOOT_STACK: CpuStack = CpuStack {
    guard: [0; PAGE_SIZE],
    stack: [0; STACK_SIZE],
};

unsafe extern "C" {
    static __image_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __data_end: u8;
    static __stacks_start: u8;
    static __stacks_end: u8;
    static __image_end: u8;
}

fn addr(symbol: &u8) -> usize {
    symbol as *const u8 as usize
}

/// The whole static carve-out: image, .bss and stacks (what `image_size` in the header says).
pub fn image() -> Range<usize> {
    // SAFETY: only the addresses of linker symbols are taken; nothing is read.
    unsafe { addr(&__image_start)..addr(&__image_end) }
}

/// Code: mapped read-only and executable.
pub fn text() -> Range<usize> {
    // SAFETY: as in `image`.
    unsafe { addr(&__image_start)..addr(&__text_end) }
}

/// Constants and relocated read-only data: read-only, never executable.
pub fn rodata() -> Range<usize> {
    // SAFETY: as in `image`.
    unsafe { addr(&__text_end)..addr(&__rodata_end) }
}

/// .data and .bss: read-write, never executable.
pub fn data() -> Range<usize> {
    // SAFETY: as in `image`.
    unsafe { addr(&__rodata_end)..addr(&__data_end) }
}

/// The region holding the boot CPU's stack and guard page.
pub fn stacks() -> Range<usize> {
    // SAFETY: as in `image`.
    unsafe { addr(&__stacks_start)..addr(&__stacks_end) }
}

/// The boot CPU's stack (without its guard page).
pub fn boot_stack() -> Range<usize> {
    let base = stacks().start + PAGE_SIZE;
    base..base + STACK_SIZE
}
