//! The conformance guest: a few position-independent instructions the host copies into a
//! page, donates at `CODE_GFN` and starts with x0 = `CHANNEL_IPA`. It runs with its MMU
//! off and talks to its host only through MMIO exits on the channel (an IPA with no page):
//!
//! | Channel offset | Access | Meaning |
//! |---|---|---|
//! | 0x00 | 8-byte read | the operation ([`OP_HVC`], [`OP_LOAD`], [`OP_SPIN`]) |
//! | 0x08 + 8 n | 8-byte read | argument register xn, n = 0..7 |
//! | 0x80 + 8 n | 8-byte write | result register xn, n = 0..3; 0x98 ends the operation |
//!
//! - `OP_HVC`: `HVC #0` with x0..x7 = the arguments; reports x0..x3 after it.
//! - `OP_LOAD`: x1 = an IPA; asks IPA_STATE of its page (its error, if any, is reported
//!   as is); if the page has no page and is not registered (state 0), registers it as MMIO
//!   (MMIO_GUARD_MAP; its error, BUSY when every slot is taken, is reported as x0 with
//!   x1..x3 = 0, and nothing is loaded: the load would be a MEM_FAULT exit); `ldr x1,
//!   [x1]` (an MMIO read exit if the IPA has no page, completed by the host); unregisters
//!   the page if it registered it; then reports x0 = 0, x1 = the word, x2 = the state.
//!   Net effect on the VM: none.
//! - `OP_SPIN`: x1 = the IPA of the control page; stores 1 at x1 + 8 ("spinning"), loads
//!   x1 + 0 until it is nonzero ("stop"), then reports zeros. No exit happens meanwhile,
//!   so the vCPU stays inside VCPU_RUN.
//!
//! The guest first registers the channel's page as MMIO (MMIO_GUARD_MAP, 5.6): without
//! that its channel accesses would be MEM_FAULT exits.
//!
//! x20 (the channel) and x21..x24 (the load's state) must survive an HVC; the ABI
//! preserves x4..x30 (1.2), so a payload that clobbers them makes later operations fail.

use core::arch::global_asm;

pub const OP_HVC: u64 = 1;
pub const OP_LOAD: u64 = 2;
pub const OP_SPIN: u64 = 3;

/// Channel offset of the operation word.
pub const OP_OFFSET: u64 = 0x00;
/// Channel offset of argument x0 (x7 is at `ARGS_OFFSET + 56`).
pub const ARGS_OFFSET: u64 = 0x08;
/// Channel offset of the last argument the guest reads before acting.
pub const LAST_ARG_OFFSET: u64 = ARGS_OFFSET + 7 * 8;
/// Channel offset of result x0 (x3 is at `RESULTS_OFFSET + 24`).
pub const RESULTS_OFFSET: u64 = 0x80;
/// Channel offset of the last result the guest writes.
pub const LAST_RESULT_OFFSET: u64 = RESULTS_OFFSET + 3 * 8;

global_asm!(
    ".section .rodata.conformance_guest, \"a\"",
    ".balign 8",
    ".global conformance_guest_start",
    "conformance_guest_start:",
    "    mov x20, x0",
    "    and x1, x20, #~0xfff",
    "    movz w0, #0x0024",
    "    movk w0, #0xc600, lsl #16",
    "    hvc #0",
    "10: ldr x9, [x20, #0x00]",
    "    ldr x0, [x20, #0x08]",
    "    ldr x1, [x20, #0x10]",
    "    ldr x2, [x20, #0x18]",
    "    ldr x3, [x20, #0x20]",
    "    ldr x4, [x20, #0x28]",
    "    ldr x5, [x20, #0x30]",
    "    ldr x6, [x20, #0x38]",
    "    ldr x7, [x20, #0x40]",
    "    cmp x9, #2",
    "    b.eq 30f",
    "    cmp x9, #3",
    "    b.eq 40f",
    "    hvc #0",
    "20: str x0, [x20, #0x80]",
    "    str x1, [x20, #0x88]",
    "    str x2, [x20, #0x90]",
    "    str x3, [x20, #0x98]",
    "    b 10b",
    // OP_LOAD: x21 = the IPA, x24 = its IPA_STATE, x22 = 0 if this op registered it.
    "30: mov x21, x1",
    "    and x1, x21, #~0xfff",
    "    movz w0, #0x0026",
    "    movk w0, #0xc600, lsl #16",
    "    mov x2, xzr",
    "    mov x3, xzr",
    "    mov x4, xzr",
    "    mov x5, xzr",
    "    mov x6, xzr",
    "    mov x7, xzr",
    "    hvc #0",
    "    cbnz x0, 20b",
    "    mov x24, x1",
    "    mov x22, #1",
    "    cbnz x24, 32f",
    "    and x1, x21, #~0xfff",
    "    movz w0, #0x0024",
    "    movk w0, #0xc600, lsl #16",
    "    mov x2, xzr",
    "    mov x3, xzr",
    "    hvc #0",
    "    mov x22, x0",
    "    cbnz x22, 33f",
    "32: ldr x1, [x21]",
    "    cbnz x22, 31f",
    "    mov x23, x1",
    "    and x1, x21, #~0xfff",
    "    movz w0, #0x0025",
    "    movk w0, #0xc600, lsl #16",
    "    mov x2, xzr",
    "    mov x3, xzr",
    "    hvc #0",
    "    mov x1, x23",
    "31: mov x0, #0",
    "    mov x2, x24",
    "    mov x3, #0",
    "    b 20b",
    // MMIO_GUARD_MAP refused: report its error, no load.
    "33: mov x0, x22",
    "    mov x1, #0",
    "    mov x2, #0",
    "    mov x3, #0",
    "    b 20b",
    "40: mov x9, #1",
    "    str x9, [x1, #8]",
    "50: ldr x9, [x1]",
    "    cbz x9, 50b",
    "    mov x0, #0",
    "    mov x1, #0",
    "    b 20b",
    ".global conformance_guest_end",
    "conformance_guest_end:",
    ".text",
);

unsafe extern "C" {
    static conformance_guest_start: u8;
    static conformance_guest_end: u8;
}

/// The guest's code bytes.
pub fn code() -> &'static [u8] {
    let start = &raw const conformance_guest_start;
    let end = &raw const conformance_guest_end;
    let len = end as usize - start as usize;
    // SAFETY: both symbols are defined above in one read-only section of this image,
    // `end` after `start`; the bytes between are the assembled instructions, never
    // written.
    unsafe { core::slice::from_raw_parts(start, len) }
}
