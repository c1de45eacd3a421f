//! The calls under test: their ids, registers, error tables (transcribed from
//! `docs/abi.md` in the document's row order) and the states they are tried in.

use super::classes::ArgClass::{self, *};
use super::{GuardSubject, Subject, VmSubject};
use crate::plan::{Caller, FirmwareCall, ReturnKind};
use crate::states::{IpaState, PageState};
use core::fmt;
use hvc_abi::{Error, FunctionId};

/// A call of the ABI as the suite tries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Call {
    Uid,
    Features,
    HostShareHyp,
    HostUnshareHyp,
    VmCreate,
    VmTopup,
    VmDonate,
    VcpuCreate,
    VcpuRun,
    VmDestroy,
    VmReclaim,
    /// VENDOR_HYP_CALL_UID made by a guest.
    GuestUid,
    /// FEATURES made by a guest.
    GuestFeatures,
    HypMeminfo,
    MemShare,
    MemUnshare,
    MemRelinquish,
    MmioGuardMap,
    MmioGuardUnmap,
    IpaState,
    /// A guest HVC of another owner (a SiP call): forwarded to the host.
    GuestHvc,
    PsciSystemOff,
    PsciSystemReset,
    /// PSCI CPU_ON of vCPU 1 at the guest's code (5.5): exit VCPU_STARTED.
    PsciCpuOn,
    /// PSCI_VERSION (5.5): 1.0.
    PsciVersion,
    /// PSCI_FEATURES of CPU_ON (5.5): served.
    PsciFeatures,
    /// AFFINITY_INFO of vCPU 1 (5.5): off.
    PsciAffinityInfo,
    /// SMCCC_VERSION (5.8): the payload's 1.1.
    SmcccVersion,
    /// SMCCC_ARCH_FEATURES of SMCCC_ARCH_FEATURES (5.8): implemented.
    SmcccArchFeatures,
    /// PSCI CPU_OFF made by vCPU 1, which vCPU 0 started (5.5): exit VCPU_OFF.
    PsciCpuOff,
    /// SMCCC_ARCH_WORKAROUND_1, _2 or _3 (5.8): the firmware's answer, never the host's.
    SmcccWorkaround(u32),
    /// A TRNG call (5.8): the firmware's answer, never the host's.
    Trng(u32),
    /// An owner-6 SMC64 fast id with no call (host).
    Unassigned(u32),
}

/// The ids [`Call::Unassigned`] tries: the two retired in 2.0 (1.0's HOST_SHARE_GUEST and
/// HOST_UNSHARE_GUEST, 4.6), the first after the host calls, the last before the guest
/// calls, the first after them, and the highest function number.
pub const UNASSIGNED_IDS: [u32; 6] = [
    0xC600_0006,
    0xC600_0007,
    0xC600_000C,
    0xC600_001F,
    0xC600_0026,
    0xC600_FFFF,
];

/// The three Spectre workaround calls [`Call::SmcccWorkaround`] tries (5.8).
pub const WORKAROUND_IDS: [u32; 3] = [
    FunctionId::SMCCC_ARCH_WORKAROUND_1.0,
    FunctionId::SMCCC_ARCH_WORKAROUND_2.0,
    FunctionId::SMCCC_ARCH_WORKAROUND_3.0,
];

/// The TRNG calls [`Call::Trng`] tries (5.8): every one the document lists.
pub const TRNG_IDS: [u32; 5] = [
    FunctionId::TRNG_VERSION.0,
    FunctionId::TRNG_FEATURES.0,
    FunctionId::TRNG_GET_UUID.0,
    FunctionId::TRNG_RND32.0,
    FunctionId::TRNG_RND64.0,
];

/// Bits of entropy the TRNG_RND cases ask for (within both calls' limits: 96 and 192).
pub const TRNG_BITS: u64 = 64;

/// A SiP service call (owner 2): a guest HVC of another owner than 6 or PSCI's, which the
/// payload forwards (5.4).
const SIP_CALL: u32 = 0xC200_0000;
/// x1 of the forwarded guest HVC (it reaches the host in x3 of the exit).
pub const FORWARDED_X1: u64 = 0x1234_5678_9ABC_DEF0;

