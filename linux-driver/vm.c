// SPDX-License-Identifier: (GPL-2.0 OR MIT)
/*
 * VMs and vCPUs: each is an fd; EL2 holds their real state, the driver only moves pages
 * and translates exits. A VM ends when its fd and every vCPU fd are closed: then EL2
 * destroys it and the driver reclaims (EL2 zeroes) and frees every page it gave it.
 */
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include "el2_pvm.h"
#include "hvc.h"

static atomic64_t next_vm_id = ATOMIC64_INIT(1);

/* Errors of the calls a correct driver can still get from EL2, as errnos. */
static int el2_errno(long status)
{
	switch (status) {
	case 0: return 0;
	case EL2_BUSY: return -EBUSY;
	case EL2_NO_MEMORY: return -ENOMEM;
	case EL2_DENIED: return -EPERM;
	case EL2_NOT_FOUND: return -ENOENT;
	case EL2_RANGE: return -E2BIG;
	case EL2_INVALID_PARAMETER: return -EINVAL;
	default: return -EIO;
	}
}

/*
 * A VM's first pool pages also hold its stage-2 root. On a CPU whose IPA size needs
 * concatenated root tables (40-bit PA: 2 tables, 42-bit: 8) they must be contiguous and
 * aligned to their size, plus one page (docs/abi.md 4.4 row 7): a naturally aligned block
 * of 16 pages always holds that, on every CPU.
 */
#define FIRST_TOPUP_ORDER 4

/* The first top-up of a VM: one naturally aligned block (see FIRST_TOPUP_ORDER). */
static int vm_first_topup(struct pvm_vm *vm)
{
	unsigned long i, nr = 1UL << FIRST_TOPUP_ORDER;
	struct page *block = pvm_alloc_block(FIRST_TOPUP_ORDER);
	long status;

	if (!block)
		return -ENOMEM;
	status = el2_vm_topup(vm->handle, page_to_pfn(block), nr);
	if (status) {
		pr_err("el2_pvm: first VM_TOPUP failed: %s\n", el2_error_name(status));
		for (i = 0; i < nr; i++)
			pvm_free_page(block + i);
		return el2_errno(status);
	}
	for (i = 0; i < nr; i++)
		list_add(&block[i].lru, &vm->pool);
	return 0;
}

/* EL2 asked for page-table memory: give it EL2_MAX_POOL_PAGES_PER_CALL pages, which
 * always lets the retried call through (docs/abi.md 7.3). Called with vm->lock held. */
static int vm_topup(struct pvm_vm *vm)
{
	int i;

	if (list_empty(&vm->pool))
		return vm_first_topup(vm);
	for (i = 0; i < EL2_MAX_POOL_PAGES_PER_CALL; i++) {
		struct page *page = pvm_alloc_page();
		long status;

		if (!page)
			return -ENOMEM;
		status = el2_vm_topup(vm->handle, page_to_pfn(page), 1);
		if (status) {
			pr_err("el2_pvm: VM_TOPUP failed: %s\n", el2_error_name(status));
			pvm_free_page(page);
			return el2_errno(status);
		}
		list_add(&page->lru, &vm->pool);
	}
	return 0;
}

/* Writes back the kernel's writes to the page (its zeroing and the image) to the point of
 * coherency: the guest starts with its MMU and caches off and reads memory directly
 * (docs/abi.md 4.5). dcache_clean_poc is not exported to modules in 6.1, hence DC CVAC
 * by hand, line by line (Arm ARM D7.5.9), through the linear map while the page is ours. */
static void clean_page_to_poc(struct page *page)
{
	unsigned long addr = (unsigned long)page_address(page);
	unsigned long end = addr + PAGE_SIZE;
	u64 ctr;
	unsigned long line;

	asm volatile("mrs %0, ctr_el0" : "=r"(ctr));
	line = 4UL << ((ctr >> 16) & 0xf);	/* CTR_EL0.DminLine: log2 words */
	for (addr &= ~(line - 1); addr < end; addr += line)
		asm volatile("dc cvac, %0" : : "r"(addr) : "memory");
	asm volatile("dsb sy" : : : "memory");
}

