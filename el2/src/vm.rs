//! Protected VMs: the VM table and the host calls that create, feed, run and destroy VMs
//! (docs/abi.md section 4). Every error row of the document is checked here in the
//! document's order; the stateless rows were already checked by `hvc_abi::HostCall::decode`.
//!
//! Lock order: `VMS` (this table) first, then the memory lock (`record`). A vCPU's state is
//! touched only by the CPU that set its `running` flag (under `VMS`), so no lock is held
//! while a guest runs.
//!
//! Neither lock is held for work that grows with a VM: VM_DESTROY marks the VM dying under
//! `VMS`, then moves its pages in steps of at most `stage2::TEARDOWN_PAGES_PER_STEP` (512)
//! pages, one memory-lock hold each, with neither lock held between steps. A call that
//! names a dying VM waits (with no lock held) until the teardown has finished and then
//! finds the handle gone, so to every other call the destroy is one change, made when its
//! last step frees the slot (docs/abi.md 8).

use crate::mmio_guard::MmioGuard;
use crate::record::{self, MAX_VMS};
use crate::tlb::{DeferredSanitizer, Sanitizer, Tlb};
use crate::vcpu::{self, Vcpu};
use core::sync::atomic::{AtomicU64, Ordering};
use hvc_abi::limits::{MAX_VCPUS, check_gfn_range, check_ipa, check_ipa_range};
use hvc_abi::psci::{self, PsciError};
use hvc_abi::{Error, Exit, IpaState, VmHandle};
use spin::Mutex;
use stage2::{Owner, OwnershipError, PageSanitizer, PageState, VmId};

const MAX_VCPUS_PER_VM: usize = MAX_VCPUS as usize;

#[derive(Clone, Copy)]
struct VcpuSlot {
    created: bool,
    running: bool,
    /// Powered on: vCPU 0 from its creation, the others from the guest's PSCI CPU_ON
    /// until their own CPU_OFF (docs/abi.md 4.8, 5.5). An off vCPU runs nothing.
    on: bool,
}

#[derive(Clone, Copy)]
struct VmSlot {
    live: bool,
    /// A VM_DESTROY is moving the VM's pages (still `live`: its slot and VMID stay taken);
    /// calls that name it wait until the slot is free (`lock_vm`).
    dying: bool,
    /// Generation of the handle this slot issues next; a slot whose generation would wrap
    /// is retired, so a handle is never issued twice.
    generation: u32,
    handle: VmHandle,
    nr_vcpus: u32,
    ipa_bits: u32,
    /// The VM in the ownership record; created by the first VM_TOPUP (a VM's stage-2 root
    /// table comes from its pool, and VM_CREATE takes no memory).
    record_vm: Option<VmId>,
    /// Set once a vCPU exits with SYSTEM_OFF or SYSTEM_RESET: the VM is stopped.
    stopped: Option<Exit>,
    /// Set by the first VCPU_RUN that enters the guest: from then on the host cannot
    /// create vCPUs (docs/abi.md 4.8).
    launched: bool,
    /// The IPA pages the guest registered as MMIO (docs/abi.md 5.6).
    mmio: MmioGuard,
    vcpus: [VcpuSlot; MAX_VCPUS_PER_VM],
}

const EMPTY_SLOT: VmSlot = VmSlot {
    live: false,
    dying: false,
    generation: 1,
    handle: VmHandle(0),
    nr_vcpus: 0,
    ipa_bits: 0,
    record_vm: None,
    stopped: None,
    launched: false,
    mmio: MmioGuard::EMPTY,
    vcpus: [VcpuSlot {
        created: false,
        running: false,
        on: false,
    }; MAX_VCPUS_PER_VM],
};

struct VmTable {
    slots: [VmSlot; MAX_VMS],
    /// Slots marked `dying`: while none is, `lock_vm` looks no further.
    dying: usize,
}

