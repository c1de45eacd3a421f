//! The states of a case's pages, guest frames and VMs as the document's tables give them,
//! followed step by step through setup and the call. This is how the generator knows
//! what to expect; it applies tables 7.1 and 7.2 (and 7.1's VM_DESTROY paragraph) and
//! nothing else. The model (`crate::model`) is written independently, call by call; the
//! unit tests hold the two against each other.

use super::calls::Call;
use super::tables::{IpaCell, IpaColumn, PageCell, PageColumn, ipa_cell, page_cell};
use crate::plan::{Caller, List, PageRef, PowerOff, Step, Sym, SymCall, VmKind, VmRef};
use crate::states::{Content, IpaState, PageState};
use hvc_abi::Error;
use hvc_abi::limits::MAX_MMIO_GUARD_PAGES;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PageInfo {
    state: PageState,
    content: Content,
    /// The VM a guest or pool page belongs to.
    owner: Option<VmRef>,
}

/// What the document says about a VM of the case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmInfo {
    pub kind: VmKind,
    pub alive: bool,
    pub stopped: Option<PowerOff>,
    /// Bit n set: vCPU n exists.
    pub vcpus: u8,
    /// A vCPU has entered the guest (4.8: VCPU_CREATE is DENIED from then on).
    pub launched: bool,
    /// Bit n set: vCPU n is powered on (4.8: vCPU 0 from its creation, the others by
    /// the guest's CPU_ON, until their CPU_OFF).
    pub on: u8,
    /// MMIO-guard slots taken besides the channel's and the frames `DocState` lists
    /// (Step::FillGuard).
    pub guard_fill: u32,
}

impl VmInfo {
    /// Whether its vCPU 0 runs the conformance guest and can be asked to do things.
    pub fn guest_can_run(&self) -> bool {
        self.alive && self.kind != VmKind::Bare && self.stopped.is_none()
    }
}

/// The arguments of a call, by role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Args {
    pub caller: Caller,
    pub handle: Option<VmRef>,
    pub page: Option<PageRef>,
    pub gfn: Option<u64>,
    pub nr: u64,
    pub vcpu: u64,
    /// The vCPU that makes a guest call.
    pub caller_vcpu: u32,
}

impl Args {
    /// Reads the roles out of `call`'s registers.
    pub fn of(call: &SymCall, layout: &super::calls::Layout) -> Self {
        let reg = |index: Option<usize>| index.and_then(|i| call.regs.get(i).copied());
        let lit = |index: Option<usize>| match reg(index) {
            Some(Sym::Lit(value)) => Some(value),
            _ => None,
        };
        Self {
            caller: call.caller,
            handle: match reg(layout.handle) {
                Some(Sym::Handle(vm)) => Some(vm),
                _ => None,
            },
            page: match reg(layout.pfn) {
                Some(Sym::Pfn(page)) => Some(page),
                _ => None,
            },
            gfn: lit(layout.gfn).or(lit(layout.ipa).map(|ipa| ipa >> 12)),
            nr: lit(layout.nr).unwrap_or(1),
            vcpu: lit(layout.vcpu).unwrap_or(0),
            caller_vcpu: call.vcpu,
        }
    }

    /// The VM the call's IPAs belong to: the handle, or the calling guest's VM.
    pub fn vm(&self) -> Option<VmRef> {
        match self.caller {
            Caller::Guest(vm) => Some(vm),
            Caller::Host => self.handle,
        }
    }
}

/// Pages, mappings and VMs of one case, as the document's tables say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DocState {
    pages: [PageInfo; 7],
    maps: List<(VmRef, u64, PageRef), 8>,
    /// Frames the guests registered as MMIO (5.6), besides the channel's and the filler
    /// frames of Step::FillGuard.
    registered: List<(VmRef, u64), 4>,
    vms: [Option<VmInfo>; 5],
    /// MAX_VMS VMs exist (Step::FillVms).
    full: bool,
    /// The boot had `/chosen/el2,unconfined-dma` (Step::UnconfinedBoot).
    unconfined: bool,
    /// Something did not resolve (a range beyond the case's pages, a mapping list too
    /// small, a setup step the tables refuse): the case is broken. Unit tests check this
    /// is never set.
    pub broken: Option<&'static str>,
}

