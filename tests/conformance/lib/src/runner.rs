//! Runs one case against a backend.
//!
//! 1. Four fresh host pages (P0, P1, Q0, Q1), each with its marker in the first word.
//! 2. Setup: each step's calls, each with its fixed expected result.
//! 3. "Before": every watch read and compared with the state setup must have produced.
//! 4. If the case needs it, V0's vCPU 0 starts spinning on another CPU.
//! 5. The call; its outcome is compared with the document's.
//! 6. The spinning vCPU is stopped.
//! 7. "After": every watch read again and compared with the states after the call: the
//!    same as before if the call failed (nothing changed), the table's new states if it
//!    succeeded.
//! 8. Teardown: every VM of the case destroyed, every page it gave away reclaimed, every
//!    page shared with EL2 unshared. Teardown results are not judged.

use crate::backend::{Backend, BackendError, GuestOp, GuestOpEnd, GuestOutcome};
use crate::cases::Case;
use crate::observe::{self, Label, View};
use crate::outcome::{GuestEnd, Ret, Summary};
use crate::plan::{
    CHANNEL_IPA, CODE_GFN, CTRL_GFN, Caller, GUARD_FILL_GFN, IPA_BITS, NR_VCPUS, POOL_PAGES,
    PageRef, Plan, PowerOff, ReturnKind, Special, Step, Sym, SymCall, VmKind, VmRef, Watch, ipa,
};
use core::fmt;
use hvc_abi::limits::{MAX_VMS, PAGE_SIZE};
use hvc_abi::{Exit, FunctionId};

/// Pages a case gets: P0, P1, Q0, Q1.
const FRESH_PAGES: u32 = 4;

/// Pages a VM of the case was given besides the case's own (for teardown).
#[derive(Clone, Copy, Debug, Default)]
struct VmPages {
    pool: Option<u64>,
    code: Option<u64>,
    ctrl: Option<u64>,
}

/// The real values of a case's roles on the backend.
#[derive(Clone, Copy, Debug)]
pub struct Ledger {
    fresh: u64,
    special: [u64; 3],
    handles: [Option<u64>; 5],
    pages: [VmPages; 5],
    fill: [Option<u64>; MAX_VMS as usize],
}

impl Ledger {
    fn new<B: Backend>(backend: &B, fresh: u64) -> Self {
        Self {
            fresh,
            special: [
                backend.special_pfn(Special::Hyp),
                backend.special_pfn(Special::Mmio),
                backend.special_pfn(Special::NoRam),
            ],
            handles: [None; 5],
            pages: [VmPages::default(); 5],
            fill: [None; MAX_VMS as usize],
        }
    }

    /// The pfn of a page role.
    pub fn pfn(&self, page: PageRef) -> u64 {
        match page.fresh_index() {
            Some(index) => self.fresh + index as u64,
            None => match page.special() {
                Some(Special::Hyp) => self.special[0],
                Some(Special::Mmio) => self.special[1],
                Some(Special::NoRam) | None => self.special[2],
            },
        }
    }

    /// The handle VM_CREATE returned for a VM role.
    pub fn handle(&self, vm: VmRef) -> Option<u64> {
        self.handles[vm.index()]
    }

    fn live_vms(&self) -> usize {
        // Every VM role but a destroyed one counts; `Dead` is destroyed in setup.
        self.handles
            .iter()
            .enumerate()
            .filter(|&(i, h)| h.is_some() && i != VmRef::Dead.index())
            .count()
    }

    fn resolve(&self, sym: Sym) -> u64 {
        match sym {
            Sym::Lit(value) => value,
            Sym::Pfn(page) => self.pfn(page),
            Sym::Handle(vm) => self.handle(vm).unwrap_or(0),
        }
    }
}

/// Why a case did not pass, besides a wrong outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The backend had no free pages.
    NoPages,
    /// Setup step `index` (0-based) did not give its expected result.
    Setup {
        index: usize,
        step: Step,
        got: Summary,
    },
    /// A watch did not read as setup should have left it.
    Before {
        watch: Watch,
        expected: View,
        got: View,
    },
    /// A watch did not read as the call should have left it.
    After {
        watch: Watch,
        expected: View,
        got: View,
        /// How many other watches also differ.
        more: usize,
    },
    Backend(BackendError),
}

