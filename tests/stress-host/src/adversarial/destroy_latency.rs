//! VM_DESTROY of a large VM (256 MiB) on CPU 0 while CPUs 1-3 make calls.
//!
//! Six rounds, each a VM made of the same pages (CPUs 2 and 3 in the first only):
//! - CPU 1 shares a page of its own with EL2 and ends that, over and over: docs/abi.md 8
//!   bounds how long a call may hold EL2's memory lock (512 pages of work) and lets a
//!   waiting CPU in between the teardown's steps (129 of them here), so CPU 1's calls go
//!   on while the destroy runs. Before the teardown was split into
//!   steps, CPU 1's next call waited for all 65,536 pages. (Counted in calls, not time:
//!   the emulator's CPUs are threads the host deschedules now and then, so a single
//!   call's time says little.)
//! - CPU 2 asks for the VM's last page back (VM_RECLAIM) until it gets it; then the first
//!   page and a pool page must come back too: VM_DESTROY is atomic, a page of it cannot be
//!   RECLAIMABLE while another is still the VM's.
//! - CPU 3 names the VM in a VM_TOPUP of one of the VM's own pages (DENIED while the VM
//!   lives, NOT_FOUND once it is destroyed; nothing changes either way) until it is gone;
//!   then a page of the VM must be reclaimable at once, and the handle never comes back.

use super::{expect_err, expect_ok};
use crate::msg::{TestResult, bail, ensure};
use crate::pages::{address, pfn};
use crate::runner::Ctx;
use crate::smp;
use aarch64_cpu::registers::{CNTFRQ_EL0, CNTVCT_EL0, Readable};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use el1_rt::host_calls::{CallError, make, vm_destroy, vm_donate, vm_reclaim, vm_topup};
use el1_rt::probe;
use el1_rt::say;
use el1_rt::timeout::wait_until;
use hvc_abi::{Error, HostCall, VmHandle};

/// Pages donated to the VM: 256 MiB, 128 calls of 512.
const VM_PAGES: u64 = 65_536;
/// Pool pages for its stage-2 (128 level-3 tables and the few above them).
const POOL_PAGES: u64 = 192;
/// Destroys, one after the other, of VMs made of the same pages. Several, because the
/// emulator's host sometimes runs no instruction of CPU 1 during a whole destroy (seen in
/// about half the rounds on a loaded machine).
const ROUNDS: u32 = 6;
/// Calls CPU 1 must complete while the destroys run, in all. Before the teardown was split
/// it completed 0-2 per round (between the moments CPU 0 read the count and EL2 took the
/// lock); after, up to one per step.
const MIN_CALLS_DURING: u32 = 32;
const CALLER: usize = 1;
const RECLAIMER: usize = 2;
const WATCHER: usize = 3;
const TIMEOUT_MS: u64 = 60_000;
/// Pauses between calls (`pause`).
const CALLER_PAUSE_US: u64 = 20;
const CHECKER_PAUSE_US: u64 = 50;
/// Guest frame of the VM's first page.
const GFN: u64 = 0x1_0000;

static HANDLE: AtomicU64 = AtomicU64::new(0);
/// First frame of the VM's memory, of its pool, and CPU 1's own page.
static VM_PFN: AtomicU64 = AtomicU64::new(0);
static POOL_PFN: AtomicU64 = AtomicU64::new(0);
static OWN_PFN: AtomicU64 = AtomicU64::new(0);
static STOP: AtomicBool = AtomicBool::new(false);
/// CPU 1: calls made, and the longest one in counter ticks.
static CALLS: AtomicU32 = AtomicU32::new(0);
static LONGEST: AtomicU64 = AtomicU64::new(0);
/// When CPU 1's call in progress started (0: none in progress), for the report.
static IN_CALL_SINCE: AtomicU64 = AtomicU64::new(0);
/// CPUs 2 and 3: rounds made, and done with their checks after the destroy.
static ROUNDS_MADE: [AtomicU32; 4] = [const { AtomicU32::new(0) }; 4];
static DONE: [AtomicBool; 4] = [const { AtomicBool::new(false) }; 4];
/// What a CPU saw that docs/abi.md does not allow (the first one, as a code and value).
static WRONG: AtomicU32 = AtomicU32::new(0);
static FIRST_WRONG: AtomicU64 = AtomicU64::new(0);

