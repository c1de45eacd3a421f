//! One vCPU, two CPUs: while CPU 1 runs the spinning guest's vCPU in a loop, VCPU_RUN of
//! the same vCPU on CPU 0 must return BUSY (or run it, when CPU 1 is between two runs), and
//! VM_DESTROY must return BUSY while it runs (docs/abi.md 4.9 row 5, 4.10 row 3, section 8).

use super::retire;
use crate::msg::{Msg, TestResult, bail, ensure};
use crate::runner::Ctx;
use crate::smp;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use el1_rt::host_calls::{self, vm_destroy};
use el1_rt::say;
use el1_rt::test_guest_driver::TestGuest;
use el1_rt::timeout::{Deadline, wait_until};
use hvc_abi::{Error, Exit, HostCall, MmioAccess, ReturnError, VmHandle};
use test_guest::{Command, REPORT_IPA, Report, Step};

const RUNNER: usize = 1;
/// How long CPU 0 keeps trying to catch the vCPU running.
const CONTEND_MS: u64 = 20_000;
/// BUSY answers CPU 0 collects before it moves on.
const BUSY_WANTED: u32 = 3;
const TIMEOUT_MS: u64 = 20_000;

static HANDLE: AtomicU64 = AtomicU64::new(0);
static STOP: AtomicBool = AtomicBool::new(false);
static RAN: AtomicU32 = AtomicU32::new(0);
static BUSY: AtomicU32 = AtomicU32::new(0);
static GONE: AtomicU32 = AtomicU32::new(0);
static BAD: AtomicU32 = AtomicU32::new(0);
static FIRST_BAD: AtomicU64 = AtomicU64::new(0);
/// CPU 0's side: its own successful runs, and BUSY answers of VM_DESTROY.
static RAN_ON_0: AtomicU32 = AtomicU32::new(0);
static DESTROY_BUSY: AtomicU32 = AtomicU32::new(0);

/// Whether a successful VCPU_RUN of the spinning guest returned what it may: its Tick
/// report, or an IRQ exit.
fn is_spin_exit(regs: [u64; 3]) -> bool {
    match Exit::decode(regs) {
        Ok(Exit::Irq) => true,
        Ok(Exit::Mmio {
            ipa: REPORT_IPA,
            access: MmioAccess::Write { data },
            ..
        }) => data == Report::Reached(Step::Tick).encode(),
        _ => false,
    }
}

/// CPU 1: runs the vCPU until told to stop. Results: an exit of the guest, BUSY (CPU 0 runs
/// it), NOT_FOUND (CPU 0 destroyed the VM); nothing else.
fn run_loop(_cpu: usize) {
    let handle = VmHandle(HANDLE.load(Ordering::Acquire));
    while !STOP.load(Ordering::Acquire) {
        let ret = host_calls::raw(HostCall::VcpuRun {
            handle,
            vcpu: 0,
            completion: 0,
        });
        let counter = match ret.into_result() {
            Ok(regs) if is_spin_exit(regs) => &RAN,
            Err(ReturnError::Abi(Error::Busy)) => &BUSY,
            Err(ReturnError::Abi(Error::NotFound)) => &GONE,
            _ => {
                let _ =
                    FIRST_BAD.compare_exchange(0, ret.x0 | 1, Ordering::AcqRel, Ordering::Relaxed);
                &BAD
            }
        };
        counter.fetch_add(1, Ordering::AcqRel);
    }
}