static VMS: Mutex<VmTable> = Mutex::new(VmTable {
    slots: [EMPTY_SLOT; MAX_VMS],
    dying: 0,
});

/// vCPU state lives in EL2's own memory, one per possible vCPU of every possible VM
/// (16 x 8 x ~1.3 KiB); each is used only by the CPU that marked it running.
static mut VCPUS: [[Vcpu; MAX_VCPUS_PER_VM]; MAX_VMS] =
    [const { [const { Vcpu::new() }; MAX_VCPUS_PER_VM] }; MAX_VMS];

fn vcpu_ptr(slot: usize, vcpu: usize) -> *mut Vcpu {
    // SAFETY: only the address is taken; indices are bounded by the array's type.
    unsafe { &raw mut VCPUS[slot][vcpu] }
}

impl VmTable {
    /// The live VM `handle` names; `NotFound` for none, and for a dying one (which
    /// [`lock_vm`] never returns).
    fn find(&mut self, handle: VmHandle) -> Result<(usize, &mut VmSlot), Error> {
        let (slot, _) = handle.parts().ok_or(Error::NotFound)?;
        let index = usize::from(slot);
        match self.slots.get_mut(index) {
            Some(s) if s.live && !s.dying && s.handle == handle => Ok((index, s)),
            _ => Err(Error::NotFound),
        }
    }

    fn names_dying(&self, handle: VmHandle) -> bool {
        self.dying != 0
            && handle.parts().is_some_and(|(slot, _)| {
                self.slots
                    .get(usize::from(slot))
                    .is_some_and(|s| s.live && s.dying && s.handle == handle)
            })
    }
}

/// Takes the VM-table lock for a call that names `handle`. While a VM_DESTROY of that VM is
/// under way on another CPU, waits for it with no lock held (the teardown takes the memory
/// lock once per step, so this wait is not a lock hold), and then the handle is gone: a call
/// never sees a VM half destroyed (docs/abi.md 8).
fn lock_vm(handle: VmHandle) -> spin::MutexGuard<'static, VmTable> {
    loop {
        let vms = VMS.lock();
        if !vms.names_dying(handle) {
            return vms;
        }
        // Read under the lock: the teardown is counted only after its slot is freed,
        // which takes this lock.
        let teardowns = teardowns_finished();
        drop(vms);
        wait_for_a_teardown_after(teardowns);
    }
}

/// VM_DESTROYs that have finished, ever: a call that finds (under a lock) that it must wait
/// for a teardown reads this before it releases that lock, then waits for it to change, so
/// that it waits without taking either lock again (the teardown's steps are not slowed by
/// waiters, and no waiter can miss the end: it is counted after the last step and after
/// the slot is free, each of which needs the lock the waiter held).
static TEARDOWNS_FINISHED: AtomicU64 = AtomicU64::new(0);

fn teardowns_finished() -> u64 {
    TEARDOWNS_FINISHED.load(Ordering::Acquire)
}

fn wait_for_a_teardown_after(seen: u64) {
    while teardowns_finished() == seen {
        core::hint::spin_loop();
    }
}

/// Errors of transitions named by host page frame numbers: a page outside RAM (the record's
/// `Range`) is a page in the wrong state for the ABI (section 7.1: MMIO and NO_RAM pages
/// give DENIED; the stateless RANGE rows were checked by decode).
fn pfn_error(e: OwnershipError) -> Error {
    match e {
        OwnershipError::InvalidParameter => Error::InvalidParameter,
        OwnershipError::Denied | OwnershipError::Range | OwnershipError::Busy => Error::Denied,
        OwnershipError::NoMemory => Error::NoMemory,
        OwnershipError::NotFound => Error::NotFound,
    }
}

/// Errors of transitions named by guest addresses.
pub fn ipa_error(e: OwnershipError) -> Error {
    match e {
        OwnershipError::InvalidParameter => Error::InvalidParameter,
        OwnershipError::Denied | OwnershipError::Busy => Error::Denied,
        OwnershipError::NoMemory => Error::NoMemory,
        OwnershipError::NotFound => Error::NotFound,
        OwnershipError::Range => Error::Range,
    }
}

