//! VM_DONATE after launch (each page zeroed for the guest, 2 MiB per call) on CPU 0 while
//! CPU 1 makes a call that takes only EL2's VM table (VCPU_CREATE of an existing vCPU of
//! another VM: BUSY, nothing changes).
//!
//! The zeroing happens with no lock held (docs/abi.md 8), so CPU 1's calls go on while the
//! donations zero. Before, a donation kept the VM table locked while it zeroed, and every
//! VM call on every other CPU waited for 2 MiB of zeroing. (Counted in calls, not time: the
//! emulator's CPUs are host threads the host deschedules now and then.)

use super::expect_ok;
use crate::msg::{TestResult, ensure};
use crate::pages::pfn;
use crate::runner::Ctx;
use crate::smp;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use el1_rt::host_calls::{vcpu_create, vcpu_run, vm_donate, vm_topup};
use el1_rt::say;
use el1_rt::timeout::wait_until;
use hvc_abi::{Error, VmHandle};
use test_guest::Command;

const CALLER: usize = 1;
/// Donations of 512 pages, each zeroed after launch.
const DONATIONS: u64 = 16;
/// Calls CPU 1 must complete while the donations run, in all: 32 per donation. (Before,
/// it completed a few in all, between the moments CPU 0 read the count and EL2 took the
/// VM table; after, tens of thousands.)
const MIN_CALLS_DURING: u32 = 512;
const TIMEOUT_MS: u64 = 60_000;
/// Guest frame of the first donated page (2 GiB, far from the test guest's own pages).
const GFN: u64 = 0x8_0000;

static OTHER: AtomicU64 = AtomicU64::new(0);
static STOP: AtomicBool = AtomicBool::new(false);
static CALLS: AtomicU32 = AtomicU32::new(0);
static WRONG: AtomicU32 = AtomicU32::new(0);

/// CPU 1: VCPU_CREATE of the other VM's vCPU 0, which exists: BUSY every time.
fn caller(_cpu: usize) {
    let handle = VmHandle(OTHER.load(Ordering::Acquire));
    while !STOP.load(Ordering::Acquire) {
        match vcpu_create(handle, 0, 0x1000, 0) {
            Err(e) if e.abi_error() == Some(Error::Busy) => {}
            _ => {
                WRONG.fetch_add(1, Ordering::AcqRel);
            }
        }
        CALLS.fetch_add(1, Ordering::AcqRel);
    }
}

pub fn donate_after_launch_never_holds_other_cpus_vm_calls_for_its_zeroing(
    ctx: &mut Ctx,
) -> TestResult {
    let guest = ctx.guest(Command::Spin, 1)?;
    let h = guest.vm().handle();
    // The first run that enters the guest launches the VM: donations zero from now on.
    expect_ok!(vcpu_run(h, 0, 0), "VCPU_RUN of the spinning guest");
    let pool = pfn(ctx.pages_n(64)?);
    expect_ok!(vm_topup(h, pool, 64), "VM_TOPUP");
    let memory = pfn(ctx.pages_n((DONATIONS * 512) as usize)?);
    let other = ctx.vm()?;
    expect_ok!(
        vcpu_create(other.handle(), 0, 0x1000, 0),
        "VCPU_CREATE of the other VM"
    );
    OTHER.store(other.handle().0, Ordering::Release);
    STOP.store(false, Ordering::Release);
    CALLS.store(0, Ordering::Release);
    WRONG.store(0, Ordering::Release);
    smp::launch(CALLER, caller)?;
    let started = wait_until(TIMEOUT_MS, || CALLS.load(Ordering::Acquire) > 20);
    let mut during = 0;
    let mut donated = Ok(());
    for i in 0..DONATIONS {
        let before = CALLS.load(Ordering::Acquire);
        donated = vm_donate(h, memory + 512 * i, GFN + 512 * i, 512);
        during += CALLS.load(Ordering::Acquire) - before;
        if donated.is_err() {
            break;
        }
    }
    STOP.store(true, Ordering::Release);
    smp::wait_finished(CALLER, TIMEOUT_MS)?;
    smp::wait_off(CALLER)?;
    ensure!(started, "cpu {CALLER} did not start making calls");
    expect_ok!(donated, "VM_DONATE of 512 pages after launch");
    let wrong = WRONG.load(Ordering::Acquire);
    ensure!(
        wrong == 0,
        "{wrong} VCPU_CREATE calls of cpu {CALLER} did not return BUSY"
    );
    say!(
        "{DONATIONS} VM_DONATEs of 512 zeroed pages; meanwhile cpu {CALLER} completed \
         {during} VM calls"
    );
    ensure!(
        during >= MIN_CALLS_DURING,
        "cpu {CALLER} completed {during} VM calls during {DONATIONS} VM_DONATEs of 512 \
         zeroed pages: the VM table stayed locked while they zeroed"
    );
    Ok(())
}
