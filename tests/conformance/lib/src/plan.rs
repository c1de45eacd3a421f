//! The symbolic world a case is written in.
//!
//! A case names VMs, pages and guest frames by role; the runner gives each role a real
//! value on the backend (fresh host pages, the handles VM_CREATE returns, the payload's
//! carve-out from the DTB). Setup is a list of [`Step`]s, each one or a few ABI calls with
//! a fixed expected result. The call under test is a [`SymCall`]: registers, some of them
//! symbolic. What to observe before and after the call is a list of [`Watch`]es, each
//! with the state the document says the watched thing is in.

use crate::outcome::Summary;
use crate::states::{Content, IpaState, PageState};
use core::fmt;
use hvc_abi::limits::{MAX_POOL_PAGES_PER_CALL, PAGE_SHIFT};

/// `ipa_bits` of every VM the suite creates (unless the case is about VM_CREATE itself).
pub const IPA_BITS: u32 = 32;
/// `nr_vcpus` of every VM the suite creates.
pub const NR_VCPUS: u32 = 2;
/// Where the conformance guest's code page is donated; vCPUs enter at its first byte.
pub const CODE_GFN: u64 = 0x4_0000;
/// Where a spinner VM's control page is lent (see [`VmKind::Spinner`]).
pub const CTRL_GFN: u64 = 0x4_0100;
/// The guest frame a case is about (2 MiB aligned, so that `G0..G0 + 2` stays in a block).
pub const G0: u64 = 0x4_0200;
/// The frame after [`G0`], for two-page ranges.
pub const G1: u64 = G0 + 1;
/// A frame whose two-page range `G_CROSS..G_CROSS + 2` crosses a 2 MiB boundary.
pub const G_CROSS: u64 = 0x4_05FF;
/// The guest's MMIO channel to its host (never backed by a page); the guest's x0 at entry.
/// The conformance guest registers its page with MMIO_GUARD_MAP before anything else, so
/// it holds one of the VM's `MAX_MMIO_GUARD_PAGES` slots from the first run on.
pub const CHANNEL_IPA: u64 = 0x1000_0000;
/// The first of the frames [`Step::FillGuard`] registers (never backed by a page).
pub const GUARD_FILL_GFN: u64 = 0x4_0800;
/// Pages a full VM's pool gets: the root table plus `MAX_POOL_PAGES_PER_CALL` for each of
/// ten mapping calls, so that no call of a case can meet NO_MEMORY (section 7.3).
pub const POOL_PAGES: u32 = 1 + MAX_POOL_PAGES_PER_CALL * 10;

/// The byte address of guest frame `gfn`.
pub const fn ipa(gfn: u64) -> u64 {
    gfn << PAGE_SHIFT
}

/// A VM of the case, by role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VmRef {
    /// The VM the case's state lives in.
    V0,
    /// The VM a pfn-state case gives pages to (so the page's own VM is not the target).
    V1,
    /// A VM created and destroyed in setup: its handle is dead.
    Dead,
    /// A VM created right after [`VmRef::Dead`] was destroyed, likely in the same slot.
    Spare,
    /// The VM the call under test created (VM_CREATE cases).
    Created,
}

impl VmRef {
    pub const ALL: [VmRef; 5] = [
        VmRef::V0,
        VmRef::V1,
        VmRef::Dead,
        VmRef::Spare,
        VmRef::Created,
    ];

    pub const fn index(self) -> usize {
        self as usize
    }

    pub const fn name(self) -> &'static str {
        match self {
            VmRef::V0 => "V0",
            VmRef::V1 => "V1",
            VmRef::Dead => "Vdead",
            VmRef::Spare => "Vspare",
            VmRef::Created => "Vnew",
        }
    }
}

/// How much of a VM setup builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VmKind {
    /// VM_CREATE only: no pool, no memory, no vCPU.
    Bare,
    /// VM_CREATE(NR_VCPUS, IPA_BITS); VM_TOPUP of POOL_PAGES; the conformance guest's code
    /// donated at CODE_GFN; VCPU_CREATE of vCPU 0 at it with x0 = CHANNEL_IPA.
    Full,
    /// Full, plus a page donated at CTRL_GFN and shared back by the guest (MEM_SHARE),
    /// through which the host stops vCPU 0 when
    /// it spins on another CPU.
    Spinner,
}

