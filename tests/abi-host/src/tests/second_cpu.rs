//! VCPU_RUN of a vCPU that runs on another CPU is BUSY (docs/abi.md 8).
//!
//! CPU 1 runs the spinning guest in a loop (each run ends at the guest's next tick, a
//! report MMIO write). It raises IN_RUN right before each VCPU_RUN and lowers it after,
//! so CPU 0 knows when a run is (about to be) in progress and calls VCPU_RUN on the same
//! vCPU then. A call that lands between two of CPU 1's runs legitimately runs the guest
//! on CPU 0 until its next tick; CPU 0 keeps trying until it sees BUSY, for a bounded
//! time. Every wait is bounded; a timeout is a failure.

use crate::runner::{Ctx, Failure, TestResult, bail};
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use el1_rt::host_calls::{self, CallError};
use el1_rt::test_guest_driver::Event;
use el1_rt::timeout::{Deadline, wait_until};
use el1_rt::{cpus, psci};
use hvc_abi::{Error, Exit, MmioAccess, VmHandle};
use spin::mutex::SpinMutex;
use test_guest::{Command, REPORT_IPA, Report, Step};

/// How long CPU 0 keeps trying to catch CPU 1 inside VCPU_RUN.
const CATCH_TIMEOUT_MS: u64 = 10_000;
/// How long a CPU may take to come up, stop or be reported off.
const CPU_TIMEOUT_MS: u64 = 10_000;

static HANDLE: AtomicU64 = AtomicU64::new(0);
static IN_RUN: AtomicBool = AtomicBool::new(false);
static STOP: AtomicBool = AtomicBool::new(false);
static STOPPED: AtomicBool = AtomicBool::new(false);
static RUNS: AtomicUsize = AtomicUsize::new(0);
/// What went wrong on CPU 1, if anything.
static CPU1_ERROR: SpinMutex<Option<RunOutcome>> = SpinMutex::new(None);

/// An outcome of VCPU_RUN that the spinning guest should not produce.
#[derive(Clone, Copy, Debug)]
enum RunOutcome {
    Call(CallError),
    Exit(Exit),
}

impl fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::Call(error) => write!(f, "{error}"),
            Self::Exit(exit) => write!(f, "{}", Event::Exit(*exit)),
        }
    }
}

pub fn second_run_of_running_vcpu_is_busy(ctx: &mut Ctx) -> TestResult {
    let (index, mpidr) = crate::runner::another_cpu(ctx)?;
    let guest = ctx.guest(Command::Spin, 1)?;
    let handle = guest.vm().handle();
    HANDLE.store(handle.raw(), Ordering::Relaxed);
    IN_RUN.store(false, Ordering::Relaxed);
    STOP.store(false, Ordering::Relaxed);
    STOPPED.store(false, Ordering::Relaxed);
    RUNS.store(0, Ordering::Relaxed);
    *CPU1_ERROR.lock() = None;

    let status = cpus::start(index, mpidr, &ctx.platform.mmu, run_until_stopped);
    if status != 0 {
        bail!("PSCI CPU_ON of cpu {index} returned {status}");
    }
    let caught = catch_busy(handle);
    // Stop CPU 1 whatever happened, so that the VM can be destroyed afterwards.
    STOP.store(true, Ordering::Release);
    let stopped = wait_until(CPU_TIMEOUT_MS, || STOPPED.load(Ordering::Acquire));
    let off = wait_until(CPU_TIMEOUT_MS, || {
        psci::affinity_info(mpidr) == psci::AFFINITY_OFF
    });
    caught?;
    if let Some(outcome) = *CPU1_ERROR.lock() {
        bail!("cpu {index}'s VCPU_RUN gave {outcome}");
    }
    if !stopped {
        bail!("cpu {index} did not return from VCPU_RUN within {CPU_TIMEOUT_MS} ms of STOP");
    }
    if !off {
        bail!(
            "cpu {index} was not reported off (CPU_OFF error {})",
            cpus::cpu_off_error(index)
        );
    }
    // No vCPU runs now: the VM can go.
    guest.vm().destroy()?;
    Ok(())
}

/// CPU 0: VCPU_RUN of the vCPU while CPU 1 is inside VCPU_RUN, until BUSY.
fn catch_busy(handle: VmHandle) -> TestResult {
    let deadline = Deadline::after_ms(CATCH_TIMEOUT_MS);
    let mut own_runs = 0usize;
    while !deadline.passed() {
        if let Some(outcome) = *CPU1_ERROR.lock() {
            bail!("the other CPU's VCPU_RUN gave {outcome}");
        }
        if !IN_RUN.load(Ordering::Acquire) || RUNS.load(Ordering::Acquire) == 0 {
            core::hint::spin_loop();
            continue;
        }
        match host_calls::vcpu_run(handle, 0, 0) {
            Err(error) if error.abi_error() == Some(Error::Busy) => return Ok(()),
            // It ran here between two runs of CPU 1: fine, try again.
            Ok(exit) if is_tick(exit) => own_runs += 1,
            Ok(Exit::Irq) => {}
            Ok(exit) => bail!("VCPU_RUN on cpu 0 gave {:?}", Event::Exit(exit)),
            Err(error) => bail!("VCPU_RUN on cpu 0: {error}"),
        }
    }
    Err(Failure::new(format_args!(
        "no BUSY within {CATCH_TIMEOUT_MS} ms ({} runs on the other CPU, {own_runs} here)",
        RUNS.load(Ordering::Relaxed)
    )))
}

/// CPU 1's task: run the spinning vCPU until STOP.
fn run_until_stopped(_index: usize) {
    let handle = VmHandle(HANDLE.load(Ordering::Relaxed));
    while !STOP.load(Ordering::Acquire) {
        IN_RUN.store(true, Ordering::SeqCst);
        let result = host_calls::vcpu_run(handle, 0, 0);
        IN_RUN.store(false, Ordering::SeqCst);
        let outcome = match result {
            Ok(exit) if is_tick(exit) => None,
            Ok(Exit::Irq) => None,
            // CPU 0 caught the vCPU between two of our runs.
            Err(error) if error.abi_error() == Some(Error::Busy) => None,
            Ok(exit) => Some(RunOutcome::Exit(exit)),
            Err(error) => Some(RunOutcome::Call(error)),
        };
        if outcome.is_some() {
            *CPU1_ERROR.lock() = outcome;
            break;
        }
        RUNS.fetch_add(1, Ordering::AcqRel);
    }
    STOPPED.store(true, Ordering::Release);
}

fn is_tick(exit: Exit) -> bool {
    matches!(
        exit,
        Exit::Mmio {
            ipa: REPORT_IPA,
            access: MmioAccess::Write { data },
            ..
        } if Report::decode(data) == Some(Report::Reached(Step::Tick))
    )
}