impl DocState {
    pub fn new() -> Self {
        let page = |state, content| PageInfo {
            state,
            content,
            owner: None,
        };
        let fresh = page(PageState::Host, Content::Marker);
        Self {
            pages: [
                fresh,
                fresh,
                fresh,
                fresh,
                page(PageState::Hyp, Content::Other),
                page(PageState::Mmio, Content::Other),
                page(PageState::NoRam, Content::Other),
            ],
            maps: List::new(),
            registered: List::new(),
            vms: [None; 5],
            full: false,
            unconfined: false,
            broken: None,
        }
    }

    pub fn page(&self, page: PageRef) -> (PageState, Content) {
        let info = self.pages[page.index()];
        (info.state, info.content)
    }

    pub fn vm(&self, vm: VmRef) -> Option<VmInfo> {
        self.vms[vm.index()]
    }

    /// The state of `gfn` in `vm` and the page mapped there.
    pub fn ipa(&self, vm: VmRef, gfn: u64) -> (IpaState, Option<PageRef>) {
        match self.maps.iter().find(|&(v, g, _)| v == vm && g == gfn) {
            Some((_, _, page)) => {
                let state = self.pages[page.index()].state.as_ipa_state();
                (state.unwrap_or(IpaState::Unmapped), Some(page))
            }
            None => (IpaState::Unmapped, None),
        }
    }

    /// Whether the guest of `vm` registered `gfn` as MMIO (5.6).
    pub fn registered(&self, vm: VmRef, gfn: u64) -> bool {
        self.registered.iter().any(|entry| entry == (vm, gfn))
    }

    /// Whether every MMIO-guard slot of `vm` is taken: the channel's, the filler frames
    /// and the listed ones (5.6).
    pub fn guard_full(&self, vm: VmRef) -> bool {
        self.guard_taken(vm) >= MAX_MMIO_GUARD_PAGES
    }

    /// The MMIO-guard slots of `vm` taken: the channel's, the filler frames, the listed.
    fn guard_taken(&self, vm: VmRef) -> u32 {
        let listed = self.registered.iter().filter(|&(v, _)| v == vm).count() as u32;
        let fill = self.vm(vm).map_or(0, |info| info.guard_fill);
        1 + fill + listed
    }

    /// Whether vCPU `vcpu` of `vm` is powered on.
    pub fn vcpu_on(&self, vm: VmRef, vcpu: u64) -> bool {
        self.vm(vm)
            .is_some_and(|info| vcpu < 8 && info.on & (1 << vcpu) != 0)
    }

    fn break_with(&mut self, why: &'static str) {
        self.broken.get_or_insert(why);
    }

    /// The page `i` pages into a range starting at `page`.
    fn page_at(&mut self, page: PageRef, i: u64) -> Option<PageRef> {
        let at = page.plus(i);
        if at.is_none() {
            self.break_with("a range goes beyond the case's pages");
        }
        at
    }