/// Where a call's arguments are (register indices), from the call's section.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    pub handle: Option<usize>,
    pub pfn: Option<usize>,
    pub gfn: Option<usize>,
    pub ipa: Option<usize>,
    pub nr: Option<usize>,
    pub vcpu: Option<usize>,
    pub entry: Option<usize>,
    pub completion: Option<usize>,
    pub nr_vcpus: Option<usize>,
    pub ipa_bits: Option<usize>,
    /// The first MBZ register (8 if none).
    pub first_mbz: usize,
}

/// One row of an error table: its error and what makes it apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row {
    pub error: Error,
    pub triggers: &'static [Trigger],
}

/// What makes a row apply: an argument class, or the state the call meets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    Class(ArgClass),
    State(Subject),
}

use Trigger::{Class as C, State as S};

const IP: Error = Error::InvalidParameter;
const RANGE: Error = Error::Range;
const NF: Error = Error::NotFound;

const fn row(error: Error, triggers: &'static [Trigger]) -> Row {
    Row { error, triggers }
}

const MBZ: Row = row(IP, &[C(Reserved), C(ReservedX7)]);
const GUARD_FULL: &[Trigger] = &[S(Subject::Guard(GuardSubject::Full))];
const NR_ZERO: Row = row(IP, &[C(NrZero)]);
const NR_LIMIT: Row = row(RANGE, &[C(NrOver), C(NrWide)]);
const PFN_RANGE: Row = row(RANGE, &[C(BeyondPa), C(Wrap)]);
const HANDLE: Row = row(NF, &[C(HandleZero), C(HandleDead)]);

const HOST_SHARE_HYP_ROWS: &[Row] = &[
    MBZ,
    PFN_RANGE,
    row(Error::Denied, &[S(Subject::Page(PageState::Hyp))]),
];
const VM_CREATE_ROWS: &[Row] = &[
    MBZ,
    row(IP, &[C(VcpusZero)]),
    row(IP, &[C(IpaBitsLow), C(IpaBitsHigh), C(IpaBitsWide)]),
    row(RANGE, &[C(VcpusOver), C(VcpusWide)]),
    // Only on CPUs with a 32- or 36-bit PA size, which QEMU does not model.
    row(IP, &[]),
    row(Error::Busy, &[S(Subject::Vm(VmSubject::Full))]),
    // Depends on how the payload was booted: its cases run in a boot of their own.
    row(Error::Denied, &[S(Subject::Vm(VmSubject::UnconfinedBoot))]),
];
const VM_TOPUP_ROWS: &[Row] = &[
    MBZ,
    NR_ZERO,
    NR_LIMIT,
    PFN_RANGE,
    HANDLE,
    row(Error::Denied, &[S(Subject::Page(PageState::Hyp))]),
    // Only on CPUs whose IPA size needs concatenated root tables (40/42-bit PA); the suite
    // runs on `max` (48-bit); stage2's unit tests and the Cortex-A53 ABI scenarios cover it.
    row(Error::NoMemory, &[]),
];
const MAP_ROWS: &[Row] = &[
    MBZ,
    NR_ZERO,
    NR_LIMIT,
    PFN_RANGE,
    row(RANGE, &[C(BeyondIpa), C(GfnWrap)]),
    HANDLE,
    row(RANGE, &[C(BeyondVmIpa)]),
    row(Error::Denied, &[S(Subject::Page(PageState::Hyp))]),
    row(Error::NoMemory, &[C(EmptyPool)]),
];
const VCPU_CREATE_ROWS: &[Row] = &[
    MBZ,
    row(IP, &[C(Unaligned)]),
    row(IP, &[C(SecondaryEntry)]),
    row(RANGE, &[C(VcpuRange), C(VcpuWide)]),
    row(RANGE, &[C(BootEntryBeyondIpa)]),
    HANDLE,
    row(RANGE, &[C(BootEntryBeyondVmIpa)]),
    row(NF, &[C(VcpuAbsent)]),
    row(Error::Busy, &[C(VcpuExists)]),
    row(Error::Denied, &[S(Subject::Vm(VmSubject::Ran))]),
];
const VCPU_RUN_ROWS: &[Row] = &[
    MBZ,
    row(RANGE, &[C(VcpuRange), C(VcpuWide)]),
    HANDLE,
    row(NF, &[C(VcpuAbsent), C(VcpuUncreated)]),
    row(Error::Busy, &[C(VcpuRunning)]),
    row(IP, &[C(Completion)]),
];
const VM_DESTROY_ROWS: &[Row] = &[MBZ, HANDLE, row(Error::Busy, &[C(VcpuRunning)])];
const VM_RECLAIM_ROWS: &[Row] = &[
    MBZ,
    NR_ZERO,
    NR_LIMIT,
    PFN_RANGE,
    row(Error::Denied, &[S(Subject::Page(PageState::Host))]),
];
const FEATURES_ROWS: &[Row] = &[MBZ];

