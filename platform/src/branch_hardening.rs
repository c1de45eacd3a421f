//! Which branch-predictor hardening EL2 runs on every entry from a lower EL (the host's
//! traps and HVCs, a guest's exits): Spectre-v2 (CVE-2017-5715, branch target injection)
//! and Spectre-BHB (CVE-2022-23960, branch history injection). Pure logic, tested on the
//! development machine; `el2/src/spectre.rs` feeds it each CPU's registers and firmware
//! answers at bring-up and `el2/src/asm/vectors.S` runs the result.
//!
//! The order and the tables are Linux's (torvalds/linux, arch/arm64/kernel/proton-pack.c,
//! as of the 2025 updates: "Add newer ARM cores to the spectre_bhb_loop_affected() lists",
//! "Add KRYO 2XX/3XX/4XX silver cores to Spectre BHB safe list", "Assume that unknown CPUs
//! _are_ vulnerable to Spectre BHB", "proton-pack: Add new CPUs 'k' values" (Cortex-X1C),
//! "cputype: Add Cortex-A720AE definitions"); pKVM's EL2 vectors (`__bp_harden_hyp_vecs`,
//! arch/arm64/kvm/hyp/hyp-entry.S) run the same choices:
//!
//! 1. Spectre-v2: a CPU with CSV2 (ID_AA64PFR0_EL1 [59:56] >= 1) or on the v2 safe list is
//!    unaffected; otherwise the firmware's SMCCC_ARCH_WORKAROUND_1 is the mitigation when
//!    ARCH_FEATURES says it is implemented for this CPU (`spectre_v2_get_cpu_*_state`).
//!    Such a CPU uses pKVM's "spectre" vector slot: an SMC to WORKAROUND_1 on every entry,
//!    upgraded to WORKAROUND_3 when the BHB choice below is the firmware
//!    (`spectre_bhb_patch_wa3`); Linux deems the WORKAROUND_1 call sufficient for BHB too
//!    (Cortex-A57/A72 firmware invalidates the whole predictor).
//! 2. Spectre-BHB (`spectre_bhb_enable_mitigation`), first match wins: CSV2_3 (PFR0 CSV2
//!    at least 3) or the BHB safe list: unaffected; ECBHB (ID_AA64MMFR1_EL1 [63:60]): the
//!    hardware clears the history on exceptions, nothing to run; CLRBHB (ID_AA64ISAR2_EL1
//!    [31:28]): the instruction; a core in a `spectre_bhb_loop_affected()` list: the branch
//!    loop with that core's k; the firmware's WORKAROUND_3 when ARCH_FEATURES says it is
//!    implemented; otherwise the CPU stays exposed (said in the boot log).
//!
//! One deliberate difference: Linux does not mitigate BHB on a CPU whose Spectre-v2 stays
//! unmitigated ("No point mitigating Spectre-BHB alone"). EL2 runs the BHB mitigation
//! anyway (it is cheap and closes the history channel) and reports Spectre-v2 as exposed;
//! QEMU's Cortex-A57/A72, whose built-in PSCI has no SMCCC 1.1, are such CPUs.

use crate::midr::{Midr, MidrRange, cores::*, model};

/// The firmware's ARCH_FEATURES answer for one workaround on this CPU (SMCCC 1.1+, DEN0028
/// section 7): 0 = implemented and needed, 1 = this CPU is unaffected (WORKAROUND_1/3 only),
/// anything else (NOT_SUPPORTED, NOT_REQUIRED, no SMCCC 1.1, no SMC conduit) = no help.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    Mitigates,
    Unaffected,
    NoMitigation,
}

impl Firmware {
    /// Decodes ARCH_FEATURES' x0 (Linux's `spectre_*_get_cpu_fw_mitigation_state`).
    pub const fn from_features(x0: u64) -> Self {
        match x0 {
            0 => Self::Mitigates,
            1 => Self::Unaffected,
            _ => Self::NoMitigation,
        }
    }
}

/// What EL2 knows about one CPU when it chooses.
#[derive(Clone, Copy, Debug)]
pub struct CpuSpeculation {
    pub midr: Midr,
    pub id_aa64pfr0: u64,
    pub id_aa64mmfr1: u64,
    pub id_aa64isar2: u64,
    /// ARCH_FEATURES(SMCCC_ARCH_WORKAROUND_1).
    pub workaround_1: Firmware,
    /// ARCH_FEATURES(SMCCC_ARCH_WORKAROUND_3).
    pub workaround_3: Firmware,
}

