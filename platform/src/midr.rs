//! MIDR_EL1 (Arm ARM D19.2, "MIDR_EL1, Main ID Register"): which core a CPU is, as the
//! erratum and mitigation tables name it. Matching follows Linux's `struct midr_range`
//! (arch/arm64/include/asm/cputype.h): a core is its implementer and part number (and the
//! architecture field, always 0xf on Armv8); a range adds variant/revision bounds
//! (`rVpR`).

/// A MIDR_EL1 value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Midr(pub u64);

/// The fields of MIDR_EL1 that name a core: Implementer [31:24], Architecture [19:16],
/// PartNum [15:4] (Linux's `MIDR_CPU_MODEL_MASK`).
const MODEL_MASK: u64 = 0xff0f_fff0;

/// A core model: implementer and part number, architecture 0xf (Linux's `MIDR_CPU_MODEL`).
pub const fn model(implementer: u64, part: u64) -> u64 {
    (implementer << 24) | (0xf << 16) | (part << 4)
}

pub const IMP_ARM: u64 = 0x41;
pub const IMP_BROADCOM: u64 = 0x42;
pub const IMP_QCOM: u64 = 0x51;
pub const IMP_AMPERE: u64 = 0xc0;

/// Core models used by the tables of this crate (part numbers from Linux's cputype.h).
pub mod cores {
    use super::{IMP_AMPERE, IMP_ARM, IMP_BROADCOM, IMP_QCOM, model};

    pub const CORTEX_A35: u64 = model(IMP_ARM, 0xd04);
    pub const CORTEX_A53: u64 = model(IMP_ARM, 0xd03);
    pub const CORTEX_A55: u64 = model(IMP_ARM, 0xd05);
    pub const CORTEX_A57: u64 = model(IMP_ARM, 0xd07);
    pub const CORTEX_A72: u64 = model(IMP_ARM, 0xd08);
    pub const CORTEX_A73: u64 = model(IMP_ARM, 0xd09);
    pub const CORTEX_A75: u64 = model(IMP_ARM, 0xd0a);
    pub const CORTEX_A76: u64 = model(IMP_ARM, 0xd0b);
    pub const NEOVERSE_N1: u64 = model(IMP_ARM, 0xd0c);
    pub const CORTEX_A77: u64 = model(IMP_ARM, 0xd0d);
    pub const CORTEX_A76AE: u64 = model(IMP_ARM, 0xd0e);
    pub const NEOVERSE_V1: u64 = model(IMP_ARM, 0xd40);
    pub const CORTEX_A78: u64 = model(IMP_ARM, 0xd41);
    pub const CORTEX_A78AE: u64 = model(IMP_ARM, 0xd42);
    pub const CORTEX_X1: u64 = model(IMP_ARM, 0xd44);
    pub const CORTEX_A510: u64 = model(IMP_ARM, 0xd46);
    pub const CORTEX_A710: u64 = model(IMP_ARM, 0xd47);
    pub const CORTEX_X2: u64 = model(IMP_ARM, 0xd48);
    pub const NEOVERSE_N2: u64 = model(IMP_ARM, 0xd49);
    pub const CORTEX_A78C: u64 = model(IMP_ARM, 0xd4b);
    pub const CORTEX_X1C: u64 = model(IMP_ARM, 0xd4c);
    pub const CORTEX_A715: u64 = model(IMP_ARM, 0xd4d);
    pub const CORTEX_X3: u64 = model(IMP_ARM, 0xd4e);
    pub const NEOVERSE_V2: u64 = model(IMP_ARM, 0xd4f);
    pub const CORTEX_A520: u64 = model(IMP_ARM, 0xd80);
    pub const CORTEX_A720: u64 = model(IMP_ARM, 0xd81);
    pub const CORTEX_A720AE: u64 = model(IMP_ARM, 0xd89);
    pub const BRAHMA_B53: u64 = model(IMP_BROADCOM, 0x100);
    pub const KRYO_2XX_SILVER: u64 = model(IMP_QCOM, 0x801);
    pub const KRYO_3XX_SILVER: u64 = model(IMP_QCOM, 0x803);
    pub const KRYO_4XX_GOLD: u64 = model(IMP_QCOM, 0x804);
    pub const KRYO_4XX_SILVER: u64 = model(IMP_QCOM, 0x805);
    pub const AMPERE1: u64 = model(IMP_AMPERE, 0xac3);
}

/// Cores of one model with a variant/revision (`rVpR`) in `first..=last`, each given as
/// `(variant << 4) | revision` (Linux's `MIDR_RANGE`, `MIDR_REV`, `MIDR_ALL_VERSIONS`).
#[derive(Clone, Copy, Debug)]
pub struct MidrRange {
    pub model: u64,
    pub first: u8,
    pub last: u8,
}

impl MidrRange {
    /// Every revision of `model` (Linux's `MIDR_ALL_VERSIONS`).
    pub const fn all(model: u64) -> Self {
        Self {
            model,
            first: 0,
            last: 0xff,
        }
    }

    /// `rV1pR1` to `rV2pR2` of `model` (Linux's `MIDR_RANGE`).
    pub const fn range(model: u64, v1: u8, r1: u8, v2: u8, r2: u8) -> Self {
        Self {
            model,
            first: (v1 << 4) | r1,
            last: (v2 << 4) | r2,
        }
    }
}

impl Midr {
    /// `(variant << 4) | revision`: Variant [23:20], Revision [3:0].
    pub const fn variant_revision(self) -> u8 {
        ((((self.0 >> 20) & 0xf) << 4) | (self.0 & 0xf)) as u8
    }

    pub const fn is(self, range: &MidrRange) -> bool {
        let rv = self.variant_revision();
        self.0 & MODEL_MASK == range.model && rv >= range.first && rv <= range.last
    }

    pub fn is_in(self, list: &[MidrRange]) -> bool {
        list.iter().any(|r| self.is(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QEMU's `-cpu cortex-a72`: r0p3.
    const QEMU_A72: Midr = Midr(0x410f_d083);

    #[test]
    fn a_core_matches_every_revision_of_its_model_only() {
        assert!(QEMU_A72.is(&MidrRange::all(cores::CORTEX_A72)));
        assert!(!QEMU_A72.is(&MidrRange::all(cores::CORTEX_A57)));
        // Another implementer with the same part number is another core.
        assert!(!Midr(0x420f_d083).is(&MidrRange::all(cores::CORTEX_A72)));
    }

    #[test]
    fn a_revision_range_includes_both_ends_and_nothing_outside() {
        let r0p0_to_r2p0 = MidrRange::range(cores::CORTEX_A76, 0, 0, 2, 0);
        for (midr, inside) in [
            (0x410f_d0b0, true),  // r0p0
            (0x412f_d0b0, true),  // r2p0
            (0x411f_d0b4, true),  // r1p4
            (0x412f_d0b1, false), // r2p1
            (0x413f_d0b0, false), // r3p0
            (0x410f_d0c0, false), // Neoverse N1 r0p0
        ] {
            assert_eq!(Midr(midr).is(&r0p0_to_r2p0), inside, "{midr:#x}");
        }
    }
}