static bool ranges_overlap(u64 a, u64 an, u64 b, u64 bn)
{
	return a < b + bn && b < a + an;
}

static long vm_set_memory(struct pvm_vm *vm, const struct el2_pvm_memory_region __user *uarg)
{
	struct el2_pvm_memory_region args;
	struct pvm_binding *binding, *other;
	struct pvm_gmem *gmem;
	struct file *file;
	u64 gfn, npages, pgoff, i;
	long ret = 0;

	if (copy_from_user(&args, uarg, sizeof(args)))
		return -EFAULT;
	if (args.flags || args.reserved[0] || args.reserved[1])
		return -EINVAL;
	if (!args.memory_size || !PAGE_ALIGNED(args.memory_size) ||
	    !PAGE_ALIGNED(args.guest_phys_addr) || !PAGE_ALIGNED(args.guest_memfd_offset))
		return -EINVAL;
	if (args.init_size > args.memory_size || (args.init_size && !args.init_addr))
		return -EINVAL;
	if (args.guest_phys_addr + args.memory_size < args.guest_phys_addr ||
	    args.guest_phys_addr + args.memory_size > (1ULL << vm->ipa_bits))
		return -E2BIG;
	gfn = args.guest_phys_addr >> PAGE_SHIFT;
	npages = args.memory_size >> PAGE_SHIFT;
	pgoff = args.guest_memfd_offset >> PAGE_SHIFT;

	file = fget(args.guest_memfd);
	if (!file)
		return -EBADF;
	gmem = pvm_gmem_from_file(file);
	if (!gmem || gmem->vm_id != vm->id) {
		fput(file);
		return -EINVAL;
	}
	if (pgoff >= gmem->npages || npages > gmem->npages - pgoff) {
		fput(file);
		return -E2BIG;
	}
	binding = kzalloc(sizeof(*binding), GFP_KERNEL_ACCOUNT);
	if (!binding) {
		fput(file);
		return -ENOMEM;
	}

	mutex_lock(&vm->lock);
	if (vm->launched && args.init_size) {
		/* EL2 gives a launched guest zeroed pages only (docs/abi.md 4.5). */
		ret = -EBUSY;
		goto out;
	}
	list_for_each_entry(other, &vm->bindings, node) {
		if (ranges_overlap(gfn, npages, other->gfn, other->npages) ||
		    (other->gmem == gmem &&
		     ranges_overlap(pgoff, npages, other->pgoff, other->npages))) {
			ret = -EEXIST;
			goto out;
		}
	}
	binding->gfn = gfn;
	binding->npages = npages;
	binding->pgoff = pgoff;
	binding->gmem = gmem;
	binding->file = file;
	/* Listed before the first donation: teardown finds every page donated so far. */
	list_add(&binding->node, &vm->bindings);

	for (i = 0; i < npages && !ret; i++) {
		struct page *page = pvm_alloc_page();
		u64 offset = i << PAGE_SHIFT;
		long status;

		if (!page) {
			ret = -ENOMEM;
			break;
		}
		if (offset < args.init_size) {
			u64 len = min_t(u64, PAGE_SIZE, args.init_size - offset);

			if (copy_from_user(page_address(page),
					   u64_to_user_ptr(args.init_addr + offset), len)) {
				pvm_free_page(page);
				ret = -EFAULT;
				break;
			}
		}
		clean_page_to_poc(page);
		/*
		 * From the donation on, the kernel never touches this page until VM_RECLAIM gave
		 * it back zeroed: it was allocated unmovable (no migration or compaction moves
		 * or reads it), is on no LRU or page-cache list (no reclaim, swap or writeback),
		 * stays referenced by this driver (never freed, so never zeroed or poisoned by
		 * the page allocator), is mapped to user space only as a PFN map while the guest
		 * shares it, and the driver itself maps or reads it only before the donation and
		 * after the reclaim. Any access through the linear map would be a synchronous
		 * external abort injected by EL2 (a kernel oops), which the tests look for.
		 */
		do {
			status = el2_vm_donate(vm->handle, page_to_pfn(page), gfn + i, 1);
			if (status == EL2_NO_MEMORY) {
				ret = vm_topup(vm);
				if (ret)
					break;
			}
		} while (status == EL2_NO_MEMORY);
		if (status) {
			if (!ret) {
				pr_err("el2_pvm: VM_DONATE failed: %s\n", el2_error_name(status));
				ret = el2_errno(status);
			}
			pvm_free_page(page);
			break;
		}
		mutex_lock(&gmem->lock);
		gmem->pages[pgoff + i] = page;
		gmem->state[pgoff + i] = PVM_PAGE_PRIVATE;
		mutex_unlock(&gmem->lock);
	}
	binding = NULL;	/* the VM owns it now, donated or not; teardown frees it */
	file = NULL;
out:
	mutex_unlock(&vm->lock);
	kfree(binding);
	if (file)
		fput(file);
	return ret;
}