fn wrong(cpu: usize, what: u64) {
    WRONG.fetch_add(1, Ordering::AcqRel);
    let code = (cpu as u64) << 56 | what;
    let _ = FIRST_WRONG.compare_exchange(0, code, Ordering::AcqRel, Ordering::Relaxed);
}

fn handle() -> VmHandle {
    VmHandle(HANDLE.load(Ordering::Acquire))
}

fn error_code(result: &Result<(), CallError>) -> u64 {
    match result {
        Ok(()) => 0,
        Err(e) => e.abi_error().map_or(0xff, |e| e.as_x0() & 0xff),
    }
}

/// CPU 1: HOST_SHARE_HYP and HOST_UNSHARE_HYP of its own page, each timed.
fn caller(cpu: usize) {
    let pfn = OWN_PFN.load(Ordering::Acquire);
    while !STOP.load(Ordering::Acquire) {
        for call in [
            HostCall::HostShareHyp { pfn },
            HostCall::HostUnshareHyp { pfn },
        ] {
            let start = CNTVCT_EL0.get();
            IN_CALL_SINCE.store(start, Ordering::Release);
            let result = make(call);
            let ticks = CNTVCT_EL0.get() - start;
            IN_CALL_SINCE.store(0, Ordering::Release);
            if result.is_err() {
                wrong(cpu, 1);
            }
            LONGEST.fetch_max(ticks, Ordering::AcqRel);
            CALLS.fetch_add(1, Ordering::AcqRel);
            pause(CALLER_PAUSE_US);
        }
    }
}

/// CPU 2: the VM's last page back; then its first page and a pool page.
fn reclaimer(cpu: usize) {
    let (first, pool) = (
        VM_PFN.load(Ordering::Acquire),
        POOL_PFN.load(Ordering::Acquire),
    );
    let last = first + VM_PAGES - 1;
    while !STOP.load(Ordering::Acquire) {
        ROUNDS_MADE[cpu].fetch_add(1, Ordering::AcqRel);
        pause(CHECKER_PAUSE_US);
        let result = vm_reclaim(last, 1);
        match result {
            Ok(()) => {
                for page in [first, pool] {
                    let r = vm_reclaim(page, 1);
                    if r.is_err() {
                        wrong(cpu, 0x100 | error_code(&r));
                    }
                }
                break;
            }
            Err(ref e) if e.abi_error() == Some(Error::Denied) => {}
            _ => wrong(cpu, 0x200 | error_code(&result)),
        }
    }
    DONE[cpu].store(true, Ordering::Release);
}

/// CPU 3: VM_TOPUP of one of the VM's pages to the VM, until the handle is gone.
fn watcher(cpu: usize) {
    let first = VM_PFN.load(Ordering::Acquire);
    while !STOP.load(Ordering::Acquire) {
        ROUNDS_MADE[cpu].fetch_add(1, Ordering::AcqRel);
        pause(CHECKER_PAUSE_US);
        let result = vm_topup(handle(), first + 1, 1);
        match result {
            Err(ref e) if e.abi_error() == Some(Error::Denied) => continue,
            Err(ref e) if e.abi_error() == Some(Error::NotFound) => {}
            _ => {
                wrong(cpu, 0x300 | error_code(&result));
                break;
            }
        }
        // Gone: the destroy is complete for this CPU, so the VM's pages are RECLAIMABLE.
        let r = vm_reclaim(first + VM_PAGES - 2, 1);
        if r.is_err() {
            wrong(cpu, 0x400 | error_code(&r));
        }
        let again = vm_topup(handle(), first + 1, 1);
        if again.as_ref().err().and_then(CallError::abi_error) != Some(Error::NotFound) {
            wrong(cpu, 0x500 | error_code(&again));
        }
        break;
    }
    DONE[cpu].store(true, Ordering::Release);
}

