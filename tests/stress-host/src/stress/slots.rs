//! The stress VMs. There are [`SLOTS`] slots; each holds at most one VM at a time, which
//! the stress builds, runs, destroys and rebuilds many times over.
//!
//! A slot's VM gets its guest image, data pages and first pool pages from the slot's own
//! page region, which no other operation names: building and reclaiming a slot's VM must
//! therefore always succeed, and reclaimed pages must read zero. Other CPUs only reach a
//! VM through its handle (topping it up with and donating shared-set pages, running
//! it, destroying it).
//!
//! `state` is the slot's life cycle: `EMPTY`, `TRANSIT` (one CPU is building or retiring
//! the VM; no other CPU may touch the region), or the live VM's handle. Only the CPU whose
//! VM_DESTROY succeeded retires the VM, so exactly one CPU reclaims each VM's region.
//! A CPU that writes into the guest's shared page registers in `writers` first and then
//! checks that the VM is still the slot's; builders and retirers wait for `writers` to
//! drain before they touch the region (both sides use SeqCst, so one of them sees the other).

use super::events::{self, Event};
use super::violations;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use el1_rt::free_pages::{FreePages, PAGE_SIZE};
use el1_rt::region::{Region, RegionList};
use el1_rt::test_guest_driver::TestGuest;
use el1_rt::timeout::wait_until;
use hvc_abi::VmHandle;
use spin::Mutex;
use test_guest::{Command, SHARED_GFN};

/// VMs the stress keeps at once.
pub const SLOTS: usize = 4;
/// Pages of a slot's region: pool (8), guest image (7 for the current guest), data (3)
/// and room for two more top-ups if the payload asks for memory while the guest is loaded.
pub const REGION_PAGES: usize = 40;

const EMPTY: u64 = 0;
const TRANSIT: u64 = 1;
/// How long a builder or retirer waits for reply writers to leave the region.
const WRITERS_TIMEOUT_MS: u64 = 10_000;

pub struct Slot {
    state: AtomicU64,
    /// A handle that is certainly dead: the slot's last destroyed VM (initially one the
    /// payload never issues). Calls with it must return NOT_FOUND.
    dead: AtomicU64,
    writers: AtomicU32,
    /// Host address of the live guest's SHARED_GFN page.
    shared_page: AtomicUsize,
    region: AtomicUsize,
    guest: Mutex<Option<TestGuest>>,
}

impl Slot {
    const fn new() -> Self {
        Self {
            state: AtomicU64::new(EMPTY),
            dead: AtomicU64::new(0),
            writers: AtomicU32::new(0),
            shared_page: AtomicUsize::new(0),
            region: AtomicUsize::new(0),
            guest: Mutex::new(None),
        }
    }
}

static SLOT_TABLE: [Slot; SLOTS] = [const { Slot::new() }; SLOTS];

/// The VM a call names: the slot's live VM (which another CPU may destroy at any time), or
/// a dead one.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    Live(VmHandle),
    Dead(VmHandle),
}

impl Target {
    pub fn handle(self) -> VmHandle {
        match self {
            Target::Live(handle) | Target::Dead(handle) => handle,
        }
    }

    pub fn is_dead(self) -> bool {
        matches!(self, Target::Dead(_))
    }
}

/// Gives each slot its page region (`REGION_PAGES` pages at `base + i * REGION_PAGES`).
pub fn init(base: usize) {
    for (i, slot) in SLOT_TABLE.iter().enumerate() {
        slot.region
            .store(base + i * REGION_PAGES * PAGE_SIZE, Ordering::Relaxed);
    }
}

/// The first page of slot `index`'s region and its page count.
pub fn region(index: usize) -> (usize, usize) {
    (
        SLOT_TABLE[index].region.load(Ordering::Relaxed),
        REGION_PAGES,
    )
}

/// What a call on slot `index`'s VM should name right now.
pub fn target(index: usize) -> Target {
    let slot = &SLOT_TABLE[index];
    match slot.state.load(Ordering::SeqCst) {
        EMPTY | TRANSIT => Target::Dead(VmHandle(slot.dead.load(Ordering::SeqCst))),
        handle => Target::Live(VmHandle(handle)),
    }
}

fn wait_for_writers(cpu: usize, slot: &Slot) -> bool {
    if wait_until(WRITERS_TIMEOUT_MS, || {
        slot.writers.load(Ordering::SeqCst) == 0
    }) {
        return true;
    }
    violations::report(
        cpu,
        format_args!("a reply writer did not leave a slot within {WRITERS_TIMEOUT_MS} ms"),
    );
    false
}

