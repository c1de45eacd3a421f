//! From a case to its plan: setup steps for the subject, the call with its classes
//! applied, the outcome the document promises and the watches before and after.

use super::calls::{Call, FORWARDED_X1, TRNG_BITS, Trigger};
use super::classes::ArgClass;
use super::doc_state::{Args, DocState};
use super::{Case, GuardSubject, Subject, VmSubject};
use crate::outcome::{GuestEnd, Ret, Summary};
use crate::plan::{
    CHANNEL_IPA, CODE_GFN, Caller, G_CROSS, G0, IPA_BITS, List, MAX_STEPS, MAX_WATCHES, NR_VCPUS,
    PageRef, Plan, PowerOff, ReturnKind, Step, Sym, SymCall, VmKind, VmRef, Watch, ipa,
};
use crate::states::{IpaState, PageState};
use hvc_abi::limits::MAX_MMIO_GUARD_PAGES;
use hvc_abi::{Error, Exit, FunctionId};

/// FEATURES x1: version 2.0 (section 2).
const VERSION_2_0: u64 = 0x0002_0000;
/// FEATURES x2 for the host and for a guest (section 2).
const HOST_BITMAP: u64 = 0xF3F;
const GUEST_BITMAP: u64 = 0x7F_0000_0001;
/// HYP_MEMINFO x1 (5.2).
const GRANULE: u64 = 4096;

/// Guest frames watched when a case touches them.
const WATCHED_GFNS: [u64; 4] = [G0, G0 + 1, G_CROSS, G_CROSS + 1];

struct Builder<'a> {
    case: &'a Case,
    steps: List<Step, MAX_STEPS>,
}

/// A case worked out: setup, the call, and the document's states around it.
struct Assembled {
    steps: List<Step, MAX_STEPS>,
    call: SymCall,
    args: Args,
    before: DocState,
    after: DocState,
    expect: Summary,
    /// Only the unit tests look at this (a successful VCPU_RUN of a live vCPU).
    #[cfg_attr(not(test), allow(dead_code))]
    success: bool,
}

fn assemble(case: &Case) -> Assembled {
    let mut builder = Builder {
        case,
        steps: List::new(),
    };
    builder.subject_setup();
    let layout = case.call.layout();
    let mut call = builder.template();
    // CPU_OFF is made by the vCPU that powers off: vCPU 1, which vCPU 0 started.
    if case.call == Call::PsciCpuOff {
        call.vcpu = 1;
    }
    for class in case.classes() {
        class.apply(&mut call, &layout);
    }
    if case.has(ArgClass::HandleDead) {
        builder.push(Step::CreateVm(VmRef::Dead, VmKind::Bare));
        builder.push(Step::Destroy(VmRef::Dead));
        builder.push(Step::CreateVm(VmRef::Spare, VmKind::Bare));
    }
    builder.ensure_call_vms(&call);

    let mut before = DocState::new();
    for step in builder.steps.iter() {
        before.step(step);
    }
    let args = Args::of(&call, &layout);
    // The observation before the call runs the guest of every VM whose frames it looks
    // at (a guest load): that launches the VM (4.8), which decides what VM_DONATE gives.
    for (vm, _) in watched_ipas(&builder.steps, &args, case).iter() {
        if before
            .vm(vm)
            .is_some_and(|info| info.alive && info.guest_can_run())
        {
            before.launch(vm);
        }
    }
    let mut after = before;
    let error = expected_error(case, &mut after, &args);
    let expect = match error {
        Some(error) => error_summary(call.caller, error),
        None => {
            after.apply(case.call, &args);
            success_summary(case, &call, &args, &before)
        }
    };
    Assembled {
        steps: builder.steps,
        call,
        args,
        before,
        after,
        expect,
        success: error.is_none(),
    }
}

pub fn plan(case: &Case) -> Plan {
    let a = assemble(case);
    let pages = watched_pages(&a.steps, &a.call, &a.args, case);
    let ipas = watched_ipas(&a.steps, &a.args, case);
    Plan {
        steps: a.steps,
        running: case.has(ArgClass::VcpuRunning),
        call: a.call,
        expect: a.expect,
        before: watches(&a.before, &pages, &ipas),
        after: watches(&a.after, &pages, &ipas),
    }
}

