//! Function identifiers (SMCCC W0) and the values the discovery calls return.
//!
//! Every call of this ABI is an SMCCC SMC64 fast call in the Vendor Specific Hypervisor
//! Service range, `0xC600_0000 + n`. Discovery uses the SMCCC-defined SMC32 call
//! `VENDOR_HYP_CALL_UID` (0x8600_FF01) and our FEATURES call (n = 0).

/// SMCCC W0 bit 31: fast (atomic) call.
pub const SMCCC_FAST_CALL: u32 = 1 << 31;
/// SMCCC W0 bit 30: SMC64/HVC64 calling convention.
pub const SMCCC_64: u32 = 1 << 30;
/// SMCCC W0 bits [29:24]: owning entity.
pub const SMCCC_OWNER_SHIFT: u32 = 24;
/// Mask of the owning-entity field once shifted down.
pub const SMCCC_OWNER_MASK: u32 = 0x3F;
/// SMCCC owning entity 6: Vendor Specific Hypervisor Service.
pub const SMCCC_OWNER_VENDOR_HYP: u32 = 6;
/// SMCCC v1.3 W0 bit 16: the caller's SVE-state hint. Ignored by this ABI.
pub const SMCCC_SVE_HINT: u32 = 1 << 16;

/// A function identifier: the value of W0 (x0 bits [31:0]) with the SVE hint cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FunctionId(pub u32);

/// Base of our calls: SMC64 fast call, owner 6, function number 0.
const BASE: u32 = 0xC600_0000;

impl FunctionId {
    /// SMCCC `VENDOR_HYP_CALL_UID` (SMC32 fast call, owner 6, number 0xFF01).
    pub const VENDOR_HYP_CALL_UID: Self = Self(0x8600_FF01);

    /// 0x00: ABI version and call bitmap (host and guest).
    pub const FEATURES: Self = Self(BASE);
    /// 0x01: let EL2 access one host page.
    pub const HOST_SHARE_HYP: Self = Self(BASE + 0x01);
    /// 0x02: end a HOST_SHARE_HYP.
    pub const HOST_UNSHARE_HYP: Self = Self(BASE + 0x02);
    /// 0x03: create a VM.
    pub const VM_CREATE: Self = Self(BASE + 0x03);
    /// 0x04: donate host pages to a VM's page-table pool.
    pub const VM_TOPUP: Self = Self(BASE + 0x04);
    /// 0x05: donate host pages to a guest as private memory.
    pub const VM_DONATE: Self = Self(BASE + 0x05);
    // 0x06 and 0x07 (HOST_SHARE_GUEST, HOST_UNSHARE_GUEST in 1.0) are retired and
    // reserved: NOT_SUPPORTED (docs/abi.md 4.6).
    /// 0x08: create a vCPU.
    pub const VCPU_CREATE: Self = Self(BASE + 0x08);
    /// 0x09: run a vCPU until it exits.
    pub const VCPU_RUN: Self = Self(BASE + 0x09);
    /// 0x0A: destroy a VM.
    pub const VM_DESTROY: Self = Self(BASE + 0x0A);
    /// 0x0B: take back pages of destroyed VMs, zeroed.
    pub const VM_RECLAIM: Self = Self(BASE + 0x0B);

    /// 0x20: the protection granule (guest).
    pub const HYP_MEMINFO: Self = Self(BASE + 0x20);
    /// 0x21: share guest pages with the host (guest).
    pub const MEM_SHARE: Self = Self(BASE + 0x21);
    /// 0x22: end a MEM_SHARE (guest).
    pub const MEM_UNSHARE: Self = Self(BASE + 0x22);
    /// 0x23: give pages back to the host (guest).
    pub const MEM_RELINQUISH: Self = Self(BASE + 0x23);
    /// 0x24: register an IPA page as MMIO (guest).
    pub const MMIO_GUARD_MAP: Self = Self(BASE + 0x24);
    /// 0x25: end an MMIO_GUARD_MAP (guest).
    pub const MMIO_GUARD_UNMAP: Self = Self(BASE + 0x25);
    /// 0x26: the state of one of the guest's IPA pages (guest).
    pub const IPA_STATE: Self = Self(BASE + 0x26);

