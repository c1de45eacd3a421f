// Entry and exception vectors of the protected test guest.
//
// Hand-over (docs/abi.md 4.8, VCPU_CREATE): AArch64 EL1h, D, A, I, F masked, stage-1 MMU
// and caches off, x0 = the command (VCPU_CREATE's x0), every other register 0. The PC is
// the image's first byte (IPA 0x40000000), where the arm64 Image header's first word
// branches to guest_entry.
//
// With the MMU off every data access is Device-nGnRnE: the Rust code is built with
// +strict-align (the aarch64-unknown-none(-softfloat) default), so it makes no unaligned
// accesses.

.macro adr_l reg, sym
    adrp    \reg, \sym
    add     \reg, \reg, :lo12:\sym
.endm

// CPACR_EL1.FPEN = 0b11: FP/SIMD does not trap at EL1. The guest is built soft-float and
// contains no FP/SIMD instruction (main.rs); this only keeps a stray one from trapping
// inside the guest.
.equ CPACR_EL1_FPEN, (3 << 20)

.section .text.head, "ax"
.global _guest_head
// arm64 Image header: image_size tells the host how many pages to donate (.bss and the
// stack included).
_guest_head:
    b       guest_entry             // code0
    .long   0                       // code1
    .quad   0                       // text_offset
    .quad   __image_size            // image_size
    .quad   0xa                     // flags: little endian, 4 KiB pages, anywhere
    .quad   0                       // res2
    .quad   0                       // res3
    .quad   0                       // res4
    .ascii  "ARM\x64"               // magic
    .long   0                       // res5

.section .text.entry, "ax"
guest_entry:
    mov     x19, x0                 // x19 = command, kept until guest_main

    adr_l   x0, __bss_start         // zero .bss (16-byte aligned at both ends)
    adr_l   x1, __bss_end
1:  cmp     x0, x1
    b.hs    2f
    stp     xzr, xzr, [x0], #16
    b       1b
2:
    adr_l   x0, __stack_end
    mov     sp, x0
    mov     x0, #CPACR_EL1_FPEN
    msr     cpacr_el1, x0
    adr_l   x0, guest_vectors
    msr     vbar_el1, x0
    isb

    mov     x0, x19                 // guest_main(command: u64) -> !
    bl      guest_main
3:  wfe
    b       3b

// vCPU 1's entry, given to PSCI CPU_ON by Command::CpuOn: the payload starts it here in
// the same state as vCPU 0 (EL1h, DAIF masked, MMU off), x0 = the context id. .bss was
// zeroed by vCPU 0 long before; vCPU 1 gets its own stack.
.section .text.entry, "ax"
.global secondary_entry
secondary_entry:
    mov     x19, x0                 // x19 = context id
    adr_l   x0, __secondary_stack_end
    mov     sp, x0
    mov     x0, #CPACR_EL1_FPEN
    msr     cpacr_el1, x0
    adr_l   x0, guest_vectors
    msr     vbar_el1, x0
    isb
    mov     x0, x19                 // secondary_main(context_id: u64) -> !
    bl      secondary_main
4:  wfe
    b       4b

.section .bss.secondary_stack, "aw", %nobits
.balign 16
__secondary_stack:
    .space  4096
__secondary_stack_end:

// Every vector calls guest_exception(vector index 0..16), which reports the exception to
// the host and stops the VM; nothing returns.
.macro guest_vector index
    .balign 0x80
    mov     x0, #\index
    b       guest_exception
.endm

.section .text.vectors, "ax"
.balign 0x800
guest_vectors:
    guest_vector 0
    guest_vector 1
    guest_vector 2
    guest_vector 3
    guest_vector 4
    guest_vector 5
    guest_vector 6
    guest_vector 7
    guest_vector 8
    guest_vector 9
    guest_vector 10
    guest_vector 11
    guest_vector 12
    guest_vector 13
    guest_vector 14
    guest_vector 15
