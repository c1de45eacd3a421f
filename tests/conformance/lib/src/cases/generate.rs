//! The case list of each call, generated from its error table and the state tables.

use super::calls::{Call, Trigger};
use super::classes::ArgClass;
use super::{Case, GuardSubject, Subject, VmSubject};
use crate::plan::List;
use crate::states::{IpaState, PageState};

/// Most cases of one call.
pub const MAX_CASES_PER_CALL: usize = 64;

pub type CaseList = List<Case, MAX_CASES_PER_CALL>;

/// Every case of `call`, in order: the state matrix, valid calls in VM-level states, each
/// argument class, precedence pairs, mixed ranges.
pub fn cases_of(call: Call) -> CaseList {
    let mut out = CaseList::new();
    let mut add = |subject: Subject, classes: [Option<ArgClass>; 2]| {
        let case = Case::new(call, subject, classes);
        if !out.iter().any(|c| c == case) {
            out.push(case);
        }
    };
    for subject in matrix_subjects(call) {
        add(subject, [None, None]);
    }
    for class in table_classes(call).chain(call.extra_classes().iter().copied()) {
        add(call.subject_for(class), [Some(class), None]);
    }
    for (subject, classes) in precedence_pairs(call) {
        add(subject, classes);
    }
    for (subject, class) in states_before_args(call) {
        add(subject, [Some(class), None]);
    }
    for &subject in mixed_ranges(call) {
        add(subject, [None, None]);
    }
    for &(subject, class) in state_specific(call) {
        add(subject, [Some(class), None]);
    }
    out
}

/// The subjects a call is tried in with valid arguments.
fn matrix_subjects(call: Call) -> impl Iterator<Item = Subject> {
    let pages: &[PageState] = match call {
        Call::HostShareHyp
        | Call::HostUnshareHyp
        | Call::VmTopup
        | Call::VmDonate
        | Call::VmReclaim => &PageState::ALL,
        // The states VM_DESTROY changes (7.1, last paragraph).
        Call::VmDestroy => &[
            PageState::GuestOwned,
            PageState::GuestShared,
            PageState::VmPool,
        ],
        _ => &[],
    };
    let ipas: &[IpaState] = match call {
        Call::VmDonate
        | Call::MemShare
        | Call::MemUnshare
        | Call::MemRelinquish
        | Call::MmioGuardMap
        | Call::MmioGuardUnmap
        | Call::IpaState => &IpaState::ALL,
        _ => &[],
    };
    use GuardSubject as G;
    let guards: &[GuardSubject] = match call {
        // 5.6: registering again, a full list (BUSY, checked last: DENIED first, and a
        // page already registered is no new slot).
        Call::MmioGuardMap => &[G::Registered, G::Full, G::FullRegistered, G::FullOwned],
        // Unregistering frees a slot of a full list.
        Call::MmioGuardUnmap => &[G::Registered, G::FullRegistered],
        // A registered frame has no page: IPA_STATE 3, VM_DONATE DENIED (4.5 row 8), the
        // memory calls NOT_FOUND.
        Call::IpaState
        | Call::VmDonate
        | Call::MemShare
        | Call::MemUnshare
        | Call::MemRelinquish => &[G::Registered],
        _ => &[],
    };
    let vms: &[VmSubject] = match call {
        Call::Uid | Call::Features | Call::Unassigned(_) => &[VmSubject::None],
        Call::VmCreate => &[VmSubject::None, VmSubject::UnconfinedBoot],
        Call::VcpuCreate => &[VmSubject::Vm, VmSubject::Bare, VmSubject::Ran],
        Call::VcpuRun => &[VmSubject::Stopped, VmSubject::Reset],
        // 5.5: CPU_ON of an off vCPU, of an on one (ALREADY_ON), of one that powered
        // itself off (started afresh); AFFINITY_INFO in each of those states.
        Call::PsciCpuOn | Call::PsciAffinityInfo => &[
            VmSubject::Secondary,
            VmSubject::SecondaryOn,
            VmSubject::SecondaryOff,
        ],
        Call::PsciCpuOff => &[VmSubject::SecondaryOn],
        Call::PsciVersion
        | Call::PsciFeatures
        | Call::SmcccVersion
        | Call::SmcccArchFeatures
        | Call::SmcccWorkaround(_)
        | Call::Trng(_) => &[VmSubject::Vm],
        Call::VmDestroy => &[VmSubject::Vm, VmSubject::Stopped],
        Call::GuestUid
        | Call::GuestFeatures
        | Call::HypMeminfo
        | Call::GuestHvc
        | Call::PsciSystemOff
        | Call::PsciSystemReset => &[VmSubject::Vm],
        _ => &[],
    };
    pages
        .iter()
        .map(|&s| Subject::Page(s))
        .chain(ipas.iter().map(|&s| Subject::Ipa(s)))
        .chain(guards.iter().map(|&s| Subject::Guard(s)))
        .chain(vms.iter().map(|&s| Subject::Vm(s)))
}

/// Every argument class of the call's error table, in row order.
fn table_classes(call: Call) -> impl Iterator<Item = ArgClass> {
    call.rows()
        .iter()
        .flat_map(|row| row.triggers.iter())
        .filter_map(|trigger| match trigger {
            Trigger::Class(class) => Some(*class),
            Trigger::State(_) => None,
        })
}

