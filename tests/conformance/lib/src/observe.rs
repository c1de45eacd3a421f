//! "Ownership seen from both sides": what the runner reads to check a watched page, guest
//! frame, VM or vCPU, and what the document says it must read in a given state.
//!
//! - A page, from the host: a load of its first word (performed, with its content, or
//!   aborted by EL2, 7.4); from EL2: HOST_SHARE_HYP then, if that succeeded,
//!   HOST_UNSHARE_HYP at once (succeeds only for HOST), else HOST_UNSHARE_HYP then, if
//!   that succeeded, HOST_SHARE_HYP at once (succeeds only for HOST_SHARED_HYP). Net
//!   effect none.
//! - A guest frame, from the guest: IPA_STATE, then a load by vCPU 0 (the word, or an
//!   MMIO exit if the frame has no page; a frame that is not registered is registered
//!   around the load, and not loaded if every MMIO-guard slot is taken). Since 2.0 the host has no call that names a guest frame without
//!   changing it (1.0's HOST_UNSHARE_GUEST probe is retired with the call, 4.6); the page
//!   behind the frame is watched as a page.
//! - A VM: VM_TOPUP of a carve-out page (DENIED for a live VM, NOT_FOUND for a dead
//!   handle; never changes anything).
//! - A vCPU: VCPU_RUN with completion 1 while its last exit takes none (INVALID_PARAMETER
//!   if it exists, NOT_FOUND if not, BUSY if running; never runs the guest).

use crate::backend::{Backend, GuestOp, GuestOpEnd, HostRead, LOAD_SENTINEL};
use crate::outcome::{ExitText, Ret};
use crate::plan::{PageRef, ReturnKind, Watch, ipa};
use crate::runner::Ledger;
use crate::states::{Content, IpaState, PageState};
use core::fmt;
use hvc_abi::{Error, Exit, FunctionId, MmioAccess};

/// What the host's load of a page's first word did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostView {
    Readable(Content),
    Abort,
    /// A fault other than the abort 7.4 promises (ESR_EL1).
    Fault(u64),
    Device,
    Unprobed,
}

/// What EL2's share/unshare probes say of a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HypView {
    /// HOST_SHARE_HYP succeeded (and was undone).
    Host,
    /// HOST_UNSHARE_HYP succeeded (and was undone).
    SharedHyp,
    /// Both DENIED.
    Neither,
    /// Anything else: the two results.
    Odd(Ret, Ret),
}

/// What the guest's own IPA_STATE and load of the frame did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GuestView {
    /// IPA_STATE said `state` (1 owned, 2 shared) and the load read the page.
    Reads {
        content: Content,
        state: u64,
    },
    /// An MMIO read exit: the frame has no page; IPA_STATE said whether it is registered.
    NoPage {
        registered: bool,
    },
    /// IPA_STATE said 0 (no page, not registered) and MMIO_GUARD_MAP said BUSY: every
    /// slot is taken, so the guest did not load (it would be a MEM_FAULT).
    GuardFull,
    NotLooked,
    /// Anything else: the exit it caused (if any) and its end.
    Odd(Option<Exit>, GuestOpEnd),
}

/// What the liveness probe says of a handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VmView {
    Alive,
    Dead,
    /// The case never got a handle for this VM (its creation failed).
    NoHandle,
    Odd(Ret),
}

/// What the vCPU probe says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VcpuView {
    Exists,
    Absent,
    Running,
    Odd(Ret),
}

/// One observation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum View {
    Page { host: HostView, hyp: HypView },
    Ipa { guest: GuestView },
    Vm(VmView),
    Vcpu(VcpuView),
}

/// What the document says `watch` must read.
pub fn expected(watch: &Watch) -> View {
    match *watch {
        Watch::Page {
            page,
            state,
            content,
        } => {
            let host = match (page, state.host_access()) {
                (PageRef::NoRam, _) => HostView::Unprobed,
                (_, None) => HostView::Device,
                (_, Some(true)) => HostView::Readable(content),
                (_, Some(false)) => HostView::Abort,
            };
            let hyp = match state {
                PageState::Host => HypView::Host,
                PageState::SharedHyp => HypView::SharedHyp,
                _ => HypView::Neither,
            };
            View::Page { host, hyp }
        }
        Watch::Ipa {
            state,
            content,
            registered,
            guard_full,
            guest_looks,
            ..
        } => {
            let guest = match (guest_looks, state) {
                (false, _) => GuestView::NotLooked,
                (true, IpaState::Unmapped) if registered => GuestView::NoPage { registered },
                (true, IpaState::Unmapped) if guard_full => GuestView::GuardFull,
                (true, IpaState::Unmapped) => GuestView::NoPage { registered },
                (true, IpaState::GuestOwned) => GuestView::Reads { content, state: 1 },
                (true, IpaState::GuestShared) => GuestView::Reads { content, state: 2 },
            };
            View::Ipa { guest }
        }
        Watch::Vm { alive, .. } => View::Vm(if alive { VmView::Alive } else { VmView::Dead }),
        Watch::Vcpu { exists, .. } => View::Vcpu(if exists {
            VcpuView::Exists
        } else {
            VcpuView::Absent
        }),
    }
}

