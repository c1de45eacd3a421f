//! The case matrix.
//!
//! A case is a call, the state it meets (the subject) and the argument classes it is made
//! with; its name is `call/state/argclass` (`valid` when no class applies, classes joined
//! with `+`). The list is generated (see `generate.rs`):
//!
//! - every call that names pages x every page state of table 7.1 (valid arguments), and
//!   VM_DESTROY x the states it changes;
//! - every call that names guest frames x every IPA state of table 7.2;
//! - every argument class of every row of each call's error table, in the state where
//!   the call would otherwise succeed (so that "nothing changed" is a real check);
//! - precedence: for each row, the row with the next row that can hold at the same time
//!   (the earlier row's error must win, 1.6);
//! - ids that are not calls (SMC32 and yielding forms, reserved id bits, a caller's
//!   wrong-side calls, unassigned numbers), bits the ABI ignores (x0 upper half, the SVE
//!   hint), and what it allows (calls on a VM whose vCPU is running, ranges across
//!   2 MiB blocks, the limits of VM_CREATE);
//! - two-page ranges that mix states (all or nothing, and NOT_FOUND before DENIED).
//!
//! The expected outcome of each case comes from transcriptions of the document's tables
//! (`calls.rs` for the error tables in row order, `tables.rs` for 7.1 and 7.2, followed
//! through setup by `doc_state.rs`); the model computes its own, and the unit tests check
//! that the two agree for every case.

mod build;
pub mod calls;
pub mod classes;
pub mod doc_state;
mod generate;
pub mod tables;

use crate::plan::Plan;
use crate::states::{IpaState, PageState};
pub use calls::Call;
pub use classes::ArgClass;
use core::fmt;

/// The state a case's call meets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    /// The page the call names is in this state (P0, or a special page).
    Page(PageState),
    /// The guest frame the call names (G0 of V0) is in this state.
    Ipa(IpaState),
    /// A two-page range: P0 and P1 in these states.
    Range(PageState, PageState),
    /// A two-frame range of V0 in these states.
    IpaRange(IpaState, IpaState),
    /// The MMIO-guard registrations of V0 (5.6), around G0.
    Guard(GuardSubject),
    /// A VM-level state.
    Vm(VmSubject),
}

/// MMIO-guard states of V0: G0 registered or not, and whether every one of the VM's
/// `MAX_MMIO_GUARD_PAGES` slots is taken (the channel's page holds one, see
/// `plan::CHANNEL_IPA`; the others are frames from `plan::GUARD_FILL_GFN` on).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GuardSubject {
    /// G0 has no page and the guest registered it.
    Registered,
    /// Every slot taken; G0 has no page and is not registered.
    Full,
    /// Every slot taken, G0 among them.
    FullRegistered,
    /// Every slot taken; G0 is GUEST_OWNED.
    FullOwned,
}

/// VM-level states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VmSubject {
    /// No VM.
    None,
    /// V0 built (pool, guest code, vCPU 0 never run).
    Vm,
    /// V0 created only.
    Bare,
    /// V0 built and its vCPU 0 has run (its last exit was an MMIO write).
    Ran,
    /// V0 built with vCPUs 0 and 1; the guest made SYSTEM_OFF.
    Stopped,
    /// As `Stopped`, with SYSTEM_RESET.
    Reset,
    /// V0 built with vCPU 1 created too (powered off, 4.8), never run.
    Secondary,
    /// As `Secondary`, and the guest's vCPU 0 started vCPU 1 (PSCI CPU_ON), which has not
    /// run yet.
    SecondaryOn,
    /// As `SecondaryOn`, and vCPU 1 ran and made PSCI CPU_OFF.
    SecondaryOff,
    /// MAX_VMS VMs exist.
    Full,
    /// The payload was booted with `/chosen/el2,unconfined-dma` (4.3 row 6): a boot of its
    /// own, where no VM can exist ([`Boot::UnconfinedDma`]).
    UnconfinedBoot,
}

/// The boots the suite runs in: each case belongs to one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Boot {
    /// The payload's default boot: every case but those of the other boot.
    Plain,
    /// A boot with `/chosen/el2,unconfined-dma`: the payload creates no VM (4.3 row 6),
    /// so only VM_CREATE cases that need none run here.
    UnconfinedDma,
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Page(state) => f.write_str(state.case_name()),
            Subject::Ipa(state) => f.write_str(state.case_name()),
            Subject::Range(first, second) => {
                write!(f, "{}+{}", first.case_name(), second.case_name())
            }
            Subject::IpaRange(first, second) => {
                write!(f, "{}+{}", first.case_name(), second.case_name())
            }
            Subject::Guard(guard) => f.write_str(match guard {
                GuardSubject::Registered => "ipa_registered",
                GuardSubject::Full => "guard_full",
                GuardSubject::FullRegistered => "guard_full_registered",
                GuardSubject::FullOwned => "guard_full_owned",
            }),
            Subject::Vm(vm) => f.write_str(match vm {
                VmSubject::None => "none",
                VmSubject::Vm => "vm",
                VmSubject::Bare => "vm_bare",
                VmSubject::Ran => "vcpu_ran",
                VmSubject::Stopped => "stopped",
                VmSubject::Reset => "reset",
                VmSubject::Secondary => "vcpu1_off",
                VmSubject::SecondaryOn => "vcpu1_on",
                VmSubject::SecondaryOff => "vcpu1_cpu_off",
                VmSubject::Full => "vms_full",
                VmSubject::UnconfinedBoot => "unconfined_dma_boot",
            }),
        }
    }
}

/// One case of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Case {
    pub call: Call,
    pub subject: Subject,
    /// At most two classes; none means valid arguments.
    pub classes: [Option<ArgClass>; 2],
}

impl Case {
    pub const fn new(call: Call, subject: Subject, classes: [Option<ArgClass>; 2]) -> Self {
        Self {
            call,
            subject,
            classes,
        }
    }

    /// The classes the case is made with.
    pub fn classes(&self) -> impl Iterator<Item = ArgClass> + '_ {
        self.classes.iter().flatten().copied()
    }

    pub fn has(&self, class: ArgClass) -> bool {
        self.classes().any(|c| c == class)
    }

    /// The stable name `call/state/argclass`.
    pub fn name(&self) -> CaseName<'_> {
        CaseName(self)
    }

    /// The boot the case runs in.
    pub fn boot(&self) -> Boot {
        match self.subject {
            Subject::Vm(VmSubject::UnconfinedBoot) => Boot::UnconfinedDma,
            _ => Boot::Plain,
        }
    }

    /// What to set up, call and observe.
    pub fn plan(&self) -> Plan {
        build::plan(self)
    }
}

/// A case's name, printed without allocation.
pub struct CaseName<'a>(&'a Case);

impl fmt::Display for CaseName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let case = self.0;
        write!(f, "{}/{}/", case.call, case.subject)?;
        let mut classes = case.classes();
        match classes.next() {
            None => f.write_str("valid"),
            Some(first) => {
                f.write_str(first.name())?;
                for class in classes {
                    write!(f, "+{}", class.name())?;
                }
                Ok(())
            }
        }
    }
}

/// Every case of every boot, in the order they run.
pub fn all_cases() -> impl Iterator<Item = Case> {
    Call::ALL.into_iter().flat_map(generate::cases_of)
}

/// The cases of one boot, in the order they run.
pub fn boot_cases(boot: Boot) -> impl Iterator<Item = Case> {
    all_cases().filter(move |case| case.boot() == boot)
}

#[cfg(test)]
mod tests;
