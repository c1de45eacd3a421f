// SPDX-License-Identifier: (GPL-2.0 OR MIT)
/*
 * Guest memory fds, with Linux guest_memfd's mmap() rules: MAP_SHARED only (EINVAL for
 * MAP_PRIVATE), no read()/write() (no such file operations: EINVAL), and a fault maps a
 * page only if the guest shared it; a private page, a page past the end or a page the VM
 * no longer has gives SIGBUS. When the guest unshares a page the driver zaps it from every
 * user mapping before the vCPU's RUN returns (EL2 already took it out of the host's
 * stage 2 before the guest went on: the zap only spares user space a hardware abort).
 */
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/mm.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include "el2_pvm.h"

/*
 * TEST ONLY. Stands in for a host kernel bug: a fault on a private page maps it anyway.
 * The access must then die with SIGBUS from the payload's injected synchronous external
 * abort (the page is in no host stage 2) while Linux keeps running: the proof that the
 * isolation is the hardware's, not this fault handler's. Off unless a test turns it on.
 */
static bool test_force_map_private;
module_param(test_force_map_private, bool, 0644);
MODULE_PARM_DESC(test_force_map_private,
		 "TEST ONLY: map guest-private pages into user space (must SIGBUS in hardware)");

static const struct file_operations gmem_fops;

struct pvm_gmem *pvm_gmem_from_file(struct file *file)
{
	return file && file->f_op == &gmem_fops ? file->private_data : NULL;
}

static vm_fault_t gmem_fault(struct vm_fault *vmf)
{
	struct pvm_gmem *gmem = pvm_gmem_from_file(vmf->vma->vm_file);
	vm_fault_t ret = VM_FAULT_SIGBUS;
	unsigned long pgoff = vmf->pgoff;

	if (!gmem || pgoff >= gmem->npages)
		return VM_FAULT_SIGBUS;
	mutex_lock(&gmem->lock);
	if (gmem->state[pgoff] == PVM_PAGE_SHARED ||
	    (gmem->state[pgoff] == PVM_PAGE_PRIVATE && READ_ONCE(test_force_map_private)))
		/* A special pte, no struct page reference: the page stays the driver's. */
		ret = vmf_insert_pfn(vmf->vma, vmf->address, page_to_pfn(gmem->pages[pgoff]));
	mutex_unlock(&gmem->lock);
	return ret;
}

static const struct vm_operations_struct gmem_vm_ops = {
	.fault = gmem_fault,
};

static int gmem_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct pvm_gmem *gmem = file->private_data;

	if (!(gmem->flags & EL2_PVM_GUEST_MEMFD_FLAG_MMAP))
		return -ENODEV;
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	/*
	 * PFN map: no struct page is ever handed to the rest of the kernel through this
	 * mapping, so get_user_pages (O_DIRECT, /proc/pid/mem, ptrace) cannot reach a guest
	 * page through it; VM_IO keeps it out of core dumps and GUP as well.
	 */
	vma->vm_flags |= VM_PFNMAP | VM_IO | VM_DONTEXPAND | VM_DONTDUMP;
	vma->vm_ops = &gmem_vm_ops;
	return 0;
}

/*
 * Pages pgoff..pgoff+nr of the fd are now in state s (the guest shared, unshared or
 * relinquished them). Pages that stop being shared are zapped from every user mapping in
 * every process, with one unmap_mapping_range for the range; holding gmem->lock, no fault
 * can map one again before the state says it is not shared.
 */
void pvm_gmem_set_state(struct pvm_gmem *gmem, unsigned long pgoff, unsigned long nr,
			enum pvm_page_state s)
{
	bool zap = false;
	unsigned long i;

	mutex_lock(&gmem->lock);
	for (i = pgoff; i < pgoff + nr; i++) {
		zap |= gmem->state[i] == PVM_PAGE_SHARED && s != PVM_PAGE_SHARED;
		gmem->state[i] = s;
	}
	if (zap)
		unmap_mapping_range(&gmem->mapping, (loff_t)pgoff << PAGE_SHIFT,
				    (loff_t)nr << PAGE_SHIFT, 1);
	mutex_unlock(&gmem->lock);
}

static int gmem_release(struct inode *inode, struct file *file)
{
	struct pvm_gmem *gmem = file->private_data;
	unsigned long i;

	/* A bound fd is released only after its VM ended (the VM holds a reference), which
	 * gave every page back: what is left was never donated. */
	for (i = 0; i < gmem->npages; i++)
		if (gmem->pages[i])
			pvm_free_page(gmem->pages[i]);
	kvfree(gmem->pages);
	kvfree(gmem->state);
	kfree(gmem);
	return 0;
}

static const struct file_operations gmem_fops = {
	.owner = THIS_MODULE,
	.mmap = gmem_mmap,
	.release = gmem_release,
	.llseek = noop_llseek,
};

int pvm_gmem_create(struct pvm_vm *vm, const struct el2_pvm_create_guest_memfd __user *uarg)
{
	struct el2_pvm_create_guest_memfd args;
	struct pvm_gmem *gmem;
	struct file *file;
	int fd, i;

	if (copy_from_user(&args, uarg, sizeof(args)))
		return -EFAULT;
	for (i = 0; i < ARRAY_SIZE(args.reserved); i++)
		if (args.reserved[i])
			return -EINVAL;
	if (args.flags & ~EL2_PVM_GUEST_MEMFD_FLAG_MMAP)
		return -EINVAL;
	if (!args.size || !PAGE_ALIGNED(args.size))
		return -EINVAL;
	if (args.size > EL2_PVM_MAX_GUEST_MEMFD_SIZE)
		return -E2BIG;

	gmem = kzalloc(sizeof(*gmem), GFP_KERNEL_ACCOUNT);
	if (!gmem)
		return -ENOMEM;
	gmem->npages = args.size >> PAGE_SHIFT;
	gmem->flags = args.flags;
	gmem->vm_id = vm->id;
	mutex_init(&gmem->lock);
	address_space_init_once(&gmem->mapping);
	gmem->pages = kvcalloc(gmem->npages, sizeof(*gmem->pages), GFP_KERNEL_ACCOUNT);
	gmem->state = kvcalloc(gmem->npages, 1, GFP_KERNEL_ACCOUNT);
	if (!gmem->pages || !gmem->state) {
		fd = -ENOMEM;
		goto err;
	}
	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0)
		goto err;
	file = anon_inode_getfile("el2-pvm-guest-memory", &gmem_fops, gmem, O_RDWR);
	if (IS_ERR(file)) {
		put_unused_fd(fd);
		fd = PTR_ERR(file);
		goto err;
	}
	gmem->mapping.host = file_inode(file);
	file->f_mapping = &gmem->mapping;
	/* Neither read() nor write(): vfs returns EINVAL without FMODE_CAN_READ/WRITE. */
	file->f_mode &= ~(FMODE_CAN_READ | FMODE_CAN_WRITE | FMODE_PREAD | FMODE_PWRITE);
	gmem->file = file;
	fd_install(fd, file);
	return fd;
err:
	kvfree(gmem->pages);
	kvfree(gmem->state);
	kfree(gmem);
	return fd;
}
