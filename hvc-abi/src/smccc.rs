//! The guest's SMCCC architecture calls (owner 0: SMCCC_VERSION, SMCCC_ARCH_FEATURES, the
//! ARCH_WORKAROUND calls) and TRNG calls (owner 4, functions 0x50..=0x5F), which the
//! payload answers itself or passes to the firmware, never to the host (docs/abi.md 5.8):
//! a host that answered them could tell a guest that no Spectre mitigation is needed, or
//! hand it chosen "random" numbers.
//!
//! Ids from the SMCCC (Arm DEN 0028) and TRNG (Arm DEN 0098) specifications; the
//! architecture-call ids come from the `smccc` crate.

use smccc::arch as ids;

/// TRNG_VERSION.
pub const TRNG_VERSION: u32 = 0x8400_0050;
/// TRNG_FEATURES.
pub const TRNG_FEATURES: u32 = 0x8400_0051;
/// TRNG_GET_UUID.
pub const TRNG_GET_UUID: u32 = 0x8400_0052;
/// TRNG_RND32.
pub const TRNG_RND32: u32 = 0x8400_0053;
/// TRNG_RND64.
pub const TRNG_RND64: u32 = 0xC400_0053;

/// The SMCCC version the payload implements for guests: 1.1 (results in x0..x3).
pub const GUEST_SMCCC_VERSION: u64 = 0x1_0001;

/// A guest SMCCC architecture or TRNG call the payload serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestSmccc {
    /// SMCCC_VERSION: [`GUEST_SMCCC_VERSION`].
    Version,
    /// SMCCC_ARCH_FEATURES(`function_id`).
    ArchFeatures {
        /// The queried id (W1).
        function_id: u32,
    },
    /// SMCCC_ARCH_WORKAROUND_1/2/3 (`function_id`) with the guest's x1 (WORKAROUND_2's
    /// enable flag): passed to the firmware if it has the workaround.
    Workaround {
        /// The workaround's id.
        function_id: u32,
        /// The guest's x1.
        x1: u64,
    },
    /// A TRNG call: the guest's x0..x3, passed to the firmware if it has TRNG.
    Trng {
        /// x0..x3 as the guest passed them (W0 = the id).
        regs: [u64; 4],
    },
}

/// Whether W0 is an SMCCC architecture call (owner 0, fast call, either convention).
pub const fn is_arch(id: u32) -> bool {
    id & 0xBF00_0000 == 0x8000_0000
}

/// Whether W0 is a TRNG call (owner 4, functions 0x50..=0x5F, fast call).
pub const fn is_trng(id: u32) -> bool {
    id & 0xBFFF_FFF0 == 0x8400_0050
}

impl GuestSmccc {
    /// Decodes a guest call whose W0 satisfies [`is_arch`] or [`is_trng`]; `None` for the
    /// ids the payload does not serve (NOT_SUPPORTED).
    pub const fn decode(id: u32, regs: &[u64; 8]) -> Option<Self> {
        Some(match id {
            ids::SMCCC_VERSION => Self::Version,
            ids::SMCCC_ARCH_FEATURES => Self::ArchFeatures {
                function_id: regs[1] as u32,
            },
            ids::SMCCC_ARCH_WORKAROUND_1
            | ids::SMCCC_ARCH_WORKAROUND_2
            | ids::SMCCC_ARCH_WORKAROUND_3 => Self::Workaround {
                function_id: id,
                x1: regs[1],
            },
            TRNG_VERSION | TRNG_FEATURES | TRNG_GET_UUID | TRNG_RND32 | TRNG_RND64 => Self::Trng {
                regs: [id as u64, regs[1], regs[2], regs[3]],
            },
            _ => return None,
        })
    }

    /// The function id.
    pub const fn function_id(&self) -> u32 {
        match *self {
            Self::Version => ids::SMCCC_VERSION,
            Self::ArchFeatures { .. } => ids::SMCCC_ARCH_FEATURES,
            Self::Workaround { function_id, .. } => function_id,
            Self::Trng { regs } => regs[0] as u32,
        }
    }

    /// x0..x7 as a guest passes them.
    pub const fn encode(&self) -> [u64; 8] {
        let mut out = [0; 8];
        out[0] = self.function_id() as u64;
        match *self {
            Self::Version => {}
            Self::ArchFeatures { function_id } => out[1] = function_id as u64,
            Self::Workaround { x1, .. } => out[1] = x1,
            Self::Trng { regs } => {
                out[1] = regs[1];
                out[2] = regs[2];
                out[3] = regs[3];
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arch_and_trng_ids_are_recognised() {
        assert!(is_arch(0x8000_0000));
        assert!(is_arch(0xC000_FFFF));
        assert!(!is_arch(0x8400_0000));
        assert!(is_trng(TRNG_VERSION));
        assert!(is_trng(TRNG_RND64));
        assert!(!is_trng(0x8400_0060));
        assert!(!is_trng(0x8400_0000));
    }

    #[test]
    fn every_served_call_round_trips() {
        let calls = [
            GuestSmccc::Version,
            GuestSmccc::ArchFeatures {
                function_id: ids::SMCCC_ARCH_WORKAROUND_1,
            },
            GuestSmccc::Workaround {
                function_id: ids::SMCCC_ARCH_WORKAROUND_2,
                x1: 1,
            },
            GuestSmccc::Trng {
                regs: [TRNG_RND64 as u64, 64, 0, 0],
            },
        ];
        for call in calls {
            let regs = call.encode();
            assert_eq!(GuestSmccc::decode(regs[0] as u32, &regs), Some(call));
        }
        assert_eq!(GuestSmccc::decode(ids::SMCCC_ARCH_SOC_ID, &[0; 8]), None);
    }
}
