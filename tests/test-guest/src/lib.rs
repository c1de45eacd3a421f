//! The protocol between the protected test guest (`src/main.rs`) and the hosts that run
//! it (`demo-host`, `abi-host`, through `el1-rt`'s `test_guest` module).
//!
//! A guest has no device, so it talks to its host through MMIO exits (docs/abi.md
//! section 6): a store to an IPA that has no page stops the vCPU with an `MMIO` exit that
//! carries the address and the stored value. Two such addresses are channels:
//!
//! - [`PRINT_IPA`]: a 1-byte store is one character of text ("guest print"); the host
//!   collects a line up to `\n`. The guest prints only the name of a failed check.
//! - [`REPORT_IPA`]: an 8-byte store is a [`Report`]: a step reached or a check failed.
//!
//! Each exit is completed by the host's next VCPU_RUN (completion 0 for a store). The guest
//! registers both channel pages with MMIO_GUARD_MAP before anything else (docs/abi.md
//! 5.6): an access to an IPA with no page that the guest did not register is a MEM_FAULT
//! exit that carries no data.
//!
//! Guest memory (IPA = address: the guest runs with its MMU off):
//! - [`IMAGE_GFN`] (IPA 0x4000_0000): the image, entered at its first byte; its arm64 Image
//!   header's `image_size` says how many pages the host donates there (zeroed beyond the
//!   file).
//! - [`DATA_GFN`] + 0, 1, 2: three data pages the host donates zeroed, one call each:
//!   [`SECRET_GFN`] (never shared), [`SHARED_GFN`] (shared and unshared again),
//!   [`SPARE_GFN`] (relinquished).
//!
//! The command is the vCPU's x0 at entry (VCPU_CREATE's `x0`), see [`Command`]. Every
//! command but [`Command::Spin`] ends with `Report::Reached(Step::Done)` or
//! `Report::Failed`, then PSCI SYSTEM_OFF.
#![cfg_attr(not(test), no_std)]

/// Guest frame of the image's first page; VCPU_CREATE's `entry_ipa` is its address.
pub const IMAGE_GFN: u64 = 0x4_0000;
/// Where the vCPU starts: the first byte of the image.
pub const ENTRY_IPA: u64 = IMAGE_GFN << PAGE_SHIFT;
/// The IPA size the hosts give the VM (VM_CREATE `ipa_bits`).
pub const IPA_BITS: u32 = 32;

/// First of the data pages; the image must end below it (linker/test-guest.ld checks).
pub const DATA_GFN: u64 = 0x4_0100;
/// Private page: the guest writes [`secret_word`]s into it and never shares it.
pub const SECRET_GFN: u64 = DATA_GFN;
/// The page the guest shares: [`MESSAGE`] at offset 0, the host's [`REPLY`] at
/// [`REPLY_OFFSET`].
pub const SHARED_GFN: u64 = DATA_GFN + 1;
/// The page the guest relinquishes.
pub const SPARE_GFN: u64 = DATA_GFN + 2;
/// Number of data pages.
pub const DATA_PAGES: u32 = 3;

/// An IPA the hosts never back with a page (used for the guest's NOT_FOUND case).
pub const UNBACKED_IPA: u64 = 0x4020_0000;
/// 1-byte stores here are text (MMIO exit, write, size 1).
pub const PRINT_IPA: u64 = 0x0900_0000;
/// 8-byte stores here are [`Report`]s (MMIO exit, write, size 8).
pub const REPORT_IPA: u64 = 0x0a00_0000;

/// The line [`Command::LinuxStory`] prints on its console first.
pub const GREETING: &str = "hello from a protected guest";
/// What the guest writes at the start of the shared page, NUL-terminated.
pub const MESSAGE: &str = "hello from the protected guest";
/// What the host writes into the shared page at [`REPLY_OFFSET`], NUL-terminated.
pub const REPLY: &str = "hello from the host";
/// Byte offset of the host's reply in the shared page.
pub const REPLY_OFFSET: usize = 0x800;

/// After relinquishing [`SPARE_GFN`] the guest loads from it: that is an MMIO read exit
/// (the IPA has no page any more), which the host completes with this value.
pub const RELINQUISHED_READ_VALUE: u64 = 0x7e57_6e57_0000_00aa;