pub fn vm_create(nr_vcpus: u32, ipa_bits: u32) -> Result<VmHandle, Error> {
    let mut vms = VMS.lock();
    // A guest's IPA space cannot be larger than the CPU's (32- or 36-bit PARange only).
    let record = record::lock().ok_or(Error::Denied)?;
    if !record.config().allows_vm_ipa_bits(ipa_bits) {
        return Err(Error::InvalidParameter);
    }
    drop(record);
    let (index, slot) = vms
        .slots
        .iter_mut()
        .enumerate()
        .find(|(_, s)| !s.live && s.generation != 0)
        .ok_or(Error::Busy)?;
    let handle = VmHandle::new(index as u16, slot.generation).ok_or(Error::Busy)?;
    // docs/abi.md 4.3 row 6: a boot that handed unconfined DMA masters to the host cannot
    // keep any guest's memory private.
    if crate::unconfined_dma::protected_vms_disabled() {
        return Err(Error::Denied);
    }
    *slot = VmSlot {
        live: true,
        generation: slot.generation,
        handle,
        nr_vcpus,
        ipa_bits,
        ..EMPTY_SLOT
    };
    Ok(handle)
}

pub fn vm_topup(handle: VmHandle, pfn: u64, nr: u32) -> Result<(), Error> {
    let mut vms = lock_vm(handle);
    let (_, slot) = vms.find(handle)?;
    let mut record = record::lock().ok_or(Error::Denied)?;
    let (pfn, nr) = (pfn as usize, nr as usize);
    match slot.record_vm {
        Some(vm) => record.vm_topup(vm, pfn, nr, &mut Tlb).map_err(pfn_error),
        None => {
            let vm = record.vm_create(pfn, nr, &mut Tlb).map_err(pfn_error)?;
            slot.record_vm = Some(vm);
            Ok(())
        }
    }
}

/// Whether every page `pfn..pfn+nr` is the host's alone (the check VM_DONATE makes before
/// it can say NO_MEMORY for a VM that has no pool yet).
fn all_host_owned(record: &record::Record, pfn: u64, nr: u32) -> bool {
    (0..u64::from(nr)).all(|i| {
        record.page_state(((pfn + i) << 12) as usize) == Some(PageState::Owned(Owner::Host))
    })
}