/// A page of the case, by role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PageRef {
    /// The page the case is about (fresh host RAM).
    P0,
    /// The page after P0 (two-page ranges).
    P1,
    /// A fresh host page a call maps into a guest (IPA-state cases).
    Q0,
    /// The page after Q0.
    Q1,
    /// A page of the payload's carve-out (`/reserved-memory/el2@...` of the host DTB).
    Hyp,
    /// The console UART's page.
    Mmio,
    /// A page above the end of RAM that no device occupies.
    NoRam,
}

impl PageRef {
    /// The fresh pages every case gets, in address order (one contiguous run).
    pub const FRESH: [PageRef; 4] = [PageRef::P0, PageRef::P1, PageRef::Q0, PageRef::Q1];
    /// Every page role.
    pub const ALL: [PageRef; 7] = [
        PageRef::P0,
        PageRef::P1,
        PageRef::Q0,
        PageRef::Q1,
        PageRef::Hyp,
        PageRef::Mmio,
        PageRef::NoRam,
    ];

    pub const fn index(self) -> usize {
        self as usize
    }

    /// The page `offset` pages after this one, where the suite's ranges go (P0 to P1,
    /// Q0 to Q1).
    pub const fn plus(self, offset: u64) -> Option<PageRef> {
        match (self, offset) {
            (page, 0) => Some(page),
            (PageRef::P0, 1) => Some(PageRef::P1),
            (PageRef::Q0, 1) => Some(PageRef::Q1),
            _ => None,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            PageRef::P0 => "P0",
            PageRef::P1 => "P1",
            PageRef::Q0 => "Q0",
            PageRef::Q1 => "Q1",
            PageRef::Hyp => "Phyp",
            PageRef::Mmio => "Pmmio",
            PageRef::NoRam => "Pnoram",
        }
    }

    /// Index in the fresh run, for P0..Q1.
    pub const fn fresh_index(self) -> Option<usize> {
        match self {
            PageRef::P0 => Some(0),
            PageRef::P1 => Some(1),
            PageRef::Q0 => Some(2),
            PageRef::Q1 => Some(3),
            _ => None,
        }
    }

    /// The special page this names, for Hyp, Mmio and NoRam.
    pub const fn special(self) -> Option<Special> {
        match self {
            PageRef::Hyp => Some(Special::Hyp),
            PageRef::Mmio => Some(Special::Mmio),
            PageRef::NoRam => Some(Special::NoRam),
            _ => None,
        }
    }
}

/// Pages whose state the platform fixes rather than the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Special {
    Hyp,
    Mmio,
    NoRam,
}

/// Which PSCI call stops a VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PowerOff {
    Off,
    Reset,
}