/// The result of one case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaseResult {
    /// The outcome the document promises.
    pub expected: Summary,
    /// The outcome of the call, if it was made.
    pub got: Option<Summary>,
    pub problem: Option<Problem>,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.got == Some(self.expected) && self.problem.is_none()
    }
}

/// Runs `case` on `backend`.
pub fn run_case<B: Backend>(backend: &mut B, case: &Case) -> CaseResult {
    let plan = case.plan();
    let mut result = CaseResult {
        expected: plan.expect,
        got: None,
        problem: None,
    };
    let Some(fresh) = backend.alloc_pages(FRESH_PAGES) else {
        result.problem = Some(Problem::NoPages);
        return result;
    };
    for i in 0..u64::from(FRESH_PAGES) {
        backend.write_marker(fresh + i);
    }
    let mut ledger = Ledger::new(backend, fresh);
    result.problem = run_planned(backend, &plan, &mut ledger, &mut result.got).err();
    teardown(backend, &mut ledger);
    result
}

#[expect(
    clippy::result_large_err,
    reason = "no allocator to box the problem in; it is returned once per case"
)]
fn run_planned<B: Backend>(
    backend: &mut B,
    plan: &Plan,
    ledger: &mut Ledger,
    got: &mut Option<Summary>,
) -> Result<(), Problem> {
    for (index, step) in plan.steps.iter().enumerate() {
        run_step(backend, ledger, step).map_err(|got| Problem::Setup { index, step, got })?;
    }
    for watch in plan.before.iter() {
        let expected = observe::expected(&watch);
        let seen = observe::observe(backend, ledger, &watch);
        if seen != expected {
            return Err(Problem::Before {
                watch,
                expected,
                got: seen,
            });
        }
    }
    if plan.running {
        start_spinning(backend, ledger).map_err(Problem::Backend)?;
    }
    *got = Some(make_call(backend, ledger, &plan.call));
    if plan.running {
        stop_spinning(backend).map_err(Problem::Backend)?;
    }
    let mut first = None;
    let mut more = 0;
    for watch in plan.after.iter() {
        let expected = observe::expected(&watch);
        let seen = observe::observe(backend, ledger, &watch);
        if seen != expected {
            if first.is_none() {
                first = Some((watch, expected, seen));
            } else {
                more += 1;
            }
        }
    }
    match first {
        Some((watch, expected, got)) => Err(Problem::After {
            watch,
            expected,
            got,
            more,
        }),
        None => Ok(()),
    }
}

/// Makes the call under test.
fn make_call<B: Backend>(backend: &mut B, ledger: &mut Ledger, call: &SymCall) -> Summary {
    let regs = call.regs.map(|sym| ledger.resolve(sym));
    match call.caller {
        Caller::Host => match backend.hvc(regs) {
            Ok(ret) => {
                // A VM the call created is the case's to watch and to destroy.
                if call.returns == ReturnKind::Handle && ret[0] == 0 && ret[1] != 0 {
                    ledger.handles[VmRef::Created.index()] = Some(ret[1]);
                }
                Summary::Host(Ret::classify(ret, call.returns))
            }
            Err(_) => Summary::Host(Ret::Raw([u64::MAX - 1, 0, 0, 0])),
        },
        Caller::Guest(vm) => {
            let handle = ledger.handle(vm).unwrap_or(0);
            match backend.guest_op(handle, call.vcpu, GuestOp::Hvc(regs)) {
                Ok(outcome) => guest_summary(outcome, call.returns),
                Err(_) => Summary::Guest {
                    exit: None,
                    end: GuestEnd::RunFailed(Ret::Raw([u64::MAX - 1, 0, 0, 0])),
                },
            }
        }
    }
}