/// VM_DONATE. (1.0's HOST_SHARE_GUEST, which lent host pages into a guest, is retired:
/// docs/abi.md 4.6.)
#[inline(never)] // checked by name in the built payload (payload_maintenance_sequences)
pub fn vm_donate(handle: VmHandle, pfn: u64, gfn: u64, nr: u32) -> Result<(), Error> {
    let mut vms = lock_vm(handle);
    let (_, slot) = vms.find(handle)?;
    check_gfn_range(gfn, nr, slot.ipa_bits)?;
    // An IPA the guest registered as MMIO never gets memory behind the guest's back.
    if slot.mmio.any_in(gfn, u64::from(nr)) {
        return Err(Error::Denied);
    }
    let mut record = record::lock().ok_or(Error::Denied)?;
    let Some(vm) = slot.record_vm else {
        // No pool yet: every IPA is unmapped, so only the pages' states can refuse first.
        return Err(if all_host_owned(&record, pfn, nr) {
            Error::NoMemory
        } else {
            Error::Denied
        });
    };
    let (pfn, gfn, nr) = (pfn as usize, gfn as usize, nr as usize);
    let fwb = record.config().guest_fwb;
    // Before launch the host loads the guest's image; after it, a guest only gets fresh
    // memory, zeroed between leaving the host and entering the guest (docs/abi.md 4.5).
    if slot.launched {
        // Everything that can refuse, NO_MEMORY included, is decided by the begin, before
        // anything changes. Then the pages are in nobody's reach (`ZeroingForGuest`: in no
        // host stage-2 or DMA view, in the guest's with no access) while this CPU zeroes
        // them with both locks released, and the finish gives the guest access. Other calls
        // on the VM may run meanwhile: the begin already holds the guest frames (another
        // donation to them is refused as it would be after this one), and the record
        // refuses the VM's teardown (`Busy`) until the finish, so a VM_DESTROY waits for
        // this zeroing (one call's, at most 512 pages) and the VM id stays this VM's.
        record
            .host_donate_guest_begin(vm, pfn, gfn, nr, &mut Tlb)
            .map_err(donate_error)?;
        drop(record);
        drop(vms);
        // Every line of every page is written here (DC ZVA, or plain stores where it is
        // prohibited, takes each line from whichever cache held it, dirty host data
        // included) and then cleaned to PoC: no line the
        // host left can outlive this, so unlike the image path below no separate clean and
        // invalidate is needed, with or without FEAT_S2FWB.
        for i in 0..nr {
            Sanitizer.zero_and_clean((pfn + i) << 12);
        }
        // (`lock` is `None` only before boot's `init`; the begin above had the record.)
        let mut record = record::lock().ok_or(Error::Denied)?;
        return record
            .host_donate_guest_finish(vm, pfn, gfn, nr, &mut Tlb)
            .map_err(donate_error);
    }
    record
        .host_donate_guest(vm, pfn, gfn, nr, &mut Tlb)
        .map_err(donate_error)?;
    // The host has lost the pages: no line of theirs may outlive the donation in a way the
    // guest could observe. With FEAT_S2FWB the guest's stage 2 forces Write-Back, so every
    // guest access goes through the caches and sees the host's dirty lines as the pages'
    // contents (the image), never stale DRAM under them; and the architecture requires
    // CLIDR_EL1.{LoUU, LoUIS} = 0 with FEAT_S2FWB, so instruction fetch needs no clean
    // either. pKVM skips this on the same condition (`stage2_has_fwb`).
    if !fwb {
        crate::cache::clean_invalidate_to_poc(pfn << 12, nr << 12);
    }
    Ok(())
}

fn donate_error(e: OwnershipError) -> Error {
    match e {
        OwnershipError::Range => Error::Denied,
        other => ipa_error(other),
    }
}

pub fn vcpu_create(handle: VmHandle, vcpu: u32, entry_ipa: u64, x0: u64) -> Result<(), Error> {
    let mut vms = lock_vm(handle);
    let (index, slot) = vms.find(handle)?;
    check_ipa(entry_ipa, slot.ipa_bits)?;
    if vcpu >= slot.nr_vcpus {
        return Err(Error::NotFound);
    }
    let launched = slot.launched;
    let v = &mut slot.vcpus[vcpu as usize];
    if v.created {
        return Err(Error::Busy);
    }
    if launched {
        return Err(Error::Denied);
    }
    // Only vCPU 0 starts where the host says (decode made entry_ipa = x0 = 0 for the
    // others); the others wait, powered off, for the guest's CPU_ON.
    // SAFETY: the vCPU does not exist yet, so no CPU runs it; the VM-table lock is held.
    unsafe { (*vcpu_ptr(index, vcpu as usize)).reset(entry_ipa, x0, vcpu) };
    v.created = true;
    v.on = vcpu == 0;
    Ok(())
}

