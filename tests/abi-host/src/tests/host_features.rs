//! The host keeps every feature its ID registers advertise (the audit table against
//! Linux's nVHE host is in `platform::host_controls`): for each feature the host
//! reads in its own ID registers, the registers and instructions of that feature work at
//! EL1 under the payload, rather than trapping to EL2 and coming back as an undefined
//! instruction. A feature the payload hides must be absent from those ID registers.
//!
//! Every probe is one asm block with the trap handler armed (`el1_rt::exceptions::
//! expect_instruction_trap`): an undefined instruction, or an SVE/SME/pointer
//! authentication trap, is recorded and stepped over instead of stopping the image.

use crate::runner::{Ctx, Failure, TestResult, bail};
use el1_rt::exceptions::{expect_instruction_trap, take_instruction_trap};
use el1_rt::say;

/// Reads a system register (by name or `s<op0>_<op1>_c<n>_c<m>_<op2>`) at EL1: `Err(esr)`
/// if the read trapped.
macro_rules! try_mrs {
    ($reg:literal) => {{
        expect_instruction_trap();
        let value: u64;
        // SAFETY: a system-register read has no side effect on memory; if it traps, the
        // armed handler steps over it (the handler is an ordinary Rust call, hence
        // clobber_abi("C")). The asm block has memory effects, so it stays between the
        // arming and the check.
        unsafe {
            core::arch::asm!(concat!("mrs x1, ", $reg), out("x1") value, clobber_abi("C"), options(nostack))
        };
        match take_instruction_trap() {
            Some(esr) => Err(esr),
            None => Ok(value),
        }
    }};
}

/// Reads an ID register the host never traps on (the payload does not set HCR_EL2.TID3
/// for the host).
macro_rules! id_reg {
    ($reg:literal) => {{
        let value: u64;
        // SAFETY: ID registers are read-only and always readable at EL1.
        unsafe {
            core::arch::asm!(concat!("mrs {}, ", $reg), out(reg) value, options(nomem, nostack, preserves_flags))
        };
        value
    }};
}

/// The host's view of its ID registers.
struct Ids {
    pfr0: u64,
    pfr1: u64,
    pfr2: u64,
    dfr0: u64,
    isar0: u64,
    isar1: u64,
    isar2: u64,
    mmfr1: u64,
    mmfr3: u64,
    smfr0: u64,
}

impl Ids {
    fn read() -> Self {
        Self {
            pfr0: id_reg!("id_aa64pfr0_el1"),
            pfr1: id_reg!("id_aa64pfr1_el1"),
            pfr2: id_reg!("s3_0_c0_c4_2"),
            dfr0: id_reg!("id_aa64dfr0_el1"),
            isar0: id_reg!("id_aa64isar0_el1"),
            isar1: id_reg!("id_aa64isar1_el1"),
            isar2: id_reg!("s3_0_c0_c6_2"),
            mmfr1: id_reg!("id_aa64mmfr1_el1"),
            mmfr3: id_reg!("s3_0_c0_c7_3"),
            smfr0: id_reg!("s3_0_c0_c4_5"),
        }
    }
}

const fn field(value: u64, shift: u32) -> u64 {
    (value >> shift) & 0xf
}