/// One setup step: ABI calls with a fixed expected result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// Builds a VM of this kind (see [`VmKind`]); every call must succeed.
    CreateVm(VmRef, VmKind),
    /// HOST_SHARE_HYP(page): OK.
    ShareHyp(PageRef),
    /// VM_TOPUP(vm, page, 1): OK.
    Topup(VmRef, PageRef),
    /// VM_DONATE(vm, page, gfn, 1): OK.
    Donate(VmRef, PageRef, u64),
    /// The guest of vm (vCPU 0) makes MEM_SHARE(ipa(gfn), 1): exit MEM_SHARED, then 0.
    GuestShare(VmRef, u64),
    /// VCPU_CREATE(vm, vcpu, 0, 0) (powered off; vCPU 0 is created with the VM): OK.
    CreateVcpu(VmRef, u32),
    /// The guest of vm (vCPU 0) makes HYP_MEMINFO: it has run, its last exit is MMIO.
    Run(VmRef),
    /// The guest of vm (vCPU 0) makes PSCI SYSTEM_OFF or SYSTEM_RESET: that exit.
    Stop(VmRef, PowerOff),
    /// VM_DESTROY(vm): OK.
    Destroy(VmRef),
    /// VM_CREATE(1, 32) until MAX_VMS VMs exist: each OK.
    FillVms,
    /// Nothing to call: the case runs in the boot with `/chosen/el2,unconfined-dma`
    /// (`cases::Boot::UnconfinedDma`), which the runner's backend was made for.
    UnconfinedBoot,
    /// The guest of vm (vCPU 0) makes MMIO_GUARD_MAP(ipa(gfn)): OK, no exit.
    GuardMap(VmRef, u64),
    /// The guest of vm (vCPU 0) registers this many frames from [`GUARD_FILL_GFN`] on
    /// (MMIO_GUARD_MAP): each OK, no exit.
    FillGuard(VmRef, u32),
    /// The guest of vm (vCPU 0) makes PSCI CPU_ON of vCPU `vcpu` at its own code with
    /// context id CHANNEL_IPA: exit VCPU_STARTED, then SUCCESS.
    CpuOn(VmRef, u32),
    /// vCPU `vcpu` of vm, running the conformance guest, makes PSCI CPU_OFF: exit
    /// VCPU_OFF, no return.
    CpuOff(VmRef, u32),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Step::CreateVm(vm, kind) => write!(f, "build {kind:?} VM {}", vm.name()),
            Step::ShareHyp(page) => write!(f, "HOST_SHARE_HYP({})", page.name()),
            Step::Topup(vm, page) => write!(f, "VM_TOPUP({}, {}, 1)", vm.name(), page.name()),
            Step::Donate(vm, page, gfn) => {
                write!(f, "VM_DONATE({}, {}, {gfn:#x}, 1)", vm.name(), page.name())
            }
            Step::GuestShare(vm, gfn) => {
                write!(f, "guest of {} MEM_SHARE({:#x}, 1)", vm.name(), ipa(gfn))
            }
            Step::CreateVcpu(vm, vcpu) => write!(f, "VCPU_CREATE({}, {vcpu})", vm.name()),
            Step::Run(vm) => write!(f, "guest of {} HYP_MEMINFO", vm.name()),
            Step::Stop(vm, PowerOff::Off) => write!(f, "guest of {} SYSTEM_OFF", vm.name()),
            Step::Stop(vm, PowerOff::Reset) => write!(f, "guest of {} SYSTEM_RESET", vm.name()),
            Step::Destroy(vm) => write!(f, "VM_DESTROY({})", vm.name()),
            Step::FillVms => write!(f, "VM_CREATE until MAX_VMS VMs exist"),
            Step::UnconfinedBoot => write!(f, "a boot with /chosen/el2,unconfined-dma"),
            Step::GuardMap(vm, gfn) => {
                write!(f, "guest of {} MMIO_GUARD_MAP({:#x})", vm.name(), ipa(gfn))
            }
            Step::FillGuard(vm, nr) => {
                write!(f, "guest of {} MMIO_GUARD_MAP of {nr} frames", vm.name())
            }
            Step::CpuOn(vm, vcpu) => write!(f, "guest of {} CPU_ON({vcpu})", vm.name()),
            Step::CpuOff(vm, vcpu) => write!(f, "vCPU {vcpu} of {} CPU_OFF", vm.name()),
        }
    }
}

/// A register value of the call under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sym {
    Lit(u64),
    /// The pfn of a page.
    Pfn(PageRef),
    /// The handle of a VM.
    Handle(VmRef),
}

/// Who makes the call under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Caller {
    Host,
    /// A vCPU of this VM ([`SymCall::vcpu`], 0 unless the case says otherwise), running
    /// the conformance guest.
    Guest(VmRef),
}

/// How the caller reads a successful return (section 1.2 and the calls' result rows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReturnKind {
    /// x0 = status, x1..x3 = results or 0.
    Status,
    /// VENDOR_HYP_CALL_UID: x0..x3 = the UID, x0 is not a status.
    Uid,
    /// VM_CREATE: x1 = an opaque nonzero handle.
    Handle,
    /// VCPU_RUN: x1..x3 = an exit.
    Exit,
    /// A guest HVC forwarded to the host: x0 = the host's completion, x1..x3 = 0.
    Reply,
    /// A guest's SMCCC architecture or TRNG call the firmware answers (5.8): the value is
    /// the firmware's, only its form is the ABI's.
    Firmware(FirmwareCall),
}

/// The firmware calls of 5.8, by the form of their answer (SMCCC v1.4, Arm DEN 0028, and
/// the TRNG firmware interface, Arm DEN 0098).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FirmwareCall {
    /// SMCCC_ARCH_FEATURES of a workaround: x0 = 0 (needed and offered), 1 (not needed on
    /// this CPU), NOT_SUPPORTED or NOT_REQUIRED (-2); x1..x3 = 0.
    WorkaroundFeatures,
    /// SMCCC_ARCH_WORKAROUND_1/2/3: SMCCC defines no result, so x0 is whatever the
    /// firmware left there (NOT_SUPPORTED if the payload did not call it); x1..x3 = 0.
    Workaround,
    /// TRNG_VERSION: x0 = a version (bit 31 clear, nonzero) or NOT_SUPPORTED; x1..x3 = 0.
    TrngVersion,
    /// TRNG_FEATURES: x0 = 0 or NOT_SUPPORTED; x1..x3 = 0.
    TrngFeatures,
    /// TRNG_GET_UUID: the UUID in x0..x3, 32 bits each (x0 not -1), or NOT_SUPPORTED.
    TrngUuid,
    /// TRNG_RND32/RND64: x0 = 0 and entropy in x1..x3, or NOT_SUPPORTED,
    /// INVALID_PARAMETERS (-2) or NO_ENTROPY (-3) with x1..x3 = 0.
    TrngRnd,
}