/* ---- vCPUs ---- */

static struct pvm_binding *binding_of(struct pvm_vm *vm, u64 gfn)
{
	struct pvm_binding *b;

	list_for_each_entry(b, &vm->bindings, node)
		if (gfn >= b->gfn && gfn - b->gfn < b->npages)
			return b;
	return NULL;
}

/* The guest shared, unshared or relinquished nr pages at gfn: EL2 has already changed the
 * host's stage 2; the driver's page states follow (and unmap what is no longer shared),
 * one call per binding the range crosses. */
static void vm_pages_changed(struct pvm_vm *vm, u64 gfn, u64 nr, enum pvm_page_state s)
{
	u64 end = gfn + nr;

	mutex_lock(&vm->lock);
	while (gfn < end) {
		struct pvm_binding *b = binding_of(vm, gfn);
		u64 count;

		if (!b) {	/* not memory this driver bound: EL2 would not say so */
			gfn++;
			continue;
		}
		count = min(end, b->gfn + b->npages) - gfn;
		pvm_gmem_set_state(b->gmem, b->pgoff + (gfn - b->gfn), count, s);
		gfn += count;
	}
	mutex_unlock(&vm->lock);
}

/* Fills the run structure from EL2's exit; false for IRQ (the driver runs on). */
static bool vcpu_exit(struct pvm_vcpu *vcpu, struct el2_result r)
{
	struct el2_pvm_run *run = vcpu->run;
	u32 reason = r.x1 & 0xff;

	vcpu->last_exit = reason;
	vcpu->last_mmio_read = false;
	switch (reason) {
	case EL2_EXIT_IRQ:
		return false;
	case EL2_EXIT_MMIO:
		run->exit_reason = EL2_PVM_EXIT_MMIO;
		run->mmio.phys_addr = r.x2;
		run->mmio.len = 1U << ((r.x1 >> 8) & 3);
		run->mmio.is_write = (r.x1 >> 12) & 1;
		run->mmio.data = run->mmio.is_write ? r.x3 : 0;
		vcpu->last_mmio_read = !run->mmio.is_write;
		break;
	case EL2_EXIT_GUEST_HVC:
		run->exit_reason = EL2_PVM_EXIT_HYPERCALL;
		run->hypercall.function_id = r.x2;
		run->hypercall.arg1 = r.x3;
		run->hypercall.ret = 0;
		break;
	case EL2_EXIT_MEM_SHARED:
	case EL2_EXIT_MEM_UNSHARED:
	case EL2_EXIT_MEM_RELINQUISHED:
		vm_pages_changed(vcpu->vm, r.x2 >> PAGE_SHIFT, r.x3,
				 reason == EL2_EXIT_MEM_SHARED ? PVM_PAGE_SHARED :
				 reason == EL2_EXIT_MEM_UNSHARED ? PVM_PAGE_PRIVATE :
				 PVM_PAGE_RELINQUISHED);
		run->exit_reason = reason == EL2_EXIT_MEM_SHARED ? EL2_PVM_EXIT_MEM_SHARED :
				   reason == EL2_EXIT_MEM_UNSHARED ? EL2_PVM_EXIT_MEM_UNSHARED :
				   EL2_PVM_EXIT_MEM_RELINQUISHED;
		run->memory.gpa = r.x2;
		run->memory.nr_pages = r.x3;
		break;
	case EL2_EXIT_MEM_FAULT:
		run->exit_reason = EL2_PVM_EXIT_MEM_FAULT;
		run->memory.gpa = r.x2;
		run->memory.nr_pages = 1;
		break;
	case EL2_EXIT_SYSTEM_OFF:
		run->exit_reason = EL2_PVM_EXIT_SYSTEM_OFF;
		break;
	case EL2_EXIT_SYSTEM_RESET:
		run->exit_reason = EL2_PVM_EXIT_SYSTEM_RESET;
		break;
	case EL2_EXIT_VCPU_STARTED:
		run->exit_reason = EL2_PVM_EXIT_VCPU_STARTED;
		run->vcpu_started.vcpu = r.x2;
		break;
	case EL2_EXIT_VCPU_OFF:
		run->exit_reason = EL2_PVM_EXIT_VCPU_OFF;
		break;
	default:
		pr_err("el2_pvm: unknown exit %#llx\n", r.x1);
		run->exit_reason = EL2_PVM_EXIT_NONE;
		break;
	}
	return true;
}

