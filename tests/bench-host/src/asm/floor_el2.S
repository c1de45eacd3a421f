// The floor: the cheapest possible HVC round trip on this QEMU, measured with the same
// loop as every other call. QEMU's generic loader starts the bench host at EL2 (no
// payload); `bench_floor_enter_el1` installs the vectors below and drops the image to EL1
// at its own entry point, where it runs again from the start, this time as the host.
// The only handler is a host HVC that answers NOT_SUPPORTED in 8 instructions
// (stp, mrs, lsr, cmp, b.ne, mov, ldp, eret); anything else ends QEMU with exit status 3.
//
// EL1 gets what the payload gives the host for the measurement to mean the same: all PMU
// counters with EL2 counting allowed (MDCR_EL2.HPMN = PMCR_EL0.N, HPMD = 0), the counter
// and timer (CNTHCTL_EL2 = 3, CNTVOFF_EL2 = 0), no stage 2, no traps. EL2 keeps its MMU
// off: the handler touches only its stack, in this image's .bss.

.macro bench_adr_l reg, sym
    adrp    \reg, \sym
    add     \reg, \reg, :lo12:\sym
.endm

.section .text.bench_floor, "ax"
// bench_floor_enter_el1(dtb: x0) -> !: at EL2, MMU off.
.global bench_floor_enter_el1
bench_floor_enter_el1:
    mov     x19, x0
    mov     x1, #0x22ff             // CPTR_EL2: RES1 bits only, FP/SIMD, SVE, SME do not trap
    msr     cptr_el2, x1
    bench_adr_l   x1, bench_floor_vectors
    msr     vbar_el2, x1
    bench_adr_l   x1, bench_floor_stack_end
    mov     sp, x1                  // SP_EL2: the EL1 boot stack is the host's from now on
    mov     x1, #(1 << 31)          // HCR_EL2.RW: EL1 is AArch64
    orr     x1, x1, #(3 << 40)      // API, APK: pointer authentication does not trap
    msr     hcr_el2, x1
    mrs     x1, pmcr_el0
    ubfx    x1, x1, #11, #5         // MDCR_EL2.HPMN = PMCR_EL0.N; HPMD = 0, no traps
    msr     mdcr_el2, x1
    mov     x1, #3                  // CNTHCTL_EL2: EL1 may use the physical counter, timer
    msr     cnthctl_el2, x1
    msr     cntvoff_el2, xzr
    msr     hstr_el2, xzr
    msr     vttbr_el2, xzr
    mrs     x1, midr_el1
    msr     vpidr_el2, x1
    mrs     x1, mpidr_el1
    msr     vmpidr_el2, x1
    movz    x1, #0x0800             // SCTLR_EL1: the ARMv8.0 RES1 bits, MMU and caches off
    movk    x1, #0x30d0, lsl #16
    msr     sctlr_el1, x1
    mov     x1, #0x3c5              // SPSR_EL2: EL1h, D, A, I, F masked
    msr     spsr_el2, x1
    bench_adr_l   x1, _head               // the image's own entry (el1-rt asm/entry.S)
    msr     elr_el2, x1
    mov     x0, x19                 // x0 = DTB, as the boot protocol wants
    isb
    eret

.macro floor_unexpected_vector
    .balign 0x80
    b       bench_floor_unexpected
.endm

.section .text.bench_floor_vectors, "ax"
.balign 0x800
bench_floor_vectors:
    .rept 8                         // current EL, SP0 and SPx
    floor_unexpected_vector
    .endr
    .balign 0x80                    // lower EL, AArch64, synchronous
    stp     x1, x2, [sp, #-16]!
    mrs     x1, esr_el2
    lsr     x1, x1, #26
    cmp     x1, #0x16               // EC 0x16: HVC from AArch64
    b.ne    bench_floor_unexpected
    mov     x0, #-1                 // SMCCC NOT_SUPPORTED
    ldp     x1, x2, [sp], #16
    eret
    .rept 7                         // lower EL AArch64 IRQ/FIQ/SError, AArch32
    floor_unexpected_vector
    .endr

bench_floor_unexpected:
    adr     x1, 1f                  // semihosting SYS_EXIT(ApplicationExit, 3)
    mov     x0, #0x18
    hlt     #0xf000
2:  wfe
    b       2b
.balign 8
1:  .quad   0x20026, 3

.section .bss.bench_floor_stack, "aw", %nobits
.balign 16
    .space  4096
bench_floor_stack_end:
