//! Protected VMs: the VM table and the host calls that create, feed, run and destroy VMs
//! (docs/abi.md section 4). Every error row of the document is checked here in the
//! document's order; the stateless rows were already checked by `hvc_abi::HostCall::decode`.
//!
//! Lock order: `VMS` (this table) first, then the memory lock (`record`). A vCPU's state is
//! touched only by the CPU that set its `running` flag (under `VMS`), so no lock is held
//! while a guest runs.

use crate::record::{self, MAX_VMS};
use crate::tlb::{Sanitizer, Tlb};
use crate::vcpu::{self, Vcpu};
use hvc_abi::limits::{MAX_VCPUS, check_gfn_range, check_ipa};
use hvc_abi::{Error, Exit, VmHandle};
use spin::Mutex;
use stage2::{Owner, OwnershipError, PageState, VmId};

const MAX_VCPUS_PER_VM: usize = MAX_VCPUS as usize;

#[derive(Clone, Copy)]
struct VcpuSlot {
    created: bool,
    running: bool,
}

#[derive(Clone, Copy)]
struct VmSlot {
    live: bool,
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
    vcpus: [VcpuSlot; MAX_VCPUS_PER_VM],
}

const EMPTY_SLOT: VmSlot = VmSlot {
    live: false,
    generation: 1,
    handle: VmHandle(0),
    nr_vcpus: 0,
    ipa_bits: 0,
    record_vm: None,
    stopped: None,
    vcpus: [VcpuSlot {
        created: false,
        running: false,
    }; MAX_VCPUS_PER_VM],
};

struct VmTable {
    slots: [VmSlot; MAX_VMS],
}

static VMS: Mutex<VmTable> = Mutex::new(VmTable {
    slots: [EMPTY_SLOT; MAX_VMS],
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
    fn find(&mut self, handle: VmHandle) -> Result<(usize, &mut VmSlot), Error> {
        let (slot, _) = handle.parts().ok_or(Error::NotFound)?;
        let index = usize::from(slot);
        match self.slots.get_mut(index) {
            Some(s) if s.live && s.handle == handle => Ok((index, s)),
            _ => Err(Error::NotFound),
        }
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
    let mut vms = VMS.lock();
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

/// Whether every page `pfn..pfn+nr` is the host's alone (the check VM_DONATE and
/// HOST_SHARE_GUEST make before they can say NO_MEMORY for a VM that has no pool yet).
fn all_host_owned(record: &record::Record, pfn: u64, nr: u32) -> bool {
    (0..u64::from(nr)).all(|i| {
        record.page_state(((pfn + i) << 12) as usize) == Some(PageState::Owned(Owner::Host))
    })
}

/// VM_DONATE (`lend = false`) and HOST_SHARE_GUEST (`lend = true`).
pub fn host_give_guest(
    handle: VmHandle,
    pfn: u64,
    gfn: u64,
    nr: u32,
    lend: bool,
) -> Result<(), Error> {
    let mut vms = VMS.lock();
    let (_, slot) = vms.find(handle)?;
    check_gfn_range(gfn, nr, slot.ipa_bits)?;
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
    let result = if lend {
        record.host_share_guest(vm, pfn, gfn, nr)
    } else {
        record.host_donate_guest(vm, pfn, gfn, nr, &mut Tlb)
    };
    result.map_err(|e| match e {
        OwnershipError::Range => Error::Denied,
        other => ipa_error(other),
    })
}

pub fn host_unshare_guest(handle: VmHandle, gfn: u64, nr: u32) -> Result<(), Error> {
    let mut vms = VMS.lock();
    let (_, slot) = vms.find(handle)?;
    check_gfn_range(gfn, nr, slot.ipa_bits)?;
    let Some(vm) = slot.record_vm else {
        return Err(Error::NotFound);
    };
    let mut record = record::lock().ok_or(Error::NotFound)?;
    record
        .host_unshare_guest(vm, gfn as usize, nr as usize, &mut Tlb)
        .map_err(ipa_error)
}

pub fn vcpu_create(handle: VmHandle, vcpu: u32, entry_ipa: u64, x0: u64) -> Result<(), Error> {
    let mut vms = VMS.lock();
    let (index, slot) = vms.find(handle)?;
    check_ipa(entry_ipa, slot.ipa_bits)?;
    if vcpu >= slot.nr_vcpus {
        return Err(Error::NotFound);
    }
    let v = &mut slot.vcpus[vcpu as usize];
    if v.created {
        return Err(Error::Busy);
    }
    // SAFETY: the vCPU does not exist yet, so no CPU runs it; the VM-table lock is held.
    unsafe { (*vcpu_ptr(index, vcpu as usize)).reset(entry_ipa, x0, vcpu) };
    v.created = true;
    Ok(())
}

pub fn vm_destroy(handle: VmHandle) -> Result<(), Error> {
    let mut vms = VMS.lock();
    let (_, slot) = vms.find(handle)?;
    if slot.vcpus.iter().any(|v| v.running) {
        return Err(Error::Busy);
    }
    if let Some(vm) = slot.record_vm {
        let mut record = record::lock().ok_or(Error::Busy)?;
        record.vm_teardown(vm, &mut Tlb).map_err(ipa_error)?;
    }
    let next = slot
        .generation
        .checked_add(1)
        .filter(|&g| VmHandle::new(0, g).is_some());
    *slot = VmSlot {
        generation: next.unwrap_or(0),
        ..EMPTY_SLOT
    };
    Ok(())
}

pub fn vm_reclaim(pfn: u64, nr: u32) -> Result<(), Error> {
    let mut record = record::lock().ok_or(Error::Denied)?;
    record
        .host_reclaim(pfn as usize, nr as usize, &mut Sanitizer)
        .map_err(pfn_error)
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
        let mut vms = VMS.lock();
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
        v.running = true;
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
    if matches!(exit, Exit::SystemOff | Exit::SystemReset) {
        slot.stopped = Some(exit);
    }
    Ok(exit)
}