/// The rows of MEM_SHARE, MEM_UNSHARE and MEM_RELINQUISH (5.3); `refused` is a state
/// that gives DENIED.
const fn mem_rows(refused: &'static [Trigger]) -> [Row; 8] {
    [
        MBZ,
        row(IP, &[C(Unaligned)]),
        NR_ZERO,
        NR_LIMIT,
        row(RANGE, &[C(IpaWrap), C(BeyondIpa)]),
        row(RANGE, &[C(BeyondVmIpa)]),
        row(NF, &[S(Subject::Ipa(IpaState::Unmapped))]),
        row(Error::Denied, refused),
    ]
}
const MEM_SHARE_ROWS: &[Row] = &mem_rows(&[S(Subject::Ipa(IpaState::GuestShared))]);
const MEM_UNSHARE_ROWS: &[Row] = &mem_rows(&[S(Subject::Ipa(IpaState::GuestOwned))]);
const MEM_RELINQUISH_ROWS: &[Row] = &mem_rows(&[S(Subject::Ipa(IpaState::GuestShared))]);

/// The rows of MMIO_GUARD_MAP and MMIO_GUARD_UNMAP (5.6, one table for both): rows 5-7
/// apply to one of the two each (`not_found`, `denied`, `busy`).
const fn mmio_guard_rows(
    not_found: &'static [Trigger],
    denied: &'static [Trigger],
    busy: &'static [Trigger],
) -> [Row; 7] {
    [
        MBZ,
        row(IP, &[C(Unaligned)]),
        row(RANGE, &[C(BeyondIpa)]),
        row(RANGE, &[C(BeyondVmIpa)]),
        row(NF, not_found),
        row(Error::Denied, denied),
        row(Error::Busy, busy),
    ]
}
const MMIO_GUARD_MAP_ROWS: &[Row] =
    &mmio_guard_rows(&[], &[S(Subject::Ipa(IpaState::GuestOwned))], GUARD_FULL);
const IPA_STATE_ROWS: &[Row] = &[
    MBZ,
    row(IP, &[C(Unaligned)]),
    row(RANGE, &[C(BeyondIpa)]),
    row(RANGE, &[C(BeyondVmIpa)]),
];
const MMIO_GUARD_UNMAP_ROWS: &[Row] =
    &mmio_guard_rows(&[S(Subject::Ipa(IpaState::Unmapped))], &[], &[]);

/// A row of the document that no case of this suite reaches, and the test that checks it.
#[derive(Clone, Copy, Debug)]
pub struct CoveredElsewhere {
    pub call: Call,
    /// The row's number in the call's table (1-based).
    pub row: usize,
    /// The source file of the test, from the repository's root.
    pub file: &'static str,
    pub test: &'static str,
    /// Why the suite does not reach it.
    pub why: &'static str,
}

