//! CPU_ON hammered at a running CPU: CPU 1 runs; CPUs 0, 2 and 3 send it CPU_ON over and
//! over, at the same time. The payload's PSCI relay must answer ALREADY_ON every time,
//! never restart CPU 1, and CPU 1 must keep running (PSCI: CPU_ON of an ON core).

use crate::msg::{TestResult, ensure};
use crate::runner::Ctx;
use crate::smp;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use el1_rt::timeout::wait_until;
use el1_rt::{cpus, psci, say};
use smccc::psci::error::{ALREADY_ON, INVALID_PARAMETERS};

const TARGET: usize = 1;
const HAMMERS: [usize; 2] = [2, 3];
/// CPU_ON calls per hammering CPU.
const CALLS: u32 = 300;
const TIMEOUT_MS: u64 = 20_000;

static STOP: AtomicBool = AtomicBool::new(false);
static ENTRIES: AtomicU32 = AtomicU32::new(0);
static TICKS: AtomicU64 = AtomicU64::new(0);
static ALREADY_ON_COUNT: AtomicU32 = AtomicU32::new(0);
static OTHER: AtomicU32 = AtomicU32::new(0);
static FIRST_OTHER: AtomicI32 = AtomicI32::new(0);

/// CPU 1: counts its entries (a CPU_ON that restarted it would enter again) and ticks.
fn target(_cpu: usize) {
    ENTRIES.fetch_add(1, Ordering::AcqRel);
    while !STOP.load(Ordering::Acquire) {
        TICKS.fetch_add(1, Ordering::AcqRel);
        core::hint::spin_loop();
    }
}

/// CPU_ON of CPU 1, with its own (used) boot block, so that even a relay that wrongly
/// restarted it would hand it a valid context.
fn hammer(_cpu: usize) {
    let Ok(mpidr) = smp::mpidr(TARGET) else {
        OTHER.fetch_add(1, Ordering::AcqRel);
        return;
    };
    for _ in 0..CALLS {
        let ret = psci::cpu_on(
            mpidr,
            cpus::entry_address(),
            cpus::boot_block_address(TARGET),
        );
        if ret == ALREADY_ON {
            ALREADY_ON_COUNT.fetch_add(1, Ordering::AcqRel);
        } else {
            OTHER.fetch_add(1, Ordering::AcqRel);
            let _ = FIRST_OTHER.compare_exchange(0, ret, Ordering::AcqRel, Ordering::Relaxed);
        }
    }
}

pub fn cpu_on_hammer_on_running_cpu(_ctx: &mut Ctx) -> TestResult {
    STOP.store(false, Ordering::Release);
    ENTRIES.store(0, Ordering::Release);
    TICKS.store(0, Ordering::Release);
    ALREADY_ON_COUNT.store(0, Ordering::Release);
    OTHER.store(0, Ordering::Release);
    FIRST_OTHER.store(0, Ordering::Release);
    smp::launch(TARGET, target)?;
    let result = hammer_while_running();
    STOP.store(true, Ordering::Release);
    smp::wait_finished(TARGET, TIMEOUT_MS)?;
    for cpu in [TARGET, HAMMERS[0], HAMMERS[1]] {
        smp::wait_off(cpu)?;
    }
    result?;
    let entries = ENTRIES.load(Ordering::Acquire);
    ensure!(
        entries == 1,
        "cpu {TARGET} entered its task {entries} times: CPU_ON restarted it"
    );
    Ok(())
}

fn hammer_while_running() -> TestResult {
    ensure!(
        wait_until(TIMEOUT_MS, || TICKS.load(Ordering::Acquire) > 0),
        "cpu {TARGET} did not start"
    );
    for cpu in HAMMERS {
        smp::launch(cpu, hammer)?;
    }
    hammer(0);
    let own = psci::cpu_on(
        cpus::own_mpidr(),
        cpus::entry_address(),
        cpus::boot_block_address(0),
    );
    ensure!(
        own == ALREADY_ON,
        "CPU_ON of the calling CPU returned {own}, expected ALREADY_ON"
    );
    for cpu in HAMMERS {
        smp::wait_finished(cpu, TIMEOUT_MS)?;
    }
    let other = OTHER.load(Ordering::Acquire);
    ensure!(
        other == 0,
        "{other} CPU_ON calls on a running CPU did not return ALREADY_ON (first {})",
        FIRST_OTHER.load(Ordering::Acquire)
    );
    let ticks = TICKS.load(Ordering::Acquire);
    ensure!(
        wait_until(TIMEOUT_MS, || TICKS.load(Ordering::Acquire) > ticks),
        "cpu {TARGET} stopped running after the CPU_ON hammering"
    );
    say!(
        "CPU_ON hammer: {} calls from 3 CPUs, all ALREADY_ON; cpu {TARGET} still running",
        ALREADY_ON_COUNT.load(Ordering::Acquire)
    );
    Ok(())
}

/// MPIDRs (affinity only) that no CPU of the boards the suite boots has: past the CPU
/// count in Aff0, in another cluster (Aff1), socket (Aff2) and Aff3.
const UNLISTED: [u64; 4] = [0xfe, 0x100, 0x1_0000, 0xff_0000_0000];

/// The PSCI relay starts only CPUs in the DTB's CPU list: EL2's per-CPU state is indexed
/// by that list, so a CPU started outside it would have no state of its own. Every
/// CPU_ON of another MPIDR is INVALID_PARAMETERS (PSCI: a target that does not exist).
pub fn cpu_on_of_an_mpidr_outside_the_cpu_list_is_refused(_ctx: &mut Ctx) -> TestResult {
    for mpidr in UNLISTED {
        for cpu in 0..smp::count() {
            ensure!(
                smp::mpidr(cpu)? & 0xff_00ff_ffff != mpidr,
                "MPIDR {mpidr:#x} is in this board's CPU list (cpu {cpu}): pick another"
            );
        }
        let ret = psci::cpu_on(mpidr, cpus::entry_address(), cpus::boot_block_address(0));
        ensure!(
            ret == INVALID_PARAMETERS,
            "CPU_ON of MPIDR {mpidr:#x}, which the CPU list does not have, returned {ret}, \
             expected INVALID_PARAMETERS"
        );
    }
    say!(
        "CPU_ON of {} MPIDRs outside the CPU list: all INVALID_PARAMETERS",
        UNLISTED.len()
    );
    Ok(())
}
