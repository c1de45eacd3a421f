//! An executable model of the hypercall ABI, written from `docs/abi.md` alone: plain data
//! (page states per pfn, VMs, vCPUs, handles), no page tables, no guest code.
//!
//! Every call follows its error table in the document's order (section 1.6): the first
//! row that applies gives the error and nothing changes (1.7); otherwise the effect of
//! section 7's tables is applied to every page of the range.
//!
//! What the model cannot know it says so rather than guess:
//! - a successful VCPU_RUN of a live vCPU runs guest code ([`HostAnswer::RunsGuest`]);
//!   the backend asks [`Model::guest_hvc`] for the guest's calls instead;
//! - whether a mapping call finds enough pool memory: certain only for an empty pool
//!   (NO_MEMORY: the stage-2 tables come only from the pool, 7.3) and for a pool with room
//!   for the root table plus `MAX_POOL_PAGES_PER_CALL` per mapping call made so far and
//!   this one; in between the answer is [`HostAnswer::Unmodelled`];
//! - what the firmware answers a guest's workaround or TRNG call (5.8): the model gives
//!   NOT_SUPPORTED, which each of them may give, and the cases judge the answer's form
//!   only (`outcome::Ret::Firmware`).
//!
//! The model checks arguments with its own code, from the tables, not with `hvc-abi`'s
//! decoders, so that the unit tests can hold one against the other.

mod guest_calls;
mod host_calls;
pub mod page_map;

use crate::states::{Content, IpaState, PageState, marker};
use hvc_abi::limits::{MAX_MMIO_GUARD_PAGES, MAX_VCPUS, MAX_VMS};
use hvc_abi::{Error, Exit};
use page_map::{GuestKind, Owner, PageMap, Record};

/// First handle the model issues; each VM_CREATE takes the next one, so none repeats.
const FIRST_HANDLE: u64 = 0x6D0D_E100_0001;
/// What the model answers for the first word of a page whose content it does not know.
pub const UNKNOWN_WORD: u64 = 0x0DD0_0DD0_0DD0_0DD0;

/// Pages `start..end`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PfnRange {
    pub start: u64,
    pub end: u64,
}

impl PfnRange {
    pub const fn contains(&self, pfn: u64) -> bool {
        self.start <= pfn && pfn < self.end
    }
}

/// Most ranges of each kind a [`World`] lists.
pub const MAX_WORLD_RANGES: usize = 8;

/// The platform: where RAM, the payload's carve-out and devices are. Every page starts
/// in the state this gives it (HYP in a carve-out, else HOST in RAM, else MMIO in a
/// device, else NO_RAM).
#[derive(Clone, Copy, Debug, Default)]
pub struct World {
    pub ram: [PfnRange; MAX_WORLD_RANGES],
    pub hyp: [PfnRange; MAX_WORLD_RANGES],
    pub mmio: [PfnRange; MAX_WORLD_RANGES],
    /// The payload was booted with `/chosen/el2,unconfined-dma` (4.3 row 6).
    pub unconfined_dma: bool,
}

impl World {
    /// The state a page has before any call changes it.
    pub fn default_state(&self, pfn: u64) -> PageState {
        let within = |ranges: &[PfnRange]| ranges.iter().any(|r| r.contains(pfn));
        if within(&self.hyp) {
            PageState::Hyp
        } else if within(&self.ram) {
            PageState::Host
        } else if within(&self.mmio) {
            PageState::Mmio
        } else {
            PageState::NoRam
        }
    }
}

/// What completed a vCPU's previous exit, for VCPU_RUN's `completion` rule (4.9 row 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LastExit {
    /// Never run.
    None,
    /// An MMIO read: `completion` is the data.
    MmioRead,
    /// A GUEST_HVC: `completion` is the guest's x0.
    GuestHvc,
    /// Any other exit: `completion` must be 0.
    Other,
}

#[derive(Clone, Copy, Debug)]
struct Vcpu {
    created: bool,
    running: bool,
    /// Powered on (4.8: vCPU 0 from its creation, the others only by the guest's CPU_ON).
    on: bool,
    last_exit: LastExit,
}

const NO_VCPU: Vcpu = Vcpu {
    created: false,
    running: false,
    on: false,
    last_exit: LastExit::None,
};

#[derive(Clone, Copy, Debug)]
struct Vm {
    handle: u64,
    nr_vcpus: u32,
    ipa_bits: u32,
    vcpus: [Vcpu; MAX_VCPUS as usize],
    /// Pages topped up so far.
    pool_pages: u64,
    /// Successful VM_DONATE calls so far (each may take up to
    /// MAX_POOL_PAGES_PER_CALL pool pages).
    mapping_calls: u64,
    /// The exit that stopped the VM (SYSTEM_OFF or SYSTEM_RESET).
    stopped: Option<Exit>,
    /// A vCPU has entered the guest: VCPU_CREATE is DENIED (4.8).
    launched: bool,
    /// Guest frames the guest registered as MMIO (5.6).
    mmio: [Option<u64>; MAX_MMIO_GUARD_PAGES as usize],
}

