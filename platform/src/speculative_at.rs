//! Which cores need the speculative-AT erratum sequences (Linux's
//! ARM64_WORKAROUND_SPECULATIVE_AT, `erratum_speculative_at_list` in
//! arch/arm64/kernel/cpu_errata.c): a speculative address translation can use an
//! out-of-context translation regime while EL2 changes the EL1&0 context (stage 1 registers
//! and VTTBR_EL2) and leave a wrong TLB entry behind. EL2 then switches that context in
//! pKVM's nVHE order (`el2/src/speculative_at.rs`). Pure logic, tested here.

use crate::midr::{Midr, MidrRange, cores::*};

/// Linux's `erratum_speculative_at_list`.
pub const AFFECTED: &[MidrRange] = &[
    // Cortex-A76 erratum 1165522, r0p0 to r2p0.
    MidrRange::range(CORTEX_A76, 0, 0, 2, 0),
    // Cortex-A57 erratum 1319537 and Cortex-A72 erratum 1319367, every revision.
    MidrRange::all(CORTEX_A57),
    MidrRange::all(CORTEX_A72),
    // Cortex-A55 erratum 1530923, r0p0 to r2p0.
    MidrRange::range(CORTEX_A55, 0, 0, 2, 0),
    // Kryo 4xx Silver rdpe (= Cortex-A55 r1p0).
    MidrRange::range(KRYO_4XX_SILVER, 0xd, 0xe, 0xd, 0xe),
];

/// Whether `midr` needs the sequences.
pub fn affected(midr: Midr) -> bool {
    midr.is_in(AFFECTED)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(model: u64, variant: u64, revision: u64) -> Midr {
        Midr(model | (variant << 20) | revision)
    }

    #[test]
    fn every_listed_core_and_revision_is_affected_and_later_revisions_are_not() {
        let cases = [
            (rev(CORTEX_A76, 0, 0), true),
            (rev(CORTEX_A76, 2, 0), true),
            (rev(CORTEX_A76, 2, 1), false),
            (rev(CORTEX_A76, 3, 0), false),
            (rev(CORTEX_A57, 1, 3), true),
            (rev(CORTEX_A72, 0, 3), true), // QEMU's -cpu cortex-a72
            (rev(CORTEX_A72, 1, 0), true),
            (rev(CORTEX_A55, 0, 0), true),
            (rev(CORTEX_A55, 2, 0), true),
            (rev(CORTEX_A55, 2, 1), false),
            (rev(KRYO_4XX_SILVER, 0xd, 0xe), true),
            (rev(KRYO_4XX_SILVER, 0xd, 0xf), false),
            (rev(CORTEX_A53, 0, 4), false), // QEMU's -cpu cortex-a53
            (rev(NEOVERSE_N1, 0, 0), false),
            (Midr(0), false),
        ];
        for (midr, expected) in cases {
            assert_eq!(affected(midr), expected, "{:#x}", midr.0);
        }
        assert_eq!(AFFECTED.len(), 5, "a table entry without a test row");
    }
}
