//! A host read of a page the guest owns, until the abort EL2 injects reaches the host:
//! EL2 takes the stage-2 fault, finds the page is not the host's and injects a synchronous
//! external abort; el1-rt's handler records it and steps over the load.
//!
//! Each read is measured alone between counter reads (the handler must be armed before
//! every one, which an asm loop cannot do); its twin reads a host page, which does not
//! fault. EL1 instructions are therefore the load plus el1-rt's whole exception entry,
//! handler and return. The virtual counter is read around each window after a sync to a
//! tick edge and `i % 16` NOPs, so that the windows start at every phase of the 16-
//! instruction tick alike and the quantisation averages out.

use crate::config::Counts;
use crate::measured_loop::Measured;
use crate::pages::Pages;
use crate::report;
use core::arch::asm;
use el1_rt::exceptions;
use el1_rt::fail;
use el1_rt::free_pages::PAGE_SIZE;

/// One window's counts.
struct Sample {
    ticks: u64,
    el2: u32,
    el1: u32,
}

pub fn run(counts: &Counts, pages: &mut Pages, private_pfn: u64) {
    let private = private_pfn as usize * PAGE_SIZE;
    let own = pages.alloc(1, 1) as usize * PAGE_SIZE;
    // The host's stage 2 maps a page lazily once a donation nearby split its block: read
    // the twin once first, so that no window measures that one-time fix-up.
    // SAFETY: `own` is a host page just allocated, identity-mapped Normal memory that
    // nothing else uses; the value is discarded.
    unsafe { core::ptr::read_volatile(own as *const u64) };
    let measured = repeat(counts.aborts, private, true);
    let twin = repeat(counts.aborts, own, false);
    report::result("host_abort", &measured, &twin);
}

fn repeat(n: u64, address: usize, aborts: bool) -> Measured {
    let mut sums = Measured {
        n,
        ticks: 0,
        el2: 0,
        el2_min: u64::MAX,
        el2_max: 0,
        el1: 0,
        mismatches: 0,
    };
    for i in 0..n {
        exceptions::expect_data_abort();
        let sample = window(address, i % 16);
        let abort = exceptions::take_data_abort();
        match (abort, aborts) {
            (Some(abort), true) if abort.is_injected_abort_at(address) => {}
            (None, false) => {}
            (Some(abort), true) => fail!(
                "host read of guest page {address:#x}: wrong abort (ESR_EL1={:#x}, FAR_EL1={:#x})",
                abort.esr,
                abort.far
            ),
            (None, true) => fail!("host read of guest page {address:#x} did not abort"),
            (Some(abort), false) => fail!(
                "host read of its own page {address:#x} aborted (ESR_EL1={:#x})",
                abort.esr
            ),
        }
        let el2 = u64::from(sample.el2);
        sums.ticks += sample.ticks;
        sums.el2 += el2;
        sums.el2_min = sums.el2_min.min(el2);
        sums.el2_max = sums.el2_max.max(el2);
        sums.el1 += u64::from(sample.el1);
    }
    sums
}

/// One load of `address` between counter reads, started `jitter` (0..16) instructions
/// after a tick edge.
fn window(address: usize, jitter: u64) -> Sample {
    let (t0, t1, el1_a, el1_b, el2_a, el2_b): (u64, u64, u64, u64, u64, u64);
    // SAFETY: `address` is identity-mapped Normal memory (el1-rt maps all RAM): a page the
    // guest owns, whose load EL2 refuses with an abort that the armed el1-rt handler steps
    // over, or a host page nothing else uses. The load's value is discarded. The handler
    // restores every general register and runs Rust code that may use FP/SIMD registers,
    // hence clobber_abi("C") (and outputs in callee-saved registers, which it requires).
    // The computed branch lands inside the NOP sled of this block.
    unsafe {
        asm!(
            // x20 = where in the NOP sled to land: `jitter` NOPs before the window.
            "adr x20, 3f",
            "sub x20, x20, {jitter}, lsl #2",
            "mrs x22, cntvct_el0",
            "1: mrs x23, cntvct_el0",
            "cmp x22, x23",
            "b.eq 1b",
            "br x20",
            ".rept 15",
            "nop",
            ".endr",
            // The window: x22/x23 = ticks, x24/x25 = EL1 count, x26/x27 = EL2 count.
            "3: mrs x22, cntvct_el0",
            "mrs x24, pmevcntr1_el0",
            "mrs x26, pmevcntr0_el0",
            "ldr x21, [{address}]",
            "mrs x27, pmevcntr0_el0",
            "mrs x25, pmevcntr1_el0",
            "mrs x23, cntvct_el0",
            address = in(reg) address,
            jitter = in(reg) jitter,
            out("x20") _,
            out("x21") _,
            out("x22") t0,
            out("x23") t1,
            out("x24") el1_a,
            out("x25") el1_b,
            out("x26") el2_a,
            out("x27") el2_b,
            clobber_abi("C"),
            options(nostack),
        );
    }
    Sample {
        ticks: t1 - t0,
        el2: (el2_b as u32).wrapping_sub(el2_a as u32),
        el1: (el1_b as u32).wrapping_sub(el1_a as u32),
    }
}