/// What the model answers a host HVC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostAnswer {
    /// x0..x3.
    Regs([u64; 4]),
    /// VCPU_RUN passed every check and would run guest code.
    RunsGuest,
    /// Not a call of this ABI's owner (PSCI, SMCCC architecture calls): outside the ABI.
    OutsideAbi,
    /// The model cannot tell (see the module documentation).
    Unmodelled(&'static str),
}

/// What the model answers a guest HVC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestAnswer {
    /// The exit the call causes before it returns (or instead of returning).
    pub exit: Option<Exit>,
    /// The guest's x0..x3 afterwards; `None` if it does not return (the VM stopped, or
    /// the vCPU powered off).
    pub ret: Option<[u64; 4]>,
}

/// How a VCPU_RUN with completion 0 would go, for the backend's guest operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunCheck {
    /// It runs the guest.
    Runs,
    /// The VM is stopped: it returns this exit at once.
    Stopped(Exit),
}

/// The ABI as data.
#[derive(Clone, Debug)]
pub struct Model {
    world: World,
    pages: PageMap,
    vms: [Option<Vm>; MAX_VMS as usize],
    next_handle: u64,
}

/// A call's result inside the model: the registers, or why the model cannot answer.
type Answer = Result<[u64; 4], Unmodelled>;

/// The model cannot follow: capacity of its page map, or pool memory it cannot predict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Unmodelled(&'static str);

impl From<page_map::Full> for Unmodelled {
    fn from(_: page_map::Full) -> Self {
        Unmodelled("the model's page map is full")
    }
}

/// x0 = 0, results in x1..x3.
const fn ok(x1: u64, x2: u64, x3: u64) -> Answer {
    Ok([0, x1, x2, x3])
}

/// x0 = the error, x1..x3 = 0.
const fn err(error: Error) -> Answer {
    Ok([error.as_x0(), 0, 0, 0])
}

impl Model {
    pub fn new(world: World) -> Self {
        Self {
            world,
            pages: PageMap::new(),
            vms: [None; MAX_VMS as usize],
            next_handle: FIRST_HANDLE,
        }
    }

    /// The slot of the live VM with this handle.
    fn vm_slot(&self, handle: u64) -> Option<usize> {
        self.vms
            .iter()
            .position(|vm| vm.is_some_and(|vm| vm.handle == handle))
    }

    fn vm(&self, slot: usize) -> &Vm {
        // Slots come from `vm_slot`, which only returns occupied ones.
        self.vms[slot].as_ref().expect("occupied VM slot")
    }

    fn vm_mut(&mut self, slot: usize) -> &mut Vm {
        self.vms[slot].as_mut().expect("occupied VM slot")
    }

    /// The record of page `pfn`: tracked, or its default.
    fn record(&self, pfn: u64) -> Option<Record> {
        self.pages.get(pfn)
    }

    /// The state of page `pfn` (section 7.1).
    pub fn page_state(&self, pfn: u64) -> PageState {
        match self.record(pfn).map(|r| r.owner) {
            None => self.world.default_state(pfn),
            Some(Owner::Host) => PageState::Host,
            Some(Owner::SharedHyp) => PageState::SharedHyp,
            Some(Owner::Guest { kind, .. }) => match kind {
                GuestKind::Owned => PageState::GuestOwned,
                GuestKind::Shared => PageState::GuestShared,
            },
            Some(Owner::Pool { .. }) => PageState::VmPool,
            Some(Owner::Reclaimable) => PageState::Reclaimable,
        }
    }

    fn content(&self, pfn: u64) -> Content {
        self.record(pfn).map_or(Content::Other, |r| r.content)
    }

    /// The page mapped at `gfn` of VM slot `slot`, with how the guest holds it.
    fn mapping(&self, slot: usize, gfn: u64) -> Option<(u64, GuestKind)> {
        self.pages
            .iter()
            .find_map(|(start, nr, record)| match record.owner {
                Owner::Guest {
                    vm,
                    gfn: first,
                    kind,
                } if vm == slot && first <= gfn && gfn - first < nr => {
                    Some((start + gfn - first, kind))
                }
                _ => None,
            })
    }

    /// The state of `gfn` in the live VM `handle` (section 7.2); `None` if no live VM has
    /// that handle.
    pub fn ipa_state(&self, handle: u64, gfn: u64) -> Option<IpaState> {
        let slot = self.vm_slot(handle)?;
        Some(match self.mapping(slot, gfn) {
            None => IpaState::Unmapped,
            Some((_, GuestKind::Owned)) => IpaState::GuestOwned,
            Some((_, GuestKind::Shared)) => IpaState::GuestShared,
        })
    }

    /// How many VMs exist.
    pub fn vm_count(&self) -> usize {
        self.vms.iter().flatten().count()
    }

    /// A host read of page `pfn`'s first word: `Some(value)` if the host may access the
    /// page (table 7.1), `None` if the access would be aborted. MMIO pages are read as
    /// the platform maps them (`Some`).
    pub fn host_read(&self, pfn: u64) -> Option<u64> {
        let state = self.page_state(pfn);
        if state.host_access() == Some(false) {
            return None;
        }
        Some(match self.content(pfn) {
            Content::Marker => marker(pfn),
            Content::Zero => 0,
            Content::Other => UNKNOWN_WORD,
        })
    }