static long vcpu_run(struct pvm_vcpu *vcpu)
{
	struct el2_pvm_run *run = vcpu->run;
	struct pvm_vm *vm = vcpu->vm;
	long ret = 0;

	/* A second RUN of the same vCPU (another thread) gets EBUSY, not a wait. */
	if (!mutex_trylock(&vcpu->run_lock))
		return -EBUSY;
	for (;;) {
		u64 completion = 0;
		struct el2_result r;

		if (READ_ONCE(run->immediate_exit) || signal_pending(current)) {
			run->exit_reason = EL2_PVM_EXIT_INTR;
			ret = -EINTR;
			break;
		}
		if (vcpu->last_mmio_read)
			completion = READ_ONCE(run->mmio.data);
		else if (vcpu->last_exit == EL2_EXIT_GUEST_HVC)
			completion = READ_ONCE(run->hypercall.ret);
		if (!READ_ONCE(vm->launched)) {
			/* The first RUN launches the VM (abi.md 4.8): no vCPU after it. */
			mutex_lock(&vm->lock);
			vm->launched = true;
			mutex_unlock(&vm->lock);
		}
		/* Interrupts stay enabled: one that arrives while the guest runs ends the run
		 * with an IRQ exit and is taken by Linux the moment the HVC returns. */
		r = el2_vcpu_run(vm->handle, vcpu->index, completion);
		if (r.status) {
			pr_err("el2_pvm: VCPU_RUN failed: %s\n", el2_error_name(r.status));
			ret = el2_errno(r.status);
			break;
		}
		if (vcpu_exit(vcpu, r))
			break;
		vcpu->last_exit = 0;
		cond_resched();
	}
	mutex_unlock(&vcpu->run_lock);
	return ret;
}

static long vcpu_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	if (cmd == EL2_PVM_RUN)
		return arg ? -EINVAL : vcpu_run(file->private_data);
	return -ENOTTY;
}

static int vcpu_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct pvm_vcpu *vcpu = file->private_data;

	if (vma->vm_pgoff || vma->vm_end - vma->vm_start != EL2_PVM_RUN_MMAP_SIZE)
		return -EINVAL;
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	vma->vm_flags |= VM_DONTEXPAND | VM_DONTDUMP;
	return vm_insert_page(vma, vma->vm_start, virt_to_page(vcpu->run));
}

