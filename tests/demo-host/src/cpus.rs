//! Secondary CPU bring-up through the payload's PSCI relay: CPU_ON of every CPU, each
//! reports in at EL1, CPU_ON of a running CPU is refused with ALREADY_ON, then every
//! secondary turns itself off with CPU_OFF and AFFINITY_INFO must report it off.

use crate::board::{CpuList, MAX_CPUS};
use crate::cache;
use crate::console::say;
use crate::exit::{self, fail};
use crate::mmu::MmuConfig;
use crate::psci;
use crate::timeout::wait_until;
use aarch64_cpu::registers::{CurrentEL, MPIDR_EL1, Readable};
use core::arch::asm;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};

/// Stack of each secondary CPU.
const STACK_SIZE: usize = 16 * 1024;
/// How long a CPU may take to come up, or to be reported off.
const CPU_TIMEOUT_MS: u64 = 10_000;
/// MPIDR_EL1 affinity fields Aff3 (39:32) and Aff2-Aff0 (23:0), as in a cpu node's reg.
const MPIDR_AFFINITY_MASK: u64 = 0xff_00ff_ffff;

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
}

// entry.S reads the block at these offsets.
const _: () = {
    assert!(core::mem::offset_of!(CpuBoot, stack_top) == 0);
    assert!(core::mem::offset_of!(CpuBoot, mair) == 8);
    assert!(core::mem::offset_of!(CpuBoot, tcr) == 16);
    assert!(core::mem::offset_of!(CpuBoot, ttbr0) == 24);
    assert!(core::mem::offset_of!(CpuBoot, sctlr) == 32);
    assert!(core::mem::offset_of!(CpuBoot, index) == 40);
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
static ONLINE: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
/// Set by the boot CPU once it is done with the running secondaries: they turn off.
static RELEASE: AtomicBool = AtomicBool::new(false);
/// A secondary's CPU_OFF error, if CPU_OFF returned (0: it did not).
static CPU_OFF_ERROR: [AtomicI32; MAX_CPUS] = [const { AtomicI32::new(0) }; MAX_CPUS];

unsafe extern "C" {
    /// entry.S: where PSCI CPU_ON starts a secondary CPU (x0 = its `CpuBoot`).
    fn secondary_entry();
}

/// Step 6. `mmu` is the boot CPU's MMU configuration, which every secondary reuses.
pub fn check_secondaries(cpus: &CpuList, mmu: &MmuConfig) {
    let own_mpidr = MPIDR_EL1.get() & MPIDR_AFFINITY_MASK;
    let secondaries = || cpus.iter().filter(move |&(_, mpidr)| mpidr != own_mpidr);
    if secondaries().count() == cpus.len() {
        fail!("boot CPU (MPIDR {own_mpidr:#x}) is not listed under /cpus");
    }

    for (index, mpidr) in secondaries() {
        let context = prepare_boot_block(index, mmu);
        let ret = psci::cpu_on(mpidr, entry_address(), context);
        if ret != 0 {
            fail!("CPU_ON of cpu {index} (MPIDR {mpidr:#x}) returned {ret}");
        }
    }
    for (index, _) in secondaries() {
        if !wait_until(CPU_TIMEOUT_MS, || ONLINE[index].load(Ordering::Acquire)) {
            fail!("cpu {index} did not come up");
        }
    }

    match secondaries().next() {
        Some((index, mpidr)) => {
            // Still running: it waits for RELEASE. Its (used) boot block is passed so that
            // even a relay that wrongly restarts it hands it a valid context.
            let context = &BOOT_BLOCKS[index] as *const CpuBoot as u64;
            let ret = psci::cpu_on(mpidr, entry_address(), context);
            if ret != smccc::psci::error::ALREADY_ON {
                fail!(
                    "CPU_ON of running cpu {index} returned {ret}, expected ALREADY_ON ({})",
                    smccc::psci::error::ALREADY_ON
                );
            }
            say!("CPU_ON of a running cpu returned ALREADY_ON");
        }
        None => say!("only one cpu: CPU_ON checks skipped"),
    }

    RELEASE.store(true, Ordering::Release);
    send_event();
    for (index, mpidr) in secondaries() {
        let mut state = 0;
        let off = wait_until(CPU_TIMEOUT_MS, || {
            state = psci::affinity_info(mpidr);
            state == psci::AFFINITY_OFF
        });
        if !off {
            let error = CPU_OFF_ERROR[index].load(Ordering::Acquire);
            if error != 0 {
                fail!("cpu {index}: CPU_OFF returned {error}");
            }
            fail!("cpu {index} not reported off: AFFINITY_INFO returned {state}");
        }
        say!("cpu {index} off");
    }
}

/// Fills the `CpuBoot` block of CPU `index` and returns its address for CPU_ON.
fn prepare_boot_block(index: usize, mmu: &MmuConfig) -> u64 {
    let block = &BOOT_BLOCKS[index];
    let stack = &STACKS[index];
    let stack_top = stack.0.get() as u64 + STACK_SIZE as u64;
    block.stack_top.store(stack_top, Ordering::Relaxed);
    block.mair.store(mmu.mair, Ordering::Relaxed);
    block.tcr.store(mmu.tcr, Ordering::Relaxed);
    block.ttbr0.store(mmu.ttbr0, Ordering::Relaxed);
    block.sctlr.store(mmu.sctlr, Ordering::Relaxed);
    block.index.store(index as u64, Ordering::Relaxed);
    // The secondary reads the block with its MMU (and so its caches) off.
    cache::clean_to_poc(
        block as *const CpuBoot as usize,
        core::mem::size_of::<CpuBoot>(),
    );
    block as *const CpuBoot as u64
}

/// Rust entry of a secondary CPU, at EL1 with the MMU on (entry.S).
#[unsafe(no_mangle)]
extern "C" fn secondary_main(boot: &CpuBoot) -> ! {
    let index = boot.index.load(Ordering::Relaxed) as usize;
    let el = CurrentEL.read(CurrentEL::EL);
    if el != 1 {
        fail!("cpu {index} started at EL{el}, expected EL1");
    }
    say!("cpu {index} online at EL{el}");
    ONLINE[index].store(true, Ordering::Release);

    while !RELEASE.load(Ordering::Acquire) {
        wait_for_event();
    }
    let error = psci::cpu_off();
    CPU_OFF_ERROR[index].store(error, Ordering::Release);
    exit::park()
}

/// Rust entry of a secondary CPU that PSCI started at an EL other than EL1: the payload's
/// relay is broken. Runs with the MMU off; `fail` copes with that.
#[unsafe(no_mangle)]
extern "C" fn secondary_at_wrong_el(boot: &CpuBoot, el: u64) -> ! {
    let index = boot.index.load(Ordering::Relaxed);
    fail!("cpu {index} started at EL{el}, expected EL1")
}

/// Physical (= virtual, identity map) address of `secondary_entry`, for CPU_ON.
fn entry_address() -> u64 {
    secondary_entry as *const () as u64
}

fn send_event() {
    // SAFETY: `dsb` orders the RELEASE store before the event; `sev` only signals.
    unsafe { asm!("dsb ish", "sev", options(nostack, preserves_flags)) };
}

fn wait_for_event() {
    // SAFETY: `wfe` only waits for an event (or returns spuriously).
    unsafe { asm!("wfe", options(nomem, nostack, preserves_flags)) };
}