/// What this CPU's lower-EL entries run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mitigation {
    None,
    /// CLRBHB (`hint #22`) then `isb`.
    ClearBhb,
    /// k iterations of `b . + 4; subs; b.ne` then `dsb nsh; isb` (Linux's
    /// `mitigate_spectre_bhb_loop`).
    BranchLoop {
        k: u8,
    },
    /// An SMC to SMCCC_ARCH_WORKAROUND_1.
    FirmwareWorkaround1,
    /// An SMC to SMCCC_ARCH_WORKAROUND_3.
    FirmwareWorkaround3,
}

/// A CPU's choice and what stays exposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Choice {
    pub mitigation: Mitigation,
    /// Spectre-v2 affects this CPU and nothing here mitigates it (no firmware WORKAROUND_1).
    pub spectre_v2_exposed: bool,
    /// Spectre-BHB affects this CPU and no mitigation is known for it.
    pub spectre_bhb_exposed: bool,
}

/// Linux's `spectre_v2_get_cpu_hw_mitigation_state` safe list.
const SPECTRE_V2_SAFE: &[MidrRange] = &[
    MidrRange::all(CORTEX_A35),
    MidrRange::all(CORTEX_A53),
    MidrRange::all(CORTEX_A55),
    MidrRange::all(BRAHMA_B53),
    MidrRange::all(HISI_TSV110),
    MidrRange::all(KRYO_2XX_SILVER),
    MidrRange::all(KRYO_3XX_SILVER),
    MidrRange::all(KRYO_4XX_SILVER),
];

/// HiSilicon TSV110 (implementer 0x48, part 0xd01).
const HISI_TSV110: u64 = model(0x48, 0xd01);

/// Linux's `is_spectre_bhb_safe` list.
pub const SPECTRE_BHB_SAFE: &[MidrRange] = &[
    MidrRange::all(CORTEX_A35),
    MidrRange::all(CORTEX_A53),
    MidrRange::all(CORTEX_A55),
    MidrRange::all(CORTEX_A510),
    MidrRange::all(CORTEX_A520),
    MidrRange::all(BRAHMA_B53),
    MidrRange::all(KRYO_2XX_SILVER),
    MidrRange::all(KRYO_3XX_SILVER),
    MidrRange::all(KRYO_4XX_SILVER),
];

/// Linux's `spectre_bhb_loop_affected()` lists, checked in this order: (k, cores).
pub const SPECTRE_BHB_LOOP: &[(u8, &[MidrRange])] = &[
    (
        132,
        &[MidrRange::all(CORTEX_X3), MidrRange::all(NEOVERSE_V2)],
    ),
    (
        38,
        &[
            MidrRange::all(CORTEX_A715),
            MidrRange::all(CORTEX_A720),
            MidrRange::all(CORTEX_A720AE),
        ],
    ),
    (
        32,
        &[
            MidrRange::all(CORTEX_A78),
            MidrRange::all(CORTEX_A78AE),
            MidrRange::all(CORTEX_A78C),
            MidrRange::all(CORTEX_X1),
            MidrRange::all(CORTEX_X1C),
            MidrRange::all(CORTEX_A710),
            MidrRange::all(CORTEX_X2),
            MidrRange::all(NEOVERSE_N2),
            MidrRange::all(NEOVERSE_V1),
        ],
    ),
    (
        24,
        &[
            MidrRange::all(CORTEX_A76),
            MidrRange::all(CORTEX_A76AE),
            MidrRange::all(CORTEX_A77),
            MidrRange::all(NEOVERSE_N1),
            MidrRange::all(KRYO_4XX_GOLD),
        ],
    ),
    (11, &[MidrRange::all(AMPERE1)]),
    (8, &[MidrRange::all(CORTEX_A72), MidrRange::all(CORTEX_A57)]),
];

/// The branch-loop count for `midr` (0: not a loop-mitigated core).
pub fn bhb_loop_k(midr: Midr) -> u8 {
    SPECTRE_BHB_LOOP
        .iter()
        .find(|(_, list)| midr.is_in(list))
        .map_or(0, |(k, _)| *k)
}

const fn field(value: u64, shift: u32) -> u64 {
    (value >> shift) & 0xf
}