static int vcpu_release(struct inode *inode, struct file *file)
{
	struct pvm_vcpu *vcpu = file->private_data;
	struct file *vm_file = vcpu->vm_file;

	/* The run page may still be mapped: the mapping holds its own reference. */
	pvm_free_page(virt_to_page(vcpu->run));
	kfree(vcpu);
	fput(vm_file);
	return 0;
}

static const struct file_operations vcpu_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = vcpu_ioctl,
	.mmap = vcpu_mmap,
	.release = vcpu_release,
	.llseek = noop_llseek,
};

static long vm_create_vcpu(struct file *vm_file, const struct el2_pvm_create_vcpu __user *uarg)
{
	struct pvm_vm *vm = vm_file->private_data;
	struct el2_pvm_create_vcpu args;
	struct pvm_vcpu *vcpu;
	struct page *run_page;
	struct file *file;
	long status;
	int fd;

	if (copy_from_user(&args, uarg, sizeof(args)))
		return -EFAULT;
	if (args.flags || args.reserved[0] || args.reserved[1] || args.entry_ipa % 4)
		return -EINVAL;
	if (args.index != 0 && (args.entry_ipa || args.x0))
		return -EINVAL;
	if (args.index >= vm->nr_vcpus || args.entry_ipa >= (1ULL << vm->ipa_bits))
		return -E2BIG;

	vcpu = kzalloc(sizeof(*vcpu), GFP_KERNEL_ACCOUNT);
	run_page = pvm_alloc_page();
	if (!vcpu || !run_page) {
		kfree(vcpu);
		if (run_page)
			pvm_free_page(run_page);
		return -ENOMEM;
	}
	vcpu->vm = vm;
	vcpu->index = args.index;
	vcpu->run = page_address(run_page);
	mutex_init(&vcpu->run_lock);

	mutex_lock(&vm->lock);
	if (vm->launched) {
		fd = -EBUSY;	/* locked launch: no vCPU after the first RUN (abi.md 4.8) */
		goto err;
	}
	if (vm->vcpus_created & BIT(args.index)) {
		fd = -EEXIST;
		goto err;
	}
	status = el2_vcpu_create(vm->handle, args.index, args.entry_ipa, args.x0);
	if (status) {
		fd = el2_errno(status);
		goto err;
	}
	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0)
		goto err_created;
	file = anon_inode_getfile("el2-pvm-vcpu", &vcpu_fops, vcpu, O_RDWR);
	if (IS_ERR(file)) {
		put_unused_fd(fd);
		fd = PTR_ERR(file);
		goto err_created;
	}
	vcpu->vm_file = get_file(vm_file);
	vm->vcpus_created |= BIT(args.index);
	mutex_unlock(&vm->lock);
	fd_install(fd, file);
	return fd;
err_created:
	/* EL2 has the vCPU but nobody can run it; the slot stays taken (EEXIST). */
	vm->vcpus_created |= BIT(args.index);
err:
	mutex_unlock(&vm->lock);
	pvm_free_page(run_page);
	kfree(vcpu);
	return fd;
}

/* ---- VM teardown ---- */