/// VM_DESTROY. The VM is marked dying under the VM-table lock (every later call naming it
/// waits, `lock_vm`), then its pages move to RECLAIMABLE in steps of at most 512, each step
/// one hold of the memory lock with the TLB and DMA invalidation for its pages (I6), and the
/// last step frees the record's slot and VMID; only then is the table slot freed and the
/// call, for everyone else, done.
pub fn vm_destroy(handle: VmHandle) -> Result<(), Error> {
    let (index, record_vm) = {
        let mut vms = lock_vm(handle);
        let (index, slot) = vms.find(handle)?;
        if slot.vcpus.iter().any(|v| v.running) {
            return Err(Error::Busy);
        }
        slot.dying = true;
        let record_vm = slot.record_vm;
        vms.dying += 1;
        (index, record_vm)
    };
    let result = match record_vm {
        Some(vm) => match begin_teardown(vm) {
            // Nothing changed (cannot happen: no vCPU runs, see `begin_teardown`): the VM
            // lives on.
            Err(e) => {
                let mut vms = VMS.lock();
                vms.slots[index].dying = false;
                vms.dying -= 1;
                drop(vms);
                TEARDOWNS_FINISHED.fetch_add(1, Ordering::AcqRel);
                return Err(e);
            }
            Ok(()) => finish_teardown(vm),
        },
        None => Ok(()),
    };
    let mut vms = VMS.lock();
    let slot = &mut vms.slots[index];
    let next = slot
        .generation
        .checked_add(1)
        .filter(|&g| VmHandle::new(0, g).is_some());
    *slot = VmSlot {
        generation: next.unwrap_or(0),
        ..EMPTY_SLOT
    };
    vms.dying -= 1;
    drop(vms);
    TEARDOWNS_FINISHED.fetch_add(1, Ordering::AcqRel);
    result
}

/// Marks record VM `vm` dying. Waits out donations to it still zeroing outside the locks
/// (at most one call's 512 pages on each other CPU). `Busy` for a loaded stage 2 cannot
/// last: the VM-table lock said no vCPU runs, and a vCPU's stage 2 is marked inactive
/// before its `running` flag is cleared.
fn begin_teardown(vm: VmId) -> Result<(), Error> {
    loop {
        let mut record = record::lock().ok_or(Error::Busy)?;
        match record.vm_teardown_begin(vm) {
            Ok(()) => return Ok(()),
            Err(OwnershipError::Busy) => {
                drop(record);
                // Not the record again at once: let the donation's finish have it.
                for _ in 0..64 {
                    core::hint::spin_loop();
                }
            }
            Err(e) => return Err(ipa_error(e)),
        }
    }
}

/// Moves every page of dying record VM `vm` to RECLAIMABLE and frees its slot, one bounded
/// step (`stage2::TEARDOWN_PAGES_PER_STEP` pages) per hold of the memory lock, with no lock
/// held between steps.
fn finish_teardown(vm: VmId) -> Result<(), Error> {
    loop {
        let mut record = record::lock().ok_or(Error::Busy)?;
        if record
            .vm_teardown_step(vm, &mut Tlb)
            .map_err(ipa_error)?
            .finished
        {
            return Ok(());
        }
        drop(record);
        record::let_waiters_in();
    }
}

pub fn vm_reclaim(pfn: u64, nr: u32) -> Result<(), Error> {
    // The zeroing happens after the lock is released (`DeferredSanitizer`).
    let mut zeroing = DeferredSanitizer::new();
    loop {
        let mut record = record::lock().ok_or(Error::Denied)?;
        match record.host_reclaim(pfn as usize, nr as usize, &mut zeroing) {
            // A page of a VM whose VM_DESTROY is under way on another CPU: wait for the
            // teardown to finish (no lock held), so the destroy is one change here too.
            // (Read under the lock: the teardown's last step needs it.)
            Err(OwnershipError::Busy) => {
                let teardowns = teardowns_finished();
                drop(record);
                wait_for_a_teardown_after(teardowns);
            }
            other => break other.map_err(pfn_error)?,
        }
    }
    zeroing.finish().map_err(pfn_error)
}

pub fn host_share_hyp(pfn: u64, share: bool) -> Result<(), Error> {
    let mut record = record::lock().ok_or(Error::Denied)?;
    let result = if share {
        record.host_share_hyp(pfn as usize, 1)
    } else {
        record.host_unshare_hyp(pfn as usize, 1)
    };
    result.map_err(pfn_error)
}