/// What one feature's check found.
enum Found {
    /// The ID registers do not advertise it.
    Absent,
    Works,
    /// Advertised, but this (register or instruction, and ESR_EL1 or what went wrong).
    Broken(&'static str, u64),
}

/// Each register read must not trap.
fn reads(regs: &[(&'static str, Result<u64, u64>)]) -> Found {
    for (name, result) in regs {
        if let Err(esr) = result {
            return Found::Broken(name, *esr);
        }
    }
    Found::Works
}

macro_rules! read_all {
    ($($reg:literal),+) => {
        reads(&[$(($reg, try_mrs!($reg))),+])
    };
}

/// `fn $name(ids)`: the feature is absent when `ids.$id`'s field at `$shift` is 0, and
/// when present its EL1 registers `$reg` must all read without a trap. The doc comment
/// names them and the EL2 control that opens them.
macro_rules! register_probe {
    ($(#[$doc:meta])* $name:ident, $id:ident, $shift:literal, $($reg:literal),+) => {
        $(#[$doc])*
        fn $name(ids: &Ids) -> Found {
            if field(ids.$id, $shift) == 0 {
                return Found::Absent;
            }
            read_all!($($reg),+)
        }
    };
}

fn pointer_auth_address(ids: &Ids) -> Found {
    let advertised = field(ids.isar1, 4) | field(ids.isar1, 8) | field(ids.isar2, 12);
    if advertised == 0 {
        return Found::Absent;
    }
    if let Err(esr) = try_mrs!("s3_0_c2_c1_0") {
        return Found::Broken("APIAKEYLO_EL1 (HCR_EL2.APK)", esr);
    }
    let pointer = &raw const advertised as u64;
    let (signed, authenticated): (u64, u64);
    expect_instruction_trap();
    // SAFETY: SCTLR_EL1.EnIA (bit 31) is set only for PACIA/AUTIA and put back before the
    // block ends; no compiled code (which does not sign return addresses anyway) runs in
    // between. A trap is stepped over by the armed handler.
    unsafe {
        core::arch::asm!(
            "mrs x9, sctlr_el1",
            "orr x10, x9, #(1 << 31)",
            "msr sctlr_el1, x10",
            "isb",
            "mov x0, x2",
            ".inst 0xdac10020", // pacia x0, x1
            "mov x3, x0",
            ".inst 0xdac11020", // autia x0, x1
            "msr sctlr_el1, x9",
            "isb",
            in("x1") 0x1234_u64,
            in("x2") pointer,
            out("x0") authenticated,
            out("x3") signed,
            out("x9") _,
            out("x10") _,
            clobber_abi("C"),
            options(nostack),
        )
    };
    if let Some(esr) = take_instruction_trap() {
        return Found::Broken("PACIA/AUTIA (HCR_EL2.API)", esr);
    }
    if signed == pointer {
        return Found::Broken("PACIA left the pointer unsigned", signed);
    }
    if authenticated != pointer {
        return Found::Broken("AUTIA did not give the pointer back", authenticated);
    }
    Found::Works
}

fn pointer_auth_generic(ids: &Ids) -> Found {
    let advertised = field(ids.isar1, 24) | field(ids.isar1, 28) | field(ids.isar2, 8);
    if advertised == 0 {
        return Found::Absent;
    }
    let pac: u64;
    expect_instruction_trap();
    // SAFETY: PACGA only computes a value into x0; a trap is stepped over.
    unsafe {
        core::arch::asm!(
            ".inst 0x9ac23020", // pacga x0, x1, x2
            in("x1") 0x0123_4567_89ab_cdef_u64,
            in("x2") 0x55_u64,
            out("x0") pac,
            clobber_abi("C"),
            options(nostack),
        )
    };
    if let Some(esr) = take_instruction_trap() {
        return Found::Broken("PACGA (HCR_EL2.API)", esr);
    }
    if pac >> 32 == 0 {
        return Found::Broken("PACGA gave no code", pac);
    }
    Found::Works
}

// In the asm blocks below: CPACR_EL1.ZEN (bits 17:16) and .SMEN (bits 25:24) stop SVE
// and SME trapping to EL1; ZCR_EL1/SMCR_EL1.LEN = 0xf asks for the largest vector length.

/// SMCR_EL1.FA64.
const SMCR_FA64: u64 = 1 << 31;

fn sve(ids: &Ids) -> Found {
    if field(ids.pfr0, 32) == 0 {
        return Found::Absent;
    }
    let (vl, sum): (u64, u64);
    expect_instruction_trap();
    // SAFETY: CPACR_EL1 and ZCR_EL1 are the host's own and put back in the block; the SVE
    // registers used are declared clobbered (clobber_abi("C") covers Z/P registers).
    unsafe {
        core::arch::asm!(
            ".arch_extension sve",
            "mrs x9, cpacr_el1",
            "orr x10, x9, #(0b11 << 16)",
            "msr cpacr_el1, x10",
            "mrs x11, s3_0_c1_c2_0", // ZCR_EL1
            "mov x10, #0xf",
            "msr s3_0_c1_c2_0, x10",
            "isb",
            "rdvl x0, #1",
            "ptrue p0.b",
            "mov z0.b, #0x5a",
            "uaddv d1, p0, z0.b",
            "fmov x1, d1",
            "msr s3_0_c1_c2_0, x11",
            "msr cpacr_el1, x9",
            "isb",
            out("x0") vl,
            out("x1") sum,
            out("x9") _,
            out("x10") _,
            out("x11") _,
            clobber_abi("C"),
            options(nostack),
        )
    };
    if let Some(esr) = take_instruction_trap() {
        return Found::Broken("RDVL/UADDV on Z0 (CPTR_EL2.TZ)", esr);
    }
    if vl < 16 || vl % 16 != 0 || sum != 0x5a * vl {
        return Found::Broken(
            "Z0 at the vector length (RDVL, then the sum of its bytes)",
            sum,
        );
    }
    Found::Works
}

fn sme(ids: &Ids) -> Found {
    if field(ids.pfr1, 24) == 0 {
        return Found::Absent;
    }
    let (svl, streaming_vl): (u64, u64);
    expect_instruction_trap();
    // SAFETY: as in `sve`; ZA and streaming mode are entered and left inside the block
    // (SMSTOP clears PSTATE.SM and PSTATE.ZA), and no compiled code runs in between.
    unsafe {
        core::arch::asm!(
            ".arch_extension sve",
            "mrs x9, cpacr_el1",
            "orr x10, x9, #(0b11 << 16)",
            "orr x10, x10, #(0b11 << 24)",
            "msr cpacr_el1, x10",
            "mrs x11, s3_0_c1_c2_6", // SMCR_EL1
            "mov x10, #0xf",
            "msr s3_0_c1_c2_6, x10",
            "isb",
            ".inst 0x04bf5820", // rdsvl x0, #1
            ".inst 0xd503477f", // smstart
            ".inst 0xc00800ff", // zero {za}
            "rdvl x1, #1",
            ".inst 0xd503467f", // smstop
            "msr s3_0_c1_c2_6, x11",
            "msr cpacr_el1, x9",
            "isb",
            out("x0") svl,
            out("x1") streaming_vl,
            out("x9") _,
            out("x10") _,
            out("x11") _,
            clobber_abi("C"),
            options(nostack),
        )
    };
    if let Some(esr) = take_instruction_trap() {
        return Found::Broken("RDSVL/SMSTART/ZERO {ZA} (CPTR_EL2.TSM)", esr);
    }
    if svl < 16 || svl != streaming_vl {
        return Found::Broken(
            "the streaming vector length (RDSVL vs RDVL in streaming mode)",
            svl,
        );
    }
    if let Err(esr) = try_mrs!("s3_3_c13_c0_5") {
        return Found::Broken("TPIDR2_EL0", esr);
    }
    Found::Works
}

/// FEAT_SME_FA64: with SMCR_EL1.FA64 set, AdvSIMD instructions are legal in streaming mode.
fn sme_fa64(ids: &Ids) -> Found {
    if field(ids.pfr1, 24) == 0 || ids.smfr0 >> 63 == 0 {
        return Found::Absent;
    }
    expect_instruction_trap();
    // SAFETY: as in `sme`. If the AdvSIMD instruction traps, the handler runs in streaming
    // mode and steps over it; the block then leaves streaming mode.
    unsafe {
        core::arch::asm!(
            "mrs x9, cpacr_el1",
            "orr x10, x9, #(0b11 << 16)",
            "orr x10, x10, #(0b11 << 24)",
            "msr cpacr_el1, x10",
            "mrs x11, s3_0_c1_c2_6", // SMCR_EL1
            "mov x10, #0xf",
            "orr x10, x10, x12",
            "msr s3_0_c1_c2_6, x10",
            "isb",
            ".inst 0xd503437f", // smstart sm
            "mov v0.16b, v1.16b",
            ".inst 0xd503427f", // smstop sm
            "msr s3_0_c1_c2_6, x11",
            "msr cpacr_el1, x9",
            "isb",
            in("x12") SMCR_FA64,
            out("x9") _,
            out("x10") _,
            out("x11") _,
            clobber_abi("C"),
            options(nostack),
        )
    };
    match take_instruction_trap() {
        Some(esr) => Found::Broken(
            "an AdvSIMD instruction in streaming mode with SMCR_EL1.FA64 (SMCR_EL2.FA64)",
            esr,
        ),
        None => Found::Works,
    }
}

fn mte(ids: &Ids) -> Found {
    if field(ids.pfr1, 8) < 2 {
        return Found::Absent;
    }
    read_all!("s3_0_c1_c0_6", "s3_0_c1_c0_5", "s3_0_c5_c6_0")
}

/// PMCNTENSET_EL0.C. (In the asm block, `#5` is PMCR_EL0.E, enable, and .C, reset the
/// cycle counter.)
const CYCLE_COUNTER: u64 = 1 << 31;

fn pmu(ids: &Ids) -> Found {
    let pmuver = field(ids.dfr0, 8);
    if pmuver == 0 || pmuver == 0xf {
        return Found::Absent;
    }
    let pmcr = match try_mrs!("pmcr_el0") {
        Ok(v) => v,
        Err(esr) => return Found::Broken("PMCR_EL0", esr),
    };
    let counters = (pmcr >> 11) & 0x1f;
    let (c0, c1): (u64, u64);
    expect_instruction_trap();
    // SAFETY: the host's own PMU registers, put back before the block ends. PMCCFILTR_EL0
    // = 0 counts EL1 and EL0 (not EL2).
    unsafe {
        core::arch::asm!(
            "mrs x9, pmccfiltr_el0",
            "msr pmccfiltr_el0, xzr",
            "orr x10, x12, #1",
            "orr x10, x10, #4",
            "msr pmcr_el0, x10",
            "msr pmcntenset_el0, x13",
            "isb",
            "mrs x0, pmccntr_el0",
            "mov x10, #10000",
            "1: subs x10, x10, #1",
            "b.ne 1b",
            "isb",
            "mrs x1, pmccntr_el0",
            "msr pmcntenclr_el0, x13",
            "msr pmcr_el0, x12",
            "msr pmccfiltr_el0, x9",
            "isb",
            in("x12") pmcr,
            in("x13") CYCLE_COUNTER,
            out("x0") c0,
            out("x1") c1,
            out("x9") _,
            out("x10") _,
            clobber_abi("C"),
            options(nostack),
        )
    };
    if let Some(esr) = take_instruction_trap() {
        return Found::Broken("the cycle counter (MDCR_EL2.TPM)", esr);
    }
    if c1 <= c0 {
        return Found::Broken("the cycle counter did not count at EL1", c1);
    }
    if counters > 0 {
        // The highest event counter (PMCR_EL0.N - 1) belongs to EL1 (MDCR_EL2.HPMN = N).
        let sel: u64;
        expect_instruction_trap();
        // SAFETY: PMSELR_EL0 is the host's own; put back in the block.
        unsafe {
            core::arch::asm!(
                "mrs x9, pmselr_el0",
                "msr pmselr_el0, x12",
                "isb",
                "mrs x0, pmxevtyper_el0",
                "msr pmselr_el0, x9",
                "isb",
                in("x12") counters - 1,
                out("x0") sel,
                out("x9") _,
                clobber_abi("C"),
                options(nostack),
            )
        };
        let _ = sel;
        if let Some(esr) = take_instruction_trap() {
            return Found::Broken("the last event counter (MDCR_EL2.HPMN)", esr);
        }
    }
    Found::Works
}

register_probe!(
    /// AMCR_EL0, AMCFGR_EL0, AMEVCNTR00_EL0 (CPTR_EL2.TAM, HAFGRTR_EL2).
    amu, pfr0, 44, "s3_3_c13_c2_0", "s3_3_c13_c2_1", "s3_3_c13_c4_0"
);

fn spe(ids: &Ids) -> Found {
    if field(ids.dfr0, 32) == 0 {
        return Found::Absent;
    }
    // PMSIDR_EL1 (MDCR_EL2.TPMS), PMBIDR_EL1 (MDCR_EL2.E2PB).
    let pmbidr = match try_mrs!("s3_0_c9_c10_7") {
        Ok(v) => v,
        Err(esr) => return Found::Broken("PMBIDR_EL1 (MDCR_EL2.E2PB)", esr),
    };
    if pmbidr & (1 << 4) != 0 {
        // The buffer belongs to a higher exception level: only the ID registers are ours.
        return read_all!("s3_0_c9_c9_7");
    }
    read_all!("s3_0_c9_c9_7", "s3_0_c9_c10_0", "s3_0_c9_c9_0")
}

fn trace_buffer(ids: &Ids) -> Found {
    if field(ids.dfr0, 44) == 0 {
        return Found::Absent;
    }
    let trbidr = match try_mrs!("s3_0_c9_c11_7") {
        Ok(v) => v,
        Err(esr) => return Found::Broken("TRBIDR_EL1 (MDCR_EL2.E2TB)", esr),
    };
    if trbidr & (1 << 4) != 0 {
        return Found::Works;
    }
    // TRBLIMITR_EL1.
    read_all!("s3_0_c9_c11_0")
}

register_probe!(
    /// TRFCR_EL1 (MDCR_EL2.TTRF).
    trace_filter, dfr0, 40, "s3_0_c1_c2_1"
);

register_probe!(
    /// TRCIDR0 (CPTR_EL2.TTA).
    trace_unit, dfr0, 4, "s2_1_c0_c8_7"
);

register_probe!(
    /// BRBIDR0_EL1, BRBCR_EL1 (HDFGRTR_EL2.nBRBIDR/nBRBCTL).
    brbe, dfr0, 52, "s2_1_c9_c2_0", "s2_1_c9_c0_0"
);

fn scxtnum(ids: &Ids) -> Found {
    let csv2 = field(ids.pfr0, 56);
    if csv2 < 2 && !(csv2 == 1 && field(ids.pfr1, 32) >= 2) {
        return Found::Absent;
    }
    // SCXTNUM_EL1 (HCR_EL2.EnSCXT).
    read_all!("s3_0_c13_c0_7")
}

register_probe!(
    /// TCR2_EL1 (HCRX_EL2.TCR2En).
    tcr2, mmfr3, 0, "s3_0_c2_c0_3"
);

register_probe!(
    /// PIR_EL1, PIRE0_EL1 (HFGRTR_EL2.nPIR_EL1/nPIRE0_EL1).
    permission_indirection, mmfr3, 8, "s3_0_c10_c2_3", "s3_0_c10_c2_2"
);

register_probe!(
    /// POR_EL0, POR_EL1 (HFGRTR_EL2.nPOR_EL0/nPOR_EL1).
    permission_overlays, mmfr3, 16, "s3_3_c10_c2_4", "s3_0_c10_c2_4"
);

register_probe!(
    /// GCSCR_EL1, GCSPR_EL1 (HFGRTR_EL2.nGCS_EL1, HCRX_EL2.GCSEn).
    guarded_control_stack, pfr1, 44, "s3_0_c2_c5_0", "s3_0_c2_c5_1"
);

register_probe!(
    /// FPMR (HCRX_EL2.EnFPM).
    fpmr, pfr2, 32, "s3_3_c4_c4_2"
);

fn mpam(ids: &Ids) -> Found {
    if field(ids.pfr0, 40) == 0 && field(ids.pfr1, 16) == 0 {
        return Found::Absent;
    }
    // MPAMIDR_EL1, MPAM1_EL1 (MPAM2_EL2.TRAPMPAM1EL1, MPAMHCR_EL2.TRAP_MPAMIDR_EL1).
    read_all!("s3_0_c10_c4_4", "s3_0_c10_c5_0")
}

register_probe!(
    /// LORID_EL1 (HCR_EL2.TLOR).
    lor, mmfr1, 16, "s3_0_c10_c4_7"
);

register_probe!(
    /// ERRIDR_EL1 (HCR_EL2.TERR).
    ras, pfr0, 28, "s3_0_c5_c3_0"
);

register_probe!(
    /// RNDR.
    random_numbers, isar0, 60, "s3_3_c2_c4_0"
);

/// A feature's name and its check.
type Feature = (&'static str, fn(&Ids) -> Found);

const FEATURES: [Feature; 23] = [
    ("pointer authentication (PACIA/AUTIA)", pointer_auth_address),
    ("pointer authentication (PACGA)", pointer_auth_generic),
    ("SVE", sve),
    ("SME", sme),
    ("SME FA64", sme_fa64),
    ("MTE", mte),
    ("PMUv3", pmu),
    ("AMU", amu),
    ("SPE", spe),
    ("TRBE", trace_buffer),
    ("trace filter (TRF)", trace_filter),
    ("trace unit system registers", trace_unit),
    ("BRBE", brbe),
    ("SCXTNUM (CSV2_2)", scxtnum),
    ("TCR2", tcr2),
    ("permission indirection (S1PIE)", permission_indirection),
    ("permission overlays (S1POE)", permission_overlays),
    ("guarded control stack", guarded_control_stack),
    ("FPMR", fpmr),
    ("MPAM", mpam),
    ("LORegions", lor),
    ("RAS error records", ras),
    ("RNDR", random_numbers),
];

/// Every feature the host's ID registers advertise works at EL1; each one is printed
/// with what was found, and the first one that does not work fails the test.
pub fn host_features_in_its_id_registers_work_at_el1(_ctx: &mut Ctx) -> TestResult {
    let ids = Ids::read();
    say!(
        "host ID registers: PFR0 {:#x} PFR1 {:#x} DFR0 {:#x} ISAR1 {:#x} SMFR0 {:#x}",
        ids.pfr0,
        ids.pfr1,
        ids.dfr0,
        ids.isar1,
        ids.smfr0
    );
    let mut first_broken: Option<(&str, &str, u64)> = None;
    let mut broken = 0;
    let mut working = 0;
    for (name, check) in FEATURES {
        match check(&ids) {
            Found::Absent => say!("host feature {name}: not advertised"),
            Found::Works => {
                working += 1;
                say!("host feature {name}: advertised, works");
            }
            Found::Broken(what, value) => {
                broken += 1;
                say!("host feature {name}: advertised, BROKEN: {what} ({value:#x})");
                first_broken.get_or_insert((name, what, value));
            }
        }
    }
    if let Some((name, what, value)) = first_broken {
        bail!(
            "{broken} advertised feature(s) do not work at EL1, first {name}: {what} (ESR_EL1 or value {value:#x})"
        );
    }
    if working == 0 {
        return Err(Failure::not_applicable(format_args!(
            "this CPU advertises none of the features checked"
        )));
    }
    Ok(())
}
