//! Step 6: secondary CPU bring-up through the payload's PSCI relay: CPU_ON of every CPU,
//! each reports in at EL1, CPU_ON of a running CPU is refused with ALREADY_ON, then every
//! secondary turns itself off with CPU_OFF and AFFINITY_INFO must report it off.

use aarch64_cpu::registers::{CurrentEL, Readable};
use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};
use el1_rt::board::{CpuList, MAX_CPUS};
use el1_rt::mmu::MmuConfig;
use el1_rt::timeout::wait_until;
use el1_rt::{cpus, fail, psci, say};

/// How long a CPU may take to come up, or to be reported off.
const CPU_TIMEOUT_MS: u64 = 10_000;

static ONLINE: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
/// Set by the boot CPU once it is done with the running secondaries: they turn off.
static RELEASE: AtomicBool = AtomicBool::new(false);

/// `mmu` is the boot CPU's MMU configuration, which every secondary reuses.
pub fn check_secondaries(cpu_list: &CpuList, mmu: &MmuConfig) {
    let own_mpidr = cpus::own_mpidr();
    let secondaries = || {
        cpu_list
            .iter()
            .filter(move |&(_, mpidr)| mpidr != own_mpidr)
    };
    if secondaries().count() == cpu_list.len() {
        fail!("boot CPU (MPIDR {own_mpidr:#x}) is not listed under /cpus");
    }

    for (index, mpidr) in secondaries() {
        let ret = cpus::start(index, mpidr, mmu, report_in);
        if ret != 0 {
            fail!("CPU_ON of cpu {index} (MPIDR {mpidr:#x}) returned {ret}");
        }
    }
    for (index, _) in secondaries() {
        if !wait_until(CPU_TIMEOUT_MS, || ONLINE[index].load(Ordering::Acquire)) {
            fail!("cpu {index} did not come up");
        }
    }
    say!(
        "all {} cpus online (the boot cpu and {} secondaries)",
        cpu_list.len(),
        secondaries().count()
    );

    match secondaries().next() {
        Some((index, mpidr)) => {
            // Still running: it waits for RELEASE. Its (used) boot block is passed so that
            // even a relay that wrongly restarts it hands it a valid context.
            let context = cpus::boot_block_address(index);
            let ret = psci::cpu_on(mpidr, cpus::entry_address(), context);
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
            let error = cpus::cpu_off_error(index);
            if error != 0 {
                fail!("cpu {index}: CPU_OFF returned {error}");
            }
            fail!("cpu {index} not reported off: AFFINITY_INFO returned {state}");
        }
        say!("cpu {index} off");
    }
}

/// What each secondary runs (at EL1, MMU on): report in, wait for RELEASE; el1-rt then
/// turns it off with CPU_OFF.
fn report_in(index: usize) {
    let el = CurrentEL.read(CurrentEL::EL);
    say!("cpu {index} online at EL{el}");
    ONLINE[index].store(true, Ordering::Release);
    while !RELEASE.load(Ordering::Acquire) {
        wait_for_event();
    }
}

fn send_event() {
    // SAFETY: `dsb` orders the RELEASE store before the event; `sev` only signals.
    unsafe { asm!("dsb ish", "sev", options(nostack, preserves_flags)) };
}

fn wait_for_event() {
    // SAFETY: `wfe` only waits for an event (or returns spuriously).
    unsafe { asm!("wfe", options(nomem, nostack, preserves_flags)) };
}