    /// PSCI PSCI_VERSION; answered for a guest by the payload (docs/abi.md 5.5).
    pub const PSCI_VERSION: Self = Self(smccc::psci::PSCI_VERSION);
    /// PSCI CPU_SUSPEND (SMC64), guest.
    pub const PSCI_CPU_SUSPEND: Self = Self(smccc::psci::PSCI_CPU_SUSPEND_64);
    /// PSCI CPU_OFF, guest.
    pub const PSCI_CPU_OFF: Self = Self(smccc::psci::PSCI_CPU_OFF);
    /// PSCI CPU_ON (SMC64), guest.
    pub const PSCI_CPU_ON: Self = Self(smccc::psci::PSCI_CPU_ON_64);
    /// PSCI AFFINITY_INFO (SMC32), guest.
    pub const PSCI_AFFINITY_INFO_32: Self = Self(smccc::psci::PSCI_AFFINITY_INFO_32);
    /// PSCI AFFINITY_INFO (SMC64), guest.
    pub const PSCI_AFFINITY_INFO_64: Self = Self(smccc::psci::PSCI_AFFINITY_INFO_64);
    /// PSCI MIGRATE_INFO_TYPE, guest.
    pub const PSCI_MIGRATE_INFO_TYPE: Self = Self(smccc::psci::PSCI_MIGRATE_INFO_TYPE);
    /// PSCI PSCI_FEATURES, guest.
    pub const PSCI_FEATURES: Self = Self(smccc::psci::PSCI_FEATURES);
    /// SMCCC_VERSION, guest (docs/abi.md 5.8).
    pub const SMCCC_VERSION: Self = Self(smccc::arch::SMCCC_VERSION);
    /// SMCCC_ARCH_FEATURES, guest (docs/abi.md 5.8).
    pub const SMCCC_ARCH_FEATURES: Self = Self(smccc::arch::SMCCC_ARCH_FEATURES);
    /// SMCCC_ARCH_WORKAROUND_3, guest (docs/abi.md 5.8).
    pub const SMCCC_ARCH_WORKAROUND_3: Self = Self(smccc::arch::SMCCC_ARCH_WORKAROUND_3);
    /// SMCCC_ARCH_WORKAROUND_2, guest (docs/abi.md 5.8).
    pub const SMCCC_ARCH_WORKAROUND_2: Self = Self(smccc::arch::SMCCC_ARCH_WORKAROUND_2);
    /// SMCCC_ARCH_WORKAROUND_1, guest (docs/abi.md 5.8).
    pub const SMCCC_ARCH_WORKAROUND_1: Self = Self(smccc::arch::SMCCC_ARCH_WORKAROUND_1);
    /// TRNG_VERSION, guest (docs/abi.md 5.8).
    pub const TRNG_VERSION: Self = Self(crate::smccc::TRNG_VERSION);
    /// TRNG_FEATURES, guest (docs/abi.md 5.8).
    pub const TRNG_FEATURES: Self = Self(crate::smccc::TRNG_FEATURES);
    /// TRNG_GET_UUID, guest (docs/abi.md 5.8).
    pub const TRNG_GET_UUID: Self = Self(crate::smccc::TRNG_GET_UUID);
    /// TRNG_RND32, guest (docs/abi.md 5.8).
    pub const TRNG_RND32: Self = Self(crate::smccc::TRNG_RND32);
    /// TRNG_RND64, guest (docs/abi.md 5.8).
    pub const TRNG_RND64: Self = Self(crate::smccc::TRNG_RND64);
    /// PSCI SYSTEM_OFF (SMC32); from a guest it ends in the SYSTEM_OFF exit.
    pub const PSCI_SYSTEM_OFF: Self = Self(0x8400_0008);
    /// PSCI SYSTEM_RESET (SMC32); from a guest it ends in the SYSTEM_RESET exit.
    pub const PSCI_SYSTEM_RESET: Self = Self(0x8400_0009);

