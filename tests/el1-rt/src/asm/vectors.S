// EL1 exception vectors. Every entry saves x0-x30, ELR_EL1 and SPSR_EL1 in an
// `ExceptionFrame` (exceptions.rs) on the current stack and calls
//     el1_rt_handle_exception(kind: u64, frame: &mut ExceptionFrame)
// where kind is the vector index 0-15 (group * 4 + type, groups: current EL with SP0,
// current EL with SPx, lower EL AArch64, lower EL AArch32; types: sync, IRQ, FIQ, SError).
// If the handler returns, the frame (possibly with a changed ELR) is restored and we eret.
//
// FP/SIMD registers are not saved: the only exception that returns is the expected abort of
// a probe access (probe.rs), whose asm! block declares clobber_abi("C"), so the compiler
// keeps nothing live in caller-saved registers across it; callee-saved ones are preserved
// by the Rust handler as for any call.

.equ FRAME_SIZE, 272            // 31 GPRs + ELR + SPSR + padding to 16 bytes

.macro vector_entry kind
    .balign 0x80
    sub     sp, sp, #FRAME_SIZE
    stp     x0, x1, [sp, #0]
    mov     x0, #\kind
    b       exception_common
.endm

.section .text.vectors, "ax"
.balign 0x800
.global el1_rt_vectors
el1_rt_vectors:
    vector_entry 0
    vector_entry 1
    vector_entry 2
    vector_entry 3
    vector_entry 4
    vector_entry 5
    vector_entry 6
    vector_entry 7
    vector_entry 8
    vector_entry 9
    vector_entry 10
    vector_entry 11
    vector_entry 12
    vector_entry 13
    vector_entry 14
    vector_entry 15

exception_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x1, elr_el1
    stp     x30, x1, [sp, #240]
    mrs     x1, spsr_el1
    str     x1, [sp, #256]

    mov     x1, sp
    bl      el1_rt_handle_exception

    ldr     x1, [sp, #256]
    msr     spsr_el1, x1
    ldp     x30, x1, [sp, #240]
    msr     elr_el1, x1
    ldp     x28, x29, [sp, #224]
    ldp     x26, x27, [sp, #208]
    ldp     x24, x25, [sp, #192]
    ldp     x22, x23, [sp, #176]
    ldp     x20, x21, [sp, #160]
    ldp     x18, x19, [sp, #144]
    ldp     x16, x17, [sp, #128]
    ldp     x14, x15, [sp, #112]
    ldp     x12, x13, [sp, #96]
    ldp     x10, x11, [sp, #80]
    ldp     x8, x9, [sp, #64]
    ldp     x6, x7, [sp, #48]
    ldp     x4, x5, [sp, #32]
    ldp     x2, x3, [sp, #16]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #FRAME_SIZE
    eret