/// The context id the [`Command::CpuOn`] guest passes to CPU_ON: vCPU 1's x0 at entry.
pub const SECONDARY_CONTEXT: u64 = 0xc0de_0001_5ec0_4d00;

/// Iterations of the [`Command::Spin`] guest's busy loop between two ticks: long enough
/// that a vCPU is almost always inside VCPU_RUN (milliseconds under QEMU), short enough
/// that a run ends soon after the host asks it to stop.
pub const SPIN_ITERATIONS: u64 = 2_000_000;

const PAGE_SHIFT: u32 = 12;

/// The guest byte address of guest frame `gfn`.
pub const fn ipa(gfn: u64) -> u64 {
    gfn << PAGE_SHIFT
}

/// Word `index` (0..512) of the secret page.
pub const fn secret_word(index: usize) -> u64 {
    0x5ec2_e700_0000_0000 | (index as u64).wrapping_mul(0x9e37_79b9)
}

/// What the guest does, selected by its x0 at entry.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
#[repr(u64)]
pub enum Command {
    /// VENDOR_HYP_CALL_UID, FEATURES (version 1.0, guest bitmap) and HYP_MEMINFO (4096).
    Discovery = 1,
    /// Secret into [`SECRET_GFN`]; [`MESSAGE`] into [`SHARED_GFN`]; MEM_SHARE it (exit
    /// MEM_SHARED) and report [`Step::Shared`]; on the next run check the host's
    /// [`REPLY`], MEM_UNSHARE (exit MEM_UNSHARED), report [`Step::Unshared`]; check the
    /// secret is intact; done.
    SecretAndShare = 2,
    /// Fill [`SPARE_GFN`], MEM_RELINQUISH it (exit MEM_RELINQUISHED), report
    /// [`Step::Relinquished`], load from it (MMIO read exit, expects
    /// [`RELINQUISHED_READ_VALUE`]); done.
    Relinquish = 3,
    /// Forever: busy loop of [`SPIN_ITERATIONS`], then report [`Step::Tick`].
    Spin = 4,
    /// Guest calls with bad arguments return the errors of docs/abi.md's tables (no
    /// exits); done.
    CallErrors = 5,
    /// Needs a VM with vCPU 1 created (powered off). vCPU 0 checks the payload's PSCI
    /// answers (docs/abi.md 5.5), starts vCPU 1 with CPU_ON at the guest's own
    /// secondary entry with x0 = [`SECONDARY_CONTEXT`] (exit VCPU_STARTED) and reports
    /// [`Step::SecondaryOn`]; vCPU 1 checks its x0 and MPIDR, reports
    /// [`Step::SecondaryRan`] and calls CPU_OFF (exit VCPU_OFF); on its next run vCPU 0
    /// checks that AFFINITY_INFO says vCPU 1 is off; done.
    CpuOn = 6,
    /// Stores [`secret_word`]`(0)` at [`UNBACKED_IPA`], which has no page and is not
    /// registered as MMIO: the vCPU exits MEM_FAULT (without the data) and re-executes the
    /// store until the host donates a page there; then checks the word landed and that the
    /// rest of that page is zero (memory donated after launch is fresh); done.
    StoreUnbacked = 7,
    /// SMCCC_VERSION, SMCCC_ARCH_FEATURES (of itself and of ARCH_WORKAROUND_1/2/3),
    /// TRNG_VERSION and TRNG_RND64: the payload (or the firmware through it) answers, never
    /// the host (docs/abi.md 5.8). Checks SMCCC_VERSION is the payload's 1.1; done.
    SmcccQueries = 8,
    /// The Linux story (`cargo xtask run --host linux`, the `vmm`): prints [`GREETING`]
    /// on the console, then does what [`Command::SecretAndShare`] does.
    LinuxStory = 9,
    /// The ID registers show none of what the payload does not give guests: no SVE, SME,
    /// PMU, SPE, trace, MTE, RAS, AMU, GIC system registers, EL2 or EL3; an IPA size of
    /// [`IPA_BITS`] at most; done. (Numbered apart from the ABI's commands.)
    /// Read GCR_EL1, an MTE register. The payload keeps MTE from guests (HCR_EL2.ATA clear
    /// while a guest runs; its MTE state is not switched), so this must be an undefined
    /// instruction: reported as an unexpected exception (vector 4, ESR EC 0). A read that
    /// returns fails check [`MTE_REACHABLE_CHECK`].
    MteHidden = 10,
    IdRegisters = 0x20,
    /// Writes [`ACTLR_PATTERN`] to ACTLR_EL1 and reads it back as zero (EL2 emulates it
    /// RAZ/WI: the real auxiliary control is the host's); done.
    AuxControl = 0x21,
    /// Accesses the payload traps and does not emulate (GIC CPU interface, set/way
    /// maintenance, an IMPLEMENTATION DEFINED register, PMU, LORegions, RAS error records)
    /// each raise an undefined-instruction exception in the guest; done.
    TrappedRegisters = 0x22,
    /// Reads TPIDR2_EL0 (SME's thread pointer, which no trap covers on a CPU without
    /// FEAT_FGT) and writes [`GUEST_TPIDR2_PATTERN`] to it: the read must give 0 or raise
    /// an undefined-instruction exception, never the host's value; done. The host checks
    /// its own TPIDR2_EL0 is unchanged.
    HostThreadPointer = 0x23,
}

