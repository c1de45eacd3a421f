/*
 * The host's whole SVE register file, around a guest run: Z0-Z31, P0-P15 and FFR at the
 * vector length EL2 runs with (ZCR_EL2.LEN is the maximum, so at least the host's).
 * Writing a V register (the guest's FP/SIMD state, or the host's when EL2 puts it back)
 * zeroes the Z register's bits above 128 (Arm ARM B1.2.2, "SVE registers"), so without
 * this a host that uses SVE would lose them on every VCPU_RUN.
 *
 * Layout at x0 (the caller gives `sve_state_bytes` = 32 * VL + 17 * VL / 8 of room):
 *   Z0-Z31 at 0 (VL bytes each), then P0-P15 (VL / 8 bytes each), then FFR.
 *   sve_save(x0 = buffer, x1 = 0 to skip FFR (streaming mode without FA64 has none))
 *   sve_load(x0 = buffer, x1 = as for the save)
 * Linux's `sve_save`/`sve_load` (arch/arm64/include/asm/fpsimdmacros.h) do the same.
 */
.arch_extension sve

.macro for_each_z op
    \op     z0, [x0, #0, mul vl]
    \op     z1, [x0, #1, mul vl]
    \op     z2, [x0, #2, mul vl]
    \op     z3, [x0, #3, mul vl]
    \op     z4, [x0, #4, mul vl]
    \op     z5, [x0, #5, mul vl]
    \op     z6, [x0, #6, mul vl]
    \op     z7, [x0, #7, mul vl]
    \op     z8, [x0, #8, mul vl]
    \op     z9, [x0, #9, mul vl]
    \op     z10, [x0, #10, mul vl]
    \op     z11, [x0, #11, mul vl]
    \op     z12, [x0, #12, mul vl]
    \op     z13, [x0, #13, mul vl]
    \op     z14, [x0, #14, mul vl]
    \op     z15, [x0, #15, mul vl]
    \op     z16, [x0, #16, mul vl]
    \op     z17, [x0, #17, mul vl]
    \op     z18, [x0, #18, mul vl]
    \op     z19, [x0, #19, mul vl]
    \op     z20, [x0, #20, mul vl]
    \op     z21, [x0, #21, mul vl]
    \op     z22, [x0, #22, mul vl]
    \op     z23, [x0, #23, mul vl]
    \op     z24, [x0, #24, mul vl]
    \op     z25, [x0, #25, mul vl]
    \op     z26, [x0, #26, mul vl]
    \op     z27, [x0, #27, mul vl]
    \op     z28, [x0, #28, mul vl]
    \op     z29, [x0, #29, mul vl]
    \op     z30, [x0, #30, mul vl]
    \op     z31, [x0, #31, mul vl]
.endm

.macro for_each_p op
    \op     p0, [x2, #0, mul vl]
    \op     p1, [x2, #1, mul vl]
    \op     p2, [x2, #2, mul vl]
    \op     p3, [x2, #3, mul vl]
    \op     p4, [x2, #4, mul vl]
    \op     p5, [x2, #5, mul vl]
    \op     p6, [x2, #6, mul vl]
    \op     p7, [x2, #7, mul vl]
    \op     p8, [x2, #8, mul vl]
    \op     p9, [x2, #9, mul vl]
    \op     p10, [x2, #10, mul vl]
    \op     p11, [x2, #11, mul vl]
    \op     p12, [x2, #12, mul vl]
    \op     p13, [x2, #13, mul vl]
    \op     p14, [x2, #14, mul vl]
    \op     p15, [x2, #15, mul vl]
.endm

.global sve_save
sve_save:
    for_each_z str
    addvl   x2, x0, #16
    addvl   x2, x2, #16
    for_each_p str
    cbz     x1, 1f
    rdffr   p0.b
    str     p0, [x2, #16, mul vl]
    ldr     p0, [x2, #0, mul vl]
1:  ret

.global sve_load
sve_load:
    addvl   x2, x0, #16
    addvl   x2, x2, #16
    cbz     x1, 1f
    ldr     p0, [x2, #16, mul vl]
    wrffr   p0.b
1:  for_each_p ldr
    for_each_z ldr
    ret

/* x0 = the current vector length in bytes. */
.global sve_vector_bytes
sve_vector_bytes:
    rdvl    x0, #1
    ret
