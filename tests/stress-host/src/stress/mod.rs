//! The SMP stress: every CPU runs [`OPS_PER_CPU`] pseudo-random host operations at once on
//! one small set of host pages and a few VMs (worker.rs), every result checked against
//! docs/abi.md (calls.rs). Then CPU 0 asks EL2 to prove invariants I1-I4 on the record
//! and every stage-2, tears everything down and checks that no page was lost: every page
//! the stress started with is `HOST` again, readable and writable.

mod calls;
mod events;
mod slots;
mod violations;
mod worker;

use crate::clock;
use crate::msg::{Msg, TestResult, bail, ensure};
use crate::pages::{self, expect_host_page};
use crate::runner::Ctx;
use crate::{invariants, smp};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use el1_rt::board::MAX_CPUS;
use el1_rt::free_pages::PAGE_SIZE;
use el1_rt::host_calls;
use el1_rt::timeout::wait_until;
use el1_rt::{fail, image_header, say};
use hvc_abi::limits::MAX_POOL_PAGES_PER_CALL;
use spin::Once;

/// Operations per CPU. Bounded, so the run ends: about 20 s under QEMU TCG with 4 CPUs on
/// an idle 2-core machine, about a minute when the machine is busy with other work.
pub const OPS_PER_CPU: u32 = 6000;
/// Pages every CPU picks from: few, so that operations collide.
const SHARED_PAGES: u64 = 24;
/// How long the secondaries may take to come up and wait at the start line.
const START_TIMEOUT_MS: u64 = 10_000;
/// Bound on the whole run; a CPU still busy then is stuck in the payload.
const RUN_TIMEOUT_MS: u64 = 240_000;

/// The pages every CPU operates on, and the guest every stress VM runs.
pub struct SharedSet {
    first_pfn: u64,
    pages: u64,
    guest_image: &'static [u8],
}

impl SharedSet {
    fn pfn(&self, index: u64) -> u64 {
        self.first_pfn + index
    }

    fn address(&self, index: u64) -> usize {
        pages::address(self.pfn(index))
    }
}

static SET: Once<SharedSet> = Once::new();
static READY: AtomicU32 = AtomicU32::new(0);
static GO: AtomicBool = AtomicBool::new(false);
/// Per CPU: operations done, and the operation under way (for a report if one hangs).
static DONE_OPS: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];
static CURRENT_OP: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(usize::MAX) }; MAX_CPUS];
static ELAPSED_MS: AtomicU64 = AtomicU64::new(0);

fn set() -> Result<&'static SharedSet, Msg> {
    match SET.get() {
        Some(set) => Ok(set),
        None => bail!("the stress did not set up its pages"),
    }
}

/// Every CPU's operation sequence.
fn work(cpu: usize) {
    let Some(set) = SET.get() else { return };
    let mut rng = crate::rng::XorShift::for_cpu(cpu);
    for n in 0..OPS_PER_CPU {
        let op = worker::pick(&mut rng);
        CURRENT_OP[cpu].store(op as usize, Ordering::Relaxed);
        worker::step(cpu, &mut rng, op, set);
        DONE_OPS[cpu].store(n + 1, Ordering::Release);
    }
    CURRENT_OP[cpu].store(usize::MAX, Ordering::Relaxed);
}

/// A secondary's task: report at the start line, wait for everyone, work.
fn secondary(cpu: usize) {
    READY.fetch_add(1, Ordering::AcqRel);
    if wait_until(START_TIMEOUT_MS, || GO.load(Ordering::Acquire)) {
        work(cpu);
    }
}

/// Takes the pages: the shared set and one region per stress VM slot, all `HOST` now.
fn set_up(ctx: &mut Ctx) -> TestResult {
    let image_pages = match image_header::memory_size(ctx.guest_image) {
        Ok(size) => size.div_ceil(PAGE_SIZE),
        Err(error) => bail!("test guest image: {error}"),
    };
    let needed = 2 * MAX_POOL_PAGES_PER_CALL as usize
        + image_pages
        + test_guest::DATA_PAGES as usize
        + MAX_POOL_PAGES_PER_CALL as usize;
    ensure!(
        needed <= slots::REGION_PAGES,
        "a stress VM needs {needed} pages, its region has {}",
        slots::REGION_PAGES
    );
    let Some(shared) = ctx.pages.alloc(SHARED_PAGES as usize) else {
        bail!("no {SHARED_PAGES} free host pages for the shared set");
    };
    let Some(regions) = ctx.pages.alloc(slots::SLOTS * slots::REGION_PAGES) else {
        bail!("no free host pages for the stress VMs");
    };
    slots::init(regions);
    let set = SET.call_once(|| SharedSet {
        first_pfn: pages::pfn(shared),
        pages: SHARED_PAGES,
        guest_image: ctx.guest_image,
    });
    for index in 0..set.pages {
        expect_host_page(set.pfn(index))?;
    }
    Ok(())
}