/// Spins at EL1 for `us` microseconds: the CPUs pace their calls, so that EL2's lock is
/// free most of the time and the destroy gets it at once (with calls back to back, a
/// test-and-set lock can keep CPU 0 out for a while, and calls CPU 1 completes then would
/// count as made during the teardown).
fn pause(us: u64) {
    let ticks = CNTFRQ_EL0.get() * us / 1_000_000;
    let start = CNTVCT_EL0.get();
    while CNTVCT_EL0.get() - start < ticks {
        core::hint::spin_loop();
    }
}

fn micros(ticks: u64) -> u64 {
    ticks * 1_000_000 / CNTFRQ_EL0.get().max(1)
}

pub fn destroy_of_a_large_vm_never_holds_other_cpus_calls_for_its_whole_teardown(
    ctx: &mut Ctx,
) -> TestResult {
    let pool = pfn(ctx.pages_n(POOL_PAGES as usize)?);
    let memory = pfn(ctx.pages_n(VM_PAGES as usize)?);
    let own = pfn(ctx.page()?);
    let mut calls_during = 0;
    for round in 0..ROUNDS {
        calls_during += destroy_while_others_call(round, pool, memory, own)?;
    }
    // Before the teardown was split, cpu 1 completed none (a few at most, between the
    // moments it read the count and EL2 took the lock): summed over the rounds so that one
    // round whose cpu 1 the host did not run meanwhile does not decide.
    ensure!(
        calls_during >= MIN_CALLS_DURING,
        "cpu {CALLER} completed {calls_during} calls during {ROUNDS} VM_DESTROYs of \
         {VM_PAGES} pages: it was kept out of EL2's memory lock for (nearly) whole teardowns"
    );
    Ok(())
}