fn guest_summary(outcome: GuestOutcome, returns: ReturnKind) -> Summary {
    let end = match outcome.end {
        GuestOpEnd::Returned(regs) => GuestEnd::Returned(Ret::classify(regs, returns)),
        GuestOpEnd::Stopped => GuestEnd::Stopped,
        GuestOpEnd::RunFailed(regs) => GuestEnd::RunFailed(Ret::classify(regs, ReturnKind::Status)),
        GuestOpEnd::Unexpected(exit) => GuestEnd::Unexpected(exit),
    };
    Summary::Guest {
        exit: outcome.exit,
        end,
    }
}

/// A host call that must succeed; `Err` with its outcome otherwise.
fn must<B: Backend>(backend: &mut B, id: FunctionId, args: &[u64]) -> Result<[u64; 4], Summary> {
    let mut regs = [0; 8];
    regs[0] = id.to_x0();
    for (slot, arg) in regs[1..].iter_mut().zip(args) {
        *slot = *arg;
    }
    match backend.hvc(regs) {
        Ok(ret) if ret[0] == 0 => Ok(ret),
        Ok(ret) => Err(Summary::Host(Ret::classify(ret, ReturnKind::Status))),
        Err(_) => Err(Summary::Host(Ret::Raw([u64::MAX - 1, 0, 0, 0]))),
    }
}

/// A guest operation of vCPU 0 that must end as `expected`.
fn guest_must<B: Backend>(
    backend: &mut B,
    handle: u64,
    regs: [u64; 8],
    expected: Summary,
) -> Result<(), Summary> {
    vcpu_must(backend, handle, 0, regs, expected)
}

/// A guest operation of vCPU `vcpu` that must end as `expected`.
fn vcpu_must<B: Backend>(
    backend: &mut B,
    handle: u64,
    vcpu: u32,
    regs: [u64; 8],
    expected: Summary,
) -> Result<(), Summary> {
    let got = match backend.guest_op(handle, vcpu, GuestOp::Hvc(regs)) {
        Ok(outcome) => guest_summary(outcome, ReturnKind::Status),
        Err(_) => Summary::Guest {
            exit: None,
            end: GuestEnd::RunFailed(Ret::Raw([u64::MAX - 1, 0, 0, 0])),
        },
    };
    if got == expected { Ok(()) } else { Err(got) }
}

fn alloc<B: Backend>(backend: &mut B, nr: u32) -> Result<u64, Summary> {
    backend
        .alloc_pages(nr)
        .ok_or(Summary::Host(Ret::Raw([0, 0, 0, 0])))
}