/// The rows of `COVERED_ELSEWHERE` are checked against the test sources by
/// `tests/doc_tables.rs` (a test host's quoted test name, or a Rust `fn` of that name).
/// VM_CREATE's DENIED row, which depends on a boot option, has a boot of its own
/// (`Boot::UnconfinedDma`); the rows below depend on the CPU's physical-address size.
pub const COVERED_ELSEWHERE: &[CoveredElsewhere] = &[
    CoveredElsewhere {
        call: Call::VmCreate,
        row: 5,
        file: "stage2/src/pgtable/tests.rs",
        test: "vm_ipa_sizes_above_the_cpus_are_refused",
        why: "only CPUs with a 32- or 36-bit PA size refuse an ipa_bits the decoder accepts; QEMU models none",
    },
    CoveredElsewhere {
        call: Call::VmTopup,
        row: 7,
        file: "stage2/src/ownership/tests.rs",
        test: "on_a_40_bit_cpu_a_vms_first_pool_pages_must_hold_its_two_concatenated_root_tables",
        why: "only CPUs whose IPA size needs concatenated root tables (40/42-bit PA); the suite runs on `max`",
    },
];

impl Call {
    /// Every call the suite tries, in the order of its output.
    pub const ALL: [Call; 44] = [
        Call::Uid,
        Call::Features,
        Call::HostShareHyp,
        Call::HostUnshareHyp,
        Call::VmCreate,
        Call::VmTopup,
        Call::VmDonate,
        Call::VcpuCreate,
        Call::VcpuRun,
        Call::VmDestroy,
        Call::VmReclaim,
        Call::GuestUid,
        Call::GuestFeatures,
        Call::HypMeminfo,
        Call::MemShare,
        Call::MemUnshare,
        Call::MemRelinquish,
        Call::MmioGuardMap,
        Call::MmioGuardUnmap,
        Call::IpaState,
        Call::GuestHvc,
        Call::PsciSystemOff,
        Call::PsciSystemReset,
        Call::PsciCpuOn,
        Call::PsciVersion,
        Call::PsciFeatures,
        Call::PsciAffinityInfo,
        Call::SmcccVersion,
        Call::SmcccArchFeatures,
        Call::PsciCpuOff,
        Call::SmcccWorkaround(WORKAROUND_IDS[0]),
        Call::SmcccWorkaround(WORKAROUND_IDS[1]),
        Call::SmcccWorkaround(WORKAROUND_IDS[2]),
        Call::Trng(TRNG_IDS[0]),
        Call::Trng(TRNG_IDS[1]),
        Call::Trng(TRNG_IDS[2]),
        Call::Trng(TRNG_IDS[3]),
        Call::Trng(TRNG_IDS[4]),
        Call::Unassigned(UNASSIGNED_IDS[0]),
        Call::Unassigned(UNASSIGNED_IDS[1]),
        Call::Unassigned(UNASSIGNED_IDS[2]),
        Call::Unassigned(UNASSIGNED_IDS[3]),
        Call::Unassigned(UNASSIGNED_IDS[4]),
        Call::Unassigned(UNASSIGNED_IDS[5]),
    ];