    /// Applies a setup step; a step the tables refuse marks the state broken.
    pub fn step(&mut self, step: Step) {
        let host = |handle, page, gfn| Args {
            caller: Caller::Host,
            handle,
            page,
            gfn,
            nr: 1,
            vcpu: 0,
            caller_vcpu: 0,
        };
        let (call, args) = match step {
            Step::CreateVm(vm, kind) => {
                self.vms[vm.index()] = Some(VmInfo {
                    kind,
                    alive: true,
                    stopped: None,
                    vcpus: if kind == VmKind::Bare { 0 } else { 1 },
                    // The spinner runs on another CPU during the call.
                    launched: kind == VmKind::Spinner,
                    on: if kind == VmKind::Bare { 0 } else { 1 },
                    guard_fill: 0,
                });
                return;
            }
            Step::FillGuard(vm, nr) => {
                self.launch(vm);
                if let Some(info) = self.vms[vm.index()].as_mut() {
                    info.guard_fill += nr;
                }
                if self.guard_taken(vm) > MAX_MMIO_GUARD_PAGES {
                    self.break_with("more MMIO-guard registrations than a VM has slots");
                }
                return;
            }
            Step::CpuOn(vm, vcpu) => {
                self.launch(vm);
                if let Some(info) = self.vms[vm.index()].as_mut() {
                    info.on |= 1 << vcpu;
                }
                return;
            }
            Step::CpuOff(vm, vcpu) => {
                if let Some(info) = self.vms[vm.index()].as_mut() {
                    info.on &= !(1 << vcpu);
                }
                return;
            }
            Step::CreateVcpu(vm, vcpu) => {
                if let Some(info) = self.vms[vm.index()].as_mut() {
                    info.vcpus |= 1 << vcpu;
                }
                return;
            }
            Step::Run(vm) => {
                self.launch(vm);
                return;
            }
            Step::Stop(vm, how) => {
                self.launch(vm);
                self.stop(vm, how);
                return;
            }
            Step::Destroy(vm) => {
                self.destroy(vm);
                return;
            }
            Step::FillVms => {
                self.full = true;
                return;
            }
            Step::UnconfinedBoot => {
                self.unconfined = true;
                return;
            }
            Step::ShareHyp(page) => (Call::HostShareHyp, host(None, Some(page), None)),
            Step::Topup(vm, page) => (Call::VmTopup, host(Some(vm), Some(page), None)),
            Step::Donate(vm, page, gfn) => (Call::VmDonate, host(Some(vm), Some(page), Some(gfn))),
            Step::GuestShare(vm, gfn) => (
                Call::MemShare,
                Args {
                    caller: Caller::Guest(vm),
                    ..host(None, None, Some(gfn))
                },
            ),
            Step::GuardMap(vm, gfn) => (
                Call::MmioGuardMap,
                Args {
                    caller: Caller::Guest(vm),
                    ..host(None, None, Some(gfn))
                },
            ),
        };
        if self.state_outcome(call, &args).is_err() {
            self.break_with("a setup step is refused by the tables");
        }
        self.apply(call, &args);
    }

    /// The outcome of the state phase of `call` (1.6 phases 4 and 5, and VM_CREATE's
    /// BUSY): `Err` with the error the tables give, `Ok` if every page and IPA accepts.
    pub fn state_outcome(&mut self, call: Call, args: &Args) -> Result<(), Error> {
        if let Some(column) = page_column(call) {
            let Some(first) = args.page else {
                return Ok(());
            };
            for i in 0..args.nr {
                let Some(page) = self.page_at(first, i) else {
                    return Ok(());
                };
                if page_cell(self.pages[page.index()].state, column) == PageCell::Denied {
                    return Err(Error::Denied);
                }
            }
        }
        if let Some(column) = ipa_column(call) {
            let (Some(vm), Some(gfn)) = (args.vm(), args.gfn) else {
                return Ok(());
            };
            let cells =
                (gfn..gfn.saturating_add(args.nr)).map(|g| ipa_cell(self.ipa(vm, g).0, column));
            // Phase 5: NOT_FOUND if any IPA has no page, then DENIED.
            let mut denied = false;
            for cell in cells {
                match cell {
                    IpaCell::NotFound => return Err(Error::NotFound),
                    IpaCell::Denied => denied = true,
                    _ => {}
                }
            }
            if denied {
                return Err(Error::Denied);
            }
        }
        // 4.5 row 8: VM_DONATE refuses an IPA the guest registered as MMIO.
        if call == Call::VmDonate
            && let (Some(vm), Some(gfn)) = (args.vm(), args.gfn)
            && (gfn..gfn.saturating_add(args.nr)).any(|g| self.registered(vm, g))
        {
            return Err(Error::Denied);
        }
        if call == Call::VmCreate && self.full {
            return Err(Error::Busy);
        }
        if call == Call::VmCreate && self.unconfined {
            return Err(Error::Denied);
        }
        // 5.6: MMIO_GUARD_MAP needs an IPA with no page (row 6), then a free slot unless
        // the page is registered already (row 7); MMIO_GUARD_UNMAP a registered page
        // (row 5). The suite's load probe registers and unregisters around its load only
        // a frame that was not registered, so it changes nothing.
        if let (Call::MmioGuardMap | Call::MmioGuardUnmap, Some(vm), Some(gfn)) =
            (call, args.vm(), args.gfn)
        {
            let unmapped = self.ipa(vm, gfn).0 == IpaState::Unmapped;
            let registered = self.registered(vm, gfn);
            return match call {
                Call::MmioGuardMap if !unmapped => Err(Error::Denied),
                Call::MmioGuardMap if !registered && self.guard_full(vm) => Err(Error::Busy),
                Call::MmioGuardMap => Ok(()),
                _ if registered => Ok(()),
                _ => Err(Error::NotFound),
            };
        }
        if call == Call::VcpuCreate
            && let Some(vm) = args.handle
            && self.vm(vm).is_some_and(|info| info.launched)
        {
            return Err(Error::Denied);
        }
        Ok(())
    }