fn run_step<B: Backend>(backend: &mut B, ledger: &mut Ledger, step: Step) -> Result<(), Summary> {
    let handle = |ledger: &Ledger, vm: VmRef| ledger.handle(vm).unwrap_or(0);
    match step {
        Step::CreateVm(vm, kind) => create_vm(backend, ledger, vm, kind),
        Step::ShareHyp(page) => {
            must(backend, FunctionId::HOST_SHARE_HYP, &[ledger.pfn(page)]).map(drop)
        }
        Step::Topup(vm, page) => must(
            backend,
            FunctionId::VM_TOPUP,
            &[handle(ledger, vm), ledger.pfn(page), 1],
        )
        .map(drop),
        Step::Donate(vm, page, gfn) => must(
            backend,
            FunctionId::VM_DONATE,
            &[handle(ledger, vm), ledger.pfn(page), gfn, 1],
        )
        .map(drop),
        Step::GuestShare(vm, gfn) => guest_share(backend, handle(ledger, vm), gfn),
        Step::CreateVcpu(vm, vcpu) => must(
            backend,
            FunctionId::VCPU_CREATE,
            // Only vCPU 0 takes an entry point and x0 (4.8).
            &if vcpu == 0 {
                [handle(ledger, vm), 0, ipa(CODE_GFN), CHANNEL_IPA]
            } else {
                [handle(ledger, vm), vcpu.into(), 0, 0]
            },
        )
        .map(drop),
        Step::Run(vm) => {
            let regs = guest_regs(FunctionId::HYP_MEMINFO, &[]);
            let expected = Summary::guest(Ret::Values([PAGE_SIZE, 0, 0]));
            guest_must(backend, handle(ledger, vm), regs, expected)
        }
        Step::Stop(vm, how) => {
            let (id, exit) = match how {
                PowerOff::Off => (FunctionId::PSCI_SYSTEM_OFF, Exit::SystemOff),
                PowerOff::Reset => (FunctionId::PSCI_SYSTEM_RESET, Exit::SystemReset),
            };
            let expected = Summary::Guest {
                exit: Some(exit),
                end: GuestEnd::Stopped,
            };
            guest_must(backend, handle(ledger, vm), guest_regs(id, &[]), expected)
        }
        Step::Destroy(vm) => must(backend, FunctionId::VM_DESTROY, &[handle(ledger, vm)]).map(drop),
        // The boot decides it; the host runs these cases only in that boot.
        Step::UnconfinedBoot => Ok(()),
        Step::GuardMap(vm, gfn) => {
            let regs = guest_regs(FunctionId::MMIO_GUARD_MAP, &[ipa(gfn)]);
            guest_must(backend, handle(ledger, vm), regs, Summary::guest(Ret::Ok))
        }
        Step::FillGuard(vm, nr) => {
            for gfn in (GUARD_FILL_GFN..).take(nr as usize) {
                let regs = guest_regs(FunctionId::MMIO_GUARD_MAP, &[ipa(gfn)]);
                guest_must(backend, handle(ledger, vm), regs, Summary::guest(Ret::Ok))?;
            }
            Ok(())
        }
        Step::CpuOn(vm, vcpu) => {
            let args = [vcpu.into(), ipa(CODE_GFN), CHANNEL_IPA];
            let regs = guest_regs(FunctionId::PSCI_CPU_ON, &args);
            let expected = Summary::Guest {
                exit: Some(Exit::VcpuStarted { vcpu }),
                end: GuestEnd::Returned(Ret::Ok),
            };
            guest_must(backend, handle(ledger, vm), regs, expected)
        }
        Step::CpuOff(vm, vcpu) => {
            let regs = guest_regs(FunctionId::PSCI_CPU_OFF, &[]);
            let expected = Summary::Guest {
                exit: Some(Exit::VcpuOff),
                end: GuestEnd::Stopped,
            };
            vcpu_must(backend, handle(ledger, vm), vcpu, regs, expected)
        }
        Step::FillVms => {
            let missing = (MAX_VMS as usize).saturating_sub(ledger.live_vms());
            for slot in ledger.fill.iter_mut().take(missing) {
                let ret = must(backend, FunctionId::VM_CREATE, &[1, 32])?;
                *slot = Some(ret[1]);
            }
            Ok(())
        }
    }
}

/// x0..x7 of a guest call.
fn guest_regs(id: FunctionId, args: &[u64]) -> [u64; 8] {
    let mut regs = [0; 8];
    regs[0] = id.to_x0();
    for (slot, arg) in regs[1..].iter_mut().zip(args) {
        *slot = *arg;
    }
    regs
}

/// Step::CreateVm: see [`VmKind`] for what each kind gets.
fn create_vm<B: Backend>(
    backend: &mut B,
    ledger: &mut Ledger,
    vm: VmRef,
    kind: VmKind,
) -> Result<(), Summary> {
    let ret = must(
        backend,
        FunctionId::VM_CREATE,
        &[NR_VCPUS.into(), IPA_BITS.into()],
    )?;
    let handle = ret[1];
    ledger.handles[vm.index()] = Some(handle);
    if kind == VmKind::Bare {
        return Ok(());
    }
    let pool = alloc(backend, POOL_PAGES)?;
    ledger.pages[vm.index()].pool = Some(pool);
    must(
        backend,
        FunctionId::VM_TOPUP,
        &[handle, pool, POOL_PAGES.into()],
    )?;
    let code = alloc(backend, 1)?;
    backend.write_guest_code(code);
    ledger.pages[vm.index()].code = Some(code);
    must(backend, FunctionId::VM_DONATE, &[handle, code, CODE_GFN, 1])?;
    must(
        backend,
        FunctionId::VCPU_CREATE,
        &[handle, 0, ipa(CODE_GFN), CHANNEL_IPA],
    )?;
    if kind == VmKind::Spinner {
        // The control page is the guest's, shared with the host by the guest itself (2.0
        // has no host-to-guest sharing, 4.6).
        let ctrl = alloc(backend, 1)?;
        ledger.pages[vm.index()].ctrl = Some(ctrl);
        must(backend, FunctionId::VM_DONATE, &[handle, ctrl, CTRL_GFN, 1])?;
        guest_share(backend, handle, CTRL_GFN)?;
    }
    Ok(())
}