/// What [`Command::HostThreadPointer`] writes to TPIDR2_EL0.
pub const GUEST_TPIDR2_PATTERN: u64 = 0x6e57_0000_0000_2222;

/// What [`Command::AuxControl`] writes to ACTLR_EL1.
pub const ACTLR_PATTERN: u64 = 0x5a5a_0000_0000_a5a5;

impl Command {
    /// Every command.
    pub const ALL: [Command; 14] = [
        Command::Discovery,
        Command::SecretAndShare,
        Command::Relinquish,
        Command::Spin,
        Command::CallErrors,
        Command::CpuOn,
        Command::StoreUnbacked,
        Command::SmcccQueries,
        Command::LinuxStory,
        Command::MteHidden,
        Command::IdRegisters,
        Command::AuxControl,
        Command::TrappedRegisters,
        Command::HostThreadPointer,
    ];

    /// The command with x0 value `x0`.
    pub const fn from_x0(x0: u64) -> Option<Self> {
        Some(match x0 {
            1 => Self::Discovery,
            2 => Self::SecretAndShare,
            3 => Self::Relinquish,
            4 => Self::Spin,
            5 => Self::CallErrors,
            6 => Self::CpuOn,
            7 => Self::StoreUnbacked,
            8 => Self::SmcccQueries,
            9 => Self::LinuxStory,
            10 => Self::MteHidden,
            0x20 => Self::IdRegisters,
            0x21 => Self::AuxControl,
            0x22 => Self::TrappedRegisters,
            0x23 => Self::HostThreadPointer,
            _ => return None,
        })
    }

    /// The vCPU's x0 that selects this command.
    pub const fn to_x0(self) -> u64 {
        self as u64
    }
}

/// A point the guest reached.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
#[repr(u16)]
pub enum Step {
    /// The shared page holds [`MESSAGE`] and is shared; the host may read and reply.
    Shared = 1,
    /// The guest has unshared the page again.
    Unshared = 2,
    /// The spare page was relinquished.
    Relinquished = 3,
    /// Every check of the command passed; SYSTEM_OFF follows.
    Done = 4,
    /// The spinning guest is still alive.
    Tick = 5,
    /// vCPU 0 started vCPU 1 with PSCI CPU_ON.
    SecondaryOn = 6,
    /// vCPU 1 runs at the guest's entry with the guest's context id.
    SecondaryRan = 7,
}

impl Step {
    const fn from_u16(value: u16) -> Option<Self> {
        Some(match value {
            1 => Self::Shared,
            2 => Self::Unshared,
            3 => Self::Relinquished,
            4 => Self::Done,
            5 => Self::Tick,
            6 => Self::SecondaryOn,
            7 => Self::SecondaryRan,
            _ => return None,
        })
    }
}

