/*
 * EL2 exception vectors.
 *
 * From the host (lower EL, AArch64 or a 32-bit EL0), after branch-predictor hardening
 * (`run_branch_hardening`, on every CPU that needs it):
 *   sync -> the caller-saved registers x0-x18 and x30 are pushed as a `TrapFrame`
 *   (x0 at offset 0, ..., x18 at 144, x30 at 152) and `handle_lower_sync(&mut TrapFrame)`
 *   runs; x19-x29 are callee-saved under AAPCS64, so the Rust code preserves them for the
 *   lower EL without us saving them. On return the frame is restored and we ERET.
 *   A data abort instead saves all of x0-x30 (`lower_dabt_slow`): EL2 may emulate it.
 * Everything else (an exception taken at EL2 itself, IRQ/FIQ/SError, which the host's
 * HCR_EL2 never routes here) is fatal: `handle_fatal_exception(kind, &FatalFrame)` prints the
 * syndrome and halts. It first moves to a per-CPU emergency stack, so a stack overflow
 * into a guard page can still be reported.
 */

.macro save_trap_frame
    sub     sp, sp, #160
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x30, [sp, #144]
.endm

.macro restore_trap_frame_and_eret
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x30, [sp, #144]
    add     sp, sp, #160
    eret
.endm

/*
 * Branch-predictor hardening (Spectre-v2 and Spectre-BHB) on an entry from a lower EL,
 * before EL2's first indirect branch: what BRANCH_HARDENING (spectre.rs, chosen per CPU by
 * platform::branch_hardening in Linux's order) says, in pKVM's `__bp_harden_hyp_vecs` form
 * (arch/arm64/kvm/hyp/hyp-entry.S `hyp_ventry`, arch/arm64/include/asm/assembler.h):
 *   - CLRBHB, isb (`mitigate_spectre_bhb_clear_insn`);
 *   - the branch loop: k taken branches, then `dsb nsh; isb` (`mitigate_spectre_bhb_loop`,
 *     Linux's `sb` without FEAT_SB), k from the word;
 *   - an SMC to SMCCC_ARCH_WORKAROUND_3 or _1 (`spectrev2_smccc_wa1_smc`, WA3 when chosen).
 * Expects the word in x2 (non-zero); clobbers x0-x3 (an SMCCC 1.1 architecture call keeps
 * x4-x17 and everything above, DEN0028 section 2.6).
 */
.macro run_branch_hardening
    tbz     x2, #{hardening_clrbhb_bit}, .Lno_clrbhb\@
    hint    #22                         /* CLRBHB */
    isb
.Lno_clrbhb\@:
    tbz     x2, #{hardening_loop_bit}, .Lno_loop\@
    ubfx    x3, x2, #{hardening_k_shift}, #8
.Lbhb_loop\@:
    b       . + 4
    subs    x3, x3, #1
    b.ne    .Lbhb_loop\@
    dsb     nsh
    isb
.Lno_loop\@:
    tst     x2, #{hardening_smc_mask}
    b.eq    .Lno_smc\@
    movz    w0, #0x8000, lsl #16
    mov     w1, #0x8000                 /* SMCCC_ARCH_WORKAROUND_1 = 0x8000_8000 */
    mov     w3, #0x3fff                 /* SMCCC_ARCH_WORKAROUND_3 = 0x8000_3fff */
    tst     x2, #{hardening_wa3_mask}
    csel    w1, w3, w1, ne
    orr     w0, w0, w1
    smc     #0
.Lno_smc\@:
.endm

/*
 * The host's synchronous exceptions, after hardening. On entry x1 and x2 are saved at [sp].
 *
 * Fast path: an HVC whose function id belongs to neither the SMCCC architecture calls
 * (owner 0) nor the vendor hypervisor service (owner 6) is answered NOT_SUPPORTED here,
 * touching only x0 (the result) and two scratch registers it restores. Everything else
 * goes to Rust.
 */
.macro lower_sync_dispatch
    mrs     x1, esr_el2
    lsr     x1, x1, #26
    cmp     x1, #0x16
    b.ne    2f
    ubfx    x2, x0, #24, #6
    cbz     x2, 1f
    cmp     x2, #6
    b.eq    host_vendor_hyp_call
    mov     x0, #-1
    ldp     x1, x2, [sp], #16
    eret
1:  ldp     x1, x2, [sp], #16
    b       lower_sync_slow
    /*
     * Not an HVC. A data abort from the host (EC 0x24) may be an access EL2 emulates
     * (the GIC redistributors' RD_base frames), whose data register can be any of
     * x0-x30: that path saves all of them. HVCs never come this way.
     */
2:  cmp     x1, #0x24
    ldp     x1, x2, [sp], #16
    b.eq    lower_dabt_slow
    b       lower_sync_slow
.endm

/*
 * Every synchronous exception from the host (HVC, SMC trap, system-register trap, abort)
 * is hardened first, as pKVM's host vectors are (the host is not trusted either): with
 * nothing to run (BRANCH_HARDENING = 0) that costs three instructions, otherwise
 * `lower_sync_hardened` runs the mitigation and continues with the same dispatch. IRQ, FIQ
 * and SError from the host never reach EL2 (the host's HCR_EL2 leaves IMO/FMO/AMO clear):
 * those slots are fatal.
 */
.macro lower_sync_vector
.balign 0x80
    stp     x1, x2, [sp, #-16]!
    adrp    x2, BRANCH_HARDENING
    ldr     x2, [x2, :lo12:BRANCH_HARDENING]
    cbnz    x2, lower_sync_hardened
    lower_sync_dispatch
.endm

.macro fatal_vector kind
.balign 0x80
    fatal_body \kind
.endm

.macro fatal_body kind
    /*
     * TPIDR_EL2 is a scratch register here: nothing else at EL2 uses it, and this path
     * never returns.
     */
    msr     tpidr_el2, x0
    mrs     x0, mpidr_el1
    and     x0, x0, #{emergency_slots_mask}
    lsl     x0, x0, #{emergency_stack_shift}
    mov     sp, x0
    adrp    x0, EMERGENCY_STACKS
    add     x0, x0, :lo12:EMERGENCY_STACKS
    add     sp, sp, x0
    add     sp, sp, #{emergency_stack_size}
    mov     x0, #\kind
    b       fatal_common
.endm

.section .text.vectors, "ax"
.balign 0x800
.global el2_vectors
el2_vectors:
    /* Current EL with SP_EL0. */
    fatal_vector 0
    fatal_vector 1
    fatal_vector 2
    fatal_vector 3
    /* Current EL with SP_ELx. */
    fatal_vector 4
    fatal_vector 5
    fatal_vector 6
    fatal_vector 7
    /* Lower EL, AArch64. */
    lower_sync_vector
    fatal_vector 9
    fatal_vector 10
    fatal_vector 11
    /* Lower EL, AArch32 (a host's 32-bit user process: same syndrome format). */
    lower_sync_vector
    fatal_vector 13
    fatal_vector 14
    fatal_vector 15

/* A host entry with hardening to run: x1/x2 are saved, x2 holds BRANCH_HARDENING. */
lower_sync_hardened:
    stp     x0, x3, [sp, #-16]!
    run_branch_hardening
    ldp     x0, x3, [sp], #16
    lower_sync_dispatch

/*
 * Second fast path: the ABI's FEATURES call (docs/abi.md section 2), the one call a host
 * driver makes on every probe. W0 = 0xC6000000 (bit 16, the SVE hint, ignored; x0[63:32]
 * ignored as SMCCC says) with x1..x7 all zero: answer the version and the host bitmap
 * here. Anything else, including FEATURES with a non-zero MBZ register, is decoded in Rust.
 * On entry x1 and x2 are saved at [sp].
 */
host_vendor_hyp_call:
    and     w1, w0, #0xfffeffff
    movz    w2, #0xc600, lsl #16
    cmp     w1, w2
    b.ne    1f
    ldp     x1, x2, [sp]
    orr     x1, x1, x2
    orr     x1, x1, x3
    orr     x1, x1, x4
    orr     x1, x1, x5
    orr     x1, x1, x6
    orr     x1, x1, x7
    cbnz    x1, 1f
    mov     x0, #0
    ldr     x1, ={abi_version}
    ldr     x2, ={host_features}
    mov     x3, #0
    add     sp, sp, #16
    eret
1:  ldp     x1, x2, [sp], #16
    b       lower_sync_slow

lower_sync_slow:
    save_trap_frame
    mov     x0, sp
    bl      handle_lower_sync
    restore_trap_frame_and_eret

/*
 * A host data abort: x0-x30 pushed as a `FullFrame` (x0 at offset 0, ..., x30 at 240), then
 * `handle_lower_dabt(&mut FullFrame)`; every register is reloaded from the frame, so an
 * emulated load lands in whichever register the instruction named.
 */
lower_dabt_slow:
    sub     sp, sp, #256
    stp     x0, x1, [sp, #0]
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
    str     x30, [sp, #240]
    mov     x0, sp
    bl      handle_lower_dabt
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    ldr     x30, [sp, #240]
    add     sp, sp, #256
    eret

fatal_common:
    /* x0 = kind; the interrupted x0 waits in TPIDR_EL2. */
    sub     sp, sp, #256
    str     x1, [sp, #8]
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
    str     x30, [sp, #240]
    mrs     x1, tpidr_el2
    str     x1, [sp, #0]
    mov     x1, sp
    bl      handle_fatal_exception
1:  wfe
    b       1b

/*
 * Guest world switch.
 *
 * `__guest_enter(regs: *mut VcpuRegs) -> u64`: saves EL2's callee-saved registers on the
 * stack, records that stack pointer in `regs` (offset 248) and `regs` itself in TPIDR_EL2,
 * loads the guest's x0-x30 from `regs` (offsets 0..248) and ERETs (ELR_EL2, SPSR_EL2 and
 * every system register are already the guest's). The guest's next exception lands in
 * `guest_vectors`, which saves x0-x30 back into `regs` and returns from `__guest_enter`
 * with the exit kind: 0 = synchronous, 1 = IRQ, 2 = FIQ, 3 = SError, plus 4 if an SError
 * of the guest's was taken on the way out. An SError pending before the guest runs makes
 * `__guest_enter` return 1 (IRQ) without entering it.
 */
.global __guest_enter
__guest_enter:
    /*
     * An SError pending now is the host's (it was raised before the guest ran): with the
     * guest's HCR_EL2.AMO it would be taken as soon as the guest runs and blamed on the
     * guest. Return an IRQ exit instead; once the host's HCR_EL2 is back the SError is
     * the host's to take at EL1. (ISR_EL1 at EL2 shows physical interrupts.)
     */
    mrs     x1, isr_el1
    tbz     x1, #8, 1f
    mov     x0, #1
    ret
1:  stp     x29, x30, [sp, #-96]!
    stp     x19, x20, [sp, #16]
    stp     x21, x22, [sp, #32]
    stp     x23, x24, [sp, #48]
    stp     x25, x26, [sp, #64]
    stp     x27, x28, [sp, #80]
    mov     x1, sp
    str     x1, [x0, #248]
    msr     tpidr_el2, x0
    ldp     x2, x3, [x0, #16]
    ldp     x4, x5, [x0, #32]
    ldp     x6, x7, [x0, #48]
    ldp     x8, x9, [x0, #64]
    ldp     x10, x11, [x0, #80]
    ldp     x12, x13, [x0, #96]
    ldp     x14, x15, [x0, #112]
    ldp     x16, x17, [x0, #128]
    ldp     x18, x19, [x0, #144]
    ldp     x20, x21, [x0, #160]
    ldp     x22, x23, [x0, #176]
    ldp     x24, x25, [x0, #192]
    ldp     x26, x27, [x0, #208]
    ldp     x28, x29, [x0, #224]
    ldr     x30, [x0, #240]
    ldp     x0, x1, [x0, #0]
    eret
    dsb     nsh
    isb

.macro guest_exit kind
.balign 0x80
    stp     x0, x1, [sp, #-16]!
    mrs     x0, tpidr_el2
    mov     x1, #\kind
    b       guest_exit_common
.endm

/*
 * An SError taken at EL2 while the guest's HCR_EL2 is loaded. Inside the exit path's
 * window (below) it is one the guest caused, still in flight when the guest left: bit 2
 * of the exit kind (x1) says so and the exit goes on. Anywhere else it is fatal.
 */
.macro guest_exit_window_serror
.balign 0x80
    mrs     x5, elr_el2
    adr     x6, guest_exit_window_start
    cmp     x5, x6
    adr     x6, guest_exit_window_end
    ccmp    x5, x6, #4, ne
    b.ne    guest_serror_fatal
    orr     x1, x1, #4
    eret
.endm

.balign 0x800
.global guest_vectors
guest_vectors:
    fatal_vector 0
    fatal_vector 1
    fatal_vector 2
    fatal_vector 3
    fatal_vector 4
    fatal_vector 5
    fatal_vector 6
    guest_exit_window_serror
    guest_exit 0
    guest_exit 1
    guest_exit 2
    guest_exit 3
    guest_exit 0
    guest_exit 1
    guest_exit 2
    guest_exit 3


guest_serror_fatal:
    fatal_body 7

guest_exit_common:
    stp     x2, x3, [x0, #16]
    stp     x4, x5, [x0, #32]
    stp     x6, x7, [x0, #48]
    stp     x8, x9, [x0, #64]
    stp     x10, x11, [x0, #80]
    stp     x12, x13, [x0, #96]
    stp     x14, x15, [x0, #112]
    stp     x16, x17, [x0, #128]
    stp     x18, x19, [x0, #144]
    stp     x20, x21, [x0, #160]
    stp     x22, x23, [x0, #176]
    stp     x24, x25, [x0, #192]
    stp     x26, x27, [x0, #208]
    stp     x28, x29, [x0, #224]
    str     x30, [x0, #240]
    ldp     x2, x3, [sp], #16
    stp     x2, x3, [x0, #0]
    /*
     * Branch-predictor hardening (spectre.rs, `run_branch_hardening`) before the first
     * indirect branch EL2 takes after the guest; x0/x1 wait in x5/x6.
     */
    adrp    x2, BRANCH_HARDENING
    ldr     x2, [x2, :lo12:BRANCH_HARDENING]
    cbz     x2, 3f
    mov     x5, x0
    mov     x6, x1
    run_branch_hardening
    mov     x0, x5
    mov     x1, x6
3:
    /*
     * The SError window (pKVM's `__guest_exit`): an SError the guest caused may still be
     * pending. Unmasking PSTATE.A here, with the guest's HCR_EL2.AMO still set, takes it
     * now at EL2 (guest_exit_window_serror) rather than later in the host, which must
     * never receive it as its own. The exception would overwrite ELR/SPSR/ESR_EL2, which
     * still describe the guest's exit: keep them in x2-x4.
     */
    mrs     x2, elr_el2
    mrs     x3, spsr_el2
    mrs     x4, esr_el2
    dsb     sy
    msr     daifclr, #4
guest_exit_window_start:
    isb
guest_exit_window_end:
    msr     daifset, #4
    msr     elr_el2, x2
    msr     spsr_el2, x3
    msr     esr_el2, x4
    ldr     x2, [x0, #248]
    mov     sp, x2
    mov     x0, x1
    ldp     x19, x20, [sp, #16]
    ldp     x21, x22, [sp, #32]
    ldp     x23, x24, [sp, #48]
    ldp     x25, x26, [sp, #64]
    ldp     x27, x28, [sp, #80]
    ldp     x29, x30, [sp], #96
    ret