/// The guest of VM `handle` shares its frame `gfn` with the host (MEM_SHARE).
fn guest_share<B: Backend>(backend: &mut B, handle: u64, gfn: u64) -> Result<(), Summary> {
    let regs = guest_regs(FunctionId::MEM_SHARE, &[ipa(gfn), 1]);
    let expected = Summary::Guest {
        exit: Some(Exit::MemShared {
            ipa: ipa(gfn),
            nr: 1,
        }),
        end: GuestEnd::Returned(Ret::Ok),
    };
    guest_must(backend, handle, regs, expected)
}

fn start_spinning<B: Backend>(backend: &mut B, ledger: &Ledger) -> Result<(), BackendError> {
    let handle = ledger
        .handle(VmRef::V0)
        .ok_or(BackendError("V0 has no handle"))?;
    let ctrl = ledger.pages[VmRef::V0.index()]
        .ctrl
        .ok_or(BackendError("V0 has no control page"))?;
    backend.start_spinning(handle, 0, ctrl)
}

fn stop_spinning<B: Backend>(backend: &mut B) -> Result<(), BackendError> {
    let outcome = backend.stop_spinning()?;
    if outcome.exit.is_none() && outcome.end == GuestOpEnd::Returned([0; 4]) {
        Ok(())
    } else {
        Err(BackendError(
            "the spinning vCPU did not end its spin cleanly",
        ))
    }
}

/// Destroys every VM of the case and takes back every page; results are not judged.
fn teardown<B: Backend>(backend: &mut B, ledger: &mut Ledger) {
    let handles = ledger
        .handles
        .iter()
        .chain(ledger.fill.iter())
        .flatten()
        .copied();
    let mut destroyed = [0u64; 5 + MAX_VMS as usize];
    for (slot, handle) in destroyed.iter_mut().zip(handles) {
        *slot = handle;
    }
    for handle in destroyed.iter().filter(|&&h| h != 0) {
        let _ = observe::call(backend, FunctionId::VM_DESTROY, &[*handle]);
    }
    for pages in ledger.pages {
        if let Some(pool) = pages.pool {
            let _ = observe::call(backend, FunctionId::VM_RECLAIM, &[pool, POOL_PAGES.into()]);
            backend.retire_pages(pool, POOL_PAGES);
        }
        for page in [pages.code, pages.ctrl].into_iter().flatten() {
            let _ = observe::call(backend, FunctionId::VM_RECLAIM, &[page, 1]);
            backend.retire_pages(page, 1);
        }
    }
    for page in PageRef::FRESH {
        let pfn = ledger.pfn(page);
        let _ = observe::call(backend, FunctionId::VM_RECLAIM, &[pfn, 1]);
        let _ = observe::call(backend, FunctionId::HOST_UNSHARE_HYP, &[pfn]);
    }
    backend.retire_pages(ledger.fresh, FRESH_PAGES);
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NoPages => f.write_str("no free host pages left"),
            Problem::Setup { index, step, got } => {
                write!(f, "setup step {} ({step}) gave {got}", index + 1)
            }
            Problem::Before {
                watch,
                expected,
                got,
            } => write!(
                f,
                "after setup {}: expected {expected}; got {got}",
                Label(watch)
            ),
            Problem::After {
                watch,
                expected,
                got,
                more,
            } => {
                write!(
                    f,
                    "afterwards {}: expected {expected}; got {got}",
                    Label(watch)
                )?;
                if *more > 0 {
                    write!(f, " (and {more} more)")?;
                }
                Ok(())
            }
            Problem::Backend(error) => write!(f, "backend: {error}"),
        }
    }
}
