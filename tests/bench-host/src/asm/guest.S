// The bench guest: a few instruction loops, copied into one donated page at IPA
// 0x40000000 and entered at one of the labels below (VCPU_CREATE entry_ipa = that IPA +
// the label's offset). Position independent; runs at EL1 with its MMU off and no vectors.
// Every loop makes exactly one exit per VCPU_RUN, so the host sees one exit per call:
//
//   guest_hvc_exit:     x0 = a function id of another owner; HVC with it forever
//                       (exit GUEST_HVC each time).
//   guest_mmio_exit:    x0 = an IPA without a page; registers its page as MMIO
//                       (MMIO_GUARD_MAP, no exit), then stores XZR there forever (exit
//                       MMIO).
//   guest_share_seq:    x0 = ipa | (nr - 1); MEM_SHARE(ipa, nr), then the next nr pages,
//   guest_unshare_seq:  and so on (exit MEM_SHARED / MEM_UNSHARED each time). On an error
//                       the guest stores it at 0x0a000000 forever (exit MMIO).
//
//   guest_boot:         vCPU 0's entry (ABI 2.0: only vCPU 0 gets a host entry point).
//                       x0 = the IPA of a table of (entry, x0) pairs, one per vCPU 0..5;
//                       PSCI CPU_ON of vCPUs 1..5 with their pair (exit VCPU_STARTED each
//                       time), then vCPU 0 jumps to its own pair's entry. A CPU_ON error
//                       is stored at 0x0a000000 forever (exit MMIO).
//
// x3..x7 stay zero (MBZ): they are zero at entry and the payload preserves them.
// The arm64 Image header lets the host load it with el1-rt's GuestVm::load_image.

.section .rodata.bench_guest, "a"
.balign 16
.global bench_guest_start
bench_guest_start:
    b       .                       // code0: never entered here
    .long   0
    .quad   0                       // text_offset
    .quad   bench_guest_end - bench_guest_start
    .quad   0xa
    .quad   0, 0, 0
    .ascii  "ARM\x64"
    .long   0

.global bench_guest_boot
bench_guest_boot:
    mov     x19, x0                 // x19 = the table
    mov     x20, #1                 // x20 = the vCPU to start
1:  cmp     x20, #6
    b.hs    2f
    add     x21, x19, x20, lsl #4
    ldp     x2, x3, [x21]           // its entry and context id
    movz    w0, #0x0003             // PSCI CPU_ON (SMC64) = 0xc4000003
    movk    w0, #0xc400, lsl #16
    mov     x1, x20                 // target MPIDR: Aff0 = the vCPU index
    hvc     #0
    cbnz    x0, 3f
    add     x20, x20, #1
    b       1b
2:  ldp     x20, x0, [x19]          // vCPU 0's own entry and x0
    mov     x1, xzr
    mov     x2, xzr
    mov     x3, xzr
    br      x20
3:  movz    x23, #0x0a00, lsl #16
    str     x0, [x23]
    b       3b

.global bench_guest_hvc_exit
bench_guest_hvc_exit:
    mov     x19, x0
1:  mov     x0, x19
    hvc     #0
    b       1b

.global bench_guest_mmio_exit
bench_guest_mmio_exit:
    mov     x19, x0
    and     x1, x0, #~0xfff
    movz    w0, #0x0024             // MMIO_GUARD_MAP = 0xc6000024
    movk    w0, #0xc600, lsl #16
    mov     x2, xzr
    mov     x3, xzr
    hvc     #0
1:  str     xzr, [x19]
    b       1b

.global bench_guest_share_seq
bench_guest_share_seq:
    movz    w19, #0x0021            // MEM_SHARE = 0xc6000021
    movk    w19, #0xc600, lsl #16
    b       2f

.global bench_guest_unshare_seq
bench_guest_unshare_seq:
    movz    w19, #0x0022            // MEM_UNSHARE = 0xc6000022
    movk    w19, #0xc600, lsl #16
2:  and     x20, x0, #0xfff
    add     x20, x20, #1            // x20 = nr
    and     x21, x0, #~0xfff        // x21 = ipa
    lsl     x22, x20, #12           // x22 = bytes per call
    movz    x23, #0x0a00, lsl #16   // x23 = the error channel
3:  mov     x0, x19
    mov     x1, x21
    mov     x2, x20
    hvc     #0
    cbnz    x0, 4f
    add     x21, x21, x22
    b       3b
4:  str     x0, [x23]
    b       4b

.balign 8
bench_guest_end:
