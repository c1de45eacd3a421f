//! The lines xtask reads (xtask/src/bench/parse.rs): raw sums, `key=value`, one line each.
//!
//! `bench: result op=<op> n=<calls> ticks=<t> nop_ticks=<t> el2=<sum> el2_min=<m>
//!  el2_max=<m> el1=<sum> nop_el1=<sum>`: the measured loop and its NOP twin.
//! `bench: memory ram_bytes=<b> carve_out_bytes=<b> entry_ticks=<t>`: what the DTB says,
//!  and CNTVCT_EL0 when the image was entered (the payload's boot, in virtual time).

use crate::measured_loop::Measured;
use el1_rt::board::Board;
use el1_rt::say;

/// One operation: the loop with the calls and its NOP twin.
pub fn result(op: &str, measured: &Measured, twin: &Measured) {
    say!(
        "result op={op} n={} ticks={} nop_ticks={} el2={} el2_min={} el2_max={} el1={} nop_el1={}",
        measured.n,
        measured.ticks,
        twin.ticks,
        measured.el2,
        measured.el2_min,
        measured.el2_max,
        measured.el1,
        twin.el1
    );
}

/// RAM and the payload's carve-out as the host's DTB describes them, and the virtual
/// counter at the image's entry.
pub fn memory(board: &Board, entry_ticks: u64) {
    let ram: usize = board.memory.iter().map(|r| r.size).sum();
    let carve_out: usize = board.carve_outs.iter().map(|r| r.size).sum();
    say!("memory ram_bytes={ram} carve_out_bytes={carve_out} entry_ticks={entry_ticks}");
}

/// CNTVCT_EL0: virtual time since QEMU started, 16 instructions per tick at
/// `-icount shift=0` (the payload sets CNTVOFF_EL2 to 0).
pub fn virtual_ticks() -> u64 {
    let ticks: u64;
    // SAFETY: reading the virtual counter has no side effect; EL1 may read it.
    unsafe {
        core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) ticks, options(nomem, nostack));
    }
    ticks
}