    /// The host writes the first word of a page it may access: the model remembers
    /// whether it is the page's marker. Returns false if the write would be aborted.
    pub fn host_write(&mut self, pfn: u64, value: u64) -> bool {
        let state = self.page_state(pfn);
        if state.host_access() != Some(true) {
            return false;
        }
        let content = Content::of(value, pfn);
        let owner = match self.record(pfn) {
            Some(record) => record.owner,
            None => Owner::Host,
        };
        self.pages.set(pfn, 1, Record { owner, content }).is_ok()
    }

    /// The backend is done with host pages `pfn..pfn + nr`: pages that are HOST again are
    /// forgotten (their default state is HOST), so the page map stays small.
    pub fn forget_host_pages(&mut self, pfn: u64, nr: u64) {
        for page in pfn..pfn.saturating_add(nr) {
            if self.record(page).is_some_and(|r| r.owner == Owner::Host) {
                // Removing never needs a new entry when whole runs go; a split that
                // does not fit simply leaves the record in place.
                let _ = self.pages.remove(page, 1);
            }
        }
    }

    /// Whether a VCPU_RUN(handle, vcpu, 0) would run the guest, and if not, why.
    pub fn run_check(&self, handle: u64, vcpu: u32) -> Result<RunCheck, Error> {
        let regs = [
            hvc_abi::FunctionId::VCPU_RUN.to_x0(),
            handle,
            vcpu.into(),
            0,
            0,
            0,
            0,
            0,
        ];
        match self.vcpu_run_checks(&regs) {
            Err(error) => Err(error),
            Ok((slot, vcpu)) => Ok(match self.vm(slot).stopped {
                Some(exit) => RunCheck::Stopped(exit),
                None if !self.vm(slot).vcpus[vcpu].on => RunCheck::Stopped(Exit::VcpuOff),
                None => RunCheck::Runs,
            }),
        }
    }

    /// Whether vCPU `vcpu` of VM `handle` has not run since it was powered on (created, or
    /// started by CPU_ON): its next run starts the guest at its entry point.
    pub fn vcpu_fresh(&self, handle: u64, vcpu: u32) -> bool {
        self.vm_slot(handle).is_some_and(|slot| {
            self.vm(slot)
                .vcpus
                .get(vcpu as usize)
                .is_some_and(|state| state.on && state.last_exit == LastExit::None)
        })
    }

    /// Records how vCPU `vcpu`'s last exit was completed (the backend's guest runs).
    pub fn note_exit(&mut self, handle: u64, vcpu: u32, last_exit: LastExit) {
        if let Some(slot) = self.vm_slot(handle) {
            // The guest ran: the VM is launched (4.8).
            self.vm_mut(slot).launched = true;
            if let Some(state) = self.vm_mut(slot).vcpus.get_mut(vcpu as usize) {
                state.last_exit = last_exit;
            }
        }
    }

    /// Marks vCPU `vcpu` as running on another CPU (inside VCPU_RUN) or not.
    pub fn set_running(&mut self, handle: u64, vcpu: u32, running: bool) -> bool {
        let Some(slot) = self.vm_slot(handle) else {
            return false;
        };
        let vm = self.vm_mut(slot);
        vm.launched |= running;
        match vm.vcpus.get_mut(vcpu as usize) {
            Some(state) if state.created => {
                state.running = running;
                true
            }
            _ => false,
        }
    }

    /// A 64-bit load by the guest of VM `handle` at `ipa`: the word there if the IPA has a
    /// page, `None` if it has none (an MMIO exit).
    pub fn guest_load(&self, handle: u64, ipa: u64) -> Option<u64> {
        let slot = self.vm_slot(handle)?;
        let (pfn, _) = self.mapping(slot, ipa >> 12)?;
        let offset_in_page = ipa & 0xFFF;
        Some(match (offset_in_page, self.content(pfn)) {
            (0, Content::Marker) => marker(pfn),
            (0, Content::Zero) => 0,
            _ => UNKNOWN_WORD,
        })
    }
}

/// Every argument register from `first` up to x7 must be zero (section 1.3).
fn mbz(regs: &[u64; 8], first: usize) -> bool {
    regs[first..].iter().all(|&r| r == 0)
}

/// `pfn..pfn + nr` lies below 2^36 without wrapping (1.4).
fn pfn_range_ok(pfn: u64, nr: u64) -> bool {
    matches!(pfn.checked_add(nr), Some(end) if end <= 1 << 36)
}

/// `gfn..gfn + nr` lies below 2^(ipa_bits - 12) without wrapping (1.4).
fn gfn_range_ok(gfn: u64, nr: u64, ipa_bits: u32) -> bool {
    matches!(gfn.checked_add(nr), Some(end) if end <= 1 << (ipa_bits - 12))
}

#[cfg(test)]
mod tests;