    /// The function id (W0).
    pub const fn id(self) -> u32 {
        match self {
            Call::Uid | Call::GuestUid => FunctionId::VENDOR_HYP_CALL_UID.0,
            Call::Features | Call::GuestFeatures => FunctionId::FEATURES.0,
            Call::HostShareHyp => FunctionId::HOST_SHARE_HYP.0,
            Call::HostUnshareHyp => FunctionId::HOST_UNSHARE_HYP.0,
            Call::VmCreate => FunctionId::VM_CREATE.0,
            Call::VmTopup => FunctionId::VM_TOPUP.0,
            Call::VmDonate => FunctionId::VM_DONATE.0,
            Call::VcpuCreate => FunctionId::VCPU_CREATE.0,
            Call::VcpuRun => FunctionId::VCPU_RUN.0,
            Call::VmDestroy => FunctionId::VM_DESTROY.0,
            Call::VmReclaim => FunctionId::VM_RECLAIM.0,
            Call::HypMeminfo => FunctionId::HYP_MEMINFO.0,
            Call::MemShare => FunctionId::MEM_SHARE.0,
            Call::MemUnshare => FunctionId::MEM_UNSHARE.0,
            Call::MemRelinquish => FunctionId::MEM_RELINQUISH.0,
            Call::MmioGuardMap => FunctionId::MMIO_GUARD_MAP.0,
            Call::MmioGuardUnmap => FunctionId::MMIO_GUARD_UNMAP.0,
            Call::IpaState => FunctionId::IPA_STATE.0,
            Call::GuestHvc => SIP_CALL,
            Call::PsciSystemOff => FunctionId::PSCI_SYSTEM_OFF.0,
            Call::PsciSystemReset => FunctionId::PSCI_SYSTEM_RESET.0,
            Call::PsciCpuOn => FunctionId::PSCI_CPU_ON.0,
            Call::PsciVersion => FunctionId::PSCI_VERSION.0,
            Call::PsciFeatures => FunctionId::PSCI_FEATURES.0,
            Call::PsciAffinityInfo => FunctionId::PSCI_AFFINITY_INFO_64.0,
            Call::SmcccVersion => FunctionId::SMCCC_VERSION.0,
            Call::SmcccArchFeatures => FunctionId::SMCCC_ARCH_FEATURES.0,
            Call::PsciCpuOff => FunctionId::PSCI_CPU_OFF.0,
            Call::SmcccWorkaround(id) | Call::Trng(id) | Call::Unassigned(id) => id,
        }
    }

    /// Who makes the call (before any class changes it).
    pub const fn caller(self) -> Caller {
        match self {
            Call::GuestUid
            | Call::GuestFeatures
            | Call::HypMeminfo
            | Call::MemShare
            | Call::MemUnshare
            | Call::MemRelinquish
            | Call::MmioGuardMap
            | Call::MmioGuardUnmap
            | Call::IpaState
            | Call::GuestHvc
            | Call::PsciSystemOff
            | Call::PsciSystemReset
            | Call::PsciCpuOn
            | Call::PsciVersion
            | Call::PsciFeatures
            | Call::PsciAffinityInfo
            | Call::SmcccVersion
            | Call::SmcccArchFeatures
            | Call::PsciCpuOff
            | Call::SmcccWorkaround(_)
            | Call::Trng(_) => Caller::Guest(crate::plan::VmRef::V0),
            _ => Caller::Host,
        }
    }

    pub const fn returns(self) -> ReturnKind {
        match self {
            Call::Uid | Call::GuestUid => ReturnKind::Uid,
            Call::VmCreate => ReturnKind::Handle,
            Call::VcpuRun => ReturnKind::Exit,
            Call::GuestHvc => ReturnKind::Reply,
            Call::SmcccWorkaround(_) => ReturnKind::Firmware(FirmwareCall::Workaround),
            Call::Trng(id) => ReturnKind::Firmware(match id {
                0x8400_0050 => FirmwareCall::TrngVersion,
                0x8400_0051 => FirmwareCall::TrngFeatures,
                0x8400_0052 => FirmwareCall::TrngUuid,
                _ => FirmwareCall::TrngRnd,
            }),
            _ => ReturnKind::Status,
        }
    }