/// The problem with a case's plan, if the generator made one it cannot follow (checked
/// by the unit tests for every case).
#[cfg(test)]
pub fn plan_problem(case: &Case) -> Option<&'static str> {
    let a = assemble(case);
    if a.steps.overflowed() {
        return Some("more setup steps than a plan holds");
    }
    let live_run = case.call == Call::VcpuRun
        && !matches!(
            case.subject,
            Subject::Vm(
                VmSubject::Stopped
                    | VmSubject::Reset
                    | VmSubject::Secondary
                    | VmSubject::SecondaryOff
            )
        );
    if a.success && live_run {
        return Some("a successful VCPU_RUN of a live vCPU depends on the guest");
    }
    a.before.broken.or(a.after.broken)
}

impl Builder<'_> {
    fn push(&mut self, step: Step) {
        self.steps.push(step);
    }

    fn has_vm(&self, vm: VmRef) -> bool {
        self.steps
            .iter()
            .any(|step| matches!(step, Step::CreateVm(v, _) if v == vm))
    }

    fn v0_kind(&self) -> VmKind {
        if self.case.has(ArgClass::VcpuRunning) {
            VmKind::Spinner
        } else {
            VmKind::Full
        }
    }

    fn ensure_vm(&mut self, vm: VmRef, kind: VmKind) {
        if !self.has_vm(vm) {
            self.push(Step::CreateVm(vm, kind));
        }
    }

    fn ensure_v0(&mut self) {
        self.ensure_vm(VmRef::V0, self.v0_kind());
    }

    /// The first guest frame of the case's IPA subject.
    fn base_gfn(&self) -> u64 {
        if self.case.has(ArgClass::CrossBlock) {
            G_CROSS
        } else {
            G0
        }
    }

    fn subject_setup(&mut self) {
        match self.case.subject {
            Subject::Page(state) => {
                let destroy = self.page_setup(state, subject_page(state), G0);
                if destroy {
                    self.push(Step::Destroy(VmRef::V0));
                }
            }
            Subject::Range(first, second) => {
                let destroy_first = self.page_setup(first, PageRef::P0, G0);
                let destroy_second = self.page_setup(second, PageRef::P1, G0 + 1);
                if destroy_first || destroy_second {
                    self.push(Step::Destroy(VmRef::V0));
                }
            }
            Subject::Ipa(state) => {
                self.ensure_v0();
                self.ipa_setup(state, PageRef::P0, self.base_gfn());
            }
            Subject::IpaRange(first, second) => {
                self.ensure_v0();
                let base = self.base_gfn();
                self.ipa_setup(first, PageRef::P0, base);
                self.ipa_setup(second, PageRef::P1, base + 1);
            }
            Subject::Guard(guard) => {
                self.ensure_v0();
                self.guard_setup(guard);
            }
            Subject::Vm(vm) => self.vm_setup(vm),
        }
    }

    /// Registers frames of V0 as the MMIO-guard subject says. The channel's page holds
    /// one slot, so "full" takes MAX_MMIO_GUARD_PAGES - 1 more (G0 one of them or not).
    fn guard_setup(&mut self, guard: GuardSubject) {
        let others = MAX_MMIO_GUARD_PAGES - 1;
        match guard {
            GuardSubject::Registered => self.push(Step::GuardMap(VmRef::V0, G0)),
            GuardSubject::Full => self.push(Step::FillGuard(VmRef::V0, others)),
            GuardSubject::FullRegistered => {
                self.push(Step::GuardMap(VmRef::V0, G0));
                self.push(Step::FillGuard(VmRef::V0, others - 1));
            }
            GuardSubject::FullOwned => {
                self.push(Step::Donate(VmRef::V0, PageRef::P0, G0));
                self.push(Step::FillGuard(VmRef::V0, others));
            }
        }
    }

    /// Puts `page` in `state` (guest states at `gfn` of V0). Returns whether V0 must be
    /// destroyed once every page is set up (RECLAIMABLE).
    fn page_setup(&mut self, state: PageState, page: PageRef, gfn: u64) -> bool {
        match state {
            PageState::Host | PageState::Hyp | PageState::Mmio | PageState::NoRam => {}
            PageState::SharedHyp => self.push(Step::ShareHyp(page)),
            PageState::GuestOwned | PageState::GuestShared | PageState::Reclaimable => {
                self.ensure_v0();
                self.push(Step::Donate(VmRef::V0, page, gfn));
                if state == PageState::GuestShared {
                    self.push(Step::GuestShare(VmRef::V0, gfn));
                }
            }
            PageState::VmPool => {
                self.ensure_v0();
                self.push(Step::Topup(VmRef::V0, page));
            }
        }
        state == PageState::Reclaimable
    }

    /// Puts `gfn` of V0 in `state`, with `page` behind it.
    fn ipa_setup(&mut self, state: IpaState, page: PageRef, gfn: u64) {
        match state {
            IpaState::Unmapped => {}
            IpaState::GuestOwned => self.push(Step::Donate(VmRef::V0, page, gfn)),
            IpaState::GuestShared => {
                self.push(Step::Donate(VmRef::V0, page, gfn));
                self.push(Step::GuestShare(VmRef::V0, gfn));
            }
        }
    }

    fn vm_setup(&mut self, vm: VmSubject) {
        match vm {
            VmSubject::None => {}
            VmSubject::Vm => self.ensure_v0(),
            VmSubject::Bare => self.push(Step::CreateVm(VmRef::V0, VmKind::Bare)),
            VmSubject::Ran => {
                self.ensure_v0();
                self.push(Step::Run(VmRef::V0));
            }
            VmSubject::Secondary => {
                self.ensure_v0();
                self.push(Step::CreateVcpu(VmRef::V0, 1));
            }
            VmSubject::SecondaryOn | VmSubject::SecondaryOff => {
                self.ensure_v0();
                self.push(Step::CreateVcpu(VmRef::V0, 1));
                self.push(Step::CpuOn(VmRef::V0, 1));
                if vm == VmSubject::SecondaryOff {
                    self.push(Step::CpuOff(VmRef::V0, 1));
                }
            }
            VmSubject::Stopped | VmSubject::Reset => {
                self.ensure_v0();
                self.push(Step::CreateVcpu(VmRef::V0, 1));
                let how = if vm == VmSubject::Stopped {
                    PowerOff::Off
                } else {
                    PowerOff::Reset
                };
                self.push(Step::Stop(VmRef::V0, how));
            }
            VmSubject::Full => self.push(Step::FillVms),
            VmSubject::UnconfinedBoot => self.push(Step::UnconfinedBoot),
        }
    }

    /// The call with valid arguments for the subject.
    fn template(&self) -> SymCall {
        let call = self.case.call;
        let subject = self.case.subject;
        let page = match subject {
            Subject::Page(state) => subject_page(state),
            _ => PageRef::P0,
        };
        let nr = match subject {
            Subject::Range(..) | Subject::IpaRange(..) => 2,
            _ => 1,
        };
        let maps_from_ipa_subject = matches!(
            subject,
            Subject::Ipa(_) | Subject::IpaRange(..) | Subject::Guard(_)
        );
        // Calls that give pages to a VM give them to V1, so that a page's own VM is never
        // the target, unless V0's vCPU must be running during the call.
        let target = if self.case.has(ArgClass::VcpuRunning) || maps_from_ipa_subject {
            VmRef::V0
        } else {
            VmRef::V1
        };
        let base = self.base_gfn();
        let lit = Sym::Lit;
        let args: &[Sym] = match call {
            Call::HostShareHyp | Call::HostUnshareHyp => &[Sym::Pfn(page)],
            Call::VmTopup => &[Sym::Handle(target), Sym::Pfn(page), lit(nr)],
            Call::VmDonate if maps_from_ipa_subject => &[
                Sym::Handle(VmRef::V0),
                Sym::Pfn(PageRef::Q0),
                lit(base),
                lit(nr),
            ],
            Call::VmDonate => &[Sym::Handle(target), Sym::Pfn(page), lit(G0), lit(nr)],
            // vCPU 1 is created powered off: no entry point, no x0 (4.8).
            Call::VcpuCreate => &[Sym::Handle(VmRef::V0), lit(1), lit(0), lit(0)],
            Call::VcpuRun => &[Sym::Handle(VmRef::V0), lit(0), lit(0)],
            Call::VmDestroy => &[Sym::Handle(VmRef::V0)],
            Call::VmReclaim => &[Sym::Pfn(page), lit(nr)],
            Call::VmCreate => &[lit(u64::from(NR_VCPUS)), lit(u64::from(IPA_BITS))],
            Call::MemShare | Call::MemUnshare | Call::MemRelinquish => &[lit(ipa(base)), lit(nr)],
            Call::MmioGuardMap | Call::MmioGuardUnmap | Call::IpaState => &[lit(ipa(base))],
            Call::GuestHvc => &[lit(FORWARDED_X1)],
            // vCPU 1 (MPIDR Aff0 = 1) at the guest's own code.
            Call::PsciCpuOn => &[lit(1), lit(ipa(CODE_GFN)), lit(CHANNEL_IPA)],
            Call::PsciFeatures => &[lit(FunctionId::PSCI_CPU_ON.to_x0())],
            // vCPU 1, lowest affinity level 0.
            Call::PsciAffinityInfo => &[lit(1), lit(0)],
            Call::SmcccArchFeatures => &[lit(FunctionId::SMCCC_ARCH_FEATURES.to_x0())],
            Call::PsciVersion | Call::SmcccVersion | Call::PsciCpuOff => &[],
            // _2's x1 = 1: turn the mitigation on; _1 and _3 take no argument.
            Call::SmcccWorkaround(id) if id == FunctionId::SMCCC_ARCH_WORKAROUND_2.0 => &[lit(1)],
            Call::SmcccWorkaround(_) => &[],
            Call::Trng(id) if id == FunctionId::TRNG_FEATURES.0 => {
                &[lit(FunctionId::TRNG_RND64.to_x0())]
            }
            Call::Trng(id) if id == FunctionId::TRNG_RND32.0 || id == FunctionId::TRNG_RND64.0 => {
                &[lit(TRNG_BITS)]
            }
            Call::Trng(_) => &[],
            Call::Uid
            | Call::Features
            | Call::GuestUid
            | Call::GuestFeatures
            | Call::HypMeminfo
            | Call::PsciSystemOff
            | Call::PsciSystemReset
            | Call::Unassigned(_) => &[],
        };
        SymCall::new(call.caller(), call.id(), args, call.returns())
    }

    /// Builds the VMs the call names that setup has not built.
    fn ensure_call_vms(&mut self, call: &SymCall) {
        if let Caller::Guest(VmRef::V0) = call.caller {
            self.ensure_v0();
        }
        for reg in call.regs {
            match reg {
                Sym::Handle(VmRef::V0) => self.ensure_v0(),
                Sym::Handle(VmRef::V1) => {
                    let kind = if self.case.has(ArgClass::EmptyPool) {
                        VmKind::Bare
                    } else {
                        VmKind::Full
                    };
                    self.ensure_vm(VmRef::V1, kind);
                }
                _ => {}
            }
        }
    }
}

