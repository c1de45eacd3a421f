//! One measured operation: `n` HVCs back to back (asm/measured_loop.S), then the same loop
//! with a NOP instead of the HVC. The difference is what the HVCs cost, counted three ways:
//! EL2 instructions (PMU counter 0), EL1 instructions (PMU counter 1: the HVC itself and,
//! for VCPU_RUN, the guest's instructions) and virtual time (CNTVCT_EL0).

use crate::report;
use core::arch::global_asm;
use el1_rt::fail;

global_asm!(include_str!("asm/measured_loop.S"));

/// The loop's arguments and results; the layout is the one asm/measured_loop.S uses.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct LoopArgs {
    regs: [u64; 8],
    strides: [u64; 8],
    n: u64,
    expect: [u64; 2],
    ticks: u64,
    el2: u64,
    el2_min: u64,
    el2_max: u64,
    el1: u64,
    mismatches: u64,
}

const _: () = {
    assert!(core::mem::offset_of!(LoopArgs, strides) == 64);
    assert!(core::mem::offset_of!(LoopArgs, n) == 128);
    assert!(core::mem::offset_of!(LoopArgs, expect) == 136);
    assert!(core::mem::offset_of!(LoopArgs, ticks) == 152);
    assert!(core::mem::offset_of!(LoopArgs, el2) == 160);
    assert!(core::mem::offset_of!(LoopArgs, el2_min) == 168);
    assert!(core::mem::offset_of!(LoopArgs, el2_max) == 176);
    assert!(core::mem::offset_of!(LoopArgs, el1) == 184);
    assert!(core::mem::offset_of!(LoopArgs, mismatches) == 192);
};

unsafe extern "C" {
    fn bench_hvc_loop(args: *mut LoopArgs);
    fn bench_nop_loop(args: *mut LoopArgs);
}

/// `n` calls: the first with x0..x7 = `regs`, each next one with `strides` added to x1..x4.
#[derive(Clone, Copy, Debug)]
pub struct Calls {
    pub regs: [u64; 8],
    /// Added to x1..x4 (index 0 is x1) after every call.
    pub strides: [u64; 4],
    pub n: u64,
    /// What x0 and x1 of every call must be.
    pub expect: [u64; 2],
}

impl Calls {
    /// `n` times the same call, which must return `expect` in x0 and x1.
    pub fn repeat(regs: [u64; 8], n: u64, expect: [u64; 2]) -> Self {
        Self {
            regs,
            strides: [0; 4],
            n,
            expect,
        }
    }

    /// Steps register x`register` (1..=4) by `stride` after every call.
    pub fn stepping(mut self, register: usize, stride: u64) -> Self {
        self.strides[register - 1] = stride;
        self
    }
}

/// What one loop measured (raw sums; xtask divides).
#[derive(Clone, Copy, Debug)]
pub struct Measured {
    pub n: u64,
    pub ticks: u64,
    pub el2: u64,
    pub el2_min: u64,
    pub el2_max: u64,
    pub el1: u64,
    pub mismatches: u64,
}

/// Runs `calls` and its NOP twin and prints the `bench: result op=<op> ...` line. A call
/// that returned anything but `expect` stops the bench with a failure.
pub fn measure(op: &str, calls: &Calls) -> Measured {
    if calls.n == 0 {
        fail!("{op}: a measured loop needs at least one call");
    }
    let measured = run(calls, true);
    if measured.mismatches != 0 {
        fail!(
            "{op}: {} of {} calls did not return x0={:#x} x1={:#x}",
            measured.mismatches,
            calls.n,
            calls.expect[0],
            calls.expect[1]
        );
    }
    if measured.el2_max == 0 {
        fail!(
            "{op}: EL2 executed no instruction: the payload does not let EL1 count EL2 (MDCR_EL2.HPMD)"
        );
    }
    let twin = run(calls, false);
    report::result(op, &measured, &twin);
    measured
}

fn run(calls: &Calls, hvc: bool) -> Measured {
    let mut args = LoopArgs {
        regs: calls.regs,
        n: calls.n,
        expect: calls.expect,
        ..LoopArgs::default()
    };
    args.strides[1..5].copy_from_slice(&calls.strides);
    // SAFETY: the loop reads and writes only `args` and its own stack; the HVCs are calls of
    // docs/abi.md, whose effects on host memory the caller arranged (pages given away are
    // not touched again by this image until they come back). The NOP twin makes no call.
    unsafe {
        if hvc {
            bench_hvc_loop(&mut args);
        } else {
            bench_nop_loop(&mut args);
        }
    }
    Measured {
        n: args.n,
        ticks: args.ticks,
        el2: args.el2,
        el2_min: args.el2_min,
        el2_max: args.el2_max,
        el1: args.el1,
        mismatches: args.mismatches,
    }
}
