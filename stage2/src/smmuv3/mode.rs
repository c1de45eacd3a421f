//! Which translation EL2 gives the host's streams, read from the SMMU's ID registers
//! (IHI 0070 6.3.1 SMMU_IDR0, 6.3.6 SMMU_IDR5).
//!
//! Stage 2 where the SMMU has it (`IDR0.S2P`): an STE with Config = 0b110 walks a VMSAv8-64
//! stage-2 table directly, no context descriptor. Stage 1 otherwise (`IDR0.S1P` only, as on
//! QEMU 7.2): EL2 owns the CD and the table, so stage 1 confines DMA as well (the host never
//! sees the SMMU). Neither, or no AArch64 4 KiB tables, or no coherent table walks: EL2
//! cannot confine the host's DMA and the boot stops with the reason.

use crate::pgtable::{Stage2Config, stage2_config};
use crate::smmuv3::commands::DmaContext;
use crate::smmuv3::tables::{HOST_ASID, HOST_VMID};

/// How the host's streams translate.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum DmaTranslation {
    /// Stage 1 through one CD; `ips` is `CD.IPS` (IDR5.OAS, at most 48 bits).
    Stage1 { ips: u64 },
    /// Stage 2 only; the configuration is the CPU's rules applied to the SMMU's output size
    /// (IDR5.OAS has PARange's encoding): input size = output size capped at 48 bits, start
    /// level and concatenated roots from the Arm ARM's legal combinations
    /// ([`stage2_config`]), the STE's S2T0SZ/S2SL0/S2IR0/S2OR0/S2SH0/S2TG/S2PS are
    /// `vtcr[18:0]`.
    Stage2(Stage2Config),
}

impl DmaTranslation {
    /// The context the host's table is cached under, which revocations invalidate: the CD's
    /// ASID for stage 1, the STE's VMID for stage 2.
    pub fn context(&self) -> DmaContext {
        match self {
            DmaTranslation::Stage1 { .. } => DmaContext::Stage1Asid(HOST_ASID),
            DmaTranslation::Stage2(_) => DmaContext::Stage2Vmid(HOST_VMID),
        }
    }
}

const IDR0_S2P: u32 = 1 << 0;
const IDR0_S1P: u32 = 1 << 1;
/// IDR0.TTF [3:2]: 0b10 AArch64, 0b11 AArch32 and AArch64.
const IDR0_TTF_AARCH64: u32 = 0b10 << 2;
const IDR0_COHACC: u32 = 1 << 4;
const IDR5_GRAN4K: u32 = 1 << 4;

