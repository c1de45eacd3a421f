//! Secondary CPUs: PSCI CPU_ON with a `CpuBoot` block that the entry code (asm/entry.S)
//! reads with the MMU off; the CPU turns its MMU on with the boot CPU's tables, runs the
//! task it was given and then turns itself off with PSCI CPU_OFF.

use crate::board::MAX_CPUS;
use crate::cache;
use crate::exit::{self, fail_with};
use crate::mmu::MmuConfig;
use crate::psci;
use aarch64_cpu::registers::{CurrentEL, MPIDR_EL1, Readable};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicI32, AtomicU64, Ordering};

/// Stack of each secondary CPU.
const STACK_SIZE: usize = 16 * 1024;
/// MPIDR_EL1 affinity fields Aff3 (39:32) and Aff2-Aff0 (23:0), as in a cpu node's reg.
const MPIDR_AFFINITY_MASK: u64 = 0xff_00ff_ffff;

/// What a secondary CPU runs once it is up: `task(index)`. When it returns, the CPU calls
/// CPU_OFF.
pub type Task = fn(usize);

/// What a secondary CPU needs before it can run Rust code, read by entry.S with the MMU
/// off. The layout must match the offsets in entry.S.
#[repr(C)]
pub struct CpuBoot {
    stack_top: AtomicU64,
    mair: AtomicU64,
    tcr: AtomicU64,
    ttbr0: AtomicU64,
    sctlr: AtomicU64,
    index: AtomicU64,
    task: AtomicU64,
}

// entry.S reads the block at these offsets.
const _: () = {
    assert!(core::mem::offset_of!(CpuBoot, stack_top) == 0);
    assert!(core::mem::offset_of!(CpuBoot, mair) == 8);
    assert!(core::mem::offset_of!(CpuBoot, tcr) == 16);
    assert!(core::mem::offset_of!(CpuBoot, ttbr0) == 24);
    assert!(core::mem::offset_of!(CpuBoot, sctlr) == 32);
    assert!(core::mem::offset_of!(CpuBoot, index) == 40);
    assert!(core::mem::offset_of!(CpuBoot, task) == 48);
};

impl CpuBoot {
    const fn new() -> Self {
        Self {
            stack_top: AtomicU64::new(0),
            mair: AtomicU64::new(0),
            tcr: AtomicU64::new(0),
            ttbr0: AtomicU64::new(0),
            sctlr: AtomicU64::new(0),
            index: AtomicU64::new(0),
            task: AtomicU64::new(0),
        }
    }
}

#[repr(C, align(16))]
struct Stack(UnsafeCell<[u8; STACK_SIZE]>);

// SAFETY: each stack is used only by the one secondary CPU it is given to; Rust code never
// reads or writes it through this static.
unsafe impl Sync for Stack {}

static STACKS: [Stack; MAX_CPUS] = [const { Stack(UnsafeCell::new([0; STACK_SIZE])) }; MAX_CPUS];
static BOOT_BLOCKS: [CpuBoot; MAX_CPUS] = [const { CpuBoot::new() }; MAX_CPUS];
/// A secondary's CPU_OFF error, if CPU_OFF returned (0: it did not).
static CPU_OFF_ERROR: [AtomicI32; MAX_CPUS] = [const { AtomicI32::new(0) }; MAX_CPUS];

unsafe extern "C" {
    /// entry.S: where PSCI CPU_ON starts a secondary CPU (x0 = its `CpuBoot`).
    fn el1_rt_secondary_entry();
}

/// The calling CPU's MPIDR affinity, comparable with the `/cpus` reg values.
pub fn own_mpidr() -> u64 {
    MPIDR_EL1.get() & MPIDR_AFFINITY_MASK
}

/// Starts CPU number `index` (1..MAX_CPUS, its position under `/cpus`), whose MPIDR is
/// `mpidr`, with the boot CPU's MMU configuration `mmu`, to run `task(index)`. Returns
/// the PSCI CPU_ON status (0 on success). The CPU's block must not be in use: start a CPU
/// again only after it is reported off.
pub fn start(index: usize, mpidr: u64, mmu: &MmuConfig, task: Task) -> i32 {
    if index == 0 || index >= MAX_CPUS {
        return smccc::psci::error::INVALID_PARAMETERS;
    }
    let context = prepare_boot_block(index, mmu, task);
    psci::cpu_on(mpidr, entry_address(), context)
}

/// The address of CPU `index`'s boot block: a valid CPU_ON context for it.
pub fn boot_block_address(index: usize) -> u64 {
    BOOT_BLOCKS
        .get(index)
        .map_or(0, |block| block as *const CpuBoot as u64)
}

/// Physical (= virtual, identity map) address of the secondary entry, for CPU_ON.
pub fn entry_address() -> u64 {
    el1_rt_secondary_entry as *const () as u64
}

/// The error CPU_OFF returned on CPU `index`, or 0 if it did not return.
pub fn cpu_off_error(index: usize) -> i32 {
    CPU_OFF_ERROR
        .get(index)
        .map_or(0, |error| error.load(Ordering::Acquire))
}

/// Fills the `CpuBoot` block of CPU `index` and returns its address for CPU_ON.
fn prepare_boot_block(index: usize, mmu: &MmuConfig, task: Task) -> u64 {
    let block = &BOOT_BLOCKS[index];
    let stack = &STACKS[index];
    let stack_top = stack.0.get() as u64 + STACK_SIZE as u64;
    block.stack_top.store(stack_top, Ordering::Relaxed);
    block.mair.store(mmu.mair, Ordering::Relaxed);
    block.tcr.store(mmu.tcr, Ordering::Relaxed);
    block.ttbr0.store(mmu.ttbr0, Ordering::Relaxed);
    block.sctlr.store(mmu.sctlr, Ordering::Relaxed);
    block.index.store(index as u64, Ordering::Relaxed);
    block.task.store(task as usize as u64, Ordering::Relaxed);
    CPU_OFF_ERROR[index].store(0, Ordering::Relaxed);
    // The secondary reads the block with its MMU (and so its caches) off.
    cache::clean_to_poc(
        block as *const CpuBoot as usize,
        core::mem::size_of::<CpuBoot>(),
    );
    block as *const CpuBoot as u64
}

/// Rust entry of a secondary CPU, at EL1 with the MMU on (entry.S).
#[unsafe(no_mangle)]
extern "C" fn el1_rt_secondary_main(boot: &CpuBoot) -> ! {
    let index = boot.index.load(Ordering::Relaxed) as usize;
    let el = CurrentEL.read(CurrentEL::EL);
    if el != 1 {
        fail_with(format_args!("cpu {index} started at EL{el}, expected EL1"));
    }
    let task = boot.task.load(Ordering::Relaxed) as usize;
    // SAFETY: `prepare_boot_block` stored a `Task` (a `fn(usize)`) converted to an
    // integer, on this same image; a function pointer round-trips through usize.
    let task: Task = unsafe { core::mem::transmute::<usize, Task>(task) };
    task(index);
    let error = psci::cpu_off();
    if let Some(slot) = CPU_OFF_ERROR.get(index) {
        slot.store(error, Ordering::Release);
    }
    exit::park()
}

/// Rust entry of a secondary CPU that PSCI started at an EL other than EL1: the payload's
/// relay is broken. Runs with the MMU off; `fail_with` copes with that.
#[unsafe(no_mangle)]
extern "C" fn el1_rt_secondary_at_wrong_el(boot: &CpuBoot, el: u64) -> ! {
    let index = boot.index.load(Ordering::Relaxed);
    fail_with(format_args!("cpu {index} started at EL{el}, expected EL1"))
}