/// Chooses `cpu`'s mitigation in Linux's order (module documentation).
pub fn choose(cpu: &CpuSpeculation) -> Choice {
    let csv2 = field(cpu.id_aa64pfr0, 56);
    let v2_affected =
        csv2 == 0 && !cpu.midr.is_in(SPECTRE_V2_SAFE) && cpu.workaround_1 != Firmware::Unaffected;
    let v2_by_firmware = v2_affected && cpu.workaround_1 == Firmware::Mitigates;

    let bhb_affected = csv2 < 3 && !cpu.midr.is_in(SPECTRE_BHB_SAFE);
    let k = bhb_loop_k(cpu.midr);
    let bhb = if !bhb_affected || field(cpu.id_aa64mmfr1, 60) != 0 {
        Mitigation::None
    } else if field(cpu.id_aa64isar2, 28) != 0 {
        Mitigation::ClearBhb
    } else if k != 0 {
        Mitigation::BranchLoop { k }
    } else if cpu.workaround_3 == Firmware::Mitigates {
        Mitigation::FirmwareWorkaround3
    } else {
        Mitigation::None
    };
    let bhb_exposed = bhb_affected
        && bhb == Mitigation::None
        && field(cpu.id_aa64mmfr1, 60) == 0
        && !v2_by_firmware;

    let mitigation = match (v2_by_firmware, bhb) {
        (true, Mitigation::FirmwareWorkaround3) => Mitigation::FirmwareWorkaround3,
        (true, _) => Mitigation::FirmwareWorkaround1,
        (false, chosen) => chosen,
    };
    Choice {
        mitigation,
        spectre_v2_exposed: v2_affected && !v2_by_firmware,
        spectre_bhb_exposed: bhb_exposed,
    }
}

/// The one word the EL2 vectors read (`BRANCH_HARDENING`): which mitigations run, in this
/// order, on every entry from a lower EL. The payload has one set of vectors for all CPUs,
/// so on a machine with different cores it runs the union of their choices (a mitigation a
/// core does not need costs time, never safety; CLRBHB is a hint, a no-op where it does not
/// exist) with the largest k.
pub mod word {
    use super::Mitigation;

    pub const CLRBHB: u64 = 1 << 0;
    pub const LOOP: u64 = 1 << 1;
    pub const SMC_WORKAROUND_1: u64 = 1 << 2;
    pub const SMC_WORKAROUND_3: u64 = 1 << 3;
    /// The loop count, bits [15:8].
    pub const K_SHIFT: u32 = 8;

    pub const fn encode(m: Mitigation) -> u64 {
        match m {
            Mitigation::None => 0,
            Mitigation::ClearBhb => CLRBHB,
            Mitigation::BranchLoop { k } => LOOP | ((k as u64) << K_SHIFT),
            Mitigation::FirmwareWorkaround1 => SMC_WORKAROUND_1,
            Mitigation::FirmwareWorkaround3 => SMC_WORKAROUND_3,
        }
    }

    /// Every mitigation of `a` and of `b`, the larger k.
    pub const fn union(a: u64, b: u64) -> u64 {
        let k = {
            let (ka, kb) = ((a >> K_SHIFT) & 0xff, (b >> K_SHIFT) & 0xff);
            if ka > kb { ka } else { kb }
        };
        ((a | b) & 0xff) | (k << K_SHIFT)
    }