pub fn one_vcpu_on_two_cpus(ctx: &mut Ctx) -> TestResult {
    let mut guest = TestGuest::build(&mut ctx.pages, ctx.guest_image, Command::Spin, 1)?;
    let handle = guest.vm().handle();
    ctx.track(handle)?;
    HANDLE.store(handle.raw(), Ordering::Release);
    STOP.store(false, Ordering::Release);
    for counter in [&RAN, &BUSY, &GONE, &BAD, &RAN_ON_0, &DESTROY_BUSY] {
        counter.store(0, Ordering::Release);
    }
    FIRST_BAD.store(0, Ordering::Release);
    smp::launch(RUNNER, run_loop)?;
    let contended = contend(handle);
    STOP.store(true, Ordering::Release);
    smp::wait_finished(RUNNER, TIMEOUT_MS)?;
    smp::wait_off(RUNNER)?;
    let destroyed = contended?;
    let bad = BAD.load(Ordering::Acquire);
    ensure!(
        bad == 0,
        "cpu {RUNNER}'s VCPU_RUN returned something else {bad} times (first x0 {:#x})",
        FIRST_BAD.load(Ordering::Acquire) & !1
    );
    let gone = GONE.load(Ordering::Acquire);
    ensure!(
        gone == 0 || destroyed,
        "cpu {RUNNER}'s VCPU_RUN returned NOT_FOUND for a live VM"
    );
    say!(
        "one vCPU, two CPUs: cpu {RUNNER} ran it {} times (BUSY {}); cpu 0 got BUSY from \
         VCPU_RUN {BUSY_WANTED} times (ran it {} times) and from VM_DESTROY {} times",
        RAN.load(Ordering::Acquire),
        BUSY.load(Ordering::Acquire),
        RAN_ON_0.load(Ordering::Acquire),
        DESTROY_BUSY.load(Ordering::Acquire)
    );
    if destroyed {
        let reclaimed = guest.vm_mut().reclaim_all()?;
        ensure!(
            reclaimed.first_nonzero.is_none(),
            "reclaimed guest pages not zeroed"
        );
        Ok(())
    } else {
        retire(guest.vm_mut())
    }
}

/// CPU 0's side while CPU 1 runs the vCPU: VCPU_RUN until BUSY was seen a few times, then
/// VM_DESTROY until BUSY (or success, if it caught the vCPU between runs). Returns whether
/// the VM was destroyed.
fn contend(handle: VmHandle) -> Result<bool, Msg> {
    if !wait_until(TIMEOUT_MS, || RAN.load(Ordering::Acquire) > 0) {
        bail!("cpu {RUNNER} never completed a run of the spinning guest");
    }
    let deadline = Deadline::after_ms(CONTEND_MS);
    let (mut busy, mut ran_here) = (0, 0);
    while busy < BUSY_WANTED {
        if deadline.passed() {
            bail!(
                "VCPU_RUN on cpu 0 never returned BUSY in {CONTEND_MS} ms ({ran_here} runs here)"
            );
        }
        let ret = host_calls::raw(HostCall::VcpuRun {
            handle,
            vcpu: 0,
            completion: 0,
        });
        match ret.into_result() {
            Err(ReturnError::Abi(Error::Busy)) => busy += 1,
            Ok(regs) if is_spin_exit(regs) => {
                ran_here += 1;
                RAN_ON_0.fetch_add(1, Ordering::AcqRel);
            }
            Ok(regs) => bail!("VCPU_RUN on cpu 0 gave exit {regs:#x?}"),
            Err(error) => bail!("VCPU_RUN of a vCPU another CPU runs: {error:?}"),
        }
    }
    let mut destroy_busy = 0;
    while destroy_busy < BUSY_WANTED {
        if deadline.passed() {
            bail!("VM_DESTROY never returned BUSY while cpu {RUNNER} ran the vCPU");
        }
        match vm_destroy(handle) {
            Err(error) if error.abi_error() == Some(Error::Busy) => {
                destroy_busy += 1;
                DESTROY_BUSY.fetch_add(1, Ordering::AcqRel);
            }
            Ok(()) => {
                say!("VM_DESTROY caught the vCPU between two runs and succeeded");
                return Ok(true);
            }
            Err(error) => bail!("VM_DESTROY of a VM whose vCPU runs: {error}"),
        }
    }
    Ok(false)
}