/// The translation EL2 uses for an SMMU with these ID registers, or why it cannot confine
/// the host's DMA with it.
///
/// # Errors
///
/// A sentence naming the missing feature and its ID field.
pub fn choose(idr0: u32, idr5: u32) -> Result<DmaTranslation, &'static str> {
    if idr0 & (IDR0_S1P | IDR0_S2P) == 0 {
        return Err("neither stage 1 nor stage 2 translation (IDR0.S1P = IDR0.S2P = 0)");
    }
    if idr0 & IDR0_TTF_AARCH64 == 0 || idr5 & IDR5_GRAN4K == 0 {
        return Err("no AArch64 tables with a 4 KiB granule (IDR0.TTF, IDR5.GRAN4K)");
    }
    if idr0 & IDR0_COHACC == 0 {
        return Err("not coherent (IDR0.COHACC = 0): EL2 would have to clean every table change");
    }
    let oas = u64::from(idr5 & 7);
    if idr0 & IDR0_S2P != 0 {
        Ok(DmaTranslation::Stage2(stage2_config(oas)))
    } else {
        Ok(DmaTranslation::Stage1 { ips: oas.min(5) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COHERENT_AA64: u32 = IDR0_TTF_AARCH64 | IDR0_COHACC;

    #[test]
    fn an_smmu_with_stage_2_gets_stage_2_whatever_its_stage_1() {
        for idr0 in [IDR0_S2P, IDR0_S2P | IDR0_S1P] {
            let t = choose(idr0 | COHERENT_AA64, IDR5_GRAN4K | 4).unwrap();
            assert_eq!(t, DmaTranslation::Stage2(stage2_config(4)));
        }
        // TTF = 0b11 (AArch32 and AArch64) is AArch64 too.
        assert!(matches!(
            choose(IDR0_S2P | (0b11 << 2) | IDR0_COHACC, IDR5_GRAN4K | 5),
            Ok(DmaTranslation::Stage2(_))
        ));
    }

    #[test]
    fn an_smmu_with_stage_1_only_gets_stage_1_as_on_qemu_7_2() {
        // QEMU 7.2 (hw/arm/smmuv3.c smmuv3_init_regs): IDR0 = S1P, TTF = AArch64, COHACC,
        // ASID16, TTENDIAN = LE, STALL_MODEL = 1, TERM_MODEL, STLEVEL = 2-level; IDR5: OAS =
        // 44 bits, 4K/16K/64K granules.
        let qemu_idr0 = 0x0d40_101a;
        let qemu_idr5 = 0x74;
        assert_eq!(
            choose(qemu_idr0, qemu_idr5),
            Ok(DmaTranslation::Stage1 { ips: 4 })
        );
        // IPS never exceeds 48 bits (52 needs the 64 KiB granule or LPA2).
        assert_eq!(
            choose(IDR0_S1P | COHERENT_AA64, IDR5_GRAN4K | 6),
            Ok(DmaTranslation::Stage1 { ips: 5 })
        );
    }

    #[test]
    fn the_stage_2_configuration_follows_the_output_size_and_the_legal_start_levels() {
        // (OAS encoding, input bits, start level, concatenated root tables)
        for (oas, bits, level, tables) in [
            (0, 32, 1, 1),
            (1, 36, 1, 1),
            (2, 40, 1, 2),
            (3, 42, 1, 8),
            (4, 44, 0, 1),
            (5, 48, 0, 1),
            (6, 48, 0, 1),
        ] {
            let Ok(DmaTranslation::Stage2(c)) = choose(IDR0_S2P | COHERENT_AA64, IDR5_GRAN4K | oas)
            else {
                panic!("OAS {oas}: not stage 2");
            };
            assert_eq!(
                (c.ipa_bits, c.root_level, c.root_tables),
                (bits, level, tables),
                "OAS {oas}"
            );
        }
    }

    #[test]
    fn revocations_invalidate_the_context_the_ste_names() {
        let s2 = choose(IDR0_S2P | COHERENT_AA64, IDR5_GRAN4K | 4).unwrap();
        assert_eq!(s2.context(), DmaContext::Stage2Vmid(HOST_VMID));
        let s1 = choose(IDR0_S1P | COHERENT_AA64, IDR5_GRAN4K | 4).unwrap();
        assert_eq!(s1.context(), DmaContext::Stage1Asid(HOST_ASID));
    }

    #[test]
    fn an_smmu_that_cannot_confine_the_host_is_refused_with_the_reason() {
        let e = choose(COHERENT_AA64, IDR5_GRAN4K | 4).unwrap_err();
        assert!(e.contains("neither stage 1 nor stage 2"), "{e}");
        let e = choose(IDR0_S2P | IDR0_COHACC | (0b01 << 2), IDR5_GRAN4K).unwrap_err();
        assert!(e.contains("IDR0.TTF"), "AArch32-only tables: {e}");
        let e = choose(IDR0_S2P | COHERENT_AA64, 0x60 | 4).unwrap_err();
        assert!(
            choose(IDR0_S2P | IDR0_COHACC, IDR5_GRAN4K).is_err(),
            "TTF = 0"
        );
        assert!(e.contains("GRAN4K"), "no 4 KiB granule: {e}");
        let e = choose(IDR0_S1P | IDR0_TTF_AARCH64, IDR5_GRAN4K).unwrap_err();
        assert!(e.contains("COHACC"), "{e}");
    }
}