/// The page a page-state subject is about.
fn subject_page(state: PageState) -> PageRef {
    match state {
        PageState::Hyp => PageRef::Hyp,
        PageState::Mmio => PageRef::Mmio,
        PageState::NoRam => PageRef::NoRam,
        _ => PageRef::P0,
    }
}

/// The error the document promises, if any: NOT_SUPPORTED for ids that are not calls,
/// else the first row of the call's table that applies, where the state phase is read
/// from tables 7.1 and 7.2.
fn expected_error(case: &Case, doc: &mut DocState, args: &Args) -> Option<Error> {
    if matches!(case.call, Call::Unassigned(_)) || case.classes().any(|c| c.unsupported_id()) {
        return Some(Error::NotSupported);
    }
    let rows = case.call.rows();
    let class_row = rows.iter().position(|row| {
        row.triggers
            .iter()
            .any(|t| matches!(t, Trigger::Class(c) if case.has(*c)))
    });
    let first_state_row = rows
        .iter()
        .position(|row| row.triggers.iter().any(|t| matches!(t, Trigger::State(_))));
    // A row before the state phase decides alone: the state phase is never reached
    // (and its arguments may not even name the case's pages).
    if let Some(row) = class_row.filter(|&r| first_state_row.is_none_or(|s| r < s)) {
        return Some(rows[row].error);
    }
    let state_row = doc.state_outcome(case.call, args).err().map(|error| {
        rows.iter()
            .position(|row| {
                row.error == error && row.triggers.iter().any(|t| matches!(t, Trigger::State(_)))
            })
            .unwrap_or(rows.len())
    });
    let first = match (class_row, state_row) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    match rows.get(first) {
        Some(row) => Some(row.error),
        // A state error with no row of its own: not a table the suite transcribed.
        None => doc
            .state_outcome(case.call, args)
            .err()
            .or(Some(Error::NotSupported)),
    }
}

