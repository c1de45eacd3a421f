// Entry points of an EL1 test image: the boot CPU (from the payload, Linux arm64 boot
// protocol) and secondary CPUs (from PSCI CPU_ON), plus the MMU switch both of them use.
//
// Boot CPU hand-over (Documentation/arch/arm64/booting.rst): EL1h, MMU and D-cache off,
// DAIF masked, x0 = physical address of the DTB, x1-x3 = 0.
// Secondary hand-over (PSCI CPU_ON): same state, x0 = context_id = physical address of the
// CPU's `CpuBoot` block (cpus.rs), which the boot CPU cleaned to the point of coherency.
//
// The image's linker script provides __image_start, __image_end, __image_size (the arm64
// Image header's image_size), __bss_start/__bss_end (16-byte aligned) and __boot_stack_end.
// The image provides `el1_rt_main(dtb: usize) -> !` (the `entry!` macro defines it).
//
// TPIDR_EL1 holds the CPU's number (0 for the boot CPU, the `CpuBoot` index otherwise):
// the exception handler keys its per-CPU abort probe on it.
//
// Nothing here touches the stack before it is set, and no Rust code runs before FP/SIMD is
// enabled (rustc emits NEON for ordinary code) and VBAR_EL1 points at our vectors.

.macro adr_l reg, sym
    adrp    \reg, \sym
    add     \reg, \reg, :lo12:\sym
.endm

// CPACR_EL1.FPEN = 0b11: FP/SIMD does not trap at EL1 or EL0.
.equ CPACR_EL1_FPEN, (3 << 20)

.section .text.head, "ax"
.global _head
// arm64 Image header, so that loaders (and the payload) can see how much memory the image
// needs including .bss and stacks: image_size covers __image_start..__image_end.
_head:
    b       primary_entry           // code0
    .long   0                       // code1
    .quad   0                       // text_offset
    .quad   __image_size            // image_size
    .quad   0xa                     // flags: little endian, 4 KiB pages, bit 3 "placement
                                    // anywhere", so that U-Boot's booti leaves the image
                                    // where it was loaded: it only runs at its link address
    .quad   0                       // res2
    .quad   0                       // res3
    .quad   0                       // res4
    .ascii  "ARM\x64"               // magic
    .long   0                       // res5

.section .text.entry, "ax"

primary_entry:
    mov     x19, x0                 // x19 = DTB address, kept until el1_rt_main

    // Remove any cache lines covering the image before the first write with the MMU off,
    // so that nothing stale shadows what we write once caches are on. With stage 2 on,
    // EL2 upgrades this to clean+invalidate: still correct, as we have written nothing yet.
    adr_l   x0, __image_start
    adr_l   x1, __image_end
    mrs     x2, ctr_el0
    ubfx    x2, x2, #16, #4         // CTR_EL0.DminLine: log2(words per line)
    mov     x3, #4
    lsl     x3, x3, x2              // x3 = D-cache line size in bytes
    sub     x4, x3, #1
    bic     x0, x0, x4
1:  dc      ivac, x0
    add     x0, x0, x3
    cmp     x0, x1
    b.lo    1b
    dsb     sy

    // Zero .bss (16-byte aligned at both ends, see the image's linker script).
    adr_l   x0, __bss_start
    adr_l   x1, __bss_end
2:  cmp     x0, x1
    b.hs    3f
    stp     xzr, xzr, [x0], #16
    b       2b
3:
    adr_l   x0, __boot_stack_end
    mov     sp, x0
    msr     tpidr_el1, xzr          // the boot CPU is CPU 0
    mov     x0, #CPACR_EL1_FPEN
    msr     cpacr_el1, x0
    adr_l   x0, el1_rt_vectors
    msr     vbar_el1, x0
    isb

    mov     x0, x19                 // el1_rt_main(dtb: usize) -> !
    bl      el1_rt_main
4:  wfe
    b       4b

// Secondary CPU entry, given to PSCI CPU_ON. x0 = &CpuBoot (physical = virtual):
//   [x0, #0]  stack_top   [x0, #8]  mair   [x0, #16] tcr   [x0, #24] ttbr0
//   [x0, #32] sctlr       [x0, #40] index  [x0, #48] task
// The block is read with the MMU off, which is why the boot CPU cleaned it to PoC.
.global el1_rt_secondary_entry
el1_rt_secondary_entry:
    ldr     x1, [x0, #0]
    mov     sp, x1
    ldr     x1, [x0, #40]
    msr     tpidr_el1, x1           // this CPU's number
    mov     x1, #CPACR_EL1_FPEN
    msr     cpacr_el1, x1
    adr_l   x1, el1_rt_vectors
    msr     vbar_el1, x1
    isb
    mov     x19, x0                 // x19 = &CpuBoot across the calls below

    mrs     x1, CurrentEL
    ubfx    x1, x1, #2, #2
    cmp     x1, #1
    b.ne    5f

    ldp     x0, x1, [x19, #8]       // mair, tcr
    ldp     x2, x3, [x19, #24]      // ttbr0, sctlr
    bl      el1_rt_enable_mmu
    mov     x0, x19                 // el1_rt_secondary_main(boot: &CpuBoot) -> !
    bl      el1_rt_secondary_main
    b       4b

5:  mov     x0, x19                 // el1_rt_secondary_at_wrong_el(boot: &CpuBoot, el: u64) -> !
    bl      el1_rt_secondary_at_wrong_el
    b       4b

// el1_rt_enable_mmu(mair: x0, tcr: x1, ttbr0: x2, sctlr: x3)
// Leaf function: uses no stack, so the MMU can come on under it. The caller runs from an
// identity-mapped address, so execution simply continues at the same address afterwards.
.global el1_rt_enable_mmu
el1_rt_enable_mmu:
    msr     mair_el1, x0
    msr     tcr_el1, x1
    msr     ttbr0_el1, x2
    isb
    tlbi    vmalle1                 // nothing from an earlier regime may survive
    ic      iallu                   // nor instructions fetched before caches were on
    dsb     nsh
    isb
    msr     sctlr_el1, x3
    isb
    ret