/// If slot `index` is empty, builds a new SecretAndShare guest VM there from the slot's
/// region and publishes it. Returns false if the slot was not empty.
pub fn try_build(cpu: usize, index: usize, image: &[u8]) -> bool {
    let slot = &SLOT_TABLE[index];
    if slot
        .state
        .compare_exchange(EMPTY, TRANSIT, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        return false;
    }
    if !wait_for_writers(cpu, slot) {
        return true;
    }
    let mut ram = RegionList::new();
    let base = slot.region.load(Ordering::Relaxed);
    // One region always fits an empty list.
    let _ = ram.push(Region {
        base,
        size: REGION_PAGES * PAGE_SIZE,
    });
    let mut pages = FreePages::new(&ram, &RegionList::new(), base);
    let guest = match TestGuest::build(&mut pages, image, Command::SecretAndShare, 1) {
        Ok(guest) => guest,
        Err(error) => {
            // The slot stays in TRANSIT: retired for good, its region is in an unknown state.
            violations::report(
                cpu,
                format_args!("building a stress VM in its own pages: {error}"),
            );
            return true;
        }
    };
    let shared = match guest.vm().host_address(SHARED_GFN) {
        Ok(address) => address,
        Err(error) => {
            violations::report(
                cpu,
                format_args!("stress VM without its shared page: {error}"),
            );
            return true;
        }
    };
    let handle = guest.vm().handle();
    slot.shared_page.store(shared, Ordering::SeqCst);
    *slot.guest.lock() = Some(guest);
    slot.state.store(handle.raw(), Ordering::SeqCst);
    events::count(Event::Built);
    true
}

/// After this CPU's VM_DESTROY of `handle` succeeded: takes the slot's VM out of use and
/// reclaims its region, which must come back whole and zeroed.
pub fn retire(cpu: usize, index: usize, handle: VmHandle) {
    let slot = &SLOT_TABLE[index];
    if slot
        .state
        .compare_exchange(handle.raw(), TRANSIT, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        violations::report(
            cpu,
            format_args!("slot {index} changed under a successful VM_DESTROY of {handle:?}"),
        );
        return;
    }
    slot.dead.store(handle.raw(), Ordering::SeqCst);
    if !wait_for_writers(cpu, slot) {
        return;
    }
    let Some(mut guest) = slot.guest.lock().take() else {
        violations::report(
            cpu,
            format_args!("slot {index} had a handle but no VM record"),
        );
        return;
    };
    match guest.vm_mut().reclaim_all() {
        Ok(reclaimed) => {
            if let Some(address) = reclaimed.first_nonzero {
                violations::report(
                    cpu,
                    format_args!("reclaimed page {address:#x} of {handle:?} is not zeroed"),
                );
                return;
            }
            events::add(Event::ReclaimedPages, reclaimed.pages as u32);
        }
        Err(error) => {
            violations::report(
                cpu,
                format_args!("reclaiming the pages of destroyed {handle:?}: {error}"),
            );
            return;
        }
    }
    slot.state.store(EMPTY, Ordering::SeqCst);
    events::count(Event::Retired);
}

/// Runs `write(page)` on the live guest `handle`'s shared page, unless the VM has left
/// the slot. Returns `None` if it had.
pub fn with_shared_page<T>(
    index: usize,
    handle: VmHandle,
    write: impl FnOnce(usize) -> T,
) -> Option<T> {
    let slot = &SLOT_TABLE[index];
    slot.writers.fetch_add(1, Ordering::SeqCst);
    let result = if slot.state.load(Ordering::SeqCst) == handle.raw() {
        Some(write(slot.shared_page.load(Ordering::SeqCst)))
    } else {
        None
    };
    slot.writers.fetch_sub(1, Ordering::SeqCst);
    result
}

/// Why a slot could not be torn down at the end.
pub enum Leftover {
    /// The slot was retired for good after a violation.
    Retired,
    /// VM_DESTROY of the slot's VM failed although no CPU runs anything.
    DestroyFailed(VmHandle, el1_rt::host_calls::CallError),
}

/// Destroys slot `index`'s VM, if any, and reclaims its region (CPU 0, after every worker
/// finished: no vCPU runs, so VM_DESTROY must succeed).
pub fn tear_down(index: usize) -> Result<(), Leftover> {
    match SLOT_TABLE[index].state.load(Ordering::SeqCst) {
        EMPTY => Ok(()),
        TRANSIT => Err(Leftover::Retired),
        raw => {
            let handle = VmHandle(raw);
            el1_rt::host_calls::vm_destroy(handle)
                .map_err(|error| Leftover::DestroyFailed(handle, error))?;
            retire(0, index, handle);
            match SLOT_TABLE[index].state.load(Ordering::SeqCst) {
                EMPTY => Ok(()),
                _ => Err(Leftover::Retired),
            }
        }
    }
}
