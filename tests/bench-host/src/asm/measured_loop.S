// The measured loop: `n` HVCs back to back, each counted by the PMU, the whole loop timed
// with the virtual counter. Its twin runs the same instructions with a NOP in place of the
// HVC, so that (loop - twin) is exactly what the HVCs cost.
//
//     bench_hvc_loop(args: *mut LoopArgs)      bench_nop_loop(args: *mut LoopArgs)
//
// LoopArgs (hvc_loop.rs, offsets checked there):
//     0   regs[8]      x0..x7 of the first call
//     64  strides[8]   added to regs[1..=4] after every call (pfn, gfn, ... of the next call)
//     128 n            number of calls, at least 1
//     136 expect[2]    the x0 and x1 every call must return
//   results:
//     152 ticks        CNTVCT_EL0 ticks the loop took (16 instructions each at -icount shift=0)
//     160 el2          PMU counter 0 (INST_RETIRED at EL2 only) over the loop
//     168 el2_min      fewest EL2 instructions of one call
//     176 el2_max      most EL2 instructions of one call
//     184 el1          PMU counter 1 (INST_RETIRED at EL1 only) over the loop
//     192 mismatches   x0 or x1 that differed from expect (each counts once)
//
// Both variants execute exactly the same instructions at EL1 (no data-dependent branches:
// min/max and the mismatch count use csel/cinc), so the twin's ticks and EL1 count are the
// loop's own overhead. The counters are 32 bits wide: deltas are taken in W registers.
// x19-x28 hold the loop state across the HVC: docs/abi.md 1.2 preserves x4-x30.

.macro measured_loop name, insn
.section .text.\name, "ax"
.global \name
.balign 64
\name:
    stp     x19, x20, [sp, #-80]!
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    mov     x19, x0                 // x19 = &LoopArgs
    ldr     x20, [x19, #128]        // x20 = calls left
    ldp     x25, x27, [x19, #136]   // x25, x27 = expected x0, x1
    mov     x22, #0                 // x22 = mismatches
    mov     x23, #-1                // x23 = EL2 minimum
    mov     x24, #0                 // x24 = EL2 maximum
    isb
    mrs     x28, cntvct_el0         // x28 = first tick
    mrs     x21, pmevcntr1_el0      // x21 = EL1 count at the start
    mrs     x26, pmevcntr0_el0      // x26 = EL2 count after the previous call
    str     x26, [x19, #160]
1:  ldp     x0, x1, [x19, #0]
    ldp     x2, x3, [x19, #16]
    ldp     x4, x5, [x19, #32]
    ldp     x6, x7, [x19, #48]
    \insn
    mrs     x9, pmevcntr0_el0       // EL1 instructions do not move the EL2 counter
    sub     w10, w9, w26            // EL2 instructions of this one call
    mov     x26, x9
    cmp     x10, x23
    csel    x23, x10, x23, lo
    cmp     x10, x24
    csel    x24, x10, x24, hi
    cmp     x0, x25
    cinc    x22, x22, ne
    cmp     x1, x27
    cinc    x22, x22, ne
    ldp     x9, x10, [x19, #8]      // regs[1..=2] += strides[1..=2]
    ldp     x11, x12, [x19, #72]
    add     x9, x9, x11
    add     x10, x10, x12
    stp     x9, x10, [x19, #8]
    ldp     x9, x10, [x19, #24]     // regs[3..=4] += strides[3..=4]
    ldp     x11, x12, [x19, #88]
    add     x9, x9, x11
    add     x10, x10, x12
    stp     x9, x10, [x19, #24]
    subs    x20, x20, #1
    b.ne    1b
    mrs     x10, pmevcntr0_el0
    mrs     x11, pmevcntr1_el0
    isb
    mrs     x9, cntvct_el0
    sub     x9, x9, x28
    ldr     x12, [x19, #160]
    sub     w10, w10, w12
    sub     w11, w11, w21
    str     x9, [x19, #152]
    str     x10, [x19, #160]
    stp     x23, x24, [x19, #168]
    str     x11, [x19, #184]
    str     x22, [x19, #192]
    ldp     x27, x28, [sp, #64]
    ldp     x25, x26, [sp, #48]
    ldp     x23, x24, [sp, #32]
    ldp     x21, x22, [sp, #16]
    ldp     x19, x20, [sp], #80
    ret
.endm

measured_loop bench_hvc_loop, "hvc #0"
measured_loop bench_nop_loop, "nop"
