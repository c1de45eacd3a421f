/*
 * Probes for Command::TrappedRegisters (sysregs.rs): each `guest_probe_<name>` makes one
 * access with a vector table of its own installed, whose every entry steps over the
 * faulting instruction; it returns ESR_EL1 of the exception the access raised, or -1 if
 * it raised none. Uses x9-x12 only (caller-saved).
 */
.section .text.undef_probe, "ax"
.balign 0x800
undef_probe_vectors:
.rept 16
.balign 0x80
    mrs     x9, elr_el1
    add     x9, x9, #4
    msr     elr_el1, x9
    mrs     x10, esr_el1
    eret
.endr

.global guest_probe_icc_pmr
guest_probe_icc_pmr:
    mrs     x11, vbar_el1
    adrp    x9, undef_probe_vectors
    add     x9, x9, :lo12:undef_probe_vectors
    msr     vbar_el1, x9
    isb
    mov     x10, #-1
    mrs x12, s3_0_c4_c6_0
    msr     vbar_el1, x11
    isb
    mov     x0, x10
    ret

.global guest_probe_icc_iar1
guest_probe_icc_iar1:
    mrs     x11, vbar_el1
    adrp    x9, undef_probe_vectors
    add     x9, x9, :lo12:undef_probe_vectors
    msr     vbar_el1, x9
    isb
    mov     x10, #-1
    mrs x12, s3_0_c12_c12_0
    msr     vbar_el1, x11
    isb
    mov     x0, x10
    ret

.global guest_probe_dc_cisw
guest_probe_dc_cisw:
    mrs     x11, vbar_el1
    adrp    x9, undef_probe_vectors
    add     x9, x9, :lo12:undef_probe_vectors
    msr     vbar_el1, x9
    isb
    mov     x10, #-1
    dc cisw, xzr
    msr     vbar_el1, x11
    isb
    mov     x0, x10
    ret

.global guest_probe_impdef
guest_probe_impdef:
    mrs     x11, vbar_el1
    adrp    x9, undef_probe_vectors
    add     x9, x9, :lo12:undef_probe_vectors
    msr     vbar_el1, x9
    isb
    mov     x10, #-1
    mrs x12, s3_0_c15_c0_0
    msr     vbar_el1, x11
    isb
    mov     x0, x10
    ret

.global guest_probe_pmcr
guest_probe_pmcr:
    mrs     x11, vbar_el1
    adrp    x9, undef_probe_vectors
    add     x9, x9, :lo12:undef_probe_vectors
    msr     vbar_el1, x9
    isb
    mov     x10, #-1
    mrs x12, s3_3_c9_c12_0
    msr     vbar_el1, x11
    isb
    mov     x0, x10
    ret

.global guest_probe_lorc
guest_probe_lorc:
    mrs     x11, vbar_el1
    adrp    x9, undef_probe_vectors
    add     x9, x9, :lo12:undef_probe_vectors
    msr     vbar_el1, x9
    isb
    mov     x10, #-1
    mrs x12, s3_0_c10_c4_3
    msr     vbar_el1, x11
    isb
    mov     x0, x10
    ret

.global guest_probe_erridr
guest_probe_erridr:
    mrs     x11, vbar_el1
    adrp    x9, undef_probe_vectors
    add     x9, x9, :lo12:undef_probe_vectors
    msr     vbar_el1, x9
    isb
    mov     x10, #-1
    mrs x12, s3_0_c5_c3_0
    msr     vbar_el1, x11
    isb
    mov     x0, x10
    ret

/*
 * guest_probe_tpidr2(x0 = value): reads TPIDR2_EL0, then writes x0 to it (for
 * Command::HostThreadPointer). Returns x0 = ESR_EL1 of the last exception the accesses
 * raised or -1, x1 = the value read (0 if the read raised one).
 */
.global guest_probe_tpidr2
guest_probe_tpidr2:
    mrs     x11, vbar_el1
    adrp    x9, undef_probe_vectors
    add     x9, x9, :lo12:undef_probe_vectors
    msr     vbar_el1, x9
    isb
    mov     x10, #-1
    mov     x12, #0
    mrs     x12, s3_3_c13_c0_5
    msr     s3_3_c13_c0_5, x0
    msr     vbar_el1, x11
    isb
    mov     x1, x12
    mov     x0, x10
    ret