    /// The function id a caller's x0 names: bits [63:32] and the SVE hint are ignored.
    pub const fn from_x0(x0: u64) -> Self {
        Self(x0 as u32 & !SMCCC_SVE_HINT)
    }

    /// x0 as a caller passes it (zero-extended, hint clear).
    pub const fn to_x0(self) -> u64 {
        self.0 as u64
    }

    /// The SMCCC owning entity, W0 bits [29:24].
    pub const fn owner(self) -> u32 {
        (self.0 >> SMCCC_OWNER_SHIFT) & SMCCC_OWNER_MASK
    }

    /// Whether the id belongs to the Vendor Specific Hypervisor Service (owner 6), whatever
    /// its call type and convention bits. All such ids are answered by the payload.
    pub const fn is_vendor_hyp_service(self) -> bool {
        self.owner() == SMCCC_OWNER_VENDOR_HYP
    }

    /// The function number `n` if this is one of our SMC64 fast-call ids
    /// (`0xC600_0000 + n`, bits [23:16] zero).
    pub const fn number(self) -> Option<u16> {
        if self.0 & 0xFFFF_0000 == BASE {
            Some(self.0 as u16)
        } else {
            None
        }
    }

    /// The name `docs/abi.md` uses, for the ids it defines.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::VENDOR_HYP_CALL_UID => "VENDOR_HYP_CALL_UID",
            Self::FEATURES => "FEATURES",
            Self::HOST_SHARE_HYP => "HOST_SHARE_HYP",
            Self::HOST_UNSHARE_HYP => "HOST_UNSHARE_HYP",
            Self::VM_CREATE => "VM_CREATE",
            Self::VM_TOPUP => "VM_TOPUP",
            Self::VM_DONATE => "VM_DONATE",
            Self::VCPU_CREATE => "VCPU_CREATE",
            Self::VCPU_RUN => "VCPU_RUN",
            Self::VM_DESTROY => "VM_DESTROY",
            Self::VM_RECLAIM => "VM_RECLAIM",
            Self::HYP_MEMINFO => "HYP_MEMINFO",
            Self::MEM_SHARE => "MEM_SHARE",
            Self::MEM_UNSHARE => "MEM_UNSHARE",
            Self::MEM_RELINQUISH => "MEM_RELINQUISH",
            Self::MMIO_GUARD_MAP => "MMIO_GUARD_MAP",
            Self::MMIO_GUARD_UNMAP => "MMIO_GUARD_UNMAP",
            Self::IPA_STATE => "IPA_STATE",
            Self::PSCI_VERSION => "PSCI_VERSION",
            Self::PSCI_CPU_SUSPEND => "PSCI_CPU_SUSPEND",
            Self::PSCI_CPU_OFF => "PSCI_CPU_OFF",
            Self::PSCI_CPU_ON => "PSCI_CPU_ON",
            Self::PSCI_AFFINITY_INFO_32 => "PSCI_AFFINITY_INFO_32",
            Self::PSCI_AFFINITY_INFO_64 => "PSCI_AFFINITY_INFO_64",
            Self::PSCI_MIGRATE_INFO_TYPE => "PSCI_MIGRATE_INFO_TYPE",
            Self::PSCI_FEATURES => "PSCI_FEATURES",
            Self::SMCCC_VERSION => "SMCCC_VERSION",
            Self::SMCCC_ARCH_FEATURES => "SMCCC_ARCH_FEATURES",
            Self::SMCCC_ARCH_WORKAROUND_3 => "SMCCC_ARCH_WORKAROUND_3",
            Self::SMCCC_ARCH_WORKAROUND_2 => "SMCCC_ARCH_WORKAROUND_2",
            Self::SMCCC_ARCH_WORKAROUND_1 => "SMCCC_ARCH_WORKAROUND_1",
            Self::TRNG_VERSION => "TRNG_VERSION",
            Self::TRNG_FEATURES => "TRNG_FEATURES",
            Self::TRNG_GET_UUID => "TRNG_GET_UUID",
            Self::TRNG_RND32 => "TRNG_RND32",
            Self::TRNG_RND64 => "TRNG_RND64",
            Self::PSCI_SYSTEM_OFF => "PSCI_SYSTEM_OFF",
            Self::PSCI_SYSTEM_RESET => "PSCI_SYSTEM_RESET",
            _ => return None,
        })
    }
}

