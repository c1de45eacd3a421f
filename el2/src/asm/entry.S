/*
 * Entry points of the payload: the arm64 Image header, the boot CPU's entry and the
 * entry every other CPU takes when the PSCI relay starts it.
 *
 * Hand-over to Rust (both entries), as the Rust side relies on:
 *   x0  = boot CPU: the DTB address the loader passed; secondary: its logical CPU index
 *   x1  = boot CPU: the exception level we were entered at (2 expected)
 *   sp  = top of this CPU's stack (a guard page sits below each stack)
 *   FP/SIMD enabled at the current EL (rustc emits NEON), relocations applied, .bss zero.
 */

.section .text.head, "ax"
.global _start
_start:
    /* arm64 Image header (Documentation/arch/arm64/booting.rst). */
    b       primary_entry
    .long   0
    .quad   0                       /* text_offset: any 2 MiB-aligned base */
    .quad   __image_size            /* whole static carve-out, .bss and stacks included */
    .quad   0x2                     /* flags: little endian, 4 KiB pages */
    .quad   0
    .quad   0
    .quad   0
    .ascii  "ARM\x64"
    .long   0

.section .text.entry, "ax"
primary_entry:
    mov     x20, x0
    mrs     x21, CurrentEL
    lsr     x21, x21, #2
    and     x21, x21, #3
    bl      enable_fp_at_current_el

    /*
     * Self-relocation: the image is linked at 0, so every R_AARCH64_RELATIVE entry
     * says "store load_address + addend at load_address + offset". Any other type
     * means the link went wrong: stop rather than run with a broken pointer.
     */
    adrp    x9, __image_start
    add     x9, x9, :lo12:__image_start
    adrp    x10, __rela_start
    add     x10, x10, :lo12:__rela_start
    adrp    x11, __rela_end
    add     x11, x11, :lo12:__rela_end
1:  cmp     x10, x11
    b.hs    3f
    ldp     x12, x13, [x10], #16
    ldr     x14, [x10], #8
    cmp     x13, #1027              /* R_AARCH64_RELATIVE */
    b.ne    2f
    add     x14, x14, x9
    str     x14, [x12, x9]
    b       1b
2:  wfe
    b       2b

3:  adrp    x9, __bss_start
    add     x9, x9, :lo12:__bss_start
    adrp    x10, __bss_end
    add     x10, x10, :lo12:__bss_end
4:  cmp     x9, x10
    b.hs    5f
    stp     xzr, xzr, [x9], #16
    b       4b

5:  mov     x0, #0
    bl      stack_top_for_cpu
    mov     sp, x0
    mov     x0, x20
    mov     x1, x21
    bl      rust_primary_main
6:  wfe
    b       6b

.global secondary_entry
secondary_entry:
    mov     x19, x0
    mov     x21, #2
    bl      enable_fp_at_current_el
    mov     x0, x19
    bl      stack_top_for_cpu
    mov     sp, x0
    mov     x0, x19
    bl      rust_secondary_main
7:  wfe
    b       7b

/*
 * x0 = logical CPU index -> x0 = top of its stack. Clobbers x9, x10.
 * CPU 0 (the boot CPU, also when PSCI starts it again) uses BOOT_STACK in the image; CPU
 * i >= 1 uses slot i - 1 of the per-CPU region the boot CPU laid out from the DTB
 * (el2/src/per_cpu.rs): top = SECONDARY_STACKS + i * stride. SECONDARY_STACKS was cleaned
 * to the point of coherency, so this load is right with the MMU off. Still 0 means no
 * region: park (only EL2's PSCI relay starts CPUs, and only after it exists).
 */
stack_top_for_cpu:
    ldr     x10, ={stack_stride}
    cbnz    x0, 1f
    adrp    x9, BOOT_STACK
    add     x9, x9, :lo12:BOOT_STACK
    add     x0, x9, x10
    ret
1:  adrp    x9, SECONDARY_STACKS
    ldr     x9, [x9, :lo12:SECONDARY_STACKS]
    cbz     x9, 2f
    madd    x0, x0, x10, x9
    ret
2:  wfe
    b       2b

/*
 * CPTR_EL2 with no traps (TFP, TZ, TSM, TTA, TCPAC clear; RES1 bits set) at EL2, or
 * CPACR_EL1.FPEN = 0b11 at EL1, so the Rust code (and, for EL2, the host) may use
 * FP/SIMD. Clobbers x9.
 */
enable_fp_at_current_el:
    cmp     x21, #2
    b.ne    1f
    mov     x9, #{cptr_el2_no_traps}
    msr     cptr_el2, x9
    isb
    ret
1:  mrs     x9, cpacr_el1
    orr     x9, x9, #(3 << 20)
    msr     cpacr_el1, x9
    isb
    ret