/// Reads `watch` on the backend.
pub fn observe<B: Backend>(backend: &mut B, ledger: &Ledger, watch: &Watch) -> View {
    match *watch {
        Watch::Page { page, .. } => {
            let pfn = ledger.pfn(page);
            let host = match backend.host_read(pfn) {
                HostRead::Value(value) => HostView::Readable(Content::of(value, pfn)),
                HostRead::Abort => HostView::Abort,
                HostRead::OtherFault(esr) => HostView::Fault(esr),
                HostRead::Device => HostView::Device,
                HostRead::Unprobed => HostView::Unprobed,
            };
            View::Page {
                host,
                hyp: hyp_probe(backend, pfn),
            }
        }
        Watch::Ipa {
            vm,
            gfn,
            page,
            guest_looks,
            ..
        } => {
            let guest = match ledger.handle(vm) {
                Some(handle) if guest_looks => {
                    guest_probe(backend, handle, gfn, page.map(|p| ledger.pfn(p)))
                }
                _ => GuestView::NotLooked,
            };
            View::Ipa { guest }
        }
        Watch::Vm { vm, .. } => View::Vm(match ledger.handle(vm) {
            None => VmView::NoHandle,
            Some(handle) => {
                let hyp = ledger.pfn(PageRef::Hyp);
                match call(backend, FunctionId::VM_TOPUP, &[handle, hyp, 1]) {
                    Ret::Error(Error::Denied) => VmView::Alive,
                    Ret::Error(Error::NotFound) => VmView::Dead,
                    other => VmView::Odd(other),
                }
            }
        }),
        Watch::Vcpu { vm, vcpu, .. } => View::Vcpu(match ledger.handle(vm) {
            None => VcpuView::Odd(Ret::Error(Error::NotFound)),
            Some(handle) => match call(backend, FunctionId::VCPU_RUN, &[handle, vcpu.into(), 1]) {
                Ret::Error(Error::InvalidParameter) => VcpuView::Exists,
                Ret::Error(Error::NotFound) => VcpuView::Absent,
                Ret::Error(Error::Busy) => VcpuView::Running,
                other => VcpuView::Odd(other),
            },
        }),
    }
}

/// A host call with status results, classified; a backend failure reads as `Raw` zeros
/// with x0 = u64::MAX - 1 (no ABI value).
pub(crate) fn call<B: Backend>(backend: &mut B, id: FunctionId, args: &[u64]) -> Ret {
    let mut regs = [0; 8];
    regs[0] = id.to_x0();
    for (slot, arg) in regs[1..].iter_mut().zip(args) {
        *slot = *arg;
    }
    match backend.hvc(regs) {
        Ok(ret) => Ret::classify(ret, ReturnKind::Status),
        Err(_) => Ret::Raw([u64::MAX - 1, 0, 0, 0]),
    }
}

fn hyp_probe<B: Backend>(backend: &mut B, pfn: u64) -> HypView {
    let share = call(backend, FunctionId::HOST_SHARE_HYP, &[pfn]);
    if share == Ret::Ok {
        let undo = call(backend, FunctionId::HOST_UNSHARE_HYP, &[pfn]);
        return if undo == Ret::Ok {
            HypView::Host
        } else {
            HypView::Odd(share, undo)
        };
    }
    let unshare = call(backend, FunctionId::HOST_UNSHARE_HYP, &[pfn]);
    match (share, unshare) {
        (Ret::Error(Error::Denied), Ret::Ok) => {
            let undo = call(backend, FunctionId::HOST_SHARE_HYP, &[pfn]);
            if undo == Ret::Ok {
                HypView::SharedHyp
            } else {
                HypView::Odd(unshare, undo)
            }
        }
        (Ret::Error(Error::Denied), Ret::Error(Error::Denied)) => HypView::Neither,
        _ => HypView::Odd(share, unshare),
    }
}