/// Check number of an unexpected exception in the guest: `EXCEPTION_CHECK + vector`
/// (0..16), value = ESR_EL1's low 32 bits.
pub const EXCEPTION_CHECK: u16 = 0xE000;
/// Check number of [`Command::MteHidden`]'s read of GCR_EL1 returning; value = what it read.
pub const MTE_REACHABLE_CHECK: u16 = 0x6001;
/// Check number of an unknown command; value = the command's low 32 bits.
pub const UNKNOWN_COMMAND_CHECK: u16 = 0xC000;

/// An 8-byte store to [`REPORT_IPA`].
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Report {
    /// The guest reached `Step`.
    Reached(Step),
    /// Check number `check` of the command failed; `value` is what the guest saw (the
    /// low 32 bits of a call's x0, or the wrong value read). The guest printed the
    /// check's name just before.
    Failed { check: u16, value: u32 },
}

/// Bits [63:56] of a report: its kind.
const KIND_SHIFT: u32 = 56;
const KIND_REACHED: u64 = 0x5A;
const KIND_FAILED: u64 = 0xFA;
/// Bits [47:32]: the step or check number; bits [31:0]: the value.
const ID_SHIFT: u32 = 32;

impl Report {
    /// The stored value.
    pub const fn encode(self) -> u64 {
        match self {
            Self::Reached(step) => (KIND_REACHED << KIND_SHIFT) | ((step as u64) << ID_SHIFT),
            Self::Failed { check, value } => {
                (KIND_FAILED << KIND_SHIFT) | ((check as u64) << ID_SHIFT) | value as u64
            }
        }
    }

    /// The report a stored value stands for; `None` for anything [`encode`](Self::encode)
    /// never produces.
    pub const fn decode(value: u64) -> Option<Self> {
        let kind = value >> KIND_SHIFT;
        let reserved = (value >> 48) & 0xFF;
        let id = (value >> ID_SHIFT) as u16;
        let low = value as u32;
        if reserved != 0 {
            return None;
        }
        match kind {
            KIND_REACHED if low == 0 => match Step::from_u16(id) {
                Some(step) => Some(Self::Reached(step)),
                None => None,
            },
            KIND_FAILED => Some(Self::Failed {
                check: id,
                value: low,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_through_x0() {
        for command in Command::ALL {
            assert_eq!(Command::from_x0(command.to_x0()), Some(command));
        }
        assert_eq!(Command::from_x0(0), None);
        assert_eq!(Command::from_x0(11), None);
    }

    #[test]
    fn reports_round_trip() {
        for step in [
            Step::Shared,
            Step::Unshared,
            Step::Relinquished,
            Step::Done,
            Step::Tick,
            Step::SecondaryOn,
            Step::SecondaryRan,
        ] {
            let report = Report::Reached(step);
            assert_eq!(Report::decode(report.encode()), Some(report));
        }
        let failed = Report::Failed {
            check: 0xE004,
            value: 0x9600_0000,
        };
        assert_eq!(Report::decode(failed.encode()), Some(failed));
    }

    #[test]
    fn stray_values_are_not_reports() {
        for value in [0, 1, u64::MAX, Report::Reached(Step::Done).encode() | 1] {
            assert_eq!(Report::decode(value), None, "{value:#x}");
        }
    }

    #[test]
    fn data_pages_lie_inside_the_ipa_space_and_above_the_image() {
        assert!(ipa(SPARE_GFN + 1) <= 1 << IPA_BITS);
        assert!(ENTRY_IPA < ipa(DATA_GFN));
        assert!(!(ipa(DATA_GFN)..ipa(DATA_GFN + DATA_PAGES as u64)).contains(&UNBACKED_IPA));
        for channel in [PRINT_IPA, REPORT_IPA] {
            assert!(channel < ENTRY_IPA, "{channel:#x} must not be guest memory");
        }
    }

    #[test]
    fn the_reply_fits_in_the_shared_page_after_the_message() {
        assert!(MESSAGE.len() < REPLY_OFFSET);
        assert!(REPLY_OFFSET + REPLY.len() < 4096);
    }
}
