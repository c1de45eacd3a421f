// SPDX-License-Identifier: (GPL-2.0 OR MIT)
/*
 * The payload's host calls. Every call goes through arm_smccc_1_2_hvc with all argument
 * registers set: the payload answers INVALID_PARAMETER when a register a call does not
 * use is nonzero (docs/abi.md 1.3), and arm_smccc_1_1_hvc leaves x1..x7 holding whatever
 * they held. HVC, never arm_smccc_1_1_invoke: the host's DTB says PSCI's conduit is SMC,
 * and an SMC would go to the firmware, not to the payload.
 */
#include <linux/arm-smccc.h>
#include <linux/errno.h>
#include <linux/printk.h>
#include "hvc.h"

#define FN(n)		(0xC6000000UL + (n))
#define FEATURES	FN(0x00)
#define VM_CREATE	FN(0x03)
#define VM_TOPUP	FN(0x04)
#define VM_DONATE	FN(0x05)
#define VCPU_CREATE	FN(0x08)
#define VCPU_RUN	FN(0x09)
#define VM_DESTROY	FN(0x0A)
#define VM_RECLAIM	FN(0x0B)
#define VENDOR_HYP_CALL_UID 0x8600FF01UL
#define ABI_MAJOR	2

static struct el2_result call(unsigned long fn, u64 a1, u64 a2, u64 a3, u64 a4)
{
	struct arm_smccc_1_2_regs args = {
		.a0 = fn, .a1 = a1, .a2 = a2, .a3 = a3, .a4 = a4,
	};
	struct arm_smccc_1_2_regs res;

	arm_smccc_1_2_hvc(&args, &res);
	return (struct el2_result){
		.status = (long)res.a0, .x1 = res.a1, .x2 = res.a2, .x3 = res.a3,
	};
}

/* docs/abi.md section 2: the UID first, then FEATURES' major version. */
int el2_probe(void)
{
	struct el2_result r = call(VENDOR_HYP_CALL_UID, 0, 0, 0, 0);

	if ((u32)r.status != 0x6b7b1d6b || (u32)r.x1 != 0x0842d5e4 ||
	    (u32)r.x2 != 0x59bdd294 || (u32)r.x3 != 0xdaf2397c) {
		pr_err("el2_pvm: no el2 payload (VENDOR_HYP_CALL_UID %#lx)\n", r.status);
		return -ENODEV;
	}
	r = call(FEATURES, 0, 0, 0, 0);
	if (r.status != 0 || (r.x1 >> 16) != ABI_MAJOR) {
		pr_err("el2_pvm: payload ABI %#llx is not %d.x\n", r.x1, ABI_MAJOR);
		return -ENODEV;
	}
	pr_info("el2_pvm: payload ABI %llu.%llu\n", r.x1 >> 16, r.x1 & 0xffff);
	return 0;
}

struct el2_result el2_vm_create(u64 nr_vcpus, u64 ipa_bits)
{
	return call(VM_CREATE, nr_vcpus, ipa_bits, 0, 0);
}

long el2_vm_topup(u64 handle, u64 pfn, u64 nr)
{
	return call(VM_TOPUP, handle, pfn, nr, 0).status;
}

long el2_vm_donate(u64 handle, u64 pfn, u64 gfn, u64 nr)
{
	return call(VM_DONATE, handle, pfn, gfn, nr).status;
}

long el2_vcpu_create(u64 handle, u64 vcpu, u64 entry_ipa, u64 x0)
{
	return call(VCPU_CREATE, handle, vcpu, entry_ipa, x0).status;
}

struct el2_result el2_vcpu_run(u64 handle, u64 vcpu, u64 completion)
{
	return call(VCPU_RUN, handle, vcpu, completion, 0);
}

long el2_vm_destroy(u64 handle)
{
	return call(VM_DESTROY, handle, 0, 0, 0).status;
}

long el2_vm_reclaim(u64 pfn, u64 nr)
{
	return call(VM_RECLAIM, pfn, nr, 0, 0).status;
}

const char *el2_error_name(long status)
{
	switch (status) {
	case 0: return "SUCCESS";
	case EL2_NOT_SUPPORTED: return "NOT_SUPPORTED";
	case EL2_INVALID_PARAMETER: return "INVALID_PARAMETER";
	case EL2_DENIED: return "DENIED";
	case EL2_BUSY: return "BUSY";
	case EL2_NO_MEMORY: return "NO_MEMORY";
	case EL2_NOT_FOUND: return "NOT_FOUND";
	case EL2_RANGE: return "RANGE";
	default: return "unknown error";
	}
}