/// Calls the host may make, in function-number order.
pub const HOST_CALLS: [FunctionId; 11] = [
    FunctionId::VENDOR_HYP_CALL_UID,
    FunctionId::FEATURES,
    FunctionId::HOST_SHARE_HYP,
    FunctionId::HOST_UNSHARE_HYP,
    FunctionId::VM_CREATE,
    FunctionId::VM_TOPUP,
    FunctionId::VM_DONATE,
    FunctionId::VCPU_CREATE,
    FunctionId::VCPU_RUN,
    FunctionId::VM_DESTROY,
    FunctionId::VM_RECLAIM,
];

/// Calls a guest may make that the payload answers itself (PSCI SYSTEM_OFF/RESET end in
/// an exit instead of a return), in the order of docs/abi.md's table.
pub const GUEST_CALLS: [FunctionId; 29] = [
    FunctionId::VENDOR_HYP_CALL_UID,
    FunctionId::FEATURES,
    FunctionId::HYP_MEMINFO,
    FunctionId::MEM_SHARE,
    FunctionId::MEM_UNSHARE,
    FunctionId::MEM_RELINQUISH,
    FunctionId::MMIO_GUARD_MAP,
    FunctionId::MMIO_GUARD_UNMAP,
    FunctionId::IPA_STATE,
    FunctionId::PSCI_VERSION,
    FunctionId::PSCI_CPU_OFF,
    FunctionId::PSCI_AFFINITY_INFO_32,
    FunctionId::PSCI_MIGRATE_INFO_TYPE,
    FunctionId::PSCI_SYSTEM_OFF,
    FunctionId::PSCI_SYSTEM_RESET,
    FunctionId::PSCI_FEATURES,
    FunctionId::PSCI_CPU_SUSPEND,
    FunctionId::PSCI_CPU_ON,
    FunctionId::PSCI_AFFINITY_INFO_64,
    FunctionId::SMCCC_VERSION,
    FunctionId::SMCCC_ARCH_FEATURES,
    FunctionId::SMCCC_ARCH_WORKAROUND_3,
    FunctionId::SMCCC_ARCH_WORKAROUND_2,
    FunctionId::SMCCC_ARCH_WORKAROUND_1,
    FunctionId::TRNG_VERSION,
    FunctionId::TRNG_FEATURES,
    FunctionId::TRNG_GET_UUID,
    FunctionId::TRNG_RND32,
    FunctionId::TRNG_RND64,
];

/// Bit `n` set for every `0xC600_0000 + n` in `calls` (other ids ignored).
const fn bitmap(calls: &[FunctionId]) -> u64 {
    let mut bits = 0;
    let mut i = 0;
    while i < calls.len() {
        if let Some(n) = calls[i].number()
            && n < 64
        {
            bits |= 1 << n;
        }
        i += 1;
    }
    bits
}

/// FEATURES x2 for the host: bits 0x00..=0x05 and 0x08..=0x0B (0x06 and 0x07 are
/// retired).
pub const HOST_FEATURES_BITMAP: u64 = bitmap(&HOST_CALLS);
/// FEATURES x2 for a guest: bits 0x00 and 0x20..=0x26.
pub const GUEST_FEATURES_BITMAP: u64 = bitmap(&GUEST_CALLS);

/// Our UUID, 6b1d7b6b-e4d5-4208-94d2-bd597c39f2da, in its byte order.
pub const UUID_BYTES: [u8; 16] = [
    0x6b, 0x1d, 0x7b, 0x6b, 0xe4, 0xd5, 0x42, 0x08, 0x94, 0xd2, 0xbd, 0x59, 0x7c, 0x39, 0xf2, 0xda,
];