/// Whether two row triggers can hold at once in one case.
fn compatible(a: Trigger, b: Trigger) -> bool {
    match (a, b) {
        (Trigger::Class(x), Trigger::Class(y)) => x.aspect() != y.aspect(),
        (Trigger::State(_), Trigger::State(_)) => false,
        _ => true,
    }
}

/// For each row, a case where it and the next row that can hold at the same time both
/// apply: the earlier row's error must win (1.6).
fn precedence_pairs(call: Call) -> List<(Subject, [Option<ArgClass>; 2]), 16> {
    let rows = call.rows();
    let mut pairs = List::new();
    for (i, row) in rows.iter().enumerate() {
        let Some(&first) = row.triggers.first() else {
            continue;
        };
        let second = rows[i + 1..].iter().find_map(|later| {
            later
                .triggers
                .iter()
                .copied()
                .find(|&t| compatible(first, t))
        });
        let Some(second) = second else {
            continue;
        };
        let mut subject = call.accepting();
        let mut classes = [None, None];
        let mut slot = 0;
        for trigger in [first, second] {
            match trigger {
                Trigger::State(state) => subject = state,
                Trigger::Class(class) => {
                    classes[slot] = Some(class);
                    slot += 1;
                }
            }
        }
        pairs.push((subject, classes));
    }
    pairs
}

/// Every refused state of the matrix with the class of the last row before the state
/// phase: the argument error must win whatever the page or frame is (1.6), and nothing
/// may change.
fn states_before_args(call: Call) -> impl Iterator<Item = (Subject, ArgClass)> {
    let rows = call.rows();
    let first_state = rows
        .iter()
        .position(|row| row.triggers.iter().any(|t| matches!(t, Trigger::State(_))));
    let class = first_state
        .and_then(|end| rows[..end].last())
        .and_then(|row| row.triggers.first())
        .and_then(|trigger| match trigger {
            Trigger::Class(class) => Some(*class),
            Trigger::State(_) => None,
        });
    let accepting = call.accepting();
    matrix_subjects(call)
        .filter(move |&subject| subject != accepting && !matches!(subject, Subject::Vm(_)))
        .filter_map(move |subject| class.map(|class| (subject, class)))
}

/// Two-page ranges whose pages or frames are in different states: all or nothing (1.7),
/// and NOT_FOUND before DENIED within the state phase (1.6).
fn mixed_ranges(call: Call) -> &'static [Subject] {
    use IpaState as I;
    use PageState as P;
    match call {
        Call::VmTopup => &[Subject::Range(P::Host, P::SharedHyp)],
        Call::VmDonate => &[
            Subject::Range(P::Host, P::GuestOwned),
            Subject::Range(P::Host, P::Host),
            Subject::IpaRange(I::Unmapped, I::GuestOwned),
        ],
        Call::VmReclaim => &[
            Subject::Range(P::Reclaimable, P::Host),
            Subject::Range(P::Reclaimable, P::Reclaimable),
        ],
        Call::MemShare => &[
            Subject::IpaRange(I::GuestOwned, I::Unmapped),
            Subject::IpaRange(I::GuestOwned, I::GuestShared),
            Subject::IpaRange(I::GuestOwned, I::GuestOwned),
        ],
        Call::MemUnshare => &[
            Subject::IpaRange(I::GuestShared, I::GuestOwned),
            Subject::IpaRange(I::GuestOwned, I::Unmapped),
        ],
        Call::MemRelinquish => &[
            Subject::IpaRange(I::GuestOwned, I::GuestShared),
            Subject::IpaRange(I::GuestShared, I::Unmapped),
        ],
        _ => &[],
    }
}

/// Classes whose rows depend on a VM-level state other than the accepting one.
fn state_specific(call: Call) -> &'static [(Subject, ArgClass)] {
    match call {
        Call::VcpuRun => &[
            // Row 6 after SYSTEM_OFF: that exit takes no completion.
            (Subject::Vm(VmSubject::Stopped), ArgClass::Completion),
            // Every vCPU of a stopped VM returns the stop exit at once.
            (Subject::Vm(VmSubject::Stopped), ArgClass::OtherVcpu),
            // vCPU 1, created powered off, runs nothing: VCPU_OFF (4.8, 4.9).
            (Subject::Vm(VmSubject::Secondary), ArgClass::OtherVcpu),
            // Nor after its own CPU_OFF (5.5, 4.9).
            (Subject::Vm(VmSubject::SecondaryOff), ArgClass::OtherVcpu),
            // Row 6 after an MMIO write exit.
            (Subject::Vm(VmSubject::Ran), ArgClass::Completion),
        ],
        // 4.3: after a boot with unconfined DMA, every row before 6 still wins (1.6), and
        // a wrong id is still NOT_SUPPORTED.
        Call::VmCreate => &[
            (Subject::Vm(VmSubject::UnconfinedBoot), ArgClass::Reserved),
            (Subject::Vm(VmSubject::UnconfinedBoot), ArgClass::VcpusZero),
            (
                Subject::Vm(VmSubject::UnconfinedBoot),
                ArgClass::IpaBitsHigh,
            ),
            (Subject::Vm(VmSubject::UnconfinedBoot), ArgClass::VcpusOver),
            (Subject::Vm(VmSubject::UnconfinedBoot), ArgClass::Smc32),
        ],
        _ => &[],
    }
}