    /// Register layout (the call's "Arguments" line in the document).
    pub const fn layout(self) -> Layout {
        let none = Layout {
            handle: None,
            pfn: None,
            gfn: None,
            ipa: None,
            nr: None,
            vcpu: None,
            entry: None,
            completion: None,
            nr_vcpus: None,
            ipa_bits: None,
            first_mbz: 8,
        };
        match self {
            Call::Features | Call::GuestFeatures | Call::HypMeminfo => Layout {
                first_mbz: 1,
                ..none
            },
            Call::HostShareHyp | Call::HostUnshareHyp => Layout {
                pfn: Some(1),
                first_mbz: 2,
                ..none
            },
            Call::VmCreate => Layout {
                nr_vcpus: Some(1),
                ipa_bits: Some(2),
                first_mbz: 3,
                ..none
            },
            Call::VmTopup => Layout {
                handle: Some(1),
                pfn: Some(2),
                nr: Some(3),
                first_mbz: 4,
                ..none
            },
            Call::VmDonate => Layout {
                handle: Some(1),
                pfn: Some(2),
                gfn: Some(3),
                nr: Some(4),
                first_mbz: 5,
                ..none
            },
            Call::VcpuCreate => Layout {
                handle: Some(1),
                vcpu: Some(2),
                entry: Some(3),
                first_mbz: 5,
                ..none
            },
            Call::VcpuRun => Layout {
                handle: Some(1),
                vcpu: Some(2),
                completion: Some(3),
                first_mbz: 4,
                ..none
            },
            Call::VmDestroy => Layout {
                handle: Some(1),
                first_mbz: 2,
                ..none
            },
            Call::VmReclaim => Layout {
                pfn: Some(1),
                nr: Some(2),
                first_mbz: 3,
                ..none
            },
            Call::MemShare | Call::MemUnshare | Call::MemRelinquish => Layout {
                ipa: Some(1),
                nr: Some(2),
                first_mbz: 3,
                ..none
            },
            Call::MmioGuardMap | Call::MmioGuardUnmap | Call::IpaState => Layout {
                ipa: Some(1),
                first_mbz: 2,
                ..none
            },
            Call::Uid
            | Call::GuestUid
            | Call::GuestHvc
            | Call::PsciSystemOff
            | Call::PsciSystemReset
            | Call::PsciCpuOn
            | Call::PsciVersion
            | Call::PsciFeatures
            | Call::PsciAffinityInfo
            | Call::SmcccVersion
            | Call::SmcccArchFeatures
            | Call::PsciCpuOff
            | Call::SmcccWorkaround(_)
            | Call::Trng(_)
            | Call::Unassigned(_) => none,
        }
    }

