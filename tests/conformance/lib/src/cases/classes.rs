//! Argument classes: each changes the call under test in one way (a register, the caller,
//! the VM it names, a vCPU kept running) so that one row of the call's error table applies,
//! or so that something the document says is ignored or allowed is tried.

use super::calls::{Layout, WORKAROUND_IDS};
use crate::plan::{
    Caller, FirmwareCall, G_CROSS, IPA_BITS, NR_VCPUS, ReturnKind, Sym, SymCall, VmRef,
};
use hvc_abi::function_id::SMCCC_SVE_HINT;
use hvc_abi::limits::{MAX_IPA_BITS, MAX_PAGES_PER_CALL, MAX_VCPUS, MIN_IPA_BITS, PFN_LIMIT};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArgClass {
    /// The first MBZ register is 1 (1.3).
    Reserved,
    /// x7, the last MBZ register, has bit 63 set.
    ReservedX7,
    /// Every argument register nonzero, for calls whose arguments are ignored.
    ArgsSet,
    NrZero,
    /// `nr = MAX_PAGES_PER_CALL + 1`.
    NrOver,
    /// `nr = 2^32 + 1`: a decoder that truncates to 32 bits sees 1.
    NrWide,
    /// `pfn = u64::MAX`: `pfn + nr` wraps.
    Wrap,
    /// `pfn = 2^36`: the range ends above the PA space.
    BeyondPa,
    /// `gfn = u64::MAX`.
    GfnWrap,
    /// Guest calls: `ipa = 2^64 - 4096`: `ipa + nr * 4096` wraps.
    IpaWrap,
    /// Beyond the largest IPA space: `gfn = 2^28`, `ipa` or `entry_ipa = 2^40`.
    BeyondIpa,
    /// Beyond the VM's own IPA space (32 bits) but below 2^40.
    BeyondVmIpa,
    /// `ipa` 8 bytes past a page boundary, `entry_ipa` 2 bytes past a word.
    Unaligned,
    /// VCPU_CREATE of vCPU 1 with an entry point (only vCPU 0 takes one).
    SecondaryEntry,
    /// VCPU_CREATE of vCPU 0 with `entry_ipa = 2^40`.
    BootEntryBeyondIpa,
    /// VCPU_CREATE of vCPU 0 with `entry_ipa` beyond the VM's IPA space (32 bits).
    BootEntryBeyondVmIpa,
    /// The range is two pages and crosses a 2 MiB boundary in the guest (allowed: no
    /// alignment beyond the page, 1.4).
    CrossBlock,
    HandleZero,
    /// The handle of a destroyed VM, after a new VM was created (maybe in its slot).
    HandleDead,
    /// The target VM was never topped up.
    EmptyPool,
    /// `vcpu = MAX_VCPUS`.
    VcpuRange,
    /// `vcpu = 2^32`: a decoder that truncates to 32 bits sees 0.
    VcpuWide,
    /// `vcpu = nr_vcpus`: below MAX_VCPUS, beyond the VM's.
    VcpuAbsent,
    /// vCPU 1: within nr_vcpus, never created.
    VcpuUncreated,
    /// vCPU 0, which exists.
    VcpuExists,
    /// vCPU 1 of a stopped VM, created before the stop.
    OtherVcpu,
    /// vCPU 0 of V0 runs on another CPU during the call.
    VcpuRunning,
    /// `completion = 1` where it must be 0.
    Completion,
    VcpusZero,
    /// `nr_vcpus = MAX_VCPUS + 1`.
    VcpusOver,
    /// `nr_vcpus = 2^32 + 1`.
    VcpusWide,
    IpaBitsLow,
    IpaBitsHigh,
    /// `ipa_bits = 2^32 + 32`.
    IpaBitsWide,
    /// `nr_vcpus = 1, ipa_bits = MIN_IPA_BITS`.
    LimitsMin,
    /// `nr_vcpus = MAX_VCPUS, ipa_bits = MAX_IPA_BITS`.
    LimitsMax,
    /// The SMC32 form of the id (bit 30 clear).
    Smc32,
    /// The yielding form (bit 31 clear).
    Yielding,
    /// Bit 17 of the id set (bits [23:17] must be zero).
    IdBits,
    /// x0 bits [63:32] set: ignored.
    UpperX0,
    /// The SMCCC SVE hint (W0 bit 16) set: ignored.
    SveHint,
    /// A host call made by a guest.
    FromGuest,
    /// A guest call made by the host.
    FromHost,
    /// SMCCC_ARCH_FEATURES of SMCCC_ARCH_WORKAROUND_1 (x1): the firmware's answer.
    Workaround1,
    /// SMCCC_ARCH_FEATURES of SMCCC_ARCH_WORKAROUND_2.
    Workaround2,
    /// SMCCC_ARCH_FEATURES of SMCCC_ARCH_WORKAROUND_3.
    Workaround3,
}

