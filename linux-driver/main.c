// SPDX-License-Identifier: (GPL-2.0 OR MIT)
/*
 * el2_pvm: protected VMs of the el2 payload for Linux user space (docs/linux.md).
 * The character device /dev/el2-pvm creates VMs; see include/uapi/linux/el2_pvm.h.
 */
#include <linux/highmem.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include "el2_pvm.h"
#include "hvc.h"

atomic64_t pvm_stat_vms, pvm_stat_pages_held, pvm_stat_pages_reclaimed,
	pvm_stat_pages_reclaimed_nonzero, pvm_stat_pages_lost;

/*
 * Every page the driver gives EL2 or user space: unmovable (GFP_KERNEL has no
 * __GFP_MOVABLE, so neither compaction nor migration moves or reads it), zeroed, and
 * charged to the caller's memory cgroup.
 */
struct page *pvm_alloc_page(void)
{
	struct page *page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);

	if (page)
		atomic64_inc(&pvm_stat_pages_held);
	return page;
}

/*
 * 2^order contiguous pages, naturally aligned (the buddy allocator's blocks are), as
 * independent pages that pvm_free_page() frees one by one; same flags as pvm_alloc_page().
 */
struct page *pvm_alloc_block(unsigned int order)
{
	struct page *page = alloc_pages(GFP_KERNEL_ACCOUNT | __GFP_ZERO, order);

	if (!page)
		return NULL;
	split_page(page, order);
	atomic64_add(1L << order, &pvm_stat_pages_held);
	return page;
}

void pvm_free_page(struct page *page)
{
	__free_page(page);
	atomic64_dec(&pvm_stat_pages_held);
}

/*
 * Takes a page of a destroyed VM back from EL2 (which zeroes it), checks it is zero and
 * frees it. A page EL2 refuses stays allocated forever: freeing a page the host cannot
 * access would hand the next user of it an abort.
 */
void pvm_reclaim_page(struct page *page)
{
	long status = el2_vm_reclaim(page_to_pfn(page), 1);
	void *va;

	if (status) {
		pr_err("el2_pvm: VM_RECLAIM of pfn %#lx failed: %s; page lost\n",
		       page_to_pfn(page), el2_error_name(status));
		atomic64_inc(&pvm_stat_pages_lost);
		return;
	}
	va = kmap_local_page(page);
	if (memchr_inv(va, 0, PAGE_SIZE))
		atomic64_inc(&pvm_stat_pages_reclaimed_nonzero);
	kunmap_local(va);
	atomic64_inc(&pvm_stat_pages_reclaimed);
	pvm_free_page(page);
}

static long dev_get_stats(struct el2_pvm_stats __user *uarg)
{
	struct el2_pvm_stats stats = {
		.vms = atomic64_read(&pvm_stat_vms),
		.pages_held = atomic64_read(&pvm_stat_pages_held),
		.pages_reclaimed = atomic64_read(&pvm_stat_pages_reclaimed),
		.pages_reclaimed_nonzero = atomic64_read(&pvm_stat_pages_reclaimed_nonzero),
		.pages_lost = atomic64_read(&pvm_stat_pages_lost),
	};

	return copy_to_user(uarg, &stats, sizeof(stats)) ? -EFAULT : 0;
}

static long dev_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case EL2_PVM_GET_API_VERSION:
		return arg ? -EINVAL : EL2_PVM_API_VERSION;
	case EL2_PVM_CREATE_VM:
		return pvm_create_vm(uarg);
	case EL2_PVM_GET_STATS:
		return dev_get_stats(uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations dev_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = dev_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice pvm_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "el2-pvm",
	.fops = &dev_fops,
	.mode = 0600,
};

static int __init pvm_init(void)
{
	int ret = el2_probe();

	if (ret)
		return ret;
	ret = misc_register(&pvm_dev);
	if (!ret)
		pr_info("el2_pvm: /dev/el2-pvm ready\n");
	return ret;
}

static void __exit pvm_exit(void)
{
	/* Every fd holds a module reference (fops.owner): no VM is left here. */
	misc_deregister(&pvm_dev);
}

module_init(pvm_init);
module_exit(pvm_exit);
MODULE_DESCRIPTION("Protected VMs of the el2 payload");
MODULE_LICENSE("Dual MIT/GPL");
