//! The ownership record (`stage2::Ownership`: every RAM page's owner, the host stage-2 and
//! every guest's stage-2) behind the payload's one memory lock.
//!
//! Lock order, everywhere: the VM table (`vm::VMS`) first, then this lock. The record covers
//! host, hyp and guest state together, so there is no further order inside it to get wrong;
//! code that holds this lock never takes the VM-table lock (the `spin` guard types make a
//! second `lock()` of either a visible deadlock in review, and no function here calls out
//! to `vm`).
//!
//! # How long the lock is held
//!
//! EL2 runs with interrupts masked, and every other CPU that needs the record spins on this
//! lock, so no call may hold it for work that grows with the machine. The bounds, in EL2
//! instructions per lock hold, measured by `cargo xtask bench` at 1 GiB (docs/performance.md):
//! - share/unshare with EL2, one-page donations and guest calls: a few hundred to a few
//!   thousand;
//! - a host stage-2 fault: a few hundred, but when the 2 MiB block around the address is
//!   all the host's it also reads the record entries of the 1 GiB block around it (up to
//!   262,144, stopping at the first page the host may not map) to map the largest block:
//!   bounded by 1 GiB, not by RAM, and paid once per 1 GiB block the host gets back;
//! - calls that move up to 512 pages (`MAX_PAGES_PER_CALL`): about 40-65 per page for
//!   mapping changes. VM_RECLAIM and a guest's MEM_RELINQUISH also zero and clean each page
//!   they hand to the host (about 500 instructions per page, 2 MiB per call at most), but
//!   not under the lock: the pages wait in `Sanitizing`, reachable by nobody, while the
//!   calling CPU zeroes them, and a second short hold hands them over
//!   (`tlb::DeferredSanitizer`). VM_DONATE after launch likewise zeroes outside the lock:
//!   a first hold decides every refusal (NO_MEMORY included), takes the pages from the host
//!   and its DMA view and maps them at the guest frames with no access
//!   (`ZeroingForGuest`, reachable by nobody); the calling CPU zeroes them; a second hold
//!   gives the guest access (`host_donate_guest_begin`/`_finish`, about 40-65 per page
//!   each, plus one TLBI per page in the second). Neither lock is held across the zeroing:
//!   the record keeps the VM from being torn down until the finish (a VM_DESTROY waits
//!   for it: at most one call's 512 pages of zeroing per other CPU);
//! - VM_DESTROY: in steps (`stage2::Ownership::vm_teardown_step`), each one hold: at most
//!   512 record entries changed (`TEARDOWN_PAGES_PER_STEP`: the VM's pages, its tables
//!   and free pool pages, each to RECLAIMABLE) and at most 512 descents through the VM's
//!   own stage-2 (`TEARDOWN_LOOKUPS_PER_STEP`), with the host TLB and DMA invalidation
//!   for that step's shared pages, whatever the VM's size; never a pass over the whole
//!   record. Between steps neither lock is held, and a CPU waiting for this one gets it
//!   there (`let_waiters_in`); calls that would see the VM half destroyed wait for the
//!   last step instead, holding no lock (`vm::lock_vm`, VM_RECLAIM's `Busy`, a host
//!   fault's `RetryLater`). A step is about 76,000 instructions (from `cargo xtask
//!   bench`: 1,597,149 for a VM of 10,368 pages, 21 steps);
//! - the system reset path (`system_reset`) walks the whole record once and then never
//!   releases the lock: nothing runs after it.

use crate::el2_regs::HostStage2Regs;
use aarch64_cpu::registers::{CNTFRQ_EL0, CNTPCT_EL0, Readable};
use core::sync::atomic::{AtomicU32, Ordering};
use spin::{Mutex, MutexGuard, Once};
use stage2::{BlockStats, Ownership, OwnershipError, PagePool, Stage2Config};

/// Guests that can exist at once (hvc-abi's `MAX_VMS`).
pub const MAX_VMS: usize = hvc_abi::limits::MAX_VMS as usize;

pub type Record = Ownership<'static, MAX_VMS>;

static RECORD: Once<Option<Mutex<Record>>> = Once::new();
static HOST_REGS: Once<HostStage2Regs> = Once::new();