    /// The call's error table in the document's order (empty for calls without one).
    pub const fn rows(self) -> &'static [Row] {
        match self {
            Call::Features | Call::GuestFeatures | Call::HypMeminfo => FEATURES_ROWS,
            Call::HostShareHyp | Call::HostUnshareHyp => HOST_SHARE_HYP_ROWS,
            Call::VmCreate => VM_CREATE_ROWS,
            Call::VmTopup => VM_TOPUP_ROWS,
            Call::VmDonate => MAP_ROWS,
            Call::VcpuCreate => VCPU_CREATE_ROWS,
            Call::VcpuRun => VCPU_RUN_ROWS,
            Call::VmDestroy => VM_DESTROY_ROWS,
            Call::VmReclaim => VM_RECLAIM_ROWS,
            Call::MemShare => MEM_SHARE_ROWS,
            Call::MemUnshare => MEM_UNSHARE_ROWS,
            Call::MemRelinquish => MEM_RELINQUISH_ROWS,
            Call::MmioGuardMap => MMIO_GUARD_MAP_ROWS,
            Call::MmioGuardUnmap => MMIO_GUARD_UNMAP_ROWS,
            Call::IpaState => IPA_STATE_ROWS,
            Call::Uid
            | Call::GuestUid
            | Call::GuestHvc
            | Call::PsciSystemOff
            | Call::PsciSystemReset
            | Call::PsciCpuOn
            | Call::PsciVersion
            | Call::PsciFeatures
            | Call::PsciAffinityInfo
            | Call::SmcccVersion
            | Call::SmcccArchFeatures
            | Call::PsciCpuOff
            | Call::SmcccWorkaround(_)
            | Call::Trng(_)
            | Call::Unassigned(_) => &[],
        }
    }

    /// The state in which the call with valid arguments succeeds: the base of its
    /// argument-class cases.
    pub const fn accepting(self) -> Subject {
        match self {
            Call::Uid | Call::Features | Call::VmCreate | Call::Unassigned(_) => {
                Subject::Vm(VmSubject::None)
            }
            Call::HostShareHyp | Call::VmTopup | Call::VmDonate => Subject::Page(PageState::Host),
            Call::HostUnshareHyp => Subject::Page(PageState::SharedHyp),
            Call::VmReclaim => Subject::Page(PageState::Reclaimable),
            Call::MemShare | Call::MemRelinquish => Subject::Ipa(IpaState::GuestOwned),
            Call::MmioGuardMap | Call::IpaState => Subject::Ipa(IpaState::Unmapped),
            Call::MmioGuardUnmap => Subject::Guard(GuardSubject::Registered),
            Call::MemUnshare => Subject::Ipa(IpaState::GuestShared),
            Call::VcpuCreate
            | Call::VcpuRun
            | Call::VmDestroy
            | Call::GuestUid
            | Call::GuestFeatures
            | Call::HypMeminfo
            | Call::GuestHvc
            | Call::PsciSystemOff
            | Call::PsciSystemReset => Subject::Vm(VmSubject::Vm),
            Call::PsciCpuOn | Call::PsciAffinityInfo => Subject::Vm(VmSubject::Secondary),
            Call::PsciCpuOff => Subject::Vm(VmSubject::SecondaryOn),
            Call::PsciVersion
            | Call::PsciFeatures
            | Call::SmcccVersion
            | Call::SmcccArchFeatures
            | Call::SmcccWorkaround(_)
            | Call::Trng(_) => Subject::Vm(VmSubject::Vm),
        }
    }

    /// Classes tried besides those of the error table: ids that are not calls, bits the
    /// ABI ignores, things it allows.
    pub const fn extra_classes(self) -> &'static [ArgClass] {
        match self {
            Call::Uid => &[ArgsSet, UpperX0, SveHint],
            Call::Features => &[UpperX0, SveHint, Smc32, Yielding, IdBits],
            Call::HostShareHyp => &[UpperX0, SveHint, Smc32, Yielding],
            Call::HostUnshareHyp | Call::VmReclaim => &[Smc32, Yielding],
            Call::VmCreate => &[LimitsMin, LimitsMax, Smc32, Yielding, FromGuest],
            Call::VmTopup | Call::VcpuCreate => &[VcpuRunning, Smc32, Yielding],
            Call::VmDonate => &[VcpuRunning, CrossBlock, Smc32, Yielding],
            Call::VcpuRun => &[Smc32, Yielding],
            Call::VmDestroy => &[Smc32, Yielding, IdBits],
            Call::GuestFeatures => &[Smc32],
            Call::HypMeminfo | Call::MemShare => &[Smc32, FromHost],
            Call::MemUnshare | Call::MemRelinquish | Call::MmioGuardUnmap | Call::IpaState => {
                &[FromHost]
            }
            Call::MmioGuardMap => &[Smc32, FromHost],
            // CPU_ON's SMC32 form is not served (5.5).
            Call::PsciCpuOn => &[Smc32],
            // Every argument register set: ignored (1.3).
            Call::PsciVersion | Call::SmcccVersion => &[ArgsSet],
            // ARCH_FEATURES of each workaround: the firmware's answer (5.8).
            Call::SmcccArchFeatures => &[Workaround1, Workaround2, Workaround3],
            Call::PsciFeatures
            | Call::PsciAffinityInfo
            | Call::PsciCpuOff
            | Call::SmcccWorkaround(_)
            | Call::Trng(_) => &[],
            Call::GuestHvc => &[UpperX0, SveHint],
            Call::GuestUid | Call::PsciSystemOff => &[ArgsSet],
            Call::PsciSystemReset | Call::Unassigned(_) => &[],
        }
    }

    /// The subject a class is tried in when it is not the call's accepting state.
    pub const fn subject_for(self, class: ArgClass) -> Subject {
        match (self, class) {
            (Call::VmDonate, VcpuRunning) => Subject::Ipa(IpaState::Unmapped),
            (Call::VmCreate, FromGuest) => Subject::Vm(VmSubject::Vm),
            (Call::VcpuRun, OtherVcpu) => Subject::Vm(VmSubject::Stopped),
            (
                Call::MemShare
                | Call::MemUnshare
                | Call::MemRelinquish
                | Call::HypMeminfo
                | Call::MmioGuardMap
                | Call::MmioGuardUnmap
                | Call::IpaState,
                FromHost,
            ) => Subject::Vm(VmSubject::None),
            _ => self.accepting(),
        }
    }

    /// The section of `docs/abi.md` with the call's error table.
    pub const fn doc_section(self) -> Option<&'static str> {
        Some(match self {
            Call::Features | Call::GuestFeatures => "## 2. Discovery",
            Call::HostShareHyp => "### 4.1 ",
            Call::HostUnshareHyp => "### 4.2 ",
            Call::VmCreate => "### 4.3 ",
            Call::VmTopup => "### 4.4 ",
            Call::VmDonate => "### 4.5 ",
            Call::VcpuCreate => "### 4.8 ",
            Call::VcpuRun => "### 4.9 ",
            Call::VmDestroy => "### 4.10 ",
            Call::VmReclaim => "### 4.11 ",
            Call::HypMeminfo => "### 5.2 ",
            Call::MemShare | Call::MemUnshare | Call::MemRelinquish => "### 5.3 ",
            Call::MmioGuardMap | Call::MmioGuardUnmap => "### 5.6 ",
            Call::IpaState => "### 5.7 ",
            _ => return None,
        })
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Call::Uid => "VENDOR_HYP_CALL_UID",
            Call::Features => "FEATURES",
            Call::HostShareHyp => "HOST_SHARE_HYP",
            Call::HostUnshareHyp => "HOST_UNSHARE_HYP",
            Call::VmCreate => "VM_CREATE",
            Call::VmTopup => "VM_TOPUP",
            Call::VmDonate => "VM_DONATE",
            Call::VcpuCreate => "VCPU_CREATE",
            Call::VcpuRun => "VCPU_RUN",
            Call::VmDestroy => "VM_DESTROY",
            Call::VmReclaim => "VM_RECLAIM",
            Call::GuestUid => "GUEST_VENDOR_HYP_CALL_UID",
            Call::GuestFeatures => "GUEST_FEATURES",
            Call::HypMeminfo => "HYP_MEMINFO",
            Call::MemShare => "MEM_SHARE",
            Call::MmioGuardMap => "MMIO_GUARD_MAP",
            Call::MmioGuardUnmap => "MMIO_GUARD_UNMAP",
            Call::IpaState => "IPA_STATE",
            Call::MemUnshare => "MEM_UNSHARE",
            Call::MemRelinquish => "MEM_RELINQUISH",
            Call::GuestHvc => "GUEST_HVC",
            Call::PsciSystemOff => "PSCI_SYSTEM_OFF",
            Call::PsciSystemReset => "PSCI_SYSTEM_RESET",
            Call::PsciCpuOn => "PSCI_CPU_ON",
            Call::PsciVersion => "PSCI_VERSION",
            Call::PsciFeatures => "PSCI_FEATURES",
            Call::PsciAffinityInfo => "PSCI_AFFINITY_INFO",
            Call::SmcccVersion => "SMCCC_VERSION",
            Call::SmcccArchFeatures => "SMCCC_ARCH_FEATURES",
            Call::PsciCpuOff => "PSCI_CPU_OFF",
            Call::SmcccWorkaround(id) => match id {
                0x8000_8000 => "SMCCC_ARCH_WORKAROUND_1",
                0x8000_7FFF => "SMCCC_ARCH_WORKAROUND_2",
                _ => "SMCCC_ARCH_WORKAROUND_3",
            },
            Call::Trng(id) => match id {
                0x8400_0050 => "TRNG_VERSION",
                0x8400_0051 => "TRNG_FEATURES",
                0x8400_0052 => "TRNG_GET_UUID",
                0x8400_0053 => "TRNG_RND32",
                _ => "TRNG_RND64",
            },
            Call::Unassigned(id) => return write!(f, "ID_{id:#X}"),
        };
        f.write_str(name)
    }
}
