//! PSCI as a protected guest sees it (docs/abi.md 5.5): the payload answers every PSCI
//! call of a guest itself and never forwards one to the host, so the host cannot start,
//! stop or describe the guest's vCPUs behind the guest's back (issue 9, "a protected
//! VM's launch is locked").
//!
//! The function ids and return codes are the PSCI specification's (Arm DEN 0022), taken
//! from the `smccc` crate. Only the SMC64 forms of the calls that pass an address
//! (CPU_ON, CPU_SUSPEND) are served: their SMC32 forms keep only 32 bits of it.

use smccc::psci as ids;
use smccc::psci::error as codes;

/// The PSCI version the payload implements for guests: 1.0 (`major << 16 | minor`).
pub const GUEST_PSCI_VERSION: u32 = 0x0001_0000;

/// PSCI return codes the payload gives guests (x0, sign-extended to 64 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum PsciError {
    /// NOT_SUPPORTED: not a call the payload serves.
    NotSupported = codes::NOT_SUPPORTED,
    /// INVALID_PARAMETERS: no such vCPU, or an unsupported affinity level.
    InvalidParameters = codes::INVALID_PARAMETERS,
    /// ALREADY_ON: CPU_ON of a vCPU that is on.
    AlreadyOn = codes::ALREADY_ON,
    /// INVALID_ADDRESS: CPU_ON's entry point is not 4-byte aligned or lies beyond the VM's
    /// IPA space.
    InvalidAddress = codes::INVALID_ADDRESS,
}

impl PsciError {
    /// x0 as the guest receives it.
    pub const fn as_x0(self) -> u64 {
        self as i32 as i64 as u64
    }
}

/// AFFINITY_INFO results.
pub const AFFINITY_ON: u64 = 0;
/// AFFINITY_INFO: the vCPU is off.
pub const AFFINITY_OFF: u64 = 1;
/// MIGRATE_INFO_TYPE: no Trusted OS that needs migration.
pub const MIGRATE_INFO_NO_TRUSTED_OS: u64 = 2;

/// Bits of an MPIDR that are affinity fields (Aff3 [39:32], Aff2..Aff0 [23:0]); PSCI
/// requires every other bit of a `target_cpu` to be zero.
pub const MPIDR_AFFINITY_MASK: u64 = 0xFF_00FF_FFFF;

/// A guest PSCI call the payload serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestPsci {
    /// PSCI_VERSION: x0 = [`GUEST_PSCI_VERSION`].
    Version,
    /// CPU_SUSPEND (SMC64): returns SUCCESS at once, as from a standby state left at once
    /// (PSCI allows a shallower state than the one asked for).
    CpuSuspend,
    /// CPU_OFF: the calling vCPU powers off; the host sees the VCPU_OFF exit.
    CpuOff,
    /// CPU_ON (SMC64): start the vCPU whose MPIDR is `target_cpu` at `entry` (an IPA)
    /// with x0 = `context_id`.
    CpuOn {
        /// The target's MPIDR affinity fields.
        target_cpu: u64,
        /// Where the target starts.
        entry: u64,
        /// The target's x0 at entry.
        context_id: u64,
    },
    /// AFFINITY_INFO: whether the vCPU whose MPIDR is `target_affinity` is on.
    AffinityInfo {
        /// The target's MPIDR affinity fields.
        target_affinity: u64,
        /// Only level 0 (one vCPU) is served.
        lowest_level: u64,
    },
    /// MIGRATE_INFO_TYPE: [`MIGRATE_INFO_NO_TRUSTED_OS`].
    MigrateInfoType,
    /// PSCI_FEATURES: 0 if `function_id` is a PSCI call served here, else NOT_SUPPORTED.
    Features {
        /// The queried PSCI function id (W1).
        function_id: u32,
    },
}

/// Whether W0 is a PSCI function id (owner 4, function 0x00..=0x1F, either convention).
pub const fn is_psci(id: u32) -> bool {
    id & 0xBFFF_FFE0 == 0x8400_0000
}

impl GuestPsci {
    /// The PSCI calls the payload serves for guests (PSCI_FEATURES answers 0 for these,
    /// and for SYSTEM_OFF and SYSTEM_RESET, section 5.6).
    pub const SERVED: [u32; 10] = [
        ids::PSCI_VERSION,
        ids::PSCI_CPU_SUSPEND_64,
        ids::PSCI_CPU_OFF,
        ids::PSCI_CPU_ON_64,
        ids::PSCI_AFFINITY_INFO_32,
        ids::PSCI_AFFINITY_INFO_64,
        ids::PSCI_MIGRATE_INFO_TYPE,
        ids::PSCI_SYSTEM_OFF,
        ids::PSCI_SYSTEM_RESET,
        ids::PSCI_FEATURES,
    ];

    /// Decodes a guest PSCI call (W0 in `regs[0]`, the SVE hint already cleared). `None`
    /// for a PSCI id the payload does not serve (NOT_SUPPORTED), and for SYSTEM_OFF and
    /// SYSTEM_RESET, which are [`crate::GuestCall`]s of their own.
    pub const fn decode(id: u32, regs: &[u64; 8]) -> Option<Self> {
        Some(match id {
            ids::PSCI_VERSION => Self::Version,
            ids::PSCI_CPU_SUSPEND_64 => Self::CpuSuspend,
            ids::PSCI_CPU_OFF => Self::CpuOff,
            ids::PSCI_CPU_ON_64 => Self::CpuOn {
                target_cpu: regs[1],
                entry: regs[2],
                context_id: regs[3],
            },
            ids::PSCI_AFFINITY_INFO_64 => Self::AffinityInfo {
                target_affinity: regs[1],
                lowest_level: regs[2],
            },
            // The SMC32 form passes 32-bit arguments (PSCI: W1, W2).
            ids::PSCI_AFFINITY_INFO_32 => Self::AffinityInfo {
                target_affinity: regs[1] as u32 as u64,
                lowest_level: regs[2] as u32 as u64,
            },
            ids::PSCI_MIGRATE_INFO_TYPE => Self::MigrateInfoType,
            ids::PSCI_FEATURES => Self::Features {
                function_id: regs[1] as u32,
            },
            _ => return None,
        })
    }