/// What EL2 hands the record at boot.
pub struct RecordSetup<'a> {
    pub config: Stage2Config,
    pub host_pool: PagePool,
    pub ram: &'a [(usize, usize)],
    /// Lives as long as the record (from the heap: one range per CPU with a GICv3).
    pub mmio: &'static [(usize, usize)],
    pub hyp: &'a [(usize, usize)],
    pub meta: &'static mut [u16],
}

/// Creates the record (all RAM the host's except EL2's ranges), maps all the host's memory
/// and MMIO in its stage-2 up front, and returns the block statistics.
///
/// # Safety
/// As `stage2::Ownership::new`: all RAM mapped read-write at EL2, `host_pool` exclusive.
pub unsafe fn init(setup: RecordSetup) -> Result<BlockStats, OwnershipError> {
    // The record is large (a page of scratch space, every VM's table handle): it is built
    // in its final place rather than moved there through the stack.
    let mut result = Ok(());
    let config = setup.config;
    let lock = RECORD.call_once(|| {
        // SAFETY: the caller upholds `Ownership::new`'s contract.
        let record = unsafe {
            Ownership::new(
                &config,
                setup.host_pool,
                setup.ram,
                setup.mmio,
                setup.hyp,
                setup.meta,
            )
        };
        match record {
            Ok(r) => Some(Mutex::new(r)),
            Err(e) => {
                result = Err(e);
                None
            }
        }
    });
    result?;
    let Some(lock) = lock else {
        return Err(OwnershipError::InvalidParameter);
    };
    let mut record = lock.lock();
    record.host_map_all()?;
    let host = record.host_stage2();
    host.mark_active();
    HOST_REGS.call_once(|| HostStage2Regs {
        vtcr: config.vtcr,
        vttbr: host.vttbr(),
    });
    Ok(host.stats_all())
}

/// VTCR_EL2 and VTTBR_EL2 (VMID 0) of the host stage-2; `None` before `init`.
pub fn host_regs() -> Option<HostStage2Regs> {
    HOST_REGS.get().copied()
}

/// Takes the memory lock. `None` only before `init` (no host runs then).
pub fn lock() -> Option<MutexGuard<'static, Record>> {
    let lock = RECORD.get().and_then(Option::as_ref)?;
    if let Some(guard) = lock.try_lock() {
        return Some(guard);
    }
    // Contended: say so while waiting, for `let_waiters_in`.
    WAITING.fetch_add(1, Ordering::Relaxed);
    let guard = lock.lock();
    WAITING.fetch_sub(1, Ordering::Relaxed);
    Some(guard)
}

/// CPUs spinning in [`lock`] right now.
static WAITING: AtomicU32 = AtomicU32::new(0);

/// Longest [`let_waiters_in`] waits for a waiter to take the lock, in microseconds: a CPU
/// spinning on it takes it well within this once it is free, on hardware; on an emulator
/// whose CPUs are host threads the waiter may not be running, and the teardown goes on.
const WAITER_GRACE_US: u64 = 50;

/// For a CPU that has just released the lock and will take it again at once for the next
/// step of a long job (VM_DESTROY's teardown): if other CPUs are waiting for it, waits
/// (up to [`WAITER_GRACE_US`]) until one of them has taken it, so that waiters get the
/// lock between the steps; if none waits, returns at once (no cost). The lock is
/// test-and-set (`spin::Mutex`): without this, the CPU that releases it and takes it again
/// at once nearly always wins, and the bounded holds would bound nobody's wait. (A ticket
/// lock, as pKVM's `hyp_spinlock`, serves every waiter in order; but on an emulator whose
/// CPUs are host threads, the CPU whose turn it is may not be running and every other
/// then waits for the host to schedule it: the SMP stress case ran ten times slower.)
pub fn let_waiters_in() {
    let Some(lock) = RECORD.get().and_then(Option::as_ref) else {
        return;
    };
    let grace = CNTFRQ_EL0.get() * WAITER_GRACE_US / 1_000_000;
    let start = CNTPCT_EL0.get();
    while WAITING.load(Ordering::Relaxed) != 0
        && !lock.is_locked()
        && CNTPCT_EL0.get().wrapping_sub(start) <= grace
    {
        core::hint::spin_loop();
    }
}
