/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * el2_pvm: the user-space API of the el2 payload's Linux driver (linux-driver/).
 *
 * Modelled on KVM's: a character device (/dev/el2-pvm) whose ioctls create a protected VM
 * (an fd); the VM fd creates guest memory (a guest_memfd-like fd), binds it to a guest
 * physical range and creates the boot vCPU (an fd); PVM_RUN on a vCPU fd runs the guest
 * until an exit, which the driver writes into a run structure user space mmap()s from the
 * vCPU fd. Everything ends when the last fd of the VM closes. docs/linux.md documents each
 * ioctl, its structure and every errno. All reserved fields and flags must be zero.
 */
#ifndef _UAPI_LINUX_EL2_PVM_H
#define _UAPI_LINUX_EL2_PVM_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define EL2_PVM_DEVICE		"/dev/el2-pvm"
#define EL2_PVM_API_VERSION	1
#define EL2_PVM_IO		0xE2

/* Guest memory is handled in pages of this size (the payload's protection granule). */
#define EL2_PVM_PAGE_SIZE	4096
/* Largest guest memory fd. */
#define EL2_PVM_MAX_GUEST_MEMFD_SIZE	(1ULL << 30)

/* ---- /dev/el2-pvm ---- */

/* Returns EL2_PVM_API_VERSION. */
#define EL2_PVM_GET_API_VERSION	_IO(EL2_PVM_IO, 0x00)

struct el2_pvm_create_vm {
	__u32 nr_vcpus;		/* 1..=8 */
	__u32 ipa_bits;		/* 32..=40 */
	__u64 flags;		/* 0 */
	__u64 reserved[2];	/* 0 */
};
/* Returns a new VM fd. */
#define EL2_PVM_CREATE_VM	_IOW(EL2_PVM_IO, 0x01, struct el2_pvm_create_vm)

struct el2_pvm_stats {
	__u64 vms;			/* live VMs */
	__u64 pages_held;		/* pages the driver holds (guest, pool, run pages) */
	__u64 pages_reclaimed;		/* pages taken back from destroyed VMs */
	__u64 pages_reclaimed_nonzero;	/* ...of which were not all zero (must stay 0) */
	__u64 pages_lost;		/* pages EL2 refused to give back (must stay 0) */
};
#define EL2_PVM_GET_STATS	_IOR(EL2_PVM_IO, 0x02, struct el2_pvm_stats)

/* ---- VM fd ---- */

/* The memory may be mmap()ed (MAP_SHARED only): pages the guest shared fault in, every
 * other page gives SIGBUS. Without it mmap() fails with ENODEV. */
#define EL2_PVM_GUEST_MEMFD_FLAG_MMAP	(1ULL << 0)

struct el2_pvm_create_guest_memfd {
	__u64 size;		/* bytes, a nonzero multiple of 4096, at most 1 GiB */
	__u64 flags;		/* EL2_PVM_GUEST_MEMFD_FLAG_* */
	__u64 reserved[6];	/* 0 */
};
/* Returns a new guest memory fd, usable only with this VM. */
#define EL2_PVM_CREATE_GUEST_MEMFD _IOW(EL2_PVM_IO, 0x10, struct el2_pvm_create_guest_memfd)

struct el2_pvm_memory_region {
	__u64 guest_phys_addr;		/* page aligned */
	__u64 memory_size;		/* nonzero multiple of 4096 */
	__u64 guest_memfd_offset;	/* page aligned */
	__u32 guest_memfd;		/* fd from EL2_PVM_CREATE_GUEST_MEMFD of this VM */
	__u32 flags;			/* 0 */
	__u64 init_addr;		/* user address of initial contents, or 0 (zeroed) */
	__u64 init_size;		/* bytes copied to the start of the range (<= memory_size) */
	__u64 reserved[2];		/* 0 */
};
/* Allocates the pages of the range, copies the initial contents (before launch only),
 * and donates them to the guest at guest_phys_addr: private guest memory from then on. */
#define EL2_PVM_SET_MEMORY	_IOW(EL2_PVM_IO, 0x11, struct el2_pvm_memory_region)

struct el2_pvm_create_vcpu {
	__u32 index;		/* 0..nr_vcpus-1 */
	__u32 flags;		/* 0 */
	__u64 entry_ipa;	/* vCPU 0: where it starts; others: 0 (they start by PSCI CPU_ON) */
	__u64 x0;		/* vCPU 0: its x0 at entry; others: 0 */
	__u64 reserved[2];	/* 0 */
};
/* Returns a new vCPU fd. */
#define EL2_PVM_CREATE_VCPU	_IOW(EL2_PVM_IO, 0x12, struct el2_pvm_create_vcpu)

/* ---- vCPU fd ---- */

/* Runs the vCPU until an exit, described in the run structure (mmap() 4096 bytes at
 * offset 0 of the vCPU fd, MAP_SHARED). */
#define EL2_PVM_RUN		_IO(EL2_PVM_IO, 0x20)
#define EL2_PVM_RUN_MMAP_SIZE	4096

enum el2_pvm_exit_reason {
	EL2_PVM_EXIT_NONE = 0,
	EL2_PVM_EXIT_MMIO = 1,		/* mmio: a read completes with data at the next RUN */
	EL2_PVM_EXIT_HYPERCALL = 2,	/* hypercall: ret becomes the guest's x0 */
	EL2_PVM_EXIT_MEM_SHARED = 3,	/* memory: the guest shared these pages */
	EL2_PVM_EXIT_MEM_UNSHARED = 4,	/* memory: ...unshared them (already unmapped) */
	EL2_PVM_EXIT_MEM_RELINQUISHED = 5, /* memory: ...gave them back (gone for good) */
	EL2_PVM_EXIT_MEM_FAULT = 6,	/* memory: access to a page with no memory, no data */
	EL2_PVM_EXIT_SYSTEM_OFF = 7,	/* the VM stopped: PSCI SYSTEM_OFF */
	EL2_PVM_EXIT_SYSTEM_RESET = 8,	/* the VM stopped: PSCI SYSTEM_RESET */
	EL2_PVM_EXIT_VCPU_STARTED = 9,	/* vcpu_started: the guest started that vCPU */
	EL2_PVM_EXIT_VCPU_OFF = 10,	/* this vCPU is off until the guest starts it */
	EL2_PVM_EXIT_INTR = 11,		/* a signal is pending: RUN returned -1, EINTR */
};

struct el2_pvm_run {
	__u32 exit_reason;	/* out: enum el2_pvm_exit_reason */
	__u8 immediate_exit;	/* in: nonzero makes RUN return EINTR at once */
	__u8 padding1[3];
	__u64 reserved;
	union {
		struct {
			__u64 phys_addr;	/* guest physical byte address */
			__u64 data;		/* write: the data; read: in, the data */
			__u32 len;		/* 1, 2, 4 or 8 */
			__u8 is_write;
			__u8 padding[3];
		} mmio;
		struct {
			__u64 function_id;	/* the guest's W0 */
			__u64 arg1;		/* the guest's x1 */
			__u64 ret;		/* in: the guest's x0 on return */
		} hypercall;
		struct {
			__u64 gpa;		/* page aligned */
			__u64 nr_pages;
		} memory;
		struct {
			__u32 vcpu;
			__u32 padding;
		} vcpu_started;
		__u64 padding2[30];
	};
};

#endif /* _UAPI_LINUX_EL2_PVM_H */