/// The call under test: x0..x7, some symbolic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SymCall {
    pub caller: Caller,
    /// The vCPU that makes a guest call (0 for every call but CPU_OFF).
    pub vcpu: u32,
    pub regs: [Sym; 8],
    pub returns: ReturnKind,
}

impl SymCall {
    /// A call with function id `id` and arguments `args` (x1..), zero in the rest.
    pub const fn new(caller: Caller, id: u32, args: &[Sym], returns: ReturnKind) -> Self {
        let mut regs = [Sym::Lit(0); 8];
        regs[0] = Sym::Lit(id as u64);
        let mut i = 0;
        while i < args.len() && i < 7 {
            regs[i + 1] = args[i];
            i += 1;
        }
        Self {
            caller,
            vcpu: 0,
            regs,
            returns,
        }
    }
}

/// Something observed before and after the call, with the state the document says it is
/// in. See `observe.rs` for what is read for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Watch {
    /// A physical page: the host's view (read or abort, and its content) and EL2's view
    /// (HOST_SHARE_HYP / HOST_UNSHARE_HYP probes, undone at once).
    Page {
        page: PageRef,
        state: PageState,
        content: Content,
    },
    /// A guest frame: if `guest_looks`, IPA_STATE and a load by the guest itself (the
    /// host has no call that names a guest frame without changing it, since 2.0). `page`
    /// is the page mapped there, if any; `registered`, whether the guest registered it as
    /// MMIO (5.6); `guard_full`, whether every MMIO-guard slot of the VM is taken.
    Ipa {
        vm: VmRef,
        gfn: u64,
        state: IpaState,
        page: Option<PageRef>,
        content: Content,
        registered: bool,
        guard_full: bool,
        guest_looks: bool,
    },
    /// Whether the handle names a live VM.
    Vm { vm: VmRef, alive: bool },
    /// Whether vCPU `vcpu` of the VM exists.
    Vcpu { vm: VmRef, vcpu: u32, exists: bool },
}

/// A list of at most `N` items without allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct List<T: Copy, const N: usize> {
    items: [Option<T>; N],
    len: usize,
}

impl<T: Copy, const N: usize> List<T, N> {
    pub const fn new() -> Self {
        Self {
            items: [None; N],
            len: 0,
        }
    }

    /// Appends `item`. The case generator's lists are sized for its largest case; a
    /// unit test checks that no push is dropped (`overflowed` stays false).
    pub fn push(&mut self, item: T) {
        match self.items.get_mut(self.len) {
            Some(slot) => {
                *slot = Some(item);
                self.len += 1;
            }
            None => self.len = N + 1,
        }
    }

    /// Whether a push found the list full.
    pub const fn overflowed(&self) -> bool {
        self.len > N
    }

    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        self.items.iter().flatten().copied()
    }

    pub fn len(&self) -> usize {
        self.len.min(N)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps the items `keep` returns true for, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let mut out = Self::new();
        for item in self.iter() {
            if keep(&item) {
                out.push(item);
            }
        }
        *self = out;
    }
}

impl<T: Copy, const N: usize> IntoIterator for List<T, N> {
    type Item = T;
    type IntoIter = core::iter::Flatten<core::array::IntoIter<Option<T>, N>>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter().flatten()
    }
}

impl<T: Copy, const N: usize> Default for List<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

/// Most setup steps of a case.
pub const MAX_STEPS: usize = 10;
/// Most watches of a case.
pub const MAX_WATCHES: usize = 10;

/// Everything the runner needs to run one case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Plan {
    pub steps: List<Step, MAX_STEPS>,
    /// vCPU 0 of V0 (a spinner VM) runs on another CPU while the call is made.
    pub running: bool,
    pub call: SymCall,
    /// The outcome the document promises.
    pub expect: Summary,
    /// The states setup must have produced.
    pub before: List<Watch, MAX_WATCHES>,
    /// The states after the call: the same as `before` unless the call succeeds.
    pub after: List<Watch, MAX_WATCHES>,
}