/// Which part of the call a class changes; two classes combine only if they change
/// different parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aspect {
    Mbz,
    Count,
    Pfn,
    Address,
    Vm,
    Vcpu,
    Running,
    Completion,
    NrVcpus,
    IpaBits,
    Id,
}

impl ArgClass {
    /// The name in case names.
    pub const fn name(self) -> &'static str {
        match self {
            ArgClass::Reserved => "reserved",
            ArgClass::ReservedX7 => "reserved_x7",
            ArgClass::ArgsSet => "args_set",
            ArgClass::NrZero => "nr_zero",
            ArgClass::NrOver => "nr_over",
            ArgClass::NrWide => "nr_wide",
            ArgClass::Wrap => "wrap",
            ArgClass::BeyondPa => "beyond_pa",
            ArgClass::SecondaryEntry => "secondary_entry",
            ArgClass::BootEntryBeyondIpa => "boot_entry_beyond_ipa",
            ArgClass::BootEntryBeyondVmIpa => "boot_entry_beyond_vm_ipa",
            ArgClass::GfnWrap => "gfn_wrap",
            ArgClass::IpaWrap => "wrap",
            ArgClass::BeyondIpa => "beyond_ipa",
            ArgClass::BeyondVmIpa => "beyond_vm_ipa",
            ArgClass::Unaligned => "unaligned",
            ArgClass::CrossBlock => "cross_block",
            ArgClass::HandleZero => "handle_zero",
            ArgClass::HandleDead => "handle_dead",
            ArgClass::EmptyPool => "empty_pool",
            ArgClass::VcpuRange => "vcpu_range",
            ArgClass::VcpuWide => "vcpu_wide",
            ArgClass::VcpuAbsent => "vcpu_absent",
            ArgClass::VcpuUncreated => "vcpu_uncreated",
            ArgClass::VcpuExists => "vcpu_exists",
            ArgClass::OtherVcpu => "other_vcpu",
            ArgClass::VcpuRunning => "vcpu_running",
            ArgClass::Completion => "completion",
            ArgClass::VcpusZero => "vcpus_zero",
            ArgClass::VcpusOver => "vcpus_over",
            ArgClass::VcpusWide => "vcpus_wide",
            ArgClass::IpaBitsLow => "ipa_bits_low",
            ArgClass::IpaBitsHigh => "ipa_bits_high",
            ArgClass::IpaBitsWide => "ipa_bits_wide",
            ArgClass::LimitsMin => "limits_min",
            ArgClass::LimitsMax => "limits_max",
            ArgClass::Smc32 => "smc32",
            ArgClass::Yielding => "yielding",
            ArgClass::IdBits => "id_bit17",
            ArgClass::UpperX0 => "x0_upper",
            ArgClass::SveHint => "sve_hint",
            ArgClass::FromGuest => "from_guest",
            ArgClass::FromHost => "from_host",
            ArgClass::Workaround1 => "workaround_1",
            ArgClass::Workaround2 => "workaround_2",
            ArgClass::Workaround3 => "workaround_3",
        }
    }

    pub const fn aspect(self) -> Aspect {
        match self {
            ArgClass::Reserved | ArgClass::ReservedX7 | ArgClass::ArgsSet => Aspect::Mbz,
            ArgClass::NrZero | ArgClass::NrOver | ArgClass::NrWide => Aspect::Count,
            ArgClass::Wrap | ArgClass::BeyondPa => Aspect::Pfn,
            ArgClass::GfnWrap
            | ArgClass::IpaWrap
            | ArgClass::BeyondIpa
            | ArgClass::BeyondVmIpa
            | ArgClass::Unaligned
            | ArgClass::SecondaryEntry
            | ArgClass::CrossBlock
            | ArgClass::Workaround1
            | ArgClass::Workaround2
            | ArgClass::Workaround3 => Aspect::Address,
            ArgClass::HandleZero | ArgClass::HandleDead | ArgClass::EmptyPool => Aspect::Vm,
            ArgClass::VcpuRange
            | ArgClass::VcpuWide
            | ArgClass::VcpuAbsent
            | ArgClass::VcpuUncreated
            | ArgClass::VcpuExists
            | ArgClass::OtherVcpu
            | ArgClass::BootEntryBeyondIpa
            | ArgClass::BootEntryBeyondVmIpa => Aspect::Vcpu,
            ArgClass::VcpuRunning => Aspect::Running,
            ArgClass::Completion => Aspect::Completion,
            ArgClass::VcpusZero
            | ArgClass::VcpusOver
            | ArgClass::VcpusWide
            | ArgClass::LimitsMin
            | ArgClass::LimitsMax => Aspect::NrVcpus,
            ArgClass::IpaBitsLow | ArgClass::IpaBitsHigh | ArgClass::IpaBitsWide => Aspect::IpaBits,
            ArgClass::Smc32
            | ArgClass::Yielding
            | ArgClass::IdBits
            | ArgClass::UpperX0
            | ArgClass::SveHint
            | ArgClass::FromGuest
            | ArgClass::FromHost => Aspect::Id,
        }
    }

    /// Whether the class makes the id one that is not a call of this ABI for the caller
    /// (phase 1 of 1.6: NOT_SUPPORTED before any other check).
    pub const fn unsupported_id(self) -> bool {
        matches!(
            self,
            ArgClass::Smc32
                | ArgClass::Yielding
                | ArgClass::IdBits
                | ArgClass::FromGuest
                | ArgClass::FromHost
        )
    }

    /// Changes `call`'s registers (and caller) as the class says. Registers a call does
    /// not have are left alone (the generator only pairs a class with calls whose table
    /// lists it).
    pub fn apply(self, call: &mut SymCall, layout: &Layout) {
        let set = |call: &mut SymCall, index: Option<usize>, value: u64| {
            if let Some(slot) = index.and_then(|i| call.regs.get_mut(i)) {
                *slot = Sym::Lit(value);
            }
        };
        let id = match call.regs[0] {
            Sym::Lit(id) => id,
            _ => 0,
        };
        match self {
            ArgClass::Reserved => set(call, Some(layout.first_mbz), 1),
            ArgClass::ReservedX7 => set(call, Some(7), 1 << 63),
            ArgClass::ArgsSet => {
                for (i, slot) in call.regs.iter_mut().enumerate().skip(1) {
                    *slot = Sym::Lit(0xA5A5_0000_0000_0000 | i as u64);
                }
            }
            ArgClass::NrZero => set(call, layout.nr, 0),
            ArgClass::NrOver => set(call, layout.nr, u64::from(MAX_PAGES_PER_CALL) + 1),
            ArgClass::NrWide => set(call, layout.nr, (1 << 32) | 1),
            ArgClass::Wrap => set(call, layout.pfn, u64::MAX),
            ArgClass::BeyondPa => set(call, layout.pfn, PFN_LIMIT),
            ArgClass::GfnWrap => set(call, layout.gfn, u64::MAX),
            ArgClass::IpaWrap => set(call, layout.ipa, 0u64.wrapping_sub(4096)),
            ArgClass::BeyondIpa => {
                set(call, layout.gfn, 1 << (MAX_IPA_BITS - 12));
                set(call, layout.ipa, 1 << MAX_IPA_BITS);
                set(call, layout.entry, 1 << MAX_IPA_BITS);
            }
            ArgClass::BeyondVmIpa => {
                set(call, layout.gfn, 1 << (IPA_BITS - 12));
                set(call, layout.ipa, 1 << IPA_BITS);
                set(call, layout.entry, 1 << IPA_BITS);
            }
            ArgClass::Unaligned => {
                add(call, layout.ipa, 8);
                add(call, layout.entry, 2);
            }
            ArgClass::SecondaryEntry => set(call, layout.entry, 0x4000_0000),
            ArgClass::BootEntryBeyondIpa => {
                set(call, layout.vcpu, 0);
                set(call, layout.entry, 1 << MAX_IPA_BITS);
            }
            ArgClass::BootEntryBeyondVmIpa => {
                set(call, layout.vcpu, 0);
                set(call, layout.entry, 1 << IPA_BITS);
            }
            ArgClass::CrossBlock => {
                set(call, layout.gfn, G_CROSS);
                set(call, layout.nr, 2);
            }
            ArgClass::HandleZero => set(call, layout.handle, 0),
            ArgClass::HandleDead => {
                if let Some(slot) = layout.handle.and_then(|i| call.regs.get_mut(i)) {
                    *slot = Sym::Handle(VmRef::Dead);
                }
            }
            // The target VM is built bare (see the plan builder); the call is unchanged.
            ArgClass::EmptyPool | ArgClass::VcpuRunning => {}
            ArgClass::VcpuRange => set(call, layout.vcpu, u64::from(MAX_VCPUS)),
            ArgClass::VcpuWide => set(call, layout.vcpu, 1 << 32),
            ArgClass::VcpuAbsent => set(call, layout.vcpu, u64::from(NR_VCPUS)),
            ArgClass::VcpuUncreated | ArgClass::OtherVcpu => set(call, layout.vcpu, 1),
            ArgClass::VcpuExists => set(call, layout.vcpu, 0),
            ArgClass::Completion => set(call, layout.completion, 1),
            ArgClass::VcpusZero => set(call, layout.nr_vcpus, 0),
            ArgClass::VcpusOver => set(call, layout.nr_vcpus, u64::from(MAX_VCPUS) + 1),
            ArgClass::VcpusWide => set(call, layout.nr_vcpus, (1 << 32) | 1),
            ArgClass::IpaBitsLow => set(call, layout.ipa_bits, u64::from(MIN_IPA_BITS) - 1),
            ArgClass::IpaBitsHigh => set(call, layout.ipa_bits, u64::from(MAX_IPA_BITS) + 1),
            ArgClass::IpaBitsWide => set(call, layout.ipa_bits, (1 << 32) | 32),
            ArgClass::LimitsMin => {
                set(call, layout.nr_vcpus, 1);
                set(call, layout.ipa_bits, u64::from(MIN_IPA_BITS));
            }
            ArgClass::LimitsMax => {
                set(call, layout.nr_vcpus, u64::from(MAX_VCPUS));
                set(call, layout.ipa_bits, u64::from(MAX_IPA_BITS));
            }
            ArgClass::Smc32 => set(call, Some(0), id & !(1 << 30)),
            ArgClass::Yielding => set(call, Some(0), id & !(1 << 31)),
            ArgClass::IdBits => set(call, Some(0), id | 1 << 17),
            ArgClass::UpperX0 => set(call, Some(0), id | 0xFFFF_FFFF_0000_0000),
            ArgClass::SveHint => set(call, Some(0), id | u64::from(SMCCC_SVE_HINT)),
            ArgClass::FromGuest => call.caller = Caller::Guest(VmRef::V0),
            ArgClass::FromHost => call.caller = Caller::Host,
            ArgClass::Workaround1 | ArgClass::Workaround2 | ArgClass::Workaround3 => {
                let queried = match self {
                    ArgClass::Workaround1 => WORKAROUND_IDS[0],
                    ArgClass::Workaround2 => WORKAROUND_IDS[1],
                    _ => WORKAROUND_IDS[2],
                };
                set(call, Some(1), queried.into());
                call.returns = ReturnKind::Firmware(FirmwareCall::WorkaroundFeatures);
            }
        }
    }
}

/// Adds `delta` to a literal register.
fn add(call: &mut SymCall, index: Option<usize>, delta: u64) {
    if let Some(slot) = index.and_then(|i| call.regs.get_mut(i))
        && let Sym::Lit(value) = *slot
    {
        *slot = Sym::Lit(value.wrapping_add(delta));
    }
}