/// The stress itself; fails on any result the document does not allow.
pub fn smp_stress(ctx: &mut Ctx) -> TestResult {
    set_up(ctx)?;
    let cpus = smp::count();
    smp::launch_all(secondary)?;
    if !wait_until(START_TIMEOUT_MS, || {
        READY.load(Ordering::Acquire) as usize == cpus - 1
    }) {
        bail!(
            "only {} of {} secondary CPUs reached the start line",
            READY.load(Ordering::Acquire),
            cpus - 1
        );
    }
    let started = clock::now_ms();
    GO.store(true, Ordering::Release);
    work(0);
    let all_done = || (1..cpus).all(smp::finished);
    if !wait_until(RUN_TIMEOUT_MS, all_done) {
        for cpu in 0..cpus {
            say!(
                "cpu {cpu}: {} of {OPS_PER_CPU} operations done, current {:?}",
                DONE_OPS[cpu].load(Ordering::Acquire),
                worker::Op::from_index(CURRENT_OP[cpu].load(Ordering::Relaxed))
            );
        }
        // A CPU stuck in EL2 may hold the payload's locks: nothing after this can run.
        fail!("smp_stress: not every CPU finished its operations within {RUN_TIMEOUT_MS} ms");
    }
    let elapsed = clock::now_ms().saturating_sub(started);
    ELAPSED_MS.store(elapsed, Ordering::Relaxed);
    say!(
        "stress: {cpus} CPUs x {OPS_PER_CPU} operations, {} host calls, {elapsed} ms",
        calls::total()
    );
    calls::print_table();
    events::print();
    for cpu in 1..cpus {
        smp::wait_off(cpu)?;
    }
    let violations = violations::count();
    ensure!(
        violations == 0,
        "{violations} results the document does not allow (printed above)"
    );
    ensure!(
        events::get(events::Event::Built) > 0 && events::get(events::Event::GuestDone) > 0,
        "the stress built no VM or no guest finished: it did not exercise what it should"
    );
    Ok(())
}

/// Right after the stress, with its VMs still alive: I1-I4 hold.
pub fn invariants_after_stress(_ctx: &mut Ctx) -> TestResult {
    set()?;
    invariants::check()
}

/// Destroys the stress VMs, reclaims every page that can be, and checks that every page of
/// the shared set and of the VM regions is `HOST` again; then I1-I4 once more.
pub fn no_lost_page(_ctx: &mut Ctx) -> TestResult {
    let set = set()?;
    let violations_before = violations::count();
    for index in 0..slots::SLOTS {
        match slots::tear_down(index) {
            Ok(()) => {}
            Err(slots::Leftover::Retired) => {
                bail!("stress VM slot {index} could not be torn down (see the violations)")
            }
            Err(slots::Leftover::DestroyFailed(handle, error)) => {
                bail!("VM_DESTROY of stress VM {handle:?} with no vCPU running: {error}")
            }
        }
    }
    let violations = violations::count() - violations_before;
    ensure!(
        violations == 0,
        "{violations} violations while tearing down"
    );
    for index in 0..set.pages {
        let pfn = set.pfn(index);
        // Whatever the stress left: a page shared with EL2, or one of a destroyed VM.
        for result in [
            host_calls::make(hvc_abi::HostCall::HostUnshareHyp { pfn }),
            host_calls::vm_reclaim(pfn, 1).map(|()| [0; 3]),
        ] {
            if let Err(error) = result
                && error.abi_error() != Some(hvc_abi::Error::Denied)
            {
                bail!("cleaning up page {:#x}: {error}", pages::address(pfn));
            }
        }
    }
    let mut checked = 0;
    for index in 0..set.pages {
        expect_host_page(set.pfn(index))?;
        checked += 1;
    }
    for index in 0..slots::SLOTS {
        let (base, nr) = slots::region(index);
        for page in 0..nr {
            expect_host_page(pages::pfn(base) + page as u64)?;
            checked += 1;
        }
    }
    invariants::check()?;
    say!("stress: all {checked} pages are HOST again");
    Ok(())
}