/// What `vcpu_run` needs to know about the VM while the vCPU runs.
pub struct RunTarget {
    pub slot: usize,
    pub vcpu: usize,
    pub record_vm: Option<VmId>,
    pub ipa_bits: u32,
}

/// VCPU_RUN: rows 3-6 of the document, then the run itself (`vcpu::run`).
pub fn vcpu_run(handle: VmHandle, vcpu: u32, completion: u64) -> Result<Exit, Error> {
    let target = {
        let mut vms = lock_vm(handle);
        let (index, slot) = vms.find(handle)?;
        if vcpu >= slot.nr_vcpus || !slot.vcpus[vcpu as usize].created {
            return Err(Error::NotFound);
        }
        let stopped = slot.stopped;
        let v = &mut slot.vcpus[vcpu as usize];
        if v.running {
            return Err(Error::Busy);
        }
        // SAFETY: not running, and the VM-table lock is held: nobody else touches it.
        let state = unsafe { &*vcpu_ptr(index, vcpu as usize) };
        if completion != 0 && !state.accepts_completion() {
            return Err(Error::InvalidParameter);
        }
        if let Some(exit) = stopped {
            return Ok(exit);
        }
        if !v.on {
            return Ok(Exit::VcpuOff);
        }
        v.running = true;
        // Without a stage-2 (never topped up) the run ends before it enters the guest.
        slot.launched |= slot.record_vm.is_some();
        RunTarget {
            slot: index,
            vcpu: vcpu as usize,
            record_vm: slot.record_vm,
            ipa_bits: slot.ipa_bits,
        }
    };
    // SAFETY: this CPU set `running` above; until it clears it, it alone uses this vCPU.
    let state = unsafe { &mut *vcpu_ptr(target.slot, target.vcpu) };
    let exit = vcpu::run(state, &target, completion);
    let mut vms = VMS.lock();
    let slot = &mut vms.slots[target.slot];
    slot.vcpus[target.vcpu].running = false;
    match exit {
        Exit::SystemOff | Exit::SystemReset => slot.stopped = Some(exit),
        // The guest's CPU_OFF: powered off in the same critical section that ends the
        // run, so a CPU_ON that sees it off also sees it not running.
        Exit::VcpuOff => slot.vcpus[target.vcpu].on = false,
        _ => {}
    }
    Ok(exit)
}

/// Before a system reset or power-off (`system_reset`): every vCPU context goes back to its
/// initial, register-free state and is cleaned to the point of coherency, so that no guest
/// register survives in RAM the next boot can read.
pub fn wipe_all_vcpus_for_reset() {
    for slot in 0..MAX_VMS {
        for vcpu in 0..MAX_VCPUS_PER_VM {
            // SAFETY: the address is in bounds. No CPU uses this context any more: the
            // caller holds the memory lock for good and set `system_reset`'s flag, so every
            // CPU that ran a guest has wiped its own context and stopped, or is blocked
            // forever on that lock before touching it again. The volatile write keeps the
            // store from being dropped as dead.
            unsafe { core::ptr::write_volatile(vcpu_ptr(slot, vcpu), Vcpu::new()) };
        }
    }
    crate::cache::clean_to_poc(
        vcpu_ptr(0, 0) as usize,
        core::mem::size_of::<[[Vcpu; MAX_VCPUS_PER_VM]; MAX_VMS]>(),
    );
}