fn error_summary(caller: Caller, error: Error) -> Summary {
    match caller {
        Caller::Host => Summary::Host(Ret::Error(error)),
        Caller::Guest(_) => Summary::guest(Ret::Error(error)),
    }
}

/// What a successful call returns (sections 2, 4, 5 and 6).
fn success_summary(case: &Case, call: &SymCall, args: &Args, before: &DocState) -> Summary {
    let gfn = args.gfn.unwrap_or(0);
    let nr = args.nr as u32;
    let w0 = match call.regs[0] {
        Sym::Lit(x0) => x0 as u32,
        _ => 0,
    };
    let guest_exit = |exit| Summary::Guest {
        exit: Some(exit),
        end: GuestEnd::Returned(Ret::Ok),
    };
    match case.call {
        Call::Uid => Summary::Host(Ret::Uid),
        Call::GuestUid => Summary::guest(Ret::Uid),
        Call::Features => Summary::Host(Ret::Values([VERSION_2_0, HOST_BITMAP, 0])),
        Call::GuestFeatures => Summary::guest(Ret::Values([VERSION_2_0, GUEST_BITMAP, 0])),
        Call::HypMeminfo => Summary::guest(Ret::Values([GRANULE, 0, 0])),
        Call::MmioGuardMap | Call::MmioGuardUnmap => Summary::guest(Ret::Ok),
        // 5.7.
        Call::IpaState => {
            let state = match args.vm().map(|vm| (before.ipa(vm, gfn).0, vm)) {
                Some((IpaState::GuestOwned, _)) => 1,
                Some((IpaState::GuestShared, _)) => 2,
                Some((IpaState::Unmapped, vm)) if before.registered(vm, gfn) => 3,
                _ => 0,
            };
            // A zero result reads as a plain success (outcome.rs).
            Summary::guest(match state {
                0 => Ret::Ok,
                state => Ret::Values([state, 0, 0]),
            })
        }
        Call::VmCreate => Summary::Host(Ret::Handle),
        Call::VcpuRun => {
            let stopped = before.vm(VmRef::V0).and_then(|vm| vm.stopped);
            Summary::Host(Ret::Exit(match stopped {
                Some(PowerOff::Reset) => Exit::SystemReset,
                Some(PowerOff::Off) => Exit::SystemOff,
                // A live VM's run the suite makes: vCPU 1, which only the guest starts.
                None => Exit::VcpuOff,
            }))
        }
        Call::MemShare => guest_exit(Exit::MemShared { ipa: ipa(gfn), nr }),
        // 5.5 CPU_ON: ALREADY_ON (-4, which reads as this ABI's DENIED) if vCPU 1 is on.
        Call::PsciCpuOn if before.vcpu_on(VmRef::V0, 1) => {
            Summary::guest(Ret::classify([-4i64 as u64, 0, 0, 0], ReturnKind::Status))
        }
        Call::PsciCpuOn => guest_exit(Exit::VcpuStarted { vcpu: 1 }),
        // CPU_OFF does not return; the vCPU exits with VCPU_OFF.
        Call::PsciCpuOff => Summary::Guest {
            exit: Some(Exit::VcpuOff),
            end: GuestEnd::Stopped,
        },
        // 5.8: the firmware's answer, in the form the call allows; no exit, the guest
        // carries on.
        Call::SmcccWorkaround(_) | Call::Trng(_) => Summary::guest(Ret::Firmware),
        Call::SmcccArchFeatures if matches!(call.returns, ReturnKind::Firmware(_)) => {
            Summary::guest(Ret::Firmware)
        }
        // PSCI's and SMCCC's own results: x0 is a value, not this ABI's status (1.2).
        Call::PsciVersion => Summary::guest(Ret::Raw([0x1_0000, 0, 0, 0])),
        Call::SmcccVersion => Summary::guest(Ret::Raw([0x1_0001, 0, 0, 0])),
        // AFFINITY_INFO: 0 = on (a zero x0 reads as a plain success), 1 = off.
        Call::PsciAffinityInfo if before.vcpu_on(VmRef::V0, 1) => Summary::guest(Ret::Ok),
        Call::PsciAffinityInfo => Summary::guest(Ret::Raw([1, 0, 0, 0])),
        Call::PsciFeatures | Call::SmcccArchFeatures => Summary::guest(Ret::Ok),
        Call::MemUnshare => guest_exit(Exit::MemUnshared { ipa: ipa(gfn), nr }),
        Call::MemRelinquish => guest_exit(Exit::MemRelinquished { ipa: ipa(gfn), nr }),
        Call::GuestHvc => Summary::Guest {
            exit: Some(Exit::GuestHvc {
                function_id: w0,
                x1: FORWARDED_X1,
            }),
            end: GuestEnd::Returned(Ret::Reply),
        },
        Call::PsciSystemOff => Summary::Guest {
            exit: Some(Exit::SystemOff),
            end: GuestEnd::Stopped,
        },
        Call::PsciSystemReset => Summary::Guest {
            exit: Some(Exit::SystemReset),
            end: GuestEnd::Stopped,
        },
        _ => Summary::Host(Ret::Ok),
    }
}

