//! Running code on the secondary CPUs: PSCI CPU_ON (through the payload's relay, el1-rt
//! `cpus`) with a task, a flag the task sets when it returns, and the wait until PSCI
//! reports the CPU off again so that it can be started with the next task.

use crate::msg::{Msg, bail};
use core::sync::atomic::{AtomicBool, Ordering};
use el1_rt::board::{CpuList, MAX_CPUS};
use el1_rt::mmu::MmuConfig;
use el1_rt::timeout::wait_until;
use el1_rt::{cpus, psci};
use spin::{Mutex, Once};

/// How long a CPU may take to come up or to be reported off.
const POWER_TIMEOUT_MS: u64 = 10_000;

struct Machine {
    cpus: CpuList,
    mmu: MmuConfig,
}

static MACHINE: Once<Machine> = Once::new();
/// What a secondary CPU runs: `task(its index)`.
type Task = fn(usize);

static TASKS: Mutex<[Option<Task>; MAX_CPUS]> = Mutex::new([None; MAX_CPUS]);
static FINISHED: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

/// Records the CPUs and the MMU configuration secondaries reuse. The boot CPU must be
/// CPU 0 (el1-rt keys each CPU's abort probe on its number; the boot CPU's is 0).
pub fn init(cpus: &CpuList, mmu: &MmuConfig) -> Result<(), Msg> {
    match cpus.iter().next() {
        Some((0, mpidr)) if mpidr == el1_rt::cpus::own_mpidr() => {}
        _ => bail!(
            "the boot CPU (MPIDR {:#x}) is not the first CPU under /cpus",
            el1_rt::cpus::own_mpidr()
        ),
    }
    MACHINE.call_once(|| Machine {
        cpus: *cpus,
        mmu: *mmu,
    });
    Ok(())
}

fn machine() -> Result<&'static Machine, Msg> {
    match MACHINE.get() {
        Some(machine) => Ok(machine),
        None => bail!("smp::init was not called"),
    }
}

/// Number of CPUs, the boot CPU included.
pub fn count() -> usize {
    MACHINE.get().map_or(1, |m| m.cpus.len())
}

/// The MPIDR of CPU `index`.
pub fn mpidr(index: usize) -> Result<u64, Msg> {
    match machine()?.cpus.iter().nth(index) {
        Some((_, mpidr)) => Ok(mpidr),
        None => bail!("there is no cpu {index}"),
    }
}

/// Starts secondary CPU `index` running `task(index)`.
pub fn launch(index: usize, task: Task) -> Result<(), Msg> {
    let machine = machine()?;
    let mpidr = mpidr(index)?;
    match TASKS.lock().get_mut(index) {
        Some(slot) => *slot = Some(task),
        None => bail!("cpu {index} is beyond the {MAX_CPUS} CPUs el1-rt supports"),
    }
    FINISHED[index].store(false, Ordering::Release);
    let ret = cpus::start(index, mpidr, &machine.mmu, trampoline);
    if ret != 0 {
        bail!("CPU_ON of cpu {index} (MPIDR {mpidr:#x}) returned {ret}");
    }
    Ok(())
}

fn trampoline(index: usize) {
    let task = TASKS.lock().get(index).copied().flatten();
    if let Some(task) = task {
        task(index);
    }
    if let Some(flag) = FINISHED.get(index) {
        flag.store(true, Ordering::Release);
    }
}

/// Whether CPU `index`'s task has returned.
pub fn finished(index: usize) -> bool {
    FINISHED
        .get(index)
        .is_some_and(|flag| flag.load(Ordering::Acquire))
}

/// Waits up to `ms` for CPU `index`'s task to return.
pub fn wait_finished(index: usize, ms: u64) -> Result<(), Msg> {
    if !wait_until(ms, || finished(index)) {
        bail!("cpu {index}'s task did not finish within {ms} ms");
    }
    Ok(())
}

/// Waits until PSCI AFFINITY_INFO reports CPU `index` off (its task returned and el1-rt
/// called CPU_OFF), so that it can be launched again.
pub fn wait_off(index: usize) -> Result<(), Msg> {
    let mpidr = mpidr(index)?;
    let mut state = 0;
    if !wait_until(POWER_TIMEOUT_MS, || {
        state = psci::affinity_info(mpidr);
        state == psci::AFFINITY_OFF
    }) {
        let error = cpus::cpu_off_error(index);
        bail!("cpu {index} not reported off: AFFINITY_INFO {state}, CPU_OFF error {error}");
    }
    Ok(())
}

/// Launches `task` on every secondary CPU.
pub fn launch_all(task: Task) -> Result<(), Msg> {
    for index in 1..count() {
        launch(index, task)?;
    }
    Ok(())
}
