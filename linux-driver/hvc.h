/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */
/* The payload's host calls (docs/abi.md section 4), each made with HVC #0. */
#ifndef EL2_PVM_HVC_H
#define EL2_PVM_HVC_H

#include <linux/types.h>

/* docs/abi.md 1.5 */
#define EL2_NOT_SUPPORTED	(-1L)
#define EL2_INVALID_PARAMETER	(-3L)
#define EL2_DENIED		(-4L)
#define EL2_BUSY		(-5L)
#define EL2_NO_MEMORY		(-6L)
#define EL2_NOT_FOUND		(-7L)
#define EL2_RANGE		(-8L)

/* docs/abi.md section 6: VCPU_RUN exit reasons (x1[7:0]) */
#define EL2_EXIT_IRQ		1
#define EL2_EXIT_MMIO		2
#define EL2_EXIT_GUEST_HVC	3
#define EL2_EXIT_MEM_SHARED	4
#define EL2_EXIT_MEM_UNSHARED	5
#define EL2_EXIT_MEM_RELINQUISHED 6
#define EL2_EXIT_MEM_FAULT	7
#define EL2_EXIT_SYSTEM_OFF	8
#define EL2_EXIT_SYSTEM_RESET	9
#define EL2_EXIT_VCPU_STARTED	10
#define EL2_EXIT_VCPU_OFF	11

/* Largest nr of one call (MAX_PAGES_PER_CALL) and what one topup always satisfies. */
#define EL2_MAX_POOL_PAGES_PER_CALL 8

struct el2_result {
	long status;		/* x0: 0 or a docs/abi.md 1.5 error */
	u64 x1, x2, x3;
};

int el2_probe(void);
struct el2_result el2_vm_create(u64 nr_vcpus, u64 ipa_bits);
long el2_vm_topup(u64 handle, u64 pfn, u64 nr);
long el2_vm_donate(u64 handle, u64 pfn, u64 gfn, u64 nr);
long el2_vcpu_create(u64 handle, u64 vcpu, u64 entry_ipa, u64 x0);
struct el2_result el2_vcpu_run(u64 handle, u64 vcpu, u64 completion);
long el2_vm_destroy(u64 handle);
long el2_vm_reclaim(u64 pfn, u64 nr);
const char *el2_error_name(long status);

#endif