fn guest_probe<B: Backend>(backend: &mut B, handle: u64, gfn: u64, pfn: Option<u64>) -> GuestView {
    let address = ipa(gfn);
    let outcome = match backend.guest_op(handle, 0, GuestOp::Load(address)) {
        Ok(outcome) => outcome,
        Err(_) => return GuestView::Odd(None, GuestOpEnd::RunFailed([u64::MAX - 1, 0, 0, 0])),
    };
    // The load operation reports x0 = 0, x1 = the word, x2 = IPA_STATE's answer, or
    // x0 = MMIO_GUARD_MAP's error (guest_code.rs).
    match (outcome.exit, outcome.end) {
        (None, GuestOpEnd::Returned([0, value, state @ (1 | 2), 0])) => GuestView::Reads {
            content: Content::of(value, pfn.unwrap_or(0)),
            state,
        },
        (
            Some(Exit::Mmio {
                ipa,
                access: MmioAccess::Read,
                ..
            }),
            GuestOpEnd::Returned([0, LOAD_SENTINEL, state @ (0 | 3), 0]),
        ) if ipa == address => GuestView::NoPage {
            registered: state == 3,
        },
        (None, GuestOpEnd::Returned([x0, 0, 0, 0])) if x0 == Error::Busy.as_x0() => {
            GuestView::GuardFull
        }
        (exit, end) => GuestView::Odd(exit, end),
    }
}

/// A watch's label in messages: `P0`, `V0:gfn 0x40200`, `V0`, `V0.vcpu1`.
pub struct Label<'a>(pub &'a Watch);

impl fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self.0 {
            Watch::Page { page, .. } => f.write_str(page.name()),
            Watch::Ipa { vm, gfn, .. } => write!(f, "{}:gfn {gfn:#x}", vm.name()),
            Watch::Vm { vm, .. } => f.write_str(vm.name()),
            Watch::Vcpu { vm, vcpu, .. } => write!(f, "{}.vcpu{vcpu}", vm.name()),
        }
    }
}

impl fmt::Display for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            View::Page { host, hyp } => {
                match host {
                    HostView::Readable(content) => write!(f, "host reads {content}")?,
                    HostView::Abort => f.write_str("host read aborts")?,
                    HostView::Fault(esr) => write!(f, "host read faults (ESR {esr:#x})")?,
                    HostView::Device => f.write_str("host reads the device")?,
                    HostView::Unprobed => f.write_str("host read not tried")?,
                }
                match hyp {
                    HypView::Host => f.write_str(", HOST_SHARE_HYP works"),
                    HypView::SharedHyp => f.write_str(", HOST_UNSHARE_HYP works"),
                    HypView::Neither => f.write_str(", both hyp probes DENIED"),
                    HypView::Odd(a, b) => write!(f, ", hyp probes gave {a} and {b}"),
                }
            }
            View::Ipa { guest } => match guest {
                GuestView::Reads { content, state } => {
                    write!(f, "IPA_STATE {state}, guest reads {content}")
                }
                GuestView::NoPage { registered: true } => {
                    f.write_str("IPA_STATE 3 (registered), guest load exits MMIO")
                }
                GuestView::NoPage { registered: false } => {
                    f.write_str("IPA_STATE 0, guest load exits MMIO")
                }
                GuestView::GuardFull => f.write_str("IPA_STATE 0, MMIO_GUARD_MAP BUSY (no load)"),
                GuestView::NotLooked => f.write_str("guest load not tried"),
                GuestView::Odd(exit, end) => {
                    f.write_str("guest load: ")?;
                    if let Some(exit) = exit {
                        write!(f, "exit {}, ", ExitText(exit))?;
                    }
                    write!(f, "{end:x?}")
                }
            },
            View::Vm(view) => match view {
                VmView::Alive => f.write_str("alive"),
                VmView::Dead => f.write_str("dead (NOT_FOUND)"),
                VmView::NoHandle => f.write_str("no handle"),
                VmView::Odd(ret) => write!(f, "liveness probe gave {ret}"),
            },
            View::Vcpu(view) => match view {
                VcpuView::Exists => f.write_str("exists"),
                VcpuView::Absent => f.write_str("absent"),
                VcpuView::Running => f.write_str("running"),
                VcpuView::Odd(ret) => write!(f, "probe gave {ret}"),
            },
        }
    }
}
