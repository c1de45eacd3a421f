/*
 * abi-host's SVE helpers (tests/world_switch.rs):
 *   abi_sve_fill: a distinct pattern in every Z and P register and in FFR.
 *   abi_sve_store(x0 = buffer): Z0-Z31, P0-P15, FFR at x0 (32 * VL + 17 * VL / 8 bytes);
 *   clobbers x1 only.
 */
.arch_extension sve
.global abi_sve_fill
abi_sve_fill:
    index   z0.b, #-16, #1
    index   z1.b, #-15, #2
    index   z2.b, #-14, #3
    index   z3.b, #-13, #4
    index   z4.b, #-12, #5
    index   z5.b, #-11, #6
    index   z6.b, #-10, #7
    index   z7.b, #-9, #1
    index   z8.b, #-8, #2
    index   z9.b, #-7, #3
    index   z10.b, #-6, #4
    index   z11.b, #-5, #5
    index   z12.b, #-4, #6
    index   z13.b, #-3, #7
    index   z14.b, #-2, #1
    index   z15.b, #-1, #2
    index   z16.b, #0, #3
    index   z17.b, #1, #4
    index   z18.b, #2, #5
    index   z19.b, #3, #6
    index   z20.b, #4, #7
    index   z21.b, #5, #1
    index   z22.b, #6, #2
    index   z23.b, #7, #3
    index   z24.b, #8, #4
    index   z25.b, #9, #5
    index   z26.b, #10, #6
    index   z27.b, #11, #7
    index   z28.b, #12, #1
    index   z29.b, #13, #2
    index   z30.b, #14, #3
    index   z31.b, #15, #4
    ptrue   p0.b, vl1
    ptrue   p1.h, vl2
    ptrue   p2.s, vl3
    ptrue   p3.d, vl4
    ptrue   p4.b, vl5
    ptrue   p5.h, vl6
    ptrue   p6.s, vl7
    ptrue   p7.d, vl8
    ptrue   p8.b, vl16
    ptrue   p9.h, vl32
    ptrue   p10.s, pow2
    ptrue   p11.d, mul3
    ptrue   p12.b, mul4
    ptrue   p13.h, all
    ptrue   p14.s, vl64
    ptrue   p15.d, vl128
    ptrue   p15.b, vl5
    wrffr   p15.b
    ptrue   p15.d, vl128
    ret

.global abi_sve_store
abi_sve_store:
    str     z0, [x0, #0, mul vl]
    str     z1, [x0, #1, mul vl]
    str     z2, [x0, #2, mul vl]
    str     z3, [x0, #3, mul vl]
    str     z4, [x0, #4, mul vl]
    str     z5, [x0, #5, mul vl]
    str     z6, [x0, #6, mul vl]
    str     z7, [x0, #7, mul vl]
    str     z8, [x0, #8, mul vl]
    str     z9, [x0, #9, mul vl]
    str     z10, [x0, #10, mul vl]
    str     z11, [x0, #11, mul vl]
    str     z12, [x0, #12, mul vl]
    str     z13, [x0, #13, mul vl]
    str     z14, [x0, #14, mul vl]
    str     z15, [x0, #15, mul vl]
    str     z16, [x0, #16, mul vl]
    str     z17, [x0, #17, mul vl]
    str     z18, [x0, #18, mul vl]
    str     z19, [x0, #19, mul vl]
    str     z20, [x0, #20, mul vl]
    str     z21, [x0, #21, mul vl]
    str     z22, [x0, #22, mul vl]
    str     z23, [x0, #23, mul vl]
    str     z24, [x0, #24, mul vl]
    str     z25, [x0, #25, mul vl]
    str     z26, [x0, #26, mul vl]
    str     z27, [x0, #27, mul vl]
    str     z28, [x0, #28, mul vl]
    str     z29, [x0, #29, mul vl]
    str     z30, [x0, #30, mul vl]
    str     z31, [x0, #31, mul vl]
    addvl   x1, x0, #16
    addvl   x1, x1, #16
    str     p0, [x1, #0, mul vl]
    str     p1, [x1, #1, mul vl]
    str     p2, [x1, #2, mul vl]
    str     p3, [x1, #3, mul vl]
    str     p4, [x1, #4, mul vl]
    str     p5, [x1, #5, mul vl]
    str     p6, [x1, #6, mul vl]
    str     p7, [x1, #7, mul vl]
    str     p8, [x1, #8, mul vl]
    str     p9, [x1, #9, mul vl]
    str     p10, [x1, #10, mul vl]
    str     p11, [x1, #11, mul vl]
    str     p12, [x1, #12, mul vl]
    str     p13, [x1, #13, mul vl]
    str     p14, [x1, #14, mul vl]
    str     p15, [x1, #15, mul vl]
    rdffr   p0.b
    str     p0, [x1, #16, mul vl]
    ldr     p0, [x1, #0, mul vl]
    ret