    /// A vCPU of `vm` entered the guest.
    pub(crate) fn launch(&mut self, vm: VmRef) {
        if let Some(info) = self.vms[vm.index()].as_mut() {
            info.launched = true;
        }
    }

    /// Applies the effect of `call`, which succeeded.
    pub fn apply(&mut self, call: Call, args: &Args) {
        if let Caller::Guest(vm) = args.caller {
            self.launch(vm);
        }
        match call {
            Call::HostShareHyp
            | Call::HostUnshareHyp
            | Call::VmTopup
            | Call::VmDonate
            | Call::VmReclaim => self.apply_page_call(call, args),
            Call::MemShare | Call::MemUnshare | Call::MemRelinquish => {
                self.apply_ipa_call(call, args)
            }
            Call::VmCreate => {
                self.vms[VmRef::Created.index()] = Some(VmInfo {
                    kind: VmKind::Bare,
                    alive: true,
                    stopped: None,
                    vcpus: 0,
                    launched: false,
                    on: 0,
                    guard_fill: 0,
                });
            }
            Call::VcpuCreate => {
                if let Some(vm) = args.handle
                    && let Some(info) = self.vms[vm.index()].as_mut()
                {
                    info.vcpus |= 1 << args.vcpu;
                }
            }
            Call::VmDestroy => {
                if let Some(vm) = args.handle {
                    self.destroy(vm);
                }
            }
            Call::MmioGuardMap | Call::MmioGuardUnmap => {
                if let (Some(vm), Some(gfn)) = (args.vm(), args.gfn) {
                    let entry = (vm, gfn);
                    self.registered.retain(|&e| e != entry);
                    if call == Call::MmioGuardMap {
                        self.registered.push(entry);
                        if self.registered.overflowed() {
                            self.break_with("more registered frames than the case can follow");
                        }
                    }
                }
            }
            // 5.5: CPU_ON powers the target on (no change if it is on: ALREADY_ON);
            // CPU_OFF powers the caller off.
            Call::PsciCpuOn => {
                if let Caller::Guest(vm) = args.caller
                    && let Some(state) = self.vms[vm.index()].as_mut()
                {
                    // The suite's CPU_ON always names vCPU 1 (build.rs).
                    state.on |= 1 << 1;
                }
            }
            Call::PsciCpuOff => {
                if let Caller::Guest(vm) = args.caller
                    && let Some(state) = self.vms[vm.index()].as_mut()
                {
                    state.on &= !(1 << args.caller_vcpu);
                }
            }
            Call::PsciSystemOff | Call::PsciSystemReset => {
                if let Caller::Guest(vm) = args.caller {
                    let how = if call == Call::PsciSystemOff {
                        PowerOff::Off
                    } else {
                        PowerOff::Reset
                    };
                    self.stop(vm, how);
                }
            }
            _ => {}
        }
    }

