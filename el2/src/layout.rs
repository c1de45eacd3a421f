//! Where the image's parts are, from the linker script (`linker/el2.ld`), and the per-CPU
//! stacks. All addresses are run-time addresses: the image relocates itself.

use core::ops::Range;

/// Most CPUs the payload manages. The DTB may list fewer; more is refused at boot.
pub const MAX_CPUS: usize = 8;
/// Granule of every carve-out and mapping decision.
pub const PAGE_SIZE: usize = 4096;
const STACK_SIZE: usize = 48 * 1024;

/// One CPU's stack with an unmapped guard page below it (see `mmu`).
#[repr(C, align(4096))]
pub struct CpuStack {
    guard: [u8; PAGE_SIZE],
    stack: [u8; STACK_SIZE],
}

/// Distance between two CPUs' stack tops; used by `asm/entry.S`.
pub const STACK_STRIDE: usize = core::mem::size_of::<CpuStack>();

/// The stacks live in their own NOLOAD section so that they are part of the carve-out
/// but not of the loaded file.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".stacks")]
pub static mut CPU_STACKS: [CpuStack; MAX_CPUS] = [const {
    CpuStack {
        guard: [0; PAGE_SIZE],
        stack: [0; STACK_SIZE],
    }
}; MAX_CPUS];

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

/// The region holding every CPU's stack and guard page.
pub fn stacks() -> Range<usize> {
    // SAFETY: as in `image`.
    unsafe { addr(&__stacks_start)..addr(&__stacks_end) }
}

/// The stack (without its guard page) of logical CPU `cpu`.
pub fn stack_of(cpu: usize) -> Range<usize> {
    let base = stacks().start + cpu * STACK_STRIDE + PAGE_SIZE;
    base..base + STACK_SIZE
}