/// Pages the case touches: those of setup, those the call names, the subject's.
fn watched_pages(
    steps: &List<Step, MAX_STEPS>,
    call: &SymCall,
    args: &Args,
    case: &Case,
) -> List<PageRef, 7> {
    let mut seen = [false; 7];
    for step in steps.iter() {
        if let Step::ShareHyp(page) | Step::Topup(_, page) | Step::Donate(_, page, _) = step {
            seen[page.index()] = true;
        }
    }
    for reg in call.regs {
        if let Sym::Pfn(page) = reg {
            for i in 0..args.nr.min(2) {
                if let Some(page) = page.plus(i) {
                    seen[page.index()] = true;
                }
            }
        }
    }
    match case.subject {
        Subject::Page(state) => seen[subject_page(state).index()] = true,
        Subject::Range(..) => {
            seen[PageRef::P0.index()] = true;
            seen[PageRef::P1.index()] = true;
        }
        _ => {}
    }
    let mut pages = List::new();
    for page in PageRef::ALL {
        if seen[page.index()] {
            pages.push(page);
        }
    }
    pages
}

/// Guest frames the case touches, in V0 and V1.
fn watched_ipas(steps: &List<Step, MAX_STEPS>, args: &Args, case: &Case) -> List<(VmRef, u64), 8> {
    let mut ipas: List<(VmRef, u64), 8> = List::new();
    let mut add = |vm: VmRef, gfn: u64| {
        let known = matches!(vm, VmRef::V0 | VmRef::V1) && WATCHED_GFNS.contains(&gfn);
        if known && !ipas.iter().any(|i| i == (vm, gfn)) {
            ipas.push((vm, gfn));
        }
    };
    for step in steps.iter() {
        if let Step::Donate(vm, _, gfn) | Step::GuestShare(vm, gfn) = step {
            add(vm, gfn);
        }
    }
    let vm = match args.caller {
        Caller::Guest(vm) => Some(vm),
        Caller::Host => args.handle,
    };
    if let (Some(vm), Some(gfn)) = (vm, args.gfn) {
        for i in 0..args.nr.min(2) {
            add(vm, gfn.wrapping_add(i));
        }
    }
    if let Subject::Ipa(_) | Subject::IpaRange(..) | Subject::Guard(_) = case.subject {
        add(VmRef::V0, G0);
    }
    ipas
}

