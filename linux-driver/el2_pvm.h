/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */
/* Internal objects of the el2_pvm driver: VMs, vCPUs, guest memory fds. */
#ifndef EL2_PVM_INTERNAL_H
#define EL2_PVM_INTERNAL_H

#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/list.h>
#include <linux/mm_types.h>
#include <linux/mutex.h>
#include <linux/el2_pvm.h>

#define PVM_MAX_VCPUS 8

/* State of one page of a guest memory fd. */
enum pvm_page_state {
	PVM_PAGE_EMPTY = 0,	/* no page (never bound, or given back after the VM ended) */
	PVM_PAGE_PRIVATE,	/* donated; the guest's alone: never mapped to user space */
	PVM_PAGE_SHARED,	/* donated, and the guest shared it: user space may map it */
	PVM_PAGE_RELINQUISHED,	/* the guest gave it back (EL2 zeroed it): the host's again */
};

struct pvm_gmem {
	struct file *file;
	/* This fd's own address space, so that a zap (unmap_mapping_range) reaches exactly
	 * the user mappings of this fd: every anon-inode file shares one inode. */
	struct address_space mapping;
	u64 vm_id;		/* the VM that created it; only that VM may bind it */
	u64 flags;
	unsigned long npages;
	struct mutex lock;	/* pages[], state[], and inserting/zapping user mappings */
	struct page **pages;
	u8 *state;		/* enum pvm_page_state */
	bool bound_once;
};

/* A range of guest physical memory backed by a guest memory fd (EL2_PVM_SET_MEMORY). */
struct pvm_binding {
	struct list_head node;
	u64 gfn, npages, pgoff;
	struct pvm_gmem *gmem;
	struct file *file;	/* reference held until the VM ends */
};

struct pvm_vm {
	u64 id;
	u64 handle;		/* EL2's VM handle */
	u32 nr_vcpus, ipa_bits;
	struct mutex lock;	/* everything below */
	bool launched;
	struct list_head bindings;
	struct list_head pool;	/* pages topped up to EL2, linked by page->lru */
	u32 vcpus_created;	/* bit n: vCPU n exists in EL2 */
};

struct pvm_vcpu {
	struct pvm_vm *vm;
	struct file *vm_file;	/* the vCPU keeps its VM alive */
	u32 index;
	struct mutex run_lock;
	struct el2_pvm_run *run;	/* one page, mmap()ed by user space */
	u32 last_exit;		/* EL2's reason of the previous exit (for its completion) */
	bool last_mmio_read;
};

/* Counters behind EL2_PVM_GET_STATS. */
extern atomic64_t pvm_stat_vms, pvm_stat_pages_held, pvm_stat_pages_reclaimed,
	pvm_stat_pages_reclaimed_nonzero, pvm_stat_pages_lost;

struct page *pvm_alloc_page(void);
struct page *pvm_alloc_block(unsigned int order);
void pvm_free_page(struct page *page);
void pvm_reclaim_page(struct page *page);

long pvm_create_vm(const struct el2_pvm_create_vm __user *uarg);

int pvm_gmem_create(struct pvm_vm *vm, const struct el2_pvm_create_guest_memfd __user *uarg);
struct pvm_gmem *pvm_gmem_from_file(struct file *file);
void pvm_gmem_set_state(struct pvm_gmem *gmem, unsigned long pgoff, unsigned long nr,
			enum pvm_page_state s);

#endif