static void vm_teardown(struct pvm_vm *vm)
{
	struct pvm_binding *b, *tmp_b;
	struct page *page, *tmp_p;
	long status;
	bool destroyed;
	u64 i;

	/* First no user mapping of any page is left (EL2 removes the host's access to shared
	 * pages at VM_DESTROY, and the pages are freed after), then EL2 destroys the VM. */
	list_for_each_entry(b, &vm->bindings, node) {
		mutex_lock(&b->gmem->lock);
		for (i = b->pgoff; i < b->pgoff + b->npages; i++)
			if (b->gmem->state[i] == PVM_PAGE_SHARED)
				b->gmem->state[i] = PVM_PAGE_PRIVATE;
		unmap_mapping_range(&b->gmem->mapping, 0, 0, 1);
		mutex_unlock(&b->gmem->lock);
	}
	status = el2_vm_destroy(vm->handle);
	destroyed = status == 0;
	if (!destroyed)
		pr_err("el2_pvm: VM_DESTROY failed: %s; its pages are lost\n",
		       el2_error_name(status));

	list_for_each_entry_safe(b, tmp_b, &vm->bindings, node) {
		struct pvm_gmem *gmem = b->gmem;

		mutex_lock(&gmem->lock);
		for (i = b->pgoff; i < b->pgoff + b->npages; i++) {
			page = gmem->pages[i];
			if (!page)
				continue;
			if (gmem->state[i] == PVM_PAGE_RELINQUISHED)
				pvm_free_page(page);	/* the host's since MEM_RELINQUISH */
			else if (destroyed)
				pvm_reclaim_page(page);
			else
				atomic64_inc(&pvm_stat_pages_lost);
			gmem->pages[i] = NULL;
			gmem->state[i] = PVM_PAGE_EMPTY;
		}
		mutex_unlock(&gmem->lock);
		list_del(&b->node);
		fput(b->file);
		kfree(b);
	}
	list_for_each_entry_safe(page, tmp_p, &vm->pool, lru) {
		list_del(&page->lru);
		if (destroyed)
			pvm_reclaim_page(page);
		else
			atomic64_inc(&pvm_stat_pages_lost);
	}
}

static int vm_release(struct inode *inode, struct file *file)
{
	struct pvm_vm *vm = file->private_data;

	vm_teardown(vm);
	kfree(vm);
	atomic64_dec(&pvm_stat_vms);
	return 0;
}

static long vm_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct pvm_vm *vm = file->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case EL2_PVM_CREATE_GUEST_MEMFD:
		return pvm_gmem_create(vm, uarg);
	case EL2_PVM_SET_MEMORY:
		return vm_set_memory(vm, uarg);
	case EL2_PVM_CREATE_VCPU:
		return vm_create_vcpu(file, uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations vm_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = vm_ioctl,
	.release = vm_release,
	.llseek = noop_llseek,
};

long pvm_create_vm(const struct el2_pvm_create_vm __user *uarg)
{
	struct el2_pvm_create_vm args;
	struct el2_result r;
	struct pvm_vm *vm;
	struct file *file;
	int fd;

	if (copy_from_user(&args, uarg, sizeof(args)))
		return -EFAULT;
	if (args.flags || args.reserved[0] || args.reserved[1])
		return -EINVAL;
	if (!args.nr_vcpus || args.ipa_bits < 32 || args.ipa_bits > 40)
		return -EINVAL;
	if (args.nr_vcpus > PVM_MAX_VCPUS)
		return -E2BIG;
	vm = kzalloc(sizeof(*vm), GFP_KERNEL_ACCOUNT);
	if (!vm)
		return -ENOMEM;
	vm->id = atomic64_inc_return(&next_vm_id);
	vm->nr_vcpus = args.nr_vcpus;
	vm->ipa_bits = args.ipa_bits;
	mutex_init(&vm->lock);
	INIT_LIST_HEAD(&vm->bindings);
	INIT_LIST_HEAD(&vm->pool);

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0)
		goto err;
	r = el2_vm_create(args.nr_vcpus, args.ipa_bits);
	if (r.status) {
		put_unused_fd(fd);
		/* BUSY: every EL2 VM slot is taken; DENIED: the payload refuses VMs. */
		fd = r.status == EL2_BUSY ? -ENOSPC : el2_errno(r.status);
		goto err;
	}
	vm->handle = r.x1;
	file = anon_inode_getfile("el2-pvm-vm", &vm_fops, vm, O_RDWR);
	if (IS_ERR(file)) {
		el2_vm_destroy(vm->handle);
		put_unused_fd(fd);
		fd = PTR_ERR(file);
		goto err;
	}
	atomic64_inc(&pvm_stat_vms);
	fd_install(fd, file);
	return fd;
err:
	kfree(vm);
	return fd;
}