    fn apply_page_call(&mut self, call: Call, args: &Args) {
        let (Some(column), Some(first)) = (page_column(call), args.page) else {
            return;
        };
        for i in 0..args.nr {
            let Some(page) = self.page_at(first, i) else {
                return;
            };
            let info = &mut self.pages[page.index()];
            match page_cell(info.state, column) {
                PageCell::Denied => {}
                // 4.5: a launched VM only gets fresh memory.
                PageCell::To(PageState::GuestOwned)
                    if args
                        .handle
                        .is_some_and(|vm| self.vms[vm.index()].is_some_and(|v| v.launched)) =>
                {
                    info.state = PageState::GuestOwned;
                    info.content = Content::Zero;
                }
                PageCell::To(state) => info.state = state,
                PageCell::ToZeroed(state) => {
                    info.state = state;
                    info.content = Content::Zero;
                }
            }
            info.owner = match info.state {
                PageState::VmPool | PageState::GuestOwned => args.handle,
                _ => None,
            };
            if call == Call::VmDonate
                && let (Some(vm), Some(gfn)) = (args.handle, args.gfn)
            {
                self.maps.push((vm, gfn + i, page));
                if self.maps.overflowed() {
                    self.break_with("more mappings than the case can follow");
                }
            }
        }
    }

    fn apply_ipa_call(&mut self, call: Call, args: &Args) {
        let (Some(column), Some(vm), Some(gfn)) = (ipa_column(call), args.vm(), args.gfn) else {
            return;
        };
        for g in gfn..gfn.saturating_add(args.nr) {
            let (state, Some(page)) = self.ipa(vm, g) else {
                continue;
            };
            let info = &mut self.pages[page.index()];
            match ipa_cell(state, column) {
                IpaCell::To(to) => {
                    if let Some(page_state) = to.page_state() {
                        info.state = page_state;
                    }
                }
                IpaCell::Unmapped { zeroed } => {
                    info.state = PageState::Host;
                    info.owner = None;
                    if zeroed {
                        info.content = Content::Zero;
                    }
                    self.maps
                        .retain(|&(v, mapped, _)| !(v == vm && mapped == g));
                }
                IpaCell::Denied | IpaCell::NotFound => {}
            }
        }
    }

    /// 7.1, VM_DESTROY: the VM's guest memory and pool become RECLAIMABLE; its mappings
    /// and handle are gone.
    fn destroy(&mut self, vm: VmRef) {
        for info in self.pages.iter_mut().filter(|p| p.owner == Some(vm)) {
            info.state = match info.state {
                PageState::GuestOwned | PageState::GuestShared | PageState::VmPool => {
                    PageState::Reclaimable
                }
                other => other,
            };
            info.owner = None;
        }
        self.maps.retain(|&(v, _, _)| v != vm);
        // 5.6: the registrations end with the VM.
        self.registered.retain(|&(v, _)| v != vm);
        if let Some(info) = self.vms[vm.index()].as_mut() {
            info.alive = false;
        }
    }

    fn stop(&mut self, vm: VmRef, how: PowerOff) {
        if let Some(info) = self.vms[vm.index()].as_mut() {
            info.stopped = Some(how);
        }
    }
}

impl Default for DocState {
    fn default() -> Self {
        Self::new()
    }
}

/// The column of table 7.1 for a call that names pages.
fn page_column(call: Call) -> Option<PageColumn> {
    Some(match call {
        Call::HostShareHyp => PageColumn::HostShareHyp,
        Call::HostUnshareHyp => PageColumn::HostUnshareHyp,
        Call::VmTopup => PageColumn::VmTopup,
        Call::VmDonate => PageColumn::VmDonate,
        Call::VmReclaim => PageColumn::VmReclaim,
        _ => return None,
    })
}

/// The column of table 7.2 for a call that names guest frames.
fn ipa_column(call: Call) -> Option<IpaColumn> {
    Some(match call {
        Call::VmDonate => IpaColumn::VmDonate,
        Call::MemShare => IpaColumn::MemShare,
        Call::MemUnshare => IpaColumn::MemUnshare,
        Call::MemRelinquish => IpaColumn::MemRelinquish,
        _ => return None,
    })
}