/// The guest's PSCI CPU_ON, made by a vCPU of the VM in table slot `slot` (which cannot
/// be destroyed meanwhile: that vCPU is running). Errors and their order: docs/abi.md 5.5.
pub fn guest_cpu_on(
    slot: usize,
    target_cpu: u64,
    entry: u64,
    context_id: u64,
) -> Result<u32, PsciError> {
    let index = psci::vcpu_of_mpidr(target_cpu)?;
    let mut vms = VMS.lock();
    let vm = vms
        .slots
        .get_mut(slot)
        .ok_or(PsciError::InvalidParameters)?;
    if index >= vm.nr_vcpus || !vm.vcpus[index as usize].created {
        return Err(PsciError::InvalidParameters);
    }
    if !entry.is_multiple_of(4) || check_ipa(entry, vm.ipa_bits).is_err() {
        return Err(PsciError::InvalidAddress);
    }
    let target = &mut vm.vcpus[index as usize];
    if target.on {
        return Err(PsciError::AlreadyOn);
    }
    // PSCI: the target starts at `entry` with x0 = `context_id`, in the reset state of
    // VCPU_CREATE (EL1h, DAIF masked, MMU and caches off).
    // SAFETY: the target is off, so no CPU runs it (`running` is cleared in the same
    // critical section that powers a vCPU off), and the VM-table lock is held.
    unsafe { (*vcpu_ptr(slot, index as usize)).reset(entry, context_id, index) };
    target.on = true;
    Ok(index)
}

/// MMIO_GUARD_MAP (`map`) or MMIO_GUARD_UNMAP of page `ipa` by a vCPU of the VM in table
/// slot `slot` (docs/abi.md 5.6; the decoder checked MBZ, alignment and 2^40).
pub fn guest_mmio_guard(slot: usize, vm: VmId, ipa: u64, map: bool) -> Result<(), Error> {
    let mut vms = VMS.lock();
    let guest = vms.slots.get_mut(slot).ok_or(Error::NotFound)?;
    check_ipa_range(ipa, 1, guest.ipa_bits)?;
    let gfn = ipa >> 12;
    if !map {
        return if guest.mmio.remove(gfn) {
            Ok(())
        } else {
            Err(Error::NotFound)
        };
    }
    let mapped = record::lock()
        .and_then(|r| {
            r.guest_stage2(vm)
                .map(|t| t.translate(ipa as usize).is_some())
        })
        .unwrap_or(true);
    if mapped {
        return Err(Error::Denied);
    }
    guest.mmio.insert(gfn).map_err(|_| Error::Busy)
}

/// IPA_STATE of page `ipa` for a vCPU of the VM in table slot `slot` (docs/abi.md 5.7).
pub fn guest_ipa_state(slot: usize, vm: VmId, ipa: u64) -> Result<IpaState, Error> {
    let vms = VMS.lock();
    let guest = vms.slots.get(slot).ok_or(Error::NotFound)?;
    check_ipa_range(ipa, 1, guest.ipa_bits)?;
    let record = record::lock().ok_or(Error::NotFound)?;
    let leaf = record
        .guest_stage2(vm)
        .and_then(|t| t.translate(ipa as usize));
    Ok(match leaf.and_then(|leaf| record.page_state(leaf.pa)) {
        Some(PageState::SharedWithHost(_)) => IpaState::Shared,
        // A mapped page is the guest's (I2); only a shared one is also the host's.
        Some(_) => IpaState::Owned,
        None if guest.mmio.contains(ipa >> 12) => IpaState::Mmio,
        None => IpaState::Unmapped,
    })
}

/// Whether the guest of the VM in table slot `slot` registered guest frame `gfn` as MMIO.
pub fn guest_mmio_registered(slot: usize, gfn: u64) -> bool {
    VMS.lock()
        .slots
        .get(slot)
        .is_some_and(|guest| guest.mmio.contains(gfn))
}

/// The guest's PSCI AFFINITY_INFO for level 0: whether the vCPU `target_affinity` names
/// is on.
pub fn guest_affinity_info(slot: usize, target_affinity: u64) -> Result<bool, PsciError> {
    let index = psci::vcpu_of_mpidr(target_affinity)? as usize;
    let vms = VMS.lock();
    let vm = vms.slots.get(slot).ok_or(PsciError::InvalidParameters)?;
    match vm.vcpus.get(index) {
        Some(v) if index < vm.nr_vcpus as usize && v.created => Ok(v.on),
        _ => Err(PsciError::InvalidParameters),
    }
}