/// One round: a VM of the pages at `memory` and `pool`, destroyed while cpus 1-3 call;
/// returns the calls cpu 1 completed during the destroy. Everything comes back zeroed.
fn destroy_while_others_call(
    round: u32,
    pool: u64,
    memory: u64,
    own: u64,
) -> Result<u32, crate::msg::Msg> {
    // Not tracked by `ctx` (it destroys at most 4 VMs after a test): this round destroys it.
    let h = expect_ok!(
        el1_rt::host_calls::vm_create(1, test_guest::IPA_BITS),
        "VM_CREATE"
    );
    for i in (0..POOL_PAGES).step_by(64) {
        expect_ok!(vm_topup(h, pool + i, 64), "VM_TOPUP of {:#x}", pool + i);
    }
    for i in (0..VM_PAGES).step_by(512) {
        expect_ok!(
            vm_donate(h, memory + i, GFN + i, 512),
            "VM_DONATE of {:#x}",
            memory + i
        );
    }
    HANDLE.store(h.0, Ordering::Release);
    VM_PFN.store(memory, Ordering::Release);
    POOL_PFN.store(pool, Ordering::Release);
    OWN_PFN.store(own, Ordering::Release);
    STOP.store(false, Ordering::Release);
    CALLS.store(0, Ordering::Release);
    LONGEST.store(0, Ordering::Release);
    WRONG.store(0, Ordering::Release);
    FIRST_WRONG.store(0, Ordering::Release);
    for cpu in [RECLAIMER, WATCHER] {
        ROUNDS_MADE[cpu].store(0, Ordering::Release);
        DONE[cpu].store(false, Ordering::Release);
    }
    // The first round checks atomicity on cpus 2 and 3; later ones leave them off, so
    // that the emulator's host has cores for cpu 1 (cpus 2 and 3 spin while they wait for
    // the teardown).
    let checkers: &[usize] = if round == 0 {
        &[RECLAIMER, WATCHER]
    } else {
        &[]
    };
    smp::launch(CALLER, caller)?;
    if round == 0 {
        smp::launch(RECLAIMER, reclaimer)?;
        smp::launch(WATCHER, watcher)?;
    }
    let started = wait_until(TIMEOUT_MS, || {
        CALLS.load(Ordering::Acquire) > 20
            && checkers
                .iter()
                .all(|&cpu| ROUNDS_MADE[cpu].load(Ordering::Acquire) > 2)
    });
    // CPU 1's longest call before the destroy: its ordinary cost, under this emulator.
    let longest_before = LONGEST.swap(0, Ordering::AcqRel);
    let calls_before = CALLS.load(Ordering::Acquire);
    let start = CNTVCT_EL0.get();
    let destroyed = vm_destroy(h);
    let destroy_ticks = CNTVCT_EL0.get() - start;
    let calls_during = CALLS.load(Ordering::Acquire) - calls_before;
    let in_call = IN_CALL_SINCE.load(Ordering::Acquire);
    let in_call_us = if in_call == 0 {
        0
    } else {
        micros(CNTVCT_EL0.get() - in_call)
    };
    let longest = LONGEST.load(Ordering::Acquire);
    let checked = wait_until(TIMEOUT_MS, || {
        checkers
            .iter()
            .all(|&cpu| DONE[cpu].load(Ordering::Acquire))
    });
    STOP.store(true, Ordering::Release);
    for &cpu in [CALLER].iter().chain(checkers) {
        smp::wait_finished(cpu, TIMEOUT_MS)?;
        smp::wait_off(cpu)?;
    }
    ensure!(started, "cpus 1-3 did not all start making calls");
    expect_ok!(destroyed, "VM_DESTROY of a VM of {VM_PAGES} pages");
    ensure!(checked, "cpus 2 and 3 never saw the VM destroyed");
    let wrong = WRONG.load(Ordering::Acquire);
    ensure!(
        wrong == 0,
        "{wrong} results docs/abi.md does not allow (first: cpu {}, code {:#x})",
        FIRST_WRONG.load(Ordering::Acquire) >> 56,
        FIRST_WRONG.load(Ordering::Acquire) & 0xfff
    );
    say!(
        "round {round}: VM_DESTROY of {VM_PAGES} pages took {} us; meanwhile cpu {CALLER} \
         completed {calls_during} calls, the longest {} us (before it: {} us); in a call for \
         {in_call_us} us",
        micros(destroy_ticks),
        micros(longest),
        micros(longest_before)
    );
    // Everything else comes back, zeroed; the pages cpus 2 and 3 took back are HOST.
    let taken = [memory, memory + VM_PAGES - 2, memory + VM_PAGES - 1, pool];
    if checkers.is_empty() {
        for page in taken {
            expect_ok!(vm_reclaim(page, 1), "VM_RECLAIM of {page:#x}");
        }
    }
    let rest = [
        (memory + 1, memory + VM_PAGES - 2),
        (pool + 1, pool + POOL_PAGES),
    ];
    for (from, to) in rest {
        for page in (from..to).step_by(512) {
            let nr = (to - page).min(512);
            expect_ok!(
                vm_reclaim(page, nr as u32),
                "VM_RECLAIM of {page:#x} + {nr}"
            );
        }
        match probe::first_nonzero(address(from), address(to) - address(from)) {
            Ok(None) => {}
            Ok(Some(offset)) => bail!("reclaimed page {:#x} is not zeroed", address(from) + offset),
            Err(abort) => bail!("a reclaimed page aborts (ESR {:#x})", abort.esr),
        }
    }
    for page in taken {
        expect_err!(
            vm_reclaim(page, 1),
            Denied,
            "second VM_RECLAIM of {page:#x}"
        );
    }
    Ok(calls_during)
}