    pub const fn k(word: u64) -> u64 {
        (word >> K_SHIFT) & 0xff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// r0p0 of `model`.
    fn midr(model: u64) -> Midr {
        Midr(model)
    }

    /// A CPU of `model` with no CSV2, ECBHB or CLRBHB and firmware that offers nothing
    /// (QEMU's built-in PSCI).
    fn bare(model: u64) -> CpuSpeculation {
        CpuSpeculation {
            midr: midr(model),
            id_aa64pfr0: 0,
            id_aa64mmfr1: 0,
            id_aa64isar2: 0,
            workaround_1: Firmware::NoMitigation,
            workaround_3: Firmware::NoMitigation,
        }
    }

    const CSV2: u64 = 1 << 56;
    const CSV2_3: u64 = 3 << 56;
    const ECBHB: u64 = 1 << 60;
    const CLRBHB: u64 = 1 << 28;

    #[test]
    fn every_loop_table_entry_gets_its_linux_k() {
        let expected: &[(u64, u8)] = &[
            (CORTEX_X3, 132),
            (NEOVERSE_V2, 132),
            (CORTEX_A715, 38),
            (CORTEX_A720, 38),
            (CORTEX_A720AE, 38),
            (CORTEX_A78, 32),
            (CORTEX_A78AE, 32),
            (CORTEX_A78C, 32),
            (CORTEX_X1, 32),
            (CORTEX_X1C, 32),
            (CORTEX_A710, 32),
            (CORTEX_X2, 32),
            (NEOVERSE_N2, 32),
            (NEOVERSE_V1, 32),
            (CORTEX_A76, 24),
            (CORTEX_A76AE, 24),
            (CORTEX_A77, 24),
            (NEOVERSE_N1, 24),
            (KRYO_4XX_GOLD, 24),
            (AMPERE1, 11),
            (CORTEX_A72, 8),
            (CORTEX_A57, 8),
        ];
        let listed: usize = SPECTRE_BHB_LOOP.iter().map(|(_, l)| l.len()).sum();
        assert_eq!(listed, expected.len(), "a table entry without a test row");
        for &(core, k) in expected {
            // Any revision: Linux lists them all with MIDR_ALL_VERSIONS.
            for rv in [0x0000_0000, 0x0030_0004] {
                let m = Midr(core | rv);
                assert_eq!(bhb_loop_k(m), k, "{core:#x}");
                // With CSV2 (A76 and later have it) but without CSV2_3, ECBHB, CLRBHB or
                // firmware help, the loop is the choice.
                let cpu = CpuSpeculation {
                    midr: m,
                    id_aa64pfr0: CSV2,
                    ..bare(core)
                };
                assert_eq!(
                    choose(&cpu),
                    Choice {
                        mitigation: Mitigation::BranchLoop { k },
                        spectre_v2_exposed: false,
                        spectre_bhb_exposed: false,
                    },
                    "{core:#x}"
                );
            }
        }
    }

    #[test]
    fn qemu_cortex_a72_and_a57_get_the_loop_with_k_8_and_report_spectre_v2_exposed() {
        for midr in [0x410f_d083, 0x411f_d070] {
            let cpu = CpuSpeculation {
                midr: Midr(midr),
                ..bare(CORTEX_A72)
            };
            assert_eq!(
                choose(&cpu),
                Choice {
                    mitigation: Mitigation::BranchLoop { k: 8 },
                    spectre_v2_exposed: true,
                    spectre_bhb_exposed: false,
                }
            );
        }
    }

    #[test]
    fn cores_outside_every_loop_list_have_k_zero() {
        for core in [
            CORTEX_A53,
            CORTEX_A55,
            CORTEX_A73,
            CORTEX_A75,
            CORTEX_A35,
            CORTEX_A510,
        ] {
            assert_eq!(bhb_loop_k(midr(core)), 0, "{core:#x}");
        }
        // Same part number, other implementer.
        assert_eq!(bhb_loop_k(Midr(model(0x42, 0xd08))), 0);
    }

    #[test]
    fn safe_list_cores_and_csv2_3_need_nothing() {
        for range in SPECTRE_BHB_SAFE {
            let cpu = bare(range.model);
            let choice = choose(&cpu);
            assert_eq!(choice.mitigation, Mitigation::None, "{:#x}", range.model);
            assert!(!choice.spectre_bhb_exposed, "{:#x}", range.model);
        }
        // `-cpu max`: CSV2_3, ECBHB and CLRBHB.
        let max = CpuSpeculation {
            id_aa64pfr0: CSV2_3,
            id_aa64mmfr1: ECBHB,
            id_aa64isar2: CLRBHB,
            ..bare(model(0, 0))
        };
        assert_eq!(
            choose(&max),
            Choice {
                mitigation: Mitigation::None,
                spectre_v2_exposed: false,
                spectre_bhb_exposed: false,
            }
        );
        // CSV2_3 alone, even on a loop core.
        let a76 = CpuSpeculation {
            id_aa64pfr0: CSV2_3,
            ..bare(CORTEX_A76)
        };
        assert_eq!(choose(&a76).mitigation, Mitigation::None);
    }

    #[test]
    fn ecbhb_beats_clrbhb_beats_the_loop_beats_firmware_workaround_3() {
        let base = CpuSpeculation {
            id_aa64pfr0: CSV2,
            workaround_3: Firmware::Mitigates,
            ..bare(CORTEX_A76)
        };
        assert_eq!(choose(&base).mitigation, Mitigation::BranchLoop { k: 24 });
        let clrbhb = CpuSpeculation {
            id_aa64isar2: CLRBHB,
            ..base
        };
        assert_eq!(choose(&clrbhb).mitigation, Mitigation::ClearBhb);
        let ecbhb = CpuSpeculation {
            id_aa64mmfr1: ECBHB,
            ..clrbhb
        };
        assert_eq!(choose(&ecbhb).mitigation, Mitigation::None);
        assert!(!choose(&ecbhb).spectre_bhb_exposed);
        // A core in no list: the firmware's WORKAROUND_3.
        let unknown = CpuSpeculation {
            midr: Midr(model(0x61, 0x22)),
            ..base
        };
        assert_eq!(choose(&unknown).mitigation, Mitigation::FirmwareWorkaround3);
    }

    #[test]
    fn an_unknown_core_without_help_is_reported_exposed() {
        let cpu = CpuSpeculation {
            id_aa64pfr0: CSV2,
            ..bare(model(0x61, 0x22))
        };
        assert_eq!(
            choose(&cpu),
            Choice {
                mitigation: Mitigation::None,
                spectre_v2_exposed: false,
                spectre_bhb_exposed: true,
            }
        );
    }

    #[test]
    fn firmware_workaround_1_for_spectre_v2_takes_the_slot_and_becomes_3_only_when_bhb_needs_the_firmware()
     {
        // Cortex-A72 with TF-A: WORKAROUND_1 on every entry (Linux: enough for BHB too).
        let a72 = CpuSpeculation {
            workaround_1: Firmware::Mitigates,
            workaround_3: Firmware::Mitigates,
            ..bare(CORTEX_A72)
        };
        assert_eq!(
            choose(&a72),
            Choice {
                mitigation: Mitigation::FirmwareWorkaround1,
                spectre_v2_exposed: false,
                spectre_bhb_exposed: false,
            }
        );
        // Cortex-A73/A75 (no loop list, no CLRBHB): WORKAROUND_3 covers both.
        for core in [CORTEX_A73, CORTEX_A75] {
            let cpu = CpuSpeculation {
                midr: midr(core),
                ..a72
            };
            assert_eq!(choose(&cpu).mitigation, Mitigation::FirmwareWorkaround3);
            let only_1 = CpuSpeculation {
                workaround_3: Firmware::NoMitigation,
                ..cpu
            };
            assert_eq!(choose(&only_1).mitigation, Mitigation::FirmwareWorkaround1);
        }
    }

    #[test]
    fn firmware_answers_decode_as_smccc_defines_them() {
        assert_eq!(Firmware::from_features(0), Firmware::Mitigates);
        assert_eq!(Firmware::from_features(1), Firmware::Unaffected);
        for other in [-1i64 as u64, -2i64 as u64, 2, 0x8000_0000] {
            assert_eq!(Firmware::from_features(other), Firmware::NoMitigation);
        }
        // The firmware saying "unaffected" for WORKAROUND_1 settles Spectre-v2.
        let cpu = CpuSpeculation {
            workaround_1: Firmware::Unaffected,
            ..bare(CORTEX_A57)
        };
        assert_eq!(
            choose(&cpu),
            Choice {
                mitigation: Mitigation::BranchLoop { k: 8 },
                spectre_v2_exposed: false,
                spectre_bhb_exposed: false,
            }
        );
        // Safe-list cores are not Spectre-v2 exposed even without firmware.
        for range in SPECTRE_V2_SAFE {
            assert!(!choose(&bare(range.model)).spectre_v2_exposed);
        }
    }

    #[test]
    fn the_vector_word_holds_the_union_and_the_largest_k() {
        let a72 = word::encode(Mitigation::BranchLoop { k: 8 });
        let a76 = word::encode(Mitigation::BranchLoop { k: 24 });
        let clr = word::encode(Mitigation::ClearBhb);
        assert_eq!(word::union(a72, a76), word::LOOP | (24 << word::K_SHIFT));
        assert_eq!(word::union(a76, a72), word::union(a72, a76));
        assert_eq!(word::union(a72, clr), word::LOOP | word::CLRBHB | (8 << 8));
        assert_eq!(
            word::k(word::encode(Mitigation::BranchLoop { k: 132 })),
            132
        );
        assert_eq!(word::encode(Mitigation::None), 0);
        assert_eq!(word::union(0, 0), 0);
        assert_eq!(
            word::union(
                word::encode(Mitigation::FirmwareWorkaround1),
                word::encode(Mitigation::FirmwareWorkaround3)
            ),
            word::SMC_WORKAROUND_1 | word::SMC_WORKAROUND_3
        );
    }
}