/// `VENDOR_HYP_CALL_UID` results w0..w3: the UUID bytes, four per register, little-endian
/// (the SMCCC UID convention).
pub const UID: [u32; 4] = [0x6b7b_1d6b, 0x0842_d5e4, 0x59bd_d294, 0xdaf2_397c];

/// Whether x0..x3 returned by `VENDOR_HYP_CALL_UID` name this payload. Only W0..W3 count.
pub const fn is_our_uid(regs: [u64; 4]) -> bool {
    regs[0] as u32 == UID[0]
        && regs[1] as u32 == UID[1]
        && regs[2] as u32 == UID[2]
        && regs[3] as u32 == UID[3]
}

/// An ABI version as FEATURES returns it in x1: `major << 16 | minor`, bits [63:32] zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Incompatible changes bump this; callers check it equals 2.
    pub major: u16,
    /// Compatible additions (new calls, new exit reasons) bump this.
    pub minor: u16,
}

impl Version {
    /// The version this crate and `docs/abi.md` describe.
    pub const CURRENT: Version = Version { major: 2, minor: 0 };

    /// The FEATURES x1 encoding.
    pub const fn to_x1(self) -> u64 {
        ((self.major as u64) << 16) | self.minor as u64
    }

    /// Decodes FEATURES x1; `None` if bits [63:32] are set.
    pub const fn from_x1(x1: u64) -> Option<Self> {
        if x1 >> 32 != 0 {
            None
        } else {
            Some(Version {
                major: (x1 >> 16) as u16,
                minor: x1 as u16,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_words_are_the_uuid_bytes_little_endian() {
        for (i, word) in UID.iter().enumerate() {
            let bytes: [u8; 4] = UUID_BYTES[i * 4..i * 4 + 4].try_into().unwrap();
            assert_eq!(u32::from_le_bytes(bytes), *word);
        }
    }

    #[test]
    fn uid_check_ignores_upper_halves() {
        let regs = UID.map(|w| u64::from(w) | 0xFFFF_FFFF_0000_0000);
        assert!(is_our_uid(regs));
        assert!(!is_our_uid([u64::MAX; 4]));
    }

    #[test]
    fn host_bitmap_covers_calls_0_to_0x0b_but_the_retired_ones() {
        assert_eq!(HOST_FEATURES_BITMAP, 0xF3F);
    }

    #[test]
    fn guest_bitmap_covers_features_and_0x20_to_0x26() {
        assert_eq!(GUEST_FEATURES_BITMAP, 0x7F_0000_0001);
    }

    #[test]
    fn version_2_0_is_0x20000() {
        assert_eq!(Version::CURRENT.to_x1(), 0x2_0000);
        assert_eq!(Version::from_x1(0x2_0000), Some(Version::CURRENT));
        assert_eq!(Version::from_x1(1 << 32), None);
    }

    #[test]
    fn x0_upper_half_and_sve_hint_are_ignored() {
        assert_eq!(
            FunctionId::from_x0(0xDEAD_BEEF_C601_0009),
            FunctionId::VCPU_RUN
        );
        assert_eq!(
            FunctionId::from_x0(0x8601_FF01),
            FunctionId::VENDOR_HYP_CALL_UID
        );
    }

    #[test]
    fn only_smc64_fast_ids_have_a_number() {
        assert_eq!(FunctionId::VM_RECLAIM.number(), Some(0x0B));
        assert_eq!(FunctionId(0x8600_000B).number(), None); // SMC32
        assert_eq!(FunctionId(0x4600_000B).number(), None); // yielding
        assert_eq!(FunctionId(0xC680_000B).number(), None); // bits [23:16] set
        assert!(FunctionId(0x4600_000B).is_vendor_hyp_service());
        assert!(!FunctionId::PSCI_SYSTEM_OFF.is_vendor_hyp_service());
    }
}