/// The watches of `doc`'s states for the watched pages and frames, every VM of the case
/// and V0's vCPUs.
fn watches(
    doc: &DocState,
    pages: &List<PageRef, 7>,
    ipas: &List<(VmRef, u64), 8>,
) -> List<Watch, MAX_WATCHES> {
    let mut out = List::new();
    for page in pages.iter() {
        let (state, content) = doc.page(page);
        out.push(Watch::Page {
            page,
            state,
            content,
        });
    }
    for (vm, gfn) in ipas.iter() {
        let Some(info) = doc.vm(vm).filter(|info| info.alive) else {
            continue;
        };
        let (state, page) = doc.ipa(vm, gfn);
        let content = page.map_or(crate::states::Content::Other, |p| doc.page(p).1);
        out.push(Watch::Ipa {
            vm,
            gfn,
            state,
            page,
            content,
            registered: doc.registered(vm, gfn),
            guard_full: doc.guard_full(vm),
            guest_looks: info.guest_can_run(),
        });
    }
    for vm in VmRef::ALL {
        if let Some(info) = doc.vm(vm) {
            out.push(Watch::Vm {
                vm,
                alive: info.alive,
            });
        }
    }
    if let Some(info) = doc.vm(VmRef::V0).filter(|info| info.alive) {
        for vcpu in 0..NR_VCPUS {
            out.push(Watch::Vcpu {
                vm: VmRef::V0,
                vcpu,
                exists: info.vcpus & (1 << vcpu) != 0,
            });
        }
    }
    out
}