    /// The function id (SMC64 forms where there are two).
    pub const fn function_id(&self) -> u32 {
        match self {
            Self::Version => ids::PSCI_VERSION,
            Self::CpuSuspend => ids::PSCI_CPU_SUSPEND_64,
            Self::CpuOff => ids::PSCI_CPU_OFF,
            Self::CpuOn { .. } => ids::PSCI_CPU_ON_64,
            Self::AffinityInfo { .. } => ids::PSCI_AFFINITY_INFO_64,
            Self::MigrateInfoType => ids::PSCI_MIGRATE_INFO_TYPE,
            Self::Features { .. } => ids::PSCI_FEATURES,
        }
    }

    /// x0..x7 as a guest passes them.
    pub const fn encode(&self) -> [u64; 8] {
        let mut regs = [0; 8];
        regs[0] = self.function_id() as u64;
        match *self {
            Self::CpuOn {
                target_cpu,
                entry,
                context_id,
            } => {
                regs[1] = target_cpu;
                regs[2] = entry;
                regs[3] = context_id;
            }
            Self::AffinityInfo {
                target_affinity,
                lowest_level,
            } => {
                regs[1] = target_affinity;
                regs[2] = lowest_level;
            }
            Self::Features { function_id } => regs[1] = function_id as u64,
            _ => {}
        }
        regs
    }

    /// PSCI_FEATURES of `function_id`: 0 if served, else NOT_SUPPORTED.
    pub const fn features(function_id: u32) -> u64 {
        let mut i = 0;
        while i < Self::SERVED.len() {
            if Self::SERVED[i] == function_id {
                return 0;
            }
            i += 1;
        }
        PsciError::NotSupported.as_x0()
    }
}

/// The vCPU index a PSCI `target_cpu` names: the payload gives vCPU `n` the MPIDR with
/// Aff0 = `n` and every other affinity field 0 (VMPIDR_EL2). INVALID_PARAMETERS for bits
/// outside the affinity fields or a nonzero Aff1..Aff3; the caller checks the index
/// against the VM.
pub const fn vcpu_of_mpidr(mpidr: u64) -> Result<u32, PsciError> {
    if mpidr & !MPIDR_AFFINITY_MASK != 0 || mpidr & !0xFF != 0 {
        Err(PsciError::InvalidParameters)
    } else {
        Ok(mpidr as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psci_ids_are_owner_4_functions_0_to_0x1f() {
        assert!(is_psci(ids::PSCI_VERSION));
        assert!(is_psci(ids::PSCI_CPU_ON_64));
        assert!(is_psci(0x8400_001F));
        assert!(!is_psci(0x8400_0020));
        assert!(!is_psci(0x8400_0050)); // TRNG_VERSION
        assert!(!is_psci(0x8600_0000));
        assert!(!is_psci(0x0400_0000)); // yielding: not SMCCC-compliant PSCI
    }

    #[test]
    fn smc32_entry_point_calls_are_not_served() {
        let regs = [0; 8];
        assert_eq!(GuestPsci::decode(ids::PSCI_CPU_ON_32, &regs), None);
        assert_eq!(GuestPsci::decode(ids::PSCI_CPU_SUSPEND_32, &regs), None);
        assert_eq!(
            GuestPsci::features(ids::PSCI_CPU_ON_32),
            PsciError::NotSupported.as_x0()
        );
        assert_eq!(GuestPsci::features(ids::PSCI_CPU_ON_64), 0);
    }

    #[test]
    fn every_served_call_round_trips() {
        let calls = [
            GuestPsci::Version,
            GuestPsci::CpuSuspend,
            GuestPsci::CpuOff,
            GuestPsci::CpuOn {
                target_cpu: 1,
                entry: 0x4000_1000,
                context_id: 7,
            },
            GuestPsci::AffinityInfo {
                target_affinity: 1,
                lowest_level: 0,
            },
            GuestPsci::MigrateInfoType,
            GuestPsci::Features { function_id: 5 },
        ];
        for call in calls {
            let regs = call.encode();
            assert_eq!(GuestPsci::decode(regs[0] as u32, &regs), Some(call));
        }
    }

    #[test]
    fn mpidr_names_a_vcpu_by_aff0_only() {
        assert_eq!(vcpu_of_mpidr(3), Ok(3));
        assert_eq!(vcpu_of_mpidr(0x100), Err(PsciError::InvalidParameters));
        assert_eq!(vcpu_of_mpidr(1 << 31), Err(PsciError::InvalidParameters));
        assert_eq!(vcpu_of_mpidr(1 << 32), Err(PsciError::InvalidParameters));
    }

    #[test]
    fn error_codes_are_psci_s() {
        assert_eq!(PsciError::InvalidParameters.as_x0(), -2i64 as u64);
        assert_eq!(PsciError::AlreadyOn.as_x0(), -4i64 as u64);
        assert_eq!(PsciError::InvalidAddress.as_x0(), -9i64 as u64);
    }
}
